//! Prints matmul throughput for SmolLM2-like shapes: GB/s of weights read per second of wall
//! time and per second of this process's CPU time (the latter stays meaningful on a busy
//! machine, where wall time includes time spent descheduled).
//!
//! Run with `cargo run --release -p skiff-backend-cpu --example matmul_speed [n_threads] [dtype]`.

use std::time::{Duration, Instant};

use skiff_backend_cpu::{Cpu, Weight};
use skiff_tensor::DType;

/// User + system CPU time of this process, from /proc/self/stat (Linux; clock ticks of 10 ms).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// SmolLM2-135M's shapes; the K-quants need rows of whole 256-value blocks, so they get
/// Gemma-3-270M's (640×1024 attn_output, 640×2048 ffn_down) plus SmolLM2's ffn_down and a
/// large memory-bound one.
fn shapes(dtype: DType) -> [(usize, usize); 4] {
    if dtype.block_len() == 256 {
        [(640, 1024), (640, 2048), (576, 1536), (16384, 1536)]
    } else {
        [(576, 576), (1536, 576), (576, 1536), (49152, 576)]
    }
}

fn main() {
    let n_threads: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let only = std::env::args().nth(2).and_then(|v| DType::from_name(&v));
    let cpu = Cpu::new(n_threads);
    println!("isa={} n_threads={n_threads}", cpu.isa());
    for dtype in [
        DType::Q4_1,
        DType::Q8_0,
        DType::Q4K,
        DType::Q6K,
        DType::Q5_0,
    ] {
        if only.is_some_and(|o| o != dtype) {
            continue;
        }
        for (n_out, n_in) in shapes(dtype) {
            for n_tokens in [1usize, 32] {
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
                let iters = (2_000_000_000 / (n_bytes * n_tokens)).max(3);
                cpu.matmul(&weight, &x, n_tokens, &mut y).expect("shapes");
                let (t0, c0) = (Instant::now(), cpu_time());
                for _ in 0..iters {
                    cpu.matmul(&weight, &x, n_tokens, &mut y).expect("shapes");
                }
                let wall = t0.elapsed().as_secs_f64();
                let cpu_s = cpu_time()
                    .zip(c0)
                    .map(|(a, b)| (a - b).as_secs_f64() / n_threads as f64);
                let gb = (n_bytes * iters) as f64 / 1e9;
                let gflop = (2 * n_out * n_in * n_tokens * iters) as f64 / 1e9;
                let per_cpu = cpu_s.map_or(String::from("?"), |c| format!("{:.1}", gb / c));
                println!(
                    "matmul/{}/{}/{n_out}x{n_in}x{n_tokens}: {:.1} GB/s wall ({per_cpu} GB/s per CPU-second/thread), {:.1} GFLOP/s, {:.1} µs/call",
                    dtype.name(),
                    cpu.isa(),
                    gb / wall,
                    gflop / wall,
                    wall * 1e6 / iters as f64
                );
            }
        }
    }
}
