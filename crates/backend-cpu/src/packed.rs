//! Weights repacked at load time into 8-row interleaved blocks ([`PackedWeight`]), and their
//! matmul ([`Cpu::matmul_packed`]).
//!
//! Layout ("8-row interleaved", Q4_0 and Q4_1): rows are taken in groups of 8; for each group,
//! its blocks follow each other, and block `b` of a group holds the 8 rows' f16 `d` values
//! (16 bytes), for Q4_1 the 8 rows' f16 `m` values (16 bytes), then 4 vectors of 32 bytes:
//! vector `k` is the 4-byte word `k` of each row's 16 nibble bytes, row `i` at bytes
//! `4i..4i + 4`. The low nibbles of vector `k` are values `4k..4k + 4` of each row, the high
//! nibbles values `16 + 4k..16 + 4k + 4`. A group's block is exactly as large as its 8 source
//! blocks, so the packed copy costs the weight's size (the mmap pages it came from are then
//! no longer read). The last `n_out % 8` rows stay in the original layout.
//!
//! Why: with the rows side by side, one `vpmaddubsw` multiplies 4 values of all 8 rows with 4
//! broadcast activation values and lane `i` of every accumulator is row `i`, so a block costs
//! ~6 µops per row for one token instead of ~14 (no horizontal sums, one scale conversion per
//! 8 rows), which is what single-token decoding is bound by.

use std::sync::atomic::{AtomicUsize, Ordering};

use skiff_tensor::DType;

use crate::cpu::{Cpu, Weight};
use crate::disjoint::DisjointMut;
use crate::error::{Error, Result};
use crate::kernels::{ActFormat, MAX_ROWS};

/// Tokens per packed-kernel call (bounds its output tile).
const TILE_TOKENS: usize = 64;
/// Target bytes of packed rows per claimed chunk.
const CHUNK_BYTES: usize = 32 * 1024;

/// A weight matrix repacked by [`Cpu::pack`] for [`Cpu::matmul_packed`]; owns its bytes.
#[derive(Clone, Debug)]
pub struct PackedWeight {
    dtype: DType,
    n_out: usize,
    n_in: usize,
    /// `n_out / 8` groups of `n_in / 32` interleaved blocks.
    groups: Vec<u8>,
    /// The last `n_out % 8` rows, unchanged.
    tail: Vec<u8>,
}

impl PackedWeight {
    /// The element type of the source weight.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Output features (rows).
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// Input features (values per row).
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Bytes this copy occupies (the same as the source weight).
    pub fn size_bytes(&self) -> usize {
        self.groups.len() + self.tail.len()
    }

    /// Bytes of one source row.
    fn row_bytes(&self) -> usize {
        self.n_in / 32 * self.dtype.block_bytes()
    }
}

/// Bytes of the per-row f16 fields leading a source block of `dtype` (`d`, or `d` and `m`).
fn scale_bytes(dtype: DType) -> usize {
    if dtype == DType::Q4_1 { 4 } else { 2 }
}

/// Packs block `b` of the 8 source rows at `src` (`row_bytes` apart) into `dst`.
fn pack_block(dtype: DType, src: &[u8], row_bytes: usize, b: usize, dst: &mut [u8]) {
    let (bb, sb) = (dtype.block_bytes(), scale_bytes(dtype));
    for i in 0..8 {
        let block = &src[i * row_bytes + b * bb..][..bb];
        dst[2 * i..2 * i + 2].copy_from_slice(&block[..2]);
        if sb == 4 {
            dst[16 + 2 * i..16 + 2 * i + 2].copy_from_slice(&block[2..4]);
        }
        let qs = &block[sb..sb + 16];
        for k in 0..4 {
            let at = 8 * sb + 32 * k + 4 * i;
            dst[at..at + 4].copy_from_slice(&qs[4 * k..4 * k + 4]);
        }
    }
}

