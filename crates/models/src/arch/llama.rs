//! The Llama family: Llama 2, Llama 3/3.1/3.2, SmolLM/SmolLM2, TinyLlama, and Mistral
//! (Touvron et al. 2023, <https://arxiv.org/abs/2307.09288>; Jiang et al. 2023,
//! <https://arxiv.org/abs/2310.06825>).
//!
//! Pre-norm decoder: `x += o(attn(rope(q), rope(k), v))` over `attn_norm(x)`, then
//! `x += down(silu(gate) * up)` over `ffn_norm(x)`. Mistral is the same network with a
//! sliding window on every layer (`hparams.sliding_window`).
//!
//! Traps:
//! - RoPE pairing: llama.cpp's converter permutes the rows of `attn_q`/`attn_k`, so GGUF
//!   files need interleaved pairs while safetensors need NeoX halves; `spec.hparams.rope`
//!   carries the right one for the source.
//! - Llama 3.1 scaling arrives as the `rope_freqs.weight` tensor in GGUF and as
//!   `RopeScaling::Llama3` from Hugging Face; never both.
//! - Mistral GGUF files carry no sliding window (llama.cpp ignores it), so they attend to
//!   the full context, like llama.cpp.

use crate::arch::Architecture;
use crate::error::Result;
use crate::layers::decoder::{Decoder, DecoderConfig};
use crate::weights::{Loader, Role, TensorTable};

/// GGUF names of the Llama family's tensors.
pub const TENSORS: TensorTable = &[
    (Role::TokenEmbd, "token_embd.weight"),
    (Role::Output, "output.weight"),
    (Role::OutputNorm, "output_norm.weight"),
    (Role::RopeFreqs, "rope_freqs.weight"),
    (Role::AttnNorm, "blk.{i}.attn_norm.weight"),
    (Role::AttnQ, "blk.{i}.attn_q.weight"),
    (Role::AttnK, "blk.{i}.attn_k.weight"),
    (Role::AttnV, "blk.{i}.attn_v.weight"),
    (Role::AttnOut, "blk.{i}.attn_output.weight"),
    (Role::FfnNorm, "blk.{i}.ffn_norm.weight"),
    (Role::FfnGate, "blk.{i}.ffn_gate.weight"),
    (Role::FfnUp, "blk.{i}.ffn_up.weight"),
    (Role::FfnDown, "blk.{i}.ffn_down.weight"),
];

/// Builds the model from `loader`'s file, checking every tensor's shape and dtype.
pub(crate) fn build(loader: &Loader<'_>) -> Result<Box<dyn Architecture>> {
    let freq_factors = loader.vector(Role::RopeFreqs, None)?;
    let config = DecoderConfig::default();
    Ok(Box::new(Decoder::load(
        loader,
        config,
        freq_factors.as_deref(),
    )?))
}
