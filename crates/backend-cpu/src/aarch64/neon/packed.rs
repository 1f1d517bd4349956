//! NEON packed kernels for 8-row interleaved Q4_0 / Q4_1 / Q5_0 / Q8_0 / Q4_K / Q6_K weights
//! (layout: see `crate::packed`; `scalar/packed.rs` is the specification, the AVX2 kernels in
//! `x86_64/avx2/packed.rs` the same arithmetic on 256-bit vectors).
//!
//! A packed vector is 32 bytes: 4 consecutive values of each of the 8 rows. On NEON it is two
//! 128-bit registers, rows 0-3 and rows 4-7, whose 32-bit lanes each hold one row's 4 values:
//! the operand of `sdot` by element, `sdot v.4s, w.16b, a.4b[k]`, which adds to each row's
//! lane the 4 products of its values with activation values `4k..4k + 4`. [`neon_packed!`]
//! writes the kernels once over such a `dot4` and is expanded twice: [`sdot`] (FEAT_DotProd,
//! through inline assembly, as the intrinsic is not stable in Rust) and [`widening`] (base
//! NEON: `smull`/`smull2` of the weights with the broadcast activation group, then two
//! pairwise adds; every pair of products fits in i16, as `|w · a| ≤ 128 · 127`: weights may
//! be −128, activations never are, see `crate::kernels`).
//! Integer sums are exact either way, so both tables give the same bits. The per-block float
//! steps are the scalar formula's (the legacy formats with the fused multiply-add the AVX2
//! kernels use), in block order, and each output is computed the same way whichever other
//! rows share its call (batch invariance).

use std::arch::aarch64::*;

use super::f16x8;
use crate::kernels::PACKED_TRAILER_BYTES;
use crate::packed::fmt::{Q4_0, Q4_1, Q4K, Q5_0, Q6K, Q8_0};

/// Block `b`'s packed-trailer entry of an activation row of `nb` blocks of `block_bytes`
/// ([`crate::ActFormat::packed_row_bytes`]): the f32 `d`, and the raw bits of the second
/// field (Q8_0's i32 block sum, Q8_1's f32 `s`).
///
/// # Safety
/// `a` points at a packed Q8_0 / Q8_1 activation row of `nb` blocks, and `b < nb`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn trailer(a: *const u8, block_bytes: usize, nb: usize, b: usize) -> (f32, u32) {
    // SAFETY: the trailer's 8-byte entries follow the `nb` blocks (caller).
    unsafe {
        let t = a.add(block_bytes * nb + PACKED_TRAILER_BYTES * b);
        (
            t.cast::<f32>().read_unaligned(),
            t.add(4).cast::<u32>().read_unaligned(),
        )
    }
}

/// The 8 bytes at `p` (one per row) zero-extended to i32, rows 0-3 and rows 4-7.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn widen_u8x8(p: *const u8) -> [int32x4_t; 2] {
    // SAFETY: 8 bytes are readable (caller).
    let v = vmovl_u8(unsafe { vld1_u8(p) });
    [
        vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(v))),
        vreinterpretq_s32_u32(vmovl_high_u16(v)),
    ]
}

/// The 8 bytes at `p` (one per row) sign-extended to i32, rows 0-3 and rows 4-7.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn widen_s8x8(p: *const u8) -> [int32x4_t; 2] {
    // SAFETY: 8 bytes are readable (caller).
    let v = vmovl_s8(unsafe { vld1_s8(p.cast()) });
    [vmovl_s16(vget_low_s16(v)), vmovl_high_s16(v)]
}

/// The i16 at `p` widened to i32.
///
/// # Safety
/// `p..p + 2` must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn read_i16(p: *const u8) -> i32 {
    // SAFETY: 2 bytes are readable (caller).
    i32::from(unsafe { p.cast::<i16>().read_unaligned() })
}

/// Each activation row's 32 values of one block, starting at byte `at` of the row, as two
/// registers (values 0-15, values 16-31).
///
/// # Safety
/// `a[r] + at .. a[r] + at + 32` must be readable for every row.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn act_values<const R: usize>(a: [*const u8; R], at: usize) -> [[int8x16_t; 2]; R] {
    let mut y = [[vdupq_n_s8(0); 2]; R];
    for r in 0..R {
        // SAFETY: 32 bytes at `a[r] + at` are readable (caller).
        unsafe {
            let qy = a[r].add(at);
            y[r] = [vld1q_s8(qy.cast()), vld1q_s8(qy.add(16).cast())];
        }
    }
    y
}

