//! Every supported ops table against the scalar twins, on random inputs of odd sizes (so the
//! SIMD bodies and their scalar tails both run), plus spot values of the scalar twins.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scalar;
use super::{OpsKernels, RopeStyle};
use crate::Cpu;

/// Sizes around the 8-lane and 4-pair boundaries, and model widths (576, 640, 1536).
const SIZES: [usize; 10] = [1, 3, 7, 8, 9, 17, 31, 576, 643, 1536];

fn random(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// `|got − want| ≤ abs + rel · |want|` for every element, naming the table and the index.
fn assert_close(what: &str, isa: crate::Isa, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what} {isa}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= abs + rel * w.abs(),
            "{what} {isa} [{i}] of {}: got {g}, want {w}",
            got.len()
        );
    }
}

fn tables() -> Vec<&'static OpsKernels> {
    let tables = OpsKernels::all_supported();
    assert_eq!(tables[0].isa, crate::Isa::Scalar, "scalar table first");
    tables
}

#[test]
fn rms_norm_and_fused_add_match_scalar() {
    let mut rng = StdRng::seed_from_u64(1);
    for t in tables() {
        for n in SIZES {
            let (x, d, w) = (
                random(&mut rng, n, 4.0),
                random(&mut rng, n, 4.0),
                random(&mut rng, n, 2.0),
            );
            let (mut got, mut want) = (x.clone(), x.clone());
            (t.rms_norm)(&mut got, &w, 1e-6);
            scalar::rms_norm(&mut want, &w, 1e-6);
            assert_close("rms_norm", t.isa, &got, &want, 1e-6, 1e-6);

            let (mut xg, mut xw) = (x.clone(), x.clone());
            let (mut og, mut ow) = (vec![0.0; n], vec![0.0; n]);
            (t.add_rms_norm)(&mut xg, &d, &w, 1e-5, &mut og);
            scalar::add_rms_norm(&mut xw, &d, &w, 1e-5, &mut ow);
            assert_eq!(xg, xw, "add_rms_norm {} residual, n {n}", t.isa);
            assert_close("add_rms_norm", t.isa, &og, &ow, 1e-6, 1e-6);
        }
    }
}

#[test]
fn rope_matches_scalar_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(2);
    for t in tables() {
        for style in [RopeStyle::Interleaved, RopeStyle::Neox] {
            // (head_dim, n_pairs): full rotation, partial rotation, odd pair counts.
            for (head_dim, n_pairs) in [(64, 32), (128, 64), (10, 5), (30, 13), (256, 16), (6, 0)] {
                let x = random(&mut rng, head_dim, 3.0);
                let angles = random(&mut rng, n_pairs, 100.0);
                let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
                let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
                let (mut got, mut want) = (x.clone(), x.clone());
                (t.rope)(&mut got, &cos, &sin, style);
                scalar::rope(&mut want, &cos, &sin, style);
                assert_eq!(got, want, "rope {} {style:?} head_dim {head_dim}", t.isa);
            }
        }
    }
}

#[test]
fn gated_activations_match_scalar() {
    let mut rng = StdRng::seed_from_u64(3);
    for t in tables() {
        for n in SIZES {
            // Wide range: saturated tails as well as the curved middle.
            let (g, u) = (random(&mut rng, n, 12.0), random(&mut rng, n, 3.0));
            for (name, f, reference) in [
                ("silu_mul", t.silu_mul, scalar::silu_mul as super::GluFn),
                ("gelu_tanh_mul", t.gelu_tanh_mul, scalar::gelu_tanh_mul),
            ] {
                let (mut got, mut want) = (g.clone(), g.clone());
                f(&mut got, &u);
                reference(&mut want, &u);
                assert_close(name, t.isa, &got, &want, 2e-6, 2e-6);
            }
        }
    }
}

#[test]
fn add_scale_softcap_match_scalar() {
    let mut rng = StdRng::seed_from_u64(4);
    for t in tables() {
        for n in SIZES {
            let (x, d) = (random(&mut rng, n, 50.0), random(&mut rng, n, 50.0));
            let (mut got, mut want) = (x.clone(), x.clone());
            (t.add)(&mut got, &d);
            scalar::add(&mut want, &d);
            assert_eq!(got, want, "add {}", t.isa);
            (t.scale)(&mut got, 0.37);
            scalar::scale(&mut want, 0.37);
            assert_eq!(got, want, "scale {}", t.isa);
            let cap = 30.0;
            let (mut got, mut want) = (x.clone(), x.clone());
            (t.softcap)(&mut got, cap);
            scalar::softcap(&mut want, cap);
            assert_close("softcap", t.isa, &got, &want, 1e-6 * cap, 1e-6);
        }
    }
}

/// Extreme and special inputs: saturation without overflow, and NaN stays NaN.
#[test]
fn activations_saturate_and_keep_nan() {
    for t in tables() {
        let mut g = vec![-200.0, -90.0, -20.0, 0.0, 20.0, 90.0, 200.0, f32::NAN, 1.0];
        let up = vec![1.0; g.len()];
        (t.silu_mul)(&mut g, &up);
        assert!(g[..7].iter().all(|v| v.is_finite()), "silu {} {g:?}", t.isa);
        assert!(g[0].abs() < 1e-30 && g[6] == 200.0, "silu {} {g:?}", t.isa);
        assert!(g[7].is_nan(), "silu {} keeps NaN: {g:?}", t.isa);
        let mut c = vec![-1e6, -60.0, 0.0, 60.0, 1e6, -1e6, 1e6, 5.0, f32::NAN];
        (t.softcap)(&mut c, 30.0);
        assert!(
            (c[0] + 30.0).abs() < 1e-4 && (c[4] - 30.0).abs() < 1e-4,
            "{c:?}"
        );
        assert!(c[8].is_nan(), "softcap {} keeps NaN: {c:?}", t.isa);
    }
}

/// Spot values of the scalar twins (torch.nn.functional.silu / gelu(approximate="tanh")).
#[test]
fn scalar_spot_values() {
    for (got, want) in [
        (scalar::silu(1.0), 0.731_058_6),
        (scalar::silu(-2.0), -0.238_405_84),
        (scalar::gelu_tanh(1.0), 0.841_191_95),
        (scalar::gelu_tanh(-0.5), -0.154_286),
    ] {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    let mut x = [3.0f32, 3.0, 3.0, -2.0];
    scalar::rms_norm(&mut x, &[0.5, 2.0, -1.0, 1.0], 0.0);
    let inv = 1.0 / (31.0f32 / 4.0).sqrt();
    assert!((x[0] - 1.5 * inv).abs() < 1e-6 && (x[3] + 2.0 * inv).abs() < 1e-6);
}

/// The `Cpu` methods apply the row kernels to every row (norm) and every head (RoPE).
#[test]
fn cpu_methods_split_rows() {
    let cpu = Cpu::new(1);
    let w = [1.0f32, 2.0, 3.0];
    let mut x = vec![1.0f32, 1.0, 1.0, 2.0, 2.0, 2.0];
    cpu.rms_norm(&mut x, &w, 0.0);
    assert_eq!(x, vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    let mut h = vec![0.0f32, 1.0, 0.0, 1.0];
    // Two heads of 2 dims, rotated by 90 degrees: (0, 1) -> (-1, 0).
    cpu.rope(&mut h, 2, &[0.0], &[1.0], RopeStyle::Neox);
    assert_eq!(h, vec![-1.0, 0.0, -1.0, 0.0]);
}
