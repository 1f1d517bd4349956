//! IEEE binary16 <-> binary32 conversions, written out so NaN payloads behave exactly as
//! numpy's (`npy_halfbits_to_floatbits` / `npy_floatbits_to_halfbits`), which the `gguf`
//! reference uses.
//!
//! Finite values convert the only correct way (f16 -> f32 is exact; f32 -> f16 rounds to
//! nearest, ties to even, overflowing to ±inf). NaNs differ between implementations: numpy
//! (and so gguf) keeps the payload bits that fit and never sets the quiet bit, while x86's
//! F16C instructions quiet signalling NaNs. We follow numpy.

/// Converts f16 bits to the f32 value they denote (exact; NaN payloads shifted, not quieted).
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from(h & 0x7c00);
    let man = u32::from(h & 0x03ff);
    let bits = match exp {
        0 if man == 0 => sign,
        0 => {
            // Subnormal: normalise the significand into an f32 exponent.
            let mut man = man << 1;
            let mut exp_f32: u32 = 127 - 15;
            while man & 0x0400 == 0 {
                man <<= 1;
                exp_f32 -= 1;
            }
            sign | (exp_f32 << 23) | ((man & 0x03ff) << 13)
        }
        0x7c00 => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 0x1_c000) << 13) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Rounds an f32 to f16 bits: nearest, ties to even; beyond ±65520 becomes ±inf; NaN keeps
/// the top 10 payload bits (a payload that would vanish becomes 1, so NaN stays NaN).
pub fn f32_to_f16_bits(v: f32) -> u16 {
    let f = v.to_bits();
    let sign = ((f & 0x8000_0000) >> 16) as u16;
    let f_exp = f & 0x7f80_0000;
    if f_exp >= 0x4780_0000 {
        // Exponent overflow, infinity, or NaN.
        let f_man = f & 0x007f_ffff;
        if f_exp == 0x7f80_0000 && f_man != 0 {
            let payload = (f_man >> 13) as u16;
            return sign | 0x7c00 | if payload == 0 { 1 } else { payload };
        }
        return sign | 0x7c00;
    }
    if f_exp <= 0x3800_0000 {
        // Result is subnormal or zero.
        if f_exp < 0x3300_0000 {
            return sign;
        }
        let shift = 113 - (f_exp >> 23);
        let mut man = (0x0080_0000 + (f & 0x007f_ffff)) >> shift;
        // Ties to even: the bits shifted out before this point count as "beyond the tie".
        if (man & 0x3fff) != 0x1000 || (f & 0x07ff) != 0 {
            man += 0x1000;
        }
        return sign | (man >> 13) as u16;
    }
    let h_exp = ((f_exp - 0x3800_0000) >> 13) as u16;
    let mut man = f & 0x007f_ffff;
    if (man & 0x3fff) != 0x1000 {
        man += 0x1000;
    }
    // A carry out of the significand bumps the exponent, up to inf: still correct.
    sign | (h_exp + (man >> 13) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every non-NaN f16 converts to the same f32 as the `half` crate's conversion.
    #[test]
    fn f16_to_f32_matches_half_for_every_value() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_bits_to_f32(h);
            if want.is_nan() {
                assert!(got.is_nan(), "{h:#06x}");
                assert_eq!(
                    got.to_bits() & 0x003f_ffff,
                    u32::from(h & 0x1ff) << 13,
                    "{h:#06x}"
                );
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{h:#06x}");
            }
        }
    }

    /// f32 -> f16 rounding agrees with `half` on every f16 value, every midpoint between
    /// neighbours, and its neighbours one f32 ulp either side.
    #[test]
    fn f32_to_f16_matches_half_around_every_boundary() {
        for h in 0..0x7bffu16 {
            let lo = f64::from(half::f16::from_bits(h).to_f32());
            let hi = f64::from(half::f16::from_bits(h + 1).to_f32());
            let mid = ((lo + hi) / 2.0) as f32;
            for x in [
                lo as f32,
                mid,
                f32::from_bits(mid.to_bits() + 1),
                f32::from_bits(mid.to_bits().max(1) - 1),
            ] {
                for v in [x, -x] {
                    let want = half::f16::from_f32(v).to_bits();
                    assert_eq!(f32_to_f16_bits(v), want, "{v:e} ({:#010x})", v.to_bits());
                }
            }
        }
        for v in [
            65520.0f32,
            65519.99,
            1e10,
            f32::MAX,
            f32::INFINITY,
            f32::MIN_POSITIVE,
            1e-30,
        ] {
            assert_eq!(
                f32_to_f16_bits(v),
                half::f16::from_f32(v).to_bits(),
                "{v:e}"
            );
        }
    }

    /// NaN payloads follow numpy: kept (truncated), never quieted, never turned into inf.
    #[test]
    fn nan_payloads_follow_numpy() {
        assert_eq!(f32_to_f16_bits(f32::from_bits(0x7f80_0001)), 0x7c01);
        assert_eq!(f32_to_f16_bits(f32::from_bits(0x7fc0_0001)), 0x7e00);
        assert_eq!(f32_to_f16_bits(f32::from_bits(0x7fa0_0000)), 0x7d00);
        assert_eq!(f16_bits_to_f32(0x7c01).to_bits(), 0x7f80_2000);
        assert_eq!(f16_bits_to_f32(0xfe01).to_bits(), 0xffc0_2000);
    }
}
