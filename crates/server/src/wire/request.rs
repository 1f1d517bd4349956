//! OpenAI request bodies: `/v1/chat/completions` ([`ChatRequest`]) and `/v1/completions`
//! ([`CompletionRequest`]), read and validated field by field.
//!
//! Validation happens here, before any tokenization, so a bad request costs only a parse
//! (RELIABILITY F6). Ranges: OpenAI's where it has one (temperature `[0, 2]`, penalties
//! `[-2, 2]`, `logit_bias` `[-100, 100]` and ≤ 300 entries, `top_logprobs` ≤ 20, `n` ≤ 16,
//! `stop` ≤ 16 strings of 1–256 bytes), the sampler's elsewhere. Sampling defaults are
//! OpenAI's (temperature 1, `top_p` 1, no `top_k`/`min_p` filter). Fields that would change
//! what is generated but are not implemented (`tools`, `response_format` other than text,
//! `best_of` > 1, `echo`, `suffix`) are refused with a 400 instead of silently ignored
//! (RELIABILITY H12); every other unknown field is ignored.

use serde_json::Value;
use skiff_engine::stop::{MAX_STOP_STRING_BYTES, MAX_STOP_STRINGS};
use skiff_engine::{MAX_N, MAX_TOP_LOGPROBS};
use skiff_sample::SamplingParams;
use skiff_sample::params::MAX_LOGIT_BIAS;
use skiff_tokenizer::Message;

use super::fields::{
    Object, get, opt_bool, opt_count, opt_f32_in, opt_int, opt_str, type_name, wrong_type,
};
use crate::error::ApiError;

/// Most messages in one chat request (RELIABILITY §5(d) 6).
pub const MAX_MESSAGES: usize = 1024;
/// Largest `max_tokens` accepted at parse time (the context check comes later).
const MAX_MAX_TOKENS: usize = 1 << 24;

/// What chat and completion requests share.
#[derive(Clone, Debug, PartialEq)]
pub struct GenParams {
    /// The `model` field.
    pub model: String,
    /// `max_completion_tokens`, else `max_tokens`; `None` means "to the end of the context".
    pub max_tokens: Option<usize>,
    /// Sampler settings (validated ranges; the vocabulary check is the engine's).
    pub sampling: SamplingParams,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Choices to generate, 1..=[`MAX_N`].
    pub n: usize,
    /// Answer as server-sent events.
    pub stream: bool,
    /// `stream_options.include_usage`: a final usage-only chunk.
    pub include_usage: bool,
    /// Alternatives per token when log-probabilities were asked for.
    pub logprobs: Option<usize>,
    /// Generate through end-of-generation tokens (`ignore_eos`, a vLLM/llama.cpp extension
    /// used by benchmarks).
    pub ignore_eos: bool,
}

/// A parsed `/v1/chat/completions` body.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// Shared settings.
    pub params: GenParams,
    /// The conversation, roles normalized (`developer` becomes `system`).
    pub messages: Vec<Message>,
}

/// The prompt of a `/v1/completions` request.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// Text, tokenized with the model's usual special-token handling (BOS added).
    Text(String),
    /// Token ids, used as they are.
    Tokens(Vec<u32>),
}

/// A parsed `/v1/completions` body.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    /// Shared settings.
    pub params: GenParams,
    /// The prompt.
    pub prompt: Prompt,
}

/// Reads a chat request.
pub fn parse_chat(obj: &Object) -> Result<ChatRequest, ApiError> {
    let mut params = parse_common(obj)?;
    let logprobs = opt_bool(obj, "logprobs")?.unwrap_or(false);
    let top = opt_count(obj, "top_logprobs", 0, MAX_TOP_LOGPROBS)?;
    params.logprobs = match (logprobs, top) {
        (true, top) => Some(top.unwrap_or(0)),
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "top_logprobs",
                "top_logprobs requires logprobs to be true",
            ));
        }
        (false, None) => None,
    };
    params.sampling.top_logprobs = params.logprobs.unwrap_or(0);
    refuse_tools(obj)?;
    let messages = parse_messages(obj)?;
    Ok(ChatRequest { params, messages })
}

