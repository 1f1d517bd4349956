//! `--parallel`: llama-batched-bench's test, run through the batching engine
//! (`skiff_engine::Engine`, the path every served request takes). For each sequence count
//! `pl`: `pl` greedy requests with prompts of `pp` random tokens are submitted at once
//! (end-of-generation ignored); the engine's token budget covers all prompts, so the prompt
//! phase is one step, as batched-bench decodes all prompts in one call. Each request asks for
//! `tg + 1` tokens: the first comes out of the prompt pass, the other `tg` out of `tg` decode
//! steps of `pl` tokens each, as in batched-bench. `t_pp` runs from submission until every
//! sequence has its first token, `t_tg` from then until every sequence has finished.
//! Reported as batched-bench does: `t_pp`, `speed_pp = pl·pp / t_pp`, `t_tg`,
//! `speed_tg = pl·tg / t_tg`, `t = t_pp + t_tg`, `speed = (pl·pp + pl·tg) / t`,
//! `n_kv = pl·(pp + tg)`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use skiff_backend_cpu::Cpu;
use skiff_engine::{
    Engine, EngineConfig, Request, RequestEvent, RequestHandle, ShutdownMode, StopCriteria,
};
use skiff_models::{KvCache, Model};
use skiff_sample::SamplingParams;
use skiff_tokenizer::Tokenizer;

use super::{Args, ModelInfo, TokenRng};

/// Prompt tokens of the warmup request.
const WARMUP_TOKENS: usize = 16;

/// One batched-bench result.
#[derive(Clone, Debug, PartialEq)]
pub struct ParallelRow {
    /// Prompt tokens per sequence.
    pub pp: usize,
    /// Generated tokens per sequence.
    pub tg: usize,
    /// Sequences at once.
    pub pl: usize,
    /// Threads.
    pub n_threads: usize,
    /// Prompt phase, seconds.
    pub t_pp: f64,
    /// Decode phase, seconds.
    pub t_tg: f64,
}

impl ParallelRow {
    /// KV positions held at the end: `pl · (pp + tg)`.
    pub fn n_kv(&self) -> usize {
        self.pl * (self.pp + self.tg)
    }

    /// The row as llama-batched-bench's `--output-format jsonl` object.
    pub fn to_json(&self, n_kv_max: usize, n_batch: usize) -> Value {
        let speed = |tokens: usize, secs: f64| tokens as f64 / secs.max(1e-12);
        let mut o = Map::new();
        let mut put = |k: &str, v: Value| {
            o.insert(k.to_string(), v);
        };
        put("n_kv_max", json!(n_kv_max));
        put("n_batch", json!(n_batch));
        put("n_ubatch", json!(n_batch));
        put("is_pp_shared", json!(0));
        put("n_gpu_layers", json!(0));
        put("n_threads", json!(self.n_threads));
        put("n_threads_batch", json!(self.n_threads));
        put("pp", json!(self.pp));
        put("tg", json!(self.tg));
        put("pl", json!(self.pl));
        put("n_kv", json!(self.n_kv()));
        put("t_pp", json!(self.t_pp));
        put("speed_pp", json!(speed(self.pl * self.pp, self.t_pp)));
        put("t_tg", json!(self.t_tg));
        put("speed_tg", json!(speed(self.pl * self.tg, self.t_tg)));
        put("t", json!(self.t_pp + self.t_tg));
        put("speed", json!(speed(self.n_kv(), self.t_pp + self.t_tg)));
        Value::Object(o)
    }
}

/// Runs every (threads, pp, tg, pl) combination and prints the report.
pub fn run(
    args: &Args,
    parallel: &[usize],
    threads: &[usize],
    model: Model,
    tokenizer: Tokenizer,
    info: &ModelInfo,
) -> anyhow::Result<()> {
    let n_kv_max = combos(args, parallel)
        .map(|(pp, tg, pl)| pl * (pp + tg))
        .max()
        .unwrap_or(0);
    // One more generated token than tg: the first comes from the prompt pass.
    let max_len = combos(args, parallel)
        .map(|(pp, tg, _)| pp + tg + 1)
        .max()
        .unwrap_or(1);
    if max_len > model.max_seq_len() {
        bail!(
            "a sequence needs {max_len} positions but the model's context is {}",
            model.max_seq_len()
        );
    }
    let config = engine_config(args, parallel, &model, max_len);
    let (model, tokenizer) = (Arc::new(model), Arc::new(tokenizer));
    let mut rng = TokenRng::new(args.seed);
    for &n_threads in threads {
        let cpu = Arc::new(Cpu::new(n_threads));
        if !args.json {
            print_header(
                info,
                n_kv_max,
                config.max_batch_tokens,
                n_threads,
                cpu.isa().name(),
            );
        }
        let engine = Engine::start(
            Arc::clone(&model),
            Arc::clone(&tokenizer),
            Arc::clone(&cpu),
            config.clone(),
        )
        .context("starting the batching engine")?;
        // batched-bench's warmup: 16 random tokens (fewer if the context is shorter).
        let warmup: Vec<u32> = (0..WARMUP_TOKENS.min(config.max_seq_len - 1))
            .map(|_| rng.token(model.n_vocab()))
            .collect();
        run_requests(&engine, vec![warmup], 1)?;
        for (pp, tg, pl) in combos(args, parallel) {
            let prompts: Vec<Vec<u32>> = (0..pl)
                .map(|_| (0..pp).map(|_| rng.token(model.n_vocab())).collect())
                .collect();
            let timing = run_requests(&engine, prompts, tg + 1)?;
            let row = ParallelRow {
                pp,
                tg,
                pl,
                n_threads,
                t_pp: timing.t_pp,
                t_tg: timing.t_tg,
            };
            if args.json {
                println!("{}", row.to_json(n_kv_max, config.max_batch_tokens));
            } else {
                print_row(&row);
            }
        }
        engine.shutdown(ShutdownMode::Cancel);
    }
    Ok(())
}

