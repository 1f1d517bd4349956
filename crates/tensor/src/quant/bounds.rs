//! How far `dequantize(quantize(x))` may stray from `x`, per format: the round-trip error
//! bounds that tests of the quantizers (and of kernels built on them) check against.
//!
//! Derivations (f16 rounds a scale `d` by at most `2^-11·|d|`, or `2^-25` absolute once `d`
//! falls into f16's subnormal range, below 6.1e-5):
//! - Q8_0/Q8_1: `d = amax/127`, `q = round(x/d)`, so `|err| ≤ d/2 + 127·|Δd|`
//!   = `amax/254 + 2^-11·amax` (+ `127·2^-25`).
//! - Q4_0: `d = max/−8`; values rounded half up, except `x = −max`, whose ideal quant 16 is
//!   clamped to 15: one full step, `|d| = amax/8`. Plus `8·|Δd|`.
//! - Q5_0: likewise with `|d| = amax/16`, step clamped at 32 → 31.
//! - Q4_1/Q5_1: `d = (max − min)/q_max`, `x = d·q + m`: `|err| ≤ d/2 + q_max·|Δd| + |Δm|`
//!   = `range/(2·q_max) + 2^-11·range + 2^-11·amax` (+ subnormal terms).
//! - K-quants (two-level scales fitted by search, no closed form worth stating): the RMS error
//!   of each 256-value super-block relative to its RMS, measured over Gaussian, uniform and
//!   Laplace blocks (300 super-blocks, magnitudes 1e-3..1e2) by
//!   `quant::tests::k_quant_rms_error_stays_within_bounds`, with 1.5× headroom over the
//!   worst block observed (`cargo test -p skiff-tensor k_quant_rms -- --nocapture` prints it).
//! - F16/BF16: relative rounding `2^-11` / `2^-8`, plus an absolute floor in the subnormal
//!   range. F32, F64 and integral values in integer types are exact.
//!
//! Every bound adds `1e-6` relative slack for the f32 arithmetic of the round trip itself.

use std::fmt;

use crate::dtype::DType;

/// The round-trip error allowed for one format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RoundTripBound {
    /// Decoding gives the input back exactly.
    Exact,
    /// Every value: `|y − x| ≤ rel·|x| + abs`.
    Relative {
        /// Relative error allowed.
        rel: f32,
        /// Absolute error allowed on top (subnormal range).
        abs: f32,
    },
    /// Every value of a block: `|y − x| ≤ of_amax·amax + of_range·(max − min) + abs`, where
    /// `amax`, `max`, `min` are the block's largest magnitude, largest and smallest value.
    MaxAbs {
        /// Values per block.
        block_len: usize,
        /// Coefficient of the block's largest magnitude.
        of_amax: f32,
        /// Coefficient of the block's range.
        of_range: f32,
        /// Absolute allowance (scales in f16's subnormal range).
        abs: f32,
    },
    /// Each block: `rms(y − x) ≤ of_rms·rms(x)`.
    Rms {
        /// Values per block.
        block_len: usize,
        /// Largest RMS error allowed, as a fraction of the block's RMS.
        of_rms: f32,
    },
}

/// 2^-11: f16's relative rounding error.
const F16_REL: f32 = 1.0 / 2048.0;
/// 2^-25: half the spacing of f16 subnormals.
const F16_SUBNORMAL: f32 = 2.980_232_2e-8;

/// Measured RMS-error ceiling of Q2_K (2-bit; worst observed 0.40 of block RMS).
pub const Q2_K_MAX_REL_RMSE: f32 = 0.60;
/// Measured RMS-error ceiling of Q3_K (3-bit; worst observed 0.21).
pub const Q3_K_MAX_REL_RMSE: f32 = 0.32;
/// Measured RMS-error ceiling of Q4_K (4-bit; worst observed 0.094).
pub const Q4_K_MAX_REL_RMSE: f32 = 0.14;
/// Measured RMS-error ceiling of Q5_K (5-bit; worst observed 0.048).
pub const Q5_K_MAX_REL_RMSE: f32 = 0.072;
/// Measured RMS-error ceiling of Q6_K (6-bit; worst observed 0.031).
pub const Q6_K_MAX_REL_RMSE: f32 = 0.046;
/// Q8_K: `d = amax/127` in f32, so every value is within `amax/254`; as an RMS bound that is
/// at most `amax/254`, and `amax ≤ 16·rms` for a 256-value block: 0.063.
pub const Q8_K_MAX_REL_RMSE: f32 = 16.0 / 254.0;

