//! Elementwise and row-wise kernels of the forward pass, outside the matrix products:
//! RMSNorm (alone and fused with the residual add), RoPE, the gated activations SwiGLU
//! (`silu(gate) · up`) and GeGLU (`gelu_tanh(gate) · up`), and add / scale / soft cap.
//!
//! Each kernel has a scalar twin in [`scalar`] (the specification) and an AVX2 + FMA variant
//! chosen at run time from the backend's instruction set ([`Cpu::isa`]); AVX-VNNI and AVX-512
//! CPUs run the AVX2 variants (rows of a few hundred values gain nothing from wider lanes). The
//! tests run every variant the host supports against the scalar twin on random odd-sized inputs.
//!
//! All of them run on the calling thread: on a decode step a row is a few hundred values, far
//! below what a pool dispatch costs, and on long prompts they stay a small fraction of the
//! matrix products.

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod scalar;
#[cfg(test)]
mod tests;

#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

use crate::cpu::Cpu;
use crate::kernels::Isa;

/// Which dimensions RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RopeStyle {
    /// Pairs `(2i, 2i + 1)` (GPT-J / Llama GGUF layout).
    Interleaved,
    /// Pairs `(i, i + rot_dim / 2)` (GPT-NeoX: Qwen, Gemma, Hugging Face Llama).
    Neox,
}

/// RMSNorm of one row in place: `x ← x / sqrt(mean(x²) + eps) · w` (`x.len() == w.len()`).
pub type RmsNormFn = fn(x: &mut [f32], w: &[f32], eps: f32);
/// Residual add then RMSNorm of one row: `x ← x + delta`, `out ← rms_norm(x) · w`.
pub type AddRmsNormFn = fn(x: &mut [f32], delta: &[f32], w: &[f32], eps: f32, out: &mut [f32]);
/// Rotates one head (`x.len() == head_dim`) by the angles whose cosines and sines are given
/// (`cos.len() == sin.len() == rot_dim / 2`, `rot_dim <= head_dim`); dims past `rot_dim` stay.
pub type RopeFn = fn(x: &mut [f32], cos: &[f32], sin: &[f32], style: RopeStyle);
/// Gated activation in place: `gate[i] ← act(gate[i]) · up[i]`.
pub type GluFn = fn(gate: &mut [f32], up: &[f32]);
/// `x[i] ← x[i] + delta[i]`.
pub type AddFn = fn(x: &mut [f32], delta: &[f32]);
/// `x[i] ← x[i] · factor`.
pub type ScaleFn = fn(x: &mut [f32], factor: f32);
/// `x[i] ← cap · tanh(x[i] / cap)`.
pub type SoftcapFn = fn(x: &mut [f32], cap: f32);

/// One instruction set's elementwise kernels.
#[derive(Clone, Copy)]
pub struct OpsKernels {
    /// Which instruction set these kernels use.
    pub isa: Isa,
    /// RMSNorm of one row in place.
    pub rms_norm: RmsNormFn,
    /// Residual add fused with RMSNorm.
    pub add_rms_norm: AddRmsNormFn,
    /// RoPE of one head.
    pub rope: RopeFn,
    /// SwiGLU: `silu(gate) · up`.
    pub silu_mul: GluFn,
    /// GeGLU: `gelu_tanh(gate) · up`.
    pub gelu_tanh_mul: GluFn,
    /// Elementwise add.
    pub add: AddFn,
    /// Multiply by a constant.
    pub scale: ScaleFn,
    /// Soft cap `cap · tanh(x / cap)`.
    pub softcap: SoftcapFn,
}

impl std::fmt::Debug for OpsKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsKernels")
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

impl OpsKernels {
    /// The table of `isa`, or `None` when this CPU (or this build's architecture) lacks it.
    pub fn for_isa(isa: Isa) -> Option<&'static OpsKernels> {
        static SCALAR: OpsKernels = scalar::KERNELS;
        match isa {
            Isa::Scalar => Some(&SCALAR),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 => {
                // Only hand out the table when the ISA itself is present, as `Kernels` does.
                crate::kernels::Kernels::for_isa(isa)?;
                static AVX2: OnceLock<Option<OpsKernels>> = OnceLock::new();
                AVX2.get_or_init(|| crate::x86_64::Avx2Fma::detect().map(avx2::kernels))
                    .as_ref()
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 => None,
            // The scalar elementwise ops, which the compiler vectorizes with NEON.
            Isa::Neon | Isa::NeonDot => {
                crate::kernels::Kernels::for_isa(isa)?;
                Some(&SCALAR)
            }
        }
    }