/// `acc + isum · (dw · da)` (one fused multiply-add, as the AVX2 kernels): a 32-value block's
/// contribution to 4 rows once its integer sums are in.
#[inline]
#[target_feature(enable = "neon")]
fn add_scaled(acc: float32x4_t, isum: int32x4_t, dw: float32x4_t, da: f32) -> float32x4_t {
    vfmaq_f32(acc, vcvtq_f32_s32(isum), vmulq_n_f32(dw, da))
}

/// The packed kernels and `with_packed`, compiled with `$features` over the `dot4` in scope
/// at the expansion (`dot4::<K>(acc, w, a)`: `acc` plus, in each i32 lane, the 4 products of
/// that lane's bytes of `w` with bytes `4K..4K + 4` of `a`).
macro_rules! neon_packed {
    ($features:literal) => {
        use std::arch::aarch64::*;

        use super::{
            Q4_0, Q4_1, Q4K, Q5_0, Q6K, Q8_0, act_values, add_scaled, f16x8, read_i16, trailer,
            widen_s8x8, widen_u8x8,
        };
        use crate::kernels::{ActFormat, Kernels};
        use crate::scalar::check_packed_args;

        /// [`dot4`] with the activation group `k < 4` chosen at run time (the callers' loops
        /// unroll, so the match folds away).
        #[inline]
        #[target_feature(enable = $features)]
        fn dot_lane(acc: int32x4_t, w: int8x16_t, a: int8x16_t, k: usize) -> int32x4_t {
            match k {
                0 => dot4::<0>(acc, w, a),
                1 => dot4::<1>(acc, w, a),
                2 => dot4::<2>(acc, w, a),
                _ => dot4::<3>(acc, w, a),
            }
        }

        /// Zeroed accumulators: `R` activation rows × rows 0-3 and 4-7.
        #[inline]
        #[target_feature(enable = $features)]
        fn zeros_f32<const R: usize>() -> [[float32x4_t; 2]; R] {
            [[vdupq_n_f32(0.0); 2]; R]
        }

        /// See [`zeros_f32`].
        #[inline]
        #[target_feature(enable = $features)]
        fn zeros_i32<const R: usize>() -> [[int32x4_t; 2]; R] {
            [[vdupq_n_s32(0); 2]; R]
        }

        /// Q4_0 / Q4_1: `R` activation rows (1 or 2) against one 8-row group.
        ///
        /// # Safety
        /// `group` holds `nb` packed blocks; each `a[r]` points at a packed activation row of
        /// `nb` blocks.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q4<const IS_Q4_1: bool, const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [[float32x4_t; 2]; R] {
            let (pb, ab, sb) = if IS_Q4_1 { (160, 36, 4) } else { (144, 34, 2) };
            let m4 = vdupq_n_u8(0x0F);
            let mut acc = zeros_f32::<R>();
            let mut summ = zeros_f32::<R>();
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (`pb` bytes) and of each activation row
                // (`ab` bytes, then its trailer entry) is readable (caller); every load stays
                // inside them.
                unsafe {
                    let blk = group.add(b * pb);
                    let y = act_values(a, b * ab + sb);
                    let mut isum = zeros_i32::<R>();
                    for k in 0..4 {
                        for h in 0..2 {
                            let v = vld1q_u8(blk.add(8 * sb + 32 * k + 16 * h));
                            let lo = vreinterpretq_s8_u8(vandq_u8(v, m4));
                            let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(v));
                            for r in 0..R {
                                isum[r][h] = dot_lane(isum[r][h], lo, y[r][0], k);
                                isum[r][h] = dot_lane(isum[r][h], hi, y[r][1], k);
                            }
                        }
                    }
                    let dw = f16x8(blk);
                    let mw = if IS_Q4_1 { f16x8(blk.add(16)) } else { dw };
                    for r in 0..R {
                        let (da, second) = trailer(a[r], ab, nb, b);
                        for h in 0..2 {
                            let mut is = isum[r][h];
                            if !IS_Q4_1 {
                                // Values are nibble − 8: subtract 8 · Σ activation values.
                                is = vsubq_s32(is, vdupq_n_s32((second as i32).wrapping_mul(8)));
                            }
                            acc[r][h] = add_scaled(acc[r][h], is, dw[h], da);
                            if IS_Q4_1 {
                                summ[r][h] = vfmaq_n_f32(summ[r][h], mw[h], f32::from_bits(second));
                            }
                        }
                    }
                }
            }
            for r in 0..R {
                for h in 0..2 {
                    acc[r][h] = vaddq_f32(acc[r][h], summ[r][h]);
                }
            }
            acc
        }

        /// Q5_0: the 8 value vectors `u = w + 16` (in `0..32`) of each half from its 5 byte
        /// vectors (layout: see `crate::packed`; NEON shifts bytes, so nothing crosses
        /// between them), less `16 · Σ` activation values.
        ///
        /// # Safety
        /// As [`rows_q4`].
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q5_0<const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [[float32x4_t; 2]; R] {
            let (m5, m2) = (vdupq_n_u8(0x1F), vdupq_n_u8(0x03));
            let mut acc = zeros_f32::<R>();
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (176 bytes) and of each activation row
                // (34 bytes, then its trailer entry) is readable (caller).
                unsafe {
                    let blk = group.add(b * 176);
                    let y = act_values(a, b * 34 + 2);
                    let mut isum = zeros_i32::<R>();
                    for h in 0..2 {
                        let v: [uint8x16_t; 5] = [
                            vld1q_u8(blk.add(16 + 16 * h)),
                            vld1q_u8(blk.add(48 + 16 * h)),
                            vld1q_u8(blk.add(80 + 16 * h)),
                            vld1q_u8(blk.add(112 + 16 * h)),
                            vld1q_u8(blk.add(144 + 16 * h)),
                        ];
                        let top2 =
                            |x: uint8x16_t| vshlq_n_u8::<3>(vandq_u8(vshrq_n_u8::<5>(x), m2));
                        let u: [uint8x16_t; 8] = [
                            vandq_u8(v[0], m5),
                            vandq_u8(v[1], m5),
                            vandq_u8(v[2], m5),
                            vandq_u8(v[3], m5),
                            vandq_u8(v[4], m5),
                            vorrq_u8(vshrq_n_u8::<5>(v[0]), top2(v[1])),
                            vorrq_u8(vshrq_n_u8::<5>(v[2]), top2(v[3])),
                            vorrq_u8(
                                vshrq_n_u8::<5>(v[4]),
                                vorrq_u8(
                                    vshlq_n_u8::<3>(vshrq_n_u8::<7>(v[1])),
                                    vshlq_n_u8::<4>(vshrq_n_u8::<7>(v[3])),
                                ),
                            ),
                        ];
                        for k in 0..4 {
                            let (lo, hi) = (
                                vreinterpretq_s8_u8(u[2 * k]),
                                vreinterpretq_s8_u8(u[2 * k + 1]),
                            );
                            for r in 0..R {
                                isum[r][h] = dot_lane(isum[r][h], lo, y[r][0], k);
                                isum[r][h] = dot_lane(isum[r][h], hi, y[r][1], k);
                            }
                        }
                    }
                    let dw = f16x8(blk);
                    for r in 0..R {
                        let (da, sum) = trailer(a[r], 34, nb, b);
                        let offset = vdupq_n_s32((sum as i32).wrapping_mul(16));
                        for h in 0..2 {
                            let is = vsubq_s32(isum[r][h], offset);
                            acc[r][h] = add_scaled(acc[r][h], is, dw[h], da);
                        }
                    }
                }
            }
            acc
        }

        /// Q8_0: 8 vectors of signed values per block.
        ///
        /// # Safety
        /// As [`rows_q4`].
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q8_0<const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [[float32x4_t; 2]; R] {
            let mut acc = zeros_f32::<R>();
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (272 bytes) and of each activation row
                // (34 bytes, then its trailer entry) is readable (caller).
                unsafe {
                    let blk = group.add(b * 272);
                    let y = act_values(a, b * 34 + 2);
                    let mut isum = zeros_i32::<R>();
                    for m in 0..8 {
                        for h in 0..2 {
                            let w = vld1q_s8(blk.add(16 + 32 * m + 16 * h).cast());
                            for r in 0..R {
                                isum[r][h] = dot_lane(isum[r][h], w, y[r][m / 4], m % 4);
                            }
                        }
                    }
                    let dw = f16x8(blk);
                    for r in 0..R {
                        let (da, _) = trailer(a[r], 34, nb, b);
                        for h in 0..2 {
                            acc[r][h] = add_scaled(acc[r][h], isum[r][h], dw[h], da);
                        }
                    }
                }
            }
            acc
        }

        /// Q4_K: per 32-value sub-block `j`, each row's nibble sum times its 6-bit scale, and
        /// its min times the activation sub-block's sum (from the Q8_K block sums).
        ///
        /// # Safety
        /// `group` holds `nb` packed Q4_K blocks; each `a[r]` points at a Q8_K row of `nb`
        /// blocks.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q4_k<const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [[float32x4_t; 2]; R] {
            let m4 = vdupq_n_u8(0x0F);
            let mut acc = zeros_f32::<R>();
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (1184 bytes) and of each activation row
                // (292 bytes) is readable (caller); every load stays inside them.
                unsafe {
                    let blk = group.add(b * 1184);
                    let mut ay = [std::ptr::null::<u8>(); R];
                    for r in 0..R {
                        ay[r] = a[r].add(b * 292);
                    }
                    let mut isum = zeros_i32::<R>();
                    let mut msum = zeros_i32::<R>();
                    for c in 0..4 {
                        // Sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles).
                        let (j_lo, j_hi) = (2 * c, 2 * c + 1);
                        let mut s_lo = zeros_i32::<R>();
                        let mut s_hi = zeros_i32::<R>();
                        for t in 0..8 {
                            for h in 0..2 {
                                let v = vld1q_u8(blk.add(160 + 32 * (8 * c + t) + 16 * h));
                                let lo = vreinterpretq_s8_u8(vandq_u8(v, m4));
                                let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(v));
                                for r in 0..R {
                                    let q = ay[r].add(4 + 16 * (t / 4));
                                    let y_lo = vld1q_s8(q.add(32 * j_lo).cast());
                                    let y_hi = vld1q_s8(q.add(32 * j_hi).cast());
                                    s_lo[r][h] = dot_lane(s_lo[r][h], lo, y_lo, t % 4);
                                    s_hi[r][h] = dot_lane(s_hi[r][h], hi, y_hi, t % 4);
                                }
                            }
                        }
                        let sc = [
                            widen_u8x8(blk.add(32 + 8 * j_lo)),
                            widen_u8x8(blk.add(32 + 8 * j_hi)),
                        ];
                        let mn = [
                            widen_u8x8(blk.add(96 + 8 * j_lo)),
                            widen_u8x8(blk.add(96 + 8 * j_hi)),
                        ];
                        for r in 0..R {
                            let bsum = |j: usize| {
                                read_i16(ay[r].add(260 + 4 * j)) + read_i16(ay[r].add(262 + 4 * j))
                            };
                            let (bs_lo, bs_hi) = (bsum(j_lo), bsum(j_hi));
                            for h in 0..2 {
                                isum[r][h] = vmlaq_s32(isum[r][h], sc[0][h], s_lo[r][h]);
                                isum[r][h] = vmlaq_s32(isum[r][h], sc[1][h], s_hi[r][h]);
                                msum[r][h] = vmlaq_n_s32(msum[r][h], mn[0][h], bs_lo);
                                msum[r][h] = vmlaq_n_s32(msum[r][h], mn[1][h], bs_hi);
                            }
                        }
                    }
                    let d = f16x8(blk);
                    let dmin = f16x8(blk.add(16));
                    for r in 0..R {
                        let yd = ay[r].cast::<f32>().read_unaligned();
                        for h in 0..2 {
                            let t1 = vmulq_f32(vmulq_n_f32(d[h], yd), vcvtq_f32_s32(isum[r][h]));
                            let t2 = vmulq_f32(vmulq_n_f32(dmin[h], yd), vcvtq_f32_s32(msum[r][h]));
                            acc[r][h] = vaddq_f32(acc[r][h], vsubq_f32(t1, t2));
                        }
                    }
                }
            }
            acc
        }

        /// Q6_K: per 16-value sub-block `j`, each row's sum of `u · a` (`u = q + 32`, 6 bits:
        /// the low bits of 3 vectors, the 4th value group from their top bits) less `32 · Σ a`
        /// (the Q8_K block sum), times its signed scale.
        ///
        /// # Safety
        /// `group` holds `nb` packed Q6_K blocks; each `a[r]` points at a Q8_K row of `nb`
        /// blocks.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q6_k<const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [[float32x4_t; 2]; R] {
            let m6 = vdupq_n_u8(0x3F);
            let mut acc = zeros_f32::<R>();
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (1680 bytes) and of each activation row
                // (292 bytes) is readable (caller); every load stays inside them.
                unsafe {
                    let blk = group.add(b * 1680);
                    let mut ay = [std::ptr::null::<u8>(); R];
                    for r in 0..R {
                        ay[r] = a[r].add(b * 292);
                    }
                    let mut isum = zeros_i32::<R>();
                    for j in 0..16 {
                        let mut s = zeros_i32::<R>();
                        for h in 0..2 {
                            let p = blk.add(144 + 96 * j + 16 * h);
                            let (v0, v1, v2) =
                                (vld1q_u8(p), vld1q_u8(p.add(32)), vld1q_u8(p.add(64)));
                            let top = vorrq_u8(
                                vorrq_u8(
                                    vshlq_n_u8::<4>(vshrq_n_u8::<6>(v0)),
                                    vshlq_n_u8::<2>(vshrq_n_u8::<6>(v1)),
                                ),
                                vshrq_n_u8::<6>(v2),
                            );
                            let u = [vandq_u8(v0, m6), vandq_u8(v1, m6), vandq_u8(v2, m6), top];
                            for r in 0..R {
                                let y = vld1q_s8(ay[r].add(4 + 16 * j).cast());
                                for k in 0..4 {
                                    s[r][h] = dot_lane(s[r][h], vreinterpretq_s8_u8(u[k]), y, k);
                                }
                            }
                        }
                        let sc = widen_s8x8(blk.add(16 + 8 * j));
                        for r in 0..R {
                            let offset = vdupq_n_s32(32 * read_i16(ay[r].add(260 + 2 * j)));
                            for h in 0..2 {
                                let sv = vsubq_s32(s[r][h], offset);
                                isum[r][h] = vmlaq_s32(isum[r][h], sc[h], sv);
                            }
                        }
                    }
                    let d = f16x8(blk);
                    for r in 0..R {
                        let yd = ay[r].cast::<f32>().read_unaligned();
                        for h in 0..2 {
                            let t = vmulq_f32(vmulq_n_f32(d[h], yd), vcvtq_f32_s32(isum[r][h]));
                            acc[r][h] = vaddq_f32(acc[r][h], t);
                        }
                    }
                }
            }
            acc
        }

        /// `R` activation rows against one 8-row group of format `FMT`.
        ///
        /// # Safety
        /// As the format's kernel.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_of<const FMT: u8, const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [[float32x4_t; 2]; R] {
            // SAFETY: forwarded to the caller.
            unsafe {
                match FMT {
                    Q4_0 => rows_q4::<false, R>(nb, group, a),
                    Q4_1 => rows_q4::<true, R>(nb, group, a),
                    Q5_0 => rows_q5_0::<R>(nb, group, a),
                    Q8_0 => rows_q8_0::<R>(nb, group, a),
                    Q4K => rows_q4_k::<R>(nb, group, a),
                    _ => rows_q6_k::<R>(nb, group, a),
                }
            }
        }

        /// Every 8-row group against every activation row, two rows at a time (each unpacked
        /// weight vector then serves both).
        ///
        /// # Safety
        /// The arguments passed `check_packed_args`, which returned `nb`; `group_bytes` is
        /// `nb` packed blocks of `FMT`.
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
                // SAFETY: group `g < n_groups` is inside `groups`, activation rows `r < n_acts`
                // inside `acts`, and their 8-value outputs inside `out` (all checked).
                unsafe {
                    let gp = groups.as_ptr().add(g * group_bytes);
                    let at = |r: usize| o.add(8 * (r * n_groups + g));
                    let mut r = 0;
                    while r + 1 < n_acts {
                        let v =
                            rows_of::<FMT, 2>(nb, gp, [a.add(r * stride), a.add((r + 1) * stride)]);
                        for (i, v) in v.iter().enumerate() {
                            vst1q_f32(at(r + i), v[0]);
                            vst1q_f32(at(r + i).add(4), v[1]);
                        }
                        r += 2;
                    }
                    if r < n_acts {
                        let [v] = rows_of::<FMT, 1>(nb, gp, [a.add(r * stride)]);
                        vst1q_f32(at(r), v[0]);
                        vst1q_f32(at(r).add(4), v[1]);
                    }
                }
            }
        }

        /// One public packed kernel: checks the sizes, then runs [`packed`].
        macro_rules! kernel {
            ($name:ident, $fmt:ident, $block:expr, $format:expr) => {
                fn $name(
                    groups: &[u8],
                    n_groups: usize,
                    acts: &[u8],
                    act_stride: usize,
                    out: &mut [f32],
                ) {
                    let nb = check_packed_args(
                        (groups, n_groups, $block),
                        (acts, act_stride, $format),
                        out,
                    );
                    // SAFETY: reachable only through `with_packed`, which only the table
                    // constructors holding this module's proof token call; sizes checked.
                    unsafe {
                        packed::<$fmt>((nb, n_groups, nb * $block), groups, acts, act_stride, out)
                    }
                }
            };
        }
        kernel!(packed8_q4_0_q8_0, Q4_0, 144, ActFormat::Q8_0);
        kernel!(packed8_q4_1_q8_1, Q4_1, 160, ActFormat::Q8_1);
        kernel!(packed8_q5_0_q8_0, Q5_0, 176, ActFormat::Q8_0);
        kernel!(packed8_q8_0_q8_0, Q8_0, 272, ActFormat::Q8_0);
        kernel!(packed8_q4_k_q8_k, Q4K, 1184, ActFormat::Q8K);
        kernel!(packed8_q6_k_q8_k, Q6K, 1680, ActFormat::Q8K);

        /// `base` with this module's packed kernels.
        pub(crate) fn with_packed(base: Kernels) -> Kernels {
            Kernels {
                packed8_q4_0_q8_0,
                packed8_q4_1_q8_1,
                packed8_q5_0_q8_0,
                packed8_q8_0_q8_0,
                packed8_q4_k_q8_k,
                packed8_q6_k_q8_k,
                ..base
            }
        }
    };
}

