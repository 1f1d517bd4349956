//! x86_64 SIMD kernels and the proof tokens that gate them.
//!
//! A proof token is a zero-sized value that only [`Avx2Fma::detect`], [`AvxVnni::detect`]
//! and [`Avx512Vnni::detect`] can build, after checking the CPU. The ISA modules'
//! `kernels(token)` constructors are the only way to reach their `#[target_feature]` functions,
//! so holding a kernel table of an ISA proves the CPU runs it.

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod avxvnni;
mod vnni;

/// Proof that this CPU supports AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2Fma {
    _proof: (),
}

impl Avx2Fma {
    /// The token, when the running CPU has AVX2, FMA and F16C.
    pub(crate) fn detect() -> Option<Avx2Fma> {
        let ok = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        ok.then_some(Avx2Fma { _proof: () })
    }
}

/// Proof that this CPU supports AVX-VNNI (the VEX-encoded `vpdpbusd`) as well as everything
/// [`Avx2Fma`] proves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AvxVnni {
    avx2: Avx2Fma,
}

impl AvxVnni {
    /// The token, when the running CPU has AVX-VNNI (and AVX2/FMA/F16C).
    pub(crate) fn detect() -> Option<AvxVnni> {
        let avx2 = Avx2Fma::detect()?;
        is_x86_feature_detected!("avxvnni").then_some(AvxVnni { avx2 })
    }

    /// The AVX2 proof this token implies.
    pub(crate) fn avx2(self) -> Avx2Fma {
        self.avx2
    }
}

/// Proof that this CPU supports AVX-512 F/BW/VL/VNNI as well as everything [`Avx2Fma`] proves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Vnni {
    avx2: Avx2Fma,
}

impl Avx512Vnni {
    /// The token, when the running CPU has AVX-512 F, BW, VL and VNNI (and AVX2/FMA/F16C).
    pub(crate) fn detect() -> Option<Avx512Vnni> {
        let avx2 = Avx2Fma::detect()?;
        let ok = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        ok.then_some(Avx512Vnni { avx2 })
    }

    /// The AVX2 proof this token implies.
    pub(crate) fn avx2(self) -> Avx2Fma {
        self.avx2
    }
}
