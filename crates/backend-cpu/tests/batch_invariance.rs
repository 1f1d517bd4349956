//! A token's product must not depend on which other tokens share the call: the batching
//! engine mixes sequences freely and promises the same greedy output as a sequence run
//! alone, so every row count, kernel path (single row, multi-row, packed) and thread count
//! must give bit-identical results for the same activation row.

mod common;

use common::*;
use skiff_backend_cpu::{Cpu, Kernels, Weight};

/// Row `t` of an `n_tokens` call equals the same row multiplied alone, bit for bit.
#[test]
fn each_row_equals_itself_alone() {
    let (n_out, n_in) = (24usize, 512usize);
    // The opt-in 8-row batch kernels (`Cpu::with_batch_kernels`) sum in another order and are
    // deliberately left out: they trade this property for prompt speed.
    for k in Kernels::all_supported() {
        let cpu = Cpu::with_kernels(2, k);
        for dtype in WEIGHT_DTYPES
            .into_iter()
            .filter(|d| n_in % d.block_len() == 0)
        {
            let mut rng = rng(0xba7c4 ^ dtype as u64);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let packed = cpu.pack(&weight).expect("valid weight");
            let run = |x: &[f32], n_tokens: usize, y: &mut [f32]| match &packed {
                Some(p) => cpu.matmul_packed(p, x, n_tokens, y).expect("shapes"),
                None => cpu.matmul(&weight, x, n_tokens, y).expect("shapes"),
            };
            for n_tokens in [2usize, 3, 4, 5, 7, 8, 9, 16, 33] {
                let x = random_acts(n_tokens * n_in, &mut rng);
                let mut y = vec![f32::NAN; n_tokens * n_out];
                run(&x, n_tokens, &mut y);
                for t in 0..n_tokens {
                    let mut alone = vec![f32::NAN; n_out];
                    run(&x[t * n_in..(t + 1) * n_in], 1, &mut alone);
                    let batched = &y[t * n_out..(t + 1) * n_out];
                    assert!(
                        alone
                            .iter()
                            .zip(batched)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{} {dtype:?} (packed: {}): row {t} of {n_tokens} differs \
                         from the row alone: {alone:?} vs {batched:?}",
                        k.isa,
                        packed.is_some()
                    );
                }
            }
        }
    }
}

/// The row kernels themselves: a row's dot product inside a group of up to `MAX_ROWS`
/// activation rows equals the same row's single-row call, bit for bit.
#[test]
fn grouped_row_kernels_equal_single_row_calls() {
    use skiff_backend_cpu::ActFormat;
    use skiff_backend_cpu::kernels::MAX_ROWS;
    for k in Kernels::all_supported() {
        for dtype in WEIGHT_DTYPES {
            let n_in = 512;
            let format = ActFormat::for_weight(dtype).expect("weight dtype");
            let mut rng = rng(0x9a7 ^ dtype as u64);
            let w = random_weight(dtype, 1, n_in, &mut rng);
            let x = random_acts(MAX_ROWS * n_in, &mut rng);
            let acts = quantize_acts(format, &x, n_in);
            let stride = format.row_bytes(n_in);
            let dot = k.vec_dot(dtype).expect("kernel");
            for n_rows in 2..=MAX_ROWS {
                let mut group = [0.0f32; MAX_ROWS];
                dot(&w, &acts, stride, &mut group[..n_rows]);
                for (r, g) in group[..n_rows].iter().enumerate() {
                    let mut single = [0.0f32];
                    dot(&w, &acts[r * stride..], stride, &mut single);
                    assert_eq!(
                        g.to_bits(),
                        single[0].to_bits(),
                        "{} {dtype:?}: row {r} of a {n_rows}-row group is {g:e}, alone {:e}",
                        k.isa,
                        single[0]
                    );
                }
            }
        }
    }
}
