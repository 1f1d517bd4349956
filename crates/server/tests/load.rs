//! Staying up under load on the tiny fixture: clients that disconnect mid-stream leave no
//! KV blocks held; 32 concurrent streams through `loadgen` finish with zero errors and
//! memory back to its baseline; shutdown drains open streams, or cancels them with an error
//! event after the deadline.

mod common;

use std::time::Duration;

use common::{JsonBody, TINY, TestServer, chat_body, loopback, rss_bytes, tiny_path};
use futures_util::StreamExt;
use serde_json::json;
use skiff_server::loadgen::{self, LoadgenConfig, PromptSet};
use skiff_server::{EngineSettings, ServerConfig};

/// The tests of this file one at a time: the memory test reads the whole process's RSS, which
/// the servers of tests running beside it would grow.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Streams dropped after their first chunks (and a non-streamed request abandoned by its
/// client) are cancelled: the engine ends up with no request and no KV block held.
///
/// The tiny model can finish its whole context (128 positions) before the client drops a
/// stream (in a CI run, all six streams of a round had ended by the time the sixth sent its
/// first token), and then the stream ended normally and counts as no abort. So the round is
/// repeated: every round must leave no block held, and some round must catch its streams
/// holding blocks, see the abort count rise when they are dropped (before the abandoned
/// request is sent, so that request cannot stand in for them) and generate fewer tokens than
/// six streams left to run to the end of the context would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnects_free_kv_blocks() {
    const ROUNDS: usize = 20;
    let _serial = SERIAL.lock().await;
    let s = TestServer::tiny().await;
    let generated = || {
        s.state
            .engine_stats(TINY)
            .expect("served")
            .generated_tokens_total
    };
    // How many tokens one stream generates when it runs to the end of the context.
    let start = generated();
    let whole = s
        .open_long_stream()
        .await
        .bytes()
        .await
        .expect("whole stream");
    assert!(
        whole.ends_with(b"data: [DONE]\n\n"),
        "stream ran to its end"
    );
    s.wait_idle(TINY).await;
    let full = generated() - start;
    let mut streams_aborted = false;
    for _ in 0..ROUNDS {
        let before = aborted(&s.get("/metrics").await.1);
        let start = generated();
        let mut held = Vec::new();
        for _ in 0..6 {
            let resp = s.open_long_stream().await;
            let mut stream = resp.bytes_stream();
            // Role chunk, then at least one token.
            for _ in 0..2 {
                stream.next().await.expect("a chunk").expect("bytes");
            }
            held.push(stream);
        }
        let busy = s.state.engine_stats(TINY).expect("served");
        drop(held);
        assert_eq!(s.wait_idle(TINY).await.kv_blocks_used, 0);
        if busy.kv_blocks_used > 0
            && aborted(&s.get("/metrics").await.1) > before
            && generated() - start < 6 * full
        {
            streams_aborted = true;
        }
        // A whole request whose client gives up before the answer.
        let client = s.client.clone();
        let url = s.url("/v1/chat/completions");
        let whole = chat_body("Hi", json!({"max_tokens": null, "ignore_eos": true}));
        let abandoned =
            tokio::spawn(async move { client.post(url).json_body(&whole).send().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        abandoned.abort();
        assert_eq!(s.wait_idle(TINY).await.kv_blocks_used, 0);
        if streams_aborted {
            break;
        }
    }
    assert!(
        streams_aborted,
        "in {ROUNDS} rounds, no dropped stream that held KV blocks was counted as aborted and \
         stopped early ({full} tokens when run to the end)"
    );
    s.shutdown().await.expect("clean shutdown");
}

/// The value of `skiff_aborted_requests_total` in a metrics page (0 when absent).
fn aborted(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("skiff_aborted_requests_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// 32 concurrent streaming clients (the loadgen tool itself) for three rounds: zero errors,
/// every stream complete, memory after the rounds within bounds of the post-warm-up
/// baseline, no block held at the end, and the metrics counted it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_streams_no_errors_memory_returns() {
    let _serial = SERIAL.lock().await;
    let s = TestServer::tiny().await;
    let config = LoadgenConfig {
        base_url: s.url("/v1"),
        model: None,
        concurrency: 32,
        duration: None,
        requests: Some(64),
        max_tokens: 16,
        temperature: 0.7,
        ignore_eos: true,
        api_key: None,
        prompts: PromptSet {
            system: "You are terse.".into(),
            questions: vec!["Hi".into(), "Where is my order?".into(), "Refund?".into()],
        },
    };
    let warm = loadgen::run(config.clone()).await.expect("warm-up run");
    assert_eq!(warm.errors, Vec::new());
    s.wait_idle(TINY).await;
    let baseline = rss_bytes();
    for round in 0..3 {
        let report = loadgen::run(config.clone()).await.expect("run");
        assert!(
            report.errors.is_empty(),
            "round {round}: {:?}",
            report.error_kinds(3)
        );
        assert_eq!(report.samples.len(), 64);
        assert!(
            report
                .samples
                .iter()
                .all(|x| x.output_tokens == 16 && x.ttft.is_some())
        );
        s.wait_idle(TINY).await;
    }
    let after = rss_bytes();
    assert!(
        after <= baseline + baseline / 10 + (16 << 20),
        "RSS grew from {baseline} to {after} bytes over three rounds"
    );
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.contains("skiff_requests_total{endpoint=\"chat\",status=\"200\"} 256\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("skiff_completion_tokens_total 4096\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("skiff_kv_blocks_used{model=\"tiny\"} 0\n"),
        "{metrics}"
    );
    s.shutdown().await.expect("clean shutdown");
}

/// Shutdown with time to spare: the open stream runs to `[DONE]`, `serve` returns `Ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_open_streams() {
    let _serial = SERIAL.lock().await;
    let s = TestServer::tiny().await;
    let resp = s.open_long_stream().await;
    let state = s.state.clone();
    let done = s.shutdown();
    let text = resp.text().await.expect("stream read to its end");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(state.is_shutting_down());
    done.await.expect("serve returned Ok");
}

/// Shutdown with no time left: the open stream ends with an error event (no `[DONE]`).
///
/// The tiny model can finish its whole context in the moment between the first chunk and the
/// shutdown, so a run whose stream already ended normally (`finish_reason` "length", then
/// `[DONE]`) proves nothing and is repeated on a fresh server; one of the attempts must see
/// the cut, and every attempt must end in one of those two ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deadline_cancels_with_error_event() {
    let _serial = SERIAL.lock().await;
    const ATTEMPTS: usize = 20;
    for attempt in 0..ATTEMPTS {
        let config = ServerConfig {
            shutdown_timeout: Duration::ZERO,
            ..loopback()
        };
        // One token per step: the request takes as many steps as it has tokens.
        let settings = EngineSettings {
            max_batch_tokens: Some(1),
            ..EngineSettings::default()
        };
        let s = TestServer::start(tiny_path(), TINY, config, settings).await;
        let mut stream = s.open_long_stream().await.bytes_stream();
        stream.next().await.expect("first chunk").expect("bytes");
        let done = s.shutdown();
        let mut text = String::new();
        while let Some(Ok(bytes)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        done.await.expect("serve returned Ok");
        if text.contains("\"error\"") {
            assert!(!text.contains("[DONE]"), "attempt {attempt}: {text}");
            return;
        }
        assert!(
            text.contains("\"finish_reason\":\"length\"")
                && text.trim_end().ends_with("data: [DONE]"),
            "attempt {attempt}: the stream neither was cut nor finished: {text}"
        );
    }
    panic!("in {ATTEMPTS} attempts the stream always finished before the shutdown");
}
