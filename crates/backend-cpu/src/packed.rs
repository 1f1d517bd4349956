//! Weights repacked at load time into 8-row interleaved blocks ([`PackedWeight`]), and their
//! matmul ([`Cpu::matmul_packed`]).
//!
//! Layout ("8-row interleaved"): rows are taken in groups of 8; for each group, its blocks
//! follow each other, and block `b` of a group holds the 8 rows' block `b` side by side, in a
//! type-specific order where every 32-byte vector has row `i` at bytes `4i..4i + 4`:
//! - Q4_0 (144 bytes): the 8 rows' f16 `d` (16 bytes), then 4 vectors of 32 bytes: vector `k`
//!   is the 4-byte word `k` of each row's 16 nibble bytes. The low nibbles of vector `k` are
//!   values `4k..4k + 4` of each row, the high nibbles values `16 + 4k..16 + 4k + 4`.
//! - Q4_1 (160 bytes): the 8 `d`, the 8 f16 `m` (16 bytes), then the 4 nibble vectors.
//! - Q5_0 (176 bytes): the 8 `d`, then 5 vectors `B0..B4` holding the block's 8 value vectors
//!   `V0..V7` of 5-bit values `u = q + 16 · fifth` (ggml's nibble plus `qh` bit). Byte
//!   `4i + j` of `V(2k)` is value `4k + j` of row `i`, of `V(2k + 1)` value `16 + 4k + j`.
//!   Bits 0..5 of `Bm` are `Vm` (m = 0..4); the 3 spare bits of each byte carry the rest:
//!   `V5` = bits 5..8 of `B0` and 5..7 of `B1`, `V6` likewise from `B2` and `B3`, `V7` = bits
//!   5..8 of `B4`, bit 7 of `B1` (its bit 3) and bit 7 of `B3` (its bit 4). Five values are
//!   one AND away, the other three a few masks and shifts: 23 operations per block instead of
//!   the 35 that nibbles plus a fifth-bit vector take.
//! - Q8_0 (272 bytes): the 8 `d`, then 8 vectors of 32 bytes: vector `k` is values
//!   `4k..4k + 4` (i8) of each row.
//! - Q4_K (1184 bytes per 256-value super-block): the 8 f16 `d`, the 8 f16 `dmin`, the
//!   6-bit scales unpacked to bytes as `[sub-block j][row]` (64 bytes), the mins likewise (64
//!   bytes), then 32 vectors: vector `8c + k` is the 4-byte word `k` of each row's 32-byte
//!   chunk `c` of `qs`, so its low nibbles are values `4k..4k + 4` of sub-block `2c` and its
//!   high nibbles those of sub-block `2c + 1`.
//! - Q6_K (1680 bytes per 256-value super-block): the 8 f16 `d`, the i8 scales as
//!   `[sub-block j][row]` (128 bytes), then per 16-value sub-block `j` three vectors `B0..B2`
//!   (96 bytes) for its values `u = q + 32` in `0..64`: byte `4i + l` of `Bk` is value
//!   `16j + 4k + l` of row `i` in bits 0..6, with 2 bits of value `16j + 12 + l` in bits 6..8
//!   (`B0` its bits 4..6, `B1` bits 2..4, `B2` bits 0..2). Three values of each 4 are one AND
//!   away, the fourth three shifts.
//!
//! A group's block is exactly as large as its 8 source blocks (Q4_K: plus 32 bytes for the
//! unpacked scales, 2.8%), so the packed copy costs the weight's size ([`Cpu::pack_from`] lets
//! a model read the source with positional reads, so the file's pages are never mapped beside
//! it). The last `n_out % 8` rows stay in the original layout.
//!
//! Why: with the rows side by side, one `vpmaddubsw` multiplies 4 values of all 8 rows with 4
//! broadcast activation values and lane `i` of every accumulator is row `i`, so a block costs
//! a few µops per row and token (no horizontal sums, one scale conversion per 8 rows), and a
//! weight vector unpacked once serves every token of a batch. Each output is a function of
//! its own row and token only, so results do not depend on the batch.

use std::sync::atomic::{AtomicUsize, Ordering};

use skiff_tensor::DType;

use crate::cpu::{Cpu, Weight};
use crate::disjoint::DisjointMut;
use crate::error::{Error, Result};
use crate::hugebuf::HugeBuf;
use crate::kernels::{ActFormat, MAX_ROWS};

