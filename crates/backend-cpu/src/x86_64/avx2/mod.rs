//! AVX2 + FMA + F16C kernels: 256-bit integer dot products with `vpmaddubsw`/`vpmaddwd`,
//! following ggml's `arch/x86/quants.c` AVX2 paths.
//!
//! Shape of every kernel: a safe `#[target_feature]` function generic over the number of
//! activation rows `R` (1..=MAX_ROWS) that unpacks each weight block once and multiplies it
//! with all `R` rows, plus a private wrapper with the [`DotFn`](crate::kernels::DotFn)
//! signature. The wrappers are reachable only through [`kernels`], which takes the
//! [`Avx2Fma`] proof token: that is what makes their `unsafe` calls sound. All memory access
//! goes through the bounds-checked loads below.

mod float;
mod kquants;
pub(in crate::x86_64) mod legacy;
pub(in crate::x86_64) mod packed;
mod panel;
mod quant;

use std::arch::x86_64::*;

use super::Avx2Fma;
use crate::kernels::{Isa, Kernels};

/// The AVX2 kernel table: every dot product and activation quantizer has an AVX2 variant.
pub(crate) fn kernels(_proof: Avx2Fma) -> Kernels {
    Kernels {
        isa: Isa::Avx2,
        quantize_q8_0: quant::quantize_row_q8_0,
        quantize_q8_1: quant::quantize_row_q8_1,
        quantize_q8_k: quant::quantize_row_q8_k,
        vec_dot_f32: float::vec_dot_f32,
        vec_dot_f16_f32: float::vec_dot_f16_f32,
        vec_dot_bf16_f32: float::vec_dot_bf16_f32,
        vec_dot_q4_0_q8_0: legacy::vec_dot_q4_0_q8_0,
        vec_dot_q4_1_q8_1: legacy::vec_dot_q4_1_q8_1,
        vec_dot_q5_0_q8_0: legacy::vec_dot_q5_0_q8_0,
        vec_dot_q5_1_q8_1: legacy::vec_dot_q5_1_q8_1,
        vec_dot_q8_0_q8_0: legacy::vec_dot_q8_0_q8_0,
        vec_dot_q2_k_q8_k: kquants::vec_dot_q2_k_q8_k,
        vec_dot_q3_k_q8_k: kquants::vec_dot_q3_k_q8_k,
        vec_dot_q4_k_q8_k: kquants::vec_dot_q4_k_q8_k,
        vec_dot_q5_k_q8_k: kquants::vec_dot_q5_k_q8_k,
        vec_dot_q6_k_q8_k: kquants::vec_dot_q6_k_q8_k,
        gemm8_q4_0_q8_0: panel::gemm8_q4_0_q8_0,
        gemm8_q4_1_q8_1: panel::gemm8_q4_1_q8_1,
        gemm8_q5_0_q8_0: panel::gemm8_q5_0_q8_0,
        gemm8_q8_0_q8_0: panel::gemm8_q8_0_q8_0,
        packed8_q4_0_q8_0: packed::packed8_q4_0_q8_0,
        packed8_q4_1_q8_1: packed::packed8_q4_1_q8_1,
        packed8_q5_0_q8_0: packed::packed8_q5_0_q8_0,
        packed8_q8_0_q8_0: packed::packed8_q8_0_q8_0,
        packed8_q4_k_q8_k: packed::packed8_q4_k_q8_k,
        packed8_q6_k_q8_k: packed::packed8_q6_k_q8_k,
    }
}

/// Calls `$imp::<R>` with `R = $out.len()` (1..=4): the wrappers' row-count dispatch.
macro_rules! with_rows {
    ($imp:ident, $out:expr, ($($arg:expr),*)) => {
        match $out.len() {
            1 => $imp::<1>($($arg,)* $out),
            2 => $imp::<2>($($arg,)* $out),
            3 => $imp::<3>($($arg,)* $out),
            _ => $imp::<4>($($arg,)* $out),
        }
    };
}
pub(crate) use with_rows;

/// The first 32 bytes of `s` (panics when shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load256(s: &[u8]) -> __m256i {
    let s = &s[..32];
    // SAFETY: `s` has exactly 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

/// The first 16 bytes of `s` (panics when shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load128(s: &[u8]) -> __m128i {
    let s = &s[..16];
    // SAFETY: `s` has exactly 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

/// The little-endian f16 at the start of `s`, as f32 (F16C `vcvtph2ps`).
///
/// Loads a whole vector when `s` is long enough: LLVM turns a scalar 16-bit load into
/// `vpinsrw` merged into an arbitrary live register (here: the running sum), which chained
/// every block of a kernel on the previous one (measured: several times slower).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f16_at(s: &[u8]) -> f32 {
    if s.len() >= 16 {
        return _mm_cvtss_f32(_mm_cvtph_ps(load128(s)));
    }
    let bits = u16::from_le_bytes([s[0], s[1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(bits as i16)))
}

/// The little-endian f32 at the start of `s`.
#[inline]
pub(crate) fn f32_at(s: &[u8]) -> f32 {
    f32::from_le_bytes([s[0], s[1], s[2], s[3]])
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_f32x8(x: __m256) -> f32 {
    let r = _mm_add_ps(_mm256_extractf128_ps::<1>(x), _mm256_castps256_ps128(x));
    let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// Sum of the 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_i32x8(x: __m256i) -> i32 {
    let r = _mm_add_epi32(_mm256_extracti128_si256::<1>(x), _mm256_castsi256_si128(x));
    let r = _mm_add_epi32(r, _mm_shuffle_epi32::<0b01_00_11_10>(r));
    let r = _mm_add_epi32(r, _mm_shuffle_epi32::<0b10_11_00_01>(r));
    _mm_cvtsi128_si32(r)
}
