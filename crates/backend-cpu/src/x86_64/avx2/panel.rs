//! AVX2 batched products of 8 weight rows of a 32-value block format (Q4_0, Q4_1, Q5_0,
//! Q8_0) with many activation rows: the prompt / large-batch path of `Cpu::matmul`.
//!
//! The per-row kernels reduce every block's 32 products horizontally and scale them one block
//! at a time, which costs ~10 µops per (block, weight row, activation row). Here the 8 rows'
//! blocks are first unpacked to bytes and transposed into a *panel* (for each group of 4
//! values, the 8 rows' 4 bytes side by side), so one `vpmaddubsw` multiplies 4 values of all
//! 8 rows with 4 broadcast activation values and lane `i` of every accumulator belongs to
//! weight row `i`: no horizontal reductions, one scale FMA per block for all 8 rows
//! (~4 µops per (block, weight row, activation row)). Building the panel costs about as much
//! as one per-row pass and is amortized over all activation rows.
//!
//! Lanes never mix, so a row's result does not depend on which other rows share its panel.

use std::arch::x86_64::*;

use super::legacy::{bits_at, f16_splat, ld256, nibbles_at, read_i32};

/// The four formats of this module.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Q4_0,
    Q4_1,
    Q5_0,
    Q8_0,
}

impl Fmt {
    /// Bytes of one weight block.
    const fn w_bytes(self) -> usize {
        match self {
            Fmt::Q4_0 => 18,
            Fmt::Q4_1 => 20,
            Fmt::Q5_0 => 22,
            Fmt::Q8_0 => 34,
        }
    }
    /// Bytes of one activation block (Q8_1 for Q4_1, Q8_0 otherwise).
    const fn a_bytes(self) -> usize {
        if matches!(self, Fmt::Q4_1) { 36 } else { 34 }
    }
    /// Offset of the 32 activation values inside their block.
    const fn a_qs(self) -> usize {
        if matches!(self, Fmt::Q4_1) { 4 } else { 2 }
    }
    /// Bytes of one panel block: 256 bytes of unsigned values (plus 256 of signed values for
    /// Q8_0), then 8 f32 `d` and 8 f32 `m`.
    const fn panel_bytes(self) -> usize {
        if matches!(self, Fmt::Q8_0) {
            512 + 64
        } else {
            256 + 64
        }
    }
    /// The unsigned-value offset subtracted from every weight value (Q4_0: 8, Q5_0: 16).
    const fn offset(self) -> i32 {
        match self {
            Fmt::Q4_0 => 8,
            Fmt::Q5_0 => 16,
            Fmt::Q4_1 | Fmt::Q8_0 => 0,
        }
    }
}

/// 8 × 8 transpose of 32-bit elements: `out[g]` holds element `g` of each `rows[i]` in lane `i`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
    let t: [__m256i; 8] = std::array::from_fn(|k| {
        let (a, b) = (r[2 * (k / 2)], r[2 * (k / 2) + 1]);
        if k % 2 == 0 {
            _mm256_unpacklo_epi32(a, b)
        } else {
            _mm256_unpackhi_epi32(a, b)
        }
    });
    // t[0] = rows 0,1 elements 0,1 | 4,5; t[1] = rows 0,1 elements 2,3 | 6,7; t[2], t[3]:
    // rows 2,3; t[4..8]: rows 4..8.
    let u: [__m256i; 8] = std::array::from_fn(|k| {
        let base = 4 * (k / 4);
        let (a, b) = (t[base + (k % 4) / 2], t[base + 2 + (k % 4) / 2]);
        if k % 2 == 0 {
            _mm256_unpacklo_epi64(a, b)
        } else {
            _mm256_unpackhi_epi64(a, b)
        }
    });
    // u[k] for k < 4: rows 0..4, element k | element k + 4; u[4 + k]: rows 4..8.
    std::array::from_fn(|g| {
        let (a, b) = (u[g % 4], u[4 + g % 4]);
        if g < 4 {
            _mm256_permute2x128_si256::<0x20>(a, b)
        } else {
            _mm256_permute2x128_si256::<0x31>(a, b)
        }
    })
}

