//! `Cpu::matmul`: shape checks, activation quantization into the scratch buffer, and the
//! split of output rows over the pool.
//!
//! Work split: output rows are cut into chunks that threads claim from an atomic counter.
//! Within a chunk, tokens are processed in groups of [`MAX_ROWS`]: each weight row of the
//! chunk is dotted with a whole group per kernel call, so a row is unpacked once per group and
//! the chunk's rows stay in L1 while all groups stream past.
//!
//! When enabled ([`Cpu::with_batch_kernels`]), batches of at least [`GEMM_MIN_TOKENS`] tokens
//! on a weight type with a batched kernel ([`Kernels::gemm8`](crate::Kernels::gemm8)) take
//! that kernel instead for every aligned group
//! of 8 rows (chunks are then whole groups); the last `n_out % 8` rows use the row kernel.
//!
//! Each output value is computed by the same kernel call (which rows and tokens it is grouped
//! with never changes its arithmetic) whatever the thread count, so results are identical for
//! every `n_threads`.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cpu::{Cpu, Weight};
use crate::disjoint::DisjointMut;
use crate::error::{Error, Result};
use crate::kernels::{ActFormat, DotFn, Gemm8Fn, MAX_ROWS};

/// Target bytes of weight rows per claimed chunk (fits L1 together with a token group).
const CHUNK_BYTES: usize = 16 * 1024;
/// Batches of at least this many tokens use the batched kernel when the weight type has one.
pub const GEMM_MIN_TOKENS: usize = 4;
/// Tokens per batched-kernel call (bounds its output tile).
const GEMM_TOKENS: usize = 64;
/// Quantize activations on the pool only above this many values (below, the dispatch costs
/// more than it saves).
const PARALLEL_QUANTIZE_VALUES: usize = 16 * 1024;

/// The checked geometry of one matmul call.
struct Plan {
    row_bytes: usize,
    format: ActFormat,
    act_row: usize,
    dot: DotFn,
    gemm: Option<Gemm8Fn>,
}

fn checked_mul(a: usize, b: usize, what: &'static str) -> Result<usize> {
    a.checked_mul(b).ok_or(Error::SizeOverflow {
        what,
        rows: a,
        cols: b,
    })
}

impl Cpu {
    /// `y[t * n_out + o] = Σ_i W[o, i] · x[t * n_in + i]` for every token `t < n_tokens`.
    ///
    /// `x` holds `n_tokens` rows of `w.n_in` f32 values and `y` receives `n_tokens` rows of
    /// `w.n_out`. Quantized weights are multiplied with activations quantized on the fly to the
    /// weight's ggml "vec_dot type" (Q8_0, Q8_1 or Q8_K), exactly as llama.cpp does; F32, F16
    /// and BF16 weights are multiplied with the f32 activations.
    ///
    /// Errors (nothing written): [`Error::UnsupportedDType`], [`Error::RowNotBlockAligned`],
    /// [`Error::WeightLen`], [`Error::InputLen`], [`Error::OutputLen`], [`Error::SizeOverflow`].
    pub fn matmul(&self, w: &Weight<'_>, x: &[f32], n_tokens: usize, y: &mut [f32]) -> Result<()> {
        let plan = self.plan(w, x.len(), n_tokens, y.len())?;
        if n_tokens == 0 || w.n_out == 0 {
            return Ok(());
        }
        let Some(quantize) = self.kernels.quantize(plan.format) else {
            self.dot_rows(w, &plan, f32_bytes(x), n_tokens, y);
            return Ok(());
        };
        let n_bytes = n_tokens * plan.act_row;
        if crate::pool::in_job() {
            // Called from a `parallel_for` item: use a private buffer. Waiting for the shared
            // scratch here could deadlock against a thread that holds it while it waits to
            // submit to the pool this job is running on.
            let mut local = vec![0u8; n_bytes];
            self.quantize_rows(quantize, x, w.n_in, plan.act_row, &mut local, None);
            self.dot_rows(w, &plan, &local, n_tokens, y);
            return Ok(());
        }
        let mut scratch = self.lock_scratch();
        scratch.resize(n_bytes, 0);
        self.quantize_rows(
            quantize,
            x,
            w.n_in,
            plan.act_row,
            &mut scratch[..n_bytes],
            None,
        );
        self.dot_rows(w, &plan, &scratch[..n_bytes], n_tokens, y);
        Ok(())
    }

