//! Attention math over cached key/value rows: dot products of f32 queries with f32, f16 or
//! ggml `block_q8_0` key rows, weighted sums of value rows into f32 accumulators, and the
//! exponentials of a softmax.
//!
//! The KV cache (in `skiff-models`) stores each (position, KV head) as one *row* of
//! `head_dim` values in a [`KvRowType`]. The kernels work on a run of `n_rows` consecutive
//! rows (one cache block of one KV head) against the `n_q` query heads that share that KV head
//! (GQA), so every row is read from memory once per group:
//!
//! - [`KeyDotFn`]: `scores[i * n_rows + r] = q_i · K_r`
//! - [`ValueAxpyFn`]: `acc_i += Σ_r w[i * n_rows + r] · V_r`
//! - [`ExpSumFn`]: `x ← exp(x − max)`, returning `Σ x` (the softmax numerators)
//!
//! [`AttnKernels`] is the table for one instruction set; [`Cpu::attn_kernels`] hands out the
//! one matching the backend's ISA, and [`AttnKernels::all_supported`] every table the host
//! runs (tests compare each with the scalar twins in [`scalar`]).

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod scalar;
#[cfg(test)]
mod tests;

use crate::cpu::Cpu;
use crate::kernels::{Isa, Kernels};

/// Values per `block_q8_0` block.
pub const Q8_0_BLOCK_LEN: usize = 32;
/// Bytes per `block_q8_0` block: an f16 scale and 32 × i8.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// Storage type of one cached key or value row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvRowType {
    /// Little-endian f32.
    F32,
    /// Little-endian IEEE f16.
    F16,
    /// ggml `block_q8_0` blocks; a row whose length is not a multiple of 32 is padded with
    /// zeros to whole blocks (the padding never reaches a result).
    Q8_0,
}

impl KvRowType {
    /// Bytes of one row of `n` values.
    pub fn row_bytes(self, n: usize) -> usize {
        match self {
            KvRowType::F32 => 4 * n,
            KvRowType::F16 => 2 * n,
            KvRowType::Q8_0 => n.div_ceil(Q8_0_BLOCK_LEN) * Q8_0_BLOCK_BYTES,
        }
    }
}

/// Dot products of `n_q` queries with `n_rows` key rows:
/// `scores[i * n_rows + r] = Σ_d q[i * head_dim + d] · K_r[d]`.
///
/// `q` is `[n_q, head_dim]` (so `n_q = q.len() / head_dim`), `scores` is `[n_q, n_rows]`, and
/// `keys` holds `n_rows` rows of `row_type.row_bytes(head_dim)` bytes back to back.
/// Panics (a caller bug) when the lengths disagree.
pub type KeyDotFn = fn(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]);

/// Weighted sums of `n_rows` value rows into `n_q` accumulators:
/// `acc[i * head_dim + d] += Σ_r w[i * n_rows + r] · V_r[d]`.
///
/// `acc` is `[n_q, head_dim]`, `w` is `[n_q, n_rows]`, and `values` holds `n_rows` rows of
/// `row_type.row_bytes(head_dim)` bytes back to back. Panics (a caller bug) when the lengths
/// disagree.
pub type ValueAxpyFn = fn(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]);

/// Softmax numerators: `x[j] ← exp(x[j] − max)` for every `j`; returns their sum. Inputs
/// below `max − 87` give (nearly) 0; `max` is expected to be `≥` every `x[j]`.
pub type ExpSumFn = fn(x: &mut [f32], max: f32) -> f32;

/// One instruction set's attention kernels for one row type.
#[derive(Clone, Copy)]
pub struct AttnKernels {
    /// Which instruction set these kernels use.
    pub isa: Isa,
    /// The storage type of the rows `key_dot` and `value_axpy` read.
    pub row_type: KvRowType,
    /// Query · key-row dot products.
    pub key_dot: KeyDotFn,
    /// Weighted value-row sums.
    pub value_axpy: ValueAxpyFn,
    /// Softmax exponentials.
    pub exp_sum: ExpSumFn,
}

impl std::fmt::Debug for AttnKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttnKernels")
            .field("isa", &self.isa)
            .field("row_type", &self.row_type)
            .finish_non_exhaustive()
    }
}