impl Cpu {
    /// Repacks `w` into the 8-row interleaved layout when its type has one (Q4_0, Q4_1):
    /// `Ok(None)` for other types (keep using [`Cpu::matmul`]). The copy takes as many bytes
    /// as `w`.
    ///
    /// Errors: [`Error::RowNotBlockAligned`], [`Error::WeightLen`], [`Error::SizeOverflow`].
    pub fn pack(&self, w: &Weight<'_>) -> Result<Option<PackedWeight>> {
        if !matches!(w.dtype, DType::Q4_0 | DType::Q4_1) || self.kernels.packed8(w.dtype).is_none()
        {
            return Ok(None);
        }
        let plan = self.plan_weight(w)?;
        let n_groups = w.n_out / 8;
        let nb = w.n_in / 32;
        let group_bytes = 8 * plan;
        let mut groups = vec![0u8; n_groups * group_bytes];
        let bb = w.dtype.block_bytes();
        for (g, dst) in groups.chunks_exact_mut(group_bytes.max(1)).enumerate() {
            let src = &w.data[g * 8 * plan..(g + 1) * 8 * plan];
            for b in 0..nb {
                pack_block(
                    w.dtype,
                    src,
                    plan,
                    b,
                    &mut dst[b * 8 * bb..(b + 1) * 8 * bb],
                );
            }
        }
        Ok(Some(PackedWeight {
            dtype: w.dtype,
            n_out: w.n_out,
            n_in: w.n_in,
            groups,
            tail: w.data[n_groups * 8 * plan..].to_vec(),
        }))
    }

    /// Validates `w`'s shape and returns its row bytes.
    fn plan_weight(&self, w: &Weight<'_>) -> Result<usize> {
        let dtype = w.dtype;
        let block_len = dtype.block_len();
        if !w.n_in.is_multiple_of(block_len) {
            return Err(Error::RowNotBlockAligned {
                dtype,
                n_in: w.n_in,
                block_len,
            });
        }
        let row_bytes = w.n_in / block_len * dtype.block_bytes();
        let expected = w.n_out.checked_mul(row_bytes).ok_or(Error::SizeOverflow {
            what: "weight",
            rows: w.n_out,
            cols: row_bytes,
        })?;
        if w.data.len() != expected {
            return Err(Error::WeightLen {
                dtype,
                n_out: w.n_out,
                n_in: w.n_in,
                expected,
                actual: w.data.len(),
            });
        }
        Ok(row_bytes)
    }

    /// [`Cpu::matmul`] for a packed weight: same contract and the same results up to f32
    /// summation order (each output is computed the same way for every thread count).
    ///
    /// Errors (nothing written): [`Error::InputLen`], [`Error::OutputLen`],
    /// [`Error::SizeOverflow`].
    pub fn matmul_packed(
        &self,
        w: &PackedWeight,
        x: &[f32],
        n_tokens: usize,
        y: &mut [f32],
    ) -> Result<()> {
        let tail = Weight {
            dtype: w.dtype,
            data: &w.tail,
            n_out: w.n_out % 8,
            n_in: w.n_in,
        };
        let (n_out, n_in) = (w.n_out, w.n_in);
        let overflow = |what, rows, cols| Error::SizeOverflow { what, rows, cols };
        let x_need = n_tokens
            .checked_mul(n_in)
            .ok_or(overflow("input", n_tokens, n_in))?;
        if x.len() != x_need {
            return Err(Error::InputLen {
                n_tokens,
                n_in,
                expected: x_need,
                actual: x.len(),
            });
        }
        let y_need = n_tokens
            .checked_mul(n_out)
            .ok_or(overflow("output", n_tokens, n_out))?;
        if y.len() != y_need {
            return Err(Error::OutputLen {
                n_tokens,
                n_out,
                expected: y_need,
                actual: y.len(),
            });
        }
        if n_tokens == 0 || n_out == 0 {
            return Ok(());
        }
        let format = ActFormat::for_weight(w.dtype).expect("packed types are quantized");
        let quantize = self.kernels.quantize(format).expect("quantized format");
        let act_row = format.row_bytes(n_in);
        let n_bytes = n_tokens * act_row;
        if crate::pool::in_job() {
            let mut local = vec![0u8; n_bytes];
            self.quantize_rows(quantize, x, n_in, act_row, &mut local);
            self.packed_rows(w, &tail, &local, n_tokens, y);
            return Ok(());
        }
        let mut scratch = self.lock_scratch();
        scratch.resize(n_bytes, 0);
        self.quantize_rows(quantize, x, n_in, act_row, &mut scratch[..n_bytes]);
        self.packed_rows(w, &tail, &scratch[..n_bytes], n_tokens, y);
        Ok(())
    }

