//! Building blocks shared by every architecture: each is a plain function or a small struct
//! over flat `[n_tokens, width]` f32 activations. Architecture files in `arch/` assemble
//! them in paper order.

pub mod attention;
pub mod decoder;
pub mod embedding;
pub mod linear;
pub mod lm_head;
pub mod mlp;
pub mod norm;
pub mod rope;

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

/// Adds `delta` to `x` element-wise (a residual connection).
pub fn add_inplace(x: &mut [f32], delta: &[f32]) {
    debug_assert_eq!(x.len(), delta.len());
    x.iter_mut().zip(delta).for_each(|(a, b)| *a += b);
}
