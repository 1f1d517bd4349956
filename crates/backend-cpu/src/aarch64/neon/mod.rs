//! NEON kernel tables: the scalar table with NEON kernels for every packed format (Q4_0, Q4_1,
//! Q5_0, Q8_0, Q4_K, Q6_K: the formats a model's projections are repacked into), which carry a
//! model's matrix products, prompt and decode alike; `attn.rs` has the attention kernels. The
//! other entries are the scalar references, which the compiler vectorizes with NEON where it
//! can (NEON is part of the aarch64 baseline).
//!
//! Same pattern as `x86_64`: private kernels reachable only through [`kernels`] and
//! [`kernels_dot`], which require the proof tokens.

pub(crate) mod attn;
mod packed;

use std::arch::aarch64::{float32x4_t, vld1q_u16};
use std::arch::asm;

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

/// The 8 f16 at `p` as f32 (values 0-3, values 4-7). `fcvtl`/`fcvtl2` are base AdvSIMD; the
/// f16 vector types the conversion intrinsics take are not stable in Rust, hence the
/// assembly. Exact for every f16, subnormals and infinities included.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn f16x8(p: *const u8) -> [float32x4_t; 2] {
    // SAFETY: 16 bytes are readable (caller).
    let h = unsafe { vld1q_u16(p.cast()) };
    let (lo, hi): (float32x4_t, float32x4_t);
    // SAFETY: two register-only conversions of base AdvSIMD. `lo` and `hi` are `out`
    // operands, so neither shares `h`'s register, which the second instruction still reads.
    unsafe {
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack),
        );
    }
    [lo, hi]
}
