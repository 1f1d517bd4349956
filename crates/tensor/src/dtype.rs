//! Element types of model tensors, numbered as ggml numbers them.
//!
//! A block-quantized type stores `block_len` consecutive values of a row in `block_bytes`
//! bytes; a row's length must be a multiple of `block_len`. Plain types have `block_len == 1`.
//! The numbering is the on-disk `ggml_type` id of GGUF files (ggml.h), so it must never change.

use std::fmt;

/// A tensor element type. Discriminants are ggml's type ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum DType {
    /// IEEE 754 binary32.
    F32 = 0,
    /// IEEE 754 binary16.
    F16 = 1,
    /// 32 values: f16 scale `d`, 16 bytes of 4-bit quants; `x = d * (q - 8)`.
    Q4_0 = 2,
    /// 32 values: f16 `d`, f16 `m`, 16 bytes of 4-bit quants; `x = d * q + m`.
    Q4_1 = 3,
    /// 32 values: f16 `d`, 32 high bits, 16 bytes of low nibbles; `x = d * (q - 16)`.
    Q5_0 = 6,
    /// 32 values: f16 `d`, f16 `m`, 32 high bits, 16 bytes of low nibbles; `x = d * q + m`.
    Q5_1 = 7,
    /// 32 values: f16 `d`, 32 signed bytes; `x = d * q`.
    Q8_0 = 8,
    /// 32 values: f16 `d`, f16 `s = d * sum(q)`, 32 signed bytes (activation format).
    Q8_1 = 9,
    /// 256-value super-block, 16 sub-blocks of 16 with 4-bit scales and mins, 2-bit quants.
    Q2K = 10,
    /// 256-value super-block, 6-bit scales, 3-bit quants (2 low bits + 1 high bit).
    Q3K = 11,
    /// 256-value super-block, 8 sub-blocks of 32 with 6-bit scales and mins, 4-bit quants.
    Q4K = 12,
    /// 256-value super-block, like Q4_K with a fifth bit per value.
    Q5K = 13,
    /// 256-value super-block, 16 sub-blocks of 16 with 8-bit scales, 6-bit quants.
    Q6K = 14,
    /// 256-value super-block, f32 scale, 8-bit quants and 16 block sums (activation format).
    Q8K = 15,
    /// 8-bit signed integer.
    I8 = 24,
    /// 16-bit signed integer.
    I16 = 25,
    /// 32-bit signed integer.
    I32 = 26,
    /// 64-bit signed integer.
    I64 = 27,
    /// IEEE 754 binary64.
    F64 = 28,
    /// bfloat16: the upper half of a binary32.
    BF16 = 30,
}

/// Every type, in id order.
pub const ALL_DTYPES: [DType; 20] = [
    DType::F32,
    DType::F16,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q8_0,
    DType::Q8_1,
    DType::Q2K,
    DType::Q3K,
    DType::Q4K,
    DType::Q5K,
    DType::Q6K,
    DType::Q8K,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::F64,
    DType::BF16,
];

/// Values per super-block of the K-quant family.
pub const QK_K: usize = 256;

impl DType {
    /// The type with ggml id `id`, or `None` for ids skiff does not know
    /// (including the removed Q4_2/Q4_3 ids 4 and 5, and the i-quants).
    pub fn from_ggml_id(id: u32) -> Option<DType> {
        ALL_DTYPES.iter().copied().find(|t| *t as u32 == id)
    }

    /// The ggml type id written in GGUF files.
    pub fn ggml_id(self) -> u32 {
        self as u32
    }

    /// Values per block (1 for plain types).
    pub fn block_len(self) -> usize {
        use DType::*;
        match self {
            F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 => 32,
            Q2K | Q3K | Q4K | Q5K | Q6K | Q8K => QK_K,
        }
    }