/// Tokens per packed-kernel call (bounds its output tile).
const TILE_TOKENS: usize = 64;
/// Target bytes of packed rows per claimed chunk.
const CHUNK_BYTES: usize = 32 * 1024;
/// Most 8-row groups in a chunk (bounds the per-thread output buffer).
const MAX_CHUNK_GROUPS: usize = 16;
/// Most contiguous per-thread shares a call's chunks are split into (more threads share them).
const MAX_SHARES: usize = 64;

thread_local! {
    /// Each thread's output staging for [`Cpu::matmul_packed`]: taken for a call and put back
    /// after (a nested call finds it empty and uses its own), grown to the largest need.
    static STAGING: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    /// The calling thread's [`ShareCounter`]s, taken and put back like [`STAGING`]; a call
    /// resets only the ones it uses (zeroing all [`MAX_SHARES`] 128-byte counters before every
    /// product cost 1.2% of that thread's time in a 2-thread SmolLM2 decode).
    static SHARES: std::cell::Cell<Vec<ShareCounter>> = const { std::cell::Cell::new(Vec::new()) };
}
/// How [`Cpu::pack_from`] gets the source weight: fills the buffer with the bytes `range`.
pub type ReadSource<'a, E> =
    dyn FnMut(std::ops::Range<usize>, &mut [u8]) -> std::result::Result<(), E> + 'a;

/// Source bytes [`Cpu::pack_from`] asks for at a time.
pub const PACK_STEP_BYTES: usize = 1 << 20;

/// A weight matrix repacked by [`Cpu::pack`] for [`Cpu::matmul_packed`]; owns its bytes.
#[derive(Clone, Debug)]
pub struct PackedWeight {
    dtype: DType,
    n_out: usize,
    n_in: usize,
    /// `n_out / 8` groups of `n_in / block_len` interleaved blocks.
    groups: HugeBuf,
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

    /// Bytes this copy occupies (the same as the source weight; Q4_K 2.8% more).
    pub fn size_bytes(&self) -> usize {
        self.groups.len() + self.tail.len()
    }

    /// Whether `self` and `other` take the same quantized input (same width and activation
    /// format), so that [`Cpu::matmul_packed_many`] can run them in one call.
    pub fn shares_input_with(&self, other: &PackedWeight) -> bool {
        self.n_in == other.n_in
            && ActFormat::for_weight(self.dtype) == ActFormat::for_weight(other.dtype)
    }

    /// Bytes of one packed 8-row group.
    fn group_bytes(&self) -> usize {
        self.n_in / self.dtype.block_len() * packed_block_bytes(self.dtype)
    }
}

/// The weight types [`Cpu::pack`] repacks, each multiplied by its own packed kernel.
pub const PACKED_DTYPES: [DType; 6] = [
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q8_0,
    DType::Q4K,
    DType::Q6K,
];

/// The packed formats as the SIMD kernels' `FMT` const parameter (one driver, monomorphized
/// per format), shared by every ISA's packed kernels.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code) // only the SIMD kernels take them
)]
pub(crate) mod fmt {
    pub(crate) const Q4_0: u8 = 0;
    pub(crate) const Q4_1: u8 = 1;
    pub(crate) const Q5_0: u8 = 2;
    pub(crate) const Q8_0: u8 = 3;
    pub(crate) const Q4K: u8 = 4;
    pub(crate) const Q6K: u8 = 5;
}

/// Whether [`Cpu::pack`] repacks `dtype` (one of [`PACKED_DTYPES`]).
pub(crate) fn packable(dtype: DType) -> bool {
    PACKED_DTYPES.contains(&dtype)
}

/// Bytes of one packed block of 8 rows (the layout in the module doc).
fn packed_block_bytes(dtype: DType) -> usize {
    8 * dtype.block_bytes() + if dtype == DType::Q4K { 32 } else { 0 }
}

