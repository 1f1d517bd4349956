//! The kernel table: one function pointer per operation, filled with the scalar reference or
//! with the variants of one instruction set.
//!
//! Every entry of every ISA has the same signature as its `scalar::` twin, so a table is a
//! one-to-one mapping and tests can run the same case through every table the host supports
//! (`Kernels::all_supported`, in `dispatch.rs`).
//!
//! # Activation formats
//! As in ggml, each weight type is multiplied with activations converted to its "vec_dot type":
//! `Q8_0` for Q4_0/Q5_0/Q8_0, `Q8_1` (with its `s = d * Σq` field) for Q4_1/Q5_1, `Q8_K` for the
//! K-quants, and plain little-endian f32 for F32/F16/BF16. Quantized activation rows are stored in
//! ggml's exact block byte layouts, so they compare bit for bit with `skiff_tensor`'s reference.
//!
//! Quantized activation values lie in −127..=127: every quantizer here produces only those (NaN
//! and infinite inputs included), as ggml's do, and the kernels may rely on it — AVX2's sign
//! trick (`|w| · sign(a, w)`) and NEON's i16 pair sums are exact only within it. Weight values
//! come from files and may take their type's whole range (−128 included).

use std::fmt;

use skiff_tensor::DType;

/// Most activation rows one [`DotFn`] call handles; the matmul groups tokens by this.
pub const MAX_ROWS: usize = 4;

/// Dot products of one weight row with up to [`MAX_ROWS`] activation rows:
/// `out[r] = Σ_i W[i] · A_r[i]`, where `w` is exactly one weight row (whole blocks of the weight
/// type), and activation row `r` starts at byte `r * act_stride` of `acts`, in the weight type's
/// [`ActFormat`].
///
/// Panics (a caller bug) when `w` is not whole blocks, `out` is empty or longer than
/// [`MAX_ROWS`], `act_stride` is shorter than one activation row, or `acts` is too short.
pub type DotFn = fn(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]);

/// Products of 8 consecutive weight rows with many activation rows (the batched path):
/// `out[r * 8 + i] = Σ W_i · A_r` for every activation row `r < out.len() / 8`, where `w` is
/// exactly 8 weight rows of whole blocks and activation row `r` starts at byte `r * act_stride`
/// of `acts`. `panel` is scratch the kernel may resize (reused across calls to avoid
/// allocation). Each output equals the [`DotFn`] of the same weight type up to f32 summation
/// order, and does not depend on the other 7 rows.
///
/// Panics (a caller bug) when `w` is not 8 rows of whole blocks, `out` is empty or not a
/// multiple of 8, or `acts` is too short.
pub type Gemm8Fn =
    fn(w: &[u8], acts: &[u8], act_stride: usize, panel: &mut Vec<u8>, out: &mut [f32]);

/// Products of `n_groups` consecutive 8-row groups of a [`PackedWeight`](crate::PackedWeight)
/// (`groups`: each group's `n_in / block_len` interleaved blocks, group after group) with
/// activation rows: `out[r * 8 * n_groups + 8 * g + i] = Σ W_(8g + i) · A_r` for
/// `r < out.len() / (8 * n_groups)`, activation row `r` at byte `r * act_stride` of `acts`,
/// laid out as [`ActFormat::packed_row_bytes`] says (Q8_0 / Q8_1 rows end with a trailer of
/// f32 scales and block sums).
/// Each row of `out` is thus the chunk's outputs for one token, ready to be copied.
///
/// Panics (a caller bug) when `groups` is not `n_groups` groups of whole packed blocks, `out`
/// is empty or not a multiple of `8 * n_groups`, or `acts` is too short.
pub type PackedFn =
    fn(groups: &[u8], n_groups: usize, acts: &[u8], act_stride: usize, out: &mut [f32]);

/// Converts one row of f32 activations into an [`ActFormat`] row.
///
/// Panics (a caller bug) when `x.len()` is not whole blocks or `out` has the wrong length.
pub type QuantizeFn = fn(x: &[f32], out: &mut [u8]);