/// Reads a completions request.
pub fn parse_completion(obj: &Object) -> Result<CompletionRequest, ApiError> {
    let mut params = parse_common(obj)?;
    params.logprobs = opt_count(obj, "logprobs", 0, MAX_TOP_LOGPROBS)?;
    params.sampling.top_logprobs = params.logprobs.unwrap_or(0);
    if opt_bool(obj, "echo")? == Some(true) {
        return Err(unsupported("echo", "echo is not supported"));
    }
    if opt_str(obj, "suffix")?.is_some_and(|s| !s.is_empty()) {
        return Err(unsupported("suffix", "suffix (insertion) is not supported"));
    }
    if opt_int(obj, "best_of", 1, MAX_N as i64)?.is_some_and(|b| b as usize != params.n) {
        return Err(unsupported(
            "best_of",
            "best_of other than n is not supported",
        ));
    }
    let prompt = parse_prompt(obj)?;
    Ok(CompletionRequest { params, prompt })
}

fn unsupported(param: &str, message: &str) -> ApiError {
    ApiError::invalid(param, message)
}

/// Fields both endpoints read.
fn parse_common(obj: &Object) -> Result<GenParams, ApiError> {
    let model = match get(obj, "model") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(wrong_type("model", v, "a string")),
        None => return Err(ApiError::invalid("model", "model is required")),
    };
    let max_tokens = match opt_count(obj, "max_completion_tokens", 1, MAX_MAX_TOKENS)? {
        Some(n) => Some(n),
        None => opt_count(obj, "max_tokens", 1, MAX_MAX_TOKENS)?,
    };
    let stream = opt_bool(obj, "stream")?.unwrap_or(false);
    let include_usage = match get(obj, "stream_options") {
        None => false,
        Some(Value::Object(o)) => opt_bool(o, "include_usage")
            .map_err(|e| ApiError {
                param: Some("stream_options.include_usage".into()),
                ..e
            })?
            .unwrap_or(false),
        Some(v) => return Err(wrong_type("stream_options", v, "an object")),
    };
    opt_str(obj, "user")?;
    Ok(GenParams {
        model,
        max_tokens,
        sampling: parse_sampling(obj)?,
        stop: parse_stop(obj)?,
        n: opt_count(obj, "n", 1, MAX_N)?.unwrap_or(1),
        stream,
        include_usage: stream && include_usage,
        logprobs: None,
        ignore_eos: opt_bool(obj, "ignore_eos")?.unwrap_or(false),
    })
}

/// The sampler settings, OpenAI defaults for what is absent.
fn parse_sampling(obj: &Object) -> Result<SamplingParams, ApiError> {
    let d = SamplingParams::default();
    let seed = opt_int(obj, "seed", i64::MIN, i64::MAX)?;
    Ok(SamplingParams {
        temperature: opt_f32_in(obj, "temperature", 0.0, 2.0)?.unwrap_or(1.0),
        top_p: match opt_f32_in(obj, "top_p", 0.0, 1.0)? {
            Some(0.0) => {
                return Err(ApiError::invalid(
                    "top_p",
                    "top_p = 0 is invalid: must be in (0, 1]",
                ));
            }
            other => other.unwrap_or(1.0),
        },
        top_k: opt_count(obj, "top_k", 0, usize::MAX)?.unwrap_or(0),
        min_p: opt_f32_in(obj, "min_p", 0.0, 1.0)?.unwrap_or(0.0),
        presence_penalty: opt_f32_in(obj, "presence_penalty", -2.0, 2.0)?.unwrap_or(0.0),
        frequency_penalty: opt_f32_in(obj, "frequency_penalty", -2.0, 2.0)?.unwrap_or(0.0),
        repetition_penalty: match opt_f32_in(obj, "repetition_penalty", 0.0, 100.0)? {
            Some(p) if p <= 0.0 => {
                return Err(ApiError::invalid(
                    "repetition_penalty",
                    format!("repetition_penalty = {p} is invalid: must be > 0"),
                ));
            }
            other => other.unwrap_or(1.0),
        },
        logit_bias: parse_logit_bias(obj)?,
        // Negative seeds are valid OpenAI integers; they map onto the u64 seed space.
        seed: seed.map(|s| s as u64),
        ..d
    })
}

