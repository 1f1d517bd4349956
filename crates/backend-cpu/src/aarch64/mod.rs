//! aarch64 SIMD kernels and the proof tokens that gate them.
//!
//! Every aarch64 CPU has Advanced SIMD (NEON); [`Neon::detect`] still asks, as the x86_64
//! tokens do, so holding a table proves the CPU runs it. [`NeonDot`] adds the `sdot`
//! instruction (FEAT_DotProd: Cortex-A55/A75 and later, Neoverse N1/V1/N2 — Graviton 2 to 4,
//! Ampere Altra — and Apple's cores), which multiplies 4 signed byte pairs and adds them to an
//! i32 lane in one instruction. Cortex-A72/A53 (Graviton 1, Raspberry Pi 4) lack it and run
//! [`Neon`]'s kernels, which do the same sums with widening multiplies.

pub(crate) mod neon;

/// Proof that this CPU supports Advanced SIMD (NEON).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon {
    _proof: (),
}

impl Neon {
    /// The token, when the running CPU has NEON (every aarch64 CPU Linux runs on).
    pub(crate) fn detect() -> Option<Neon> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(Neon { _proof: () })
    }
}

/// Proof that this CPU supports the dot-product instructions as well as NEON.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NeonDot {
    neon: Neon,
}

impl NeonDot {
    /// The token, when the running CPU has NEON and FEAT_DotProd.
    pub(crate) fn detect() -> Option<NeonDot> {
        let neon = Neon::detect()?;
        std::arch::is_aarch64_feature_detected!("dotprod").then_some(NeonDot { neon })
    }

    /// The NEON proof this token implies.
    pub(crate) fn neon(self) -> Neon {
        self.neon
    }
}
