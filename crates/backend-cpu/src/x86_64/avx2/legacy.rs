//! AVX2 dot products of the 32-value block formats with Q8_0 / Q8_1 activations
//! (ggml `ggml_vec_dot_q{4,5,8}_{0,1}_q8_{0,1}`, AVX2 branch). Block layouts: see
//! `scalar/legacy.rs`.
//!
//! Signed weights (Q4_0, Q5_0, Q8_0) use ggml's sign trick: `|w| · sign(a, w)` keeps
//! `vpmaddubsw`'s first operand unsigned. Unsigned weights (Q4_1, Q5_1) go straight in, and
//! their `m` offset is applied through the activation's `s = d·Σq`.
//!
//! Speed notes (this is the decode hot loop): loads go through raw pointers whose bounds the
//! wrapper proved once with `check_dot_args`, so the loop carries no per-block checks; a
//! block's two leading f16 fields (`d`, and `m` or `s` for the `_1` formats) are converted
//! together with one 32-bit load and one `vcvtph2ps`, so the scale costs ~5 µops per block and
//! row instead of a scalar f16 conversion chain.

use std::arch::x86_64::*;

use super::with_rows;
use crate::kernels::check_dot_args;

/// The little-endian i32 at `p` (unaligned).
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline]
pub(crate) unsafe fn read_i32(p: *const u8) -> i32 {
    // SAFETY: the caller guarantees 4 readable bytes; `read_unaligned` has no alignment need.
    unsafe { p.cast::<i32>().read_unaligned() }
}

/// The two f16 values at `p` in lanes 0 and 1 (lanes 2 and 3 are zero).
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn f16_pair(p: *const u8) -> __m128 {
    // SAFETY: forwarded to the caller.
    _mm_cvtph_ps(_mm_cvtsi32_si128(unsafe { read_i32(p) }))
}

/// The f16 value at `p` in all 8 lanes.
///
/// A splat from memory writes its whole register. (A lone f16 loaded into lane 0 instead is
/// narrowed by LLVM to a `vpinsrw` merged into an arbitrary live register — in practice an
/// accumulator — which chained every block of a kernel on the previous one.)
///
/// # Safety
/// `p..p + 2` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn f16_splat(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 2 readable bytes; `read_unaligned` has no alignment need.
    let bits = unsafe { p.cast::<i16>().read_unaligned() };
    _mm256_cvtph_ps(_mm_set1_epi16(bits))
}

/// 32 bytes at `p`.
///
/// # Safety
/// `p..p + 32` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn ld256(p: *const u8) -> __m256i {
    // SAFETY: forwarded to the caller; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// 16 bytes at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn ld128(p: *const u8) -> __m128i {
    // SAFETY: forwarded to the caller; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(p.cast()) }
}

/// The 32 nibbles of the 16 bytes at `p`: low nibbles first, then high nibbles (ggml order).
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn nibbles_at(p: *const u8) -> __m256i {
    // SAFETY: forwarded to the caller.
    let tmp = unsafe { ld128(p) };
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(tmp), tmp);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Bits of the little-endian u32 at `p` spread to 32 bytes: 0xFF where set, 0 where clear.
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn bits_at(p: *const u8) -> __m256i {
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    // SAFETY: forwarded to the caller.
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(unsafe { read_i32(p) }), shuf);
    let bit_mask = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(bytes, bit_mask), _mm256_set1_epi64x(-1))
}

/// Σ of pairwise u8 × i8 products to 8 i32 lanes, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_ps(ax: __m256i, sy: __m256i) -> __m256 {
    let p16 = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
}

/// The pointers and strides of one kernel call.
#[derive(Clone, Copy)]
struct Rows {
    w: *const u8,
    a: *const u8,
    stride: usize,
}

/// The per-block step of each format: adds block `b`'s products to `acc[r]` (and the `m·s`
/// terms of the `_1` formats to lane 1 of `summ[r]`).
type Step<const R: usize> = unsafe fn(Rows, usize, &mut [__m256; R], &mut [__m128; R]);

