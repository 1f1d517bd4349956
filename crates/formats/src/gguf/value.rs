//! Typed accessors on [`MetaValue`]: integers of any width convert wherever the value fits.

use super::MetaValue;

impl MetaValue {
    /// The GGUF value type id (0 = u8 … 12 = f64).
    pub fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::String(_) => 8,
            MetaValue::Array(_) => 9,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
        }
    }

    /// The type's name as the `gguf` Python package prints it (`UINT32`, `STRING`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "UINT8",
            MetaValue::I8(_) => "INT8",
            MetaValue::U16(_) => "UINT16",
            MetaValue::I16(_) => "INT16",
            MetaValue::U32(_) => "UINT32",
            MetaValue::I32(_) => "INT32",
            MetaValue::F32(_) => "FLOAT32",
            MetaValue::Bool(_) => "BOOL",
            MetaValue::String(_) => "STRING",
            MetaValue::Array(_) => "ARRAY",
            MetaValue::U64(_) => "UINT64",
            MetaValue::I64(_) => "INT64",
            MetaValue::F64(_) => "FLOAT64",
        }
    }

    /// Any integer as `i128`, the one width every GGUF integer fits in; `None` otherwise.
    fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// An integer of any width that is non-negative and fits `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// An integer of any width that fits `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_i128().and_then(|v| u32::try_from(v).ok())
    }

    /// An integer of any width that fits `usize`.
    pub fn as_usize(&self) -> Option<usize> {
        self.as_i128().and_then(|v| usize::try_from(v).ok())
    }

    /// An integer of any width that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// An integer of any width that fits `i32`.
    pub fn as_i32(&self) -> Option<i32> {
        self.as_i128().and_then(|v| i32::try_from(v).ok())
    }

    /// A float (`F32` or `F64`, the latter rounded) or an integer, as `f32`.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetaValue::F32(v) => Some(v),
            MetaValue::F64(v) => Some(v as f32),
            _ => self.as_i128().map(|v| v as f32),
        }
    }

    /// A float or an integer, as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    /// A `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// An `Array`'s elements.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(v) => Some(v),
            _ => None,
        }
    }

    /// A short description for error messages: the type and, for scalars, the value.
    pub fn describe(&self) -> String {
        match self {
            MetaValue::String(s) if s.len() <= 64 => format!("STRING {s:?}"),
            MetaValue::String(s) => format!("STRING of {} bytes", s.len()),
            MetaValue::Array(v) => format!("ARRAY of {} elements", v.len()),
            MetaValue::Bool(b) => format!("BOOL {b}"),
            MetaValue::F32(v) => format!("FLOAT32 {v}"),
            MetaValue::F64(v) => format!("FLOAT64 {v}"),
            other => format!(
                "{} {}",
                other.type_name(),
                other.as_i128().unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integers convert across widths exactly when the value fits the target.
    #[test]
    fn integer_widths_convert_when_they_fit() {
        assert_eq!(MetaValue::U8(7).as_u64(), Some(7));
        assert_eq!(MetaValue::I16(-1).as_u64(), None);
        assert_eq!(MetaValue::I64(-1).as_i32(), Some(-1));
        assert_eq!(MetaValue::U64(u64::MAX).as_u32(), None);
        assert_eq!(MetaValue::U64(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(MetaValue::I32(5).as_usize(), Some(5));
        assert_eq!(MetaValue::F32(1.0).as_u64(), None);
        assert_eq!(MetaValue::Bool(true).as_u64(), None);
    }

    /// Floats accept both widths and integers; other accessors are type-strict.
    #[test]
    fn floats_strings_arrays() {
        assert_eq!(MetaValue::F64(0.5).as_f32(), Some(0.5));
        assert_eq!(MetaValue::U32(3).as_f32(), Some(3.0));
        assert_eq!(MetaValue::String("x".into()).as_str(), Some("x"));
        assert_eq!(MetaValue::String("x".into()).as_f32(), None);
        let arr = MetaValue::Array(vec![MetaValue::U8(1)]);
        assert_eq!(arr.as_array().map(<[MetaValue]>::len), Some(1));
        assert_eq!(arr.as_str(), None);
        assert_eq!(MetaValue::Bool(false).as_bool(), Some(false));
        assert_eq!(arr.type_id(), 9);
        assert_eq!(MetaValue::U16(9).describe(), "UINT16 9");
    }
}
