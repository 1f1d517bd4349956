//! Run with:
//! `cargo run --release -p skiff-models --example decode_attention -- <model.gguf> [n_ctx] [n_threads] [kv_dtype] [reps]`
//! (defaults: 1000 positions, 2 threads, f32, 20 decode steps per measurement).
//!
//! Measures what attention over a long KV cache costs per decoded token: the time of one
//! decode step with `n_ctx` cached positions minus the time of one with 16. Everything else
//! in a step (matrix products, norms, RoPE) is the same in both, so the difference is the
//! attention's share (over all layers). Each step is rolled back with `truncate_slot`, so
//! every timed step sees the same context. Prints the median of 5 rounds.
//!
//! With one thread, times are this thread's CPU time (from `/proc/thread-self/schedstat` on
//! Linux), so time spent descheduled on a busy machine does not count; with more threads (or
//! elsewhere) they are wall time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use skiff_backend_cpu::Cpu;
use skiff_formats::ModelFile;
use skiff_models::kv::KvDtype;
use skiff_models::{Batch, KvCache, Model};

const SHORT: usize = 16;

/// Nanoseconds this thread has run on a CPU, when the kernel exposes it.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Seconds since `start`: thread CPU time when `cpu_time` and available, else wall time.
fn now(cpu_time: bool) -> f64 {
    match thread_cpu_ns().filter(|_| cpu_time) {
        Some(ns) => ns as f64 * 1e-9,
        None => {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            START.get_or_init(Instant::now).elapsed().as_secs_f64()
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(
        args.first()
            .ok_or("usage: decode_attention <model.gguf> [n_ctx] [n_threads] [kv_dtype] [reps]")?,
    );
    let n_ctx: usize = args.get(1).map_or(Ok(1000), |a| a.parse())?;
    let n_threads: usize = args.get(2).map_or(Ok(2), |a| a.parse())?;
    let dtype: KvDtype = args.get(3).map_or(Ok(KvDtype::F32), |a| a.parse())?;
    let reps: usize = args.get(4).map_or(Ok(20), |a| a.parse())?;
    let model = Model::load(Arc::new(ModelFile::open(&path)?))?;
    let cpu = Cpu::new(n_threads);
    let max_seq_len = n_ctx + 1;
    let mut kv = KvCache::with_dtype(&model.spec().hparams, 2, max_seq_len, dtype);
    let n_vocab = model.n_vocab() as u32;
    let tokens: Vec<u32> = (0..n_ctx as u32)
        .map(|i| (i * 7919 + 13) % n_vocab)
        .collect();
    for (slot, len) in [(0, n_ctx), (1, SHORT)] {
        for start in (0..len).step_by(256) {
            let end = (start + 256).min(len);
            model.forward(
                &Batch::for_sequence(&tokens[start..end], start as u32, slot),
                &mut kv,
                &cpu,
            )?;
        }
    }
    let mut step = |slot: usize, pos: usize| -> Result<f64, Box<dyn std::error::Error>> {
        let t = now(n_threads == 1);
        for _ in 0..reps {
            model.forward(&Batch::for_sequence(&[1], pos as u32, slot), &mut kv, &cpu)?;
            kv.truncate_slot(slot, pos)?;
        }
        Ok((now(n_threads == 1) - t) / reps as f64)
    };
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let long = step(0, n_ctx)?;
        let short = step(1, SHORT)?;
        rounds.push((long - short, long, short));
    }
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (attn, long, short) = rounds[rounds.len() / 2];
    println!(
        "{} n_ctx={n_ctx} threads={n_threads} kv={dtype}: step at {n_ctx} = {:.3} ms, at {SHORT} = {:.3} ms, attention over {n_ctx} positions = {:.3} ms/token",
        model.spec().arch,
        long * 1e3,
        short * 1e3,
        attn * 1e3
    );
    Ok(())
}
