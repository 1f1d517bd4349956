//! AVX2 dot products of the K-quant super-blocks with Q8_K activations (ggml
//! `ggml_vec_dot_q{2..6}_K_q8_K`, AVX2 branch). Layouts: see `scalar/kquants.rs`.
//!
//! Each 256-value weight super-block is unpacked once and multiplied with all `R` activation
//! rows. Offsets (Q4_K's mins, Q6_K's −32) are not applied per value: they are folded in once
//! per super-block through the activation's 16 block sums (`bsums`), which is exact integer
//! arithmetic.

use std::arch::x86_64::*;

use super::legacy::{f16_pair, ld128, ld256, read_i32, wrapper};
use super::{f16_at, f32_at, hsum_f32x8, hsum_i32x8, load128, load256, with_rows};
use crate::kernels::check_dot_args;

const Q2K: usize = 84;
const Q3K: usize = 110;
const Q4K: usize = 144;
const Q5K: usize = 176;
const Q6K: usize = 210;
const Q8K: usize = 292;

/// Q4_K's 8 scales (bytes 0..8) and 8 mins (bytes 8..16) unpacked from its `scales[12]`
/// (ggml's `utmp` shuffle; equivalent to `get_scale_min_k4` for j = 0..8), as 16 u16 lanes:
/// scales in the low half, mins in the high half.
///
/// # Safety
/// `sc..sc + 12` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_scales_mins(sc: *const u8) -> __m256i {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    // SAFETY: 12 readable bytes (caller).
    let (u0, u1, u2) = unsafe {
        (
            read_i32(sc) as u32,
            read_i32(sc.add(4)) as u32,
            read_i32(sc.add(8)) as u32,
        )
    };
    let u3 = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let mins_lo = u1 & KMASK1;
    let scales_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    _mm256_cvtepu8_epi16(_mm_set_epi32(
        u3 as i32,
        mins_lo as i32,
        scales_hi as i32,
        (u0 & KMASK1) as i32,
    ))
}

/// `[mins[j] · (bsums[2j] + bsums[2j+1])]` summed pairwise to 4 i32 lanes, as f32, for the
/// Q8_K activation block at `ab`.
///
/// # Safety
/// `ab..ab + 292` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_min_terms(mins: __m128i, ab: *const u8) -> __m128 {
    // SAFETY: the bsums are bytes 260..292 of the block (caller).
    let bsums = unsafe { ld256(ab.add(260)) };
    let pairs = _mm_hadd_epi16(
        _mm256_castsi256_si128(bsums),
        _mm256_extracti128_si256::<1>(bsums),
    );
    _mm_cvtepi32_ps(_mm_madd_epi16(mins, pairs))
}

/// The fifth bits of Q5_K sub-block `sb` (bit `sb` of each `qh` byte) as 0 or 16 per byte.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_k_high(qh: __m256i, sb: i32) -> __m256i {
    let bit = _mm256_and_si256(
        _mm256_srl_epi16(qh, _mm_cvtsi32_si128(sb)),
        _mm256_set1_epi8(1),
    );
    _mm256_slli_epi16::<4>(bit)
}

/// `[d_w · d_a, dmin_w · d_a]` (lanes 0 and 1) from the weight block's leading f16 pair and
/// the Q8_K block's f32 `d`.
///
/// # Safety
/// `wp..wp + 4` and `ab..ab + 4` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_pair(wp: *const u8, ab: *const u8) -> __m128 {
    // SAFETY: 4 readable bytes at each (caller).
    unsafe { _mm_mul_ps(f16_pair(wp), _mm_set1_ps(ab.cast::<f32>().read_unaligned())) }
}

