//! AVX2 dot products of the 32-value block formats with Q8_0 / Q8_1 activations
//! (ggml `ggml_vec_dot_q{4,5,8}_{0,1}_q8_{0,1}`, AVX2 branch). Block layouts: see
//! `scalar/legacy.rs`.
//!
//! Signed weights (Q4_0, Q5_0, Q8_0) use ggml's sign trick: `|w| · sign(a, w)` keeps
//! `vpmaddubsw`'s first operand unsigned. Unsigned weights (Q4_1, Q5_1) go straight in, and
//! their `m` offset is applied through the activation's `s = d·Σq`.

use std::arch::x86_64::*;

use super::{bytes_from_bits_32, dot_u8_i8, f16_mul, hsum_f32x8, load256, nibbles_32, with_rows};
use crate::kernels::check_dot_args;

/// Per-block body shared by the signed formats (`wb`: the weight block, starting with `d`):
/// `acc[r] += d_w·d_a · Σ qx·qa` for each row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate_signed<const R: usize>(
    acc: &mut [__m256; R],
    qx: __m256i,
    wb: &[u8],
    acts: &[u8],
    at: (usize, usize),
) {
    let (offset, stride) = at;
    let ax = _mm256_sign_epi8(qx, qx);
    for (r, acc) in acc.iter_mut().enumerate() {
        let ab = &acts[r * stride + offset..][..34];
        let sy = _mm256_sign_epi8(load256(&ab[2..]), qx);
        let p = _mm256_cvtepi32_ps(dot_u8_i8(ax, sy));
        *acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_mul(wb, ab)), p, *acc);
    }
}

/// Per-block body shared by Q4_1/Q5_1 (`wb`: the weight block, `d` then `m`):
/// `acc[r] += d_w·d_a · Σ qx·qa`, `summs[r] += m_w·s_a`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate_unsigned<const R: usize>(
    acc: &mut [__m256; R],
    summs: &mut [f32; R],
    qx: __m256i,
    wb: &[u8],
    acts: &[u8],
    at: (usize, usize),
) {
    let (offset, stride) = at;
    for r in 0..R {
        let ab = &acts[r * stride + offset..][..36];
        let p = _mm256_cvtepi32_ps(dot_u8_i8(qx, load256(&ab[4..])));
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16_mul(wb, ab)), p, acc[r]);
        summs[r] += f16_mul(&wb[2..], &ab[2..]);
    }
}

/// Runs `body` for every block index `b < nb`, alternating two sets of `R` accumulators
/// between even and odd blocks so consecutive blocks' FMAs do not wait on each other (one
/// chain costs 4 cycles per block); evaluates to their lane-wise sum. The split depends only
/// on the block index, so results do not depend on the caller.
macro_rules! two_chains {
    ($nb:expr, $rows:ident, |$b:ident, $acc:ident| $body:block) => {{
        let mut even = [_mm256_setzero_ps(); $rows];
        let mut odd = [_mm256_setzero_ps(); $rows];
        let mut $b = 0;
        while $b + 1 < $nb {
            {
                let $acc = &mut even;
                $body
            }
            $b += 1;
            {
                let $acc = &mut odd;
                $body
            }
            $b += 1;
        }
        if $b < $nb {
            let $acc = &mut even;
            $body
        }
        std::array::from_fn::<__m256, $rows, _>(|r| _mm256_add_ps(even[r], odd[r]))
    }};
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let acc = two_chains!(nb, R, |b, acc| {
        let wb = &w[b * 18..][..18];
        let qx = _mm256_sub_epi8(nibbles_32(&wb[2..]), _mm256_set1_epi8(8));
        accumulate_signed(acc, qx, wb, acts, (b * 34, stride));
    });
    for (o, a) in out.iter_mut().zip(acc) {
        *o = hsum_f32x8(a);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q5_0<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let acc = two_chains!(nb, R, |b, acc| {
        let wb = &w[b * 22..][..22];
        let hi = _mm256_andnot_si256(bytes_from_bits_32(&wb[2..]), _mm256_set1_epi8(0xF0u8 as i8));
        let qx = _mm256_or_si256(nibbles_32(&wb[6..]), hi);
        accumulate_signed(acc, qx, wb, acts, (b * 34, stride));
    });
    for (o, a) in out.iter_mut().zip(acc) {
        *o = hsum_f32x8(a);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let acc = two_chains!(nb, R, |b, acc| {
        let wb = &w[b * 34..][..34];
        accumulate_signed(acc, load256(&wb[2..]), wb, acts, (b * 34, stride));
    });
    for (o, a) in out.iter_mut().zip(acc) {
        *o = hsum_f32x8(a);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let mut summs = [0.0f32; R];
    let acc = two_chains!(nb, R, |b, acc| {
        let wb = &w[b * 20..][..20];
        let qx = nibbles_32(&wb[4..]);
        accumulate_unsigned(acc, &mut summs, qx, wb, acts, (b * 36, stride));
    });
    for r in 0..R {
        out[r] = hsum_f32x8(acc[r]) + summs[r];
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q5_1<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let mut summs = [0.0f32; R];
    let acc = two_chains!(nb, R, |b, acc| {
        let wb = &w[b * 24..][..24];
        let hi = _mm256_and_si256(bytes_from_bits_32(&wb[4..]), _mm256_set1_epi8(0x10));
        let qx = _mm256_or_si256(nibbles_32(&wb[8..]), hi);
        accumulate_unsigned(acc, &mut summs, qx, wb, acts, (b * 36, stride));
    });
    for r in 0..R {
        out[r] = hsum_f32x8(acc[r]) + summs[r];
    }
}

/// Declares a [`DotFn`](crate::kernels::DotFn) wrapper around an `R`-generic AVX2 kernel.
macro_rules! wrapper {
    ($name:ident, $imp:ident, $w_bytes:expr, $a_bytes:expr) => {
        pub(super) fn $name(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
            let nb = check_dot_args(w, $w_bytes, acts, act_stride, out.len(), $a_bytes);
            // SAFETY: this wrapper is only reachable through `avx2::kernels`, which requires the
            // `Avx2Fma` token, so the CPU supports avx2, fma and f16c. Memory access inside is
            // bounds-checked.
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
