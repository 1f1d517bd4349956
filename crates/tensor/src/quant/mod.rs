//! Conversions between f32 and every tensor format: the scalar reference.
//!
//! [`dequantize`] turns the bytes of a tensor into f32 values; [`quantize`] goes the other way.
//! Both are plain, safe Rust written for clarity; SIMD kernels elsewhere are tested against them.
//!
//! Exactness contracts (each checked by fixtures under `testdata/quant/`):
//! - `dequantize` is **bit-exact** with the `gguf` Python package's `gguf.quants.dequantize`
//!   (gguf-py 0.19, numpy 2.4) for every type that package supports. That means computing in the
//!   same f32 order numpy does: for Q4_1 `(d * q) + m` as two rounded f32 operations (never a
//!   fused multiply-add), for Q6_K `(d * scale) * q`, for the K-quants with mins
//!   `(d * sc) * q - (dmin * m)`. Rust never contracts `a * b + c` into an FMA, so writing the
//!   expressions in that order is enough.
//! - `quantize` is **byte-identical** with `gguf.quants.quantize` where that exists (F16, BF16,
//!   Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), and with ggml's C `quantize_row_*_ref` (llama.cpp
//!   `ggml/src/ggml-quants.c`, the functions `llama-quantize` uses without an importance
//!   matrix) for every block type, the K-quants, Q8_1 and Q8_K included: a line-by-line port,
//!   checked against the compiled C (built without FMA contraction).
//!
//! NaN and infinity policy:
//! - F32/F16/BF16/F64 follow IEEE and numpy: NaN stays NaN (payload kept as numpy keeps it),
//!   ±inf stays ±inf, f32 values beyond f16's range become ±inf in F16.
//! - Block-quantized and integer targets refuse NaN and ±inf with [`QuantError::NotFinite`]:
//!   one non-finite value would silently poison the shared scale of its whole block.
//! - Block formats with f16 scales also refuse inputs above [`MAX_QUANT_INPUT`] in magnitude,
//!   and blocks whose f16 fields would overflow ([`QuantError::ScaleOverflow`]: the scale, the
//!   Q4_1/Q5_1 min, the Q8_1 sum `d·Σq`), instead of writing an infinity as ggml would.
//! - Dequantizing never fails on values: a block whose stored scale is inf or NaN yields inf
//!   or NaN outputs, as the reference does.

mod bounds;
mod float;
mod half_bits;
mod kquant;
mod kquant_quantize;
mod kquant_search;
mod legacy;

#[cfg(test)]
mod tests;

pub use bounds::{
    BoundViolation, Q2_K_MAX_REL_RMSE, Q3_K_MAX_REL_RMSE, Q4_K_MAX_REL_RMSE, Q5_K_MAX_REL_RMSE,
    Q6_K_MAX_REL_RMSE, Q8_K_MAX_REL_RMSE, RoundTripBound, round_trip_bound,
};
pub use half_bits::{f16_bits_to_f32, f32_to_f16_bits};

use crate::dtype::DType;

/// Largest input magnitude accepted by the block formats with f16 scales: 2^32.
///
/// No such format can represent anything near it (the widest, Q6_K, tops out at
/// 65504 × 127 × 32 ≈ 2.7e8), so nothing representable is refused; and it keeps every
/// intermediate of the K-quant searches (sums of 256 squares) far from f32 overflow, which
/// would otherwise turn a scale into NaN and a block silently into zeros.
pub const MAX_QUANT_INPUT: f32 = 4_294_967_296.0;

