//! AVX2 + FMA + F16C attention kernels. Keys: each row is loaded once per group of up to four
//! queries, eight values at a time (F16C `vcvtph2ps` for f16, sign-extended i8 times the block
//! scale for q8_0). Values: eight accumulator lanes per query stay in registers while the
//! rows stream past. The exponential evaluates [`scalar::exp_approx`]'s formula lane by lane.
//!
//! The kernels are reachable only through [`kernels`], which takes the [`Avx2Fma`] proof
//! token: that is what makes their `unsafe` calls sound. Every load goes through a
//! bounds-checked slice below.

use std::arch::x86_64::*;

use super::scalar::{self, check_args, value_at};
use super::{AttnKernels, KeyDotFn, KvRowType, Q8_0_BLOCK_BYTES, Q8_0_BLOCK_LEN, ValueAxpyFn};
use crate::kernels::Isa;
use crate::x86_64::Avx2Fma;

/// Most queries one pass of a kernel keeps in registers.
const MAX_Q: usize = 4;

/// The AVX2 table for rows of `row_type`, reported as `isa` (AVX-512 CPUs run it too).
pub(super) fn kernels(_proof: Avx2Fma, isa: Isa, row_type: KvRowType) -> AttnKernels {
    let (key_dot, value_axpy): (KeyDotFn, ValueAxpyFn) = match row_type {
        KvRowType::F32 => (key_dot_f32, value_axpy_f32),
        KvRowType::F16 => (key_dot_f16, value_axpy_f16),
        KvRowType::Q8_0 => (key_dot_q8_0, value_axpy_q8_0),
    };
    AttnKernels {
        isa,
        row_type,
        key_dot,
        value_axpy,
        exp_sum,
    }
}

/// 8 f32 from the first 8 values of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f32x8(s: &[f32]) -> __m256 {
    let s = &s[..8];
    // SAFETY: `s` has exactly 8 readable f32; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

/// Stores 8 f32 into the first 8 values of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store_f32x8(s: &mut [f32], v: __m256) {
    let s = &mut s[..8];
    // SAFETY: `s` has exactly 8 writable f32; `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) }
}

/// Values `c..c + 8` of a row, as f32. For q8_0 the values are the raw quants (the caller
/// multiplies by the block scale); `c` is a multiple of 8, so they never straddle a block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_row8(row_type: KvRowType, row: &[u8], c: usize) -> __m256 {
    match row_type {
        KvRowType::F32 => {
            let s = &row[4 * c..4 * c + 32];
            // SAFETY: `s` has exactly 32 readable bytes; `loadu` has no alignment requirement.
            unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
        }
        KvRowType::F16 => {
            let s = &row[2 * c..2 * c + 16];
            // SAFETY: `s` has exactly 16 readable bytes; `loadu` has no alignment requirement.
            _mm256_cvtph_ps(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
        }
        KvRowType::Q8_0 => {
            let off = c / Q8_0_BLOCK_LEN * Q8_0_BLOCK_BYTES + 2 + c % Q8_0_BLOCK_LEN;
            let s = &row[off..off + 8];
            // SAFETY: `s` has exactly 8 readable bytes; `loadl_epi64` reads 8 bytes unaligned.
            let q = unsafe { _mm_loadl_epi64(s.as_ptr().cast()) };
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))
        }
    }
}