/// The bound `dequantize(quantize(x))` stays within for `dtype` (finite inputs, in range).
pub fn round_trip_bound(dtype: DType) -> RoundTripBound {
    use DType::*;
    let legacy = |of_amax: f32, of_range: f32, abs: f32| RoundTripBound::MaxAbs {
        block_len: 32,
        of_amax: of_amax + 1e-6,
        of_range: of_range + if of_range > 0.0 { 1e-6 } else { 0.0 },
        abs,
    };
    let k = |of_rms: f32| RoundTripBound::Rms {
        block_len: 256,
        of_rms,
    };
    match dtype {
        F32 | F64 | I8 | I16 | I32 | I64 => RoundTripBound::Exact,
        F16 => RoundTripBound::Relative {
            rel: F16_REL,
            abs: F16_SUBNORMAL,
        },
        BF16 => RoundTripBound::Relative {
            rel: 1.0 / 256.0,
            abs: 1e-38,
        },
        Q8_0 | Q8_1 => legacy(1.0 / 254.0 + F16_REL, 0.0, 127.0 * F16_SUBNORMAL),
        Q4_0 => legacy(1.0 / 8.0 + F16_REL, 0.0, 8.0 * F16_SUBNORMAL),
        Q5_0 => legacy(1.0 / 16.0 + F16_REL, 0.0, 16.0 * F16_SUBNORMAL),
        Q4_1 => legacy(F16_REL, 1.0 / 30.0 + F16_REL, 16.0 * F16_SUBNORMAL),
        Q5_1 => legacy(F16_REL, 1.0 / 62.0 + F16_REL, 32.0 * F16_SUBNORMAL),
        Q2K => k(Q2_K_MAX_REL_RMSE),
        Q3K => k(Q3_K_MAX_REL_RMSE),
        Q4K => k(Q4_K_MAX_REL_RMSE),
        Q5K => k(Q5_K_MAX_REL_RMSE),
        Q6K => k(Q6_K_MAX_REL_RMSE),
        Q8K => k(Q8_K_MAX_REL_RMSE),
    }
}

/// Where a decoded buffer broke its [`RoundTripBound`].
#[derive(Clone, Debug, PartialEq)]
pub struct BoundViolation {
    /// Index of the offending value (for [`RoundTripBound::Rms`], the block's first value).
    pub index: usize,
    /// The error found (absolute, or relative RMS for [`RoundTripBound::Rms`]).
    pub error: f32,
    /// The error allowed there.
    pub allowed: f32,
}

impl fmt::Display for BoundViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "value {}: error {:e} exceeds the allowed {:e}",
            self.index, self.error, self.allowed
        )
    }
}

impl RoundTripBound {
    /// Checks `decoded` against `original` (equal lengths, whole blocks); the first violation.
    pub fn check(&self, original: &[f32], decoded: &[f32]) -> Result<(), BoundViolation> {
        match *self {
            RoundTripBound::Exact => check_each(original, decoded, 0, |_| 0.0),
            RoundTripBound::Relative { rel, abs } => {
                check_each(original, decoded, 0, |x| rel * x.abs() * (1.0 + 1e-6) + abs)
            }
            RoundTripBound::MaxAbs {
                block_len,
                of_amax,
                of_range,
                abs,
            } => {
                let blocks = original.chunks(block_len).zip(decoded.chunks(block_len));
                for (i, (x, y)) in blocks.enumerate() {
                    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let max = x.iter().fold(f32::MIN, |m, &v| m.max(v));
                    let min = x.iter().fold(f32::MAX, |m, &v| m.min(v));
                    let allowed = of_amax * amax + of_range * (max - min) + abs;
                    check_each(x, y, i * block_len, |_| allowed)?;
                }
                Ok(())
            }
            RoundTripBound::Rms { block_len, of_rms } => {
                let blocks = original.chunks(block_len).zip(decoded.chunks(block_len));
                for (i, (x, y)) in blocks.enumerate() {
                    let rms = |v: &mut dyn Iterator<Item = f64>| {
                        (v.map(|e| e * e).sum::<f64>() / x.len() as f64).sqrt()
                    };
                    let rms_x = rms(&mut x.iter().map(|&v| f64::from(v)));
                    let rms_err =
                        rms(&mut x.iter().zip(y).map(|(&a, &b)| f64::from(b) - f64::from(a)));
                    let error = (rms_err / rms_x.max(f64::MIN_POSITIVE)) as f32;
                    if rms_err > f64::from(of_rms) * rms_x {
                        return Err(BoundViolation {
                            index: i * block_len,
                            error,
                            allowed: of_rms,
                        });
                    }
                }
                Ok(())
            }
        }
    }
}

/// Checks `|y − x| ≤ allowed(x)` value by value (NaN inputs must decode to NaN).
fn check_each(
    x: &[f32],
    y: &[f32],
    first: usize,
    allowed: impl Fn(f32) -> f32,
) -> Result<(), BoundViolation> {
    for (i, (&a, &b)) in x.iter().zip(y).enumerate() {
        if a.is_nan() && b.is_nan() || a == b {
            continue;
        }
        let error = (b - a).abs();
        let allowed = allowed(a);
        if error.is_nan() || error > allowed {
            return Err(BoundViolation {
                index: first + i,
                error,
                allowed,
            });
        }
    }
    Ok(())
}
