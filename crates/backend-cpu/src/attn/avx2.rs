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

/// The AVX2 table for rows of `row_type`, reported as `isa` (AVX-VNNI and AVX-512 CPUs run it
/// too).
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

/// Row-type codes for the const-generic kernels (so every `match` on the type resolves at
/// compile time): [`F32`], [`F16`], [`Q8_0`].
const F32: u8 = 0;
const F16: u8 = 1;
const Q8_0: u8 = 2;

/// Values `c..c + 8` of the row at `row`, as f32. For q8_0 they are the raw quants (the
/// caller multiplies by the block scale); `c` is a multiple of 8, so they never straddle a
/// block.
///
/// # Safety
/// `row` points to a whole row of at least `c + 8` values of type `T`, and the CPU supports
/// avx2, fma and f16c.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_row8<const T: u8>(row: *const u8, c: usize) -> __m256 {
    // SAFETY: the caller guarantees values `c..c + 8` lie inside the row (all arms); the
    // loads have no alignment requirement.
    unsafe {
        match T {
            F32 => _mm256_loadu_ps(row.add(4 * c).cast()),
            F16 => _mm256_cvtph_ps(_mm_loadu_si128(row.add(2 * c).cast())),
            _ => {
                let off = c / Q8_0_BLOCK_LEN * Q8_0_BLOCK_BYTES + 2 + c % Q8_0_BLOCK_LEN;
                let q = _mm_loadl_epi64(row.add(off).cast());
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))
            }
        }
    }
}

/// The scale of the q8_0 block holding value `c` of the row at `row` (1 for the float
/// types).
///
/// # Safety
/// As [`load_row8`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_scale<const T: u8>(row: *const u8, c: usize) -> f32 {
    if T != Q8_0 {
        return 1.0;
    }
    // SAFETY: the block holding value `c` starts with its 2-byte scale, inside the row.
    let bits = unsafe {
        row.add(c / Q8_0_BLOCK_LEN * Q8_0_BLOCK_BYTES)
            .cast::<u16>()
            .read_unaligned()
    };
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// The [`KvRowType`] of a code.
fn row_type_of<const T: u8>() -> KvRowType {
    match T {
        F32 => KvRowType::F32,
        F16 => KvRowType::F16,
        _ => KvRowType::Q8_0,
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

/// Values `c..c + 8` of the row at `row`, multiplied by their q8_0 block scale (as is for
/// the float types).
///
/// # Safety
/// As [`load_row8`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_scaled8<const T: u8>(row: *const u8, c: usize) -> __m256 {
    // SAFETY: forwarded from the caller.
    unsafe {
        let v = load_row8::<T>(row, c);
        if T == Q8_0 {
            _mm256_mul_ps(v, _mm256_set1_ps(block_scale::<T>(row, c)))
        } else {
            v
        }
    }
}

/// `Q` queries (`[Q, head_dim]` at `qs`) · `R` key rows starting at `rows` (`row_bytes`
/// apart): `R * Q` independent accumulator chains, so the FMA latency is hidden.
///
/// # Safety
/// `qs` points to `Q * head_dim` f32, `rows` to `R` whole rows of `head_dim` values of type
/// `T`, and the CPU supports avx2, fma and f16c.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows<const T: u8, const Q: usize, const R: usize>(
    qs: *const f32,
    head_dim: usize,
    rows: *const u8,
    row_bytes: usize,
) -> [[f32; R]; Q] {
    let n8 = head_dim / 8 * 8;
    let mut acc = [[_mm256_setzero_ps(); R]; Q];
    for c in (0..n8).step_by(8) {
        let mut q = [_mm256_setzero_ps(); Q];
        for (i, q) in q.iter_mut().enumerate() {
            // SAFETY: `i < Q` and `c + 8 <= head_dim`: inside the queries.
            *q = unsafe { _mm256_loadu_ps(qs.add(i * head_dim + c)) };
        }
        for r in 0..R {
            // SAFETY: row `r < R` is whole and `c + 8 <= head_dim`.
            let k = unsafe { load_scaled8::<T>(rows.add(r * row_bytes), c) };
            for (acc_i, q_i) in acc.iter_mut().zip(&q) {
                acc_i[r] = _mm256_fmadd_ps(k, *q_i, acc_i[r]);
            }
        }
    }
    let mut out = [[0.0f32; R]; Q];
    for i in 0..Q {
        for r in 0..R {
            out[i][r] = hsum(acc[i][r]);
            if n8 < head_dim {
                // SAFETY: row `r < R` is a whole row of `row_bytes` bytes.
                let row = unsafe { std::slice::from_raw_parts(rows.add(r * row_bytes), row_bytes) };
                for d in n8..head_dim {
                    // SAFETY: `i < Q` and `d < head_dim`.
                    let qv = unsafe { *qs.add(i * head_dim + d) };
                    out[i][r] += qv * value_at(row_type_of::<T>(), row, d);
                }
            }
        }
    }
    out
}

