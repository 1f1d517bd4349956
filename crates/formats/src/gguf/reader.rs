//! The GGUF reader: [`parse_gguf`] turns the bytes of a whole file (usually its mmap) into a
//! validated [`GgufFile`], without copying tensor data.
//!
//! Every count is checked against the bytes left before anything is allocated for it (each
//! metadata entry needs at least 13 bytes, each tensor info 32, each array element at least
//! its type's minimum size), so a tiny file that claims 2^62 tensors fails at once. After
//! parsing, every tensor is known to be aligned, inside the file, and disjoint from the others.

use std::collections::HashSet;

use skiff_tensor::DType;

use super::cursor::Cursor;
use super::{GGUF_MAGIC, MetaValue};
use crate::error::{Error, Result};
use crate::spec::TensorInfo;

/// Alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest `general.alignment` accepted (1 MiB).
pub const MAX_ALIGNMENT: u64 = 1 << 20;
/// Longest metadata string (16 MiB).
pub const MAX_STRING_LEN: u64 = 16 << 20;
/// Longest metadata key or tensor name.
pub const MAX_TENSOR_NAME_LEN: u64 = 4096;
/// Deepest array nesting: an array may hold arrays, whose elements must be scalars.
pub const MAX_ARRAY_NESTING: u32 = 2;
/// Most dimensions a tensor may have.
pub const MAX_DIMS: u32 = 4;
/// Most elements one metadata array may have (the largest vocabularies hold ~262k tokens).
pub const MAX_ARRAY_LEN: u64 = 1 << 23;

/// Smallest metadata entry: empty key (8), type (4), one-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest tensor info: empty name (8), n_dims (4), one dim (8), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;
/// Key of the alignment value.
const ALIGNMENT_KEY: &str = "general.alignment";

/// A parsed GGUF file: header, metadata in file order, and validated tensor infos.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufFile {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata entries in file order; keys are unique.
    pub metadata: Vec<(String, MetaValue)>,
    /// Tensor infos in file order, with absolute offsets (`shard` is 0).
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the data section (a multiple of `alignment`).
    pub data_offset: u64,
    /// `general.alignment`, or [`DEFAULT_ALIGNMENT`].
    pub alignment: u64,
}

