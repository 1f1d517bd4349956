//! AVX2 kernels for 8-row interleaved packed Q4_0 / Q4_1 / Q5_0 / Q8_0 / Q4_K / Q6_K weights
//! (layout: see `crate::packed`). Lane `i` of every vector is weight row `i`: per block, 4
//! loads give the 8 rows' 32 values as low/high nibbles (Q5_0 takes its 5-bit values from 5
//! vectors with masks and shifts), 8 `vpmaddubsw` against broadcast 4-value activation groups
//! accumulate in i16, `vpmaddwd` widens, and one FMA applies the 8 rows' scales (converted
//! together from 8 packed f16) times the activation block's (one f32 broadcast from the
//! activation row's trailer, as its block sum for Q4_0 / Q5_0). Q8_0 has 8 vectors of signed
//! values and uses ggml's sign trick (`|w| · sign(a, w)`), widening each product right away
//! since its i16 sums would overflow.
//! The K-quants apply per-row sub-block scales with `vpmaddwd` and their offsets through the
//! activation block sums. Activation rows are taken 4 at a time (then 2, then 1) so each
//! unpacked weight vector is used four times; every output's arithmetic is the same whichever path computes it (batch
//! invariance).

use std::arch::x86_64::*;

use super::legacy::{ld128, ld256, read_i32};
use crate::kernels::PACKED_TRAILER_BYTES;
use crate::packed::fmt::{Q4_0, Q4_1, Q4K, Q5_0, Q6K, Q8_0};

/// Block `b`'s trailer entry of a packed activation row of `nb` blocks of `block_bytes`
/// ([`crate::ActFormat::packed_row_bytes`]): the f32 `d`, then the i32 block sum (Q8_0) or
/// the f32 `s` (Q8_1), in all lanes.
///
/// # Safety
/// `a` points at a packed Q8_0 / Q8_1 activation row of `nb` blocks, and `b < nb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn trailer(
    a: *const u8,
    block_bytes: usize,
    nb: usize,
    b: usize,
) -> (__m256, __m256i) {
    // SAFETY: the trailer's 8-byte entries follow the `nb` blocks (caller).
    unsafe {
        let t = a.add(block_bytes * nb + PACKED_TRAILER_BYTES * b);
        (
            _mm256_set1_ps(t.cast::<f32>().read_unaligned()),
            _mm256_set1_epi32(read_i32(t.add(4))),
        )
    }
}

/// The 8 rows' f16 values at `p` as f32.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn f16x8(p: *const u8) -> __m256 {
    // SAFETY: forwarded to the caller.
    _mm256_cvtph_ps(unsafe { ld128(p) })
}

/// `R` activation rows (`R` = 1, 2 or 4) against one 8-row group: returns the 8 outputs of each.
/// The Q4_1 minimum term `m · Σa` goes into the same accumulator as the block product, so four
/// rows keep their accumulators in registers (a separate sum per row spilled at `R` = 4).
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
    for b in 0..nb {
        // SAFETY: block `b < nb` of the group (`pb` bytes) and of each activation row (`ab`
        // bytes) is readable (caller); every load stays inside them.
        unsafe {
            let blk = group.add(b * pb);
            prefetch_ahead(blk, pb);
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
                let (da, second) = trailer(a[r], ab, nb, b);
                let mut isum = _mm256_madd_epi16(acc16[r], ones16);
                if !Q4_1 {
                    // Values are nibble − 8: subtract 8 · Σ activation values.
                    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<3>(second));
                }
                let d = _mm256_mul_ps(dw, da);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[r]);
                if Q4_1 {
                    let sa = _mm256_castsi256_ps(second);
                    acc[r] = _mm256_fmadd_ps(f16x8(blk.add(16)), sa, acc[r]);
                }
            }
        }
    }
    acc
}

