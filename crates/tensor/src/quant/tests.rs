//! Round-trip bounds, edge inputs, NaN/range policy and length errors of `quant`, on every
//! format. (Bit-exactness against the `gguf` reference is in `tests/quant_fixtures.rs`.)

use super::*;
use crate::dtype::ALL_DTYPES;

/// SplitMix64: a tiny deterministic generator, so tests need no extra dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u = self.uniform().max(1e-7);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
    /// Laplace with unit scale (heavy-ish tails, like real weights).
    fn laplace(&mut self) -> f32 {
        let u = self.uniform() - 0.5;
        -u.signum() * (1.0 - 2.0 * u.abs()).max(1e-7).ln()
    }
}

/// `n_blocks` blocks of 256 values, alternating Gaussian, uniform and Laplace, with block
/// magnitudes spread over 1e-3..1e2.
fn test_values(n_blocks: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n_blocks * 256);
    for b in 0..n_blocks {
        let scale = 10f32.powf(rng.uniform() * 5.0 - 3.0);
        for _ in 0..256 {
            let v = match b % 3 {
                0 => rng.normal(),
                1 => rng.uniform() * 2.0 - 1.0,
                _ => rng.laplace(),
            };
            out.push(v * scale);
        }
    }
    out
}

/// Quantizes and dequantizes `x` through `dtype`.
fn round_trip(dtype: DType, x: &[f32]) -> Result<Vec<f32>, QuantError> {
    let n_bytes = dtype.bytes_for(x.len() as u64).expect("whole blocks") as usize;
    let mut bytes = vec![0u8; n_bytes];
    quantize(dtype, x, &mut bytes)?;
    let mut y = vec![0.0f32; x.len()];
    dequantize(dtype, &bytes, &mut y)?;
    Ok(y)
}

/// Types whose quantizer takes arbitrary finite f32 input.
fn float_input_types() -> impl Iterator<Item = DType> {
    ALL_DTYPES
        .into_iter()
        .filter(|t| !matches!(t, DType::I8 | DType::I16 | DType::I32 | DType::I64))
}

/// Every format's round trip stays within its documented bound on varied random data.
#[test]
fn round_trip_error_stays_within_bounds() {
    let x = test_values(48, 7);
    for dtype in float_input_types() {
        let y = round_trip(dtype, &x).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        if let Err(v) = round_trip_bound(dtype).check(&x, &y) {
            panic!("{dtype}: {v}");
        }
    }
}

/// The K-quant RMS bounds are measured: this prints the worst block per format (run with
/// `--nocapture` to see the figures quoted in `bounds.rs`) and checks each stays below.
#[test]
fn k_quant_rms_error_stays_within_bounds() {
    let x = test_values(300, 11);
    for dtype in [
        DType::Q2K,
        DType::Q3K,
        DType::Q4K,
        DType::Q5K,
        DType::Q6K,
        DType::Q8K,
    ] {
        let y = round_trip(dtype, &x).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        let mut worst = 0.0f64;
        for (xb, yb) in x.chunks(256).zip(y.chunks(256)) {
            let rms_x = (xb.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 256.0).sqrt();
            let err = xb
                .iter()
                .zip(yb)
                .map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2))
                .sum::<f64>();
            worst = worst.max((err / 256.0).sqrt() / rms_x);
        }
        let RoundTripBound::Rms { of_rms, .. } = round_trip_bound(dtype) else {
            panic!("{dtype} should have an RMS bound")
        };
        println!("{dtype}: worst relative RMS error {worst:.4} (bound {of_rms})");
        assert!(worst <= f64::from(of_rms), "{dtype}: {worst} > {of_rms}");
    }
}

/// All-zero input encodes to all-zero values for every type.
#[test]
fn zeros_round_trip_to_zeros() {
    let x = vec![0.0f32; 512];
    for dtype in ALL_DTYPES {
        let y = round_trip(dtype, &x).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert!(y.iter().all(|&v| v == 0.0), "{dtype}: {:?}", &y[..8]);
    }
}

