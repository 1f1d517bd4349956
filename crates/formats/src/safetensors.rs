//! The safetensors header parser: [`parse_safetensors`] validates the JSON header of a
//! whole file held in memory (its mmap) without copying tensor data.
//!
//! Layout: `n: u64` little-endian, `n` bytes of UTF-8 JSON starting with `{`, then the data.
//! The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
//! (offsets relative to the data), plus an optional `"__metadata__"` of string pairs.
//! Checks (RELIABILITY S1, S2): header at most 100 MB and inside the file; spans ordered,
//! contiguous from 0, non-overlapping, ending exactly at EOF; each span equal to
//! `shape product × dtype size` (computed with checked arithmetic); dtypes known.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

/// Largest header accepted (100 MB, as the `safetensors` crate).
pub const MAX_HEADER_LEN: u64 = 100_000_000;
/// Most dimensions a safetensors tensor may have here.
pub const MAX_SAFETENSORS_DIMS: usize = 8;

/// One tensor of a safetensors file, as written (row-major shape, outermost first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetensorsEntry {
    /// The name in the header.
    pub name: String,
    /// The dtype as written (`F32`, `BF16`, …).
    pub dtype: String,
    /// Row-major shape (the last axis is contiguous).
    pub shape: Vec<u64>,
    /// Absolute offset of the first byte in the file.
    pub offset: u64,
    /// Byte length.
    pub n_bytes: u64,
}

/// A validated safetensors header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetensorsHeader {
    /// Tensors in file order (by offset).
    pub tensors: Vec<SafetensorsEntry>,
    /// `__metadata__`, if present.
    pub metadata: BTreeMap<String, String>,
    /// Absolute offset of the data section (`8 + n`).
    pub data_offset: u64,
}

/// Bytes per element of a safetensors dtype, or `None` for unknown ones.
pub fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

fn bad(reason: impl Into<String>) -> Error {
    Error::BadHeader {
        what: "safetensors header".into(),
        reason: reason.into(),
    }
}

/// Parses and validates the header of a whole safetensors file.
pub fn parse_safetensors(bytes: &[u8]) -> Result<SafetensorsHeader> {
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::truncated("safetensors header length", 8, bytes.len() as u64))?;
    let n = u64::from_le_bytes(len_bytes);
    if n > MAX_HEADER_LEN {
        return Err(Error::HeaderTooLarge {
            len: n,
            max: MAX_HEADER_LEN,
        });
    }
    let have = bytes.len() as u64 - 8;
    if n > have {
        return Err(Error::truncated("safetensors header", n, have));
    }
    let header = &bytes[8..8 + n as usize];
    let text = std::str::from_utf8(header).map_err(|_| bad("not UTF-8"))?;
    if !text.starts_with('{') {
        return Err(bad("does not start with '{'"));
    }
    let json: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Value::Object(map) = json else {
        return Err(bad("not a JSON object"));
    };
    let data_offset = 8 + n;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::with_capacity(map.len());
    for (name, value) in map {
        if name == "__metadata__" {
            metadata = string_map(value)?;
            continue;
        }
        tensors.push(entry(name, &value, data_offset)?);
    }
    tensors.sort_by_key(|t| t.offset);
    check_spans(&tensors, data_offset, bytes.len() as u64)?;
    Ok(SafetensorsHeader {
        tensors,
        metadata,
        data_offset,
    })
}

fn string_map(value: Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(map) = value else {
        return Err(bad("__metadata__ is not an object"));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(bad(format!("__metadata__ value of {k} is not a string"))),
        })
        .collect()
}

fn u64s(v: Option<&Value>, name: &str, field: &str) -> Result<Vec<u64>> {
    let items = v
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("tensor {name}: {field} missing or not an array")))?;
    items
        .iter()
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| bad(format!("tensor {name}: {field} holds {x}, not a u64")))
        })
        .collect()
}

fn entry(name: String, value: &Value, data_offset: u64) -> Result<SafetensorsEntry> {
    let dtype = value
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("tensor {name}: dtype missing or not a string")))?;
    let size =
        dtype_size(dtype).ok_or_else(|| bad(format!("tensor {name}: unknown dtype {dtype:?}")))?;
    if value
        .get("shape")
        .and_then(Value::as_array)
        .is_some_and(|s| s.len() > MAX_SAFETENSORS_DIMS)
    {
        return Err(bad(format!(
            "tensor {name}: more than {MAX_SAFETENSORS_DIMS} dims"
        )));
    }
    let shape = u64s(value.get("shape"), &name, "shape")?;
    let offsets = u64s(value.get("data_offsets"), &name, "data_offsets")?;
    let &[begin, end] = offsets.as_slice() else {
        return Err(bad(format!(
            "tensor {name}: data_offsets must hold two numbers"
        )));
    };
    if begin > end {
        return Err(bad(format!(
            "tensor {name}: data_offsets [{begin}, {end}] out of order"
        )));
    }
    let n_bytes = shape
        .iter()
        .try_fold(size, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::SizeOverflow { name: name.clone() })?;
    if n_bytes != end - begin {
        let reason = format!(
            "tensor {name}: shape {shape:?} × {dtype} is {n_bytes} bytes, span is {}",
            end - begin
        );
        return Err(bad(reason));
    }
    let offset = data_offset
        .checked_add(begin)
        .ok_or_else(|| Error::SizeOverflow { name: name.clone() })?;
    Ok(SafetensorsEntry {
        name,
        dtype: dtype.to_string(),
        shape,
        offset,
        n_bytes,
    })
}

/// Spans (sorted by offset) must tile the data section exactly: no holes, no overlap.
fn check_spans(tensors: &[SafetensorsEntry], data_offset: u64, file_len: u64) -> Result<()> {
    let mut expected = data_offset;
    for t in tensors {
        if t.offset != expected {
            let what = if t.offset < expected {
                "overlaps the previous tensor"
            } else {
                "leaves a hole before it"
            };
            return Err(bad(format!(
                "tensor {} at data offset {} {what}",
                t.name,
                t.offset - data_offset
            )));
        }
        expected = t
            .offset
            .checked_add(t.n_bytes)
            .ok_or_else(|| Error::SizeOverflow {
                name: t.name.clone(),
            })?;
        if expected > file_len {
            let (name, offset, size) = (t.name.clone(), t.offset, t.n_bytes);
            return Err(Error::TensorOutOfBounds {
                name,
                offset,
                size,
                file_len,
            });
        }
    }
    if expected != file_len {
        return Err(bad(format!(
            "data ends at byte {expected}, the file at {file_len}"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "safetensors_tests.rs"]
mod tests;
