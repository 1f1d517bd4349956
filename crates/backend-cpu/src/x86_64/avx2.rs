//! AVX2 + FMA + F16C kernels (256-bit integer dot products via `vpmaddubsw`/`vpmaddwd`).
//!
//! Each kernel is an `unsafe` `#[target_feature]` function plus a private safe wrapper that
//! checks the slice lengths; the wrappers are reachable only through [`kernels`], which
//! requires the [`Avx2Fma`] proof token. Entries without an AVX2 variant yet use the scalar
//! reference.

use super::Avx2Fma;
use crate::kernels::{Isa, Kernels};
use crate::scalar;

/// The AVX2 kernel table.
pub(crate) fn kernels(_proof: Avx2Fma) -> Kernels {
    Kernels { isa: Isa::Avx2, ..scalar::kernels() }
}
