//! Runtime selection of the kernel table. The CPU is probed once per call with
//! `is_x86_feature_detected!`; `#[cfg(target_arch)]` only decides which modules compile, and
//! `cfg(target_feature)` is never used, so one binary runs on every CPU of its architecture
//! and uses the best kernels present.
//!
//! An aarch64 NEON table slots in here beside the x86_64 ones (`aarch64/neon.rs`, behind its
//! own proof token); until it exists, aarch64 runs the scalar table.

use crate::kernels::{Isa, Kernels};
use crate::scalar;

impl Kernels {
    /// The fastest kernel table this CPU supports.
    pub fn detect() -> Kernels {
        let best = Self::all_supported()
            .pop()
            .expect("the scalar table is always supported");
        tracing::debug!(isa = %best.isa, "cpu kernels selected");
        best
    }

    /// Every kernel table this CPU supports, slowest (scalar) first: tests and benchmarks run
    /// each of them.
    pub fn all_supported() -> Vec<Kernels> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter_map(Self::for_isa)
            .collect()
    }

    /// The table for `isa`, or `None` when this CPU (or this build's architecture) lacks it.
    pub fn for_isa(isa: Isa) -> Option<Kernels> {
        match isa {
            Isa::Scalar => Some(scalar::kernels()),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => crate::x86_64::Avx2Fma::detect().map(crate::x86_64::avx2::kernels),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => crate::x86_64::Avx512Vnni::detect().map(crate::x86_64::avx512::kernels),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => None,
        }
    }
}
