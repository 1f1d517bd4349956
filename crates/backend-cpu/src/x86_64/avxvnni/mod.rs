//! AVX-VNNI kernels: the VEX-encoded `vpdpbusd` on 256-bit vectors, for the CPUs that have it
//! without AVX-512 (Intel's client cores from Alder Lake on, and its E-core Xeons). The packed
//! kernels are the AVX-512 table's (`x86_64/vnni.rs`), so results are bit-identical to AVX2's.
//!
//! Same pattern as `avx2`: private safe wrappers reachable only through [`kernels`], which
//! requires the [`AvxVnni`] proof token. Entries without a VNNI variant use the AVX2 ones.

mod packed;

use super::AvxVnni;
use crate::kernels::{Isa, Kernels};

/// The AVX-VNNI kernel table.
pub(crate) fn kernels(proof: AvxVnni) -> Kernels {
    Kernels {
        isa: Isa::AvxVnni,
        packed8_q4_0_q8_0: packed::packed8_q4_0_q8_0,
        packed8_q4_1_q8_1: packed::packed8_q4_1_q8_1,
        packed8_q5_0_q8_0: packed::packed8_q5_0_q8_0,
        packed8_q8_0_q8_0: packed::packed8_q8_0_q8_0,
        packed8_q4_k_q8_k: packed::packed8_q4_k_q8_k,
        packed8_q6_k_q8_k: packed::packed8_q6_k_q8_k,
        ..super::avx2::kernels(proof.avx2())
    }
}
