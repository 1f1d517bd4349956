//! Generation through the HTTP API on the tiny fixture: the exact shapes of whole and
//! streamed responses for both endpoints, `n = 2`, stop strings, seed reproducibility,
//! log-probabilities, usage, and that streamed text equals the whole response's text.

mod common;

use common::{TINY, TestServer, chat_body, chunks};
use serde_json::{Value, json};

/// `chat.completion` shape and usage; the stream of the same greedy request has the role
/// first, `finish_reason` null until one terminal chunk, no usage, `[DONE]` last, and the
/// same text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_whole_and_streamed_agree() {
    let s = TestServer::tiny().await;
    let body = chat_body("Hello there", json!({"max_tokens": 12}));
    let (status, _, whole) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(whole["object"], "chat.completion");
    assert!(
        whole["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    assert_eq!(whole["model"], TINY);
    let choice = &whole["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(matches!(
        choice["finish_reason"].as_str(),
        Some("stop" | "length")
    ));
    assert!(choice["logprobs"].is_null());
    let usage = &whole["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64(),
        usage["completion_tokens"].as_u64(),
    );
    assert!(
        p.is_some_and(|p| p > 0) && c.is_some_and(|c| (1..=12).contains(&c)),
        "{usage}"
    );
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(p.unwrap_or(0) + c.unwrap_or(0))
    );

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let payloads = s.stream("/v1/chat/completions", &sbody).await;
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(&payloads);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let id = &chunks[0]["id"];
    let mut text = String::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(&c["id"], id);
        assert!(c.get("usage").is_none(), "usage without include_usage: {c}");
        assert_eq!(c["choices"].as_array().map(Vec::len), Some(1), "{c}");
        let last = i + 1 == chunks.len();
        assert_eq!(c["choices"][0]["finish_reason"].is_null(), !last, "{c}");
        if i > 0 {
            assert!(c["choices"][0]["delta"].get("role").is_none());
        }
        text.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(text, choice["message"]["content"].as_str().unwrap_or(""));
    assert_eq!(
        chunks
            .last()
            .map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(choice["finish_reason"].clone())
    );
    s.wait_idle(TINY).await;
    s.shutdown().await.expect("clean shutdown");
}

/// `stream_options.include_usage`: every chunk carries `usage: null`, then exactly one
/// usage chunk with empty choices right before `[DONE]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_usage_chunk() {
    let s = TestServer::tiny().await;
    let body = chat_body(
        "Hi",
        json!({"stream": true, "stream_options": {"include_usage": true}, "max_tokens": 5, "ignore_eos": true}),
    );
    let payloads = s.stream("/v1/chat/completions", &body).await;
    let chunks = chunks(&payloads);
    let (usage_chunk, rest) = chunks.split_last().expect("chunks");
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
    for c in rest {
        assert!(c["usage"].is_null() && c.get("usage").is_some(), "{c}");
        assert_eq!(c["choices"].as_array().map(Vec::len), Some(1));
    }
    assert_eq!(
        rest.last()
            .map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("length"))
    );
    s.shutdown().await.expect("clean shutdown");
}

/// `n = 2`: two choices with indexes 0 and 1, whole and streamed; usage counts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_choices() {
    let s = TestServer::tiny().await;
    let body = chat_body(
        "Hi",
        json!({"n": 2, "temperature": 1.0, "seed": 3, "max_tokens": 6, "ignore_eos": true}),
    );
    let (status, _, whole) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{whole}");
    let choices = whole["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 2);
    assert_eq!(
        (choices[0]["index"].clone(), choices[1]["index"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(whole["usage"]["completion_tokens"], 12);

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let chunks = chunks(&s.stream("/v1/chat/completions", &sbody).await);
    let mut texts = [String::new(), String::new()];
    let mut finished = [0, 0];
    for c in &chunks {
        let i = c["choices"][0]["index"].as_u64().expect("index") as usize;
        texts[i].push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
        if !c["choices"][0]["finish_reason"].is_null() {
            finished[i] += 1;
        }
    }
    assert_eq!(finished, [1, 1], "one terminal chunk per choice");
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(
            Some(text.as_str()),
            choices[i]["message"]["content"].as_str(),
            "choice {i}"
        );
    }
    s.shutdown().await.expect("clean shutdown");
}

/// The same seed reproduces the same sampled text; a stop string cuts the text before it
/// with finish_reason `stop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_and_stop() {
    let s = TestServer::tiny().await;
    let body = chat_body(
        "Tell me",
        json!({"temperature": 1.0, "seed": 1234, "max_tokens": 16, "ignore_eos": true}),
    );
    let text = |v: &Value| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let (_, _, a) = s.post("/v1/chat/completions", &body).await;
    let (_, _, b) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(text(&a), text(&b), "same seed, different text");
    assert!(
        text(&a).chars().count() >= 4,
        "too little text to test stop: {a}"
    );

    // Stop at the last few characters of the seeded text.
    let full = text(&a);
    let cut = full
        .char_indices()
        .nth(full.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let stop: String = full[cut..].chars().take(2).collect();
    let first = full.find(&stop).expect("stop occurs");
    let mut with_stop = body.clone();
    with_stop["stop"] = json!([stop]);
    let (status, _, c) = s.post("/v1/chat/completions", &with_stop).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(text(&c), full[..first], "stop {stop:?} in {full:?}");
    assert_eq!(c["choices"][0]["finish_reason"], "stop");
    s.shutdown().await.expect("clean shutdown");
}

/// Chat logprobs: one entry per token, `top_logprobs` alternatives, bytes of the token; the
/// legacy completions layout; and the completions endpoint's own shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logprobs_and_completions() {
    let s = TestServer::tiny().await;
    let body = chat_body(
        "Hi",
        json!({"logprobs": true, "top_logprobs": 3, "max_tokens": 4, "ignore_eos": true}),
    );
    let (status, _, v) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{v}");
    let content = v["choices"][0]["logprobs"]["content"]
        .as_array()
        .expect("content");
    assert_eq!(content.len(), 4);
    for e in content {
        assert!(e["logprob"].as_f64().is_some_and(|lp| lp <= 0.0), "{e}");
        assert_eq!(e["top_logprobs"].as_array().map(Vec::len), Some(3), "{e}");
        let token = e["token"].as_str().expect("token");
        let bytes: Vec<u8> = serde_json::from_value(e["bytes"].clone()).expect("bytes");
        assert_eq!(bytes, token.as_bytes());
    }

    let body = json!({"model": TINY, "prompt": "Once upon", "max_tokens": 3, "temperature": 0, "logprobs": 2, "ignore_eos": true});
    let (status, _, v) = s.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().is_some_and(|id| id.starts_with("cmpl-")));
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"].as_array().map(Vec::len), Some(3));
    assert_eq!(lp["token_logprobs"].as_array().map(Vec::len), Some(3));
    assert_eq!(lp["text_offset"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        lp["top_logprobs"][0].as_object().map(|m| m.len() <= 2),
        Some(true)
    );

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let payloads = s.stream("/v1/completions", &sbody).await;
    let chunks = chunks(&payloads);
    let text: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(text, v["choices"][0]["text"].as_str().unwrap_or(""));
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(
        chunks
            .last()
            .map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("length"))
    );
    s.shutdown().await.expect("clean shutdown");
}