/// An instruction-set family of kernels. Ordered as [`Isa::ALL`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable safe Rust: the specification every other variant is tested against.
    Scalar,
    /// x86_64 AVX2 + FMA + F16C.
    Avx2,
    /// x86_64 AVX-VNNI (VEX `vpdpbusd`; plus the AVX2 set).
    AvxVnni,
    /// x86_64 AVX-512 F/BW/VL + VNNI (plus the AVX2 set).
    Avx512,
    /// aarch64 Advanced SIMD (every aarch64 CPU).
    Neon,
    /// aarch64 Advanced SIMD with the dot-product instructions (FEAT_DotProd).
    NeonDot,
}

impl Isa {
    /// Every family, each architecture's slowest first (a CPU supports the scalar table and
    /// the families of its own architecture only).
    pub const ALL: [Isa; 6] = [
        Isa::Scalar,
        Isa::Avx2,
        Isa::AvxVnni,
        Isa::Avx512,
        Isa::Neon,
        Isa::NeonDot,
    ];

    /// The architecture whose CPUs may have this family: `"any"` (the scalar code), `"x86_64"`
    /// or `"aarch64"`.
    pub fn family(self) -> &'static str {
        match self {
            Isa::Scalar => "any",
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 => "x86_64",
            Isa::Neon | Isa::NeonDot => "aarch64",
        }
    }

    /// The family named `name` ([`Isa::name`], ignoring case and surrounding blanks).
    pub fn from_name(name: &str) -> Option<Isa> {
        let name = name.trim();
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(name))
    }

    /// Lower-case name used in logs and benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avxvnni",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::NeonDot => "neondot",
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The layout activations are converted to before a weight type's dot products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActFormat {
    /// Little-endian f32 values, unconverted.
    F32,
    /// ggml `block_q8_0`: f16 `d`, 32 × i8 (34 bytes per 32 values).
    Q8_0,
    /// ggml `block_q8_1`: f16 `d`, f16 `s`, 32 × i8 (36 bytes per 32 values).
    Q8_1,
    /// ggml `block_q8_K`: f32 `d`, 256 × i8, 16 × i16 block sums (292 bytes per 256 values).
    Q8K,
}

impl ActFormat {
    /// The activation format weights of `dtype` are multiplied with, or `None` when `dtype`
    /// has no matmul kernel.
    pub fn for_weight(dtype: DType) -> Option<ActFormat> {
        use DType::*;
        match dtype {
            F32 | F16 | BF16 => Some(ActFormat::F32),
            Q4_0 | Q5_0 | Q8_0 => Some(ActFormat::Q8_0),
            Q4_1 | Q5_1 => Some(ActFormat::Q8_1),
            Q2K | Q3K | Q4K | Q5K | Q6K => Some(ActFormat::Q8K),
            Q8_1 | Q8K | I8 | I16 | I32 | I64 | F64 => None,
        }
    }

    /// Values per block.
    pub fn block_len(self) -> usize {
        match self {
            ActFormat::F32 => 1,
            ActFormat::Q8_0 | ActFormat::Q8_1 => 32,
            ActFormat::Q8K => skiff_tensor::QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            ActFormat::F32 => 4,
            ActFormat::Q8_0 => DType::Q8_0.block_bytes(),
            ActFormat::Q8_1 => DType::Q8_1.block_bytes(),
            ActFormat::Q8K => DType::Q8K.block_bytes(),
        }
    }

    /// Bytes of one row of `n_values` values (`n_values` must be whole blocks).
    pub fn row_bytes(self, n_values: usize) -> usize {
        n_values / self.block_len() * self.block_bytes()
    }

    /// Bytes of one activation row as the packed kernels ([`PackedFn`]) take it:
    /// [`row_bytes`](Self::row_bytes), then for Q8_0 and Q8_1 a trailer of 8 bytes per
    /// block ([`PACKED_TRAILER_BYTES`]): the block's scale `d` widened to a little-endian f32,
    /// then for Q8_0 the sum of its 32 values as an i32 (the packed Q4_0 / Q5_0 kernels
    /// subtract their weights' offset of 8 or 16 with it, instead of summing the block again
    /// for every 8 weight rows), for Q8_1 its `s` widened to f32. A kernel broadcasts these
    /// with one load each, where an f16 needs a load, a broadcast and a conversion per
    /// block, activation row and 8 weight rows. Widening an f16 is exact, so the products
    /// are the same as from the blocks' own f16 fields.
    pub fn packed_row_bytes(self, n_values: usize) -> usize {
        match self {
            ActFormat::Q8_0 | ActFormat::Q8_1 => {
                n_values / 32 * (self.block_bytes() + PACKED_TRAILER_BYTES)
            }
            _ => self.row_bytes(n_values),
        }
    }