/// The kernels with `sdot` (FEAT_DotProd).
pub(crate) mod sdot {
    use std::arch::aarch64::{int8x16_t, int32x4_t};
    use std::arch::asm;

    /// `acc` plus, in each i32 lane, the 4 products of that lane's bytes of `w` with bytes
    /// `4K..4K + 4` of `a`: one `sdot` by element.
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    fn dot4<const K: i32>(mut acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
        // SAFETY: `sdot` on registers only; this module's functions are compiled for
        // FEAT_DotProd and reached only with the `NeonDot` proof token.
        unsafe {
            asm!(
                "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{k}]",
                acc = inout(vreg) acc,
                w = in(vreg) w,
                a = in(vreg) a,
                k = const K,
                options(pure, nomem, nostack),
            );
        }
        acc
    }

    neon_packed!("neon,dotprod");
}

/// The kernels on base NEON: widening multiplies and pairwise adds.
pub(crate) mod widening {
    use std::arch::aarch64::{
        int8x16_t, int32x4_t, vdupq_laneq_s32, vget_low_s8, vmull_high_s8, vmull_s8, vpadalq_s16,
        vpaddq_s16, vreinterpretq_s8_s32, vreinterpretq_s32_s8,
    };

    /// `acc` plus, in each i32 lane, the 4 products of that lane's bytes of `w` with bytes
    /// `4K..4K + 4` of `a`: the group broadcast to every lane, `smull`/`smull2` to i16
    /// products, a pairwise add (each pair fits in i16) and a pairwise add-accumulate to i32.
    #[inline]
    #[target_feature(enable = "neon")]
    fn dot4<const K: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
        let g = vreinterpretq_s8_s32(vdupq_laneq_s32::<K>(vreinterpretq_s32_s8(a)));
        let lo = vmull_s8(vget_low_s8(w), vget_low_s8(g));
        let hi = vmull_high_s8(w, g);
        vpadalq_s16(acc, vpaddq_s16(lo, hi))
    }

    neon_packed!("neon");
}