    fn plan(&self, w: &Weight<'_>, x_len: usize, n_tokens: usize, y_len: usize) -> Result<Plan> {
        let dtype = w.dtype;
        let format = ActFormat::for_weight(dtype).ok_or(Error::UnsupportedDType { dtype })?;
        let dot = self
            .kernels
            .vec_dot(dtype)
            .ok_or(Error::UnsupportedDType { dtype })?;
        let block_len = dtype.block_len();
        if !w.n_in.is_multiple_of(block_len) {
            return Err(Error::RowNotBlockAligned {
                dtype,
                n_in: w.n_in,
                block_len,
            });
        }
        let row_bytes = w.n_in / block_len * dtype.block_bytes();
        let expected = checked_mul(w.n_out, row_bytes, "weight")?;
        if w.data.len() != expected {
            let (n_out, n_in, actual) = (w.n_out, w.n_in, w.data.len());
            return Err(Error::WeightLen {
                dtype,
                n_out,
                n_in,
                expected,
                actual,
            });
        }
        let expected = checked_mul(n_tokens, w.n_in, "input")?;
        if x_len != expected {
            return Err(Error::InputLen {
                n_tokens,
                n_in: w.n_in,
                expected,
                actual: x_len,
            });
        }
        let expected = checked_mul(n_tokens, w.n_out, "output")?;
        if y_len != expected {
            return Err(Error::OutputLen {
                n_tokens,
                n_out: w.n_out,
                expected,
                actual: y_len,
            });
        }
        checked_mul(n_tokens, format.row_bytes(w.n_in), "activation")?;
        Ok(Plan {
            row_bytes,
            format,
            act_row: format.row_bytes(w.n_in),
            dot,
            gemm: self.kernels.gemm8(dtype).filter(|_| self.batch_kernels),
        })
    }

    /// Quantizes the `n_tokens` rows of `x` into `out` (`act_row` bytes each), on the pool when
    /// the batch is large. With `packed: Some(format)` the rows are the packed kernels' rows
    /// of `format` ([`ActFormat::packed_row_bytes`]), completed after quantizing.
    pub(crate) fn quantize_rows(
        &self,
        quantize: crate::kernels::QuantizeFn,
        x: &[f32],
        n_in: usize,
        act_row: usize,
        out: &mut [u8],
        packed: Option<ActFormat>,
    ) {
        let n_tokens = out.len() / act_row.max(1);
        if n_in == 0 {
            return;
        }
        let one = |xr: &[f32], row: &mut [u8]| match packed {
            Some(format) => {
                quantize(xr, &mut row[..format.row_bytes(n_in)]);
                format.finish_packed_row(row, n_in);
            }
            None => quantize(xr, row),
        };
        if x.len() < PARALLEL_QUANTIZE_VALUES || n_tokens < 2 {
            for (xr, or) in x.chunks_exact(n_in).zip(out.chunks_exact_mut(act_row)) {
                one(xr, or);
            }
            return;
        }
        let out = DisjointMut::new(out);
        self.parallel_for(n_tokens, &|t| {
            // SAFETY: `parallel_for` hands each token index to exactly one call, and token
            // rows `t * act_row..(t + 1) * act_row` do not overlap.
            let row = unsafe { out.range(t * act_row, act_row) };
            one(&x[t * n_in..(t + 1) * n_in], row);
        });
    }