    /// Completes a packed activation row whose first [`row_bytes`](Self::row_bytes) hold the
    /// quantized blocks: writes the trailer after them (Q8_0 and Q8_1; nothing for the
    /// others). See [`packed_row_bytes`](Self::packed_row_bytes).
    ///
    /// Panics (a caller bug) when `row` is not [`packed_row_bytes`](Self::packed_row_bytes)
    /// of `n_values` long.
    pub(crate) fn finish_packed_row(self, row: &mut [u8], n_values: usize) {
        assert_eq!(
            row.len(),
            self.packed_row_bytes(n_values),
            "packed activation row"
        );
        if !matches!(self, ActFormat::Q8_0 | ActFormat::Q8_1) {
            return;
        }
        let (blocks, trailer) = row.split_at_mut(self.row_bytes(n_values));
        use crate::scalar::f16_at;
        for (block, t) in blocks
            .chunks_exact(self.block_bytes())
            .zip(trailer.chunks_exact_mut(PACKED_TRAILER_BYTES))
        {
            t[..4].copy_from_slice(&f16_at(block, 0).to_le_bytes());
            let second = if self == ActFormat::Q8_0 {
                let total: i32 = block[2..].iter().map(|&q| i32::from(q as i8)).sum();
                total.to_le_bytes()
            } else {
                f16_at(block, 2).to_le_bytes()
            };
            t[4..].copy_from_slice(&second);
        }
    }
}

/// Trailer bytes per block of a packed Q8_0 / Q8_1 activation row (see
/// [`ActFormat::packed_row_bytes`]).
pub const PACKED_TRAILER_BYTES: usize = 8;

/// One instruction set's kernels. Built only by `dispatch.rs`, which proves the CPU supports
/// the set before handing out a table.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// Which instruction set these kernels use.
    pub isa: Isa,
    /// Activation rows → ggml `block_q8_0` rows (`quantize_row_q8_0`).
    pub quantize_q8_0: QuantizeFn,
    /// Activation rows → ggml `block_q8_1` rows (`quantize_row_q8_1`).
    pub quantize_q8_1: QuantizeFn,
    /// Activation rows → ggml `block_q8_K` rows (`quantize_row_q8_K`).
    pub quantize_q8_k: QuantizeFn,
    /// f32 weights · f32 activations.
    pub vec_dot_f32: DotFn,
    /// f16 weights · f32 activations.
    pub vec_dot_f16_f32: DotFn,
    /// bf16 weights · f32 activations.
    pub vec_dot_bf16_f32: DotFn,
    /// Q4_0 weights · Q8_0 activations.
    pub vec_dot_q4_0_q8_0: DotFn,
    /// Q4_1 weights · Q8_1 activations.
    pub vec_dot_q4_1_q8_1: DotFn,
    /// Q5_0 weights · Q8_0 activations.
    pub vec_dot_q5_0_q8_0: DotFn,
    /// Q5_1 weights · Q8_1 activations.
    pub vec_dot_q5_1_q8_1: DotFn,
    /// Q8_0 weights · Q8_0 activations.
    pub vec_dot_q8_0_q8_0: DotFn,
    /// Q2_K weights · Q8_K activations.
    pub vec_dot_q2_k_q8_k: DotFn,
    /// Q3_K weights · Q8_K activations.
    pub vec_dot_q3_k_q8_k: DotFn,
    /// Q4_K weights · Q8_K activations.
    pub vec_dot_q4_k_q8_k: DotFn,
    /// Q5_K weights · Q8_K activations.
    pub vec_dot_q5_k_q8_k: DotFn,
    /// Q6_K weights · Q8_K activations.
    pub vec_dot_q6_k_q8_k: DotFn,
    /// Batched Q4_0 weights · Q8_0 activations.
    pub gemm8_q4_0_q8_0: Gemm8Fn,
    /// Batched Q4_1 weights · Q8_1 activations.
    pub gemm8_q4_1_q8_1: Gemm8Fn,
    /// Batched Q5_0 weights · Q8_0 activations.
    pub gemm8_q5_0_q8_0: Gemm8Fn,
    /// Batched Q8_0 weights · Q8_0 activations.
    pub gemm8_q8_0_q8_0: Gemm8Fn,
    /// Packed (8-row interleaved) Q4_0 weights · Q8_0 activations.
    pub packed8_q4_0_q8_0: PackedFn,
    /// Packed (8-row interleaved) Q4_1 weights · Q8_1 activations.
    pub packed8_q4_1_q8_1: PackedFn,
    /// Packed (8-row interleaved) Q5_0 weights · Q8_0 activations.
    pub packed8_q5_0_q8_0: PackedFn,
    /// Packed (8-row interleaved) Q8_0 weights · Q8_0 activations.
    pub packed8_q8_0_q8_0: PackedFn,
    /// Packed (8-row interleaved) Q4_K weights · Q8_K activations.
    pub packed8_q4_k_q8_k: PackedFn,
    /// Packed (8-row interleaved) Q6_K weights · Q8_K activations.
    pub packed8_q6_k_q8_k: PackedFn,
}

