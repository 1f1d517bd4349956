//! The streaming GGUF writer (version 3).
//!
//! Declare everything first — metadata with [`GgufWriter::add_meta`], tensors with
//! [`GgufWriter::add_tensor_info`] — then [`GgufWriter::begin`] writes the header, metadata and
//! tensor infos (offsets are known from the declared sizes), and the returned [`GgufStream`]
//! takes each tensor's bytes in declaration order. Only one tensor is ever held by the
//! caller, so a 7B model can be re-quantized in bounded memory. The writer refuses anything
//! [`parse_gguf`](super::parse_gguf) would refuse, so its output always reads back.

use std::collections::HashSet;
use std::io::Write;

use skiff_tensor::DType;

use super::reader::{
    DEFAULT_ALIGNMENT, MAX_ALIGNMENT, MAX_ARRAY_LEN, MAX_ARRAY_NESTING, MAX_STRING_LEN,
    MAX_TENSOR_NAME_LEN, tensor_bytes,
};
use super::{GGUF_MAGIC, MetaValue};
use crate::error::{Error, Result};

const ALIGNMENT_KEY: &str = "general.alignment";

/// A tensor declared to the writer.
#[derive(Clone, Debug)]
struct Declared {
    name: String,
    dims: Vec<u64>,
    dtype: DType,
    n_bytes: u64,
}

/// Collects metadata and tensor declarations; [`GgufWriter::begin`] starts the output.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    alignment: u64,
    metadata: Vec<(String, MetaValue)>,
    keys: HashSet<String>,
    tensors: Vec<Declared>,
    names: HashSet<String>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter::new()
    }
}

fn writer_err(reason: impl Into<String>) -> Error {
    Error::Writer {
        reason: reason.into(),
    }
}

impl GgufWriter {
    /// A writer for GGUF version 3 with the default alignment of 32 bytes.
    pub fn new() -> GgufWriter {
        GgufWriter {
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// A writer with `general.alignment = alignment` (a power of two, at most 1 MiB),
    /// recorded as the file's first metadata entry.
    pub fn with_alignment(alignment: u32) -> Result<GgufWriter> {
        let mut w = GgufWriter::new();
        w.add_meta(ALIGNMENT_KEY, MetaValue::U32(alignment))?;
        Ok(w)
    }

    /// Appends a metadata entry (file order is call order). Fails on a duplicate key, an
    /// over-long string, arrays nested deeper than the reader accepts, or mixed-type arrays.
    /// `general.alignment` must be a valid `U32` and sets the alignment.
    pub fn add_meta(&mut self, key: &str, value: MetaValue) -> Result<()> {
        if key.len() as u64 > MAX_TENSOR_NAME_LEN {
            return Err(Error::StringTooLong {
                what: "metadata key".into(),
                len: key.len() as u64,
                cap: MAX_TENSOR_NAME_LEN,
            });
        }
        if self.keys.contains(key) {
            return Err(Error::DuplicateKey {
                key: key.to_string(),
            });
        }
        check_value(key, &value, 0)?;
        if key == ALIGNMENT_KEY {
            self.alignment = checked_alignment(&value)?;
        }
        self.keys.insert(key.to_string());
        self.metadata.push((key.to_string(), value));
        Ok(())
    }

    /// Declares a tensor: `dims` in ggml order (`dims[0]` contiguous). Fails on a duplicate
    /// name, dims out of range, or a row that is not a whole number of `dtype` blocks.
    pub fn add_tensor_info(&mut self, name: &str, dims: &[u64], dtype: DType) -> Result<()> {
        if name.len() as u64 > MAX_TENSOR_NAME_LEN {
            return Err(Error::StringTooLong {
                what: "tensor name".into(),
                len: name.len() as u64,
                cap: MAX_TENSOR_NAME_LEN,
            });
        }
        if self.names.contains(name) {
            return Err(Error::DuplicateTensor {
                name: name.to_string(),
            });
        }
        let n_bytes = tensor_bytes(name, dims, dtype)?;
        self.names.insert(name.to_string());
        self.tensors.push(Declared {
            name: name.to_string(),
            dims: dims.to_vec(),
            dtype,
            n_bytes,
        });
        Ok(())
    }

    /// Writes the header, metadata and tensor infos to `out`, padded to the alignment, and
    /// returns the stream that takes the tensor data.
    pub fn begin<W: Write>(self, mut out: W) -> Result<GgufStream<W>> {
        let mut header = Vec::new();
        header.extend_from_slice(&GGUF_MAGIC.to_le_bytes());
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut header, key);
            header.extend_from_slice(&value.type_id().to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.dtype.ggml_id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset = offset
                .checked_add(t.n_bytes)
                .and_then(|o| o.checked_next_multiple_of(self.alignment))
                .ok_or_else(|| Error::SizeOverflow {
                    name: t.name.clone(),
                })?;
        }
        pad_vec(&mut header, self.alignment);
        out.write_all(&header).map_err(Error::Write)?;
        Ok(GgufStream {
            out,
            alignment: self.alignment,
            tensors: self.tensors,
            next: 0,
        })
    }
}

/// The data phase of a GGUF file: tensors' bytes, in declaration order.
#[derive(Debug)]
pub struct GgufStream<W: Write> {
    out: W,
    alignment: u64,
    tensors: Vec<Declared>,
    next: usize,
}

impl<W: Write> GgufStream<W> {
    /// Writes the bytes of tensor `name`, which must be the next declared tensor, with exactly
    /// its declared byte length; pads to the alignment after it.
    pub fn write_tensor_data(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let Some(want) = self.tensors.get(self.next) else {
            return Err(writer_err(format!(
                "tensor {name} written after all declared tensors"
            )));
        };
        if want.name != name {
            return Err(writer_err(format!(
                "tensor {name} written where {} comes next",
                want.name
            )));
        }
        if bytes.len() as u64 != want.n_bytes {
            return Err(writer_err(format!(
                "tensor {name}: {} bytes given, {} declared ({} {:?})",
                bytes.len(),
                want.n_bytes,
                want.dtype,
                want.dims
            )));
        }
        self.out.write_all(bytes).map_err(Error::Write)?;
        let pad = want.n_bytes.next_multiple_of(self.alignment) - want.n_bytes;
        self.out
            .write_all(&vec![0u8; pad as usize])
            .map_err(Error::Write)?;
        self.next += 1;
        Ok(())
    }

