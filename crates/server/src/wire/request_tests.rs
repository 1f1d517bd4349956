//! Tests of request parsing: defaults, every accepted shape, and the parameter each
//! rejection names.

use super::*;
use crate::wire::fields::parse_body;

fn chat(json: &str) -> Result<ChatRequest, ApiError> {
    parse_chat(&parse_body(json.as_bytes()).expect("test JSON"))
}

fn completion(json: &str) -> Result<CompletionRequest, ApiError> {
    parse_completion(&parse_body(json.as_bytes()).expect("test JSON"))
}

/// The `param` of a rejected chat body.
fn chat_param(json: &str) -> String {
    let err = chat(json).expect_err(json);
    assert_eq!(err.status.as_u16(), 400, "{json}");
    err.param.unwrap_or_else(|| "<none>".into())
}

const HI: &str = r#""model":"m","messages":[{"role":"user","content":"hi"}]"#;

/// A minimal body gets OpenAI's defaults; unknown fields are ignored.
#[test]
fn minimal_chat_has_openai_defaults() {
    let req = chat(&format!(
        r#"{{{HI},"metadata":{{"a":1}},"store":false,"whatever":[1]}}"#
    ))
    .expect("valid");
    let p = &req.params;
    assert_eq!(p.model, "m");
    assert_eq!((p.n, p.stream, p.include_usage), (1, false, false));
    assert_eq!(p.max_tokens, None);
    assert_eq!(p.logprobs, None);
    assert_eq!(p.sampling.temperature, 1.0);
    assert_eq!(
        (p.sampling.top_p, p.sampling.top_k, p.sampling.min_p),
        (1.0, 0, 0.0)
    );
    assert_eq!(req.messages, vec![Message::new("user", "hi")]);
}

/// Every supported field lands in its place.
#[test]
fn full_chat_surface() {
    let req = chat(&format!(
        r#"{{{HI},"max_tokens":5,"max_completion_tokens":7,"temperature":0,"top_p":0.5,
        "top_k":3,"min_p":0.1,"presence_penalty":1,"frequency_penalty":-1,
        "repetition_penalty":1.1,"logit_bias":{{"12":-100,"7":5.5}},"seed":-1,
        "stop":["a","bb"],"n":2,"logprobs":true,"top_logprobs":3,"stream":true,
        "stream_options":{{"include_usage":true}},"user":"u1","tool_choice":"none",
        "tools":[],"response_format":{{"type":"text"}}}}"#
    ))
    .expect("valid");
    let p = &req.params;
    assert_eq!(p.max_tokens, Some(7), "max_completion_tokens wins");
    let s = &p.sampling;
    assert_eq!(
        (s.temperature, s.top_p, s.top_k, s.min_p),
        (0.0, 0.5, 3, 0.1)
    );
    assert_eq!((s.presence_penalty, s.frequency_penalty), (1.0, -1.0));
    assert_eq!(s.repetition_penalty, 1.1);
    let mut bias = s.logit_bias.clone();
    bias.sort_by_key(|b| b.0);
    assert_eq!(bias, vec![(7, 5.5), (12, -100.0)]);
    assert_eq!(s.seed, Some(u64::MAX));
    assert_eq!(p.stop, vec!["a".to_string(), "bb".to_string()]);
    assert_eq!((p.n, p.stream, p.include_usage), (2, true, true));
    assert_eq!((p.logprobs, s.top_logprobs), (Some(3), 3));
}

/// String or parts content, every role, developer folded into system, assistant with only
/// tool calls, tool messages with their call id.
#[test]
fn message_shapes() {
    let req = chat(
        r#"{"model":"m","messages":[
        {"role":"developer","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
          "function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","content":"42","tool_call_id":"c1"},
        {"role":"user","content":"ok","name":"sam"}]}"#,
    )
    .expect("valid");
    let roles: Vec<&str> = req.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
    assert_eq!(req.messages[1].content, "a\nb");
    assert_eq!(req.messages[2].content, "");
    assert!(req.messages[2].tool_calls.is_some());
    assert_eq!(req.messages[3].tool_call_id.as_deref(), Some("c1"));
    assert_eq!(req.messages[4].name.as_deref(), Some("sam"));
}

