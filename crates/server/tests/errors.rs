//! Every error class of the HTTP API against a real in-process server on the tiny fixture:
//! the status, OpenAI's error body shape, the named parameter and code — and that the
//! server keeps answering afterwards.

mod common;

use common::{TINY, TestServer, chat_body, error_of, loopback, tiny_path};
use serde_json::{Value, json};
use skiff_server::{EngineSettings, Health, ServerConfig};

/// Validation classes: each is a 400 naming its parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_the_parameter() {
    let s = TestServer::tiny().await;
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (chat_body("hi", json!({"n": 17})), "n", None),
        (
            chat_body("hi", json!({"logprobs": true, "top_logprobs": 21})),
            "top_logprobs",
            None,
        ),
        (
            chat_body("hi", json!({"temperature": "warm"})),
            "temperature",
            None,
        ),
        (
            chat_body("hi", json!({"max_tokens": -1})),
            "max_tokens",
            None,
        ),
        (json!({"model": TINY, "messages": []}), "messages", None),
        (
            json!({"model": TINY, "messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
            None,
        ),
        (chat_body("hi", json!({"stop": ["a", ""]})), "stop", None),
        // The fixture's context is 128 tokens.
        (
            chat_body("hi", json!({"max_tokens": 500})),
            "messages",
            Some("context_length_exceeded"),
        ),
        (
            chat_body(&"long ".repeat(200), json!({"max_tokens": 1})),
            "messages",
            Some("context_length_exceeded"),
        ),
        // Vocabulary-dependent checks happen after parsing: token 320 is outside the vocab.
        (
            chat_body("hi", json!({"logit_bias": {"320": 5}})),
            "logit_bias",
            None,
        ),
    ];
    for (body, param, code) in cases {
        let (status, _, resp) = s.post("/v1/chat/completions", &body).await;
        assert_eq!(status, 400, "{body} -> {resp}");
        let err = error_of(&resp);
        assert_eq!(err["type"], "invalid_request_error", "{resp}");
        assert_eq!(err["param"], param, "{body} -> {resp}");
        if let Some(code) = code {
            assert_eq!(err["code"], code, "{resp}");
        }
    }
    let completions: Vec<(Value, &str)> = vec![
        (json!({"model": TINY, "prompt": [1, 999]}), "prompt"),
        (
            json!({"model": TINY, "prompt": "x", "logprobs": 30}),
            "logprobs",
        ),
        (
            json!({"model": TINY, "prompt": "x", "max_tokens": 200}),
            "prompt",
        ),
    ];
    for (body, param) in completions {
        let (status, _, resp) = s.post("/v1/completions", &body).await;
        assert_eq!(status, 400, "{body} -> {resp}");
        assert_eq!(error_of(&resp)["param"], param, "{body} -> {resp}");
    }
    // Still serving.
    let (status, _, _) = s
        .post("/v1/chat/completions", &chat_body("hi", json!({})))
        .await;
    assert_eq!(status, 200);
    s.shutdown().await.expect("clean shutdown");
}

/// Body-level failures: malformed JSON, invalid UTF-8, not an object, over the size limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_errors() {
    let config = ServerConfig {
        max_body_bytes: 4096,
        ..loopback()
    };
    let s = TestServer::start(tiny_path(), TINY, config, EngineSettings::default()).await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{\"model\": ".to_vec(), 400, "not valid JSON"),
        (b"{\"model\": \"\xff\xfe\"}".to_vec(), 400, "UTF-8"),
        (b"[1, 2]".to_vec(), 400, "JSON object"),
        (vec![b' '; 5000], 413, "limit of 4096 bytes"),
    ];
    for (body, want, text) in cases {
        let (status, _, resp) = s.post_raw("/v1/chat/completions", body).await;
        assert_eq!(status, want, "{resp}");
        let err = error_of(&resp);
        assert!(err["param"].is_null(), "{resp}");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains(text), "{message:?} lacks {text:?}");
    }
    s.shutdown().await.expect("clean shutdown");
}

/// Unknown model 404 `model_not_found`; unknown URL 404 and wrong method 405 in the same
/// shape; `/v1/models` lists the model and `/v1/models/{id}` finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_and_models() {
    let s = TestServer::tiny().await;
    let mut body = chat_body("hi", json!({}));
    body["model"] = json!("gpt-17");
    let (status, _, resp) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 404);
    assert_eq!(error_of(&resp)["code"], "model_not_found");
    assert_eq!(error_of(&resp)["param"], "model");

    let (status, text) = s.get("/v1/nothing").await;
    assert_eq!(status, 404);
    error_of(&serde_json::from_str(&text).expect("json"));
    let (status, text) = s.get("/v1/chat/completions").await;
    assert_eq!(status, 405);
    error_of(&serde_json::from_str(&text).expect("json"));

    let (status, text) = s.get("/v1/models").await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], TINY);
    assert_eq!(list["data"][0]["object"], "model");
    let (status, _) = s.get(&format!("/v1/models/{TINY}")).await;
    assert_eq!(status, 200);
    let (status, text) = s.get("/v1/models/org/other").await;
    assert_eq!(status, 404, "{text}");
    s.shutdown().await.expect("clean shutdown");
}

