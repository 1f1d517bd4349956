//! Helpers shared by the batching-engine tests: loading models, starting engines, running
//! requests to completion and reading back their events.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_backend_cpu::Cpu;
use skiff_engine::{
    Engine, EngineConfig, EngineStats, FinishReason, KvDtype, Request, RequestEvent, RequestHandle,
    StopCriteria,
};
use skiff_formats::ModelFile;
use skiff_models::Model;
use skiff_sample::SamplingParams;
use skiff_tokenizer::Tokenizer;

/// A model with its tokenizer and a CPU backend.
pub struct Loaded {
    pub model: Arc<Model>,
    pub tokenizer: Arc<Tokenizer>,
    pub cpu: Arc<Cpu>,
}

/// Loads a model file and its tokenizer.
pub fn load(path: &std::path::Path) -> Loaded {
    let file =
        Arc::new(ModelFile::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())));
    let tokenizer = Tokenizer::from_spec(&file.spec().tokenizer).expect("the tokenizer builds");
    let model = Model::load(file).expect("the model loads");
    Loaded {
        model: Arc::new(model),
        tokenizer: Arc::new(tokenizer),
        cpu: Arc::new(Cpu::new(2)),
    }
}

/// The tiny committed llama fixture (128-token context, 320-token vocabulary).
pub fn tiny() -> Loaded {
    load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/llama/f32.gguf"))
}

/// `SKIFF_TEST_MODEL_DIR/<file>`, or `None` (with a message) when the variable is unset;
/// panics when it is set but the file is missing.
pub fn real_model_path(file: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        eprintln!("skipped: SKIFF_TEST_MODEL_DIR is not set (see tools/fetch-test-models.sh)");
        return None;
    };
    let path = PathBuf::from(dir).join(file);
    assert!(
        path.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} is missing",
        path.display()
    );
    Some(path)
}

/// A configuration for tests: f32 KV (exact), `n_blocks` blocks of `block_size`.
pub fn config(m: &Loaded, max_seq_len: usize, block_size: usize, n_blocks: usize) -> EngineConfig {
    let per_block =
        skiff_models::KvCache::bytes_per_block(&m.model.spec().hparams, block_size, KvDtype::F32);
    EngineConfig {
        max_batch_tokens: 256,
        max_running: 32,
        max_queue: 256,
        kv_memory_bytes: per_block * n_blocks,
        block_size,
        kv_dtype: KvDtype::F32,
        max_seq_len,
        prefix_cache: true,
    }
}

pub fn start(m: &Loaded, config: EngineConfig) -> Engine {
    Engine::start(
        Arc::clone(&m.model),
        Arc::clone(&m.tokenizer),
        Arc::clone(&m.cpu),
        config,
    )
    .expect("the engine starts")
}

/// A greedy request for `max_tokens` tokens with no stop tokens.
pub fn greedy(prompt: Vec<u32>, max_tokens: usize) -> Request {
    Request::new(
        prompt,
        SamplingParams::greedy(),
        StopCriteria::new(max_tokens, Vec::new()),
    )
}

/// Everything one request produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// `(prompt_tokens, cached_prompt_tokens)` from `Started`.
    pub started: Option<(usize, usize)>,
    /// Tokens per choice.
    pub tokens: Vec<Vec<u32>>,
    /// Text per choice (tokens' texts plus the finished text).
    pub text: Vec<String>,
    /// Finish reason per choice.
    pub reasons: Vec<Option<FinishReason>>,
    /// Top-logprob list lengths seen.
    pub top_logprob_lens: Vec<usize>,
    pub error: Option<String>,
}

/// Reads `handle` to its end.
pub fn collect(mut handle: RequestHandle, n: usize) -> Outcome {
    let mut out = Outcome {
        tokens: vec![Vec::new(); n],
        text: vec![String::new(); n],
        reasons: vec![None; n],
        ..Outcome::default()
    };
    while let Some(event) = handle.blocking_recv() {
        match event {
            RequestEvent::Started {
                prompt_tokens,
                cached_prompt_tokens,
            } => {
                assert!(out.started.is_none(), "Started comes once");
                out.started = Some((prompt_tokens, cached_prompt_tokens));
            }
            RequestEvent::Token { choice, token } => {
                assert!(out.reasons[choice].is_none(), "no token after Finished");
                out.tokens[choice].push(token.token);
                out.text[choice].push_str(&token.text);
                out.top_logprob_lens.push(token.top_logprobs.len());
            }
            RequestEvent::Finished {
                choice,
                reason,
                text,
                usage,
            } => {
                assert!(out.reasons[choice].is_none(), "one Finished per choice");
                assert!(
                    usage.completion_tokens >= out.tokens[choice].len(),
                    "usage counts every token"
                );
                out.text[choice].push_str(&text);
                out.reasons[choice] = Some(reason);
            }
            RequestEvent::Error { message } => out.error = Some(message),
        }
    }
    out
}

/// Runs `requests` concurrently and returns their outcomes in order.
pub fn run_all(engine: &Engine, requests: Vec<Request>) -> Vec<Outcome> {
    let handles: Vec<(RequestHandle, usize)> = requests
        .into_iter()
        .map(|r| {
            let n = r.n;
            (engine.submit(r).expect("submits"), n)
        })
        .collect();
    handles.into_iter().map(|(h, n)| collect(h, n)).collect()
}

/// Runs each request alone, one after the other.
pub fn run_alone(engine: &Engine, requests: Vec<Request>) -> Vec<Outcome> {
    requests
        .into_iter()
        .map(|r| run_all(engine, vec![r]).remove(0))
        .collect()
}

/// Waits (up to a minute, polling) until the engine has no waiting or running sequence.
pub fn wait_idle(engine: &Engine) -> EngineStats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = engine.stats();
        if stats.waiting == 0 && stats.running == 0 {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "the engine never went idle: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Deterministic pseudo-random prompt tokens in `3..n_vocab`.
pub fn prompt(seed: u64, len: usize, n_vocab: usize) -> Vec<u32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            3 + (x % (n_vocab as u64 - 3)) as u32
        })
        .collect()
}
