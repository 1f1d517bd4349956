//! The VNNI packed kernels, written once for both encodings of `vpdpbusd`: AVX-512 VNNI
//! (EVEX, on 256-bit vectors through AVX-512 VL; Ice Lake and later Xeons, Zen 4 and 5) and
//! AVX-VNNI (VEX; Alder Lake and later Intel client cores, Sierra Forest, and Sapphire Rapids
//! beside its AVX-512). [`vnni_packed!`] expands into an ISA module's packed kernels given that
//! ISA's target features and its `vpdpbusd` intrinsic.
//!
//! Each `vpmaddubsw` + `vpmaddwd` pair of the AVX2 kernels (layout: see `crate::packed`; the
//! AVX2 twins in `avx2/packed.rs` document the per-format arithmetic) becomes one `vpdpbusd`
//! (weights as the unsigned operand, broadcast activation groups as the signed one), which
//! accumulates each row's products in i32 directly. Two accumulators per activation row
//! (low and high nibbles, or even and odd vectors) halve the dependency chains that
//! `vpdpbusd`'s latency would otherwise set. The K-quants apply their per-row sub-block
//! scales to the i32 sums with `vpmulld` instead of `vpmaddwd` on i16 sums. Every integer sum
//! is exact on both ISAs and the float steps are the AVX2 kernels' own, in the same order, so
//! results are bit-identical to AVX2's (and batch-invariant, as there).

