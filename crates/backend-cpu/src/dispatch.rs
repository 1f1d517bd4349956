//! Runtime selection of the kernel table. The CPU is probed once per call with
//! `is_x86_feature_detected!`; `#[cfg(target_arch)]` only decides which modules compile, and
//! `cfg(target_feature)` is never used, so one binary runs on every CPU of its architecture
//! and uses the best kernels present.
//!
//! x86_64 offers AVX2, AVX-VNNI and AVX-512 VNNI tables; aarch64 NEON, and NEON with `sdot`
//! (`is_aarch64_feature_detected!`).

use crate::kernels::{Isa, Kernels};
use crate::scalar;

/// The environment variable that caps [`Kernels::detect`]'s choice.
pub const MAX_ISA_VAR: &str = "SKIFF_MAX_ISA";

impl Kernels {
    /// The fastest kernel table this CPU supports, capped by the `SKIFF_MAX_ISA` environment
    /// variable when it is set (`scalar`, `avx2`, `avxvnni` or `avx512` on x86_64; `scalar`,
    /// `neon` or `neondot` on aarch64: to compare ISAs on one machine, or to step around a CPU
    /// whose wider kernels misbehave; another architecture's name leaves the scalar table).
    /// An unknown value is logged as a warning and ignored. A VNNI table is used only once its
    /// packed products have matched AVX2's bit for bit on this CPU (`selfcheck`).
    pub fn detect() -> Kernels {
        let cap = std::env::var(MAX_ISA_VAR).ok();
        if let Some(isa) = cap.as_deref().and_then(foreign_isa) {
            tracing::warn!(
                "{MAX_ISA_VAR}={} names {} kernels; this is {}, so only the scalar kernels run",
                isa.name(),
                isa.family(),
                std::env::consts::ARCH
            );
        }
        let best = Self::best_up_to(cap.as_deref()).unwrap_or_else(|value| {
            let names = Isa::ALL.map(Isa::name).join(", ");
            tracing::warn!("ignoring {MAX_ISA_VAR}={value:?}: expected one of {names}");
            Self::best_up_to(None).expect("no cap")
        });
        tracing::debug!(isa = %best.isa, "cpu kernels selected");
        best
    }

    /// The fastest supported and trusted ([`crate::selfcheck::trusted`]) table whose ISA is at
    /// most `cap` (an [`Isa::name`]; among the ISAs of `cap`'s architecture, in [`Isa::ALL`]'s
    /// order), or the unknown `cap` as the error.
    fn best_up_to(cap: Option<&str>) -> Result<Kernels, String> {
        Self::best_trusted_up_to(cap, crate::selfcheck::trusted)
    }

    /// [`Self::best_up_to`] with `trusted` deciding which supported ISAs may be used (the
    /// scalar table always may). It is asked only about ISAs this CPU supports, fastest first,
    /// until one is trusted.
    fn best_trusted_up_to(
        cap: Option<&str>,
        trusted: impl Fn(Isa) -> bool,
    ) -> Result<Kernels, String> {
        let cap = match cap.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(name) => Some(Isa::from_name(name).ok_or_else(|| name.to_string())?),
        };
        let allowed = |isa: Isa| {
            cap.is_none_or(|cap| isa == Isa::Scalar || (isa.family() == cap.family() && isa <= cap))
        };
        Ok(Isa::ALL
            .into_iter()
            .rev()
            .filter(|&isa| allowed(isa))
            .filter_map(Self::for_isa)
            .find(|k| k.isa == Isa::Scalar || trusted(k.isa))
            .expect("the scalar table is always supported"))
    }

    /// Every kernel table this CPU supports, slowest (scalar) first: tests and benchmarks run
    /// each of them.
    pub fn all_supported() -> Vec<Kernels> {
        Isa::ALL.into_iter().filter_map(Self::for_isa).collect()
    }

    /// The table for `isa`, or `None` when this CPU (or this build's architecture) lacks it.
    pub fn for_isa(isa: Isa) -> Option<Kernels> {
        match isa {
            Isa::Scalar => Some(scalar::kernels()),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => crate::x86_64::Avx2Fma::detect().map(crate::x86_64::avx2::kernels),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => crate::x86_64::AvxVnni::detect().map(crate::x86_64::avxvnni::kernels),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => crate::x86_64::Avx512Vnni::detect().map(crate::x86_64::avx512::kernels),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 => None,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => crate::aarch64::Neon::detect().map(crate::aarch64::neon::kernels),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot => {
                crate::aarch64::NeonDot::detect().map(crate::aarch64::neon::kernels_dot)
            }
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Neon | Isa::NeonDot => None,
        }
    }
}

