//! A weight matrix (any ggml dtype, borrowed from the model file) plus an optional f32
//! bias: `y = W x + b` for every token row, through `Cpu::matmul`.
//!
//! Formats the backend can repack into its interleaved layout (`Cpu::pack`: Q4_0, Q4_1, Q5_0,
//! Q8_0, Q4_K, Q6_K) are packed once, on the first forward pass, and multiplied with
//! `Cpu::matmul_packed` from then on: the same results whatever the batch, at several times
//! the speed. A packed weight is read from the file with positional reads, never through the
//! mapping, so the model stays resident once (a tied embedding table reads the rows it looks
//! up the same way).

use std::sync::OnceLock;

use skiff_backend_cpu::{PackedWeight, Weight};
use skiff_formats::TensorInfo;

use crate::error::{Error, Result};
use crate::layers::Ctx;

/// A linear projection `n_in -> n_out`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// The weight tensor (`[n_in, n_out]` in ggml order) in the model file.
    pub(crate) info: TensorInfo,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    /// `[n_out]`, added to every output row.
    pub(crate) bias: Option<Vec<f32>>,
    /// The repacked weight, made on first use; `None` inside when the format has no packed
    /// layout.
    pub(crate) packed: OnceLock<Option<PackedWeight>>,
}

impl Linear {
    /// Output width.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// `x` is `[n_tokens, n_in]`; returns `[n_tokens, n_out]`.
    pub fn forward(&self, ctx: &Ctx<'_>, x: &[f32], n_tokens: usize) -> Result<Vec<f32>> {
        let mut y = vec![0.0f32; n_tokens * self.n_out];
        self.forward_into(ctx, x, n_tokens, &mut y)?;
        Ok(y)
    }

    /// `x` is `[n_tokens, n_in]`; writes `y`, `[n_tokens, n_out]`.
    pub fn forward_into(
        &self,
        ctx: &Ctx<'_>,
        x: &[f32],
        n_tokens: usize,
        y: &mut [f32],
    ) -> Result<()> {
        match self.packed(ctx)? {
            Some(p) => ctx.cpu.matmul_packed(p, x, n_tokens, y)?,
            None => ctx.cpu.matmul(&self.weight(ctx), x, n_tokens, y)?,
        }
        self.add_bias(ctx, y);
        Ok(())
    }

    /// Several projections of the same input `x` (`[n_tokens, n_in]`), `ys[i]` receiving
    /// `linears[i]`'s `[n_tokens, n_out]`: when all are packed with one activation format, in
    /// one backend call (`Cpu::matmul_packed_many`: the input quantized once, one pass of the
    /// thread pool), otherwise one [`Linear::forward_into`] each. The results are the same
    /// either way.
    pub(crate) fn forward_many<const N: usize>(
        ctx: &Ctx<'_>,
        linears: [&Linear; N],
        x: &[f32],
        n_tokens: usize,
        mut ys: [&mut [f32]; N],
    ) -> Result<()> {
        let mut packed = [None; N];
        for (slot, l) in packed.iter_mut().zip(linears) {
            *slot = l.packed(ctx)?;
        }
        let first = packed.first().copied().flatten();
        let fused = N <= skiff_backend_cpu::MAX_MANY
            && packed.iter().all(|p| {
                p.zip(first)
                    .is_some_and(|(w, first)| w.shares_input_with(first))
            });
        if fused {
            let ws = packed.map(|p| p.expect("every weight is packed (checked)"));
            ctx.cpu.matmul_packed_many(&ws, x, n_tokens, &mut ys)?;
            for (l, y) in linears.iter().zip(ys) {
                l.add_bias(ctx, y);
            }
        } else {
            for (l, y) in linears.iter().zip(ys) {
                l.forward_into(ctx, x, n_tokens, y)?;
            }
        }
        Ok(())
    }

    /// The weight as stored in the model file.
    fn weight<'a>(&self, ctx: &Ctx<'a>) -> Weight<'a> {
        Weight {
            dtype: self.info.dtype,
            data: ctx.file.tensor_bytes(&self.info),
            n_out: self.n_out,
            n_in: self.n_in,
        }
    }

    /// The packed copy, made on first use (`None` when the format has none).
    fn packed(&self, ctx: &Ctx<'_>) -> Result<Option<&PackedWeight>> {
        if let Some(packed) = self.packed.get() {
            return Ok(packed.as_ref());
        }
        // Read with positional reads, not through the mapping: the file's pages of a packed
        // weight never become resident, so the model is held once, not twice (the mapping's
        // pages, once touched, come back with readahead whenever a neighbour is read).
        let (info, file) = (&self.info, ctx.file);
        let packed = ctx.cpu.pack_from(
            info.dtype,
            self.n_out,
            self.n_in,
            &mut |range, buf: &mut [u8]| {
                file.read_tensor_range(info, range.start, buf)
                    .map_err(Error::from)
            },
        )?;
        Ok(self.packed.get_or_init(|| packed).as_ref())
    }

    fn add_bias(&self, ctx: &Ctx<'_>, y: &mut [f32]) {
        if let Some(bias) = &self.bias {
            for row in y.chunks_exact_mut(self.n_out) {
                ctx.cpu.add(row, bias);
            }
        }
    }
}
