//! Building blocks shared by every architecture: each is a plain function or a small struct
//! over flat `[n_tokens, width]` f32 activations. Architecture files in `arch/` assemble
//! them in paper order.
//!
//! The elementwise math (norms, RoPE, gated activations, residual adds) runs on the
//! backend's SIMD kernels (`Cpu::rms_norm`, `Cpu::rope`, ...), on the calling thread. The
//! activations of a forward pass live in a [`Scratch`] that is reused from call to call, and
//! the logits in the caller's buffer (`Model::forward_into`), so a decode step allocates
//! nothing once the buffers have grown to its batch (`tests/no_alloc.rs` counts).

pub mod attention;
pub mod decoder;
pub mod embedding;
pub mod linear;
pub mod lm_head;
pub mod mlp;
pub mod norm;
pub mod rope;

use std::cell::Cell;

use skiff_backend_cpu::Cpu;
use skiff_formats::ModelFile;

/// What a forward pass computes with: the CPU backend and the open model file whose
/// tensor bytes the layers' weights refer to.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The matmul backend and thread pool.
    pub cpu: &'a Cpu,
    /// The model file the weights live in.
    pub file: &'a ModelFile,
}

/// Reusable activation buffers of one forward pass. Each buffer grows to the largest batch
/// seen and is then reused; [`Scratch::with`] hands out the calling thread's set.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The residual stream, `[n_tokens, d_model]`.
    pub x: Vec<f32>,
    /// The normed input of a sub-block, `[n_tokens, d_model]`.
    pub h: Vec<f32>,
    /// Projected queries, keys, values.
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// A sub-block's output, `[n_tokens, d_model]`.
    pub o: Vec<f32>,
    /// The MLP's gate and up projections, `[n_tokens, ffn_dim]`.
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    /// RoPE cosines and sines of the batch's positions, one table per RoPE configuration.
    pub rope: [rope::RopeTable; 2],
    /// The attention's plan, partial results and output.
    pub attn: attention::AttnScratch,
}

/// Buffers larger than this (in total) are dropped after the call rather than kept for the
/// next one: a long prompt's activations should not stay resident for the decode steps.
const KEEP_BYTES: usize = 16 << 20;

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

impl Scratch {
    /// Runs `f` with this thread's scratch buffers (a re-entrant call gets fresh ones).
    pub(crate) fn with<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
        let mut scratch = SCRATCH.take();
        let result = f(&mut scratch);
        if scratch.bytes() <= KEEP_BYTES {
            SCRATCH.set(scratch);
        }
        result
    }

    fn bytes(&self) -> usize {
        let vecs = [
            &self.x, &self.h, &self.q, &self.k, &self.v, &self.o, &self.gate, &self.up,
        ];
        let floats: usize = vecs.iter().map(|v| v.capacity()).sum::<usize>()
            + self
                .rope
                .iter()
                .map(rope::RopeTable::capacity)
                .sum::<usize>();
        floats * std::mem::size_of::<f32>() + self.attn.bytes()
    }
}

/// `v` resized to exactly `len` values (contents unspecified: callers overwrite them).
pub(crate) fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    v.resize(len, 0.0);
    &mut v[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread's buffers come back to the next call (no reallocation), a re-entrant call
    /// gets its own, and buffers past `KEEP_BYTES` are released after the call.
    #[test]
    fn scratch_is_reused_and_bounded() {
        let ptr = Scratch::with(|s| sized(&mut s.x, 1000).as_ptr() as usize);
        let (again, inner_len) = Scratch::with(|s| {
            let inner_len = Scratch::with(|inner| inner.x.capacity());
            (s.x.as_ptr() as usize, inner_len)
        });
        assert_eq!(ptr, again, "the decode buffers are reused");
        assert_eq!(
            inner_len, 0,
            "a nested call does not alias the outer buffers"
        );
        Scratch::with(|s| sized(&mut s.gate, KEEP_BYTES / 4 + 1).len());
        assert_eq!(
            Scratch::with(|s| s.gate.capacity()),
            0,
            "large buffers are dropped"
        );
        assert_eq!(
            Scratch::with(|s| s.x.len()),
            0,
            "so are the small ones with them"
        );
    }
}