/// The ISA `cap` names when it belongs to another architecture than this build's.
fn foreign_isa(cap: &str) -> Option<Isa> {
    let isa = Isa::from_name(cap)?;
    (isa.family() != "any" && isa.family() != std::env::consts::ARCH).then_some(isa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_isa_caps_the_choice() {
        let best = Kernels::all_supported().pop().unwrap().isa;
        assert_eq!(Kernels::best_up_to(None).unwrap().isa, best);
        assert_eq!(Kernels::best_up_to(Some("")).unwrap().isa, best);
        assert_eq!(
            Kernels::best_up_to(Some("scalar")).unwrap().isa,
            Isa::Scalar
        );
        assert_eq!(
            Kernels::best_up_to(Some(" Scalar ")).unwrap().isa,
            Isa::Scalar
        );
        // A cap above what the CPU has gives the best it has; a cap of another
        // architecture's family, the scalar table.
        let (top, foreign) = if cfg!(target_arch = "aarch64") {
            ("neondot", "avx512")
        } else {
            ("avx512", "neondot")
        };
        assert_eq!(Kernels::best_up_to(Some(top)).unwrap().isa, best);
        assert_eq!(Kernels::best_up_to(Some(foreign)).unwrap().isa, Isa::Scalar);
        // (which `detect` warns about).
        assert_eq!(foreign_isa(foreign).map(Isa::name), Some(foreign));
        assert_eq!(foreign_isa(top), None);
        assert_eq!(foreign_isa(" Scalar "), None);
        assert_eq!(foreign_isa("sse9"), None);
        if Kernels::for_isa(Isa::Neon).is_some() {
            assert_eq!(Kernels::best_up_to(Some("neon")).unwrap().isa, Isa::Neon);
        }
        if Kernels::for_isa(Isa::Avx2).is_some() {
            assert_eq!(Kernels::best_up_to(Some("avx2")).unwrap().isa, Isa::Avx2);
            // A cap the CPU lacks gives the best table below it.
            let want = if Kernels::for_isa(Isa::AvxVnni).is_some() {
                Isa::AvxVnni
            } else {
                Isa::Avx2
            };
            assert_eq!(Kernels::best_up_to(Some("avxvnni")).unwrap().isa, want);
        }
        assert_eq!(Kernels::best_up_to(Some("sse9")).err().unwrap(), "sse9");
    }

    /// Every aarch64 CPU has NEON, so its table is always there to be tested; and where a
    /// runner names the table this CPU must get (`SKIFF_TEST_EXPECT_ISA`, as
    /// `tools/test-aarch64.sh` does for each emulated CPU), detection picks exactly it, so the
    /// suite is known to have run that table.
    #[test]
    fn detection_finds_the_tables_the_cpu_has() {
        if cfg!(target_arch = "aarch64") {
            assert_eq!(Kernels::for_isa(Isa::Neon).map(|k| k.isa), Some(Isa::Neon));
        }
        if let Ok(want) = std::env::var("SKIFF_TEST_EXPECT_ISA") {
            assert_eq!(Kernels::best_up_to(None).unwrap().isa.name(), want);
        }
    }

    #[test]
    fn an_untrusted_table_is_passed_over_for_the_next_one_down() {
        let supported: Vec<Isa> = Kernels::all_supported().iter().map(|k| k.isa).collect();
        let best = *supported.last().unwrap();
        let below = supported[supported.len().saturating_sub(2)];
        let pick =
            |trusted: &dyn Fn(Isa) -> bool| Kernels::best_trusted_up_to(None, trusted).unwrap().isa;
        assert_eq!(pick(&|_| true), best);
        assert_eq!(pick(&|isa| isa != best), below);
        assert_eq!(pick(&|_| false), Isa::Scalar, "scalar needs no trust");
        // Only supported ISAs are asked about (asking about one the CPU lacks would run, and
        // fail, its start-up check).
        let asked = std::cell::RefCell::new(Vec::new());
        pick(&|isa| {
            asked.borrow_mut().push(isa);
            false
        });
        assert!(
            asked.borrow().iter().all(|isa| supported.contains(isa)),
            "{asked:?}"
        );
        // Detection asks the self-check about the VNNI tables only.
        assert!(crate::selfcheck::needs_check(Isa::AvxVnni));
        assert!(crate::selfcheck::needs_check(Isa::Avx512));
        assert!(!crate::selfcheck::needs_check(Isa::Avx2));
        assert!(!crate::selfcheck::needs_check(Isa::Scalar));
    }
}