/// Unpacks weight block `b` of the 8 rows (`row_bytes` apart from `w`) into panel block `pb`.
///
/// # Safety
/// Block `b` of all 8 rows must be readable and `pb` must have `fmt.panel_bytes()` writable
/// bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pack_block(fmt: Fmt, w: *const u8, row_bytes: usize, b: usize, pb: *mut u8) {
    let mut d = [0.0f32; 8];
    let mut m = [0.0f32; 8];
    let mut raw = [_mm256_setzero_si256(); 8];
    for i in 0..8 {
        // SAFETY: block `b` of row `i` is readable (caller); the loads stay inside it.
        unsafe {
            let wp = w.add(i * row_bytes + b * fmt.w_bytes());
            d[i] = _mm256_cvtss_f32(f16_splat(wp));
            raw[i] = match fmt {
                Fmt::Q4_0 => nibbles_at(wp.add(2)),
                Fmt::Q4_1 => {
                    m[i] = _mm256_cvtss_f32(f16_splat(wp.add(2)));
                    nibbles_at(wp.add(4))
                }
                Fmt::Q5_0 => {
                    let hi = _mm256_and_si256(bits_at(wp.add(2)), _mm256_set1_epi8(0x10));
                    _mm256_or_si256(nibbles_at(wp.add(6)), hi)
                }
                Fmt::Q8_0 => ld256(wp.add(2)),
            };
        }
    }
    let q = transpose8(raw);
    for (g, &v) in q.iter().enumerate() {
        // SAFETY: `pb` has `panel_bytes` writable bytes (caller): 256 (or 512) value bytes
        // then 64 scale bytes; every store below is inside.
        unsafe {
            if fmt == Fmt::Q8_0 {
                _mm256_storeu_si256(pb.add(32 * g).cast(), _mm256_sign_epi8(v, v));
                _mm256_storeu_si256(pb.add(256 + 32 * g).cast(), v);
            } else {
                _mm256_storeu_si256(pb.add(32 * g).cast(), v);
            }
        }
    }
    let at = fmt.panel_bytes() - 64;
    // SAFETY: the last 64 bytes of the panel block (caller).
    unsafe {
        _mm256_storeu_ps(pb.add(at).cast(), _mm256_loadu_ps(d.as_ptr()));
        _mm256_storeu_ps(pb.add(at + 32).cast(), _mm256_loadu_ps(m.as_ptr()));
    }
}

/// `Σ` of the 32 i8 activation values at `p`, in every lane.
///
/// # Safety
/// `p..p + 32` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn block_sum(p: *const u8) -> __m256i {
    // SAFETY: forwarded to the caller.
    let y = unsafe { ld256(p) };
    let s = _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_set1_epi8(1), y),
        _mm256_set1_epi16(1),
    );
    // Butterfly: every lane ends up with the total.
    let s = _mm256_add_epi32(s, _mm256_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm256_add_epi32(s, _mm256_shuffle_epi32::<0b10_11_00_01>(s));
    _mm256_add_epi32(s, _mm256_permute2x128_si256::<0x01>(s, s))
}

/// The 8 rows' products with activation row `a` (`nb` blocks): lane `i` = weight row `i`.
///
/// # Safety
/// `panel` holds `nb` packed blocks of `fmt` and `a` one activation row of `nb` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_dot(fmt: Fmt, nb: usize, panel: *const u8, a: *const u8) -> __m256 {
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut summ = _mm256_setzero_ps();
    for b in 0..nb {
        // SAFETY: block `b < nb` of the panel and of the activation row are readable
        // (caller); every load below stays inside them.
        unsafe {
            let pb = panel.add(b * fmt.panel_bytes());
            let ab = a.add(b * fmt.a_bytes());
            let qy = ab.add(fmt.a_qs());
            let mut isum = _mm256_setzero_si256();
            if fmt == Fmt::Q8_0 {
                for g in 0..8 {
                    let y4 = _mm256_set1_epi32(read_i32(qy.add(4 * g)));
                    let sy = _mm256_sign_epi8(y4, ld256(pb.add(256 + 32 * g)));
                    let p = _mm256_maddubs_epi16(ld256(pb.add(32 * g)), sy);
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, ones));
                }
            } else {
                // 4-bit values: 8 groups of i16 pair sums stay below 2^15 (8·2·15·127);
                // 5-bit values: flush every 4 groups (4·2·31·127 < 2^15).
                let flush = if fmt == Fmt::Q5_0 { 4 } else { 8 };
                let mut acc16 = _mm256_setzero_si256();
                for g in 0..8 {
                    let y4 = _mm256_set1_epi32(read_i32(qy.add(4 * g)));
                    let p = _mm256_maddubs_epi16(ld256(pb.add(32 * g)), y4);
                    acc16 = _mm256_add_epi16(acc16, p);
                    if (g + 1) % flush == 0 {
                        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(acc16, ones));
                        acc16 = _mm256_setzero_si256();
                    }
                }
                if fmt.offset() != 0 {
                    let off = _mm256_mullo_epi32(block_sum(qy), _mm256_set1_epi32(fmt.offset()));
                    isum = _mm256_sub_epi32(isum, off);
                }
            }
            let at = fmt.panel_bytes() - 64;
            let dw = _mm256_loadu_ps(pb.add(at).cast());
            let d = _mm256_mul_ps(dw, f16_splat(ab));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
            if fmt == Fmt::Q4_1 {
                let mw = _mm256_loadu_ps(pb.add(at + 32).cast());
                summ = _mm256_fmadd_ps(mw, f16_splat(ab.add(2)), summ);
            }
        }
    }
    _mm256_add_ps(acc, summ)
}

