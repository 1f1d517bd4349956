//! Typed lookups in a metadata map, failing with [`Error::MissingKey`] or
//! [`Error::WrongType`] that name the key.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::gguf::MetaValue;

/// Metadata keyed by GGUF key.
pub(crate) type Meta = BTreeMap<String, MetaValue>;

fn wrong(key: &str, expected: &'static str, v: &MetaValue) -> Error {
    Error::WrongType {
        key: key.to_string(),
        expected,
        found: v.describe(),
    }
}

/// An optional non-negative integer that fits `usize`.
pub(crate) fn opt_usize(md: &Meta, key: &str) -> Result<Option<usize>> {
    md.get(key)
        .map(|v| {
            v.as_usize()
                .ok_or_else(|| wrong(key, "a non-negative integer", v))
        })
        .transpose()
}

/// A required non-negative integer that fits `usize`.
pub(crate) fn req_usize(md: &Meta, key: &str) -> Result<usize> {
    opt_usize(md, key)?.ok_or_else(|| Error::MissingKey {
        key: key.to_string(),
    })
}

/// An optional id that fits `u32`.
pub(crate) fn opt_u32(md: &Meta, key: &str) -> Result<Option<u32>> {
    md.get(key)
        .map(|v| {
            v.as_u32()
                .ok_or_else(|| wrong(key, "an integer fitting u32", v))
        })
        .transpose()
}

/// An optional number, as `f32`.
pub(crate) fn opt_f32(md: &Meta, key: &str) -> Result<Option<f32>> {
    md.get(key)
        .map(|v| v.as_f32().ok_or_else(|| wrong(key, "a number", v)))
        .transpose()
}

/// An optional boolean.
pub(crate) fn opt_bool(md: &Meta, key: &str) -> Result<Option<bool>> {
    md.get(key)
        .map(|v| v.as_bool().ok_or_else(|| wrong(key, "BOOL", v)))
        .transpose()
}

/// An optional string.
pub(crate) fn opt_str<'a>(md: &'a Meta, key: &str) -> Result<Option<&'a str>> {
    md.get(key)
        .map(|v| v.as_str().ok_or_else(|| wrong(key, "STRING", v)))
        .transpose()
}

/// An optional array.
pub(crate) fn opt_array<'a>(md: &'a Meta, key: &str) -> Result<Option<&'a [MetaValue]>> {
    md.get(key)
        .map(|v| v.as_array().ok_or_else(|| wrong(key, "ARRAY", v)))
        .transpose()
}
