//! Measures the per-job overhead of the kernel thread pool: the time of `Cpu::parallel_for`
//! with one trivial item per thread, i.e. wake-up + completion barrier.
//!
//! Run with `cargo run --release -p skiff-backend-cpu --example pool_overhead [n_threads]`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use skiff_backend_cpu::Cpu;

fn main() {
    let n_threads: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let cpu = Cpu::new(n_threads);
    let counter = AtomicUsize::new(0);
    let job = |i: usize| {
        counter.fetch_add(black_box(i), Ordering::Relaxed);
    };
    for _ in 0..10_000 {
        cpu.parallel_for(n_threads, &job);
    }
    let n_jobs = 200_000u32;
    let start = Instant::now();
    for _ in 0..n_jobs {
        cpu.parallel_for(n_threads, &job);
    }
    let per_job = start.elapsed() / n_jobs;
    println!(
        "pool overhead, {n_threads} threads (back-to-back jobs): {} ns/job",
        per_job.as_nanos()
    );

    let n_jobs = 2_000u32;
    let mut total = std::time::Duration::ZERO;
    for _ in 0..n_jobs {
        std::thread::sleep(std::time::Duration::from_micros(20));
        let start = Instant::now();
        cpu.parallel_for(n_threads, &job);
        total += start.elapsed();
    }
    println!(
        "pool overhead, {n_threads} threads (after 20 µs idle, workers still spinning): {} ns/job",
        (total / n_jobs).as_nanos()
    );
    let mut total = std::time::Duration::ZERO;
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(1));
        let start = Instant::now();
        cpu.parallel_for(n_threads, &job);
        total += start.elapsed();
    }
    println!(
        "pool overhead, {n_threads} threads (after 1 ms idle, workers parked): {} ns/job",
        (total / 200).as_nanos()
    );
}
