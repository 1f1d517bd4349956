//! The public CPU backend handle: a kernel table chosen once, a persistent thread pool, and a
//! reusable scratch buffer for quantized activations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use skiff_tensor::DType;

use crate::error::{Error, Result};
use crate::kernels::{ActFormat, Isa, Kernels};
use crate::pool::Pool;

/// A weight matrix as stored in a model file: `n_out` rows of `n_in` values of type `dtype`,
/// row-major, each row `dtype.bytes_for(n_in)` bytes, borrowed straight from the mmap.
#[derive(Clone, Copy, Debug)]
pub struct Weight<'a> {
    /// The element type (a block-quantized ggml type or F32/F16/BF16).
    pub dtype: DType,
    /// The raw rows, exactly `n_out * dtype.bytes_for(n_in)` bytes.
    pub data: &'a [u8],
    /// Output features (rows).
    pub n_out: usize,
    /// Input features (values per row); a multiple of `dtype.block_len()`.
    pub n_in: usize,
}

/// The CPU backend: detected kernels plus a persistent thread pool.
///
/// `Cpu` is `Send + Sync`; calls from several threads are correct but take turns on the pool
/// and on the activation scratch buffer.
pub struct Cpu {
    pub(crate) kernels: Kernels,
    pub(crate) pool: Pool,
    /// Quantized activation rows of the current matmul; grows to the largest call, then reused.
    pub(crate) scratch: Mutex<Vec<u8>>,
    /// Whether [`Cpu::matmul`] may use the batched 8-row kernels (see
    /// [`Cpu::with_batch_kernels`]).
    pub(crate) batch_kernels: bool,
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpu")
            .field("isa", &self.isa())
            .field("n_threads", &self.n_threads())
            .finish()
    }
}

impl Cpu {
    /// A backend with the best kernels this CPU supports and `n_threads` threads (the calling
    /// thread is one of them; 0 is treated as 1). The chosen ISA is logged at debug level.
    pub fn new(n_threads: usize) -> Cpu {
        Self::with_kernels(n_threads, Kernels::detect())
    }

    /// A backend forced to the kernels of `isa` (for tests and benchmarks; unlike
    /// [`Kernels::detect`], it skips the VNNI tables' start-up check).
    ///
    /// Errors with [`Error::UnsupportedIsa`] when this CPU cannot run `isa`.
    pub fn with_isa(n_threads: usize, isa: Isa) -> Result<Cpu> {
        let kernels = Kernels::for_isa(isa).ok_or(Error::UnsupportedIsa { isa })?;
        Ok(Self::with_kernels(n_threads, kernels))
    }

    /// A backend running the given kernel table (one from [`Kernels::all_supported`]).
    pub fn with_kernels(n_threads: usize, kernels: Kernels) -> Cpu {
        Cpu {
            kernels,
            pool: Pool::new(n_threads.max(1)),
            scratch: Mutex::new(Vec::new()),
            batch_kernels: false,
        }
    }

    /// Lets [`Cpu::matmul`] use the batched 8-row kernels ([`Kernels::gemm8`]) for calls of at
    /// least 4 tokens on Q4_0/Q4_1/Q5_0/Q8_0 weights: 2–3× faster prompt processing, but a
    /// token's result then differs in the last bits from the same token multiplied alone (the
    /// f32 summation order differs), so batching can change near-tie greedy choices. Off by
    /// default: every token's result is independent of its batch. Results stay identical
    /// across thread counts either way. [`Cpu::matmul_packed`] is fast and batch-independent.
    pub fn with_batch_kernels(mut self, enabled: bool) -> Cpu {
        self.batch_kernels = enabled;
        self
    }

    /// The instruction set of the kernels in use.
    pub fn isa(&self) -> Isa {
        self.kernels.isa
    }

    /// The kernel table in use.
    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// Threads used by [`Cpu::matmul`] and [`Cpu::parallel_for`], the caller included.
    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// Whether [`Cpu::matmul`] accepts weights of `dtype`: F32, F16, BF16, Q4_0, Q4_1, Q5_0,
    /// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K.
    pub fn supports(dtype: DType) -> bool {
        ActFormat::for_weight(dtype).is_some()
    }

    /// Runs `f(i)` for every `i < n` on the pool, each index exactly once; indices are claimed
    /// one at a time from a shared counter, so uneven items balance across threads. Returns when
    /// all have run. Called from inside a pool job, it runs inline on the calling thread.
    pub fn parallel_for(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if n == 0 {
            return;
        }
        if n == 1 || self.n_threads() == 1 {
            (0..n).for_each(f);
            return;
        }
        let next = AtomicUsize::new(0);
        self.pool.run(&|_thread| {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                f(i);
            }
        });
    }

    /// Runs `f(i, chunk)` on the pool for every `chunk_len`-long chunk `i` of `data` (the last
    /// one possibly shorter), each exactly once and as [`Cpu::parallel_for`] does: tasks that
    /// each own one part of an output, without a lock or an allocation per call.
    ///
    /// Panics (a caller bug) when `chunk_len` is 0 and `data` is not empty.
    pub fn parallel_chunks_mut(
        &self,
        data: &mut [f32],
        chunk_len: usize,
        f: &(dyn Fn(usize, &mut [f32]) + Sync),
    ) {
        if data.is_empty() {
            return;
        }
        assert!(
            chunk_len > 0,
            "chunks of {} values must not be empty",
            data.len()
        );
        let len = data.len();
        let shared = crate::disjoint::DisjointMut::new(data);
        self.parallel_for(len.div_ceil(chunk_len), &|i| {
            let start = i * chunk_len;
            // SAFETY: `parallel_for` runs each index once, and chunk `i`'s range meets no other
            // chunk's.
            let chunk = unsafe { shared.range(start, chunk_len.min(len - start)) };
            f(i, chunk);
        });
    }

    /// Locks the scratch buffer (a poisoned lock only means an earlier call panicked midway;
    /// the buffer is rewritten before every use).
    pub(crate) fn lock_scratch(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.scratch.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