    /// Bytes per block (the element size for plain types).
    pub fn block_bytes(self) -> usize {
        use DType::*;
        match self {
            F32 | I32 => 4,
            F16 | BF16 | I16 => 2,
            F64 | I64 => 8,
            I8 => 1,
            Q4_0 => 2 + 16,
            Q4_1 => 4 + 16,
            Q5_0 => 2 + 4 + 16,
            Q5_1 => 4 + 4 + 16,
            Q8_0 => 2 + 32,
            Q8_1 => 4 + 32,
            Q2K => QK_K / 16 + QK_K / 4 + 2 + 2,
            Q3K => QK_K / 8 + QK_K / 4 + 12 + 2,
            Q4K => 2 + 2 + 12 + QK_K / 2,
            Q5K => 2 + 2 + 12 + QK_K / 8 + QK_K / 2,
            Q6K => QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,
            Q8K => 4 + QK_K + QK_K / 16 * 2,
        }
    }

    /// True for the block-quantized types.
    pub fn is_quantized(self) -> bool {
        self.block_len() > 1
    }

    /// Bytes needed for `n_values` values, or `None` when `n_values` is not a whole number of
    /// blocks or the size overflows `u64`.
    pub fn bytes_for(self, n_values: u64) -> Option<u64> {
        let block_len = self.block_len() as u64;
        if !n_values.is_multiple_of(block_len) {
            return None;
        }
        (n_values / block_len).checked_mul(self.block_bytes() as u64)
    }

    /// The lower-case name ggml and the `gguf` Python package use (`q4_k`, `bf16`, …).
    pub fn name(self) -> &'static str {
        use DType::*;
        match self {
            F32 => "f32",
            F16 => "f16",
            BF16 => "bf16",
            F64 => "f64",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            Q4_0 => "q4_0",
            Q4_1 => "q4_1",
            Q5_0 => "q5_0",
            Q5_1 => "q5_1",
            Q8_0 => "q8_0",
            Q8_1 => "q8_1",
            Q2K => "q2_k",
            Q3K => "q3_k",
            Q4K => "q4_k",
            Q5K => "q5_k",
            Q6K => "q6_k",
            Q8K => "q8_k",
        }
    }

    /// Parses a name as printed by [`DType::name`], case-insensitively.
    pub fn from_name(name: &str) -> Option<DType> {
        let lower = name.to_ascii_lowercase();
        ALL_DTYPES.iter().copied().find(|t| t.name() == lower)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block sizes equal ggml's `GGML_QUANT_SIZES` table (gguf-py constants.py).
    #[test]
    fn block_sizes_match_ggml() {
        let want: &[(DType, usize, usize)] = &[
            (DType::F32, 1, 4),
            (DType::F16, 1, 2),
            (DType::Q4_0, 32, 18),
            (DType::Q4_1, 32, 20),
            (DType::Q5_0, 32, 22),
            (DType::Q5_1, 32, 24),
            (DType::Q8_0, 32, 34),
            (DType::Q8_1, 32, 36),
            (DType::Q2K, 256, 84),
            (DType::Q3K, 256, 110),
            (DType::Q4K, 256, 144),
            (DType::Q5K, 256, 176),
            (DType::Q6K, 256, 210),
            (DType::Q8K, 256, 292),
            (DType::BF16, 1, 2),
        ];
        for &(t, len, bytes) in want {
            assert_eq!((t.block_len(), t.block_bytes()), (len, bytes), "{t}");
        }
    }

    /// Ids round-trip and unknown ids are rejected.
    #[test]
    fn ids_round_trip() {
        for t in ALL_DTYPES {
            assert_eq!(DType::from_ggml_id(t.ggml_id()), Some(t));
            assert_eq!(DType::from_name(t.name()), Some(t));
        }
        for bad in [4, 5, 16, 29, 31, 39, u32::MAX] {
            assert_eq!(DType::from_ggml_id(bad), None, "id {bad}");
        }
    }

    /// Sizes of partial blocks and overflowing counts are refused.
    #[test]
    fn bytes_for_checks_blocks_and_overflow() {
        assert_eq!(DType::Q4_0.bytes_for(64), Some(36));
        assert_eq!(DType::Q4_0.bytes_for(33), None);
        assert_eq!(DType::F32.bytes_for(u64::MAX), None);
    }
}