impl Kernels {
    /// The dot kernel for weights of `dtype`, or `None` when matmul does not accept `dtype`.
    pub fn vec_dot(&self, dtype: DType) -> Option<DotFn> {
        use DType::*;
        Some(match dtype {
            F32 => self.vec_dot_f32,
            F16 => self.vec_dot_f16_f32,
            BF16 => self.vec_dot_bf16_f32,
            Q4_0 => self.vec_dot_q4_0_q8_0,
            Q4_1 => self.vec_dot_q4_1_q8_1,
            Q5_0 => self.vec_dot_q5_0_q8_0,
            Q5_1 => self.vec_dot_q5_1_q8_1,
            Q8_0 => self.vec_dot_q8_0_q8_0,
            Q2K => self.vec_dot_q2_k_q8_k,
            Q3K => self.vec_dot_q3_k_q8_k,
            Q4K => self.vec_dot_q4_k_q8_k,
            Q5K => self.vec_dot_q5_k_q8_k,
            Q6K => self.vec_dot_q6_k_q8_k,
            Q8_1 | Q8K | I8 | I16 | I32 | I64 | F64 => return None,
        })
    }

    /// The batched kernel for weights of `dtype`, or `None` when `dtype` has none (matmul then
    /// uses [`Kernels::vec_dot`] for every row).
    pub fn gemm8(&self, dtype: DType) -> Option<Gemm8Fn> {
        match dtype {
            DType::Q4_0 => Some(self.gemm8_q4_0_q8_0),
            DType::Q4_1 => Some(self.gemm8_q4_1_q8_1),
            DType::Q5_0 => Some(self.gemm8_q5_0_q8_0),
            DType::Q8_0 => Some(self.gemm8_q8_0_q8_0),
            _ => None,
        }
    }

    /// The kernel for [`PackedWeight`](crate::PackedWeight)s of `dtype`, or `None` when
    /// `dtype` has no packed layout.
    pub fn packed8(&self, dtype: DType) -> Option<PackedFn> {
        match dtype {
            DType::Q4_0 => Some(self.packed8_q4_0_q8_0),
            DType::Q4_1 => Some(self.packed8_q4_1_q8_1),
            DType::Q5_0 => Some(self.packed8_q5_0_q8_0),
            DType::Q8_0 => Some(self.packed8_q8_0_q8_0),
            DType::Q4K => Some(self.packed8_q4_k_q8_k),
            DType::Q6K => Some(self.packed8_q6_k_q8_k),
            _ => None,
        }
    }

