//! OpenAI response objects: `chat.completion`, `chat.completion.chunk` and
//! `text_completion` (whole and streamed), usage, and log-probabilities in the chat and
//! legacy layouts.
//!
//! Wire rules (ECOSYSTEM §2.1, from openai-python's types): `id` and `created` are the same
//! on every chunk; `finish_reason` is `null` on every chunk but the one terminal chunk of
//! its choice; the first chunk of a chat choice carries `delta.role = "assistant"`; with
//! `stream_options.include_usage` every chunk carries `"usage": null` and one last chunk
//! carries the usage with `choices: []`; without it neither appears.

use serde_json::{Map, Value, json};
use skiff_engine::FinishReason;

/// Which endpoint's shapes to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// Token counts of a whole request (all choices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: usize,
    /// Generated tokens over every choice.
    pub completion_tokens: usize,
}

impl UsageCounts {
    /// The `usage` object.
    pub fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        })
    }
}

/// A token with its text, for log-probability entries.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    /// The token's text (lossy for a token that is part of a multi-byte character).
    pub text: String,
    /// Its log-probability.
    pub logprob: f32,
    /// The most likely alternatives, best first.
    pub top: Vec<(String, f32)>,
}

/// The OpenAI `finish_reason` string. `Cancelled` never reaches the wire (the server answers
/// it with an error, whole or mid-stream); it maps to `stop` only to keep this total.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::Cancelled => "stop",
    }
}

/// Builds every object of one response; holds what all its chunks share.
#[derive(Clone, Debug)]
pub struct Shaper {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// `chatcmpl-…` or `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model id as requested.
    pub model: String,
    /// Whether chunks carry `"usage": null` and a usage chunk ends the stream.
    pub include_usage: bool,
    /// Whether log-probabilities were asked for.
    pub logprobs: bool,
}

impl Shaper {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completion, _) => "text_completion",
        }
    }

    fn envelope(&self, chunk: bool, choices: Vec<Value>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("object".into(), json!(self.object(chunk)));
        m.insert("created".into(), json!(self.created));
        m.insert("model".into(), json!(self.model));
        m.insert("system_fingerprint".into(), Value::Null);
        m.insert("choices".into(), Value::Array(choices));
        m
    }

    /// A streamed chunk with one choice.
    fn chunk(&self, choice: Value) -> Value {
        let mut m = self.envelope(true, vec![choice]);
        if self.include_usage {
            m.insert("usage".into(), Value::Null);
        }
        Value::Object(m)
    }

    /// The first chunk of a chat choice: role, empty content. `None` for completions.
    pub fn role_chunk(&self, index: usize) -> Option<Value> {
        (self.endpoint == Endpoint::Chat).then(|| {
            self.chunk(json!({
                "index": index,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": null,
                "finish_reason": null,
            }))
        })
    }

    /// A chunk carrying text (and the log-probabilities of the tokens that released it).
    pub fn text_chunk(&self, index: usize, text: &str, logprobs: &[TokenLogprob]) -> Value {
        let lp = self.logprobs_json(logprobs, 0);
        self.chunk(match self.endpoint {
            Endpoint::Chat => json!({
                "index": index,
                "delta": {"content": text},
                "logprobs": lp,
                "finish_reason": null,
            }),
            Endpoint::Completion => json!({
                "index": index,
                "text": text,
                "logprobs": lp,
                "finish_reason": null,
            }),
        })
    }

    /// The terminal chunk of a choice.
    pub fn finish_chunk(&self, index: usize, reason: FinishReason) -> Value {
        let reason = finish_reason(reason);
        self.chunk(match self.endpoint {
            Endpoint::Chat => json!({
                "index": index, "delta": {}, "logprobs": null, "finish_reason": reason,
            }),
            Endpoint::Completion => json!({
                "index": index, "text": "", "logprobs": null, "finish_reason": reason,
            }),
        })
    }

    /// The usage-only chunk (`choices: []`), sent last when asked for.
    pub fn usage_chunk(&self, usage: UsageCounts) -> Value {
        let mut m = self.envelope(true, Vec::new());
        m.insert("usage".into(), usage.to_json());
        Value::Object(m)
    }

    /// A whole (non-streamed) response.
    pub fn complete(&self, choices: &[ChoiceResult], usage: UsageCounts) -> Value {
        let choices = choices
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let reason = c.finish.map(finish_reason);
                let lp = self.logprobs_json(&c.logprobs, 0);
                match self.endpoint {
                    Endpoint::Chat => json!({
                        "index": index,
                        "message": {"role": "assistant", "content": c.text, "refusal": null},
                        "logprobs": lp,
                        "finish_reason": reason,
                    }),
                    Endpoint::Completion => json!({
                        "index": index,
                        "text": c.text,
                        "logprobs": lp,
                        "finish_reason": reason,
                    }),
                }
            })
            .collect();
        let mut m = self.envelope(false, choices);
        m.insert("usage".into(), usage.to_json());
        Value::Object(m)
    }

    /// Log-probabilities in the endpoint's layout; `null` when not asked for.
    /// `text_offset_base` is the character offset of the first token (completions).
    fn logprobs_json(&self, entries: &[TokenLogprob], text_offset_base: usize) -> Value {
        if !self.logprobs {
            return Value::Null;
        }
        match self.endpoint {
            Endpoint::Chat => {
                let entry = |text: &str, lp: f32| json!({"token": text, "logprob": lp, "bytes": text.as_bytes()});
                let content: Vec<Value> = entries
                    .iter()
                    .map(|e| {
                        let mut v = entry(&e.text, e.logprob);
                        let top: Vec<Value> = e.top.iter().map(|(t, lp)| entry(t, *lp)).collect();
                        v["top_logprobs"] = Value::Array(top);
                        v
                    })
                    .collect();
                json!({"content": content, "refusal": null})
            }
            Endpoint::Completion => {
                let mut offset = text_offset_base;
                let mut offsets = Vec::with_capacity(entries.len());
                for e in entries {
                    offsets.push(offset);
                    offset += e.text.chars().count();
                }
                let top: Vec<Value> = entries
                    .iter()
                    .map(|e| {
                        let m: Map<String, Value> =
                            e.top.iter().map(|(t, lp)| (t.clone(), json!(lp))).collect();
                        Value::Object(m)
                    })
                    .collect();
                json!({
                    "tokens": entries.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
                    "token_logprobs": entries.iter().map(|e| e.logprob).collect::<Vec<_>>(),
                    "top_logprobs": top,
                    "text_offset": offsets,
                })
            }
        }
    }
}

