//! The end of every decoder: gather the rows whose logits are wanted, final RMSNorm, the
//! LM head projection and the optional final soft cap `cap * tanh(logit / cap)` (Gemma).

use crate::error::Result;
use crate::layers::Ctx;
use crate::layers::linear::Linear;
use crate::layers::norm::RmsNorm;

/// Final norm, output projection (`[d_model] -> [n_vocab]`) and soft cap.
#[derive(Clone, Debug)]
pub struct LmHead {
    pub(crate) norm: RmsNorm,
    pub(crate) output: Linear,
    pub(crate) softcap: Option<f32>,
}

impl LmHead {
    /// Logits of rows `rows` of the hidden states `x` (`[n_tokens, d_model]`):
    /// `[rows.len(), n_vocab]`.
    pub fn forward(&self, ctx: &Ctx<'_>, x: &[f32], rows: &[usize]) -> Result<Vec<f32>> {
        let d_model = self.norm.dim();
        let mut h: Vec<f32> = Vec::with_capacity(rows.len() * d_model); // [n_rows, d_model]
        for &r in rows {
            h.extend_from_slice(&x[r * d_model..(r + 1) * d_model]);
        }
        self.norm.forward_inplace(&mut h);
        let mut logits = self.output.forward(ctx, &h, rows.len())?; // [n_rows, n_vocab]
        if let Some(cap) = self.softcap {
            logits.iter_mut().for_each(|l| *l = cap * (*l / cap).tanh());
        }
        Ok(logits)
    }
}