/// The 8 value vectors `V0..V7` (`u = w + 16` in 0..32) of a packed Q5_0 block from its 5
/// vectors at `p` (layout: see `crate::packed`). Each spare-bit field is masked before its
/// 16-bit shift, so no bit crosses into the other byte of a lane.
///
/// # Safety
/// `p..p + 160` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn q5_values(p: *const u8) -> [__m256i; 8] {
    // SAFETY: 5 vectors of 32 bytes are readable (caller).
    let b: [__m256i; 5] = std::array::from_fn(|m| unsafe { ld256(p.add(32 * m)) });
    let m5 = _mm256_set1_epi8(0x1F);
    let top3 = _mm256_set1_epi8(0xE0u8 as i8);
    let mid2 = _mm256_set1_epi8(0x60);
    let bit7 = _mm256_set1_epi8(0x80u8 as i8);
    let low = |x: __m256i| _mm256_srli_epi16::<5>(_mm256_and_si256(x, top3));
    let high = |x: __m256i| _mm256_srli_epi16::<2>(_mm256_and_si256(x, mid2));
    [
        _mm256_and_si256(b[0], m5),
        _mm256_and_si256(b[1], m5),
        _mm256_and_si256(b[2], m5),
        _mm256_and_si256(b[3], m5),
        _mm256_and_si256(b[4], m5),
        _mm256_or_si256(low(b[0]), high(b[1])),
        _mm256_or_si256(low(b[2]), high(b[3])),
        _mm256_or_si256(
            low(b[4]),
            _mm256_or_si256(
                _mm256_srli_epi16::<4>(_mm256_and_si256(b[1], bit7)),
                _mm256_srli_epi16::<3>(_mm256_and_si256(b[3], bit7)),
            ),
        ),
    ]
}

/// [`rows`] for Q5_0: nibbles plus fifth bits are `u = w + 16` in 0..32; `Σ u·y` is summed
/// in i16 two vectors at a time (≤ 4 · 2 · 31 · 127 < 2^15), then `16 · Σ y` is subtracted.
///
/// # Safety
/// As [`rows`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q5_0<const R: usize>(nb: usize, group: *const u8, a: [*const u8; R]) -> [__m256; R] {
    let ones16 = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block `b < nb` of the group (176 bytes) and of each activation row (34
        // bytes) is readable (caller); every load stays inside them.
        unsafe {
            let blk = group.add(b * 176);
            prefetch_ahead(blk, 176);
            let u = q5_values(blk.add(16));
            let mut isum = [_mm256_setzero_si256(); R];
            for half in 0..2 {
                let mut acc16 = [_mm256_setzero_si256(); R];
                for k in 2 * half..2 * half + 2 {
                    let (lo, hi) = (u[2 * k], u[2 * k + 1]);
                    for r in 0..R {
                        let qy = a[r].add(b * 34 + 2);
                        let y_lo = _mm256_set1_epi32(read_i32(qy.add(4 * k)));
                        let y_hi = _mm256_set1_epi32(read_i32(qy.add(16 + 4 * k)));
                        let p = _mm256_add_epi16(
                            _mm256_maddubs_epi16(lo, y_lo),
                            _mm256_maddubs_epi16(hi, y_hi),
                        );
                        acc16[r] = _mm256_add_epi16(acc16[r], p);
                    }
                }
                for r in 0..R {
                    isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(acc16[r], ones16));
                }
            }
            let dw = f16x8(blk);
            for r in 0..R {
                let (da, sum) = trailer(a[r], 34, nb, b);
                let isum = _mm256_sub_epi32(isum[r], _mm256_slli_epi32::<4>(sum));
                let d = _mm256_mul_ps(dw, da);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[r]);
            }
        }
    }
    acc
}

/// [`rows`] for Q8_0: `|w| · sign(y, w)` per vector, widened to i32 right away.
///
/// # Safety
/// As [`rows`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q8_0<const R: usize>(nb: usize, group: *const u8, a: [*const u8; R]) -> [__m256; R] {
    let ones16 = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block `b < nb` of the group (272 bytes) and of each activation row (34
        // bytes) is readable (caller); every load stays inside them.
        unsafe {
            let blk = group.add(b * 272);
            prefetch_ahead(blk, 272);
            let mut isum = [_mm256_setzero_si256(); R];
            for k in 0..8 {
                let w = ld256(blk.add(16 + 32 * k));
                let aw = _mm256_abs_epi8(w);
                for r in 0..R {
                    let y = _mm256_set1_epi32(read_i32(a[r].add(b * 34 + 2 + 4 * k)));
                    let p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(y, w));
                    isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(p, ones16));
                }
            }
            let dw = f16x8(blk);
            for r in 0..R {
                let d = _mm256_mul_ps(dw, trailer(a[r], 34, nb, b).0);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), d, acc[r]);
            }
        }
    }
    acc
}