/// Packs block `b` of the 8 source rows at `src` (`row_bytes` apart) into `dst` (the layout in
/// the module doc).
fn pack_block(dtype: DType, src: &[u8], row_bytes: usize, b: usize, dst: &mut [u8]) {
    let bb = dtype.block_bytes();
    let block = |i: usize| &src[i * row_bytes + b * bb..][..bb];
    // Every format leads with its 8 rows' f16 `d`; Q6_K stores it last in its block.
    let d_at = if dtype == DType::Q6K { 208 } else { 0 };
    for i in 0..8 {
        dst[2 * i..2 * i + 2].copy_from_slice(&block(i)[d_at..d_at + 2]);
    }
    // Copies 4-byte words `k` of every row's `qs` (at `qs_at` in the source block) into
    // vectors `k` starting at `to`.
    let words = |dst: &mut [u8], qs_at: usize, n_words: usize, to: usize| {
        for i in 0..8 {
            let qs = &block(i)[qs_at..qs_at + 4 * n_words];
            for k in 0..n_words {
                let at = to + 32 * k + 4 * i;
                dst[at..at + 4].copy_from_slice(&qs[4 * k..4 * k + 4]);
            }
        }
    };
    match dtype {
        DType::Q4_0 => words(dst, 2, 4, 16),
        DType::Q4_1 => {
            for i in 0..8 {
                dst[16 + 2 * i..16 + 2 * i + 2].copy_from_slice(&block(i)[2..4]);
            }
            words(dst, 4, 4, 32);
        }
        DType::Q5_0 => {
            for i in 0..8 {
                let b = block(i);
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                for j in 0..4 {
                    // u[m]: the value of `V(m)` at row `i`, position `j`.
                    let u: [u8; 8] = std::array::from_fn(|m| {
                        let (k, h) = (m / 2, m % 2);
                        let byte = b[6 + 4 * k + j];
                        let nibble = if h == 0 { byte & 0x0F } else { byte >> 4 };
                        nibble | ((((qh >> (16 * h + 4 * k + j)) & 1) as u8) << 4)
                    });
                    let spare = [
                        u[5] & 7,
                        (u[5] >> 3) | (((u[7] >> 3) & 1) << 2),
                        u[6] & 7,
                        (u[6] >> 3) | ((u[7] >> 4) << 2),
                        u[7] & 7,
                    ];
                    for (m, &spare) in spare.iter().enumerate() {
                        dst[16 + 32 * m + 4 * i + j] = u[m] | spare << 5;
                    }
                }
            }
        }
        DType::Q8_0 => words(dst, 2, 8, 16),
        DType::Q4K => {
            for i in 0..8 {
                let b = block(i);
                dst[16 + 2 * i..16 + 2 * i + 2].copy_from_slice(&b[2..4]);
                for j in 0..8 {
                    let (scale, min) = crate::scalar::q4_k_scale_min(j, &b[4..16]);
                    dst[32 + 8 * j + i] = scale;
                    dst[96 + 8 * j + i] = min;
                }
            }
            words(dst, 16, 32, 160);
        }
        DType::Q6K => {
            for i in 0..8 {
                let b = block(i);
                for j in 0..16 {
                    dst[16 + 8 * j + i] = b[192 + j];
                }
                for j in 0..16 {
                    for l in 0..4 {
                        let fourth = crate::scalar::q6_k_value(b, 16 * j + 12 + l);
                        for k in 0..3 {
                            let u = crate::scalar::q6_k_value(b, 16 * j + 4 * k + l);
                            let top = (fourth >> (4 - 2 * k)) & 3;
                            dst[144 + 96 * j + 32 * k + 4 * i + l] = u | top << 6;
                        }
                    }
                }
            }
        }
        _ => unreachable!("pack_block is only called for packable types"),
    }
}

impl Cpu {
    /// Repacks `w` into the 8-row interleaved layout when its type has one (Q4_0, Q4_1, Q5_0,
    /// Q8_0, Q4_K, Q6_K): `Ok(None)` for other types (keep using [`Cpu::matmul`]). The copy
    /// takes as many bytes as `w` (Q4_K: 2.8% more, its scales unpacked).
    ///
    /// Errors: [`Error::RowNotBlockAligned`], [`Error::WeightLen`], [`Error::SizeOverflow`].
    pub fn pack(&self, w: &Weight<'_>) -> Result<Option<PackedWeight>> {
        if !packable(w.dtype) || self.kernels.packed8(w.dtype).is_none() {
            return Ok(None);
        }
        let row_bytes = self.plan_shape(w.dtype, w.n_out, w.n_in)?;
        let expected = w.n_out * row_bytes; // no overflow: checked by `plan_shape`
        if w.data.len() != expected {
            return Err(Error::WeightLen {
                dtype: w.dtype,
                n_out: w.n_out,
                n_in: w.n_in,
                expected,
                actual: w.data.len(),
            });
        }
        self.pack_rows(
            w.dtype,
            w.n_out,
            w.n_in,
            row_bytes,
            &mut |range, buf: &mut [u8]| {
                buf.copy_from_slice(&w.data[range]);
                Ok::<(), Error>(())
            },
        )
        .map(Some)
    }