/// The engine sized for the largest combination: every sequence running at once, the
/// whole prompt phase in one step (as batched-bench decodes all prompts in one call), KV
/// blocks for every position, no prefix cache (the prompts are random anyway).
fn engine_config(args: &Args, parallel: &[usize], model: &Model, max_len: usize) -> EngineConfig {
    let max_pl = parallel.iter().copied().max().unwrap_or(1);
    let max_prompt = combos(args, parallel)
        .map(|(pp, _, pl)| pp * pl)
        .max()
        .unwrap_or(1);
    let mut config = EngineConfig::for_model(model);
    config.max_batch_tokens = args.batch_size.max(max_prompt);
    config.max_running = config.max_running.max(max_pl);
    config.max_queue = config.max_queue.max(max_pl);
    config.kv_dtype = args.kv_type;
    config.max_seq_len = max_len.max(WARMUP_TOKENS + 1).min(model.max_seq_len());
    config.prefix_cache = false;
    let per_block =
        KvCache::bytes_per_block(&model.spec().hparams, config.block_size, args.kv_type);
    let blocks = max_pl * (config.max_seq_len.div_ceil(config.block_size) + 1);
    config.kv_memory_bytes = per_block * blocks;
    config
}

/// (pp, tg, pl) in batched-bench's loop order.
fn combos<'a>(
    args: &'a Args,
    parallel: &'a [usize],
) -> impl Iterator<Item = (usize, usize, usize)> + 'a {
    args.n_prompt.iter().flat_map(move |&pp| {
        args.n_gen
            .iter()
            .flat_map(move |&tg| parallel.iter().map(move |&pl| (pp, tg, pl)))
    })
}

/// When one request's events arrived.
struct Trace {
    first_token: Option<Instant>,
    finished: Instant,
}

/// The two phases of one measurement, seconds.
struct Timing {
    t_pp: f64,
    t_tg: f64,
}

/// Submits one greedy request per prompt (`max_tokens` each, end-of-generation ignored) and
/// times them: the prompt phase ends when every sequence has its first token (sampled from
/// the prompt pass), the decode phase when every sequence has finished.
fn run_requests(
    engine: &Engine,
    prompts: Vec<Vec<u32>>,
    max_tokens: usize,
) -> anyhow::Result<Timing> {
    let sampling = SamplingParams {
        temperature: 0.0,
        ..SamplingParams::default()
    };
    let started = Instant::now();
    let mut handles = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        let mut request = Request::new(
            prompt,
            sampling.clone(),
            StopCriteria::new(max_tokens, vec![]),
        );
        request.ignore_eos = true;
        handles.push(engine.submit(request).context("submitting a request")?);
    }
    let traces: Vec<anyhow::Result<Trace>> = std::thread::scope(|scope| {
        let workers: Vec<_> = handles
            .into_iter()
            .map(|mut h| scope.spawn(move || trace(&mut h)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("event reader panicked")))
            })
            .collect()
    });
    let traces = traces.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let prompt_done = traces
        .iter()
        .filter_map(|t| t.first_token)
        .max()
        .unwrap_or(started);
    let done = traces
        .iter()
        .map(|t| t.finished)
        .max()
        .unwrap_or(prompt_done);
    Ok(Timing {
        t_pp: (prompt_done - started).as_secs_f64(),
        t_tg: (done - prompt_done).as_secs_f64(),
    })
}

/// Reads one request's events to the end.
fn trace(handle: &mut RequestHandle) -> anyhow::Result<Trace> {
    let mut first_token = None;
    while let Some(event) = handle.blocking_recv() {
        match event {
            RequestEvent::Token { .. } => {
                first_token.get_or_insert_with(Instant::now);
            }
            RequestEvent::Finished { .. } => {
                return Ok(Trace {
                    first_token,
                    finished: Instant::now(),
                });
            }
            RequestEvent::Error { message } => bail!("the engine failed a request: {message}"),
            RequestEvent::Started { .. } => {}
        }
    }
    bail!("the engine closed a request's stream before it finished")
}

fn print_header(info: &ModelInfo, n_kv_max: usize, n_batch: usize, n_threads: usize, isa: &str) {
    println!();
    println!(
        "{}: n_kv_max = {n_kv_max}, n_batch = {n_batch}, n_threads = {n_threads}, backend = CPU {isa}",
        info.model_type
    );
    println!();
    println!(
        "|{:>6} | {:>6} | {:>4} | {:>6} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |",
        "PP", "TG", "B", "N_KV", "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "T s", "S t/s"
    );
    println!(
        "|{:->6}-|-{:->6}-|-{:->4}-|-{:->6}-|-{:->8}-|-{:->8}-|-{:->8}-|-{:->8}-|-{:->8}-|-{:->8}-|",
        "", "", "", "", "", "", "", "", "", ""
    );
}

fn print_row(row: &ParallelRow) {
    let speed = |tokens: usize, secs: f64| tokens as f64 / secs.max(1e-12);
    let t = row.t_pp + row.t_tg;
    println!(
        "|{:>6} | {:>6} | {:>4} | {:>6} | {:>8.3} | {:>8.2} | {:>8.3} | {:>8.2} | {:>8.3} | {:>8.2} |",
        row.pp,
        row.tg,
        row.pl,
        row.n_kv(),
        row.t_pp,
        speed(row.pl * row.pp, row.t_pp),
        row.t_tg,
        speed(row.pl * row.tg, row.t_tg),
        t,
        speed(row.n_kv(), t),
    );
}