/// How far ahead of the bytes in use every packed kernel prefetches. Decoding reads each
/// weight once from memory, and one core's hardware prefetcher falls behind once the kernel
/// is busy computing. Prefetching is spread over a block's work, a cache line or two per
/// step: the legacy formats prefetch their whole (short) block, the K-quants a quarter (Q4_K)
/// or a sixteenth (Q6_K) of theirs per inner step. Measured with `examples/matmul_speed.rs`
/// (1 token, 16384 × 1536 K-quant and 49152 × 576 legacy weights, alternating runs): Q4_K
/// 8.2-9.5 GB/s on one core instead of 5.6-6.3, 14.4-17.7 on two instead of 10.6-11.8;
/// Q6_K 8.3-8.8 / 14.7-16.9 instead of 7.0-7.4 / 12.5-15.5; Q4_1 / Q8_0 on two cores 15-19
/// instead of 13-15. Distances of 1-4 KiB into L1 and 4-16 KiB into L2 were within noise
/// of each other; a burst of 20-26 prefetches per K-quant block was slower than none.
pub(in crate::x86_64) const PREFETCH: usize = 2048;

/// Prefetches the `len`-byte block at `blk + PREFETCH` (see [`prefetch_span`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) fn prefetch_ahead(blk: *const u8, len: usize) {
    prefetch_span(blk.wrapping_add(PREFETCH), len);
}

/// Prefetches into L1 the cache lines at `p`, `p + 64`, … up to `p + len` (`len > 0`). A
/// hint: it reads nothing architecturally and never faults, so addresses past the group's end
/// are harmless; they are computed with wrapping arithmetic (no out-of-bounds `add`).
///
/// Every call site walks a contiguous stream in spans of a constant `len` (blocks, or parts of
/// one), so consecutive hints are at most 64 bytes apart and every line of the stream gets
/// one, whatever the alignment: no per-block address arithmetic. (Covering exactly the lines
/// of each span took a dozen scalar instructions per block, a sixth of the Q4_1 one-token
/// loop; counting the lines per block instead cost a data-dependent branch and 5-8% of it.)
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) fn prefetch_span(p: *const u8, len: usize) {
    for i in 0..len.div_ceil(64) {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * i).cast());
    }
}

/// 16 i16 lanes holding the 8 bytes at `p` (one per row, `u8`, or `i8` when `SIGNED`), each
/// twice: lanes `2i` and `2i + 1` are row `i`'s, so `vpmaddwd` with a row-interleaved i16
/// accumulator scales both of its halves.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn per_row_pairs<const SIGNED: bool>(p: *const u8) -> __m256i {
    let dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    // SAFETY: 8 readable bytes (caller).
    widen::<SIGNED>(_mm_shuffle_epi8(unsafe { _mm_loadl_epi64(p.cast()) }, dup))
}

/// The 16 bytes of `x` as i16: sign-extended when `SIGNED`, else zero-extended.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn widen<const SIGNED: bool>(x: __m128i) -> __m256i {
    if SIGNED {
        _mm256_cvtepi8_epi16(x)
    } else {
        _mm256_cvtepu8_epi16(x)
    }
}

/// `N` vectors of row-interleaved pairs from per-sub-block byte arrays `[j][row]` (8 bytes
/// each, `u8`, or `i8` when `SIGNED`) starting at `p`: vector `q` holds, as i16, lanes `2i`
/// and `2i + 1` = row `i`'s values of sub-blocks `2q` and `2q + 1`, so `vpmaddwd` with a
/// broadcast pair of per-sub-block activation sums gives each row's two-term sum.
///
/// # Safety
/// `p..p + 16 · N` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn sub_block_pairs<const SIGNED: bool, const N: usize>(
    p: *const u8,
) -> [__m256i; N] {
    std::array::from_fn(|q| {
        // SAFETY: bytes `16q..16q + 16` are readable (caller).
        let (lo, hi) = unsafe {
            (
                _mm_loadl_epi64(p.add(16 * q).cast()),
                _mm_loadl_epi64(p.add(16 * q + 8).cast()),
            )
        };
        widen::<SIGNED>(_mm_unpacklo_epi8(lo, hi))
    })
}