    /// [`Cpu::pack`] of a `dtype` weight of `n_out` rows by `n_in` values whose bytes the
    /// caller reads on request: `read(range, buf)` fills `buf` with the weight's bytes `range`
    /// (whole rows, about [`PACK_STEP_BYTES`] at a time, every byte once, in order). A model
    /// reads its file with positional reads here, so the file's pages never become resident
    /// beside the packed copy. `Ok(None)` for types without a packed layout, before any read.
    ///
    /// Errors: [`Error::RowNotBlockAligned`] or [`Error::SizeOverflow`] for the shape (before
    /// any read), or the first error `read` returns.
    pub fn pack_from<E: From<Error>>(
        &self,
        dtype: DType,
        n_out: usize,
        n_in: usize,
        read: &mut ReadSource<'_, E>,
    ) -> std::result::Result<Option<PackedWeight>, E> {
        if !packable(dtype) || self.kernels.packed8(dtype).is_none() {
            return Ok(None);
        }
        let row_bytes = self.plan_shape(dtype, n_out, n_in)?;
        self.pack_rows(dtype, n_out, n_in, row_bytes, read)
            .map(Some)
    }

    /// The packing itself, for a packable `dtype` and a shape [`Cpu::plan_shape`] accepted
    /// (`row_bytes` is its answer).
    fn pack_rows<E>(
        &self,
        dtype: DType,
        n_out: usize,
        n_in: usize,
        row_bytes: usize,
        read: &mut ReadSource<'_, E>,
    ) -> std::result::Result<PackedWeight, E> {
        let n_groups = n_out / 8;
        let nb = n_in / dtype.block_len();
        let (src_group, pbb) = (8 * row_bytes, packed_block_bytes(dtype));
        let group_bytes = nb * pbb;
        let mut groups = HugeBuf::zeroed(n_groups * group_bytes);
        let groups_per_step = (PACK_STEP_BYTES / src_group.max(1)).max(1);
        let mut src = vec![0u8; groups_per_step.min(n_groups) * src_group];
        for first in (0..n_groups).step_by(groups_per_step) {
            let n = groups_per_step.min(n_groups - first);
            let src = &mut src[..n * src_group];
            read(first * src_group..(first + n) * src_group, src)?;
            let dst = &mut groups[first * group_bytes..(first + n) * group_bytes];
            for (src, dst) in src
                .chunks_exact(src_group)
                .zip(dst.chunks_exact_mut(group_bytes.max(1)))
            {
                for b in 0..nb {
                    pack_block(dtype, src, row_bytes, b, &mut dst[b * pbb..(b + 1) * pbb]);
                }
            }
        }
        let mut tail = vec![0u8; (n_out % 8) * row_bytes];
        if !tail.is_empty() {
            let at = n_groups * src_group;
            read(at..at + tail.len(), &mut tail)?;
        }
        Ok(PackedWeight {
            dtype,
            n_out,
            n_in,
            groups,
            tail,
        })
    }

    /// Validates a weight shape and returns its row bytes (`n_out` rows of them fit in
    /// `usize`).
    fn plan_shape(&self, dtype: DType, n_out: usize, n_in: usize) -> Result<usize> {
        let block_len = dtype.block_len();
        if !n_in.is_multiple_of(block_len) {
            return Err(Error::RowNotBlockAligned {
                dtype,
                n_in,
                block_len,
            });
        }
        let row_bytes = n_in / block_len * dtype.block_bytes();
        n_out.checked_mul(row_bytes).ok_or(Error::SizeOverflow {
            what: "weight",
            rows: n_out,
            cols: row_bytes,
        })?;
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
        self.matmul_packed_many(&[w], x, n_tokens, &mut [y])
    }

