//! The public face of the batching engine: [`Engine`] (a cloneable handle to the core
//! thread), [`Request`] in, [`RequestHandle`] streaming [`RequestEvent`]s out, and
//! [`EngineStats`] for metrics.
//!
//! Everything here runs on the caller's thread and never waits on compute: `submit`
//! validates the request against the model and the configuration, then hands it to the
//! core thread over a channel. The core thread (`core::worker`) is the only owner of the
//! scheduler and the KV cache.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use skiff_backend_cpu::Cpu;
use skiff_models::Model;
use skiff_sample::SamplingParams;
use skiff_tokenizer::Tokenizer;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub use skiff_models::kv::KvDtype;

use crate::core::worker::{self, Command, WorkerInit};
use crate::error::{EngineError, Result};
use crate::generate::{FinishReason, TokenEvent, Usage};
use crate::stop::StopCriteria;

/// The most parallel samples (`n`) one request may ask for.
pub const MAX_N: usize = 16;
/// The most alternatives per token one request may ask for with `logprobs`.
pub const MAX_TOP_LOGPROBS: usize = skiff_sample::params::MAX_TOP_LOGPROBS;

/// How an [`Engine`] is sized. Build one with [`EngineConfig::for_model`] and adjust fields.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Token budget of one step: decode tokens plus prefill chunks, at least 1 (default 512).
    pub max_batch_tokens: usize,
    /// The most sequences (choices) in the running set, at least 1 (default 64).
    pub max_running: usize,
    /// Waiting requests beyond which `submit` fails with [`EngineError::QueueFull`] (default 256).
    pub max_queue: usize,
    /// KV block pool budget in bytes; the pool holds `kv_memory_bytes / bytes_per_block` blocks.
    pub kv_memory_bytes: usize,
    /// Positions per KV block, at least 1 (default 16).
    pub block_size: usize,
    /// Element type of the cached keys and values (default f16).
    pub kv_dtype: KvDtype,
    /// Per-sequence context cap (prompt plus generation), at most the model's context.
    pub max_seq_len: usize,
    /// Share full prompt blocks between requests through the prefix cache (default true).
    pub prefix_cache: bool,
}

/// Fraction of the machine's available memory the default KV pool may take, in percent.
const DEFAULT_KV_RAM_PERCENT: usize = 25;
/// Context cap of the default configuration.
const DEFAULT_MAX_SEQ_LEN: usize = 4096;

impl EngineConfig {
    /// Defaults for `model`: `max_seq_len = min(model context, 4096)`, and a KV pool big
    /// enough for `max_running / 4` full-length sequences, capped at 25% of the available RAM
    /// (but always at least one full-length sequence).
    pub fn for_model(model: &Model) -> EngineConfig {
        let max_running = 64;
        let block_size = 16;
        let kv_dtype = KvDtype::default();
        let max_seq_len = model.max_seq_len().min(DEFAULT_MAX_SEQ_LEN);
        let per_block =
            skiff_models::KvCache::bytes_per_block(&model.spec().hparams, block_size, kv_dtype);
        let per_seq = max_seq_len.div_ceil(block_size) * per_block;
        let wanted = per_seq * (max_running / 4).max(1);
        let kv_memory_bytes = match available_memory_bytes() {
            Some(avail) => wanted
                .min(avail / 100 * DEFAULT_KV_RAM_PERCENT)
                .max(per_seq),
            None => wanted,
        };
        EngineConfig {
            max_batch_tokens: 512,
            max_running,
            max_queue: 256,
            kv_memory_bytes,
            block_size,
            kv_dtype,
            max_seq_len,
            prefix_cache: true,
        }
    }
}

/// `MemAvailable` from `/proc/meminfo`, when the platform has it.
fn available_memory_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// How [`Engine::shutdown`] treats requests still in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Let every admitted and waiting request run to its end.
    Drain,
    /// End them now with [`FinishReason::Cancelled`].
    Cancel,
}

/// One generation request: a tokenized prompt and how to continue it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Prompt token ids (at least one).
    pub prompt: Vec<u32>,
    /// How to pick tokens. For `n > 1`, choice `i` samples with seed `seed + i` (the seed
    /// drawn once when `seed` is `None`).
    pub sampling: SamplingParams,
    /// When each choice stops. `prompt.len() + max_tokens` must fit `max_seq_len`.
    pub stop: StopCriteria,
    /// Choices to generate, `1..=MAX_N`; they share the prompt's KV blocks.
    pub n: usize,
    /// `Some(k)`: report `k` alternatives per token (`k <= MAX_TOP_LOGPROBS`); the chosen
    /// token's log-probability is always reported.
    pub logprobs: Option<usize>,
    /// Per-tenant salt mixed into the prefix-cache hash chain: requests with different
    /// salts never share cached blocks.
    pub cache_salt: u64,
    /// Keep generating through the tokenizer's end-of-generation tokens (benchmarks); other
    /// stop tokens still apply.
    pub ignore_eos: bool,
}