/// The 8 rows' per-block terms of a packed Q4_K block: row-interleaved (min_2p, min_2p+1)
/// pairs, `d` and `dmin`.
///
/// # Safety
/// `blk..blk + 160` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn q4_k_block_terms(blk: *const u8) -> ([__m256i; 4], __m256, __m256) {
    // SAFETY: the block's head is readable (caller).
    unsafe {
        (
            sub_block_pairs::<false, 4>(blk.add(96)),
            f16x8(blk),
            f16x8(blk.add(16)),
        )
    }
}

/// `acc + d · yd · isum − dmin · yd · Σ_j min_j · (bsum_2j + bsum_2j+1)` for one Q8_K
/// activation block at `ab`: a Q4_K block's contribution once its scaled sums `isum` are in.
///
/// # Safety
/// `ab..ab + 292` (one Q8_K block) must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn q4_k_apply(
    mins: &[__m256i; 4],
    dw: __m256,
    dmin: __m256,
    ab: *const u8,
    isum: __m256i,
    acc: __m256,
) -> __m256 {
    // SAFETY: the activation block is readable (caller).
    let (bsums, yd) = unsafe { (ld256(ab.add(260)), ab.cast::<f32>().read_unaligned()) };
    // (bsum_2j + bsum_2j+1) for j = 0..8, as i16; i32 lane p is the pair for mins p.
    let pairs = _mm_hadd_epi16(
        _mm256_castsi256_si128(bsums),
        _mm256_extracti128_si256::<1>(bsums),
    );
    let m = _mm256_add_epi32(
        _mm256_add_epi32(
            _mm256_madd_epi16(mins[0], _mm256_broadcastd_epi32(pairs)),
            _mm256_madd_epi16(
                mins[1],
                _mm256_broadcastd_epi32(_mm_shuffle_epi32::<0x55>(pairs)),
            ),
        ),
        _mm256_add_epi32(
            _mm256_madd_epi16(
                mins[2],
                _mm256_broadcastd_epi32(_mm_shuffle_epi32::<0xAA>(pairs)),
            ),
            _mm256_madd_epi16(
                mins[3],
                _mm256_broadcastd_epi32(_mm_shuffle_epi32::<0xFF>(pairs)),
            ),
        ),
    );
    let yd = _mm256_set1_ps(yd);
    let acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, yd), acc);
    _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmin, yd), acc)
}

/// The four value vectors `u = q + 32` (in `0..64`) of one Q6_K sub-block from its three
/// byte vectors at `v`: three by one AND, the fourth from the three top bit pairs.
///
/// # Safety
/// `v..v + 96` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn q6_k_values(v: *const u8) -> [__m256i; 4] {
    let (m6, top) = (_mm256_set1_epi8(0x3F), _mm256_set1_epi8(0xC0u8 as i8));
    // SAFETY: 96 readable bytes (caller).
    let (b0, b1, b2) = unsafe { (ld256(v), ld256(v.add(32)), ld256(v.add(64))) };
    [
        _mm256_and_si256(b0, m6),
        _mm256_and_si256(b1, m6),
        _mm256_and_si256(b2, m6),
        // Masked first, so the 16-bit shifts carry no bits across bytes.
        _mm256_or_si256(
            _mm256_or_si256(
                _mm256_srli_epi16::<2>(_mm256_and_si256(b0, top)),
                _mm256_srli_epi16::<4>(_mm256_and_si256(b1, top)),
            ),
            _mm256_srli_epi16::<6>(_mm256_and_si256(b2, top)),
        ),
    ]
}

