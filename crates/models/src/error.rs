//! The one error type of `skiff-models`.
//!
//! Load-time variants name the tensor or hyperparameter and both the expected and found
//! values; forward-time variants name the batch field, the offending index and the limit,
//! so a caller (the engine) can fail exactly one request and keep running.

use skiff_tensor::DType;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `general.architecture` names a family skiff does not implement.
    #[error("unknown architecture {arch:?}; supported: {}", supported.join(", "))]
    UnknownArchitecture {
        /// The architecture the file declares.
        arch: String,
        /// Every architecture name the registry accepts.
        supported: Vec<&'static str>,
    },
    /// A tensor the architecture needs is not in the file.
    #[error("missing tensor {name}")]
    MissingTensor {
        /// GGUF-style tensor name.
        name: String,
    },
    /// A tensor's dimensions differ from what the hyperparameters imply.
    #[error("tensor {name}: expected dims {expected:?} (ggml order), got {got:?}")]
    ShapeMismatch {
        /// GGUF-style tensor name.
        name: String,
        /// Dimensions implied by the hyperparameters, ggml order.
        expected: Vec<u64>,
        /// Dimensions in the file.
        got: Vec<u64>,
    },
    /// A tensor is stored in a type this role cannot use.
    #[error("tensor {name}: dtype {dtype} is not supported here ({reason})")]
    UnsupportedDType {
        /// GGUF-style tensor name.
        name: String,
        /// The tensor's element type.
        dtype: DType,
        /// Why: which kind of tensor needs which types.
        reason: &'static str,
    },
    /// A hyperparameter or metadata value the architecture cannot work with.
    #[error("hyperparameter {field} = {value}: {reason}")]
    BadHParam {
        /// Field or GGUF key name.
        field: &'static str,
        /// The offending value, printed.
        value: String,
        /// What is required.
        reason: &'static str,
    },
    /// A batch's parallel vectors (`positions`, `seq_slots`) differ in length from `tokens`.
    #[error("batch field {field} has {len} entries, but the batch has {n_tokens} tokens")]
    BatchLength {
        /// The field whose length is wrong.
        field: &'static str,
        /// Its length.
        len: usize,
        /// `tokens.len()`.
        n_tokens: usize,
    },
    /// A batch with no tokens.
    #[error("batch has no tokens")]
    EmptyBatch,
    /// A token id at or beyond the vocabulary.
    #[error("batch token {token_idx}: id {token} is outside the vocabulary of {n_vocab}")]
    TokenOutOfRange {
        /// Index in the batch.
        token_idx: usize,
        /// The token id.
        token: u32,
        /// Rows of the embedding matrix.
        n_vocab: usize,
    },
    /// A position at or beyond the context the model (or the KV cache) supports.
    #[error("batch token {token_idx}: position {pos} is beyond the {limit} limit of {max_seq_len}")]
    PositionOutOfRange {
        /// Index in the batch.
        token_idx: usize,
        /// The position.
        pos: u32,
        /// Which limit: the model's training context or the KV cache's capacity.
        limit: &'static str,
        /// The limit (valid positions are `0..max_seq_len`).
        max_seq_len: usize,
    },
    /// A position that does not continue its sequence: each sequence's tokens must carry
    /// positions `slot_len, slot_len + 1, …` in batch order.
    #[error("batch token {token_idx}: slot {slot} expects position {expected}, got {pos}")]
    PositionGap {
        /// Index in the batch.
        token_idx: usize,
        /// The KV slot.
        slot: usize,
        /// The position given.
        pos: u32,
        /// The next free position of that slot.
        expected: usize,
    },
    /// A KV slot index at or beyond the cache's slot count.
    #[error("slot {slot} is out of range: the KV cache has {n_slots} slots")]
    SlotOutOfRange {
        /// The slot index.
        slot: usize,
        /// Slots in the cache.
        n_slots: usize,
    },
    /// A logit row that is not a token of the batch.
    #[error("logit row {row} is out of range: the batch has {n_tokens} tokens")]
    LogitRowOutOfRange {
        /// The requested row.
        row: usize,
        /// Tokens in the batch.
        n_tokens: usize,
    },
    /// A KV cache built for a different model shape.
    #[error("KV cache {field} is {cache}, the model needs {model}")]
    KvMismatch {
        /// The mismatching dimension.
        field: &'static str,
        /// The cache's value.
        cache: usize,
        /// The model's value.
        model: usize,
    },
    /// `truncate_slot` asked to grow a slot.
    #[error("cannot truncate slot {slot} of length {len} to {new_len}")]
    TruncateBeyondLen {
        /// The slot.
        slot: usize,
        /// Its current length.
        len: usize,
        /// The requested length.
        new_len: usize,
    },
    /// A batch position outside its slot's block table: the engine has not mapped a block
    /// for it yet.
    #[error(
        "slot {slot}: position {pos} is beyond its block table's capacity of {capacity} positions"
    )]
    KvCapacity {
        /// The KV slot.
        slot: usize,
        /// The position.
        pos: u32,
        /// Positions the slot's block table holds (capped at the cache's `max_seq_len`).
        capacity: usize,
    },
    /// `set_slot_len` beyond what the slot's block table (or `max_seq_len`) holds.
    #[error("slot {slot}: length {len} exceeds its capacity of {capacity} positions")]
    SlotLenBeyondCapacity {
        /// The KV slot.
        slot: usize,
        /// The requested length.
        len: usize,
        /// Positions the slot's block table holds (capped at the cache's `max_seq_len`).
        capacity: usize,
    },
    /// A block id at or beyond the pool's block count.
    #[error("KV block {block} is out of range: the pool has {n_blocks} blocks")]
    BlockOutOfRange {
        /// The block id.
        block: u32,
        /// Blocks in the pool.
        n_blocks: usize,
    },
    /// A block table with more blocks than `max_seq_len` positions need.
    #[error(
        "slot {slot}: block table of {len} blocks exceeds the {max_blocks} that max_seq_len needs"
    )]
    BlockTableTooLong {
        /// The KV slot.
        slot: usize,
        /// Blocks in the given table.
        len: usize,
        /// `ceil(max_seq_len / block_size)`.
        max_blocks: usize,
    },
    /// An unusable paged-pool configuration.
    #[error("KV config {field} = {value}: {reason}")]
    BadKvConfig {
        /// `block_size` or `n_blocks`.
        field: &'static str,
        /// The value given.
        value: usize,
        /// What is required.
        reason: &'static str,
    },
    /// A KV element type name that is not one of `f32`, `f16`, `q8_0`.
    #[error("unknown KV cache type {name:?}; supported: {}", supported.join(", "))]
    UnknownKvDtype {
        /// The name given (first 32 characters).
        name: String,
        /// The accepted names.
        supported: &'static [&'static str],
    },
    /// Dequantizing a tensor's rows failed.
    #[error("tensor {name}: dequantize failed: {source}")]
    Dequantize {
        /// GGUF-style tensor name.
        name: String,
        /// The tensor crate's error.
        source: skiff_tensor::quant::QuantError,
    },
    /// The model file could not be read.
    #[error(transparent)]
    Format(#[from] skiff_formats::Error),
    /// A matrix product failed in the backend.
    #[error("backend: {0}")]
    Backend(#[from] skiff_backend_cpu::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