/// One finished choice of a non-streamed response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChoiceResult {
    /// The generated text.
    pub text: String,
    /// Per-token log-probabilities (when asked for).
    pub logprobs: Vec<TokenLogprob>,
    /// Why it ended (`None` only while running).
    pub finish: Option<FinishReason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaper(endpoint: Endpoint, include_usage: bool) -> Shaper {
        Shaper {
            endpoint,
            id: "chatcmpl-1".into(),
            created: 7,
            model: "m".into(),
            include_usage,
            logprobs: false,
        }
    }

    /// Chunk envelopes: object, shared id/created, null finish_reason until the end, role
    /// only in the first delta, `usage` only when asked for.
    #[test]
    fn chat_chunk_shapes() {
        let s = shaper(Endpoint::Chat, false);
        let role = s.role_chunk(0).expect("chat has a role chunk");
        assert_eq!(role["object"], "chat.completion.chunk");
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        assert!(role["choices"][0]["finish_reason"].is_null());
        assert!(role.get("usage").is_none());
        let text = s.text_chunk(1, "Hi", &[]);
        assert_eq!(text["choices"][0]["index"], 1);
        assert!(text["choices"][0]["delta"].get("role").is_none());
        assert!(text["choices"][0]["finish_reason"].is_null());
        let fin = s.finish_chunk(0, FinishReason::Length);
        assert_eq!(fin["choices"][0]["finish_reason"], "length");
        assert_eq!(fin["choices"][0]["delta"], json!({}));
        assert_eq!(
            (fin["id"].clone(), fin["created"].clone()),
            (json!("chatcmpl-1"), json!(7))
        );

        let s = shaper(Endpoint::Chat, true);
        assert!(s.text_chunk(0, "x", &[])["usage"].is_null());
        assert!(s.text_chunk(0, "x", &[]).get("usage").is_some());
        let usage = s.usage_chunk(UsageCounts {
            prompt_tokens: 9,
            cached_tokens: 4,
            completion_tokens: 3,
        });
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 12);
        assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    }

    /// Whole responses in both layouts, with logprobs in each endpoint's format.
    #[test]
    fn complete_shapes_and_logprobs() {
        let lp = vec![
            TokenLogprob {
                text: "Hé".into(),
                logprob: -0.5,
                top: vec![("Hé".into(), -0.5), ("A".into(), -1.0)],
            },
            TokenLogprob {
                text: "!".into(),
                logprob: -0.1,
                top: vec![("!".into(), -0.1), (".".into(), -2.5)],
            },
        ];
        let choice = ChoiceResult {
            text: "Hé!".into(),
            logprobs: lp,
            finish: Some(FinishReason::Stop),
        };
        let mut s = shaper(Endpoint::Chat, false);
        s.logprobs = true;
        let v = s.complete(std::slice::from_ref(&choice), UsageCounts::default());
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "Hé!");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        let c0 = &v["choices"][0]["logprobs"]["content"][0];
        assert_eq!(c0["bytes"], json!([72, 195, 169]));
        assert_eq!(c0["top_logprobs"][1]["token"], "A");

        s.endpoint = Endpoint::Completion;
        let v = s.complete(&[choice], UsageCounts::default());
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], "Hé!");
        let lp = &v["choices"][0]["logprobs"];
        assert_eq!(lp["tokens"], json!(["Hé", "!"]));
        assert_eq!(lp["text_offset"], json!([0, 2]));
        assert_eq!(lp["top_logprobs"][1]["."], json!(-2.5));
        assert!(s.role_chunk(0).is_none());
    }
}