/// Q4_K (`Q5 = false`, 144-byte blocks) and Q5_K (`Q5 = true`, 176-byte blocks, `qh[32]` @16
/// adding a fifth bit): they share scales, mins and the 4-bit part.
///
/// # Safety
/// `w` holds `nb` blocks and `acts` `R` Q8_K rows of `nb` blocks at `stride`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q45_k<const R: usize, const Q5: bool>(
    nb: usize,
    w: &[u8],
    acts: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    let (block, qs_at) = if Q5 { (Q5K, 48) } else { (Q4K, 16) };
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut acc_m = [_mm_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block `b < nb` of the weight row (`block` bytes at `wp`) and of
        // every activation row (292 bytes at `ab`) is readable (contract); every load below
        // stays inside those blocks.
        unsafe {
            let wp = w.as_ptr().add(b * block);
            let mins_scales = q4_k_scales_mins(wp.add(4));
            let sc128 = _mm256_castsi256_si128(mins_scales);
            let scales = _mm256_set_m128i(sc128, sc128);
            let mins = _mm256_extracti128_si256::<1>(mins_scales);
            let qh = if Q5 {
                ld256(wp.add(16))
            } else {
                _mm256_setzero_si256()
            };
            let mut sumi = [_mm256_setzero_si256(); R];
            for j in 0..4 {
                let pick = |i: usize| _mm256_set1_epi16((((2 * i + 1) << 8) | (2 * i)) as i16);
                let (scale_l, scale_h) = (
                    _mm256_shuffle_epi8(scales, pick(2 * j)),
                    _mm256_shuffle_epi8(scales, pick(2 * j + 1)),
                );
                let q4bits = ld256(wp.add(qs_at + 32 * j));
                let mut ql = _mm256_and_si256(q4bits, m4);
                let mut qh4 = _mm256_and_si256(_mm256_srli_epi16::<4>(q4bits), m4);
                if Q5 {
                    ql = _mm256_or_si256(ql, q5_k_high(qh, 2 * j as i32));
                    qh4 = _mm256_or_si256(qh4, q5_k_high(qh, 2 * j as i32 + 1));
                }
                for (r, sumi) in sumi.iter_mut().enumerate() {
                    let q8 = acts.as_ptr().add(r * stride + b * Q8K + 4 + 64 * j);
                    let (y_l, y_h) = (ld256(q8), ld256(q8.add(32)));
                    let pl = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(ql, y_l));
                    let ph = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(qh4, y_h));
                    *sumi = _mm256_add_epi32(*sumi, _mm256_add_epi32(pl, ph));
                }
            }
            for r in 0..R {
                let ab = acts.as_ptr().add(r * stride + b * Q8K);
                let dd = scale_pair(wp, ab);
                let d = _mm256_broadcastss_ps(dd);
                acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi[r]), acc[r]);
                let dmin = _mm_shuffle_ps::<0b01_01_01_01>(dd, dd);
                acc_m[r] = _mm_fmadd_ps(dmin, q4_k_min_terms(mins, ab), acc_m[r]);
            }
        }
    }
    for r in 0..R {
        out[r] = hsum_f32x8(acc[r]) - hsum_f32x4(acc_m[r]);
    }
}

/// Sum of the 4 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_f32x4(x: __m128) -> f32 {
    let r = _mm_add_ps(x, _mm_movehl_ps(x, x));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// # Safety
/// See [`q45_k`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    // SAFETY: same contract.
    unsafe { q45_k::<R, false>(nb, w, acts, stride, out) };
}

/// # Safety
/// See [`q45_k`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_k<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    // SAFETY: same contract.
    unsafe { q45_k::<R, true>(nb, w, acts, stride, out) };
}

/// Q6_K: `ql[128]` low nibbles, `qh[64]` high 2-bit pairs, 16 i8 scales, `d`; values are
/// `q − 32`, the `−32` folded in through the activation block sums.
///
/// # Safety
/// `w` holds `nb` blocks and `acts` `R` Q8_K rows of `nb` blocks at `stride`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let (m4, m2) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block `b < nb` of the weight row (210 bytes at `wp`) and of
        // every activation row (292 bytes) is readable (contract); every load below stays
        // inside those blocks.
        unsafe {
            let wp = w.as_ptr().add(b * Q6K);
            let scales = ld128(wp.add(192));
            let mut sumi = [_mm256_setzero_si256(); R];
            for h in 0..2 {
                let (ql, qh) = (wp.add(64 * h), wp.add(128 + 32 * h));
                let (bits1, bits2, bits_h) = (ld256(ql), ld256(ql.add(32)), ld256(qh));
                let hi = |s: __m256i| _mm256_slli_epi16::<4>(_mm256_and_si256(s, m2));
                let q = [
                    _mm256_or_si256(_mm256_and_si256(bits1, m4), hi(bits_h)),
                    _mm256_or_si256(
                        _mm256_and_si256(bits2, m4),
                        hi(_mm256_srli_epi16::<2>(bits_h)),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(bits1), m4),
                        hi(_mm256_srli_epi16::<4>(bits_h)),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(bits2), m4),
                        hi(_mm256_srli_epi16::<6>(bits_h)),
                    ),
                ];
                let sc: [__m256i; 4] = std::array::from_fn(|g| {
                    let i = (8 * h + 2 * g) as i64;
                    let pick =
                        _mm_set_epi64x((i + 1) * 0x0101_0101_0101_0101, i * 0x0101_0101_0101_0101);
                    _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, pick))
                });
                for (r, sumi) in sumi.iter_mut().enumerate() {
                    let q8 = acts.as_ptr().add(r * stride + b * Q8K + 4 + 128 * h);
                    for g in 0..4 {
                        let p = _mm256_maddubs_epi16(q[g], ld256(q8.add(32 * g)));
                        *sumi = _mm256_add_epi32(*sumi, _mm256_madd_epi16(sc[g], p));
                    }
                }
            }
            let scales16 = _mm256_cvtepi8_epi16(scales);
            for r in 0..R {
                let ab = acts.as_ptr().add(r * stride + b * Q8K);
                let offset = _mm256_madd_epi16(scales16, ld256(ab.add(260)));
                let isum = _mm256_sub_epi32(sumi[r], _mm256_slli_epi32::<5>(offset));
                let d = _mm256_broadcastss_ps(scale_pair(wp.add(208), ab));
                acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc[r]);
            }
        }
    }
    for r in 0..R {
        out[r] = hsum_f32x8(acc[r]);
    }
}

