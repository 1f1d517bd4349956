//! AVX-VNNI kernels: the VEX-encoded `vpdpbusd` on 256-bit vectors, for the CPUs that have it
//! without AVX-512 (Intel's client cores from Alder Lake on, and its E-core Xeons). The packed
//! kernels are the AVX-512 table's (`x86_64/vnni.rs`), so results are bit-identical to AVX2's.
//!
//! Same pattern as `avx2`: private safe wrappers reachable only through [`kernels`], which
//! requires the [`AvxVnni`] proof token. Entries without a VNNI variant use the AVX2 ones.

mod packed;

use super::AvxVnni;
use crate::kernels::{Isa, Kernels};

/// The AVX-VNNI kernel table: AVX2's, with the VNNI packed kernels.
pub(crate) fn kernels(proof: AvxVnni) -> Kernels {
    packed::with_packed(Kernels {
        isa: Isa::AvxVnni,
        ..super::avx2::kernels(proof.avx2())
    })
}
