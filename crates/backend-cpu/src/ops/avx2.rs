//! AVX2 + FMA variants of the elementwise kernels, eight f32 lanes at a time with a scalar
//! tail. RMSNorm sums squares in f64 lanes (f32 products are exact in f64, so only the
//! summation order differs from the scalar twin) and RoPE multiplies and adds in the scalar
//! twin's order (bit-identical results). The activations use [`exp8`], a Cephes-style
//! polynomial within a few ulp of `exp`, and `sigmoid(2z)` for `(1 + tanh z) / 2`.
//!
//! The kernels are reachable only through [`kernels`], which takes the [`Avx2Fma`] proof
//! token: that is what makes their `unsafe` calls sound. Every load and store goes through a
//! bounds-checked slice below.

use std::arch::x86_64::*;

use super::scalar::{self, GELU_COEF_A, SQRT_2_OVER_PI};
use super::{OpsKernels, RopeStyle};
use crate::kernels::Isa;
use crate::x86_64::Avx2Fma;

/// The AVX2 table (AVX-VNNI and AVX-512 CPUs run it too; it reports `Isa::Avx2`).
pub(super) fn kernels(_proof: Avx2Fma) -> OpsKernels {
    OpsKernels {
        isa: Isa::Avx2,
        rms_norm,
        add_rms_norm,
        rope,
        silu_mul,
        gelu_tanh_mul,
        add,
        scale,
        softcap,
    }
}

/// Defines the safe wrapper `$name` with the table's signature around the `#[target_feature]`
/// implementation `$imp`.
macro_rules! wrapper {
    ($name:ident => $imp:ident ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?) => {
        fn $name($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: this function is only reachable through `kernels`, whose `Avx2Fma` proof
            // token shows the CPU supports AVX2, FMA and F16C.
            unsafe { $imp($($arg),*) }
        }
    };
}

wrapper!(rms_norm => rms_norm_imp(x: &mut [f32], w: &[f32], eps: f32));
wrapper!(add_rms_norm => add_rms_norm_imp(
    x: &mut [f32], delta: &[f32], w: &[f32], eps: f32, out: &mut [f32]));
wrapper!(rope => rope_imp(x: &mut [f32], cos: &[f32], sin: &[f32], style: RopeStyle));
wrapper!(silu_mul => silu_mul_imp(gate: &mut [f32], up: &[f32]));
wrapper!(gelu_tanh_mul => gelu_tanh_mul_imp(gate: &mut [f32], up: &[f32]));
wrapper!(add => add_imp(x: &mut [f32], delta: &[f32]));
wrapper!(scale => scale_imp(x: &mut [f32], factor: f32));
wrapper!(softcap => softcap_imp(x: &mut [f32], cap: f32));

/// The first 8 values of `s` (panics when shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load8(s: &[f32]) -> __m256 {
    let s = &s[..8];
    // SAFETY: `s` has exactly 8 readable f32; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

/// The first 4 values of `s` (panics when shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load4(s: &[f32]) -> __m128 {
    let s = &s[..4];
    // SAFETY: `s` has exactly 4 readable f32; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_ps(s.as_ptr()) }
}

/// Stores `v` into the first 8 values of `d` (panics when shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store8(d: &mut [f32], v: __m256) {
    let d = &mut d[..8];
    // SAFETY: `d` has exactly 8 writable f32; `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_ps(d.as_mut_ptr(), v) }
}

/// Sum of the 4 f64 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_f64x4(x: __m256d) -> f64 {
    let r = _mm_add_pd(_mm256_extractf128_pd::<1>(x), _mm256_castpd256_pd128(x));
    _mm_cvtsd_f64(_mm_add_sd(r, _mm_unpackhi_pd(r, r)))
}

/// Adds the squares of the 8 values of `v` to the two f64 accumulators.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn acc_squares(v: __m256, acc: &mut [__m256d; 2]) {
    let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
    acc[0] = _mm256_fmadd_pd(lo, lo, acc[0]);
    acc[1] = _mm256_fmadd_pd(hi, hi, acc[1]);
}

/// `1 / sqrt(sum_sq / n + eps)` as the scalar twin computes it.
fn inv_from_sum(sum_sq: f64, n: usize, eps: f32) -> f32 {
    (1.0 / (sum_sq / n.max(1) as f64 + f64::from(eps)).sqrt()) as f32
}