/// Why a conversion was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    /// The value count is not a multiple of the type's block length.
    #[error("{dtype}: {n_values} values are not a whole number of {block_len}-value blocks")]
    PartialBlock {
        /// The element type.
        dtype: DType,
        /// Values requested.
        n_values: usize,
        /// Values per block of `dtype`.
        block_len: usize,
    },
    /// The byte buffer does not have the size `n_values` values of `dtype` take.
    #[error("{dtype}: {n_values} values take {expected} bytes, but the buffer has {got}")]
    ByteLength {
        /// The element type.
        dtype: DType,
        /// Values requested.
        n_values: usize,
        /// Bytes those values take.
        expected: u64,
        /// Bytes given.
        got: usize,
    },
    /// A byte buffer's length is not a whole number of blocks (for [`to_f32_vec`]).
    #[error("{dtype}: {got} bytes are not a whole number of {block_bytes}-byte blocks")]
    PartialBlockBytes {
        /// The element type.
        dtype: DType,
        /// Bytes given.
        got: usize,
        /// Bytes per block of `dtype`.
        block_bytes: usize,
    },
    /// An input value is NaN or infinite and the target type cannot carry it.
    #[error("{dtype}: input value {index} is {value}; only finite values can be quantized")]
    NotFinite {
        /// The target type.
        dtype: DType,
        /// Index of the value in the input.
        index: usize,
        /// The value.
        value: f32,
    },
    /// An input value is larger in magnitude than the target type can take.
    #[error("{dtype}: input value {index} is {value}, beyond the limit ±{limit}")]
    OutOfRange {
        /// The target type.
        dtype: DType,
        /// Index of the value in the input.
        index: usize,
        /// The value.
        value: f32,
        /// The largest magnitude accepted.
        limit: f32,
    },
    /// An input value has a fraction and the target is an integer type.
    #[error("{dtype}: input value {index} is {value}, not an integer")]
    NotInteger {
        /// The target type.
        dtype: DType,
        /// Index of the value in the input.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A block's scale (or min) does not fit in f16: the values are too large for the format.
    #[error(
        "{dtype}: block {block} (largest |value| {max_abs}) needs a scale beyond f16's range \
         (±65504); this format cannot represent values that large"
    )]
    ScaleOverflow {
        /// The target type.
        dtype: DType,
        /// Index of the block in the input.
        block: usize,
        /// Largest magnitude among the block's input values.
        max_abs: f32,
    },
}

/// Checks that `n_values` values of `dtype` occupy exactly `n_bytes` bytes.
fn check_lengths(dtype: DType, n_values: usize, n_bytes: usize) -> Result<(), QuantError> {
    let block_len = dtype.block_len();
    if !n_values.is_multiple_of(block_len) {
        return Err(QuantError::PartialBlock {
            dtype,
            n_values,
            block_len,
        });
    }
    let expected = (n_values / block_len) as u64 * dtype.block_bytes() as u64;
    if expected != n_bytes as u64 {
        return Err(QuantError::ByteLength {
            dtype,
            n_values,
            expected,
            got: n_bytes,
        });
    }
    Ok(())
}

/// Converts `dst.len()` values of type `dtype`, stored in `src`, to f32.
///
/// `src` must hold exactly `dtype.bytes_for(dst.len())` bytes. Bit-exact with
/// `gguf.quants.dequantize` (see the module docs). Errors only on lengths.
pub fn dequantize(dtype: DType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check_lengths(dtype, dst.len(), src.len())?;
    use DType::*;
    match dtype {
        F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64 => float::dequantize_plain(dtype, src, dst),
        Q4_0 => legacy::dequantize_q4_0(src, dst),
        Q4_1 => legacy::dequantize_q4_1(src, dst),
        Q5_0 => legacy::dequantize_q5_0(src, dst),
        Q5_1 => legacy::dequantize_q5_1(src, dst),
        Q8_0 => legacy::dequantize_q8_0(src, dst),
        Q8_1 => legacy::dequantize_q8_1(src, dst),
        Q2K => kquant::dequantize_q2_k(src, dst),
        Q3K => kquant::dequantize_q3_k(src, dst),
        Q4K => kquant::dequantize_q4_k(src, dst),
        Q5K => kquant::dequantize_q5_k(src, dst),
        Q6K => kquant::dequantize_q6_k(src, dst),
        Q8K => kquant::dequantize_q8_k(src, dst),
    }
    Ok(())
}

/// Converts all of `src` (a whole number of blocks of `dtype`) to a new f32 vector.
pub fn to_f32_vec(dtype: DType, src: &[u8]) -> Result<Vec<f32>, QuantError> {
    let block_bytes = dtype.block_bytes();
    if !src.len().is_multiple_of(block_bytes) {
        return Err(QuantError::PartialBlockBytes {
            dtype,
            got: src.len(),
            block_bytes,
        });
    }
    let mut out = vec![0.0f32; src.len() / block_bytes * dtype.block_len()];
    dequantize(dtype, src, &mut out)?;
    Ok(out)
}

