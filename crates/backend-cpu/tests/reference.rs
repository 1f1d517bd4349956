//! Checks against `skiff_tensor::quant`, the scalar reference for the on-disk formats:
//! the activation quantizers are bit-exact with its `quantize`, and matmul on every ISA agrees
//! with an f64 product of its dequantized weights within the activation-quantization bound.

mod common;

use common::*;
use skiff_backend_cpu::{ActFormat, Cpu, Kernels, Weight};
use skiff_tensor::DType;
use skiff_tensor::quant::{dequantize, quantize};

/// Relative slack on top of the quantization bound: f16 rounding of Q8_1's `s`, f32 sums.
const TOL_REF_REL: f64 = 2e-3;
/// Per-value activation error, in units of the block's `d = amax / 127`: half a step from
/// rounding plus up to 127 × 2^-11 from storing `d` as f16.
const ACT_ERR_STEPS: f64 = 0.5 + 127.0 / 2048.0;

/// The activation quantizers are bit-exact with `skiff_tensor::quant::quantize`.
#[test]
fn activation_quantizers_match_tensor_reference() {
    for k in Kernels::all_supported() {
        for (format, dtype) in [
            (ActFormat::Q8_0, DType::Q8_0),
            (ActFormat::Q8_1, DType::Q8_1),
            (ActFormat::Q8K, DType::Q8K),
        ] {
            for n in [256usize, 768, 2816] {
                let seed = 0x9e0 + n as u64 + dtype as u64;
                let mut x = random_acts(n, &mut rng(seed));
                x[..32].fill(0.0);
                x[300 % n] = -7.25;
                let mut want = vec![0u8; format.row_bytes(n)];
                quantize(dtype, &x, &mut want).expect("finite input");
                let mut got = vec![0u8; format.row_bytes(n)];
                k.quantize(format).expect("quantizer")(&x, &mut got);
                let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
                assert_eq!(
                    first_diff, None,
                    "isa={} {dtype} n={n} seed={seed:#x}",
                    k.isa
                );
            }
        }
    }
}

/// Per-value activation step `d` of each input value, as the weight's activation format sees it.
fn act_steps(format: ActFormat, x: &[f32]) -> Vec<f64> {
    let block_len = format.block_len();
    if format == ActFormat::F32 {
        return vec![0.0; x.len()];
    }
    x.chunks(block_len)
        .flat_map(|b| {
            let amax = b.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
            std::iter::repeat_n(amax / 127.0, b.len())
        })
        .collect()
}

/// matmul agrees with Σ dequantize(W) · x within the activation-quantization error bound.
#[test]
fn matmul_matches_dequantized_f64_reference() {
    for k in Kernels::all_supported() {
        let cpu = Cpu::with_kernels(2, k);
        for dtype in WEIGHT_DTYPES {
            let format = ActFormat::for_weight(dtype).expect("weight dtype");
            for n_in in [32usize, 64, 256, 512, 2816]
                .into_iter()
                .filter(|n| n % dtype.block_len() == 0)
            {
                let (n_out, n_tokens) = (7, 3);
                let seed = 0xdec0 ^ (dtype as u64) << 16 ^ n_in as u64;
                let mut rng = rng(seed);
                let w = random_weight(dtype, n_out, n_in, &mut rng);
                let x = random_acts(n_tokens * n_in, &mut rng);
                let mut w_f32 = vec![0.0f32; n_out * n_in];
                dequantize(dtype, &w, &mut w_f32).expect("whole blocks");
                let mut y = vec![0.0f32; n_tokens * n_out];
                cpu.matmul(
                    &Weight {
                        dtype,
                        data: &w,
                        n_out,
                        n_in,
                    },
                    &x,
                    n_tokens,
                    &mut y,
                )
                .expect("shapes");
                for t in 0..n_tokens {
                    let xt = &x[t * n_in..(t + 1) * n_in];
                    let steps = act_steps(format, xt);
                    for o in 0..n_out {
                        let wr = &w_f32[o * n_in..(o + 1) * n_in];
                        let (mut want, mut mag, mut bound) = (0.0f64, 0.0f64, 0.0f64);
                        for i in 0..n_in {
                            let (wi, xi) = (f64::from(wr[i]), f64::from(xt[i]));
                            want += wi * xi;
                            mag += (wi * xi).abs();
                            bound += wi.abs() * steps[i] * ACT_ERR_STEPS;
                        }
                        let got = f64::from(y[t * n_out + o]);
                        let limit = bound + TOL_REF_REL * mag + 1e-6;
                        assert!(
                            (got - want).abs() <= limit,
                            "isa={} {dtype} n_in={n_in} t={t} o={o} seed={seed:#x}: got {got}, want {want}, limit {limit}",
                            k.isa
                        );
                    }
                }
            }
        }
    }
}