/// Each validation class names its parameter.
#[test]
fn rejections_name_the_parameter() {
    let cases: &[(&str, &str)] = &[
        (r#"{"messages":[{"role":"user","content":"hi"}]}"#, "model"),
        (r#"{"model":5,"messages":[]}"#, "model"),
        (r#"{"model":"m"}"#, "messages"),
        (r#"{"model":"m","messages":[]}"#, "messages"),
        (r#"{"model":"m","messages":"hi"}"#, "messages"),
        (
            r#"{"model":"m","messages":[{"content":"x"}]}"#,
            "messages[0].role",
        ),
        (
            r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
            "messages[0].role",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user"}]}"#,
            "messages[0].content",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":7}]}"#,
            "messages[0].content",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
            "messages[0].content",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(chat_param(json), *want, "{json}");
    }
    let with = |extra: &str| format!("{{{HI},{extra}}}");
    let cases: &[(&str, &str)] = &[
        (r#""temperature":2.5"#, "temperature"),
        (r#""temperature":"hot""#, "temperature"),
        (r#""top_p":0"#, "top_p"),
        (r#""top_p":1.5"#, "top_p"),
        (r#""min_p":-1"#, "min_p"),
        (r#""top_k":-1"#, "top_k"),
        (r#""presence_penalty":3"#, "presence_penalty"),
        (r#""frequency_penalty":-3"#, "frequency_penalty"),
        (r#""repetition_penalty":0"#, "repetition_penalty"),
        (r#""n":0"#, "n"),
        (r#""n":17"#, "n"),
        (r#""max_tokens":0"#, "max_tokens"),
        (r#""max_tokens":"lots""#, "max_tokens"),
        (r#""max_completion_tokens":-5"#, "max_completion_tokens"),
        (r#""top_logprobs":3"#, "top_logprobs"),
        (r#""logprobs":true,"top_logprobs":21"#, "top_logprobs"),
        (r#""logprobs":"yes""#, "logprobs"),
        (r#""stop":5"#, "stop"),
        (r#""stop":[""]"#, "stop"),
        (
            r#""stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]"#,
            "stop",
        ),
        (r#""logit_bias":{"x":1}"#, "logit_bias"),
        (r#""logit_bias":{"1":101}"#, "logit_bias"),
        (r#""logit_bias":[1]"#, "logit_bias"),
        (r#""seed":1.5"#, "seed"),
        (r#""stream":"yes""#, "stream"),
        (
            r#""stream_options":{"include_usage":1}"#,
            "stream_options.include_usage",
        ),
        (
            r#""tools":[{"type":"function","function":{"name":"f"}}]"#,
            "tools",
        ),
        (
            r#""response_format":{"type":"json_object"}"#,
            "response_format",
        ),
        (r#""user":3"#, "user"),
    ];
    for (extra, want) in cases {
        assert_eq!(chat_param(&with(extra)), *want, "{extra}");
    }
    let long_stop = format!(r#""stop":"{}""#, "x".repeat(257));
    assert_eq!(chat_param(&with(&long_stop)), "stop");
    let many: Vec<String> = (0..301).map(|i| format!(r#""{i}":1"#)).collect();
    let bias = format!(r#""logit_bias":{{{}}}"#, many.join(","));
    assert_eq!(chat_param(&with(&bias)), "logit_bias");
    let msgs: Vec<&str> = vec![r#"{"role":"user","content":"x"}"#; MAX_MESSAGES + 1];
    let body = format!(r#"{{"model":"m","messages":[{}]}}"#, msgs.join(","));
    assert_eq!(chat_param(&body), "messages");
}

/// Usage chunks are only asked for on a stream.
#[test]
fn include_usage_needs_stream() {
    let req = chat(&format!(
        r#"{{{HI},"stream_options":{{"include_usage":true}}}}"#
    ))
    .expect("valid");
    assert!(!req.params.include_usage);
}

/// Completion prompts: a string, a one-string list, token ids; the legacy logprobs int.
#[test]
fn completion_prompts() {
    let req = completion(r#"{"model":"m","prompt":"Once","logprobs":2}"#).expect("valid");
    assert_eq!(req.prompt, Prompt::Text("Once".into()));
    assert_eq!(req.params.logprobs, Some(2));
    let req = completion(r#"{"model":"m","prompt":["Once"]}"#).expect("valid");
    assert_eq!(req.prompt, Prompt::Text("Once".into()));
    let req = completion(r#"{"model":"m","prompt":[1,2,3],"best_of":1}"#).expect("valid");
    assert_eq!(req.prompt, Prompt::Tokens(vec![1, 2, 3]));
    let cases: &[(&str, &str)] = &[
        (r#"{"model":"m"}"#, "prompt"),
        (r#"{"model":"m","prompt":{"a":1}}"#, "prompt"),
        (r#"{"model":"m","prompt":["a","b"]}"#, "prompt"),
        (r#"{"model":"m","prompt":[1,-2]}"#, "prompt"),
        (r#"{"model":"m","prompt":"x","logprobs":21}"#, "logprobs"),
        (r#"{"model":"m","prompt":"x","echo":true}"#, "echo"),
        (r#"{"model":"m","prompt":"x","suffix":"y"}"#, "suffix"),
        (r#"{"model":"m","prompt":"x","best_of":3}"#, "best_of"),
    ];
    for (json, want) in cases {
        let err = completion(json).expect_err(json);
        assert_eq!(err.param.as_deref(), Some(*want), "{json}");
    }
}
