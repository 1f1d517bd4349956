//! Prints the speed of each dot kernel on an L1-resident 4096-value weight row, for every ISA
//! this CPU supports, with 1 and `MAX_ROWS` activation rows: the compute cost per block with
//! memory out of the picture.
//!
//! Times are this thread's CPU time (from `/proc/thread-self/schedstat` on Linux, wall time
//! elsewhere), so time spent descheduled on a busy machine does not count.
//!
//! Run with `cargo run --release -p skiff-backend-cpu --example vec_dot_speed`.

use std::hint::black_box;
use std::time::Instant;

/// Nanoseconds this thread has run on a CPU, when the kernel exposes it.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

use skiff_backend_cpu::kernels::MAX_ROWS;
use skiff_backend_cpu::{ActFormat, Kernels, PACKED_DTYPES};
use skiff_tensor::DType;

fn main() {
    let n_in = 4096;
    for k in Kernels::all_supported() {
        for dtype in PACKED_DTYPES.into_iter().chain([DType::F16]) {
            let w = vec![0u8; n_in / dtype.block_len() * dtype.block_bytes()];
            let format = ActFormat::for_weight(dtype).expect("weight dtype");
            let stride = format.row_bytes(n_in);
            let acts = vec![0u8; stride * MAX_ROWS];
            let dot = k.vec_dot(dtype).expect("weight dtype");
            for n_rows in [1, MAX_ROWS] {
                let mut out = [0.0f32; MAX_ROWS];
                let iters = 20_000;
                let (start, cpu0) = (Instant::now(), thread_cpu_ns());
                for _ in 0..iters {
                    dot(black_box(&w), black_box(&acts), stride, &mut out[..n_rows]);
                }
                let total_ns = match (cpu0, thread_cpu_ns()) {
                    (Some(a), Some(b)) => (b - a) as f64,
                    _ => start.elapsed().as_nanos() as f64,
                };
                let ns = total_ns / f64::from(iters);
                println!(
                    "vec_dot/{}/{}/{n_in}x{n_rows}: {:.2} ns per 32 weights, {:.1} GB/s of weights",
                    dtype.name(),
                    k.isa,
                    ns * 32.0 / n_in as f64,
                    w.len() as f64 / ns
                );
            }
        }
    }
}
