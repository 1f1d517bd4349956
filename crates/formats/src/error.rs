//! The one error type of `skiff-formats`.
//!
//! Every variant carries what is needed to act on it: the field or tensor, the offending
//! value and the limit it broke. Messages never echo file contents beyond short names.

use std::path::PathBuf;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or writing a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not start with the GGUF magic (or any magic skiff knows).
    #[error("bad magic {found:#010x}: not a GGUF file (expected 0x46554747, \"GGUF\")")]
    BadMagic {
        /// The first four bytes, little-endian.
        found: u32,
    },
    /// A GGUF version other than 2 or 3.
    #[error("GGUF version {version} is not supported (supported: 2, 3)")]
    UnsupportedVersion {
        /// The header's version field.
        version: u32,
    },
    /// The input ended before a field was complete.
    #[error("truncated while reading {what}: needs {needed} bytes, {have} left")]
    Truncated {
        /// What was being read.
        what: String,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the input.
        have: u64,
    },
    /// A count larger than the input could hold or than skiff allows.
    #[error("{what} count {count} exceeds the maximum {max} (limited by the bytes present)")]
    CountTooLarge {
        /// Which count (`n_tensors`, `n_kv`, `array of key …`).
        what: String,
        /// The declared count.
        count: u64,
        /// The largest count allowed here.
        max: u64,
    },
    /// A string longer than its cap.
    #[error("string of {len} bytes in {what} exceeds the cap of {cap} bytes")]
    StringTooLong {
        /// Where the string was.
        what: String,
        /// Declared length.
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// A string that is not UTF-8.
    #[error("{what}: string is not valid UTF-8")]
    BadUtf8 {
        /// Where the string was.
        what: String,
    },
    /// Arrays of arrays nested deeper than allowed.
    #[error("metadata key {key}: arrays nested deeper than {max} levels")]
    NestingTooDeep {
        /// The metadata key.
        key: String,
        /// The deepest nesting allowed.
        max: u32,
    },
    /// An unknown GGUF metadata value type tag.
    #[error("metadata key {key}: unknown value type {type_id}")]
    BadValueType {
        /// The metadata key.
        key: String,
        /// The type tag found.
        type_id: u32,
    },
    /// The same metadata key twice.
    #[error("duplicate metadata key {key}")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// The same tensor name twice.
    #[error("duplicate tensor {name}")]
    DuplicateTensor {
        /// The tensor name.
        name: String,
    },
    /// Tensor dimensions out of range.
    #[error("tensor {name}: bad dims {dims:?}: {reason}")]
    BadDims {
        /// The tensor name.
        name: String,
        /// The dims as declared (possibly only the count when unreadable).
        dims: Vec<u64>,
        /// What is wrong.
        reason: String,
    },
    /// The element count or byte size of a tensor overflows `u64`.
    #[error("tensor {name}: size overflows 64 bits")]
    SizeOverflow {
        /// The tensor name.
        name: String,
    },
    /// An unknown ggml type id.
    #[error("tensor {name}: unknown ggml type id {type_id}")]
    BadTensorType {
        /// The tensor name.
        name: String,
        /// The type id found.
        type_id: u32,
    },
    /// A row length that is not a whole number of quantization blocks.
    #[error("tensor {name}: ne[0] = {ne0} is not a multiple of the block length {block_len}")]
    BadBlockShape {
        /// The tensor name.
        name: String,
        /// The row length.
        ne0: u64,
        /// The type's block length.
        block_len: u64,
    },
    /// `general.alignment` missing the rules (u32, power of two, ≤ 1 MiB).
    #[error("general.alignment {value}: {reason}")]
    BadAlignment {
        /// The value as found (with its type).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Tensor bytes reaching past the end of the file.
    #[error(
        "tensor {name}: bytes {offset}..{offset}+{size} lie outside the file of {file_len} bytes"
    )]
    TensorOutOfBounds {
        /// The tensor name.
        name: String,
        /// Absolute offset of its first byte.
        offset: u64,
        /// Its byte length.
        size: u64,
        /// The file length.
        file_len: u64,
    },
    /// Two tensors sharing bytes.
    #[error("tensors {a} and {b} overlap")]
    TensorsOverlap {
        /// The earlier tensor.
        a: String,
        /// The later tensor.
        b: String,
    },
    /// A tensor offset that is not a multiple of the alignment.
    #[error("tensor {name}: offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned {
        /// The tensor name.
        name: String,
        /// The offset found.
        offset: u64,
        /// The alignment required.
        alignment: u64,
    },
    /// A hyperparameter out of range or inconsistent with others.
    #[error("hyperparameter {key} = {value}: {reason}")]
    BadHyperparameter {
        /// The metadata key.
        key: String,
        /// The value found.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A required metadata key is absent.
    #[error("missing metadata key {key}")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata value of the wrong type.
    #[error("metadata key {key}: expected {expected}, found {found}")]
    WrongType {
        /// The key.
        key: String,
        /// The type wanted.
        expected: &'static str,
        /// The type (and value, when short) found.
        found: String,
    },
    /// The embedded or bundled tokenizer is inconsistent.
    #[error("tokenizer {field}: {reason}")]
    BadTokenizer {
        /// The field (`tokenizer.ggml.scores`, …).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the model needs is absent.
    #[error("missing tensor {name}")]
    MissingTensor {
        /// The tensor name.
        name: String,
    },
    /// An architecture skiff does not know.
    #[error("architecture {arch} is not supported (supported: {supported})")]
    UnsupportedArch {
        /// The architecture name.
        arch: String,
        /// The names skiff knows.
        supported: &'static str,
    },
    /// A safetensors header over the 100 MB cap (or claiming more than the file).
    #[error("safetensors header of {len} bytes exceeds the limit of {max} bytes")]
    HeaderTooLarge {
        /// The declared header length.
        len: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A safetensors header or Hugging Face JSON file that is malformed.
    #[error("{what}: {reason}")]
    BadHeader {
        /// Which file or header.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A shard name in `model.safetensors.index.json` leaving the model folder.
    #[error("shard name {name:?} escapes the model folder")]
    PathEscapesModelDir {
        /// The shard name as written in the index.
        name: String,
    },
    /// A shard named in the index is not present.
    #[error("shard {name} listed in model.safetensors.index.json is missing")]
    MissingShard {
        /// The shard file name.
        name: String,
    },
    /// A tensor dtype skiff does not load.
    #[error("tensor {name}: dtype {dtype} is not supported (supported: {supported})")]
    UnsupportedDType {
        /// The tensor name.
        name: String,
        /// The dtype as written in the file.
        dtype: String,
        /// What is accepted.
        supported: &'static str,
    },
    /// A Hugging Face tensor name with no GGUF equivalent.
    #[error("tensor {name}: no GGUF name is known for it")]
    UnknownTensorName {
        /// The Hugging Face name.
        name: String,
    },
    /// A file kind skiff refuses to load.
    #[error("unsupported format: {reason}")]
    UnsupportedFormat {
        /// Why, and what to do instead.
        reason: String,
    },
    /// The streaming writer was used out of order or with wrong sizes.
    #[error("gguf writer: {reason}")]
    Writer {
        /// What went wrong.
        reason: String,
    },
    /// A file larger than skiff reads for its kind.
    #[error("{path}: {len} bytes exceeds the cap of {cap} bytes")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An I/O failure on an output stream (the writer).
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn truncated(what: impl Into<String>, needed: u64, have: u64) -> Error {
        Error::Truncated {
            what: what.into(),
            needed,
            have,
        }
    }

    pub(crate) fn bad_hparam(key: &str, value: impl ToString, reason: impl Into<String>) -> Error {
        Error::BadHyperparameter {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_tokenizer(field: &str, reason: impl Into<String>) -> Error {
        Error::BadTokenizer {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