    /// [`Cpu::matmul_packed`] for up to [`MAX_MANY`] weights that read the same input (a
    /// layer's q/k/v projections, or its gate and up): the input is quantized once and all
    /// their rows are computed in one pass of the thread pool, one fork/join instead of one
    /// per weight. `ys[i]` receives exactly what `matmul_packed(ws[i], ..)` would write.
    ///
    /// Errors (nothing written): [`Error::ManyMismatch`] when `ws` and `ys` differ in length,
    /// hold more than [`MAX_MANY`], or the weights differ in input width or activation
    /// format; otherwise as [`Cpu::matmul_packed`].
    pub fn matmul_packed_many(
        &self,
        ws: &[&PackedWeight],
        x: &[f32],
        n_tokens: usize,
        ys: &mut [&mut [f32]],
    ) -> Result<()> {
        if ws.len() != ys.len() || ws.len() > MAX_MANY {
            return Err(Error::ManyMismatch {
                why: format!(
                    "{} weights and {} outputs: each weight needs one output, at most {MAX_MANY}",
                    ws.len(),
                    ys.len()
                ),
            });
        }
        let Some(first) = ws.first() else {
            return Ok(());
        };
        let n_in = first.n_in;
        let format = ActFormat::for_weight(first.dtype).expect("packed types are quantized");
        if let Some(other) = ws.iter().find(|w| !w.shares_input_with(first)) {
            return Err(Error::ManyMismatch {
                why: format!(
                    "weights of different inputs ({} x{n_in} and {} x{}) cannot share one",
                    first.dtype, other.dtype, other.n_in
                ),
            });
        }
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
        for (w, y) in ws.iter().zip(ys.iter()) {
            let y_need = n_tokens
                .checked_mul(w.n_out)
                .ok_or(overflow("output", n_tokens, w.n_out))?;
            if y.len() != y_need {
                return Err(Error::OutputLen {
                    n_tokens,
                    n_out: w.n_out,
                    expected: y_need,
                    actual: y.len(),
                });
            }
        }
        if n_tokens == 0 {
            return Ok(());
        }
        let quantize = self.kernels.quantize(format).expect("quantized format");
        let act_row = format.packed_row_bytes(n_in);
        let n_bytes = n_tokens * act_row;
        if crate::pool::in_job() {
            let mut local = vec![0u8; n_bytes];
            self.quantize_rows(quantize, x, n_in, act_row, &mut local, Some(format));
            self.packed_rows(ws, &local, n_tokens, ys);
            return Ok(());
        }
        let mut scratch = self.lock_scratch();
        scratch.resize(n_bytes, 0);
        self.quantize_rows(
            quantize,
            x,
            n_in,
            act_row,
            &mut scratch[..n_bytes],
            Some(format),
        );
        self.packed_rows(ws, &scratch[..n_bytes], n_tokens, ys);
        Ok(())
    }

    /// The product phase: the weights' rows are cut into chunks of 8-row groups (each
    /// weight's tail rows one more chunk), numbered weight after weight; threads claim chunks.
    fn packed_rows(
        &self,
        ws: &[&PackedWeight],
        acts: &[u8],
        n_tokens: usize,
        ys: &mut [&mut [f32]],
    ) {
        // `acts` holds exactly `n_tokens > 0` quantized rows (see `matmul_packed_many`), and
        // `ws.len() == ys.len() <= MAX_MANY`.
        let act_row = acts.len() / n_tokens;
        let mut ys = ys.iter_mut();
        let parts: [Option<Part<'_>>; MAX_MANY] = std::array::from_fn(|i| {
            let (w, y) = (*ws.get(i)?, ys.next()?);
            Some(Part::new(self, w, y))
        });
        let parts = &parts[..ws.len()];
        let n_chunks: usize = parts.iter().flatten().map(|p| p.n_chunks).sum();
        if n_chunks == 0 {
            return;
        }
        let max_chunk = parts.iter().flatten().map(|p| p.chunk).max().unwrap_or(1);
        // Thread `t` starts on its own contiguous share of the chunks, so each core streams
        // one run of memory front to back (what the hardware prefetcher follows best); a
        // thread done with its share then helps with the others' from where they are.
        let n_shares = self.n_threads().min(MAX_SHARES).min(n_chunks);
        let share = |p: usize| p * n_chunks / n_shares..(p + 1) * n_chunks / n_shares;
        let mut counters = SHARES.take();
        if counters.len() < n_shares {
            counters.resize_with(n_shares, || ShareCounter(AtomicUsize::new(0)));
        }
        let next = &counters[..n_shares];
        next.iter().for_each(|c| c.0.store(0, Ordering::Relaxed));
        let tile_tokens = TILE_TOKENS.min(n_tokens);
        let job = |thread: usize| {
            // The chunk's outputs for a tile of tokens, `[token][8 · chunk]`, as the kernel
            // writes them: copied to `y` one contiguous span per token (scattering 8 values per
            // token and group into rows of a wide output, e.g. the LM head's, would touch a new
            // page per store). Reused across calls, so no call zeroes or allocates it once it
            // is large enough.
            let mut staging = STAGING.take();
            let need = 8 * tile_tokens * max_chunk;
            if staging.len() < need {
                staging.resize(need, 0.0);
            }
            let spans = &mut staging[..];
            let next = &next;
            let claimed = (0..n_shares).flat_map(|k| {
                let p = (thread + k) % n_shares;
                let range = share(p);
                std::iter::from_fn(move || {
                    let c = range.start + next[p].0.fetch_add(1, Ordering::Relaxed);
                    (c < range.end).then_some(c)
                })
            });
            for mut c in claimed {
                let mut parts = parts.iter().flatten();
                let part = loop {
                    let part = parts.next().expect("chunk index below the total");
                    if c < part.n_chunks {
                        break part;
                    }
                    c -= part.n_chunks;
                };
                part.run_chunk(c, acts, act_row, n_tokens, spans);
            }
            STAGING.set(staging);
        };
        if n_chunks == 1 {
            job(0);
        } else {
            self.pool.run(&job);
        }
        SHARES.set(counters);
    }
}

