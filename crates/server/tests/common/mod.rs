//! Helpers shared by the end-to-end tests: start a real server in-process on an ephemeral
//! loopback port over a model, talk to it with `reqwest`, read SSE streams, and find the
//! real test models through `SKIFF_TEST_MODEL_DIR`.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skiff_backend_cpu::Cpu;
use skiff_formats::ModelFile;
use skiff_models::Model;
use skiff_server::{AppState, EngineSettings, Health, ModelBundle, Server, ServerConfig};
use skiff_tokenizer::Tokenizer;

/// The id the fixture model is served under.
pub const TINY: &str = "tiny";

/// The tiny random Llama fixture (context 128, 320-token byte-level BPE vocabulary, no chat
/// template, so the server uses ChatML).
pub fn tiny_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/llama/q8_0.gguf")
}

/// The real model `name` from `SKIFF_TEST_MODEL_DIR`; `None` (with a message) when unset;
/// a panic when set but the file is missing.
pub fn real_model(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        eprintln!("skipped: SKIFF_TEST_MODEL_DIR is not set (tools/fetch-test-models.sh fills it)");
        return None;
    };
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} is missing; run tools/fetch-test-models.sh",
        path.display()
    );
    Some(path)
}

/// Loads a GGUF file into what the server needs, with 2 CPU threads.
pub fn bundle(path: &std::path::Path) -> Result<ModelBundle, String> {
    let file = ModelFile::open(path).map_err(|e| e.to_string())?;
    let file = Arc::new(file);
    let tokenizer = Tokenizer::from_spec(&file.spec().tokenizer).map_err(|e| e.to_string())?;
    let model = Model::load(file).map_err(|e| e.to_string())?;
    Ok(ModelBundle {
        model: Arc::new(model),
        tokenizer: Arc::new(tokenizer),
        cpu: Arc::new(Cpu::new(2)),
    })
}

/// A server running in the test's runtime.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state (health, engine statistics).
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<skiff_server::Result<()>>>,
    /// The HTTP client for it.
    pub client: reqwest::Client,
}

impl TestServer {
    /// Starts a server over the model at `path` (served as `id`) and waits until ready.
    pub async fn start(
        path: PathBuf,
        id: &str,
        config: ServerConfig,
        settings: EngineSettings,
    ) -> TestServer {
        let server = TestServer::spawn(config, |s| {
            s.load_model(id, settings, move || bundle(&path));
        })
        .await;
        server.wait_for(Health::Ready).await;
        server
    }

    /// The tiny fixture with default settings.
    pub async fn tiny() -> TestServer {
        TestServer::start(tiny_path(), TINY, loopback(), EngineSettings::default()).await
    }

    /// Binds with `config` and lets `setup` register models; does not wait.
    pub async fn spawn(config: ServerConfig, setup: impl FnOnce(&Server)) -> TestServer {
        let server = Server::bind(config).await.expect("bind");
        setup(&server);
        let (addr, state) = (server.local_addr(), server.state());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
            client: reqwest::Client::new(),
        }
    }

    /// Polls `/health`'s state until it is `want` (10 s at most).
    pub async fn wait_for(&self, want: Health) {
        let t0 = Instant::now();
        loop {
            let now = self.state.health();
            if std::mem::discriminant(&now) == std::mem::discriminant(&want) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "health stuck at {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs JSON; returns status, headers and the parsed body (`Null` when not JSON).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post_raw(path, body.to_string().into_bytes()).await
    }

    /// POSTs raw bytes.
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// GETs a path; status and body text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body read"))
    }

    /// Opens a streaming chat that generates until the context is full ("Hi", no token
    /// limit, EOS ignored) and returns the response as soon as its headers arrive.
    pub async fn open_long_stream(&self) -> reqwest::Response {
        let body = chat_body(
            "Hi",
            serde_json::json!({"stream": true, "max_tokens": null, "ignore_eos": true}),
        );
        self.client
            .post(self.url("/v1/chat/completions"))
            .json_body(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs a streaming request and returns every SSE data payload, in order.
    pub async fn stream(&self, path: &str, body: &Value) -> Vec<String> {
        let resp = self
            .client
            .post(self.url(path))
            .json_body(body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status().as_u16(), 200, "stream refused");
        let ct = resp.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        let bytes = resp.bytes().await.expect("stream read");
        let mut parser = skiff_server::loadgen::SseParser::default();
        parser.push(&bytes)
    }

    /// Waits until the engine of `id` holds no request and no KV block (5 s at most).
    pub async fn wait_idle(&self, id: &str) -> skiff_engine::EngineStats {
        let t0 = Instant::now();
        loop {
            let stats = self.state.engine_stats(id).expect("model is served");
            if stats.running == 0 && stats.waiting == 0 && stats.kv_blocks_used == 0 {
                return stats;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "engine still busy after 5 s: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Triggers shutdown now; the returned future waits for `serve` to return.
    pub fn shutdown(mut self) -> impl std::future::Future<Output = skiff_server::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        async move {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("server stopped within 30 s")
                .expect("server task did not panic")
        }
    }
}

/// Loopback on an ephemeral port, default limits.
pub fn loopback() -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        ..ServerConfig::default()
    }
}

/// A one-turn chat body for the fixture.
pub fn chat_body(content: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": TINY,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 8,
        "temperature": 0,
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

/// Adds `.json_body()` to request builders (reqwest's `json` feature is off).
pub trait JsonBody {
    /// Sets a JSON body.
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }
}

/// Parses stream payloads except `[DONE]`.
pub fn chunks(payloads: &[String]) -> Vec<Value> {
    payloads
        .iter()
        .filter(|p| p.as_str() != "[DONE]")
        .map(|p| serde_json::from_str(p).unwrap_or_else(|e| panic!("payload {p:?}: {e}")))
        .collect()
}

/// The error object of an error body, checking OpenAI's four keys are there.
pub fn error_of(body: &Value) -> &serde_json::Map<String, Value> {
    let err = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("not an error body: {body}"));
    for key in ["message", "type", "param", "code"] {
        assert!(err.contains_key(key), "error body lacks {key}: {body}");
    }
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    err
}

/// Resident set size of this process, in bytes (Linux).
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
