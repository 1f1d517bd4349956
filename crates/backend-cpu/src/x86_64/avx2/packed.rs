//! AVX2 kernels for 8-row interleaved packed Q4_0 / Q4_1 weights (layout: see
//! `crate::packed`). Lane `i` of every vector is weight row `i`: per block, 4 loads give the 8
//! rows' 32 values as low/high nibbles, 8 `vpmaddubsw` against broadcast 4-value activation
//! groups accumulate in i16, one `vpmaddwd` widens, and one FMA applies the 8 rows' scales
//! (converted together from 8 packed f16). Activation rows are taken 2 at a time so each
//! unpacked weight vector is used twice.

use std::arch::x86_64::*;

use super::legacy::{ld128, ld256, read_i32};
use crate::scalar::check_packed_args;

/// The 8 rows' f16 values at `p` as f32.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x8(p: *const u8) -> __m256 {
    // SAFETY: forwarded to the caller.
    _mm256_cvtph_ps(unsafe { ld128(p) })
}

/// The f16 at `p` in all lanes.
///
/// # Safety
/// `p..p + 2` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_splat(p: *const u8) -> __m256 {
    // SAFETY: forwarded to the caller.
    unsafe { super::legacy::f16_splat(p) }
}

/// `R` activation rows (`R` = 1 or 2) against one 8-row group: returns the 8 outputs of each.
///
/// # Safety
/// `group` holds `nb` packed blocks; each `a[r]` points at an activation row of `nb` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows<const Q4_1: bool, const R: usize>(
    nb: usize,
    group: *const u8,
    a: [*const u8; R],
) -> [__m256; R] {
    let (pb, ab, sb) = if Q4_1 { (160, 36, 4) } else { (144, 34, 2) };
    let m4 = _mm256_set1_epi8(0x0F);
    let ones16 = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut summ = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block `b < nb` of the group (`pb` bytes) and of each activation row (`ab`
        // bytes) is readable (caller); every load stays inside them.
        unsafe {
            let blk = group.add(b * pb);
            let mut acc16 = [_mm256_setzero_si256(); R];
            for k in 0..4 {
                let v = ld256(blk.add(8 * sb + 32 * k));
                let lo = _mm256_and_si256(v, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
                for r in 0..R {
                    let qy = a[r].add(b * ab + sb);
                    let y_lo = _mm256_set1_epi32(read_i32(qy.add(4 * k)));
                    let y_hi = _mm256_set1_epi32(read_i32(qy.add(16 + 4 * k)));
                    let p = _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo, y_lo),
                        _mm256_maddubs_epi16(hi, y_hi),
                    );
                    // 8 pair sums of ≤ 2·15·127 each: below 2^15.
                    acc16[r] = _mm256_add_epi16(acc16[r], p);
                }
            }
            let dw = f16x8(blk);
            for r in 0..R {
                let ap = a[r].add(b * ab);
                let mut isum = _mm256_madd_epi16(acc16[r], ones16);
                if !Q4_1 {
                    // Values are nibble − 8: subtract 8 · Σ activation values.
                    let y = ld256(ap.add(2));
                    let s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), y), ones16);
                    let s = _mm256_add_epi32(s, _mm256_shuffle_epi32::<0b01_00_11_10>(s));
                    let s = _mm256_add_epi32(s, _mm256_shuffle_epi32::<0b10_11_00_01>(s));
                    let s = _mm256_add_epi32(s, _mm256_permute2x128_si256::<0x01>(s, s));
                    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<3>(s));
                }
                let d = _mm256_mul_ps(dw, f16_splat(ap));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[r]);
                if Q4_1 {
                    summ[r] = _mm256_fmadd_ps(f16x8(blk.add(16)), f16_splat(ap.add(2)), summ[r]);
                }
            }
        }
    }
    std::array::from_fn(|r| _mm256_add_ps(acc[r], summ[r]))
}

/// # Safety
/// The arguments passed `check_packed_args`, which returned `nb`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn packed<const Q4_1: bool>(
    nb: usize,
    group: &[u8],
    acts: &[u8],
    stride: usize,
    out: &mut [f32],
) {
    let n_acts = out.len() / 8;
    let (g, a) = (group.as_ptr(), acts.as_ptr());
    let mut r = 0;
    while r + 1 < n_acts {
        // SAFETY: activation rows `r` and `r + 1` are inside `acts` (checked), and
        // `out[8r..8r + 16]` is inside `out`.
        unsafe {
            let v = rows::<Q4_1, 2>(nb, g, [a.add(r * stride), a.add((r + 1) * stride)]);
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * r), v[0]);
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * r + 8), v[1]);
        }
        r += 2;
    }
    if r < n_acts {
        // SAFETY: activation row `r` is inside `acts`, `out[8r..8r + 8]` inside `out`.
        unsafe {
            let v = rows::<Q4_1, 1>(nb, g, [a.add(r * stride)]);
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * r), v[0]);
        }
    }
}

/// Packed Q4_0 · Q8_0 (see [`crate::kernels::PackedFn`]).
pub(super) fn packed8_q4_0_q8_0(group: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    let nb = check_packed_args(group, 144, acts, act_stride, out, 34);
    // SAFETY: only reachable through `avx2::kernels` (the `Avx2Fma` token); sizes checked.
    unsafe { packed::<false>(nb, group, acts, act_stride, out) }
}

/// Packed Q4_1 · Q8_1 (see [`crate::kernels::PackedFn`]).
pub(super) fn packed8_q4_1_q8_1(group: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    let nb = check_packed_args(group, 160, acts, act_stride, out, 36);
    // SAFETY: only reachable through `avx2::kernels` (the `Avx2Fma` token); sizes checked.
    unsafe { packed::<true>(nb, group, acts, act_stride, out) }
}
