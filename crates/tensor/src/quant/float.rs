//! The plain element types: F32, F16, BF16, F64 and the integers I8..I64.
//!
//! All little-endian, one value per element. Conversions to f32 follow numpy: f16 and bf16
//! widen exactly, f64 and wide integers round to nearest. Conversions from f32 follow
//! `gguf.quants.quantize`: F16 rounds to nearest even (overflow to ±inf), BF16 is ggml's
//! `ggml_compute_fp32_to_bf16` (round to nearest even, NaN forced quiet). Integer targets
//! accept only finite, integral, in-range values.

use super::{QuantError, f16_bits_to_f32, f32_to_f16_bits};
use crate::dtype::DType;

/// Widens `src` (plain type `dtype`, length checked by the caller) into `dst`.
pub(super) fn dequantize_plain(dtype: DType, src: &[u8], dst: &mut [f32]) {
    match dtype {
        DType::F16 => widen::<2>(src, dst, |b| f16_bits_to_f32(u16::from_le_bytes(b))),
        DType::BF16 => widen::<2>(src, dst, |b| {
            f32::from_bits(u32::from(u16::from_le_bytes(b)) << 16)
        }),
        DType::F64 => widen::<8>(src, dst, |b| f64::from_le_bytes(b) as f32),
        DType::I8 => widen::<1>(src, dst, |b| f32::from(b[0] as i8)),
        DType::I16 => widen::<2>(src, dst, |b| f32::from(i16::from_le_bytes(b))),
        DType::I32 => widen::<4>(src, dst, |b| i32::from_le_bytes(b) as f32),
        DType::I64 => widen::<8>(src, dst, |b| i64::from_le_bytes(b) as f32),
        // F32, and (never dispatched here) the block types: bytes are f32 bit patterns.
        _ => widen::<4>(src, dst, f32::from_le_bytes),
    }
}

/// Applies `convert` to each `N`-byte element of `src`, writing `dst` in order.
fn widen<const N: usize>(src: &[u8], dst: &mut [f32], convert: impl Fn([u8; N]) -> f32) {
    for (b, y) in src.as_chunks::<N>().0.iter().zip(dst.iter_mut()) {
        *y = convert(*b);
    }
}

/// Writes `src` as plain type `dtype` (length checked by the caller).
pub(super) fn quantize_plain(dtype: DType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    match dtype {
        DType::F16 => narrow::<2>(src, dst, |v| f32_to_f16_bits(v).to_le_bytes()),
        DType::BF16 => narrow::<2>(src, dst, |v| f32_to_bf16_bits(v).to_le_bytes()),
        DType::F64 => narrow::<8>(src, dst, |v| f64::from(v).to_le_bytes()),
        DType::I8 | DType::I16 | DType::I32 | DType::I64 => {
            let size = dtype.block_bytes();
            for (index, (&v, out)) in src.iter().zip(dst.chunks_exact_mut(size)).enumerate() {
                let n = checked_integer(dtype, index, v)?;
                out.copy_from_slice(&n.to_le_bytes()[..size]);
            }
        }
        _ => narrow::<4>(src, dst, f32::to_le_bytes),
    }
    Ok(())
}

/// Writes `convert(v)` for each value of `src` into consecutive `N`-byte elements of `dst`.
fn narrow<const N: usize>(src: &[f32], dst: &mut [u8], convert: impl Fn(f32) -> [u8; N]) {
    for (&v, out) in src.iter().zip(dst.as_chunks_mut::<N>().0.iter_mut()) {
        *out = convert(v);
    }
}

/// ggml's `ggml_compute_fp32_to_bf16`: NaN made quiet, otherwise round to nearest even.
fn f32_to_bf16_bits(v: f32) -> u16 {
    let n = v.to_bits();
    if n & 0x7fff_ffff > 0x7f80_0000 {
        return ((n >> 16) | 64) as u16;
    }
    ((u64::from(n) + 0x7fff + u64::from((n >> 16) & 1)) >> 16) as u16
}

/// `v` as an integer of `dtype`'s width, stored in an i64 (two's complement truncates right).
fn checked_integer(dtype: DType, index: usize, value: f32) -> Result<i64, QuantError> {
    if !value.is_finite() {
        return Err(QuantError::NotFinite {
            dtype,
            index,
            value,
        });
    }
    if value.fract() != 0.0 {
        return Err(QuantError::NotInteger {
            dtype,
            index,
            value,
        });
    }
    // Powers of two, so exactly representable as f32 (i64::MAX is not).
    let limit: f32 = match dtype {
        DType::I8 => 128.0,
        DType::I16 => 32768.0,
        DType::I32 => 2_147_483_648.0,
        _ => 9_223_372_036_854_775_808.0,
    };
    if value >= limit || value < -limit {
        return Err(QuantError::OutOfRange {
            dtype,
            index,
            value,
            limit,
        });
    }
    Ok(value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BF16 rounding: ties go to even, NaN stays NaN (quiet), inf stays inf.
    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80); // tie, even below
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82); // tie, even above
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(f32_to_bf16_bits(f32::INFINITY), 0x7f80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0xff81_0000)), 0xffc1);
    }

    /// Integers round-trip exactly; fractions, NaN and out-of-range values are refused.
    #[test]
    fn integers_are_exact_or_refused() {
        for dtype in [DType::I8, DType::I16, DType::I32, DType::I64] {
            let vals = [0.0f32, 1.0, -1.0, 127.0, -128.0];
            let mut bytes = vec![0u8; vals.len() * dtype.block_bytes()];
            quantize_plain(dtype, &vals, &mut bytes).expect("representable");
            let mut back = [0.0f32; 5];
            dequantize_plain(dtype, &bytes, &mut back);
            assert_eq!(back, vals, "{dtype}");
            let mut one = vec![0u8; dtype.block_bytes()];
            for bad in [0.5f32, f32::NAN, 1e30] {
                assert!(
                    quantize_plain(dtype, &[bad], &mut one).is_err(),
                    "{dtype} {bad}"
                );
            }
        }
        let mut one = [0u8; 1];
        assert_eq!(
            quantize_plain(DType::I8, &[128.0], &mut one),
            Err(QuantError::OutOfRange {
                dtype: DType::I8,
                index: 0,
                value: 128.0,
                limit: 128.0
            })
        );
    }
}
