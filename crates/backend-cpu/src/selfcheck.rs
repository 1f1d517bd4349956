//! A start-up check of the VNNI kernel tables. Their packed kernels are bit-identical to
//! AVX2's by construction (`x86_64/vnni.rs`), so before [`Kernels::detect`] picks one it runs
//! one small product of every packed format through both tables and compares the bits. A table
//! that disagrees (a miscompiled path, a CPU erratum, an ISA no test machine of ours had) is
//! passed over for the next one down, with a warning, rather than trusted with a model. (It
//! guards results only: a table whose instructions the CPU lacked would fault, which is what
//! the proof tokens' detection rules out.)

use std::sync::OnceLock;

use skiff_tensor::quant::quantize;

use crate::cpu::{Cpu, Weight};
use crate::kernels::{Isa, Kernels};
use crate::packed::PACKED_DTYPES;

/// Whether `k`'s packed products of every packed format equal `reference`'s bit for bit, on a
/// 16 × 512 weight and 7 tokens (four activation rows, then two, then one: every path of the
/// kernels' driver).
pub(crate) fn packed_agree(k: Kernels, reference: Kernels) -> bool {
    const N_OUT: usize = 16;
    const N_IN: usize = 512;
    const N_TOKENS: usize = 7;
    let values: Vec<f32> = (0..N_OUT * N_IN)
        .map(|i| (i as f32 * 0.618).sin())
        .collect();
    let x: Vec<f32> = (0..N_TOKENS * N_IN)
        .map(|i| (i as f32 * 0.377).cos() * 2.0)
        .collect();
    PACKED_DTYPES.iter().all(|&dtype| {
        let mut data = vec![0u8; N_OUT * N_IN / dtype.block_len() * dtype.block_bytes()];
        if quantize(dtype, &values, &mut data).is_err() {
            return false;
        }
        let weight = Weight {
            dtype,
            data: &data,
            n_out: N_OUT,
            n_in: N_IN,
        };
        let run = |k: Kernels| -> Option<Vec<u32>> {
            let cpu = Cpu::with_kernels(1, k);
            let packed = cpu.pack(&weight).ok()??;
            let mut y = vec![0.0f32; N_TOKENS * N_OUT];
            cpu.matmul_packed(&packed, &x, N_TOKENS, &mut y).ok()?;
            Some(y.iter().map(|v| v.to_bits()).collect())
        };
        matches!((run(k), run(reference)), (Some(a), Some(b)) if a == b)
    })
}

/// Whether [`trusted`] checks `isa` before it is used: the VNNI tables, which must equal AVX2.
pub(crate) fn needs_check(isa: Isa) -> bool {
    matches!(isa, Isa::AvxVnni | Isa::Avx512)
}

/// Whether the table of `isa` may be used: always, except a VNNI table whose packed products
/// differ from AVX2's on this CPU (or could not be computed). Checked once per process and ISA.
pub(crate) fn trusted(isa: Isa) -> bool {
    static CHECKED: [OnceLock<bool>; Isa::ALL.len()] = [const { OnceLock::new() }; Isa::ALL.len()];
    if !needs_check(isa) {
        return true;
    }
    *CHECKED[isa as usize].get_or_init(|| {
        let ok = match (Kernels::for_isa(isa), Kernels::for_isa(Isa::Avx2)) {
            (Some(k), Some(avx2)) => packed_agree(k, avx2),
            _ => false,
        };
        if !ok {
            tracing::warn!(
                "the {isa} kernels failed their start-up check against AVX2's on this CPU: \
                 not using them"
            );
        }
        ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packed Q4_1 kernel that is wrong: every output 1.
    fn ones(_: &[u8], _: usize, _: &[u8], _: usize, out: &mut [f32]) {
        out.fill(1.0);
    }

    #[test]
    fn agreement_is_bitwise_and_catches_a_wrong_kernel() {
        let Some(avx2) = Kernels::for_isa(Isa::Avx2) else {
            eprintln!("skipped: this CPU lacks AVX2");
            return;
        };
        assert!(packed_agree(avx2, avx2));
        let broken = Kernels {
            packed8_q4_1_q8_1: ones,
            ..avx2
        };
        assert!(!packed_agree(broken, avx2));
        for k in Kernels::all_supported() {
            assert!(trusted(k.isa), "{} disagrees with AVX2 on this CPU", k.isa);
        }
    }
}