/// Q2_K: 2-bit values in four bit planes of `qs[64]`, 16 sub-blocks of 16 with 4-bit scales
/// (low nibble of `scales[16]`) and 4-bit mins (high nibble), applied through `bsums`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q2_k<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let m3 = _mm256_set1_epi8(3);
    let mut sumf = [0.0f32; R];
    for b in 0..nb {
        let wb = &w[b * Q2K..][..Q2K];
        let sc = &wb[..16];
        let mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(
            _mm_srli_epi16::<4>(load128(sc)),
            _mm_set1_epi8(0x0F),
        ));
        let mut sumi = [_mm256_setzero_si256(); R];
        for h in 0..2 {
            let q2bits = load256(&wb[16 + 32 * h..]);
            for g in 0..4 {
                let q2 = _mm256_and_si256(
                    _mm256_srl_epi16(q2bits, _mm_cvtsi32_si128(2 * g as i32)),
                    m3,
                );
                let (lo, hi) = (sc[8 * h + 2 * g] & 0x0F, sc[8 * h + 2 * g + 1] & 0x0F);
                let scale =
                    _mm256_set_m128i(_mm_set1_epi16(i16::from(hi)), _mm_set1_epi16(i16::from(lo)));
                for r in 0..R {
                    let q8 = &acts[r * stride + b * Q8K + 4 + 128 * h + 32 * g..][..32];
                    let p = _mm256_madd_epi16(scale, _mm256_maddubs_epi16(q2, load256(q8)));
                    sumi[r] = _mm256_add_epi32(sumi[r], p);
                }
            }
        }
        let (d, dmin) = (f16_at(&wb[80..]), f16_at(&wb[82..]));
        for r in 0..R {
            let ab = &acts[r * stride + b * Q8K..][..Q8K];
            let yd = f32_at(ab);
            let min_sum = hsum_i32x8(_mm256_madd_epi16(mins16, load256(&ab[260..])));
            sumf[r] += yd * d * hsum_i32x8(sumi[r]) as f32 - yd * dmin * min_sum as f32;
        }
    }
    out.copy_from_slice(&sumf);
}

wrapper!(vec_dot_q2_k_q8_k, q2_k, Q2K, Q8K);
/// Q3_K: 2 low bits in four bit planes of `qs[64]` plus a high bit in `hmask[32]`, value
/// `low − 4` where the high bit is clear. Computed as `Σ (low + 4·high) · a − 4 · Σ a` per
/// sub-block so `vpmaddubsw` sees unsigned weights; the `4 · Σ a` term comes from `bsums`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q3_k<const R: usize>(nb: usize, w: &[u8], acts: &[u8], stride: usize, out: &mut [f32]) {
    let (m3, one) = (_mm256_set1_epi8(3), _mm256_set1_epi8(1));
    let mut sumf = [0.0f32; R];
    for b in 0..nb {
        let wb = &w[b * Q3K..][..Q3K];
        let sc = crate::scalar::q3_k_scales(&wb[96..108]).map(|v| v as i16);
        let sc_bytes: [u8; 32] = std::array::from_fn(|i| sc[i / 2].to_le_bytes()[i % 2]);
        let scales16 = load256(&sc_bytes);
        let hbits = load256(wb);
        let mut sumi = [_mm256_setzero_si256(); R];
        for h in 0..2 {
            let q3bits = load256(&wb[32 + 32 * h..]);
            for g in 0..4 {
                let low = _mm256_and_si256(
                    _mm256_srl_epi16(q3bits, _mm_cvtsi32_si128(2 * g as i32)),
                    m3,
                );
                let high = _mm256_and_si256(
                    _mm256_srl_epi16(hbits, _mm_cvtsi32_si128((4 * h + g) as i32)),
                    one,
                );
                let q = _mm256_or_si256(low, _mm256_slli_epi16::<2>(high));
                let (lo, hi) = (sc[8 * h + 2 * g], sc[8 * h + 2 * g + 1]);
                let scale = _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo));
                for r in 0..R {
                    let q8 = &acts[r * stride + b * Q8K + 4 + 128 * h + 32 * g..][..32];
                    let p = _mm256_madd_epi16(scale, _mm256_maddubs_epi16(q, load256(q8)));
                    sumi[r] = _mm256_add_epi32(sumi[r], p);
                }
            }
        }
        let d = f16_at(&wb[108..]);
        for r in 0..R {
            let ab = &acts[r * stride + b * Q8K..][..Q8K];
            let offset = hsum_i32x8(_mm256_madd_epi16(scales16, load256(&ab[260..])));
            sumf[r] += d * f32_at(ab) * (hsum_i32x8(sumi[r]) - 4 * offset) as f32;
        }
    }
    out.copy_from_slice(&sumf);
}

wrapper!(vec_dot_q3_k_q8_k, q3_k, Q3K, Q8K);
wrapper!(vec_dot_q4_k_q8_k, q4_k, Q4K, Q8K);
wrapper!(vec_dot_q5_k_q8_k, q5_k, Q5K, Q8K);
wrapper!(vec_dot_q6_k_q8_k, q6_k, Q6K, Q8K);
