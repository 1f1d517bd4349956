//! AVX-512 VNNI kernels (`vpdpbusd` 512-bit integer dot products).
//!
//! Same pattern as `avx2.rs`: private safe wrappers reachable only through [`kernels`], which
//! requires the [`Avx512Vnni`] proof token. Entries without an AVX-512 variant use the AVX2 ones.

use super::Avx512Vnni;
use crate::kernels::{Isa, Kernels};

/// The AVX-512 kernel table.
pub(crate) fn kernels(proof: Avx512Vnni) -> Kernels {
    Kernels {
        isa: Isa::Avx512,
        ..super::avx2::kernels(proof.avx2())
    }
}
