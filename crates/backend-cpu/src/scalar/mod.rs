//! The scalar reference kernels: safe, plain Rust written for clarity. They are the
//! specification the SIMD variants are tested against; where they disagree, this is right
//! until proven wrong. The formulas follow ggml's `*_generic` / `*_ref` functions
//! (ggml-cpu/quants.c and ggml-quants.c) so that results match llama.cpp's numerics.

mod float;
mod kquants;
mod legacy;
mod packed;
mod quant;

pub use float::{vec_dot_bf16_f32, vec_dot_f16_f32, vec_dot_f32};
pub use kquants::{
    q3_k_scales, q4_k_scale_min, q6_k_value, vec_dot_q2_k_q8_k, vec_dot_q3_k_q8_k,
    vec_dot_q4_k_q8_k, vec_dot_q5_k_q8_k, vec_dot_q6_k_q8_k,
};
pub use legacy::{
    vec_dot_q4_0_q8_0, vec_dot_q4_1_q8_1, vec_dot_q5_0_q8_0, vec_dot_q5_1_q8_1, vec_dot_q8_0_q8_0,
};
pub(crate) use packed::check_packed_args;
pub use packed::{
    packed8_q4_0_q8_0, packed8_q4_1_q8_1, packed8_q4_k_q8_k, packed8_q5_0_q8_0, packed8_q6_k_q8_k,
    packed8_q8_0_q8_0,
};
pub use quant::{quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k};

use crate::kernels::{DotFn, Isa, Kernels, check_dot_args};

/// The scalar kernel table.
pub(crate) fn kernels() -> Kernels {
    Kernels {
        isa: Isa::Scalar,
        quantize_q8_0: quantize_row_q8_0,
        quantize_q8_1: quantize_row_q8_1,
        quantize_q8_k: quantize_row_q8_k,
        vec_dot_f32,
        vec_dot_f16_f32,
        vec_dot_bf16_f32,
        vec_dot_q4_0_q8_0,
        vec_dot_q4_1_q8_1,
        vec_dot_q5_0_q8_0,
        vec_dot_q5_1_q8_1,
        vec_dot_q8_0_q8_0,
        vec_dot_q2_k_q8_k,
        vec_dot_q3_k_q8_k,
        vec_dot_q4_k_q8_k,
        vec_dot_q5_k_q8_k,
        vec_dot_q6_k_q8_k,
        gemm8_q4_0_q8_0,
        gemm8_q4_1_q8_1,
        gemm8_q5_0_q8_0,
        gemm8_q8_0_q8_0,
        packed8_q4_0_q8_0,
        packed8_q4_1_q8_1,
        packed8_q5_0_q8_0,
        packed8_q8_0_q8_0,
        packed8_q4_k_q8_k,
        packed8_q6_k_q8_k,
    }
}

/// The batched kernels' reference: every output is one call of the row kernel `dot`.
fn gemm8_rows(dot: DotFn, w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    assert!(
        w.len().is_multiple_of(8),
        "weight of {} bytes is not 8 rows",
        w.len()
    );
    assert!(
        !out.is_empty() && out.len().is_multiple_of(8),
        "{} outputs is not 8 per activation row",
        out.len()
    );
    let row_bytes = w.len() / 8;
    for (r, o) in out.chunks_exact_mut(8).enumerate() {
        for (i, v) in o.iter_mut().enumerate() {
            let mut one = [0.0f32];
            dot(
                &w[i * row_bytes..(i + 1) * row_bytes],
                &acts[r * act_stride..],
                act_stride,
                &mut one,
            );
            *v = one[0];
        }
    }
}

/// Batched Q4_0 · Q8_0 (see [`crate::kernels::Gemm8Fn`]).
pub fn gemm8_q4_0_q8_0(w: &[u8], acts: &[u8], stride: usize, _: &mut Vec<u8>, out: &mut [f32]) {
    gemm8_rows(vec_dot_q4_0_q8_0, w, acts, stride, out);
}

/// Batched Q4_1 · Q8_1 (see [`crate::kernels::Gemm8Fn`]).
pub fn gemm8_q4_1_q8_1(w: &[u8], acts: &[u8], stride: usize, _: &mut Vec<u8>, out: &mut [f32]) {
    gemm8_rows(vec_dot_q4_1_q8_1, w, acts, stride, out);
}

/// Batched Q5_0 · Q8_0 (see [`crate::kernels::Gemm8Fn`]).
pub fn gemm8_q5_0_q8_0(w: &[u8], acts: &[u8], stride: usize, _: &mut Vec<u8>, out: &mut [f32]) {
    gemm8_rows(vec_dot_q5_0_q8_0, w, acts, stride, out);
}

/// Batched Q8_0 · Q8_0 (see [`crate::kernels::Gemm8Fn`]).
pub fn gemm8_q8_0_q8_0(w: &[u8], acts: &[u8], stride: usize, _: &mut Vec<u8>, out: &mut [f32]) {
    gemm8_rows(vec_dot_q8_0_q8_0, w, acts, stride, out);
}

/// Reads the little-endian f16 at `b[off..off + 2]` as f32.
#[inline]
pub(crate) fn f16_at(b: &[u8], off: usize) -> f32 {
    half::f16::from_le_bytes([b[off], b[off + 1]]).to_f32()
}

/// Reads the little-endian f32 at `b[off..off + 4]`.
#[inline]
pub(crate) fn f32_at(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Runs a per-block dot over every activation row: `out[r] = Σ_b block_dot(w_b, a_rb)`,
/// summed in block order as ggml does.
#[inline]
fn dot_rows(
    blocks: (usize, usize),
    w: &[u8],
    acts: &[u8],
    act_stride: usize,
    out: &mut [f32],
    block_dot: impl Fn(&[u8], &[u8]) -> f32,
) {
    let (w_bytes, a_bytes) = blocks;
    let n_blocks = check_dot_args(w, w_bytes, acts, act_stride, out.len(), a_bytes);
    for (r, o) in out.iter_mut().enumerate() {
        let a = &acts[r * act_stride..];
        let mut sum = 0.0f32;
        for b in 0..n_blocks {
            sum += block_dot(&w[b * w_bytes..][..w_bytes], &a[b * a_bytes..][..a_bytes]);
        }
        *o = sum;
    }
}
