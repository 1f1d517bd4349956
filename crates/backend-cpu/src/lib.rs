//! skiff-backend-cpu: quantized matrix products on the CPU, with SIMD kernels chosen at run
//! time and a persistent thread pool.
//!
//! [`Cpu`] is the entry point: [`Cpu::matmul`] multiplies a weight matrix stored in any ggml
//! format (straight from the mmap) with a batch of f32 activation rows, and
//! [`Cpu::parallel_for`] spreads other work over the same threads.
//!
//! Layout (STYLE.md B8): `kernels.rs` is the table of kernel function pointers, `dispatch.rs`
//! picks a table at run time, `scalar/` is the safe reference every SIMD variant is tested
//! against, and `x86_64/` (`avx2/`, `avx512/`, `avxvnni/`, and `vnni.rs`, the packed kernels
//! both VNNI tables expand) holds the only intrinsics, reachable only through a proof token
//! built by CPU detection, as does `aarch64/` (`neon/`: NEON packed kernels with and without
//! `sdot`); `selfcheck.rs` vets a VNNI table against AVX2 before it is used.
//! `pool.rs` is the thread pool, `matmul.rs` the work split.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod attn;
mod cpu;
mod disjoint;
mod dispatch;
mod error;
mod hugebuf;
pub mod kernels;
mod matmul;
pub mod ops;
mod packed;
mod pool;
pub mod scalar;
mod selfcheck;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use cpu::{Cpu, Weight};
pub use dispatch::MAX_ISA_VAR;
pub use error::{Error, Result};
pub use hugebuf::HugeBuf;
pub use kernels::{ActFormat, Isa, Kernels};
pub use packed::{MAX_MANY, PACK_STEP_BYTES, PACKED_DTYPES, PackedWeight, ReadSource};
