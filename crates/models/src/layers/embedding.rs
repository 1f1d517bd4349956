//! Token embedding lookup: dequantize the rows of `token_embd.weight` named by the batch.
//!
//! Gemma scales the embeddings by `sqrt(d_model)` (transformers'
//! `Gemma3TextScaledWordEmbedding`, llama.cpp's `inp_scaled`); other families use 1.

use skiff_formats::TensorInfo;
use skiff_tensor::quant::dequantize;

use crate::error::{Error, Result};
use crate::layers::Ctx;

thread_local! {
    /// One row's bytes as read from the file, reused (a lookup allocates nothing once it has
    /// grown to the row size).
    static ROW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The embedding table `[n_vocab, d_model]` in any dtype, plus an output scale.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `token_embd.weight`, `[d_model, n_vocab]` in ggml order.
    pub(crate) info: TensorInfo,
    pub(crate) d_model: usize,
    pub(crate) scale: f32,
}

impl Embedding {
    /// Rows for `tokens` (checked `< n_vocab` by `Batch::validate`): `[n_tokens, d_model]`.
    pub fn forward(&self, ctx: &Ctx<'_>, tokens: &[u32]) -> Result<Vec<f32>> {
        let mut x = vec![0.0f32; tokens.len() * self.d_model];
        self.forward_into(ctx, tokens, &mut x)?;
        Ok(x)
    }

    /// Writes the rows for `tokens` into `x`, `[n_tokens, d_model]`.
    ///
    /// Rows are read with positional reads of the file, not through its mapping: a lookup
    /// costs a system call, but a mapped table would stay resident a readahead window (up to
    /// a huge folio) per distinct token, and a table that is also the LM head is already held
    /// once, repacked.
    pub fn forward_into(&self, ctx: &Ctx<'_>, tokens: &[u32], x: &mut [f32]) -> Result<()> {
        debug_assert_eq!(x.len(), tokens.len() * self.d_model, "[n_tokens, d_model]");
        let (name, dtype) = (&self.info.name, self.info.dtype);
        let row_bytes =
            dtype
                .bytes_for(self.d_model as u64)
                .ok_or_else(|| Error::UnsupportedDType {
                    name: name.clone(),
                    dtype,
                    reason: "d_model must be a whole number of blocks",
                })? as usize;
        let n_vocab = usize::try_from(self.info.n_bytes).unwrap_or(usize::MAX) / row_bytes;
        ROW.with_borrow_mut(|src| {
            src.resize(row_bytes, 0);
            for (token_idx, (row, &token)) in
                x.chunks_exact_mut(self.d_model).zip(tokens).enumerate()
            {
                if token as usize >= n_vocab {
                    return Err(Error::TokenOutOfRange {
                        token_idx,
                        token,
                        n_vocab,
                    });
                }
                ctx.file
                    .read_tensor_range(&self.info, token as usize * row_bytes, src)?;
                dequantize(dtype, src, row).map_err(|source| Error::Dequantize {
                    name: name.clone(),
                    source,
                })?;
                if self.scale != 1.0 {
                    ctx.cpu.scale(row, self.scale);
                }
            }
            Ok(())
        })
    }
}