/// A constant block survives every format within its bound (exactly, where the constant
/// and its scale are representable).
#[test]
fn constant_blocks_round_trip() {
    for c in [1.0f32, -2.5, 0.013, 1000.0] {
        let x = vec![c; 512];
        for dtype in float_input_types() {
            let y = round_trip(dtype, &x).unwrap_or_else(|e| panic!("{dtype} {c}: {e}"));
            let tol = if matches!(dtype, DType::Q2K | DType::Q3K) {
                0.1
            } else {
                0.01
            };
            for &v in &y {
                assert!((v - c).abs() <= tol * c.abs(), "{dtype}: {c} -> {v}");
            }
        }
    }
}

/// ±large values: within range they round-trip within bounds; beyond what an f16 scale can
/// express they are refused with `ScaleOverflow` (never an infinite scale on disk).
#[test]
fn large_values_round_trip_or_are_refused() {
    let mut x = test_values(2, 3);
    for (i, v) in x.iter_mut().enumerate() {
        *v *= if i % 2 == 0 { 1e3 } else { -1e3 };
    }
    for dtype in float_input_types() {
        let y = round_trip(dtype, &x).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        if let Err(v) = round_trip_bound(dtype).check(&x, &y) {
            panic!("{dtype}: {v}");
        }
    }
    let huge = vec![1e9f32; 256];
    for dtype in [
        DType::Q4_0,
        DType::Q4_1,
        DType::Q8_0,
        DType::Q4K,
        DType::Q6K,
    ] {
        let err = round_trip(dtype, &huge).expect_err("beyond f16 scales");
        assert!(
            matches!(err, QuantError::ScaleOverflow { block: 0, .. }),
            "{dtype}: {err}"
        );
    }
    let beyond = vec![1e20f32; 256];
    let err = round_trip(DType::Q4K, &beyond).expect_err("beyond MAX_QUANT_INPUT");
    assert!(
        matches!(err, QuantError::OutOfRange { index: 0, .. }),
        "{err}"
    );
    let y = round_trip(DType::Q8K, &beyond).expect("Q8_K has an f32 scale");
    assert!(y.iter().all(|&v| (v - 1e20).abs() <= 1e20 / 254.0));
}

/// NaN policy: float types carry NaN and inf through; block and integer types refuse them,
/// naming the value's index.
#[test]
fn nan_and_inf_policy() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = vec![2.0f32; 512];
        x[300] = bad;
        for dtype in ALL_DTYPES {
            let result = round_trip(dtype, &x);
            match dtype {
                DType::F32 | DType::F16 | DType::BF16 | DType::F64 => {
                    let y = result.unwrap_or_else(|e| panic!("{dtype}: {e}"));
                    assert!(
                        y[300].is_nan() == bad.is_nan() && (bad.is_nan() || y[300] == bad),
                        "{dtype}"
                    );
                }
                _ => match result {
                    Err(QuantError::NotFinite { index: 300, .. }) => {}
                    other => panic!("{dtype} with {bad}: {other:?}"),
                },
            }
        }
    }
}

/// Wrong lengths are refused with errors that name the type and the sizes.
#[test]
fn length_errors_name_type_and_sizes() {
    let mut out = vec![0.0f32; 33];
    assert_eq!(
        dequantize(DType::Q4_0, &[0; 18], &mut out),
        Err(QuantError::PartialBlock {
            dtype: DType::Q4_0,
            n_values: 33,
            block_len: 32
        })
    );
    let mut out = vec![0.0f32; 64];
    let err = dequantize(DType::Q4_0, &[0; 35], &mut out).expect_err("35 bytes");
    assert_eq!(
        err,
        QuantError::ByteLength {
            dtype: DType::Q4_0,
            n_values: 64,
            expected: 36,
            got: 35
        }
    );
    assert!(
        err.to_string().contains("Q4_0") && err.to_string().contains("36"),
        "{err}"
    );
    let mut bytes = vec![0u8; 143];
    assert!(matches!(
        quantize(DType::Q4K, &[0.0; 256], &mut bytes),
        Err(QuantError::ByteLength {
            expected: 144,
            got: 143,
            ..
        })
    ));
    assert!(matches!(
        to_f32_vec(DType::Q6K, &[0; 211]),
        Err(QuantError::PartialBlockBytes { .. })
    ));
    assert_eq!(
        to_f32_vec(DType::Q6K, &[0; 420]).expect("two blocks").len(),
        512
    );
    assert_eq!(
        to_f32_vec(DType::F32, &[]).expect("empty"),
        Vec::<f32>::new()
    );
}