/// Converts `src` to type `dtype`, writing `dtype.bytes_for(src.len())` bytes into `dst`.
///
/// Byte-identical with `gguf.quants.quantize` where it exists, otherwise with ggml's
/// `quantize_row_*_ref`. Refuses values the target cannot carry (see the module docs on NaN,
/// infinity and range); on error the contents of `dst` are unspecified.
pub fn quantize(dtype: DType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check_lengths(dtype, src.len(), dst.len())?;
    match block_quantizer(dtype) {
        Some(quantize_blocks) => {
            check_finite(dtype, src)?;
            quantize_blocks(src, dst);
            check_scales(dtype, src, dst)
        }
        None => float::quantize_plain(dtype, src, dst),
    }
}

/// Quantizes whole blocks of f32 into a block format; lengths are checked by the caller.
type BlockQuantizer = fn(&[f32], &mut [u8]);

/// The quantizer of a block format, or `None` for the plain (float and integer) types.
fn block_quantizer(dtype: DType) -> Option<BlockQuantizer> {
    use DType::*;
    Some(match dtype {
        F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64 => return None,
        Q4_0 => legacy::quantize_q4_0,
        Q4_1 => legacy::quantize_q4_1,
        Q5_0 => legacy::quantize_q5_0,
        Q5_1 => legacy::quantize_q5_1,
        Q8_0 => legacy::quantize_q8_0,
        Q8_1 => legacy::quantize_q8_1,
        Q2K => kquant_quantize::quantize_q2_k,
        Q3K => kquant_quantize::quantize_q3_k,
        Q4K => kquant_quantize::quantize_q4_k,
        Q5K => kquant_quantize::quantize_q5_k,
        Q6K => kquant_quantize::quantize_q6_k,
        Q8K => kquant_quantize::quantize_q8_k,
    })
}

/// Refuses NaN, ±inf, and (for f16-scaled formats) magnitudes above [`MAX_QUANT_INPUT`].
fn check_finite(dtype: DType, src: &[f32]) -> Result<(), QuantError> {
    let limit = if dtype == DType::Q8K {
        f32::MAX
    } else {
        MAX_QUANT_INPUT
    };
    for (index, &value) in src.iter().enumerate() {
        if !value.is_finite() {
            return Err(QuantError::NotFinite {
                dtype,
                index,
                value,
            });
        }
        if value.abs() > limit {
            return Err(QuantError::OutOfRange {
                dtype,
                index,
                value,
                limit,
            });
        }
    }
    Ok(())
}

/// Byte offsets of the f16 scale fields inside one block of `dtype` (ggml-common.h).
fn f16_field_offsets(dtype: DType) -> &'static [usize] {
    use DType::*;
    match dtype {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q8_1 | Q4K | Q5K => &[0, 2],
        Q2K => &[80, 82],
        Q3K => &[108],
        Q6K => &[208],
        _ => &[],
    }
}

/// Refuses output blocks whose f16 scales came out infinite (values too large for the format).
fn check_scales(dtype: DType, src: &[f32], dst: &[u8]) -> Result<(), QuantError> {
    let offsets = f16_field_offsets(dtype);
    let blocks = dst.chunks_exact(dtype.block_bytes());
    for (block, (bytes, values)) in blocks.zip(src.chunks_exact(dtype.block_len())).enumerate() {
        let overflow = offsets.iter().any(|&o| {
            let bits = u16::from_le_bytes([bytes[o], bytes[o + 1]]);
            bits & 0x7c00 == 0x7c00
        });
        if overflow {
            let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            return Err(QuantError::ScaleOverflow {
                dtype,
                block,
                max_abs,
            });
        }
    }
    Ok(())
}

/// Reads the little-endian f16 at `b[at..at + 2]` as f32 (exact).
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Writes `v` rounded to f16 (round to nearest even) little-endian at `b[at..at + 2]`.
fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&f32_to_f16_bits(v).to_le_bytes());
}

/// `v` rounded to f16 and back: the scale a block actually stores.
fn round_f16(v: f32) -> f32 {
    f16_bits_to_f32(f32_to_f16_bits(v))
}