impl Request {
    /// A request for one choice, no alternatives, salt 0.
    pub fn new(prompt: Vec<u32>, sampling: SamplingParams, stop: StopCriteria) -> Request {
        Request {
            prompt,
            sampling,
            stop,
            n: 1,
            logprobs: None,
            cache_salt: 0,
            ignore_eos: false,
        }
    }
}

/// What a request's stream carries, in order: `Started`, then `Token`s and one `Finished`
/// per choice (choices interleave), or an `Error` that ends every remaining choice.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestEvent {
    /// Once, when the request's prompt is first scheduled.
    Started {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Leading prompt tokens found in the prefix cache and not computed again.
        cached_prompt_tokens: usize,
    },
    /// A generated token of choice `choice` (stop tokens are not sent as tokens), with the
    /// text it released.
    Token {
        /// Index of the choice, `0..n`.
        choice: usize,
        /// The token, its text and log-probabilities.
        token: TokenEvent,
    },
    /// Choice `choice` ended.
    Finished {
        /// Index of the choice, `0..n`.
        choice: usize,
        /// Why it ended.
        reason: FinishReason,
        /// Text released at the end: held-back text that did not become a stop string.
        text: String,
        /// Token counts and timings of this choice.
        usage: Usage,
    },
    /// The request failed inside the engine (its other choices end too); the engine stays up.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// A snapshot of the engine's counters, updated once per step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests waiting for admission, preempted sequences included.
    pub waiting: usize,
    /// Sequences (choices) in the running set.
    pub running: usize,
    /// Preemptions since start.
    pub preempted_total: u64,
    /// Blocks in the KV pool.
    pub kv_blocks_total: usize,
    /// Blocks held by at least one sequence.
    pub kv_blocks_used: usize,
    /// Blocks held by no sequence but kept for the prefix cache (evictable).
    pub kv_blocks_cached: usize,
    /// Prompt tokens served from the prefix cache since start.
    pub prefix_hit_tokens_total: u64,
    /// Prompt tokens looked up in the prefix cache since start.
    pub prefix_lookup_tokens_total: u64,
    /// Tokens computed by forward passes for prompts (prefill, recomputation included).
    pub prompt_tokens_total: u64,
    /// Tokens sampled since start.
    pub generated_tokens_total: u64,
    /// Steps (batched forward passes) since start.
    pub steps_total: u64,
}

/// State shared by every clone of an [`Engine`].
struct Inner {
    config: EngineConfig,
    n_vocab: usize,
    commands: mpsc::Sender<Command>,
    stats: Arc<Mutex<EngineStats>>,
    /// Requests submitted and not yet admitted (the core decrements it on admission).
    queued: Arc<AtomicUsize>,
    shutting_down: AtomicBool,
    next_id: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    /// The last handle went away: cancel what is in flight and wait for the core thread.
    fn drop(&mut self) {
        stop_core(self, ShutdownMode::Cancel);
    }
}

/// Tells the core to stop and waits for its thread; later calls return at once.
fn stop_core(inner: &Inner, mode: ShutdownMode) {
    inner.shutting_down.store(true, Ordering::SeqCst);
    let mut thread = inner
        .thread
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(join) = thread.take() {
        // The core may already have exited (it ends when its inbox closes); then there is
        // nobody to tell.
        let _ = inner.commands.send(Command::Shutdown(mode));
        // A panicked core thread has nothing more to report.
        let _ = join.join();
    }
}

