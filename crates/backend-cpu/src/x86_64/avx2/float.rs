//! AVX2/FMA dot products of f32, f16 (F16C) and bf16 weight rows with f32 activations.

use std::arch::x86_64::*;

use super::legacy::wrapper;
use super::{f32_at, hsum_f32x8, load128, load256, with_rows};
use crate::kernels::check_dot_args;

/// 8 f32 weights starting at `w[8 * i * size..]`, converted from their storage type.
#[derive(Clone, Copy)]
enum Storage {
    F32,
    F16,
    Bf16,
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_w8(kind: Storage, w: &[u8]) -> __m256 {
    match kind {
        Storage::F32 => _mm256_castsi256_ps(load256(w)),
        Storage::F16 => _mm256_cvtph_ps(load128(w)),
        Storage::Bf16 => {
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(load128(w))))
        }
    }
}

fn scalar_w(kind: Storage, w: &[u8]) -> f32 {
    match kind {
        Storage::F32 => f32_at(w),
        Storage::F16 => half::f16::from_le_bytes([w[0], w[1]]).to_f32(),
        Storage::Bf16 => half::bf16::from_le_bytes([w[0], w[1]]).to_f32(),
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_float<const R: usize>(
    kind: Storage,
    n: usize,
    w: &[u8],
    acts: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    let size = if matches!(kind, Storage::F32) { 4 } else { 2 };
    let mut acc = [_mm256_setzero_ps(); R];
    let n8 = n / 8 * 8;
    for i in (0..n8).step_by(8) {
        let wv = load_w8(kind, &w[i * size..]);
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm256_castsi256_ps(load256(&acts[r * stride + 4 * i..]));
            *acc = _mm256_fmadd_ps(wv, av, *acc);
        }
    }
    for r in 0..R {
        let mut sum = hsum_f32x8(acc[r]);
        for i in n8..n {
            sum += scalar_w(kind, &w[i * size..]) * f32_at(&acts[r * stride + 4 * i..]);
        }
        out[r] = sum;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f32_rows<const R: usize>(n: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    dot_float::<R>(Storage::F32, n, w, acts, stride, out);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f16_rows<const R: usize>(n: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    dot_float::<R>(Storage::F16, n, w, acts, stride, out);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn bf16_rows<const R: usize>(n: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    dot_float::<R>(Storage::Bf16, n, w, acts, stride, out);
}

wrapper!(vec_dot_f32, f32_rows, 4, 4);
wrapper!(vec_dot_f16_f32, f16_rows, 2, 4);
wrapper!(vec_dot_bf16_f32, bf16_rows, 2, 4);
