//! The cache's element type and pool shape.

use std::fmt;
use std::str::FromStr;

use skiff_backend_cpu::attn::KvRowType;

use crate::error::Error;

/// Positions per block when none is given (as vLLM's default).
pub const DEFAULT_BLOCK_SIZE: usize = 16;

/// Element type of cached keys and values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvDtype {
    /// f32: exact, 4 bytes a value (the reference-logits tests rely on it).
    F32,
    /// IEEE f16, 2 bytes a value: llama.cpp's default.
    #[default]
    F16,
    /// ggml `block_q8_0` per head row (f16 scale + 32 × i8; rows padded to whole blocks),
    /// 1.0625 bytes a value.
    Q8_0,
}

impl KvDtype {
    /// Every variant, in the order of their names in [`KvDtype::NAMES`].
    pub const ALL: [KvDtype; 3] = [KvDtype::F32, KvDtype::F16, KvDtype::Q8_0];
    /// The accepted spellings: `f32`, `f16`, `q8_0`.
    pub const NAMES: [&'static str; 3] = ["f32", "f16", "q8_0"];

    /// The lower-case name (`f32`, `f16`, `q8_0`).
    pub fn name(self) -> &'static str {
        match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::Q8_0 => "q8_0",
        }
    }

    /// The row storage type the attention kernels read.
    pub fn row_type(self) -> KvRowType {
        match self {
            KvDtype::F32 => KvRowType::F32,
            KvDtype::F16 => KvRowType::F16,
            KvDtype::Q8_0 => KvRowType::Q8_0,
        }
    }
}

impl fmt::Display for KvDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KvDtype {
    type Err = Error;

    /// Parses `f32`, `f16` or `q8_0` (case-insensitive); errors with
    /// [`Error::UnknownKvDtype`] otherwise.
    fn from_str(s: &str) -> Result<KvDtype, Error> {
        KvDtype::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownKvDtype {
                name: s.chars().take(32).collect(),
                supported: &KvDtype::NAMES,
            })
    }
}

/// Shape of a paged block pool ([`KvCache::paged`](super::KvCache::paged)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvConfig {
    /// Positions per block (default [`DEFAULT_BLOCK_SIZE`]).
    pub block_size: usize,
    /// Blocks in the pool (size it with [`KvCache::bytes_per_block`](super::KvCache::bytes_per_block)).
    pub n_blocks: usize,
    /// Element type of the rows (default f16).
    pub dtype: KvDtype,
}

impl KvConfig {
    /// `n_blocks` blocks of [`DEFAULT_BLOCK_SIZE`] positions of `dtype`.
    pub fn new(n_blocks: usize, dtype: KvDtype) -> KvConfig {
        KvConfig {
            block_size: DEFAULT_BLOCK_SIZE,
            n_blocks,
            dtype,
        }
    }
}
