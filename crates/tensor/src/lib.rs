//! skiff-tensor: element types (including ggml's block-quantized formats) and the scalar
//! reference for quantizing and dequantizing them.
//!
//! This crate is the specification of every on-disk tensor format: block layouts, and the
//! safe, plain Rust conversions to and from f32 that the SIMD kernels in `skiff-backend-cpu`
//! are tested against. It knows nothing about files, models or requests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod dtype;
pub mod quant;

pub use dtype::{ALL_DTYPES, DType, QK_K};