impl GgufFile {
    /// The value of metadata key `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Parses a whole GGUF file held in memory. Tensor bytes are not copied: each
/// [`TensorInfo::offset`] indexes `bytes`.
pub fn parse_gguf(bytes: &[u8]) -> Result<GgufFile> {
    let mut cur = Cursor::new(bytes);
    let version = read_header(&mut cur)?;
    let n_tensors = cur.u64(&|| "header n_tensors".into())?;
    let n_kv = cur.u64(&|| "header n_kv".into())?;
    check_count("n_kv", n_kv, cur.remaining() as u64 / MIN_KV_BYTES)?;
    check_count(
        "n_tensors",
        n_tensors,
        cur.remaining() as u64 / MIN_TENSOR_INFO_BYTES,
    )?;

    let metadata = read_metadata(&mut cur, n_kv)?;
    let alignment = alignment_of(&metadata)?;
    check_count(
        "n_tensors",
        n_tensors,
        cur.remaining() as u64 / MIN_TENSOR_INFO_BYTES,
    )?;
    let mut tensors = read_tensor_infos(&mut cur, n_tensors)?;

    let data_offset = align_up(cur.pos() as u64, alignment)
        .ok_or_else(|| Error::truncated("data section offset", u64::MAX, bytes.len() as u64))?;
    place_tensors(&mut tensors, data_offset, alignment, bytes.len() as u64)?;
    Ok(GgufFile {
        version,
        metadata,
        tensors,
        data_offset,
        alignment,
    })
}

fn read_header(cur: &mut Cursor<'_>) -> Result<u32> {
    let magic = cur.u32(&|| "GGUF magic".into())?;
    if magic != GGUF_MAGIC {
        return Err(Error::BadMagic { found: magic });
    }
    let version = cur.u32(&|| "GGUF version".into())?;
    if !(2..=3).contains(&version) {
        return Err(Error::UnsupportedVersion { version });
    }
    Ok(version)
}

fn check_count(what: &str, count: u64, max: u64) -> Result<()> {
    if count > max {
        return Err(Error::CountTooLarge {
            what: what.to_string(),
            count,
            max,
        });
    }
    Ok(())
}

fn read_metadata(cur: &mut Cursor<'_>, n_kv: u64) -> Result<Vec<(String, MetaValue)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n_kv.min(1024) as usize);
    for i in 0..n_kv {
        let key = cur.string(MAX_TENSOR_NAME_LEN, &|| format!("metadata key #{i}"))?;
        if !seen.insert(key) {
            return Err(Error::DuplicateKey {
                key: key.to_string(),
            });
        }
        let type_id = cur.u32(&|| format!("value type of metadata key {key}"))?;
        let value = read_value(cur, type_id, key, 0)?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Smallest encoding of a value of GGUF type `type_id`, or `None` for unknown types.
fn min_value_bytes(type_id: u32) -> Option<u64> {
    Some(match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 4 + 8,
        _ => return None,
    })
}

fn read_value(cur: &mut Cursor<'_>, type_id: u32, key: &str, depth: u32) -> Result<MetaValue> {
    let what = || format!("value of metadata key {key}");
    Ok(match type_id {
        0 => MetaValue::U8(cur.u8(&what)?),
        1 => MetaValue::I8(cur.u8(&what)? as i8),
        2 => MetaValue::U16(cur.u16(&what)?),
        3 => MetaValue::I16(cur.u16(&what)? as i16),
        4 => MetaValue::U32(cur.u32(&what)?),
        5 => MetaValue::I32(cur.u32(&what)? as i32),
        6 => MetaValue::F32(f32::from_bits(cur.u32(&what)?)),
        7 => match cur.u8(&what)? {
            0 => MetaValue::Bool(false),
            1 => MetaValue::Bool(true),
            b => {
                return Err(Error::WrongType {
                    key: key.into(),
                    expected: "BOOL 0 or 1",
                    found: format!("byte {b}"),
                });
            }
        },
        8 => MetaValue::String(cur.string(MAX_STRING_LEN, &what)?.to_string()),
        9 => read_array(cur, key, depth + 1)?,
        10 => MetaValue::U64(cur.u64(&what)?),
        11 => MetaValue::I64(cur.u64(&what)? as i64),
        12 => MetaValue::F64(f64::from_bits(cur.u64(&what)?)),
        _ => {
            return Err(Error::BadValueType {
                key: key.to_string(),
                type_id,
            });
        }
    })
}

fn read_array(cur: &mut Cursor<'_>, key: &str, depth: u32) -> Result<MetaValue> {
    if depth > MAX_ARRAY_NESTING {
        return Err(Error::NestingTooDeep {
            key: key.to_string(),
            max: MAX_ARRAY_NESTING,
        });
    }
    let elem_type = cur.u32(&|| format!("array type of metadata key {key}"))?;
    let min_bytes = min_value_bytes(elem_type).ok_or_else(|| Error::BadValueType {
        key: key.to_string(),
        type_id: elem_type,
    })?;
    if elem_type == 9 && depth >= MAX_ARRAY_NESTING {
        return Err(Error::NestingTooDeep {
            key: key.to_string(),
            max: MAX_ARRAY_NESTING,
        });
    }
    let count = cur.u64(&|| format!("array length of metadata key {key}"))?;
    let max = (cur.remaining() as u64 / min_bytes).min(MAX_ARRAY_LEN);
    check_count(&format!("array of metadata key {key}"), count, max)?;
    let mut items = Vec::with_capacity(count as usize);
    for _ in 0..count {
        items.push(read_value(cur, elem_type, key, depth)?);
    }
    Ok(MetaValue::Array(items))
}

fn alignment_of(metadata: &[(String, MetaValue)]) -> Result<u64> {
    let Some((_, value)) = metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let MetaValue::U32(a) = *value else {
        return Err(Error::BadAlignment {
            value: value.describe(),
            reason: "must be stored as UINT32",
        });
    };
    let a = u64::from(a);
    if !a.is_power_of_two() {
        return Err(Error::BadAlignment {
            value: a.to_string(),
            reason: "must be a power of two",
        });
    }
    if a > MAX_ALIGNMENT {
        return Err(Error::BadAlignment {
            value: a.to_string(),
            reason: "must be at most 1 MiB",
        });
    }
    Ok(a)
}

fn read_tensor_infos(cur: &mut Cursor<'_>, n_tensors: u64) -> Result<Vec<TensorInfo>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n_tensors.min(4096) as usize);
    for i in 0..n_tensors {
        let info = read_tensor_info(cur, i)?;
        if !seen.insert(info.name.clone()) {
            return Err(Error::DuplicateTensor { name: info.name });
        }
        out.push(info);
    }
    Ok(out)
}

/// One tensor info; `offset` is still relative to the data section.
fn read_tensor_info(cur: &mut Cursor<'_>, index: u64) -> Result<TensorInfo> {
    let name = cur
        .string(MAX_TENSOR_NAME_LEN, &|| format!("name of tensor #{index}"))?
        .to_string();
    let what = || format!("info of tensor {name}");
    let n_dims = cur.u32(&what)?;
    if !(1..=MAX_DIMS).contains(&n_dims) {
        let reason = format!("n_dims = {n_dims}, must be 1..={MAX_DIMS}");
        return Err(Error::BadDims {
            name,
            dims: Vec::new(),
            reason,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(cur.u64(&what)?);
    }
    let type_id = cur.u32(&what)?;
    let offset = cur.u64(&what)?;
    let dtype = DType::from_ggml_id(type_id).ok_or_else(|| Error::BadTensorType {
        name: name.clone(),
        type_id,
    })?;
    let n_bytes = tensor_bytes(&name, &dims, dtype)?;
    Ok(TensorInfo {
        name,
        dims,
        dtype,
        shard: 0,
        offset,
        n_bytes,
    })
}

/// Checks dims (none zero, row a whole number of blocks) and returns the byte size.
pub(crate) fn tensor_bytes(name: &str, dims: &[u64], dtype: DType) -> Result<u64> {
    if dims.is_empty() || dims.len() > MAX_DIMS as usize {
        let reason = format!("{} dims, must be 1..={MAX_DIMS}", dims.len());
        return Err(Error::BadDims {
            name: name.into(),
            dims: dims.to_vec(),
            reason,
        });
    }
    if dims.contains(&0) {
        return Err(Error::BadDims {
            name: name.into(),
            dims: dims.to_vec(),
            reason: "a dimension is 0".into(),
        });
    }
    let block_len = dtype.block_len() as u64;
    if !dims[0].is_multiple_of(block_len) {
        return Err(Error::BadBlockShape {
            name: name.into(),
            ne0: dims[0],
            block_len,
        });
    }
    let n_values = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::SizeOverflow { name: name.into() })?;
    dtype
        .bytes_for(n_values)
        .ok_or_else(|| Error::SizeOverflow { name: name.into() })
}

fn align_up(pos: u64, alignment: u64) -> Option<u64> {
    pos.checked_next_multiple_of(alignment)
}

/// Turns relative offsets into absolute ones and checks alignment, bounds and overlap.
fn place_tensors(
    tensors: &mut [TensorInfo],
    data_offset: u64,
    alignment: u64,
    file_len: u64,
) -> Result<()> {
    for t in tensors.iter_mut() {
        if !t.offset.is_multiple_of(alignment) {
            return Err(Error::Misaligned {
                name: t.name.clone(),
                offset: t.offset,
                alignment,
            });
        }
        let out_of_bounds = || Error::TensorOutOfBounds {
            name: t.name.clone(),
            offset: data_offset.saturating_add(t.offset),
            size: t.n_bytes,
            file_len,
        };
        let start = data_offset
            .checked_add(t.offset)
            .ok_or_else(out_of_bounds)?;
        let end = start.checked_add(t.n_bytes).ok_or_else(out_of_bounds)?;
        if end > file_len {
            return Err(out_of_bounds());
        }
        t.offset = start;
    }
    check_disjoint(tensors)
}

/// Fails when any two tensors share a byte.
pub(crate) fn check_disjoint(tensors: &[TensorInfo]) -> Result<()> {
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| (t.shard, t.offset));
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        // Both ends were checked to lie inside the file, so the sum cannot overflow.
        if a.shard == b.shard && a.offset + a.n_bytes > b.offset {
            return Err(Error::TensorsOverlap {
                a: a.name.clone(),
                b: b.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