/// The six packed kernels of a VNNI ISA module (`packed8_*`, as `packed_kernels!` names
/// them), compiled with `$features` and multiplying with `$dpbusd`.
macro_rules! vnni_packed {
    ($features:literal, $dpbusd:ident) => {
        use std::arch::x86_64::*;

        use crate::packed::fmt::{Q4_0, Q4_1, Q4K, Q5_0, Q6K, Q8_0};
        use crate::x86_64::avx2::legacy::{ld256, read_i32};
        use crate::x86_64::avx2::packed::{
            PREFETCH, f16x8, packed_driver, packed_kernels, prefetch_ahead, prefetch_span,
            q4_k_apply, q4_k_block_terms, q5_values, q6_k_apply, q6_k_values, sub_block_pairs,
            trailer,
        };

        /// `acc + Σ` of the 4 products of unsigned bytes `u` and signed bytes `s` in each i32 lane.
        #[inline]
        #[target_feature(enable = $features)]
        fn dot(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            $dpbusd(acc, u, s)
        }

        /// The 8 bytes at `p` (one per row), zero- or sign-extended (`SIGNED`) to the 8 i32 lanes.
        ///
        /// # Safety
        /// `p..p + 8` must be readable.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn per_row<const SIGNED: bool>(p: *const u8) -> __m256i {
            // SAFETY: 8 readable bytes (caller).
            let x = unsafe { _mm_loadl_epi64(p.cast()) };
            if SIGNED {
                _mm256_cvtepi8_epi32(x)
            } else {
                _mm256_cvtepu8_epi32(x)
            }
        }

        /// Q4_0 / Q4_1 / Q5_0 (`FMT`): `R` activation rows (1, 2 or 4) against one 8-row group; the 8
        /// outputs of each. Per block, 8 value vectors `u` (nibbles, or Q5_0's 5-bit `w + 16`) meet
        /// broadcast activation groups; Q4_0 and Q5_0 then subtract their offset (8 or 16) times the
        /// activation block sum, Q4_1 adds its `m · s` term.
        ///
        /// # Safety
        /// `group` holds `nb` packed blocks; each `a[r]` points at an activation row of `nb` blocks.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows<const FMT: u8, const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [__m256; R] {
            // Packed block bytes, activation block bytes, and bytes of per-row (and per-block)
            // scale fields: the 8 rows' values start at `8 · sb`, the activation values at `sb`.
            let (pb, ab, sb) = match FMT {
                Q4_1 => (160, 36, 4),
                Q5_0 => (176, 34, 2),
                _ => (144, 34, 2),
            };
            let m4 = _mm256_set1_epi8(0x0F);
            let mut acc = [_mm256_setzero_ps(); R];
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (`pb` bytes) and of each activation row (`ab`
                // bytes) is readable (caller); every load stays inside them.
                unsafe {
                    let blk = group.add(b * pb);
                    prefetch_ahead(blk, pb);
                    let q5 = if FMT == Q5_0 {
                        q5_values(blk.add(16))
                    } else {
                        [_mm256_setzero_si256(); 8]
                    };
                    let mut s_lo = [_mm256_setzero_si256(); R];
                    let mut s_hi = [_mm256_setzero_si256(); R];
                    for k in 0..4 {
                        let (lo, hi) = if FMT == Q5_0 {
                            (q5[2 * k], q5[2 * k + 1])
                        } else {
                            let v = ld256(blk.add(8 * sb + 32 * k));
                            (
                                _mm256_and_si256(v, m4),
                                _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4),
                            )
                        };
                        for r in 0..R {
                            let qy = a[r].add(b * ab + sb);
                            s_lo[r] = dot(s_lo[r], lo, _mm256_set1_epi32(read_i32(qy.add(4 * k))));
                            s_hi[r] =
                                dot(s_hi[r], hi, _mm256_set1_epi32(read_i32(qy.add(16 + 4 * k))));
                        }
                    }
                    let dw = f16x8(blk);
                    for r in 0..R {
                        let (da, second) = trailer(a[r], ab, nb, b);
                        let mut isum = _mm256_add_epi32(s_lo[r], s_hi[r]);
                        match FMT {
                            // Values are nibble − 8 / u − 16: subtract 8 / 16 · Σ activation
                            // values.
                            Q4_0 => isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<3>(second)),
                            Q5_0 => isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<4>(second)),
                            _ => {}
                        }
                        let d = _mm256_mul_ps(dw, da);
                        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[r]);
                        if FMT == Q4_1 {
                            let sa = _mm256_castsi256_ps(second);
                            acc[r] = _mm256_fmadd_ps(f16x8(blk.add(16)), sa, acc[r]);
                        }
                    }
                }
            }
            // Q4_1's `m · s` term went into `acc` block by block, in the AVX2 kernel's order.
            acc
        }

        /// [`rows`] for Q8_0: `|w| · sign(y, w)` per vector, even and odd vectors in two sums.
        ///
        /// # Safety
        /// As [`rows`].
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q8_0<const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [__m256; R] {
            let mut acc = [_mm256_setzero_ps(); R];
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (272 bytes) and of each activation row (34
                // bytes) is readable (caller); every load stays inside them.
                unsafe {
                    let blk = group.add(b * 272);
                    prefetch_ahead(blk, 272);
                    let mut s = [[_mm256_setzero_si256(); 2]; R];
                    for k in 0..8 {
                        let w = ld256(blk.add(16 + 32 * k));
                        let aw = _mm256_abs_epi8(w);
                        for r in 0..R {
                            let y = _mm256_set1_epi32(read_i32(a[r].add(b * 34 + 2 + 4 * k)));
                            s[r][k % 2] = dot(s[r][k % 2], aw, _mm256_sign_epi8(y, w));
                        }
                    }
                    let dw = f16x8(blk);
                    for r in 0..R {
                        let isum = _mm256_add_epi32(s[r][0], s[r][1]);
                        let d = _mm256_mul_ps(dw, trailer(a[r], 34, nb, b).0);
                        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[r]);
                    }
                }
            }
            acc
        }

        /// [`rows`] for Q4_K: per 64-value chunk, each row's low-nibble (sub-block `2c`) and
        /// high-nibble (sub-block `2c + 1`) sums in i32, times that sub-block's per-row scale; the
        /// mins term as in the AVX2 kernel.
        ///
        /// # Safety
        /// As [`rows`], with 1184-byte packed blocks and 292-byte activation blocks.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q4_k<const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [__m256; R] {
            let m4 = _mm256_set1_epi8(0x0F);
            let mut acc = [_mm256_setzero_ps(); R];
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (1184 bytes) and of each activation row (292
                // bytes) is readable (caller); every load stays inside them.
                unsafe {
                    let blk = group.add(b * 1184);
                    let mut isum = [_mm256_setzero_si256(); R];
                    for c in 0..4 {
                        prefetch_span(blk.wrapping_add(PREFETCH + 1184 / 4 * c), 1184 / 4);
                        let mut s_lo = [_mm256_setzero_si256(); R];
                        let mut s_hi = [_mm256_setzero_si256(); R];
                        for k in 0..8 {
                            let v = ld256(blk.add(160 + 32 * (8 * c + k)));
                            let lo = _mm256_and_si256(v, m4);
                            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
                            for r in 0..R {
                                let qy = a[r].add(b * 292 + 4 + 64 * c + 4 * k);
                                s_lo[r] = dot(s_lo[r], lo, _mm256_set1_epi32(read_i32(qy)));
                                s_hi[r] = dot(s_hi[r], hi, _mm256_set1_epi32(read_i32(qy.add(32))));
                            }
                        }
                        let sc_lo = per_row::<false>(blk.add(32 + 16 * c));
                        let sc_hi = per_row::<false>(blk.add(40 + 16 * c));
                        for r in 0..R {
                            let s = _mm256_add_epi32(
                                _mm256_mullo_epi32(s_lo[r], sc_lo),
                                _mm256_mullo_epi32(s_hi[r], sc_hi),
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

        /// [`rows`] for Q6_K: per 16-value sub-block, each row's `Σ u·y` over its four value vectors
        /// (`u = q + 32` in 0..64) in i32, times the sub-block's signed per-row scale; the `−32` term
        /// as in the AVX2 kernel.
        ///
        /// # Safety
        /// As [`rows`], with 1680-byte packed blocks and 292-byte activation blocks.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn rows_q6_k<const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [__m256; R] {
            let mut acc = [_mm256_setzero_ps(); R];
            for b in 0..nb {
                // SAFETY: block `b < nb` of the group (1680 bytes) and of each activation row (292
                // bytes) is readable (caller); every load stays inside them.
                unsafe {
                    let blk = group.add(b * 1680);
                    let mut isum = [_mm256_setzero_si256(); R];
                    for j in 0..16 {
                        prefetch_span(blk.wrapping_add(PREFETCH + 1680 / 16 * j), 1680 / 16);
                        let [u0, u1, u2, u3] = q6_k_values(blk.add(144 + 96 * j));
                        let sc = per_row::<true>(blk.add(16 + 8 * j));
                        for r in 0..R {
                            let qy = a[r].add(b * 292 + 4 + 16 * j);
                            let y = |k: usize| _mm256_set1_epi32(read_i32(qy.add(4 * k)));
                            let s01 = dot(dot(_mm256_setzero_si256(), u0, y(0)), u1, y(1));
                            let s23 = dot(dot(_mm256_setzero_si256(), u2, y(2)), u3, y(3));
                            let s = _mm256_mullo_epi32(_mm256_add_epi32(s01, s23), sc);
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
        #[target_feature(enable = $features)]
        unsafe fn rows_of<const FMT: u8, const R: usize>(
            nb: usize,
            group: *const u8,
            a: [*const u8; R],
        ) -> [__m256; R] {
            // SAFETY: forwarded to the caller.
            unsafe {
                match FMT {
                    Q4_0 | Q4_1 | Q5_0 => rows::<FMT, R>(nb, group, a),
                    Q8_0 => rows_q8_0::<R>(nb, group, a),
                    Q4K => rows_q4_k::<R>(nb, group, a),
                    _ => rows_q6_k::<R>(nb, group, a),
                }
            }
        }

        packed_driver!($features, rows_of);
        packed_kernels!();

        /// `base` (AVX2's table) with the six VNNI packed kernels in place of its own.
        pub(super) fn with_packed(base: crate::kernels::Kernels) -> crate::kernels::Kernels {
            crate::kernels::Kernels {
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
pub(in crate::x86_64) use vnni_packed;
