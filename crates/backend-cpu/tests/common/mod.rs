//! Shared helpers of the integration tests: seeded random weights and activations in every
//! supported format, and closeness checks with named tolerances.
#![allow(dead_code)] // each test binary uses its own subset

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use skiff_backend_cpu::{ActFormat, Kernels};
use skiff_tensor::DType;
use skiff_tensor::quant::to_f32_vec;

/// Every weight type matmul accepts.
pub const WEIGHT_DTYPES: [DType; 13] = [
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q8_0,
    DType::Q2K,
    DType::Q3K,
    DType::Q4K,
    DType::Q5K,
    DType::Q6K,
];

/// Row lengths to test; each dtype uses those that are whole blocks.
pub const N_INS: [usize; 10] = [1, 7, 32, 64, 96, 256, 512, 768, 2816, 3072];

/// A seeded generator; the seed is part of every failure message.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Byte offsets of the f16 scale fields inside one block of `dtype` (the rest is free bits).
fn f16_scale_offsets(dtype: DType) -> &'static [usize] {
    use DType::*;
    match dtype {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q4K | Q5K => &[0, 2],
        Q2K => &[80, 82],
        Q3K => &[108],
        Q6K => &[208],
        _ => &[],
    }
}

/// `n_out` random rows of `n_in` values of `dtype`: random quant bits with finite scales of
/// magnitude up to 2^-4 (or random finite floats for F32/F16/BF16).
pub fn random_weight(dtype: DType, n_out: usize, n_in: usize, rng: &mut StdRng) -> Vec<u8> {
    let n_values = n_out * n_in;
    match dtype {
        DType::F32 => (0..n_values)
            .flat_map(|_| rng.random_range(-1.0f32..1.0).to_le_bytes())
            .collect(),
        DType::F16 => (0..n_values)
            .flat_map(|_| half::f16::from_f32(rng.random_range(-1.0f32..1.0)).to_le_bytes())
            .collect(),
        DType::BF16 => (0..n_values)
            .flat_map(|_| half::bf16::from_f32(rng.random_range(-1.0f32..1.0)).to_le_bytes())
            .collect(),
        _ => {
            let n_bytes = n_values / dtype.block_len() * dtype.block_bytes();
            let mut bytes: Vec<u8> = (0..n_bytes).map(|_| rng.random()).collect();
            for block in bytes.chunks_exact_mut(dtype.block_bytes()) {
                for &off in f16_scale_offsets(dtype) {
                    let d = half::f16::from_f32(rng.random_range(-0.0625f32..0.0625));
                    block[off..off + 2].copy_from_slice(&d.to_le_bytes());
                }
            }
            bytes
        }
    }
}

/// `n` activations in -1..1, with a few larger outliers as real activations have.
pub fn random_acts(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v = rng.random_range(-1.0f32..1.0);
            if rng.random_range(0..64) == 0 {
                v * 8.0
            } else {
                v
            }
        })
        .collect()
}

/// Converts `n_tokens` activation rows to `format` with the scalar reference quantizers.
pub fn quantize_acts(format: ActFormat, x: &[f32], n_in: usize) -> Vec<u8> {
    let row = format.row_bytes(n_in);
    let n_tokens = x.len().checked_div(n_in).unwrap_or(0);
    let mut out = vec![0u8; row * n_tokens];
    let k = scalar_kernels();
    for (xr, or) in x
        .chunks_exact(n_in.max(1))
        .zip(out.chunks_exact_mut(row.max(1)))
    {
        match k.quantize(format) {
            Some(q) => q(xr, or),
            None => {
                or.copy_from_slice(&xr.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())
            }
        }
    }
    out
}

/// The scalar kernel table.
pub fn scalar_kernels() -> Kernels {
    Kernels::all_supported()
        .into_iter()
        .next()
        .expect("scalar is always supported")
}

/// Σ_i |w_i · a_i| over the dequantized operands (plus, for Q4_1/Q5_1, twice each block's
/// `|m · s|` term, which may cancel against `d · Σq`): the magnitude that float-reordering
/// errors scale with.
pub fn dot_magnitude(dtype: DType, w_row: &[u8], act_row: &[u8]) -> f32 {
    let format = ActFormat::for_weight(dtype).expect("supported dtype");
    let w = to_f32_vec(dtype, w_row).expect("whole weight blocks");
    let a = match format {
        ActFormat::F32 => act_row
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        ActFormat::Q8_0 => to_f32_vec(DType::Q8_0, act_row).expect("whole blocks"),
        ActFormat::Q8_1 => to_f32_vec(DType::Q8_1, act_row).expect("whole blocks"),
        ActFormat::Q8K => to_f32_vec(DType::Q8K, act_row).expect("whole blocks"),
    };
    let mut mag: f64 = w
        .iter()
        .zip(&a)
        .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
        .sum();
    if format == ActFormat::Q8_1 {
        let f16 = |b: &[u8]| f64::from(half::f16::from_le_bytes([b[2], b[3]]).to_f32());
        let blocks = w_row
            .chunks_exact(dtype.block_bytes())
            .zip(act_row.chunks_exact(36));
        mag += blocks
            .map(|(wb, ab)| 2.0 * (f16(wb) * f16(ab)).abs())
            .sum::<f64>();
    }
    mag as f32
}

/// Relative tolerance (against [`dot_magnitude`]) between a SIMD kernel and the scalar one:
/// both compute exact integer block sums, so only the f32 accumulation order differs.
pub fn tol_simd(dtype: DType) -> f32 {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => TOL_SIMD_FLOAT,
        _ => TOL_SIMD_QUANT,
    }
}

/// SIMD vs scalar for float weights: FMA and lane-wise partial sums reorder every term.
pub const TOL_SIMD_FLOAT: f32 = 2e-5;
/// SIMD vs scalar for quantized weights: exact integer sums, reordered per-block f32 terms.
pub const TOL_SIMD_QUANT: f32 = 1e-5;

/// Asserts `|got - want| <= tol * mag + 1e-30`.
pub fn assert_close(got: f32, want: f32, tol: f32, mag: f32, what: std::fmt::Arguments<'_>) {
    let err = (got - want).abs();
    assert!(
        err <= tol * mag + 1e-30,
        "{what}: got {got}, want {want}, |err| {err:e} > {tol:e} * magnitude {mag:e}"
    );
}
