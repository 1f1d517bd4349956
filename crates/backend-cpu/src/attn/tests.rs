//! Every attention table the host supports agrees with the scalar twins over random inputs,
//! head widths 64, 80, 128, 256 (and ragged ones), odd row counts and 1..=7 queries per KV
//! head; the scalar kernels agree with an f64 computation over the decoded rows.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use skiff_tensor::DType;

use super::*;

const ROW_TYPES: [KvRowType; 3] = [KvRowType::F32, KvRowType::F16, KvRowType::Q8_0];
const HEAD_DIMS: [usize; 7] = [64, 80, 128, 256, 36, 7, 96];
const N_ROWS: [usize; 4] = [1, 3, 7, 17];
const N_QS: [usize; 4] = [1, 3, 5, 7];

fn random_f32(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `n_rows` encoded random rows and their decoded values.
fn random_rows(
    row_type: KvRowType,
    n_rows: usize,
    head_dim: usize,
    rng: &mut StdRng,
) -> (Vec<u8>, Vec<f32>) {
    let x = random_f32(n_rows * head_dim, rng);
    let row_bytes = row_type.row_bytes(head_dim);
    let mut bytes = vec![0u8; n_rows * row_bytes];
    let mut decoded = vec![0.0f32; n_rows * head_dim];
    for r in 0..n_rows {
        let out = &mut bytes[r * row_bytes..(r + 1) * row_bytes];
        encode_row(row_type, &x[r * head_dim..(r + 1) * head_dim], out);
        decode_row(
            row_type,
            out,
            &mut decoded[r * head_dim..(r + 1) * head_dim],
        );
    }
    (bytes, decoded)
}

fn assert_close(got: f32, want: f64, mag: f64, what: std::fmt::Arguments<'_>) {
    let tol = 1e-5 * mag.max(1.0);
    assert!(
        (f64::from(got) - want).abs() <= tol,
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

/// Key dots: SIMD vs scalar, and scalar vs f64 over the decoded rows.
#[test]
fn key_dot_matches_scalar_and_f64() {
    for row_type in ROW_TYPES {
        let scalar = scalar::kernels(row_type);
        for k in AttnKernels::all_supported(row_type) {
            for (head_dim, n_rows, n_q) in cases() {
                let seed = (head_dim * 1000 + n_rows * 10 + n_q) as u64;
                let mut rng = StdRng::seed_from_u64(seed);
                let (keys, decoded) = random_rows(row_type, n_rows, head_dim, &mut rng);
                let q = random_f32(n_q * head_dim, &mut rng);
                let mut got = vec![0.0f32; n_q * n_rows];
                let mut want = vec![0.0f32; n_q * n_rows];
                (k.key_dot)(&q, head_dim, &keys, &mut got);
                (scalar.key_dot)(&q, head_dim, &keys, &mut want);
                for i in 0..n_q {
                    for r in 0..n_rows {
                        let (qi, kr) = (
                            &q[i * head_dim..][..head_dim],
                            &decoded[r * head_dim..][..head_dim],
                        );
                        let exact: f64 = qi
                            .iter()
                            .zip(kr)
                            .map(|(a, b)| f64::from(*a) * f64::from(*b))
                            .sum();
                        let mag: f64 = qi
                            .iter()
                            .zip(kr)
                            .map(|(a, b)| f64::from((a * b).abs()))
                            .sum();
                        let what = format_args!(
                            "{row_type:?} isa={} hd={head_dim} rows={n_rows} q={i}/{n_q} r={r}",
                            k.isa
                        );
                        assert_close(want[i * n_rows + r], exact, mag, what);
                        assert_close(
                            got[i * n_rows + r],
                            f64::from(want[i * n_rows + r]),
                            mag,
                            what,
                        );
                    }
                }
            }
        }
    }
}

/// Value sums: SIMD vs scalar, and scalar vs f64, on top of a non-zero accumulator.
#[test]
fn value_axpy_matches_scalar_and_f64() {
    for row_type in ROW_TYPES {
        let scalar = scalar::kernels(row_type);
        for k in AttnKernels::all_supported(row_type) {
            for (head_dim, n_rows, n_q) in cases() {
                let seed = (head_dim * 1000 + n_rows * 10 + n_q) as u64 ^ 0xa11;
                let mut rng = StdRng::seed_from_u64(seed);
                let (values, decoded) = random_rows(row_type, n_rows, head_dim, &mut rng);
                let w = random_f32(n_q * n_rows, &mut rng);
                let acc0 = random_f32(n_q * head_dim, &mut rng);
                let (mut got, mut want) = (acc0.clone(), acc0.clone());
                (k.value_axpy)(&w, &values, head_dim, &mut got);
                (scalar.value_axpy)(&w, &values, head_dim, &mut want);
                for i in 0..n_q {
                    for d in 0..head_dim {
                        let terms = (0..n_rows).map(|r| {
                            f64::from(w[i * n_rows + r]) * f64::from(decoded[r * head_dim + d])
                        });
                        let exact = f64::from(acc0[i * head_dim + d]) + terms.clone().sum::<f64>();
                        let mag = f64::from(acc0[i * head_dim + d].abs())
                            + terms.map(f64::abs).sum::<f64>();
                        let what = format_args!(
                            "{row_type:?} isa={} hd={head_dim} rows={n_rows} q={i}/{n_q} d={d}",
                            k.isa
                        );
                        assert_close(want[i * head_dim + d], exact, mag, what);
                        assert_close(
                            got[i * head_dim + d],
                            f64::from(want[i * head_dim + d]),
                            mag,
                            what,
                        );
                    }
                }
            }
        }
    }
}

fn cases() -> impl Iterator<Item = (usize, usize, usize)> {
    HEAD_DIMS.into_iter().flat_map(|hd| {
        N_ROWS
            .into_iter()
            .flat_map(move |r| N_QS.into_iter().map(move |q| (hd, r, q)))
    })
}

/// The exponentials are within a few ulp of f64 `exp`, on every ISA, over ragged lengths;
/// arguments far below the maximum give (almost) nothing.
#[test]
fn exp_sum_matches_f64() {
    for k in AttnKernels::all_supported(KvRowType::F16) {
        for n in [1usize, 7, 8, 9, 31, 100] {
            let mut rng = StdRng::seed_from_u64(n as u64);
            let x: Vec<f32> = (0..n).map(|_| rng.random_range(-100.0f32..3.0)).collect();
            let max = 3.0f32;
            let mut got = x.clone();
            let sum = (k.exp_sum)(&mut got, max);
            let mut want_sum = 0.0f64;
            for (g, v) in got.iter().zip(&x) {
                let want = f64::from(*v - max).exp();
                want_sum += want;
                let tol = 4.0 * f64::from(f32::EPSILON) * want + 1e-37;
                assert!(
                    (f64::from(*g) - want).abs() <= tol,
                    "isa={} exp({v} - {max}): got {g}, want {want}",
                    k.isa
                );
            }
            assert!(
                (f64::from(sum) - want_sum).abs() <= 1e-6 * want_sum,
                "isa={} n={n} sum",
                k.isa
            );
        }
    }
}

/// Encoded rows decode as the reference formats do: f16 as `half`, q8_0 as
/// `skiff_tensor::quant::dequantize` (padding included), f32 exactly.
#[test]
fn encode_decode_follow_the_reference_formats() {
    let mut rng = StdRng::seed_from_u64(7);
    for head_dim in [64usize, 80, 7, 200] {
        let random = random_f32(head_dim, &mut rng);
        for row_type in ROW_TYPES {
            let mut x = random.clone();
            if row_type == KvRowType::F16 {
                // Halfway cases of f16 rounding (to even), a subnormal, the overflow boundary.
                let edges = [
                    1.0 + 2f32.powi(-11),
                    1.0 + 3.0 * 2f32.powi(-11),
                    -3e-6,
                    65520.0,
                ];
                for (v, e) in x.iter_mut().zip(edges) {
                    *v = e;
                }
            }
            let mut bytes = vec![0u8; row_type.row_bytes(head_dim)];
            encode_row(row_type, &x, &mut bytes);
            let mut back = vec![0.0f32; head_dim];
            decode_row(row_type, &bytes, &mut back);
            let want: Vec<f32> = match row_type {
                KvRowType::F32 => x.clone(),
                KvRowType::F16 => x.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect(),
                KvRowType::Q8_0 => {
                    let padded = head_dim.div_ceil(Q8_0_BLOCK_LEN) * Q8_0_BLOCK_LEN;
                    let mut all = vec![0.0f32; padded];
                    skiff_tensor::quant::dequantize(DType::Q8_0, &bytes, &mut all)
                        .expect("whole blocks");
                    for (v, orig) in all.iter().zip(&x) {
                        assert!(
                            (v - orig).abs() <= 1.0 / 127.0 + 1e-6,
                            "q8_0 error {v} vs {orig}"
                        );
                    }
                    all.truncate(head_dim);
                    all
                }
            };
            assert_eq!(back, want, "{row_type:?} head_dim {head_dim}");
        }
    }
}

/// The table follows the backend's ISA.
#[test]
fn cpu_hands_out_its_isa() {
    for k in Kernels::all_supported() {
        let cpu = Cpu::with_kernels(1, k);
        assert_eq!(cpu.attn_kernels(KvRowType::Q8_0).isa, k.isa);
    }
}