    /// Flushes and returns the inner writer; fails if a declared tensor was not written.
    pub fn finish(mut self) -> Result<W> {
        if let Some(missing) = self.tensors.get(self.next) {
            return Err(writer_err(format!(
                "finished with {} of {} tensors written; next is {}",
                self.next,
                self.tensors.len(),
                missing.name
            )));
        }
        self.out.flush().map_err(Error::Write)?;
        Ok(self.out)
    }
}

fn checked_alignment(value: &MetaValue) -> Result<u64> {
    let MetaValue::U32(a) = *value else {
        return Err(Error::BadAlignment {
            value: value.describe(),
            reason: "must be stored as UINT32",
        });
    };
    if !a.is_power_of_two() || u64::from(a) > MAX_ALIGNMENT {
        return Err(Error::BadAlignment {
            value: a.to_string(),
            reason: "must be a power of two, at most 1 MiB",
        });
    }
    Ok(a.into())
}

fn check_value(key: &str, value: &MetaValue, depth: u32) -> Result<()> {
    match value {
        MetaValue::String(s) if s.len() as u64 > MAX_STRING_LEN => Err(Error::StringTooLong {
            what: format!("value of {key}"),
            len: s.len() as u64,
            cap: MAX_STRING_LEN,
        }),
        MetaValue::Array(items) => {
            if depth + 1 > MAX_ARRAY_NESTING {
                return Err(Error::NestingTooDeep {
                    key: key.to_string(),
                    max: MAX_ARRAY_NESTING,
                });
            }
            if items.len() as u64 > MAX_ARRAY_LEN {
                let what = format!("array of metadata key {key}");
                return Err(Error::CountTooLarge {
                    what,
                    count: items.len() as u64,
                    max: MAX_ARRAY_LEN,
                });
            }
            if let Some(first) = items.first()
                && let Some(odd) = items.iter().find(|v| v.type_id() != first.type_id())
            {
                let expected = first.type_name();
                return Err(Error::WrongType {
                    key: key.to_string(),
                    expected,
                    found: odd.describe(),
                });
            }
            items
                .iter()
                .try_for_each(|v| check_value(key, v, depth + 1))
        }
        _ => Ok(()),
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, value: &MetaValue) {
    match value {
        MetaValue::U8(v) => buf.push(*v),
        MetaValue::I8(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Bool(v) => buf.push(u8::from(*v)),
        MetaValue::String(s) => put_str(buf, s),
        MetaValue::Array(items) => {
            // An empty array has no element to take a type from; UINT8 is as good as any.
            let elem_type = items.first().map_or(0, MetaValue::type_id);
            buf.extend_from_slice(&elem_type.to_le_bytes());
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|v| put_value(buf, v));
        }
        MetaValue::U64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F64(v) => buf.extend_from_slice(&v.to_le_bytes()),
    }
}

fn pad_vec(buf: &mut Vec<u8>, alignment: u64) {
    let len = (buf.len() as u64).next_multiple_of(alignment);
    buf.resize(len as usize, 0);
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