    /// The product phase: threads claim chunks of 8-row groups; the tail rows go last.
    fn packed_rows(
        &self,
        w: &PackedWeight,
        tail: &Weight<'_>,
        acts: &[u8],
        n_tokens: usize,
        y: &mut [f32],
    ) {
        let kernel = self
            .kernels
            .packed8(w.dtype)
            .expect("packed only when a kernel exists");
        let dot = self.kernels.vec_dot(w.dtype).expect("quantized type");
        let (n_out, act_row) = (
            w.n_out,
            ActFormat::for_weight(w.dtype).map_or(0, |f| f.row_bytes(w.n_in)),
        );
        let group_bytes = 8 * w.row_bytes();
        let n_groups = n_out / 8;
        let per_thread = n_groups.div_ceil(self.n_threads() * 4).max(1);
        let chunk = (CHUNK_BYTES / group_bytes.max(1)).clamp(1, per_thread);
        let n_chunks = n_groups.div_ceil(chunk) + usize::from(n_out % 8 != 0);
        let next = AtomicUsize::new(0);
        let y = DisjointMut::new(y);
        let job = |_thread: usize| {
            let mut tile = [0.0f32; 8 * TILE_TOKENS];
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= n_chunks {
                    break;
                }
                if c * chunk >= n_groups {
                    tail_rows(tail, dot, act_row, acts, n_tokens, n_out, &y);
                    continue;
                }
                for g in c * chunk..((c + 1) * chunk).min(n_groups) {
                    let group = &w.groups[g * group_bytes..(g + 1) * group_bytes];
                    for t0 in (0..n_tokens).step_by(TILE_TOKENS) {
                        let n = TILE_TOKENS.min(n_tokens - t0);
                        kernel(group, &acts[t0 * act_row..], act_row, &mut tile[..8 * n]);
                        for (r, out8) in tile[..8 * n].chunks_exact(8).enumerate() {
                            // SAFETY: rows `8g..8g + 8` belong to exactly one claimed chunk,
                            // so this range of token row `t0 + r` is written by this thread only.
                            unsafe { y.range((t0 + r) * n_out + 8 * g, 8) }.copy_from_slice(out8);
                        }
                    }
                }
            }
        };
        if n_chunks == 1 {
            job(0);
        } else {
            self.pool.run(&job);
        }
    }
}

/// The last `n_out % 8` rows (original layout) for every token, with the row kernel.
fn tail_rows(
    tail: &Weight<'_>,
    dot: crate::kernels::DotFn,
    act_row: usize,
    acts: &[u8],
    n_tokens: usize,
    n_out: usize,
    y: &DisjointMut<'_, f32>,
) {
    let row_bytes = tail.n_in / 32 * tail.dtype.block_bytes();
    let first = n_out - tail.n_out;
    for t0 in (0..n_tokens).step_by(MAX_ROWS) {
        let n_rows = MAX_ROWS.min(n_tokens - t0);
        for j in 0..tail.n_out {
            let mut out = [0.0f32; MAX_ROWS];
            let w_row = &tail.data[j * row_bytes..(j + 1) * row_bytes];
            dot(w_row, &acts[t0 * act_row..], act_row, &mut out[..n_rows]);
            for (r, &v) in out[..n_rows].iter().enumerate() {
                // SAFETY: the tail rows form their own chunk, claimed by one thread.
                unsafe { y.write((t0 + r) * n_out + first + j, v) };
            }
        }
    }
}