/// Checks the arguments of a [`Gemm8Fn`](crate::kernels::Gemm8Fn) call and returns the number
/// of blocks per row (panics on a caller bug, like `check_dot_args`).
fn check(fmt: Fmt, w: &[u8], acts: &[u8], act_stride: usize, out: &[f32]) -> usize {
    let row_bytes = w.len() / 8;
    assert!(
        w.len().is_multiple_of(8) && row_bytes.is_multiple_of(fmt.w_bytes()),
        "weight of {} bytes is not 8 rows of whole blocks",
        w.len()
    );
    assert!(
        !out.is_empty() && out.len().is_multiple_of(8),
        "{} outputs is not 8 per activation row",
        out.len()
    );
    let nb = row_bytes / fmt.w_bytes();
    crate::kernels::check_act_rows(acts, out.len() / 8, act_stride, nb * fmt.a_bytes());
    nb
}

/// Packs the panel into `panel` and multiplies it with every activation row.
///
/// # Safety
/// The arguments passed [`check`] for `fmt`, which returned `nb`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm8(
    fmt: Fmt,
    nb: usize,
    w: &[u8],
    acts: &[u8],
    act_stride: usize,
    panel: &mut Vec<u8>,
    out: &mut [f32],
) {
    panel.clear();
    panel.resize(nb * fmt.panel_bytes(), 0);
    let row_bytes = w.len() / 8;
    for b in 0..nb {
        // SAFETY: block `b < nb` of the 8 rows is inside `w`, and panel block `b` is inside
        // `panel` (resized above).
        unsafe {
            pack_block(
                fmt,
                w.as_ptr(),
                row_bytes,
                b,
                panel.as_mut_ptr().add(b * fmt.panel_bytes()),
            );
        }
    }
    for (r, o) in out.chunks_exact_mut(8).enumerate() {
        // SAFETY: `check` proved activation row `r` (nb blocks at `r * act_stride`) is inside
        // `acts`; the panel holds `nb` blocks; `o` has 8 writable f32.
        unsafe {
            let v = row_dot(fmt, nb, panel.as_ptr(), acts.as_ptr().add(r * act_stride));
            _mm256_storeu_ps(o.as_mut_ptr(), v);
        }
    }
}

/// Declares a [`Gemm8Fn`](crate::kernels::Gemm8Fn) for one format.
macro_rules! gemm8_fn {
    ($name:ident, $fmt:expr) => {
        pub(super) fn $name(
            w: &[u8],
            acts: &[u8],
            act_stride: usize,
            panel: &mut Vec<u8>,
            out: &mut [f32],
        ) {
            let nb = check($fmt, w, acts, act_stride, out);
            // SAFETY: only reachable through `avx2::kernels`, which requires the `Avx2Fma`
            // token; `check` validated every size the kernel relies on.
            unsafe { gemm8($fmt, nb, w, acts, act_stride, panel, out) }
        }
    };
}

gemm8_fn!(gemm8_q4_0_q8_0, Fmt::Q4_0);
gemm8_fn!(gemm8_q4_1_q8_1, Fmt::Q4_1);
gemm8_fn!(gemm8_q5_0_q8_0, Fmt::Q5_0);
gemm8_fn!(gemm8_q8_0_q8_0, Fmt::Q8_0);