/// `acc + d · yd · (isum − 32 · Σ_j scale_j · bsum_j)` for one Q8_K activation block at `ab`:
/// a Q6_K block's contribution once its scaled sums `isum` are in (`pairs`: row-interleaved
/// scale pairs).
///
/// # Safety
/// `ab..ab + 292` (one Q8_K block) must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::x86_64) unsafe fn q6_k_apply(
    pairs: &[__m256i; 8],
    dw: __m256,
    ab: *const u8,
    isum: __m256i,
    acc: __m256,
) -> __m256 {
    let mut offset = _mm256_setzero_si256();
    for (p, pair) in pairs.iter().enumerate() {
        // SAFETY: the block sums lie inside the activation block (caller).
        let bsums = _mm256_set1_epi32(unsafe { read_i32(ab.add(260 + 4 * p)) });
        offset = _mm256_add_epi32(offset, _mm256_madd_epi16(*pair, bsums));
    }
    let isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<5>(offset));
    // SAFETY: as above.
    let yd = _mm256_set1_ps(unsafe { ab.cast::<f32>().read_unaligned() });
    _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, yd), acc)
}

/// [`rows`] for Q4_K (256-value super-blocks, Q8_K activations): per 64-value chunk, the 8
/// vectors' low nibbles (sub-block `2c`) and high nibbles (sub-block `2c + 1`) accumulate in
/// i16 (≤ 8 · 2 · 15 · 128 < 2^15), and `vpmaddwd` with the sub-block's per-row scales widens
/// and scales them at once. The mins term `Σ_j min_j · (bsum_2j + bsum_2j+1)` is four
/// `vpmaddwd` of row-interleaved min pairs with broadcast block-sum pairs.
///
/// # Safety
/// As [`rows`], with 1184-byte packed blocks and 292-byte activation blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q4_k<const R: usize>(nb: usize, group: *const u8, a: [*const u8; R]) -> [__m256; R] {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block `b < nb` of the group (1184 bytes) and of each activation row (292
        // bytes) is readable (caller); every load stays inside them.
        unsafe {
            let blk = group.add(b * 1184);
            let mut isum = [_mm256_setzero_si256(); R];
            for c in 0..4 {
                // A quarter of the block, `PREFETCH` bytes ahead: spread over the block's
                // work rather than one burst.
                prefetch_span(blk.wrapping_add(PREFETCH + 1184 / 4 * c), 1184 / 4);
                let mut acc_lo = [_mm256_setzero_si256(); R];
                let mut acc_hi = [_mm256_setzero_si256(); R];
                for k in 0..8 {
                    let v = ld256(blk.add(160 + 32 * (8 * c + k)));
                    let lo = _mm256_and_si256(v, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
                    for r in 0..R {
                        let qy = a[r].add(b * 292 + 4 + 64 * c + 4 * k);
                        let y_lo = _mm256_set1_epi32(read_i32(qy));
                        let y_hi = _mm256_set1_epi32(read_i32(qy.add(32)));
                        acc_lo[r] = _mm256_add_epi16(acc_lo[r], _mm256_maddubs_epi16(lo, y_lo));
                        acc_hi[r] = _mm256_add_epi16(acc_hi[r], _mm256_maddubs_epi16(hi, y_hi));
                    }
                }
                let sc_lo = per_row_pairs::<false>(blk.add(32 + 16 * c));
                let sc_hi = per_row_pairs::<false>(blk.add(40 + 16 * c));
                for r in 0..R {
                    let s = _mm256_add_epi32(
                        _mm256_madd_epi16(acc_lo[r], sc_lo),
                        _mm256_madd_epi16(acc_hi[r], sc_hi),
                    );
                    isum[r] = _mm256_add_epi32(isum[r], s);
                }
            }
            let (mins, dw, dmin) = q4_k_block_terms(blk);
            for r in 0..R {
                acc[r] = q4_k_apply(&mins, dw, dmin, a[r].add(b * 292), isum[r], acc[r]);
            }
        }
    }
    acc
}

