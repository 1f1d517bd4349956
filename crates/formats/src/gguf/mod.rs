//! GGUF: the reader ([`parse_gguf`]) and the streaming writer ([`GgufWriter`]).
//!
//! Layout of a GGUF file (versions 2 and 3, little-endian):
//! `magic "GGUF"`, `version: u32`, `n_tensors: u64`, `n_kv: u64`, then `n_kv` metadata
//! entries (`key: string`, `type: u32`, value), then `n_tensors` tensor infos
//! (`name: string`, `n_dims: u32`, `dims: [u64; n_dims]`, `type: u32`, `offset: u64`),
//! padding to `general.alignment` (default 32), and the tensor data. A string is a `u64`
//! length followed by that many UTF-8 bytes. Tensor offsets are relative to the data section.

mod cursor;
pub(crate) mod reader;
mod value;
mod writer;

pub use reader::{
    DEFAULT_ALIGNMENT, GgufFile, MAX_ALIGNMENT, MAX_ARRAY_NESTING, MAX_DIMS, MAX_STRING_LEN,
    MAX_TENSOR_NAME_LEN, parse_gguf,
};
pub use writer::{GgufStream, GgufWriter};

/// The four bytes every GGUF file starts with, read as a little-endian `u32`.
pub const GGUF_MAGIC: u32 = 0x4655_4747;

/// One metadata value, as typed in the file.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// GGUF type 0.
    U8(u8),
    /// GGUF type 1.
    I8(i8),
    /// GGUF type 2.
    U16(u16),
    /// GGUF type 3.
    I16(i16),
    /// GGUF type 4.
    U32(u32),
    /// GGUF type 5.
    I32(i32),
    /// GGUF type 6.
    F32(f32),
    /// GGUF type 7.
    Bool(bool),
    /// GGUF type 8.
    String(String),
    /// GGUF type 9: elements of one type (arrays of arrays included).
    Array(Vec<MetaValue>),
    /// GGUF type 10.
    U64(u64),
    /// GGUF type 11.
    I64(i64),
    /// GGUF type 12.
    F64(f64),
}
