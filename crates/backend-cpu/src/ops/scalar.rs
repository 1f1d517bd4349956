//! The scalar reference of every elementwise kernel: plain safe Rust, the specification the
//! SIMD variants are tested against. RMSNorm sums squares in f64; the activations use the
//! standard library's `exp` and `tanh`.

use super::{OpsKernels, RopeStyle};
use crate::kernels::Isa;

/// The scalar table.
pub(crate) const KERNELS: OpsKernels = OpsKernels {
    isa: Isa::Scalar,
    rms_norm,
    add_rms_norm,
    rope,
    silu_mul,
    gelu_tanh_mul,
    add,
    scale,
    softcap,
};

/// `sqrt(2 / pi)`, GELU's tanh-approximation constant.
pub const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient of GELU's tanh approximation.
pub const GELU_COEF_A: f32 = 0.044_715;

/// `1 / sqrt(mean(x²) + eps)`, the sum of squares taken in f64.
pub fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let sum_sq: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    (1.0 / (sum_sq / x.len().max(1) as f64 + f64::from(eps)).sqrt()) as f32
}

/// RMSNorm of one row in place (see [`super::RmsNormFn`]).
pub fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    assert_eq!(x.len(), w.len(), "rms_norm row and weight");
    let inv = inv_rms(x, eps);
    for (v, w) in x.iter_mut().zip(w) {
        *v = *v * inv * w;
    }
}

/// Residual add fused with RMSNorm (see [`super::AddRmsNormFn`]).
pub fn add_rms_norm(x: &mut [f32], delta: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    assert!(
        x.len() == w.len() && delta.len() == w.len() && out.len() == w.len(),
        "add_rms_norm lengths"
    );
    add(x, delta);
    let inv = inv_rms(x, eps);
    for ((o, v), w) in out.iter_mut().zip(x.iter()).zip(w) {
        *o = *v * inv * w;
    }
}

/// The two dims pair `i` of a head rotates together.
#[inline]
pub fn rope_pair(style: RopeStyle, i: usize, n_pairs: usize) -> (usize, usize) {
    match style {
        RopeStyle::Interleaved => (2 * i, 2 * i + 1),
        RopeStyle::Neox => (i, i + n_pairs),
    }
}

/// RoPE of one head (see [`super::RopeFn`]).
pub fn rope(x: &mut [f32], cos: &[f32], sin: &[f32], style: RopeStyle) {
    let n_pairs = cos.len();
    assert!(
        sin.len() == n_pairs && 2 * n_pairs <= x.len(),
        "rope lengths"
    );
    for i in 0..n_pairs {
        let (a, b) = rope_pair(style, i, n_pairs);
        let (x0, x1) = (x[a], x[b]);
        x[a] = x0 * cos[i] - x1 * sin[i];
        x[b] = x0 * sin[i] + x1 * cos[i];
    }
}

/// `x · sigmoid(x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³)))`.
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + GELU_COEF_A * x * x * x)).tanh())
}

/// SwiGLU in place (see [`super::GluFn`]).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "silu_mul lengths");
    gate.iter_mut().zip(up).for_each(|(g, u)| *g = silu(*g) * u);
}

/// GeGLU in place (see [`super::GluFn`]).
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "gelu_tanh_mul lengths");
    gate.iter_mut()
        .zip(up)
        .for_each(|(g, u)| *g = gelu_tanh(*g) * u);
}

/// Elementwise add (see [`super::AddFn`]).
pub fn add(x: &mut [f32], delta: &[f32]) {
    assert_eq!(x.len(), delta.len(), "add lengths");
    x.iter_mut().zip(delta).for_each(|(a, b)| *a += b);
}

/// Multiply by a constant (see [`super::ScaleFn`]).
pub fn scale(x: &mut [f32], factor: f32) {
    x.iter_mut().for_each(|v| *v *= factor);
}

/// Soft cap (see [`super::SoftcapFn`]).
pub fn softcap(x: &mut [f32], cap: f32) {
    x.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
}
