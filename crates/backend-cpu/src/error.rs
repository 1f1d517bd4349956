//! The error type of `skiff-backend-cpu`: every variant names the sizes or the type it refused.

use skiff_tensor::DType;

use crate::Isa;

/// Why a CPU backend call was refused. Nothing is written to the output when an error is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The weight type has no matmul kernel (e.g. the activation-only `Q8_1`/`Q8_K` or integers).
    #[error("matmul: weight dtype {dtype} is not supported by the cpu backend")]
    UnsupportedDType {
        /// The refused weight type.
        dtype: DType,
    },
    /// The requested instruction set is not available on this CPU (or this build's architecture).
    #[error("cpu backend: instruction set {isa} is not supported on this machine")]
    UnsupportedIsa {
        /// The refused instruction set.
        isa: Isa,
    },
    /// A weight row length is not a whole number of the type's blocks.
    #[error("matmul: n_in = {n_in} is not a multiple of the {dtype} block length {block_len}")]
    RowNotBlockAligned {
        /// The weight type.
        dtype: DType,
        /// The row length asked for.
        n_in: usize,
        /// Values per block of `dtype`.
        block_len: usize,
    },
    /// The weight byte slice does not hold exactly `n_out` rows of `n_in` values.
    #[error(
        "matmul: {dtype} weight of {n_out}x{n_in} needs {expected} bytes, the slice has {actual}"
    )]
    WeightLen {
        /// The weight type.
        dtype: DType,
        /// Rows of the weight.
        n_out: usize,
        /// Values per row.
        n_in: usize,
        /// Bytes a weight of this shape occupies.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The input activation slice does not hold `n_tokens` rows of `n_in` values.
    #[error(
        "matmul: input needs n_tokens * n_in = {n_tokens} * {n_in} = {expected} values, got {actual}"
    )]
    InputLen {
        /// Rows of the input.
        n_tokens: usize,
        /// Values per input row.
        n_in: usize,
        /// Values expected.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// The output slice does not hold `n_tokens` rows of `n_out` values.
    #[error(
        "matmul: output needs n_tokens * n_out = {n_tokens} * {n_out} = {expected} values, got {actual}"
    )]
    OutputLen {
        /// Rows of the output.
        n_tokens: usize,
        /// Values per output row.
        n_out: usize,
        /// Values expected.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// A [`Cpu::matmul_packed_many`](crate::Cpu::matmul_packed_many) call whose weights and
    /// outputs do not go together.
    #[error("matmul_packed_many: {why}")]
    ManyMismatch {
        /// What was wrong, with the counts or types involved.
        why: String,
    },
    /// A size computed from the shape does not fit in `usize`.
    #[error("matmul: the size of a {what} of {rows}x{cols} overflows usize")]
    SizeOverflow {
        /// Which buffer (`"weight"`, `"input"`, `"output"`).
        what: &'static str,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
