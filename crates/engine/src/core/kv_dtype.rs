//! [`KvDtype`], the element type of cached keys and values. Mirrors contract C1's
//! `skiff_models::kv::KvDtype` (same variants and spellings) until the paged cache lands;
//! then this module becomes a re-export of it.

/// Element type of cached keys and values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvDtype {
    /// 32-bit floats.
    F32,
    /// 16-bit floats (the default, like llama.cpp).
    #[default]
    F16,
    /// 8-bit blocks of 32 values with an f16 scale.
    Q8_0,
}

impl KvDtype {
    /// Bytes per cached value, on average.
    pub(crate) fn bytes_per_value(self) -> f64 {
        match self {
            KvDtype::F32 => 4.0,
            KvDtype::F16 => 2.0,
            KvDtype::Q8_0 => 34.0 / 32.0,
        }
    }
}

impl std::fmt::Display for KvDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::Q8_0 => "q8_0",
        })
    }
}

impl std::str::FromStr for KvDtype {
    type Err = String;

    /// Parses `f32`, `f16` or `q8_0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(KvDtype::F32),
            "f16" => Ok(KvDtype::F16),
            "q8_0" => Ok(KvDtype::Q8_0),
            other => Err(format!(
                "unknown KV dtype {other:?}: expected f32, f16 or q8_0"
            )),
        }
    }
}