/// The next unclaimed chunk of one thread's share, alone on its cache lines: each thread
/// claims from its own share until it runs dry, and counters packed side by side would bounce
/// one line between the cores on every claim (3% of a 2-thread SmolLM2 decode step, measured
/// on the instruction after the `lock xadd`). 128 bytes, because the L2 of x86 cores fetches
/// lines in adjacent pairs.
#[repr(align(128))]
struct ShareCounter(AtomicUsize);

/// Most weights one [`Cpu::matmul_packed_many`] call takes.
pub const MAX_MANY: usize = 4;

/// One weight of a [`Cpu::packed_rows`] call: its chunking, kernels and output.
struct Part<'a> {
    w: &'a PackedWeight,
    tail: Weight<'a>,
    kernel: crate::kernels::PackedFn,
    dot: crate::kernels::DotFn,
    group_bytes: usize,
    n_groups: usize,
    /// 8-row groups per chunk.
    chunk: usize,
    /// Chunks, the tail rows' included.
    n_chunks: usize,
    y: DisjointMut<'a, f32>,
}

impl<'a> Part<'a> {
    fn new(cpu: &Cpu, w: &'a PackedWeight, y: &'a mut [f32]) -> Self {
        let n_groups = w.n_out / 8;
        let group_bytes = w.group_bytes();
        let per_thread = n_groups.div_ceil(cpu.n_threads() * 4).max(1);
        let chunk = (CHUNK_BYTES / group_bytes.max(1)).clamp(1, per_thread.min(MAX_CHUNK_GROUPS));
        Part {
            w,
            tail: Weight {
                dtype: w.dtype,
                data: &w.tail,
                n_out: w.n_out % 8,
                n_in: w.n_in,
            },
            kernel: cpu
                .kernels
                .packed8(w.dtype)
                .expect("packed only when a kernel exists"),
            dot: cpu.kernels.vec_dot(w.dtype).expect("quantized type"),
            group_bytes,
            n_groups,
            chunk,
            n_chunks: n_groups.div_ceil(chunk) + usize::from(!w.n_out.is_multiple_of(8)),
            y: DisjointMut::new(y),
        }
    }

    /// Computes chunk `c` of this weight for every token into `y`, through the caller's
    /// staging `spans` (`8 · TILE_TOKENS · chunk`).
    fn run_chunk(&self, c: usize, acts: &[u8], act_row: usize, n_tokens: usize, spans: &mut [f32]) {
        let (n_out, chunk) = (self.w.n_out, self.chunk);
        if c * chunk >= self.n_groups {
            tail_rows(
                &self.tail, self.dot, act_row, acts, n_tokens, n_out, &self.y,
            );
            return;
        }
        let groups = c * chunk..((c + 1) * chunk).min(self.n_groups);
        let width = 8 * groups.len();
        let bytes = &self.w.groups[groups.start * self.group_bytes..groups.end * self.group_bytes];
        for t0 in (0..n_tokens).step_by(TILE_TOKENS) {
            let n = TILE_TOKENS.min(n_tokens - t0);
            let spans = &mut spans[..n * width];
            (self.kernel)(bytes, groups.len(), &acts[t0 * act_row..], act_row, spans);
            for (r, span) in spans.chunks_exact(width).enumerate() {
                // SAFETY: rows `8 · groups` belong to exactly one claimed chunk, so this range
                // of token row `t0 + r` is written by this thread only.
                unsafe { self.y.range((t0 + r) * n_out + 8 * groups.start, width) }
                    .copy_from_slice(span);
            }
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
    let row_bytes = tail.n_in / tail.dtype.block_len() * tail.dtype.block_bytes();
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
