//! Prints `Cpu::matmul` throughput per weight type and activation row count: GB/s of weights
//! read (weight bytes ÷ time per call) and tokens (activation rows) per second, by wall time
//! and by this process's CPU time per thread (the latter stays meaningful on a busy machine,
//! where wall time includes time spent descheduled).
//!
//! Q4_0, Q4_1, Q5_0 and Q8_0 are measured through `Cpu::pack` + `Cpu::matmul_packed` (the
//! layout a model loads them into), or through `Cpu::matmul` with `SKIFF_NO_PACK=1` set; the
//! other types always through `Cpu::matmul`.
//!
//! Run with `cargo run --release -p skiff-backend-cpu --example matmul_speed [n_threads]
//! [dtype] [rows,rows,...]` (defaults: 1 thread, Q4_1 Q4_0 Q8_0 Q5_0 Q4_K Q6_K, rows
//! 1,4,16,64,512).

use std::time::{Duration, Instant};

use skiff_backend_cpu::{Cpu, Weight};
use skiff_tensor::DType;

/// CPU time of every thread of this process, from `/proc/self/task/*/schedstat` (Linux,
/// nanoseconds).
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// `(n_out, n_in)` shapes: a SmolLM2-135M projection (576 wide) for the 32-value formats, a
/// 1536-wide one for the K-quants (their rows are whole 256-value blocks), plus a large one
/// that does not fit in cache, for one row only.
fn shapes(dtype: DType, n_tokens: usize) -> Vec<(usize, usize)> {
    let (small, large) = if dtype.block_len() == 256 {
        ((2048, 1536), (16384, 1536))
    } else {
        ((1536, 576), (49152, 576))
    };
    if n_tokens == 1 {
        vec![small, large]
    } else {
        vec![small]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_threads: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(1);
    let only = args.get(2).and_then(|v| DType::from_name(v));
    let rows: Vec<usize> = args
        .get(3)
        .map(|v| v.split(',').filter_map(|r| r.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16, 64, 512]);
    let cpu = Cpu::new(n_threads);
    println!("isa={} n_threads={n_threads}", cpu.isa());
    for dtype in [
        DType::Q4_1,
        DType::Q4_0,
        DType::Q8_0,
        DType::Q5_0,
        DType::Q4K,
        DType::Q6K,
    ] {
        if only.is_some_and(|o| o != dtype) {
            continue;
        }
        for &n_tokens in &rows {
            for (n_out, n_in) in shapes(dtype, n_tokens) {
                measure(&cpu, dtype, (n_out, n_in), n_tokens);
            }
        }
    }
}

fn measure(cpu: &Cpu, dtype: DType, (n_out, n_in): (usize, usize), n_tokens: usize) {
    let n_bytes = n_out * n_in / dtype.block_len() * dtype.block_bytes();
    // Zero bits with a zero scale: the speed does not depend on the values.
    let w = vec![0u8; n_bytes];
    let x: Vec<f32> = (0..n_in * n_tokens).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut y = vec![0.0f32; n_out * n_tokens];
    let weight = Weight {
        dtype,
        data: &w,
        n_out,
        n_in,
    };
    let packed = if std::env::var_os("SKIFF_NO_PACK").is_some() {
        None
    } else {
        cpu.pack(&weight).expect("shapes")
    };
    let mut run = || match &packed {
        Some(p) => cpu.matmul_packed(p, &x, n_tokens, &mut y).expect("shapes"),
        None => cpu.matmul(&weight, &x, n_tokens, &mut y).expect("shapes"),
    };
    run();
    let (t0, c0) = (Instant::now(), cpu_time());
    let mut iters = 0usize;
    while iters < 3 || t0.elapsed() < Duration::from_millis(300) {
        run();
        iters += 1;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu_s = cpu_time()
        .zip(c0)
        .map(|(a, b)| (a - b).as_secs_f64() / cpu.n_threads() as f64);
    let gb = (n_bytes * iters) as f64 / 1e9;
    let gflop = (2 * n_out * n_in * n_tokens * iters) as f64 / 1e9;
    let tokens = (n_tokens * iters) as f64;
    let per_cpu = |v: f64| cpu_s.map_or(String::from("?"), |c| format!("{:.1}", v / c));
    println!(
        "matmul/{}{}/{}/t{}/{n_out}x{n_in}/rows={n_tokens}: {:.2} GB/s, {:.1} GFLOP/s, {:.0} rows/s, {:.1} µs/call | per CPU-second per thread: {} GB/s, {} GFLOP/s",
        dtype.name(),
        if packed.is_some() { "-packed" } else { "" },
        cpu.isa(),
        cpu.n_threads(),
        gb / wall,
        gflop / wall,
        tokens / wall,
        wall * 1e6 / iters as f64,
        per_cpu(gb),
        per_cpu(gflop),
    );
}
