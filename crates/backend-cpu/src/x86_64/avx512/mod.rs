//! AVX-512 VNNI kernels: `vpdpbusd` integer dot products on 256-bit vectors (AVX-512 VL).
//!
//! `vpdpbusd` multiplies unsigned by signed bytes and adds each 4 products straight into an
//! i32 lane: the work of AVX2's `vpmaddubsw` + `vpmaddwd` + `vpaddd` in one instruction, with
//! no i16 intermediate to saturate. The packed kernels' lane `i` is weight row `i` and holds 4
//! consecutive values, so each `vpdpbusd` lane is one row's 4-term sum. 256-bit vectors keep
//! the 8-row packed layout; on the cores with VNNI (Ice Lake and later, Zen 4) the 256-bit form
//! issues on two ports where the 512-bit one has one port or is split in two, so the narrower
//! vectors give up little multiply throughput.
//!
//! Same pattern as `avx2`: private safe wrappers reachable only through [`kernels`], which
//! requires the [`Avx512Vnni`] proof token. Entries without an AVX-512 variant use the AVX2
//! ones.

mod packed;

use super::Avx512Vnni;
use crate::kernels::{Isa, Kernels};

/// The AVX-512 kernel table: AVX2's, with the VNNI packed kernels.
pub(crate) fn kernels(proof: Avx512Vnni) -> Kernels {
    packed::with_packed(Kernels {
        isa: Isa::Avx512,
        ..super::avx2::kernels(proof.avx2())
    })
}