/// Dequantizing arbitrary bytes never panics, whatever the scales hold (inf, NaN).
#[test]
fn dequantize_accepts_any_bytes() {
    let mut rng = Rng(5);
    let bytes: Vec<u8> = (0..292 * 32).map(|_| rng.next_u64() as u8).collect();
    for dtype in ALL_DTYPES {
        let n = bytes.len() / dtype.block_bytes() * dtype.block_bytes();
        let y = to_f32_vec(dtype, &bytes[..n]).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert_eq!(y.len(), n / dtype.block_bytes() * dtype.block_len());
    }
}

/// Q8_1's stored sum is `d · Σq`, and Q8_K's bsums are the sums of 16 quants.
#[test]
fn activation_formats_store_their_sums() {
    let x = test_values(1, 9);
    let mut b = vec![0u8; 36 * 8];
    quantize(DType::Q8_1, &x[..256], &mut b).expect("finite");
    for (blk, xs) in b.chunks_exact(36).zip(x.chunks_exact(32)) {
        let d = xs.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
        assert_eq!(f16_at(blk, 0), round_f16(d));
        let sum: i32 = blk[4..].iter().map(|&q| i32::from(q as i8)).sum();
        assert_eq!(f16_at(blk, 2), round_f16(sum as f32 * d));
    }
    let mut b = vec![0u8; 292];
    quantize(DType::Q8K, &x, &mut b).expect("finite");
    for (g, s) in b[4..260].chunks_exact(16).zip(b[260..].chunks_exact(2)) {
        let sum: i32 = g.iter().map(|&q| i32::from(q as i8)).sum();
        assert_eq!(i32::from(i16::from_le_bytes([s[0], s[1]])), sum);
    }
}

mod properties {
    //! Property tests: arbitrary bytes never panic; arbitrary finite input stays within the
    //! proven bounds (legacy formats, F16, BF16, Q8_K; the K-quant bounds are measured, see
    //! `k_quant_rms_error_stays_within_bounds`).

    use proptest::prelude::*;

    use super::*;

    /// A value with a random sign and a magnitude spread over 1e-8..1e4 (or zero).
    fn value() -> impl Strategy<Value = f32> {
        prop_oneof![
            1 => Just(0.0f32),
            8 => (-8.0f32..4.0, any::<bool>()).prop_map(|(e, neg)| {
                let v = 10f32.powf(e);
                if neg { -v } else { v }
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Dequantizing any bytes of any length returns Ok or a length error, never panics.
        #[test]
        fn dequantize_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700), t in 0usize..20) {
            let dtype = ALL_DTYPES[t];
            let _ = to_f32_vec(dtype, &bytes);
            let mut out = vec![0.0f32; 256];
            let _ = dequantize(dtype, &bytes, &mut out);
        }

        /// Finite input of any scale round-trips within the proven bound.
        #[test]
        fn proven_bounds_hold(x in proptest::collection::vec(value(), 256)) {
            for dtype in [DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                          DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q8K] {
                let y = round_trip(dtype, &x).map_err(|e| TestCaseError::fail(format!("{dtype}: {e}")))?;
                if let Err(v) = round_trip_bound(dtype).check(&x, &y) {
                    return Err(TestCaseError::fail(format!("{dtype}: {v}")));
                }
            }
        }
    }
}