/// [`rows`] for Q6_K (256-value super-blocks, Q8_K activations). Per 16-value sub-block, the
/// three byte vectors give its four value vectors `u = q + 32` in `0..64` (three by one AND,
/// the fourth from the three top bit pairs); two `vpmaddubsw` sums fit in i16 (≤ 2 · 2 · 63
/// · 128 < 2^15), so two `vpmaddwd` with the sub-block's per-row scales widen and scale them.
/// The `−32` is applied once per super-block and token as `32 · Σ_j scale_j · bsum_j`: eight
/// `vpmaddwd` of row-interleaved scale pairs with broadcast block-sum pairs.
///
/// # Safety
/// As [`rows`], with 1680-byte packed blocks and 292-byte activation blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q6_k<const R: usize>(nb: usize, group: *const u8, a: [*const u8; R]) -> [__m256; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block `b < nb` of the group (1680 bytes) and of each activation row (292
        // bytes) is readable (caller); every load stays inside them.
        unsafe {
            let blk = group.add(b * 1680);
            let mut isum = [_mm256_setzero_si256(); R];
            for j in 0..16 {
                // A sixteenth of the block, `PREFETCH` bytes ahead (see `rows_q4_k`).
                prefetch_span(blk.wrapping_add(PREFETCH + 1680 / 16 * j), 1680 / 16);
                let [u0, u1, u2, u3] = q6_k_values(blk.add(144 + 96 * j));
                let sc = per_row_pairs::<true>(blk.add(16 + 8 * j));
                for r in 0..R {
                    let qy = a[r].add(b * 292 + 4 + 16 * j);
                    let y = |k: usize| _mm256_set1_epi32(read_i32(qy.add(4 * k)));
                    let p01 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(u0, y(0)),
                        _mm256_maddubs_epi16(u1, y(1)),
                    );
                    let p23 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(u2, y(2)),
                        _mm256_maddubs_epi16(u3, y(3)),
                    );
                    let s =
                        _mm256_add_epi32(_mm256_madd_epi16(p01, sc), _mm256_madd_epi16(p23, sc));
                    isum[r] = _mm256_add_epi32(isum[r], s);
                }
            }
            // Row-interleaved (scale_2p, scale_2p+1) pairs.
            let pairs = sub_block_pairs::<true, 8>(blk.add(16));
            let dw = f16x8(blk);
            for r in 0..R {
                acc[r] = q6_k_apply(&pairs, dw, a[r].add(b * 292), isum[r], acc[r]);
            }
        }
    }
    acc
}

/// `R` activation rows against one 8-row group of format `FMT`.
///
/// # Safety
/// As [`rows`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_of<const FMT: u8, const R: usize>(
    nb: usize,
    group: *const u8,
    a: [*const u8; R],
) -> [__m256; R] {
    // SAFETY: forwarded to the caller.
    unsafe {
        match FMT {
            Q4_0 => rows::<false, R>(nb, group, a),
            Q4_1 => rows::<true, R>(nb, group, a),
            Q5_0 => rows_q5_0::<R>(nb, group, a),
            Q8_0 => rows_q8_0::<R>(nb, group, a),
            Q4K => rows_q4_k::<R>(nb, group, a),
            _ => rows_q6_k::<R>(nb, group, a),
        }
    }
}

/// Defines `packed::<FMT>`, the loop over 8-row groups and activation rows four at a time (then
/// two, then one) that calls `$rows_of::<FMT, R>` (this ISA's per-group kernels), compiled with
/// `$features`.
macro_rules! packed_driver {
    ($features:literal, $rows_of:ident) => {
        /// # Safety
        /// The arguments passed `check_packed_args`, which returned `nb`; `group_bytes` is `nb`
        /// packed blocks of `FMT`.
        #[target_feature(enable = $features)]
        unsafe fn packed<const FMT: u8>(
            (nb, n_groups, group_bytes): (usize, usize, usize),
            groups: &[u8],
            acts: &[u8],
            stride: usize,
            out: &mut [f32],
        ) {
            let n_acts = out.len() / (8 * n_groups);
            let a = acts.as_ptr();
            let o = out.as_mut_ptr();
            for g in 0..n_groups {
                // SAFETY: group `g < n_groups` is inside `groups` (checked).
                let gp = unsafe { groups.as_ptr().add(g * group_bytes) };
                // Output of activation row `r`, group `g`: `out[8 (r · n_groups + g)..][..8]`.
                let at = |r: usize| 8 * (r * n_groups + g);
                let mut r = 0;
                while r < n_acts {
                    // SAFETY: group `g` as above; the pass takes rows `r..r + R` with
                    // `r + R <= n_acts`, inside `acts` (checked), and writes their 8-value outputs
                    // of group `g`, inside `out`.
                    r += unsafe {
                        match n_acts - r {
                            1 => pass::<FMT, 1>(nb, gp, a, stride, r, |i| o.add(at(i))),
                            2 | 3 => pass::<FMT, 2>(nb, gp, a, stride, r, |i| o.add(at(i))),
                            _ => pass::<FMT, 4>(nb, gp, a, stride, r, |i| o.add(at(i))),
                        }
                    };
                }
            }
        }

        /// Activation rows `r..r + R` (`stride` bytes apart from `a`) against the 8-row group at
        /// `gp`, each row's 8 outputs stored at `out(row)`; returns `R`.
        ///
        /// # Safety
        /// As [`packed`]: the group holds `nb` blocks, rows `r..r + R` are whole activation rows
        /// and `out(row)` points to 8 writable f32 for each of them.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn pass<const FMT: u8, const R: usize>(
            nb: usize,
            gp: *const u8,
            a: *const u8,
            stride: usize,
            r: usize,
            out: impl Fn(usize) -> *mut f32,
        ) -> usize {
            // SAFETY: forwarded to the caller.
            unsafe {
                let v =
                    $rows_of::<FMT, R>(nb, gp, std::array::from_fn(|i| a.add((r + i) * stride)));
                for (i, v) in v.into_iter().enumerate() {
                    _mm256_storeu_ps(out(r + i), v);
                }
            }
            R
        }
    };
}
pub(in crate::x86_64) use packed_driver;