/// Relative tolerance of matmul against the exact product of dequantized weights and
/// dequantized activations: only f32 rounding separates them.
const TOL_EXACT_REL: f64 = 1e-5;

/// The kernels compute exactly Σ dequantize(W) · dequantize(Q8(x)) (up to f32 rounding, and
/// for Q4_1/Q5_1 the f16 rounding of the activation's `s = d·Σq`): a tight check of every
/// kernel's reading of the block layouts, independent of the scalar kernels.
#[test]
fn matmul_equals_product_of_dequantized_operands() {
    for k in Kernels::all_supported() {
        let cpu = Cpu::with_kernels(1, k);
        for dtype in WEIGHT_DTYPES {
            let format = ActFormat::for_weight(dtype).expect("weight dtype");
            let n_in = if dtype.block_len() == 1 { 96 } else { 768 };
            let (n_out, n_tokens) = (5, 2);
            let seed = 0xe4ac7 ^ (dtype as u64) << 8;
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let x = random_acts(n_tokens * n_in, &mut rng);
            let mut w_f32 = vec![0.0f32; n_out * n_in];
            dequantize(dtype, &w, &mut w_f32).expect("whole blocks");
            let acts = quantize_acts(format, &x, n_in);
            let x_deq: Vec<f32> = match format {
                ActFormat::F32 => x.clone(),
                ActFormat::Q8_0 => {
                    skiff_tensor::quant::to_f32_vec(DType::Q8_0, &acts).expect("blocks")
                }
                ActFormat::Q8_1 => {
                    skiff_tensor::quant::to_f32_vec(DType::Q8_1, &acts).expect("blocks")
                }
                ActFormat::Q8K => {
                    skiff_tensor::quant::to_f32_vec(DType::Q8K, &acts).expect("blocks")
                }
            };
            let mut y = vec![0.0f32; n_tokens * n_out];
            cpu.matmul(
                &Weight {
                    dtype,
                    data: &w,
                    n_out,
                    n_in,
                },
                &x,
                n_tokens,
                &mut y,
            )
            .expect("shapes");
            let row_w = w.len() / n_out;
            for t in 0..n_tokens {
                for o in 0..n_out {
                    let (wr, xr) = (&w_f32[o * n_in..][..n_in], &x_deq[t * n_in..][..n_in]);
                    let want: f64 = wr
                        .iter()
                        .zip(xr)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum();
                    let mag: f64 = wr
                        .iter()
                        .zip(xr)
                        .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
                        .sum();
                    let s_err = if format == ActFormat::Q8_1 {
                        q8_1_s_rounding(
                            &w[o * row_w..][..row_w],
                            &acts[t * format.row_bytes(n_in)..],
                            dtype,
                        )
                    } else {
                        0.0
                    };
                    let got = f64::from(y[t * n_out + o]);
                    let limit = TOL_EXACT_REL * mag + s_err + 1e-9;
                    assert!(
                        (got - want).abs() <= limit,
                        "isa={} {dtype} t={t} o={o} seed={seed:#x}: got {got}, want {want}, limit {limit}",
                        k.isa
                    );
                }
            }
        }
    }
}

/// Σ_blocks |m| · |s| · 2^-10: what storing `s = d·Σq` (and `d`) as f16 may cost Q4_1/Q5_1.
fn q8_1_s_rounding(w_row: &[u8], act_row: &[u8], dtype: DType) -> f64 {
    let f16 =
        |b: &[u8], at: usize| f64::from(half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32());
    w_row
        .chunks_exact(dtype.block_bytes())
        .zip(act_row.chunks_exact(36))
        .map(|(wb, ab)| (f16(wb, 2) * f16(ab, 2)).abs() / 1024.0)
        .sum()
}