/// Runs `step` over blocks `0..nb` and returns each row's total. Every row count accumulates
/// in the same order (one chain per row, blocks in order), so a token's result does not depend
/// on how many other rows share its call: batching never changes a sequence's logits.
///
/// # Safety
/// `step` must be sound for every block index `< nb` of `rows`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run<const R: usize>(nb: usize, rows: Rows, step: Step<R>, out: &mut [f32]) {
    let mut acc = [_mm256_setzero_ps(); R];
    let mut summ = [_mm_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: b < nb (the caller's contract).
        unsafe { step(rows, b, &mut acc, &mut summ) };
    }
    for r in 0..R {
        let m = _mm_cvtss_f32(_mm_movehdup_ps(summ[r]));
        out[r] = super::hsum_f32x8(acc[r]) + m;
    }
}

/// Signed-weight block body: `acc[r] += d_w·d_a · Σ qx·qa` (`wp`: the weight block, `d` first;
/// activation blocks are Q8_0, 34 bytes).
///
/// # Safety
/// `wp..wp + 2` and activation block `b` of every row must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn signed_body<const R: usize>(
    qx: __m256i,
    wp: *const u8,
    rows: Rows,
    b: usize,
    acc: &mut [__m256; R],
) {
    let ax = _mm256_sign_epi8(qx, qx);
    // SAFETY: 2 readable bytes at the weight block (caller).
    let dw = unsafe { f16_splat(wp) };
    for (r, acc) in acc.iter_mut().enumerate() {
        // SAFETY: activation block `b` of row `r` (34 bytes) is readable (caller).
        let (da, y) = unsafe {
            let ap = rows.a.add(r * rows.stride + b * 34);
            (f16_splat(ap), ld256(ap.add(2)))
        };
        let d = _mm256_mul_ps(dw, da);
        *acc = _mm256_fmadd_ps(d, dot_ps(ax, _mm256_sign_epi8(y, qx)), *acc);
    }
}

/// Unsigned-weight block body (Q4_1/Q5_1 with Q8_1 activations, 36 bytes):
/// `acc[r] += d_w·d_a · Σ qx·qa`, lane 1 of `summ[r] += m_w·s_a`.
///
/// # Safety
/// `wp..wp + 4` and activation block `b` of every row must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unsigned_body<const R: usize>(
    qx: __m256i,
    wp: *const u8,
    rows: Rows,
    b: usize,
    acc: &mut [__m256; R],
    summ: &mut [__m128; R],
) {
    // SAFETY: 4 readable bytes at the weight block (caller).
    let dm = unsafe { f16_pair(wp) };
    for r in 0..R {
        // SAFETY: activation block `b` of row `r` (36 bytes) is readable (caller).
        let (ds, y) = unsafe {
            let ap = rows.a.add(r * rows.stride + b * 36);
            (f16_pair(ap), ld256(ap.add(4)))
        };
        let scales = _mm_mul_ps(dm, ds);
        summ[r] = _mm_add_ps(summ[r], scales);
        let d = _mm256_broadcastss_ps(scales);
        acc[r] = _mm256_fmadd_ps(d, dot_ps(qx, y), acc[r]);
    }
}

/// Q4_0 block `b` (18 bytes: `d`, 16 nibble bytes).
///
/// # Safety
/// Block `b` of the weight row and of every activation row must be readable.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_step<const R: usize>(
    rows: Rows,
    b: usize,
    acc: &mut [__m256; R],
    _: &mut [__m128; R],
) {
    // SAFETY: the weight block is 18 readable bytes (caller).
    unsafe {
        let wp = rows.w.add(b * 18);
        let qx = _mm256_sub_epi8(nibbles_at(wp.add(2)), _mm256_set1_epi8(8));
        signed_body(qx, wp, rows, b, acc);
    }
}

/// Q5_0 block `b` (22 bytes: `d`, `qh[4]`, 16 nibble bytes).
///
/// # Safety
/// Block `b` of the weight row and of every activation row must be readable.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_step<const R: usize>(
    rows: Rows,
    b: usize,
    acc: &mut [__m256; R],
    _: &mut [__m128; R],
) {
    // SAFETY: the weight block is 22 readable bytes (caller).
    unsafe {
        let wp = rows.w.add(b * 22);
        let hi = _mm256_andnot_si256(bits_at(wp.add(2)), _mm256_set1_epi8(0xF0u8 as i8));
        let qx = _mm256_or_si256(nibbles_at(wp.add(6)), hi);
        signed_body(qx, wp, rows, b, acc);
    }
}