    /// The dot-product phase: threads claim chunks of output rows.
    fn dot_rows(&self, w: &Weight<'_>, plan: &Plan, acts: &[u8], n_tokens: usize, y: &mut [f32]) {
        let n_out = w.n_out;
        let gemm = plan.gemm.filter(|_| n_tokens >= GEMM_MIN_TOKENS);
        let per_thread = n_out.div_ceil(self.n_threads() * 4);
        let mut chunk_rows = (CHUNK_BYTES / plan.row_bytes.max(1)).clamp(1, per_thread.max(1));
        if gemm.is_some() {
            chunk_rows = chunk_rows.next_multiple_of(8);
        }
        let n_chunks = n_out.div_ceil(chunk_rows);
        let next = AtomicUsize::new(0);
        let y = DisjointMut::new(y);
        let job = |_thread: usize| {
            let mut panel = Vec::new();
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= n_chunks {
                    break;
                }
                let mut rows = chunk * chunk_rows..((chunk + 1) * chunk_rows).min(n_out);
                if let Some(gemm) = gemm {
                    let full_end = rows.start + (rows.len() / 8) * 8;
                    for o in (rows.start..full_end).step_by(8) {
                        gemm_group(w, plan, gemm, acts, n_tokens, o, &mut panel, &y);
                    }
                    rows.start = full_end;
                }
                dot_chunk(w, plan, acts, n_tokens, rows, &y);
            }
        };
        if n_chunks == 1 {
            job(0);
        } else {
            self.pool.run(&job);
        }
    }
}

/// Output rows `rows` for every token with the row kernel, tokens in groups of [`MAX_ROWS`].
fn dot_chunk(
    w: &Weight<'_>,
    plan: &Plan,
    acts: &[u8],
    n_tokens: usize,
    rows: std::ops::Range<usize>,
    y: &DisjointMut<'_, f32>,
) {
    let n_out = w.n_out;
    for t0 in (0..n_tokens).step_by(MAX_ROWS) {
        let n_rows = MAX_ROWS.min(n_tokens - t0);
        let group = &acts[t0 * plan.act_row..];
        for o in rows.clone() {
            let mut out = [0.0f32; MAX_ROWS];
            let w_row = &w.data[o * plan.row_bytes..(o + 1) * plan.row_bytes];
            (plan.dot)(w_row, group, plan.act_row, &mut out[..n_rows]);
            for (r, &v) in out[..n_rows].iter().enumerate() {
                // SAFETY: output row `o` belongs to exactly one claimed chunk, so index
                // `(t0 + r) * n_out + o` is written by this thread only.
                unsafe { y.write((t0 + r) * n_out + o, v) };
            }
        }
    }
}

/// Output rows `o..o + 8` for every token with the batched kernel.
#[allow(clippy::too_many_arguments)] // the matmul's state, passed down unchanged
fn gemm_group(
    w: &Weight<'_>,
    plan: &Plan,
    gemm: Gemm8Fn,
    acts: &[u8],
    n_tokens: usize,
    o: usize,
    panel: &mut Vec<u8>,
    y: &DisjointMut<'_, f32>,
) {
    let n_out = w.n_out;
    let w8 = &w.data[o * plan.row_bytes..(o + 8) * plan.row_bytes];
    let mut tile = [0.0f32; 8 * GEMM_TOKENS];
    for t0 in (0..n_tokens).step_by(GEMM_TOKENS) {
        let n = GEMM_TOKENS.min(n_tokens - t0);
        gemm(
            w8,
            &acts[t0 * plan.act_row..],
            plan.act_row,
            panel,
            &mut tile[..8 * n],
        );
        for (r, out8) in tile[..8 * n].chunks_exact(8).enumerate() {
            // SAFETY: output rows `o..o + 8` belong to exactly one claimed chunk, so this
            // range of token row `t0 + r` is written by this thread only.
            unsafe { y.range((t0 + r) * n_out + o, 8) }.copy_from_slice(out8);
        }
    }
}

/// The bytes of an f32 slice (native order, which is little-endian on every supported target).
fn f32_bytes(x: &[f32]) -> &[u8] {
    // SAFETY: any initialized f32 is 4 initialized bytes, u8 has alignment 1, and the length
    // `4 * x.len()` cannot overflow because `x` already occupies that many bytes.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<u8>(), std::mem::size_of_val(x)) }
}