/// The scale of the q8_0 block holding value `c` of `row` (1 for the float types).
#[inline]
fn block_scale(row_type: KvRowType, row: &[u8], c: usize) -> f32 {
    match row_type {
        KvRowType::Q8_0 => {
            let off = c / Q8_0_BLOCK_LEN * Q8_0_BLOCK_BYTES;
            half::f16::from_le_bytes([row[off], row[off + 1]]).to_f32()
        }
        KvRowType::F32 | KvRowType::F16 => 1.0,
    }
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(x: __m256) -> f32 {
    let r = _mm_add_ps(_mm256_extractf128_ps::<1>(x), _mm256_castps256_ps128(x));
    let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// `Q` queries (`qs = [Q, head_dim]`) · one key row. Within a q8_0 block the raw quants are
/// summed first, then scaled once per block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_row<const Q: usize>(
    row_type: KvRowType,
    qs: &[f32],
    head_dim: usize,
    row: &[u8],
) -> [f32; Q] {
    let n8 = head_dim / 8 * 8;
    let mut acc = [_mm256_setzero_ps(); Q];
    let mut c = 0;
    while c < n8 {
        let block_end = match row_type {
            KvRowType::Q8_0 => ((c / Q8_0_BLOCK_LEN + 1) * Q8_0_BLOCK_LEN).min(n8),
            KvRowType::F32 | KvRowType::F16 => n8,
        };
        let mut part = [_mm256_setzero_ps(); Q];
        while c < block_end {
            let k = load_row8(row_type, row, c);
            for (i, p) in part.iter_mut().enumerate() {
                *p = _mm256_fmadd_ps(k, load_f32x8(&qs[i * head_dim + c..]), *p);
            }
            c += 8;
        }
        let scale = _mm256_set1_ps(block_scale(row_type, row, c - 8));
        for (a, p) in acc.iter_mut().zip(part) {
            *a = _mm256_fmadd_ps(p, scale, *a);
        }
    }
    let mut out = [0.0f32; Q];
    for (i, o) in out.iter_mut().enumerate() {
        let mut sum = hsum(acc[i]);
        for d in n8..head_dim {
            sum += qs[i * head_dim + d] * value_at(row_type, row, d);
        }
        *o = sum;
    }
    out
}

#[target_feature(enable = "avx2,fma,f16c")]
fn key_dot_impl(row_type: KvRowType, q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    let (n_q, n_rows, row_bytes) = check_args(row_type, head_dim, q.len(), scores.len(), keys);
    for r in 0..n_rows {
        let row = &keys[r * row_bytes..(r + 1) * row_bytes];
        let mut i0 = 0;
        while i0 < n_q {
            let qs = &q[i0 * head_dim..];
            let n = (n_q - i0).min(MAX_Q);
            let mut sums = [0.0f32; MAX_Q];
            match n {
                1 => sums[..1].copy_from_slice(&dot_row::<1>(row_type, qs, head_dim, row)),
                2 => sums[..2].copy_from_slice(&dot_row::<2>(row_type, qs, head_dim, row)),
                3 => sums[..3].copy_from_slice(&dot_row::<3>(row_type, qs, head_dim, row)),
                _ => sums.copy_from_slice(&dot_row::<4>(row_type, qs, head_dim, row)),
            }
            for (i, s) in sums[..n].iter().enumerate() {
                scores[(i0 + i) * n_rows + r] = *s;
            }
            i0 += n;
        }
    }
}

/// `Q` accumulators (`acc = [Q, head_dim]`) += Σ_r w · V_r, for queries `i0..i0 + Q`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn axpy_rows<const Q: usize>(
    row_type: KvRowType,
    w: &[f32],
    i0: usize,
    n_rows: usize,
    values: &[u8],
    row_bytes: usize,
    head_dim: usize,
    acc: &mut [f32],
) {
    let n8 = head_dim / 8 * 8;
    for c in (0..n8).step_by(8) {
        let mut a = [_mm256_setzero_ps(); Q];
        for (i, a) in a.iter_mut().enumerate() {
            *a = load_f32x8(&acc[i * head_dim + c..]);
        }
        for r in 0..n_rows {
            let row = &values[r * row_bytes..(r + 1) * row_bytes];
            let v = load_row8(row_type, row, c);
            let scale = block_scale(row_type, row, c);
            for (i, a) in a.iter_mut().enumerate() {
                let wi = _mm256_set1_ps(w[(i0 + i) * n_rows + r] * scale);
                *a = _mm256_fmadd_ps(wi, v, *a);
            }
        }
        for (i, a) in a.iter().enumerate() {
            store_f32x8(&mut acc[i * head_dim + c..], *a);
        }
    }
    for d in n8..head_dim {
        for r in 0..n_rows {
            let x = value_at(row_type, &values[r * row_bytes..(r + 1) * row_bytes], d);
            for i in 0..Q {
                acc[i * head_dim + d] += w[(i0 + i) * n_rows + r] * x;
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn value_axpy_impl(
    row_type: KvRowType,
    w: &[f32],
    values: &[u8],
    head_dim: usize,
    acc: &mut [f32],
) {
    let (n_q, n_rows, row_bytes) = check_args(row_type, head_dim, acc.len(), w.len(), values);
    let mut i0 = 0;
    while i0 < n_q {
        let n = (n_q - i0).min(MAX_Q);
        let acc = &mut acc[i0 * head_dim..(i0 + n) * head_dim];
        match n {
            1 => axpy_rows::<1>(row_type, w, i0, n_rows, values, row_bytes, head_dim, acc),
            2 => axpy_rows::<2>(row_type, w, i0, n_rows, values, row_bytes, head_dim, acc),
            3 => axpy_rows::<3>(row_type, w, i0, n_rows, values, row_bytes, head_dim, acc),
            _ => axpy_rows::<4>(row_type, w, i0, n_rows, values, row_bytes, head_dim, acc),
        }
        i0 += n;
    }
}

/// Defines the public-signature wrappers of one row type.
macro_rules! wrappers {
    ($dot:ident, $axpy:ident, $row_type:expr) => {
        fn $dot(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
            // SAFETY: only reachable through `kernels`, which requires the `Avx2Fma` token, so
            // the CPU supports avx2, fma and f16c. Every load is bounds-checked.
            unsafe { key_dot_impl($row_type, q, head_dim, keys, scores) }
        }

        fn $axpy(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
            // SAFETY: as above: the `Avx2Fma` token proves the features; loads are checked.
            unsafe { value_axpy_impl($row_type, w, values, head_dim, acc) }
        }
    };
}

wrappers!(key_dot_f32, value_axpy_f32, KvRowType::F32);
wrappers!(key_dot_f16, value_axpy_f16, KvRowType::F16);
wrappers!(key_dot_q8_0, value_axpy_q8_0, KvRowType::Q8_0);

/// `exp(x)` lane by lane, the formula of [`scalar::exp_approx`] with fused multiply-adds.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn exp8(x: __m256) -> __m256 {
    let x = _mm256_max_ps(x, _mm256_set1_ps(scalar::EXP_MIN));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(scalar::LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(scalar::LN2_LO), r);
    let mut p = _mm256_set1_ps(scalar::EXP_C6);
    for c in [
        scalar::EXP_C5,
        scalar::EXP_C4,
        scalar::EXP_C3,
        scalar::EXP_C2,
        1.0,
        1.0,
    ] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn exp_sum_impl(x: &mut [f32], max: f32) -> f32 {
    let m = _mm256_set1_ps(max);
    let mut sum = _mm256_setzero_ps();
    let mut chunks = x.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let e = exp8(_mm256_sub_ps(load_f32x8(chunk), m));
        store_f32x8(chunk, e);
        sum = _mm256_add_ps(sum, e);
    }
    let mut total = hsum(sum);
    for v in chunks.into_remainder() {
        *v = scalar::exp_approx(*v - max);
        total += *v;
    }
    total
}

fn exp_sum(x: &mut [f32], max: f32) -> f32 {
    // SAFETY: only reachable through `kernels`, which requires the `Avx2Fma` token; loads and
    // stores are bounds-checked.
    unsafe { exp_sum_impl(x, max) }
}