/// `{"token id": bias}`.
fn parse_logit_bias(obj: &Object) -> Result<Vec<(u32, f32)>, ApiError> {
    let Some(v) = get(obj, "logit_bias") else {
        return Ok(Vec::new());
    };
    let Value::Object(map) = v else {
        return Err(wrong_type("logit_bias", v, "an object of token id to bias"));
    };
    if map.len() > MAX_LOGIT_BIAS {
        return Err(ApiError::invalid(
            "logit_bias",
            format!(
                "logit_bias has {} entries: at most {MAX_LOGIT_BIAS} are allowed",
                map.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(map.len());
    for (key, bias) in map {
        let token: u32 = key.parse().map_err(|_| {
            ApiError::invalid(
                "logit_bias",
                format!("logit_bias key {key:?} is not a token id (a non-negative integer)"),
            )
        })?;
        let bias = match bias.as_f64() {
            Some(b) if (-100.0..=100.0).contains(&b) => b as f32,
            _ => {
                return Err(ApiError::invalid(
                    "logit_bias",
                    format!("logit_bias for token {token} must be a number between -100 and 100"),
                ));
            }
        };
        out.push((token, bias));
    }
    Ok(out)
}

/// `stop`: a string or an array of strings.
fn parse_stop(obj: &Object) -> Result<Vec<String>, ApiError> {
    let stops: Vec<String> = match get(obj, "stop") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            if items.len() > MAX_STOP_STRINGS {
                return Err(ApiError::invalid(
                    "stop",
                    format!(
                        "stop has {} strings: at most {MAX_STOP_STRINGS} are allowed",
                        items.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        return Err(wrong_type("stop", other, "a string or an array of strings"));
                    }
                }
            }
            out
        }
        Some(v) => return Err(wrong_type("stop", v, "a string or an array of strings")),
    };
    if let Some(bad) = stops
        .iter()
        .find(|s| s.is_empty() || s.len() > MAX_STOP_STRING_BYTES)
    {
        return Err(ApiError::invalid(
            "stop",
            format!(
                "a stop string of {} bytes is invalid: each must be 1 to {MAX_STOP_STRING_BYTES} bytes",
                bad.len()
            ),
        ));
    }
    Ok(stops)
}

/// Refuses tool use and structured output, which are not implemented.
fn refuse_tools(obj: &Object) -> Result<(), ApiError> {
    if let Some(tools) = get(obj, "tools")
        && !tools.as_array().is_some_and(Vec::is_empty)
    {
        return Err(unsupported(
            "tools",
            "tools (function calling) are not supported yet",
        ));
    }
    if let Some(format) = get(obj, "response_format") {
        let kind = format.get("type").and_then(Value::as_str);
        if kind != Some("text") {
            return Err(unsupported(
                "response_format",
                "response_format other than {\"type\":\"text\"} is not supported yet",
            ));
        }
    }
    Ok(())
}

/// `messages`: roles checked, content flattened to text.
fn parse_messages(obj: &Object) -> Result<Vec<Message>, ApiError> {
    let items = match get(obj, "messages") {
        Some(Value::Array(items)) => items,
        Some(v) => return Err(wrong_type("messages", v, "an array")),
        None => return Err(ApiError::invalid("messages", "messages is required")),
    };
    if items.is_empty() {
        return Err(ApiError::invalid("messages", "messages must not be empty"));
    }
    if items.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(
            "messages",
            format!(
                "messages has {} entries: at most {MAX_MESSAGES} are allowed",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_message(i, item))
        .collect()
}

fn parse_message(i: usize, item: &Value) -> Result<Message, ApiError> {
    let at = format!("messages[{i}]");
    let Value::Object(m) = item else {
        return Err(wrong_type(&at, item, "an object"));
    };
    let field = |key: &str| format!("{at}.{key}");
    let role = match get(m, "role") {
        Some(Value::String(r)) => r.as_str(),
        Some(v) => return Err(wrong_type(&field("role"), v, "a string")),
        None => {
            return Err(ApiError::invalid(
                field("role"),
                format!("{at}.role is required"),
            ));
        }
    };
    let role = match role {
        "developer" | "system" => "system",
        "user" | "assistant" | "tool" => role,
        other => {
            return Err(ApiError::invalid(
                field("role"),
                format!(
                    "{at}.role {other:?} is invalid: must be system, developer, user, assistant or tool"
                ),
            ));
        }
    };
    let content = parse_content(&field("content"), get(m, "content"))?;
    let tool_calls = get(m, "tool_calls").cloned();
    if content.is_none() && !(role == "assistant" && tool_calls.is_some()) {
        return Err(ApiError::invalid(
            field("content"),
            format!("{at}.content is required"),
        ));
    }
    let text_field = |key: &str| -> Result<Option<String>, ApiError> {
        match get(m, key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(wrong_type(&field(key), v, "a string")),
        }
    };
    Ok(Message {
        role: role.to_string(),
        content: content.unwrap_or_default(),
        tool_calls,
        name: text_field("name")?,
        tool_call_id: text_field("tool_call_id")?,
    })
}

/// A string, or an array of `{"type":"text","text":…}` parts joined with newlines.
fn parse_content(param: &str, value: Option<&Value>) -> Result<Option<String>, ApiError> {
    let parts = match value {
        None => return Ok(None),
        Some(Value::String(s)) => return Ok(Some(s.clone())),
        Some(Value::Array(parts)) => parts,
        Some(v) => {
            return Err(wrong_type(
                param,
                v,
                "a string or an array of content parts",
            ));
        }
    };
    let mut texts = Vec::with_capacity(parts.len());
    for part in parts {
        let kind = part.get("type").and_then(Value::as_str);
        match (kind, part.get("text")) {
            (Some("text"), Some(Value::String(text))) => texts.push(text.as_str()),
            (Some("text"), other) => {
                let found = other.map_or("nothing", type_name);
                return Err(ApiError::invalid(
                    param,
                    format!("{param}: a text part needs a string \"text\", found {found}"),
                ));
            }
            (Some(kind), _) => {
                return Err(ApiError::invalid(
                    param,
                    format!(
                        "{param}: content parts of type {kind:?} are not supported (text only)"
                    ),
                ));
            }
            (None, _) => {
                return Err(ApiError::invalid(
                    param,
                    format!("{param}: every content part needs a \"type\""),
                ));
            }
        }
    }
    Ok(Some(texts.join("\n")))
}

/// `prompt`: a string, a one-string array, or an array of token ids.
fn parse_prompt(obj: &Object) -> Result<Prompt, ApiError> {
    let expected = "a string or an array of token ids";
    let v = match get(obj, "prompt") {
        Some(v) => v,
        None => return Err(ApiError::invalid("prompt", "prompt is required")),
    };
    match v {
        Value::String(s) => Ok(Prompt::Text(s.clone())),
        Value::Array(items) => match items.as_slice() {
            [Value::String(s)] => Ok(Prompt::Text(s.clone())),
            [Value::String(_), ..] | [Value::Array(_), ..] => Err(ApiError::invalid(
                "prompt",
                "batches of several prompts are not supported: send one prompt per request",
            )),
            _ => items
                .iter()
                .map(|t| {
                    t.as_u64()
                        .and_then(|t| u32::try_from(t).ok())
                        .ok_or_else(|| wrong_type("prompt", t, "a token id"))
                })
                .collect::<Result<Vec<u32>, _>>()
                .map(Prompt::Tokens),
        },
        other => Err(wrong_type("prompt", other, expected)),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
