//! The server on the real SmolLM2-135M-Instruct (`SKIFF_TEST_MODEL_DIR`): its own chat
//! template renders the conversation (system, user, assistant turns and array content),
//! greedy answers are the same whole and streamed, and text deltas concatenate to the whole
//! text (no broken UTF-8 between chunks).

mod common;

use common::{TestServer, chunks, loopback, real_model};
use serde_json::json;
use skiff_server::EngineSettings;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_chat_whole_equals_streamed() {
    let Some(path) = real_model(SMOLLM2) else {
        return;
    };
    let s = TestServer::start(path, "smollm2", loopback(), EngineSettings::default()).await;
    let model = s.state.ready_models().pop().expect("ready");
    assert!(!model.fallback_template, "SmolLM2 ships a chat template");
    let body = json!({
        "model": "smollm2",
        "messages": [
            {"role": "developer", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": [{"type": "text", "text": "And of Italy? Answer with the city and one fact, é ü ok."}]}
        ],
        "max_tokens": 24,
        "temperature": 0
    });
    let (status, _, whole) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{whole}");
    let text = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!text.trim().is_empty(), "{whole}");
    assert!(
        whole["usage"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|p| p > 30),
        "{whole}"
    );
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let streamed: String = chunks(&s.stream("/v1/chat/completions", &sbody).await)
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(streamed, text);
    assert!(!streamed.contains('\u{fffd}'), "{streamed:?}");
    // A second identical request reuses the cached prompt prefix.
    let (_, _, again) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(
        again["choices"][0]["message"]["content"].as_str(),
        Some(text.as_str())
    );
    assert!(
        again["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .is_some_and(|c| c > 0),
        "{again}"
    );
    s.wait_idle("smollm2").await;
    s.shutdown().await.expect("clean shutdown");
}