    /// The activation quantizer for `format`, or `None` for [`ActFormat::F32`] (no conversion).
    pub fn quantize(&self, format: ActFormat) -> Option<QuantizeFn> {
        match format {
            ActFormat::F32 => None,
            ActFormat::Q8_0 => Some(self.quantize_q8_0),
            ActFormat::Q8_1 => Some(self.quantize_q8_1),
            ActFormat::Q8K => Some(self.quantize_q8_k),
        }
    }
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels")
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

/// Asserts that `acts` holds `n_rows ≥ 1` activation rows of `act_row` bytes, `act_stride`
/// bytes apart (a caller bug otherwise). The span is computed with checked arithmetic: a
/// stride or count so large that it wraps must fail here, not pass as a small span and let a
/// SIMD kernel read past the buffer.
pub(crate) fn check_act_rows(acts: &[u8], n_rows: usize, act_stride: usize, act_row: usize) {
    assert!(
        n_rows == 1 || act_stride >= act_row,
        "stride {act_stride} < row {act_row}"
    );
    let need = (n_rows - 1)
        .checked_mul(act_stride)
        .and_then(|span| span.checked_add(act_row));
    assert!(
        need.is_some_and(|need| acts.len() >= need),
        "activations of {} bytes, need {} rows of {act_row} bytes {act_stride} apart",
        acts.len(),
        n_rows
    );
}

/// Checks a [`DotFn`] call's arguments and returns the number of blocks in the weight row.
/// Every kernel, scalar or SIMD, calls this first: SIMD kernels rely on it for the soundness of
/// their unchecked loads.
#[inline]
pub(crate) fn check_dot_args(
    w: &[u8],
    w_block_bytes: usize,
    acts: &[u8],
    act_stride: usize,
    n_rows: usize,
    act_block_bytes: usize,
) -> usize {
    assert!(
        w.len().is_multiple_of(w_block_bytes),
        "weight row of {} bytes is not whole blocks",
        w.len()
    );
    assert!(
        (1..=MAX_ROWS).contains(&n_rows),
        "{n_rows} activation rows (1..={MAX_ROWS})"
    );
    let n_blocks = w.len() / w_block_bytes;
    check_act_rows(acts, n_rows, act_stride, n_blocks * act_block_bytes);
    n_blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::{f16_at, f32_at};

    /// `Isa::ALL` lists every family once, in declaration order (the order caps compare by
    /// and the self-check indexes its cache with), and each name reads back.
    #[test]
    fn isa_list_order_and_names() {
        for (i, isa) in Isa::ALL.into_iter().enumerate() {
            assert_eq!(isa as usize, i, "{isa}");
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
            assert_eq!(
                Isa::from_name(&format!(" {} ", isa.name().to_uppercase())),
                Some(isa)
            );
        }
        assert!(Isa::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Isa::from_name("sse9"), None);
    }

    /// The trailer holds each block's `d` (and Q8_1's `s`) widened exactly, and Q8_0's sum.
    #[test]
    fn packed_row_trailer_widens_scales_and_sums_blocks() {
        let x: Vec<f32> = (0..96)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.37)
            .collect();
        for format in [ActFormat::Q8_0, ActFormat::Q8_1] {
            let quantize = crate::scalar::kernels()
                .quantize(format)
                .expect("quantized");
            let mut row = vec![0u8; format.packed_row_bytes(96)];
            assert_eq!(row.len(), 3 * (format.block_bytes() + PACKED_TRAILER_BYTES));
            quantize(&x, &mut row[..format.row_bytes(96)]);
            format.finish_packed_row(&mut row, 96);
            let (blocks, trailer) = row.split_at(format.row_bytes(96));
            for (b, block) in blocks.chunks_exact(format.block_bytes()).enumerate() {
                let t = &trailer[8 * b..8 * b + 8];
                assert_eq!(f32_at(t, 0), f16_at(block, 0), "{format:?} d");
                if format == ActFormat::Q8_0 {
                    let sum: i32 = block[2..].iter().map(|&q| i32::from(q as i8)).sum();
                    assert_ne!(sum, 0, "the test's blocks have nonzero sums");
                    let got = i32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                    assert_eq!(got, sum, "block {b} sum");
                } else {
                    assert_eq!(f32_at(t, 4), f16_at(block, 2), "block {b} s");
                }
            }
        }
    }
}