    /// Every table this CPU supports, scalar first (tests and benchmarks run each).
    pub fn all_supported() -> Vec<&'static OpsKernels> {
        crate::kernels::Kernels::all_supported()
            .into_iter()
            // Each table once: under its own ISA (the VNNI ISAs share AVX2's table, NEON the
            // scalar one).
            .filter_map(|k| Self::for_isa(k.isa).filter(|t| t.isa == k.isa))
            .collect()
    }
}

/// Panics with a message naming both lengths when they differ (a caller bug).
fn check_len(what: &str, len: usize, expected: usize) {
    assert_eq!(len, expected, "{what}: {len} values, expected {expected}");
}

impl Cpu {
    /// The elementwise kernels of this backend's instruction set.
    pub fn ops(&self) -> &'static OpsKernels {
        OpsKernels::for_isa(self.isa())
            .expect("the backend's ISA was detected on this CPU, so its ops table exists")
    }

    /// RMSNorm (Zhang & Sennrich 2019) of every row of `x` in place; rows have
    /// `weight.len()` values. Panics (a caller bug) when `x` is not whole rows.
    pub fn rms_norm(&self, x: &mut [f32], weight: &[f32], eps: f32) {
        let dim = weight.len();
        if dim == 0 {
            check_len("rms_norm input", x.len(), 0);
            return;
        }
        check_len("rms_norm input", x.len() % dim, 0);
        let f = self.ops().rms_norm;
        x.chunks_exact_mut(dim).for_each(|row| f(row, weight, eps));
    }

    /// Residual add fused with RMSNorm, row by row: `x ← x + delta` and
    /// `out ← rms_norm(x) · weight`. Panics (a caller bug) when the lengths disagree.
    pub fn add_rms_norm(
        &self,
        x: &mut [f32],
        delta: &[f32],
        weight: &[f32],
        eps: f32,
        out: &mut [f32],
    ) {
        check_len("add_rms_norm delta", delta.len(), x.len());
        check_len("add_rms_norm output", out.len(), x.len());
        let dim = weight.len();
        if dim == 0 {
            check_len("add_rms_norm input", x.len(), 0);
            return;
        }
        check_len("add_rms_norm input", x.len() % dim, 0);
        let f = self.ops().add_rms_norm;
        for ((x, d), o) in x
            .chunks_exact_mut(dim)
            .zip(delta.chunks_exact(dim))
            .zip(out.chunks_exact_mut(dim))
        {
            f(x, d, weight, eps, o);
        }
    }

    /// RoPE of every head of one token's row `x` (`[n_heads * head_dim]`), rotating the first
    /// `2 * cos.len()` dims of each head by the angles whose cosines and sines are given.
    /// Panics (a caller bug) when `x` is not whole heads, `cos` and `sin` differ in length,
    /// or they hold more than `head_dim / 2` values.
    pub fn rope(&self, x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32], style: RopeStyle) {
        check_len("rope sin", sin.len(), cos.len());
        assert!(
            2 * cos.len() <= head_dim && head_dim > 0,
            "rope: {} angles for head_dim {head_dim}",
            cos.len()
        );
        check_len("rope input", x.len() % head_dim, 0);
        let f = self.ops().rope;
        x.chunks_exact_mut(head_dim)
            .for_each(|head| f(head, cos, sin, style));
    }

    /// SwiGLU in place: `gate[i] ← silu(gate[i]) · up[i]`. Panics when the lengths differ.
    pub fn silu_mul(&self, gate: &mut [f32], up: &[f32]) {
        check_len("silu_mul up", up.len(), gate.len());
        (self.ops().silu_mul)(gate, up);
    }

    /// GeGLU in place with the tanh approximation of GELU:
    /// `gate[i] ← gelu_tanh(gate[i]) · up[i]`. Panics when the lengths differ.
    pub fn gelu_tanh_mul(&self, gate: &mut [f32], up: &[f32]) {
        check_len("gelu_tanh_mul up", up.len(), gate.len());
        (self.ops().gelu_tanh_mul)(gate, up);
    }

    /// `x[i] ← x[i] + delta[i]`. Panics when the lengths differ.
    pub fn add(&self, x: &mut [f32], delta: &[f32]) {
        check_len("add delta", delta.len(), x.len());
        (self.ops().add)(x, delta);
    }

    /// `x[i] ← x[i] · factor`.
    pub fn scale(&self, x: &mut [f32], factor: f32) {
        (self.ops().scale)(x, factor);
    }

    /// Soft cap `x[i] ← cap · tanh(x[i] / cap)` (Gemma 2's logit caps).
    pub fn softcap(&self, x: &mut [f32], cap: f32) {
        (self.ops().softcap)(x, cap);
    }
}