/// Handle to the engine core thread. Cheap to clone, `Send + Sync`. The core stops on
/// [`Engine::shutdown`] or when the last clone drops.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Sizes the KV pool from `config` and starts the core thread.
    ///
    /// Errors: [`EngineError::InvalidParam`] for a zero budget, block size or running
    /// limit, a `max_seq_len` above the model's context, or a pool too small for one
    /// `max_seq_len` sequence; a KV cache the model cannot use.
    pub fn start(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        cpu: Arc<Cpu>,
        config: EngineConfig,
    ) -> Result<Engine> {
        let n_vocab = model.n_vocab();
        let stats = Arc::new(Mutex::new(EngineStats::default()));
        let queued = Arc::new(AtomicUsize::new(0));
        let (commands, inbox) = mpsc::channel();
        let init = WorkerInit {
            model,
            tokenizer,
            cpu,
            config: config.clone(),
            stats: Arc::clone(&stats),
            queued: Arc::clone(&queued),
        };
        let thread = worker::spawn(init, inbox)?;
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                n_vocab,
                commands,
                stats,
                queued,
                shutting_down: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Validates `request` and enqueues it; never waits on compute.
    ///
    /// Errors: [`EngineError::EmptyPrompt`]; [`EngineError::ContextExceeded`] when
    /// `prompt + max_tokens > max_seq_len`; [`EngineError::InvalidRequest`] for `n`,
    /// `logprobs`, sampling parameters or stop criteria; [`EngineError::QueueFull`];
    /// [`EngineError::ShuttingDown`].
    pub fn submit(&self, mut request: Request) -> Result<RequestHandle> {
        let inner = &self.inner;
        validate(&request, inner.n_vocab, &inner.config)?;
        if inner.shutting_down.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let limit = inner.config.max_queue;
        inner
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q < limit).then_some(q + 1)
            })
            .map_err(|_| EngineError::QueueFull { limit })?;
        if let Some(k) = request.logprobs {
            request.sampling.top_logprobs = k;
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        let command = Command::Submit(Box::new(worker::Submitted {
            id,
            request,
            events,
        }));
        if inner.commands.send(command).is_err() {
            inner.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::ShuttingDown);
        }
        Ok(RequestHandle {
            id,
            events: receiver,
            commands: inner.commands.clone(),
        })
    }

    /// A snapshot of the counters (cheap: one short lock).
    pub fn stats(&self) -> EngineStats {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops admitting (`submit` then fails with [`EngineError::ShuttingDown`]) and ends the
    /// core: `Drain` lets in-flight requests finish, `Cancel` finishes them now with
    /// [`FinishReason::Cancelled`]. Returns when the core thread has exited.
    pub fn shutdown(&self, mode: ShutdownMode) {
        stop_core(&self.inner, mode);
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Whether the core thread is still running: false after [`Engine::shutdown`], and false
    /// if the core ended on its own (a panic), when nothing submitted will ever be served.
    pub fn is_running(&self) -> bool {
        self.inner
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|join| !join.is_finished())
    }
}

/// Checks a request against the model and the configuration before it is queued.
fn validate(request: &Request, n_vocab: usize, config: &EngineConfig) -> Result<()> {
    if request.prompt.is_empty() {
        return Err(EngineError::EmptyPrompt);
    }
    let prompt_tokens = request.prompt.len();
    let max_tokens = request.stop.max_tokens;
    if prompt_tokens.saturating_add(max_tokens) > config.max_seq_len {
        return Err(EngineError::ContextExceeded {
            prompt_tokens,
            max_tokens,
            limit: config.max_seq_len,
        });
    }
    if let Some(&token) = request.prompt.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(EngineError::InvalidRequest {
            param: "prompt",
            message: format!("token id {token} is outside the vocabulary of {n_vocab} tokens"),
        });
    }
    let max_n = MAX_N.min(config.max_running);
    if !(1..=max_n).contains(&request.n) {
        return Err(EngineError::InvalidRequest {
            param: "n",
            message: format!(
                "n = {} must be in 1..={max_n} (MAX_N, and at most max_running choices)",
                request.n
            ),
        });
    }
    if let Some(k) = request.logprobs.filter(|&k| k > MAX_TOP_LOGPROBS) {
        return Err(EngineError::InvalidRequest {
            param: "logprobs",
            message: format!("logprobs = {k} must be at most {MAX_TOP_LOGPROBS}"),
        });
    }
    request
        .sampling
        .validate_for_vocab(n_vocab)
        .map_err(|e| EngineError::InvalidRequest {
            param: sample_error_param(&e),
            message: e.to_string(),
        })?;
    request.stop.validate().map_err(|e| match e {
        EngineError::InvalidParam { param, .. } => EngineError::InvalidRequest {
            param,
            message: e.to_string(),
        },
        other => other,
    })
}

/// The parameter a sampling error is about.
fn sample_error_param(error: &skiff_sample::SampleError) -> &'static str {
    use skiff_sample::SampleError;
    match error {
        SampleError::OutOfRange { param, .. } | SampleError::TooMany { param, .. } => param,
        SampleError::BiasTokenOutOfRange { .. } => "logit_bias",
        SampleError::EmptyLogits | SampleError::NoFiniteLogits { .. } => "sampling",
    }
}

/// The event stream of one submitted request. Dropping it cancels the request.
#[derive(Debug)]
pub struct RequestHandle {
    id: u64,
    events: UnboundedReceiver<RequestEvent>,
    commands: mpsc::Sender<Command>,
}

impl RequestHandle {
    /// The engine-wide id of this request.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next event; `None` once the request has ended and every event was read.
    pub async fn recv(&mut self) -> Option<RequestEvent> {
        self.events.recv().await
    }

    /// The next event, blocking the thread (never call it from async code); `None` once
    /// the request has ended and every event was read.
    pub fn blocking_recv(&mut self) -> Option<RequestEvent> {
        self.events.blocking_recv()
    }

    /// Asks the core to stop this request; its choices finish with
    /// [`FinishReason::Cancelled`] and its blocks are freed at the next step.
    pub fn cancel(&self) {
        // A core that has exited has nothing left to cancel.
        let _ = self.commands.send(Command::Cancel(self.id));
    }
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The sending half of a request's event stream (used by the core).
pub(crate) type EventSender = UnboundedSender<RequestEvent>;
