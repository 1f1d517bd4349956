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
    /// Writes the logits of rows `rows` of the hidden states `x` (`[n_tokens, d_model]`) into
    /// `logits`, resized to `[rows.len(), n_vocab]`. `h` is a scratch buffer for the gathered,
    /// normed rows.
    pub fn forward(
        &self,
        ctx: &Ctx<'_>,
        x: &[f32],
        rows: &[usize],
        h: &mut Vec<f32>,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let d_model = self.norm.dim();
        h.clear(); // [n_rows, d_model]
        for &r in rows {
            h.extend_from_slice(&x[r * d_model..(r + 1) * d_model]);
        }
        self.norm.apply(ctx.cpu, h);
        // [n_rows, n_vocab], every value written by the product
        let logits = super::sized(logits, rows.len() * self.output.n_out());
        self.output.forward_into(ctx, h, rows.len(), logits)?;
        if let Some(cap) = self.softcap {
            ctx.cpu.softcap(logits, cap);
        }
        Ok(())
    }
}
