//! Gated feed-forward blocks (Shazeer 2020, <https://arxiv.org/abs/2002.05202>):
//! `down(act(gate(x)) * up(x))`, SwiGLU (`act = SiLU`, Llama/Qwen/Mistral) or GeGLU with
//! the tanh approximation of GELU (Gemma's `gelu_pytorch_tanh`).

use crate::error::Result;
use crate::layers::Ctx;
use crate::layers::linear::Linear;

/// The gate activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)`.
    Silu,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
}

impl Activation {
    /// Applies the activation to one value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::GeluTanh => {
                const SQRT_2_OVER_PI: f32 = 0.797_884_6;
                0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())
            }
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
    /// `x` is `[n_tokens, d_model]`; returns `[n_tokens, d_model]`.
    pub fn forward(&self, ctx: &Ctx<'_>, x: &[f32], n_tokens: usize) -> Result<Vec<f32>> {
        let mut gate = self.gate.forward(ctx, x, n_tokens)?; // [n_tokens, ffn_dim]
        let up = self.up.forward(ctx, x, n_tokens)?; // [n_tokens, ffn_dim]
        gate.iter_mut()
            .zip(&up)
            .for_each(|(g, u)| *g = self.act.apply(*g) * u);
        self.down.forward(ctx, &gate, n_tokens)
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