/// Scores of `Q` queries (`[Q, head_dim]` at `qs`) against all `n_rows` rows, written to
/// `scores[(i0 + i) * n_rows + r]`: four rows at a time (two with four queries, to stay in
/// the 16 vector registers), then one at a time.
///
/// # Safety
/// `qs` points to `Q * head_dim` f32, `keys` holds `n_rows` whole rows, and the CPU supports
/// avx2, fma and f16c.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_group<const T: u8, const Q: usize>(
    qs: *const f32,
    head_dim: usize,
    keys: &[u8],
    row_bytes: usize,
    n_rows: usize,
    i0: usize,
    scores: &mut [f32],
) {
    const { assert!(Q <= MAX_Q) };
    let step = if Q == MAX_Q { 2 } else { 4 };
    let mut r = 0;
    while r < n_rows {
        let rows = keys[r * row_bytes..].as_ptr();
        let mut put = |i: usize, j: usize, v: f32| scores[(i0 + i) * n_rows + r + j] = v;
        // SAFETY: `r + step <= n_rows` (or one row) whole rows from `rows`; queries as given.
        unsafe {
            if r + step > n_rows {
                let out = dot_rows::<T, Q, 1>(qs, head_dim, rows, row_bytes);
                (0..Q).for_each(|i| put(i, 0, out[i][0]));
                r += 1;
            } else if step == 4 {
                let out = dot_rows::<T, Q, 4>(qs, head_dim, rows, row_bytes);
                (0..Q).for_each(|i| (0..4).for_each(|j| put(i, j, out[i][j])));
                r += 4;
            } else {
                let out = dot_rows::<T, Q, 2>(qs, head_dim, rows, row_bytes);
                (0..Q).for_each(|i| (0..2).for_each(|j| put(i, j, out[i][j])));
                r += 2;
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn key_dot_impl<const T: u8>(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    let (n_q, n_rows, row_bytes) =
        check_args(row_type_of::<T>(), head_dim, q.len(), scores.len(), keys);
    let keys = &keys[..n_rows * row_bytes];
    let mut i0 = 0;
    while i0 < n_q {
        let n = (n_q - i0).min(MAX_Q);
        let qs = q[i0 * head_dim..(i0 + n) * head_dim].as_ptr();
        // SAFETY: `qs` holds `n` whole queries and `keys` `n_rows` whole rows (checked above).
        unsafe {
            match n {
                1 => dot_group::<T, 1>(qs, head_dim, keys, row_bytes, n_rows, i0, scores),
                2 => dot_group::<T, 2>(qs, head_dim, keys, row_bytes, n_rows, i0, scores),
                3 => dot_group::<T, 3>(qs, head_dim, keys, row_bytes, n_rows, i0, scores),
                _ => dot_group::<T, 4>(qs, head_dim, keys, row_bytes, n_rows, i0, scores),
            }
        }
        i0 += n;
    }
}

/// `Q` accumulators (`[Q, head_dim]` at `acc`) += Σ_r w[(i0 + i) * n_rows + r] · V_r, over
/// `C` chunks of 8 values at a time (`Q * C` independent chains), then single chunks.
///
/// # Safety
/// `acc` points to `Q * head_dim` f32, `values` to `n_rows` whole rows of `row_bytes`, `w`
/// holds `(i0 + Q) * n_rows` weights, and the CPU supports avx2, fma and f16c.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy_rows<const T: u8, const Q: usize, const C: usize>(
    w: &[f32],
    i0: usize,
    n_rows: usize,
    values: *const u8,
    row_bytes: usize,
    head_dim: usize,
    acc: *mut f32,
) {
    let n8 = head_dim / 8 * 8;
    let w = &w[i0 * n_rows..(i0 + Q) * n_rows];
    let mut c0 = 0;
    while c0 + 8 * C <= n8 {
        // SAFETY: `c0 + 8 * C <= head_dim`: inside the accumulators and every row.
        unsafe { axpy_chunks::<T, Q, C>(w, n_rows, values, row_bytes, head_dim, acc, c0) };
        c0 += 8 * C;
    }
    while c0 < n8 {
        // SAFETY: as above with one chunk.
        unsafe { axpy_chunks::<T, Q, 1>(w, n_rows, values, row_bytes, head_dim, acc, c0) };
        c0 += 8;
    }
    for d in n8..head_dim {
        for r in 0..n_rows {
            // SAFETY: row `r < n_rows` is a whole row of `row_bytes` bytes.
            let row = unsafe { std::slice::from_raw_parts(values.add(r * row_bytes), row_bytes) };
            let x = value_at(row_type_of::<T>(), row, d);
            for i in 0..Q {
                // SAFETY: `i < Q`, `d < head_dim`: inside the accumulators.
                unsafe { *acc.add(i * head_dim + d) += w[i * n_rows + r] * x };
            }
        }
    }
}

/// Values `c0..c0 + 8 * C` of the `Q` accumulators, over all rows.
///
/// # Safety
/// As [`axpy_rows`], with `c0 + 8 * C <= head_dim`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy_chunks<const T: u8, const Q: usize, const C: usize>(
    w: &[f32],
    n_rows: usize,
    values: *const u8,
    row_bytes: usize,
    head_dim: usize,
    acc: *mut f32,
    c0: usize,
) {
    let mut a = [[_mm256_setzero_ps(); C]; Q];
    for (i, a) in a.iter_mut().enumerate() {
        for (j, a) in a.iter_mut().enumerate() {
            // SAFETY: `i < Q`, `c0 + 8 * j + 8 <= head_dim`: inside the accumulators.
            *a = unsafe { _mm256_loadu_ps(acc.add(i * head_dim + c0 + 8 * j)) };
        }
    }
    for r in 0..n_rows {
        // The `Q` weights first, then one chunk of the row at a time: `Q * C + Q + 1` live
        // vectors (16 at most), where loading all `C` chunks first spilled accumulators.
        let wi: [__m256; Q] = std::array::from_fn(|i| _mm256_set1_ps(w[i * n_rows + r]));
        for j in 0..C {
            // SAFETY: row `r < n_rows` is whole; `c0 + 8 * j + 8 <= head_dim`.
            let v = unsafe { load_scaled8::<T>(values.add(r * row_bytes), c0 + 8 * j) };
            for (a, wi) in a.iter_mut().zip(&wi) {
                a[j] = _mm256_fmadd_ps(*wi, v, a[j]);
            }
        }
    }
    for (i, a) in a.iter().enumerate() {
        for (j, a) in a.iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { _mm256_storeu_ps(acc.add(i * head_dim + c0 + 8 * j), *a) };
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn value_axpy_impl<const T: u8>(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    let (n_q, n_rows, row_bytes) =
        check_args(row_type_of::<T>(), head_dim, acc.len(), w.len(), values);
    let mut i0 = 0;
    while i0 < n_q {
        let n = (n_q - i0).min(MAX_Q);
        let acc = acc[i0 * head_dim..(i0 + n) * head_dim].as_mut_ptr();
        let v = values.as_ptr();
        // SAFETY: `acc` holds `n` whole accumulators, `values` `n_rows` whole rows and `w`
        // `n_q * n_rows` weights (checked above).
        // Chunks per pass: `Q * C` accumulators plus `Q` weights and one row chunk fit the 16
        // registers (three queries with four chunks kept one accumulator on the stack, a
        // store-to-load chain on every row).
        unsafe {
            match n {
                1 => axpy_rows::<T, 1, 4>(w, i0, n_rows, v, row_bytes, head_dim, acc),
                2 => axpy_rows::<T, 2, 4>(w, i0, n_rows, v, row_bytes, head_dim, acc),
                3 => axpy_rows::<T, 3, 2>(w, i0, n_rows, v, row_bytes, head_dim, acc),
                _ => axpy_rows::<T, 4, 2>(w, i0, n_rows, v, row_bytes, head_dim, acc),
            }
        }
        i0 += n;
    }
}

/// Defines the public-signature wrappers of one row type.
macro_rules! wrappers {
    ($dot:ident, $axpy:ident, $code:expr) => {
        fn $dot(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
            // SAFETY: only reachable through `kernels`, which requires the `Avx2Fma` token, so
            // the CPU supports avx2, fma and f16c. Lengths are checked inside.
            unsafe { key_dot_impl::<{ $code }>(q, head_dim, keys, scores) }
        }

        fn $axpy(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
            // SAFETY: as above: the `Avx2Fma` token proves the features; lengths are checked.
            unsafe { value_axpy_impl::<{ $code }>(w, values, head_dim, acc) }
        }
    };
}

wrappers!(key_dot_f32, value_axpy_f32, F32);
wrappers!(key_dot_f16, value_axpy_f16, F16);
wrappers!(key_dot_q8_0, value_axpy_q8_0, Q8_0);

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