packed_driver!("avx2,fma,f16c", rows_of);

/// The public wrapper of one packed format: checks the sizes, then runs [`packed`].
macro_rules! packed_kernel {
    ($(#[$doc:meta])* $name:ident, $fmt:ident, $packed_block:expr, $format:expr) => {
        $(#[$doc])*
        pub(super) fn $name(
            groups: &[u8],
            n_groups: usize,
            acts: &[u8],
            act_stride: usize,
            out: &mut [f32],
        ) {
            let nb = $crate::scalar::check_packed_args(
                (groups, n_groups, $packed_block),
                (acts, act_stride, $format),
                out,
            );
            let sizes = (nb, n_groups, nb * $packed_block);
            // SAFETY: only reachable through this ISA's `kernels`, which takes its proof
            // token; sizes checked.
            unsafe { packed::<$fmt>(sizes, groups, acts, act_stride, out) }
        }
    };
}
pub(in crate::x86_64) use packed_kernel;

/// The six public packed kernels of an ISA module, over its `packed` driver.
macro_rules! packed_kernels {
    () => {
        $crate::x86_64::avx2::packed::packed_kernel!(
            /// Packed Q4_0 · Q8_0 (see [`crate::kernels::PackedFn`]; reads the rows' block sums).
            packed8_q4_0_q8_0, Q4_0, 144, $crate::kernels::ActFormat::Q8_0
        );
        $crate::x86_64::avx2::packed::packed_kernel!(
            /// Packed Q4_1 · Q8_1 (see [`crate::kernels::PackedFn`]).
            packed8_q4_1_q8_1, Q4_1, 160, $crate::kernels::ActFormat::Q8_1
        );
        $crate::x86_64::avx2::packed::packed_kernel!(
            /// Packed Q5_0 · Q8_0 (see [`crate::kernels::PackedFn`]; reads the rows' block sums).
            packed8_q5_0_q8_0, Q5_0, 176, $crate::kernels::ActFormat::Q8_0
        );
        $crate::x86_64::avx2::packed::packed_kernel!(
            /// Packed Q8_0 · Q8_0 (see [`crate::kernels::PackedFn`]).
            packed8_q8_0_q8_0, Q8_0, 272, $crate::kernels::ActFormat::Q8_0
        );
        $crate::x86_64::avx2::packed::packed_kernel!(
            /// Packed Q4_K · Q8_K (see [`crate::kernels::PackedFn`]).
            packed8_q4_k_q8_k, Q4K, 1184, $crate::kernels::ActFormat::Q8K
        );
        $crate::x86_64::avx2::packed::packed_kernel!(
            /// Packed Q6_K · Q8_K (see [`crate::kernels::PackedFn`]).
            packed8_q6_k_q8_k, Q6K, 1680, $crate::kernels::ActFormat::Q8K
        );
    };
}
pub(in crate::x86_64) use packed_kernels;

packed_kernels!();
