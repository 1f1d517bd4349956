//! AVX2 activation quantizers, bit-exact with the scalar ones in `scalar/quant.rs` (which
//! follow ggml's `quantize_row_q8_{0,1,K}_ref`): same `amax` (NaN ignored), same divisions,
//! `roundf` (half away from zero) for Q8_0/Q8_1 and round-half-even for Q8_K, NaN products
//! quantized to 0 as Rust's saturating `as` casts do. They run once per matmul on every
//! activation value, which is noticeable next to a single-token product of a small model.

use std::arch::x86_64::*;

use crate::kernels::ActFormat;

const QK8: usize = 32;
const QK_K: usize = skiff_tensor::QK_K;

/// 8 floats at `x[i..i + 8]` (panics when out of bounds).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load8(x: &[f32], i: usize) -> __m256 {
    let s = &x[i..i + 8];
    // SAFETY: `s` has exactly 8 readable f32; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

/// Largest lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
}

/// `max(|x|)` over `xs` (8-value vectors), ignoring NaN like the scalar `f32::max` fold.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn amax(xs: &[__m256]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    // `max_ps(a, b)` returns `b` when `a` is NaN, so NaN lanes never enter the accumulator.
    let m = xs.iter().fold(_mm256_setzero_ps(), |m, &v| {
        _mm256_max_ps(_mm256_andnot_ps(sign, v), m)
    });
    hmax(m)
}

/// `v` with NaN lanes replaced by 0 (Rust's `NaN as i32` is 0; `vcvtps2dq` would give i32::MIN).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nan_to_zero(v: __m256) -> __m256 {
    _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v))
}

/// `roundf` (half away from zero) of each lane, for |v| < 2^23.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn round_away(v: __m256) -> __m256 {
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    let frac = _mm256_sub_ps(v, t);
    let sign = _mm256_set1_ps(-0.0);
    let half = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_andnot_ps(sign, frac), _mm256_set1_ps(0.5));
    let one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0));
    _mm256_add_ps(t, _mm256_and_ps(half, one))
}

/// Four vectors of integer-valued floats in [-128, 127] → 32 i8 in order, plus their 16-bit
/// pairwise sums (as i16 lanes, for block sums).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pack_i8(q: [__m256; 4]) -> (__m256i, __m256i, __m256i) {
    let i = q.map(|v| _mm256_cvttps_epi32(v));
    let lo = _mm256_packs_epi32(i[0], i[1]);
    let hi = _mm256_packs_epi32(i[2], i[3]);
    let bytes = _mm256_packs_epi16(lo, hi);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    (_mm256_permutevar8x32_epi32(bytes, order), lo, hi)
}

/// Stores 32 bytes at `out[..32]` (panics when shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store32(out: &mut [u8], v: __m256i) {
    let out = &mut out[..32];
    // SAFETY: `out` has exactly 32 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// f32 → f16 bits, round to nearest even (as `half::f16::from_f32`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_bits(v: f32) -> [u8; 2] {
    let h = _mm_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(_mm_set_ss(v));
    (_mm_cvtsi128_si32(h) as u16).to_le_bytes()
}

/// One Q8_0/Q8_1 block: `(d, the rounded i8 values, Σq)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_block(xb: &[f32]) -> (f32, __m256i, i32) {
    let v: [__m256; 4] = std::array::from_fn(|k| load8(xb, 8 * k));
    let d = amax(&v) / 127.0;
    let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
    let q = v.map(|v| round_away(nan_to_zero(_mm256_mul_ps(v, id))));
    let (bytes, lo, hi) = pack_i8(q);
    let ones = _mm256_set1_epi16(1);
    let sums = _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones));
    (d, bytes, super::hsum_i32x8(sums))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_row(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(QK8).zip(out.chunks_exact_mut(34)) {
        let (d, bytes, _) = q8_block(xb);
        ob[..2].copy_from_slice(&f16_bits(d));
        store32(&mut ob[2..], bytes);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_1_row(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(QK8).zip(out.chunks_exact_mut(36)) {
        let (d, bytes, sum) = q8_block(xb);
        ob[..2].copy_from_slice(&f16_bits(d));
        ob[2..4].copy_from_slice(&f16_bits(sum as f32 * d));
        store32(&mut ob[4..], bytes);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_k_row(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(292)) {
        let v: [__m256; QK_K / 8] = std::array::from_fn(|k| load8(xb, 8 * k));
        let amax = amax(&v);
        if amax == 0.0 || amax.is_nan() {
            ob.fill(0);
            continue;
        }
        // The scalar loop keeps the first value whose magnitude strictly exceeds all before
        // it: the first lane with |v| == amax.
        let first = xb
            .iter()
            .position(|v| v.abs() == amax)
            .expect("amax is the magnitude of some value");
        let iscale = -127.0 / xb[first];
        let scale = _mm256_set1_ps(iscale);
        let cap = _mm256_set1_ps(127.0);
        for (k, chunk) in v.chunks_exact(4).enumerate() {
            let q: [__m256; 4] = std::array::from_fn(|j| {
                let p = nan_to_zero(_mm256_mul_ps(chunk[j], scale));
                let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(p);
                _mm256_min_ps(r, cap)
            });
            let (bytes, _, _) = pack_i8(q);
            store32(&mut ob[4 + 32 * k..], bytes);
            for half in 0..2 {
                let sum: i32 = ob[4 + 32 * k + 16 * half..4 + 32 * k + 16 * (half + 1)]
                    .iter()
                    .map(|&q| i32::from(q as i8))
                    .sum();
                let at = 4 + QK_K + 2 * (2 * k + half);
                ob[at..at + 2].copy_from_slice(&(sum as i16).to_le_bytes());
            }
        }
        ob[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

/// Checks a quantizer call like the scalar ones do (panics on a caller bug).
fn check(x: &[f32], out: &[u8], format: ActFormat) {
    let block_len = format.block_len();
    assert!(
        x.len().is_multiple_of(block_len),
        "{} values is not whole blocks of {block_len}",
        x.len()
    );
    assert_eq!(
        out.len(),
        format.row_bytes(x.len()),
        "output bytes for {} values",
        x.len()
    );
}

/// [`QuantizeFn`](crate::kernels::QuantizeFn) for Q8_0.
pub(super) fn quantize_row_q8_0(x: &[f32], out: &mut [u8]) {
    check(x, out, ActFormat::Q8_0);
    // SAFETY: only reachable through `avx2::kernels`, which requires the `Avx2Fma` token.
    unsafe { q8_0_row(x, out) }
}

/// [`QuantizeFn`](crate::kernels::QuantizeFn) for Q8_1.
pub(super) fn quantize_row_q8_1(x: &[f32], out: &mut [u8]) {
    check(x, out, ActFormat::Q8_1);
    // SAFETY: only reachable through `avx2::kernels`, which requires the `Avx2Fma` token.
    unsafe { q8_1_row(x, out) }
}

/// [`QuantizeFn`](crate::kernels::QuantizeFn) for Q8_K.
pub(super) fn quantize_row_q8_k(x: &[f32], out: &mut [u8]) {
    check(x, out, ActFormat::Q8K);
    // SAFETY: only reachable through `avx2::kernels`, which requires the `Avx2Fma` token.
    unsafe { q8_k_row(x, out) }
}