/// `out[i] = x[i] · inv · w[i]` (the same two roundings as the scalar twin).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_by_weight(x: &[f32], inv: f32, w: &[f32], out: &mut [f32]) {
    let n8 = x.len() / 8 * 8;
    let vinv = _mm256_set1_ps(inv);
    for i in (0..n8).step_by(8) {
        let y = _mm256_mul_ps(_mm256_mul_ps(load8(&x[i..]), vinv), load8(&w[i..]));
        store8(&mut out[i..], y);
    }
    for i in n8..x.len() {
        out[i] = x[i] * inv * w[i];
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn rms_norm_imp(x: &mut [f32], w: &[f32], eps: f32) {
    assert_eq!(x.len(), w.len(), "rms_norm row and weight");
    let n8 = x.len() / 8 * 8;
    let mut acc = [_mm256_setzero_pd(); 2];
    for i in (0..n8).step_by(8) {
        acc_squares(load8(&x[i..]), &mut acc);
    }
    let mut sum_sq = hsum_f64x4(_mm256_add_pd(acc[0], acc[1]));
    sum_sq += x[n8..]
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>();
    let inv = inv_from_sum(sum_sq, x.len(), eps);
    let n8 = x.len() / 8 * 8;
    let vinv = _mm256_set1_ps(inv);
    for i in (0..n8).step_by(8) {
        let y = _mm256_mul_ps(_mm256_mul_ps(load8(&x[i..]), vinv), load8(&w[i..]));
        store8(&mut x[i..], y);
    }
    for i in n8..x.len() {
        x[i] = x[i] * inv * w[i];
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn add_rms_norm_imp(x: &mut [f32], delta: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    assert!(
        x.len() == w.len() && delta.len() == w.len() && out.len() == w.len(),
        "add_rms_norm lengths"
    );
    let n8 = x.len() / 8 * 8;
    let mut acc = [_mm256_setzero_pd(); 2];
    for i in (0..n8).step_by(8) {
        let v = _mm256_add_ps(load8(&x[i..]), load8(&delta[i..]));
        store8(&mut x[i..], v);
        acc_squares(v, &mut acc);
    }
    let mut sum_sq = hsum_f64x4(_mm256_add_pd(acc[0], acc[1]));
    for i in n8..x.len() {
        x[i] += delta[i];
        sum_sq += f64::from(x[i]) * f64::from(x[i]);
    }
    scale_by_weight(x, inv_from_sum(sum_sq, x.len(), eps), w, out);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn rope_imp(x: &mut [f32], cos: &[f32], sin: &[f32], style: RopeStyle) {
    let n_pairs = cos.len();
    assert!(
        sin.len() == n_pairs && 2 * n_pairs <= x.len(),
        "rope lengths"
    );
    let done = match style {
        RopeStyle::Neox => {
            let n8 = n_pairs / 8 * 8;
            for i in (0..n8).step_by(8) {
                let (x0, x1) = (load8(&x[i..]), load8(&x[i + n_pairs..]));
                let (c, s) = (load8(&cos[i..]), load8(&sin[i..]));
                let y0 = _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s));
                let y1 = _mm256_add_ps(_mm256_mul_ps(x0, s), _mm256_mul_ps(x1, c));
                store8(&mut x[i..], y0);
                store8(&mut x[i + n_pairs..], y1);
            }
            n8
        }
        RopeStyle::Interleaved => {
            let n4 = n_pairs / 4 * 4;
            for i in (0..n4).step_by(4) {
                let (c, s) = (load4(&cos[i..]), load4(&sin[i..]));
                // [c0, c0, c1, c1, c2, c2, c3, c3], likewise for the sines.
                let cd = _mm256_set_m128(_mm_unpackhi_ps(c, c), _mm_unpacklo_ps(c, c));
                let sd = _mm256_set_m128(_mm_unpackhi_ps(s, s), _mm_unpacklo_ps(s, s));
                let v = load8(&x[2 * i..]);
                let swapped = _mm256_permute_ps::<0b10_11_00_01>(v);
                // Even lanes x0·c − x1·s, odd lanes x1·c + x0·s.
                let y = _mm256_addsub_ps(_mm256_mul_ps(v, cd), _mm256_mul_ps(swapped, sd));
                store8(&mut x[2 * i..], y);
            }
            n4
        }
    };
    for i in done..n_pairs {
        let (a, b) = scalar::rope_pair(style, i, n_pairs);
        let (x0, x1) = (x[a], x[b]);
        x[a] = x0 * cos[i] - x1 * sin[i];
        x[b] = x0 * sin[i] + x1 * cos[i];
    }
}

/// Clamp bounds of [`exp8`]: below, 2^n would be subnormal; above, it would overflow.
const EXP_LO: f32 = -87.336_55;
const EXP_HI: f32 = 88.0;
/// ln 2 in two parts (Cephes' `C1`, `C2`): `LN2_HI` is 355/512 (0.693359375, written in
/// its shortest f32 form), so `n · LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf` polynomial coefficients, highest degree first.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5, // Cephes' 5.0000001201e-1 rounds to 0.5 in f32
];

/// `exp` of 8 lanes within a few ulp, inputs clamped to `[EXP_LO, EXP_HI]` (NaN stays NaN).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn exp8(x: __m256) -> __m256 {
    // `max`/`min` return their second operand when either is NaN: keep `x` second.
    let x = _mm256_min_ps(
        _mm256_set1_ps(EXP_HI),
        _mm256_max_ps(_mm256_set1_ps(EXP_LO), x),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let mut p = _mm256_set1_ps(EXP_P[0]);
    for c in &EXP_P[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
    }
    let r2 = _mm256_mul_ps(r, r);
    let p = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
    let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
}

/// `x / (1 + exp(-k·x))`: SiLU for `k = 1`; with `x` and `k·x` given separately.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn div_one_plus_exp_neg(x: __m256, kx: __m256) -> __m256 {
    let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), kx));
    _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn silu_mul_imp(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "silu_mul lengths");
    let n8 = gate.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        let g = load8(&gate[i..]);
        let y = _mm256_mul_ps(div_one_plus_exp_neg(g, g), load8(&up[i..]));
        store8(&mut gate[i..], y);
    }
    scalar::silu_mul(&mut gate[n8..], &up[n8..]);
}