/// With keys configured: missing, malformed and wrong keys get the same 401; the right key
/// passes; `/health` stays open. A foreign Host header is refused on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_host_guard() {
    let config = ServerConfig {
        api_keys: vec!["sk-right".into(), "sk-other".into()],
        ..loopback()
    };
    let s = TestServer::start(tiny_path(), TINY, config, EngineSettings::default()).await;
    let url = s.url("/v1/models");
    let mut bodies = Vec::new();
    for auth in [
        None,
        Some("Bearer sk-wrong"),
        Some("Bearer sk-righ"),
        Some("Basic sk-right"),
    ] {
        let mut req = s.client.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("sent");
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
        bodies.push(resp.text().await.expect("body"));
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "401 bodies differ: {bodies:?}"
    );
    let err: Value = serde_json::from_str(&bodies[0]).expect("json");
    assert_eq!(error_of(&err)["code"], "invalid_api_key");
    for key in ["sk-right", "sk-other"] {
        let resp = s
            .client
            .get(&url)
            .bearer_auth(key)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 200, "{key}");
    }
    let (status, _) = s.get("/health").await;
    assert_eq!(status, 200);
    let resp = s
        .client
        .get(&url)
        .bearer_auth("sk-right")
        .header("host", "evil.example:80")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 400);
    s.shutdown().await.expect("clean shutdown");
}

/// `/health` says loading while the loader runs, then failed with the loader's message;
/// requests for that model get 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_loading_then_failed() {
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let s = TestServer::spawn(loopback(), move |server| {
        server.load_model(TINY, EngineSettings::default(), move || {
            let _ = gate.recv();
            Err("the file is not a model".to_string())
        });
    })
    .await;
    let (status, text) = s.get("/health").await;
    assert_eq!(status, 503);
    assert!(text.contains("\"loading\""), "{text}");
    let (status, _, resp) = s
        .post("/v1/chat/completions", &chat_body("hi", json!({})))
        .await;
    assert_eq!(status, 503);
    assert_eq!(error_of(&resp)["code"], "model_loading");
    release.send(()).expect("loader waiting");
    s.wait_for(Health::Failed(String::new())).await;
    let (status, text) = s.get("/health").await;
    assert_eq!(status, 503);
    assert!(
        text.contains("\"failed\"") && text.contains("not a model"),
        "{text}"
    );
    let (status, _, _) = s
        .post("/v1/chat/completions", &chat_body("hi", json!({})))
        .await;
    assert_eq!(status, 503);
    s.shutdown().await.expect("clean shutdown");
}

/// A model whose engine core has stopped while the server still runs (as after a crash of
/// the core thread) makes `/health` say failed, naming the model, instead of ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_stopped_engine_as_failed() {
    let s = TestServer::tiny().await;
    let (status, text) = s.get("/health").await;
    assert_eq!(status, 200, "{text}");
    let models = s.state.ready_models();
    assert!(models.iter().all(|m| m.engine.is_running()));
    for m in &models {
        m.engine.shutdown(skiff_engine::ShutdownMode::Cancel);
    }
    let (status, text) = s.get("/health").await;
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("\"failed\"") && text.contains("has stopped") && text.contains(TINY),
        "{text}"
    );
    s.shutdown().await.expect("clean shutdown");
}

/// A full admission queue answers 429 with Retry-After at once; admitted requests finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_full_is_429() {
    let settings = EngineSettings {
        max_running: Some(1),
        max_queue: Some(1),
        ..EngineSettings::default()
    };
    let s = TestServer::start(tiny_path(), TINY, loopback(), settings).await;
    let body = chat_body("hi", json!({"max_tokens": null, "ignore_eos": true}));
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, body) = (
                s.client.clone(),
                s.url("/v1/chat/completions"),
                body.clone(),
            );
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("sent");
                let retry = resp.headers().get("retry-after").cloned();
                let status = resp.status().as_u16();
                (status, retry, resp.text().await.expect("body"))
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        let (status, retry, text) = r.await.expect("task");
        if status == 429 {
            assert!(retry.is_some(), "429 without Retry-After");
            let body: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(error_of(&body)["code"], "rate_limit_exceeded");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    s.wait_idle(TINY).await;
    s.shutdown().await.expect("clean shutdown");
}
