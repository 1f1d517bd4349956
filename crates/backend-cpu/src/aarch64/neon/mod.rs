//! NEON kernel tables: the scalar table with NEON packed kernels for Q4_0, Q4_1, Q8_0, Q4_K and
//! Q6_K (the formats of the models we ship and of `skiff quantize`'s outputs), which carry a
//! model's matrix products, prompt and decode alike. The other entries are the scalar
//! references, which the compiler vectorizes with NEON where it can (NEON is part of the
//! aarch64 baseline).
//!
//! Same pattern as `x86_64`: private kernels reachable only through [`kernels`] and
//! [`kernels_dot`], which require the proof tokens.

mod packed;

use super::{Neon, NeonDot};
use crate::kernels::{Isa, Kernels};

/// The NEON table (no dot-product instructions).
pub(crate) fn kernels(_proof: Neon) -> Kernels {
    packed::widening::with_packed(Kernels {
        isa: Isa::Neon,
        ..crate::scalar::kernels()
    })
}

/// The NEON table with `sdot`.
pub(crate) fn kernels_dot(proof: NeonDot) -> Kernels {
    packed::sdot::with_packed(Kernels {
        isa: Isa::NeonDot,
        ..kernels(proof.neon())
    })
}