/// `gelu_tanh(x) = x · sigmoid(2z)` with `z = sqrt(2/pi) (x + 0.044715 x³)`, the same value
/// as `0.5 x (1 + tanh z)`.
#[target_feature(enable = "avx2,fma,f16c")]
fn gelu_tanh_mul_imp(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "gelu_tanh_mul lengths");
    let n8 = gate.len() / 8 * 8;
    let (a, k) = (
        _mm256_set1_ps(GELU_COEF_A),
        _mm256_set1_ps(2.0 * SQRT_2_OVER_PI),
    );
    for i in (0..n8).step_by(8) {
        let g = load8(&gate[i..]);
        let inner = _mm256_fmadd_ps(_mm256_mul_ps(a, g), _mm256_mul_ps(g, g), g);
        let y = div_one_plus_exp_neg(g, _mm256_mul_ps(k, inner));
        store8(&mut gate[i..], _mm256_mul_ps(y, load8(&up[i..])));
    }
    scalar::gelu_tanh_mul(&mut gate[n8..], &up[n8..]);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn add_imp(x: &mut [f32], delta: &[f32]) {
    assert_eq!(x.len(), delta.len(), "add lengths");
    let n8 = x.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        let y = _mm256_add_ps(load8(&x[i..]), load8(&delta[i..]));
        store8(&mut x[i..], y);
    }
    scalar::add(&mut x[n8..], &delta[n8..]);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn scale_imp(x: &mut [f32], factor: f32) {
    let n8 = x.len() / 8 * 8;
    let f = _mm256_set1_ps(factor);
    for i in (0..n8).step_by(8) {
        let y = _mm256_mul_ps(load8(&x[i..]), f);
        store8(&mut x[i..], y);
    }
    scalar::scale(&mut x[n8..], factor);
}

/// `cap · tanh(x / cap)` with `tanh y = 1 − 2 / (exp(2y) + 1)`.
#[target_feature(enable = "avx2,fma,f16c")]
fn softcap_imp(x: &mut [f32], cap: f32) {
    let n8 = x.len() / 8 * 8;
    let (vcap, two_over_cap) = (_mm256_set1_ps(cap), _mm256_set1_ps(2.0 / cap));
    let (one, two) = (_mm256_set1_ps(1.0), _mm256_set1_ps(2.0));
    for i in (0..n8).step_by(8) {
        let e = exp8(_mm256_mul_ps(load8(&x[i..]), two_over_cap));
        let t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
        store8(&mut x[i..], _mm256_mul_ps(vcap, t));
    }
    scalar::softcap(&mut x[n8..], cap);
}