impl AttnKernels {
    /// The table of `isa` for rows of `row_type`, or `None` when this CPU lacks `isa`.
    /// AVX-VNNI and AVX-512 CPUs run the AVX2 attention kernels (the rows are short; 256-bit
    /// lanes suffice); both NEON tables run the NEON ones.
    pub fn for_isa(isa: Isa, row_type: KvRowType) -> Option<AttnKernels> {
        match isa {
            Isa::Scalar => Some(scalar::kernels(row_type)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 => {
                // Only hand out the table when the ISA itself is present (as `Kernels` does).
                Kernels::for_isa(isa)?;
                crate::x86_64::Avx2Fma::detect().map(|proof| avx2::kernels(proof, isa, row_type))
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 => None,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDot => {
                Kernels::for_isa(isa)?;
                crate::aarch64::Neon::detect()
                    .map(|proof| crate::aarch64::neon::attn::kernels(proof, isa, row_type))
            }
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Neon | Isa::NeonDot => None,
        }
    }

    /// Every table this CPU supports for `row_type`, scalar first.
    pub fn all_supported(row_type: KvRowType) -> Vec<AttnKernels> {
        Kernels::all_supported()
            .into_iter()
            .filter_map(|k| Self::for_isa(k.isa, row_type))
            .collect()
    }
}

impl Cpu {
    /// The attention kernels of this backend's instruction set for rows of `row_type`.
    pub fn attn_kernels(&self, row_type: KvRowType) -> AttnKernels {
        AttnKernels::for_isa(self.isa(), row_type)
            .expect("the backend's ISA was detected on this CPU, so its attention table exists")
    }
}

/// Asks the CPU to start loading `rows` into its L1 cache: the caller names the KV rows it
/// will read next (the following cache block), so their latency overlaps the work on the
/// current one. The blocks of a paged cache lie anywhere in the pool, a few KiB each, too
/// short for the hardware prefetcher to pick up. A hint only: it reads nothing
/// architecturally and never faults; a no-op where the target has no prefetch instruction.
pub fn prefetch_rows(rows: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..rows.len()).step_by(64) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of every x86_64 CPU, and a prefetch reads nothing
        // architecturally and never faults (the address is inside `rows` anyway).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(rows[line..].as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = rows;
}

/// Stores the f32 row `x` as `row_type` into `out` (`row_type.row_bytes(x.len())` bytes).
/// Q8_0 rounds as ggml's `quantize_row_q8_0_ref` does, padding a partial last block with zeros.
///
/// Panics (a caller bug) when `out` has the wrong length.
pub fn encode_row(row_type: KvRowType, x: &[f32], out: &mut [u8]) {
    assert_eq!(out.len(), row_type.row_bytes(x.len()), "encoded row bytes");
    match row_type {
        KvRowType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        KvRowType::F16 => {
            // `half` converts a slice with F16C where the CPU has it (rounding to nearest
            // even, as its one-value conversion does): 8 values per instruction.
            use half::slice::HalfFloatSliceExt;
            const CHUNK: usize = 64;
            let mut tmp = [half::f16::ZERO; CHUNK];
            for (xs, os) in x.chunks(CHUNK).zip(out.chunks_mut(2 * CHUNK)) {
                let hs = &mut tmp[..xs.len()];
                hs.convert_from_f32_slice(xs);
                for (o, h) in os.chunks_exact_mut(2).zip(hs.iter()) {
                    o.copy_from_slice(&h.to_le_bytes());
                }
            }
        }
        KvRowType::Q8_0 => {
            let blocks = out.chunks_exact_mut(Q8_0_BLOCK_BYTES);
            for (xb, ob) in x.chunks(Q8_0_BLOCK_LEN).zip(blocks) {
                let mut padded = [0.0f32; Q8_0_BLOCK_LEN];
                padded[..xb.len()].copy_from_slice(xb);
                crate::scalar::quantize_row_q8_0(&padded, ob);
            }
        }
    }
}

/// Reads the `row_type` row `bytes` back into the f32 values `out` (the inverse of
/// [`encode_row`] up to its rounding). Panics (a caller bug) on a length mismatch.
pub fn decode_row(row_type: KvRowType, bytes: &[u8], out: &mut [f32]) {
    assert_eq!(
        bytes.len(),
        row_type.row_bytes(out.len()),
        "decoded row bytes"
    );
    for (d, o) in out.iter_mut().enumerate() {
        *o = scalar::value_at(row_type, bytes, d);
    }
}
