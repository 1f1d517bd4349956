//! `--roofline`: this machine's read bandwidth, and tg as a fraction of what it allows.
//!
//! Bandwidth: `n_threads` threads each stream-read (sum) their share of a buffer far larger
//! than any L3 cache; the best of several runs counts, per thread count (`skiff bench` probes
//! before and after its runs and keeps the higher). The buffer lives on transparent huge pages
//! where the OS offers them, as the repacked weights do: on 4 KiB pages every 4 KiB read costs
//! a TLB miss (a two-level walk in a VM), which held one core of the Zen 1 machine the benches
//! ran on to 12 GB/s against 16 GB/s on huge pages, so a probe on small pages understated the
//! limit the kernels actually stream against. Bytes read per decoded token: every tensor the
//! forward pass reads (all matmul weights and the small norm/bias vectors) — the
//! token-embedding table only when it is also the LM head (a decode step reads one embedding
//! row otherwise) — plus the KV cache the step reads, on average over the tg test (a token at
//! position `i` reads `i + 1` cached positions).

use std::time::Instant;

use skiff_backend_cpu::HugeBuf;
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
    let mut buf = HugeBuf::zeroed(BUFFER_BYTES);
    // Written first: untouched anonymous pages all map the one zero page, which stays in
    // cache.
    buf.fill(1);
    threads
        .iter()
        .map(|&n| (n, best_bandwidth(&buf, n)))
        .collect()
}

/// The best of [`RUNS`] passes of `n_threads` threads summing `bytes` as words, in bytes/s.
fn best_bandwidth(bytes: &[u8], n_threads: usize) -> f64 {
    let chunk = bytes.len().div_ceil(n_threads.max(1)).next_multiple_of(64);
    let mut best = 0.0f64;
    for _ in 0..RUNS {
        let started = Instant::now();
        let total: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = bytes
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
        best = best.max(bytes.len() as f64 / secs.max(1e-9));
    }
    best
}

/// Wrapping sum of `bytes` as native-endian 8-byte words (a last partial word as bytes),
/// with independent lanes, so the loop vectorizes and is bound by loads.
fn sum_words(bytes: &[u8]) -> u64 {
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
    let mut lanes = [0u64; 8];
    let mut lines = bytes.chunks_exact(64);
    for line in &mut lines {
        for (lane, w) in lanes.iter_mut().zip(line.chunks_exact(8)) {
            *lane = lane.wrapping_add(word(w));
        }
    }
    let mut words = lines.remainder().chunks_exact(8);
    let mut tail = (&mut words).fold(0u64, |a, w| a.wrapping_add(word(w)));
    tail = words
        .remainder()
        .iter()
        .fold(tail, |a, &b| a.wrapping_add(u64::from(b)));
    lanes.iter().fold(tail, |a, &l| a.wrapping_add(l))
}

/// Per thread count, the higher bandwidth of two [`measure`]s of the same thread counts.
pub fn best_of(a: &[(usize, f64)], b: &[(usize, f64)]) -> Vec<(usize, f64)> {
    a.iter()
        .zip(b)
        .map(|(&(n, x), &(_, y))| (n, x.max(y)))
        .collect()
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
    fn sum_words_matches_a_plain_sum_of_words_and_trailing_bytes() {
        let words: Vec<u64> = (0..1003).map(|i| i * 7 + 1).collect();
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        bytes.extend([5, 6, 7]);
        let expected = words.iter().sum::<u64>() + 5 + 6 + 7;
        assert_eq!(sum_words(&bytes), expected);
        // Every length: full 64-byte lines, whole words past them, and loose bytes.
        for len in [0, 7, 8, 63, 64, 65, 72, 130] {
            let part = &bytes[..len];
            let plain: u64 = part
                .chunks(8)
                .map(|w| match <[u8; 8]>::try_from(w) {
                    Ok(w) => u64::from_ne_bytes(w),
                    Err(_) => w.iter().map(|&b| u64::from(b)).sum(),
                })
                .sum();
            assert_eq!(sum_words(part), plain, "len {len}");
        }
    }

    #[test]
    fn best_of_takes_the_higher_probe_per_thread_count() {
        let before = [(1, 10.0), (2, 25.0)];
        let after = [(1, 15.0), (2, 20.0)];
        assert_eq!(best_of(&before, &after), vec![(1, 15.0), (2, 25.0)]);
    }

    #[test]
    fn bandwidth_is_positive() {
        let bytes = vec![3u8; 1 << 19];
        assert!(best_bandwidth(&bytes, 2) > 0.0);
        assert!(best_bandwidth(&bytes[..1000], 3) > 0.0);
    }
}