/// Q8_0 block `b` (34 bytes: `d`, 32 × i8).
///
/// # Safety
/// Block `b` of the weight row and of every activation row must be readable.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_step<const R: usize>(
    rows: Rows,
    b: usize,
    acc: &mut [__m256; R],
    _: &mut [__m128; R],
) {
    // SAFETY: the weight block is 34 readable bytes (caller).
    unsafe {
        let wp = rows.w.add(b * 34);
        signed_body(ld256(wp.add(2)), wp, rows, b, acc);
    }
}

/// Q4_1 block `b` (20 bytes: `d`, `m`, 16 nibble bytes).
///
/// # Safety
/// Block `b` of the weight row and of every activation row must be readable.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_step<const R: usize>(
    rows: Rows,
    b: usize,
    acc: &mut [__m256; R],
    summ: &mut [__m128; R],
) {
    // SAFETY: the weight block is 20 readable bytes (caller).
    unsafe {
        let wp = rows.w.add(b * 20);
        unsigned_body(nibbles_at(wp.add(4)), wp, rows, b, acc, summ);
    }
}

/// Q5_1 block `b` (24 bytes: `d`, `m`, `qh[4]`, 16 nibble bytes).
///
/// # Safety
/// Block `b` of the weight row and of every activation row must be readable.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_1_step<const R: usize>(
    rows: Rows,
    b: usize,
    acc: &mut [__m256; R],
    summ: &mut [__m128; R],
) {
    // SAFETY: the weight block is 24 readable bytes (caller).
    unsafe {
        let wp = rows.w.add(b * 24);
        let hi = _mm256_and_si256(bits_at(wp.add(4)), _mm256_set1_epi8(0x10));
        let qx = _mm256_or_si256(nibbles_at(wp.add(8)), hi);
        unsigned_body(qx, wp, rows, b, acc, summ);
    }
}

/// Declares the row-count-generic kernel `$imp::<R>` running `$step` over every block.
macro_rules! kernel {
    ($imp:ident, $step:ident) => {
        /// # Safety
        /// `w` holds `nb` weight blocks and `acts` `R` activation rows of `nb` blocks at
        /// `stride` (checked by `check_dot_args`).
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $imp<const R: usize>(
            nb: usize,
            w: &[u8],
            acts: &[u8],
            stride: usize,
            out: &mut [f32],
        ) {
            let rows = Rows {
                w: w.as_ptr(),
                a: acts.as_ptr(),
                stride,
            };
            // SAFETY: every block index `< nb` is in bounds of `w` and of each activation row
            // (this function's contract).
            unsafe { run::<R>(nb, rows, $step::<R>, out) }
        }
    };
}

kernel!(q4_0, q4_0_step);
kernel!(q5_0, q5_0_step);
kernel!(q8_0, q8_0_step);
kernel!(q4_1, q4_1_step);
kernel!(q5_1, q5_1_step);

/// Declares a [`DotFn`](crate::kernels::DotFn) wrapper around an `R`-generic AVX2 kernel.
macro_rules! wrapper {
    ($name:ident, $imp:ident, $w_bytes:expr, $a_bytes:expr) => {
        pub(super) fn $name(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
            let nb = check_dot_args(w, $w_bytes, acts, act_stride, out.len(), $a_bytes);
            // SAFETY: this wrapper is only reachable through `avx2::kernels`, which requires the
            // `Avx2Fma` token, so the CPU supports avx2, fma and f16c; `check_dot_args` proved
            // that `w` is `nb` whole blocks and that `acts` holds `out.len()` rows of `nb`
            // activation blocks at `act_stride`, which is what the kernels read.
            unsafe { with_rows!($imp, out, (nb, w, acts, act_stride)) }
        }
    };
}

wrapper!(vec_dot_q4_0_q8_0, q4_0, 18, 34);
wrapper!(vec_dot_q4_1_q8_1, q4_1, 20, 36);
wrapper!(vec_dot_q5_0_q8_0, q5_0, 22, 34);
wrapper!(vec_dot_q5_1_q8_1, q5_1, 24, 36);
wrapper!(vec_dot_q8_0_q8_0, q8_0, 34, 34);
pub(super) use wrapper;
