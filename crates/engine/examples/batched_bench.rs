//! Run with: `cargo run --release -p skiff-engine --example batched_bench -- MODEL.gguf [PP] [TG] [PL,PL,...]`
//! (defaults: 128 prompt tokens, 128 generated tokens, 1,8,32 parallel sequences).
//!
//! Aggregate throughput of the batching engine with `PL` concurrent sequences, in the terms
//! of llama.cpp's `llama-batched-bench`: each sequence has its own `PP`-token prompt (no
//! shared prefix) and generates `TG` tokens (greedy, `ignore_eos`). `t_pp` is the time from
//! submitting until every sequence has its first token (all prompts processed), `t_tg` the
//! rest; `speed_tg = PL * (TG - 1) / t_tg` (the first token of each sequence comes from the
//! prompt pass). One line per `PL`.

use std::sync::Arc;
use std::time::Instant;

use skiff_backend_cpu::Cpu;
use skiff_engine::{Engine, EngineConfig, Request, RequestEvent, RequestHandle, StopCriteria};
use skiff_formats::ModelFile;
use skiff_models::Model;
use skiff_sample::SamplingParams;
use skiff_tokenizer::Tokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        return Err("usage: batched_bench MODEL.gguf [PP] [TG] [PL,PL,...]".into());
    };
    let pp: usize = args.get(1).map_or(Ok(128), |s| s.parse())?;
    let tg: usize = args.get(2).map_or(Ok(128), |s| s.parse())?;
    let pls: Vec<usize> = args
        .get(3)
        .map_or("1,8,32", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let file = Arc::new(ModelFile::open(std::path::Path::new(path))?);
    let tokenizer = Arc::new(Tokenizer::from_spec(&file.spec().tokenizer)?);
    let model = Arc::new(Model::load(file)?);
    let n_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let cpu = Arc::new(Cpu::new(n_threads));
    println!("n_threads {n_threads}, pp {pp}, tg {tg}");
    for pl in pls {
        let config = EngineConfig {
            max_seq_len: pp + tg,
            max_running: pl.max(1),
            prefix_cache: false,
            ..EngineConfig::for_model(&model)
        };
        let engine = Engine::start(model.clone(), tokenizer.clone(), cpu.clone(), config)?;
        let n_vocab = tokenizer.n_vocab() as u32;
        let t0 = Instant::now();
        let mut handles: Vec<RequestHandle> = (0..pl)
            .map(|i| {
                let prompt = (0..pp)
                    .map(|j| (1000 + (i * 7919 + j * 104_729) as u32) % n_vocab)
                    .collect();
                let mut r = Request::new(
                    prompt,
                    SamplingParams::greedy(),
                    StopCriteria::new(tg, Vec::new()),
                );
                r.ignore_eos = true;
                engine.submit(r)
            })
            .collect::<Result<_, _>>()?;
        for h in &mut handles {
            while let Some(event) = h.blocking_recv() {
                if matches!(event, RequestEvent::Token { .. }) {
                    break;
                }
            }
        }
        let t_pp = t0.elapsed().as_secs_f64();
        for h in &mut handles {
            while h.blocking_recv().is_some() {}
        }
        let t = t0.elapsed().as_secs_f64();
        let t_tg = t - t_pp;
        let stats = engine.stats();
        println!(
            "pl {pl:3}  t_pp {t_pp:7.3} s  speed_pp {:8.1} t/s  t_tg {t_tg:7.3} s  speed_tg {:8.1} t/s  \
             t {t:7.3} s  speed {:8.1} t/s  steps {}",
            (pp * pl) as f64 / t_pp,
            (pl * (tg - 1)) as f64 / t_tg,
            (pl * (pp + tg)) as f64 / t,
            stats.steps_total
        );
    }
    Ok(())
}
