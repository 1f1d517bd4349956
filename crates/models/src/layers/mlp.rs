//! Gated feed-forward blocks (Shazeer 2020, <https://arxiv.org/abs/2002.05202>):
//! `down(act(gate(x)) * up(x))`, SwiGLU (`act = SiLU`, Llama/Qwen/Mistral) or GeGLU with
//! the tanh approximation of GELU (Gemma's `gelu_pytorch_tanh`).

use skiff_backend_cpu::ops::scalar;

use crate::error::Result;
use crate::layers::linear::Linear;
use crate::layers::{Ctx, sized};

/// The gate activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)`.
    Silu,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
}

impl Activation {
    /// Applies the activation to one value (the scalar reference kernels).
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Silu => scalar::silu(x),
            Activation::GeluTanh => scalar::gelu_tanh(x),
        }
    }
}

/// A gated MLP: `ffn_gate`, `ffn_up` (`d_model -> ffn_dim`) and `ffn_down` back.
#[derive(Clone, Debug)]
pub struct GatedMlp {
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
    pub(crate) act: Activation,
}

impl GatedMlp {
    /// Width of the hidden layer.
    pub fn ffn_dim(&self) -> usize {
        self.gate.n_out()
    }

    /// `x` is `[n_tokens, d_model]`; returns `[n_tokens, d_model]`.
    pub fn forward(&self, ctx: &Ctx<'_>, x: &[f32], n_tokens: usize) -> Result<Vec<f32>> {
        let (mut gate, mut up) = (Vec::new(), Vec::new());
        let mut out = vec![0.0f32; n_tokens * self.down.n_out()];
        self.forward_into(ctx, x, n_tokens, [&mut gate, &mut up], &mut out)?;
        Ok(out)
    }

    /// `x` is `[n_tokens, d_model]`; writes `out`, `[n_tokens, d_model]`, using `hidden` as
    /// the gate and up buffers (resized to `[n_tokens, ffn_dim]`).
    pub(crate) fn forward_into(
        &self,
        ctx: &Ctx<'_>,
        x: &[f32],
        n_tokens: usize,
        hidden: [&mut Vec<f32>; 2],
        out: &mut [f32],
    ) -> Result<()> {
        let [gate, up] = hidden;
        let len = n_tokens * self.ffn_dim();
        let gate = sized(gate, len); // [n_tokens, ffn_dim]
        let up = sized(up, len); // [n_tokens, ffn_dim]
        Linear::forward_many(ctx, [&self.gate, &self.up], x, n_tokens, [gate, up])?;
        match self.act {
            Activation::Silu => ctx.cpu.silu_mul(gate, up),
            Activation::GeluTanh => ctx.cpu.gelu_tanh_mul(gate, up),
        }
        self.down.forward_into(ctx, gate, n_tokens, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spot values of both activations (torch.nn.functional.silu / gelu(approximate="tanh")).
    #[test]
    fn activation_values() {
        let cases = [
            (Activation::Silu, 1.0, 0.731_058_6),
            (Activation::Silu, -2.0, -0.238_405_84),
            (Activation::GeluTanh, 1.0, 0.841_191_95),
            (Activation::GeluTanh, -0.5, -0.154_286),
            (Activation::GeluTanh, 0.0, 0.0),
        ];
        for (act, x, want) in cases {
            let got = act.apply(x);
            assert!(
                (got - want).abs() < 1e-6,
                "{act:?}({x}) = {got}, want {want}"
            );
        }
    }
}
