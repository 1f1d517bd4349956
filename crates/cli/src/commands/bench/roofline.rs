//! `--roofline`: this machine's read bandwidth, and tg as a fraction of what it allows.
//!
//! Bandwidth: `n_threads` threads each stream-read (sum) their share of a buffer far larger
//! than any L3 cache; the best of several runs counts, per thread count. Bytes read per
//! decoded token: every tensor the forward pass reads (all matmul weights and the small
//! norm/bias vectors) — the token-embedding table only when it is also the LM head (a
//! decode step reads one embedding row otherwise) — plus the KV cache the step reads, on
//! average over the tg test (a token at position `i` reads `i + 1` cached positions).

use std::time::Instant;

use skiff_formats::ModelSpec;
use skiff_models::KvCache;
use skiff_models::kv::KvDtype;

use super::report::{Roofline, Row, Test};

/// Size of the streamed buffer: ≫ the largest L3 caches of the machines we run on.
const BUFFER_BYTES: usize = 512 << 20;
/// Timed passes per thread count; the fastest counts.
const RUNS: usize = 5;

/// Measured read bandwidth (bytes/s) for each of `threads`.
pub fn measure(threads: &[usize]) -> Vec<(usize, f64)> {
    let words = vec![1u64; BUFFER_BYTES / 8];
    threads
        .iter()
        .map(|&n| (n, best_bandwidth(&words, n)))
        .collect()
}

/// The best of [`RUNS`] passes of `n_threads` threads summing `words`, in bytes/s.
fn best_bandwidth(words: &[u64], n_threads: usize) -> f64 {
    let chunk = words.len().div_ceil(n_threads.max(1));
    let mut best = 0.0f64;
    for _ in 0..RUNS {
        let started = Instant::now();
        let total: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = words
                .chunks(chunk)
                .map(|part| scope.spawn(move || sum_words(part)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or(0))
                .fold(0u64, u64::wrapping_add)
        });
        std::hint::black_box(total);
        let secs = started.elapsed().as_secs_f64();
        best = best.max((words.len() * 8) as f64 / secs.max(1e-9));
    }
    best
}

/// Wrapping sum with independent lanes, so the loop vectorizes and is bound by loads.
fn sum_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let mut chunks = words.chunks_exact(8);
    for c in &mut chunks {
        for (lane, &w) in lanes.iter_mut().zip(c) {
            *lane = lane.wrapping_add(w);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0u64, |a, &w| a.wrapping_add(w));
    lanes.iter().fold(tail, |a, &l| a.wrapping_add(l))
}

/// Bytes read per decoded token for each tg test of `tests`, keyed by `n_gen`.
pub fn bytes_per_token(spec: &ModelSpec, tests: &[Test], kv_type: KvDtype) -> Vec<(usize, f64)> {
    let weights = weight_bytes_per_token(spec) as f64;
    // One position across all layers, keys and values, as the cache stores it.
    let per_position = KvCache::bytes_per_block(&spec.hparams, 1, kv_type) as f64;
    tests
        .iter()
        .filter(|t| t.n_prompt == 0 && t.n_gen > 0)
        .map(|t| {
            let mean_positions = (t.n_gen as f64 + 1.0) / 2.0;
            (t.n_gen, weights + per_position * mean_positions)
        })
        .collect()
}

/// Tensor bytes one decode step reads: everything but an embedding table that is not also
/// the LM head.
pub fn weight_bytes_per_token(spec: &ModelSpec) -> u64 {
    let tied = spec.tensor("output.weight").is_none();
    spec.tensors
        .iter()
        .filter(|t| tied || !t.name.ends_with("token_embd.weight"))
        .map(|t| t.n_bytes)
        .sum()
}

/// Attaches the roofline to every tg row.
pub fn annotate(rows: &mut [Row], bandwidth: &[(usize, f64)], per_token: &[(usize, f64)]) {
    for row in rows.iter_mut().filter(|r| r.test.n_prompt == 0) {
        let bw = bandwidth.iter().find(|(n, _)| *n == row.n_threads);
        let bytes = per_token.iter().find(|(n, _)| *n == row.test.n_gen);
        if let (Some(&(_, bandwidth)), Some(&(_, bytes_per_token))) = (bw, bytes) {
            row.roofline = Some(Roofline {
                bandwidth,
                bytes_per_token,
            });
        }
    }
}

/// Prints the roofline table under the results.
pub fn print(rows: &[Row]) {
    println!();
    println!(
        "| threads | test   | read GB/s | MB read/token | roofline t/s |      t/s | of roofline |"
    );
    println!(
        "| ------: | :----- | --------: | ------------: | -----------: | -------: | ----------: |"
    );
    for row in rows {
        if let Some(r) = &row.roofline {
            println!(
                "| {:>7} | {:<6} | {:>9.1} | {:>13.1} | {:>12.1} | {:>8.2} | {:>10.0}% |",
                row.n_threads,
                row.test.name(),
                r.bandwidth / 1e9,
                r.bytes_per_token / 1e6,
                r.max_ts(),
                row.avg_ts(),
                100.0 * row.avg_ts() / r.max_ts(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_words_matches_a_plain_sum() {
        let words: Vec<u64> = (0..1003).map(|i| i * 7 + 1).collect();
        assert_eq!(sum_words(&words), words.iter().sum::<u64>());
        assert_eq!(sum_words(&[]), 0);
    }

    #[test]
    fn bandwidth_is_positive() {
        let words = vec![3u64; 1 << 16];
        assert!(best_bandwidth(&words, 2) > 0.0);
    }
}
