//! Typed reads of request fields out of a parsed JSON object, each failing with a 400 that
//! names the parameter, the value's JSON type and what was expected.
//!
//! Requests are parsed into a `serde_json::Value` first and read field by field, rather than
//! through `#[derive(Deserialize)]`, so that every wrong type becomes an [`ApiError`] whose
//! `param` is the field (`"temperature"`, `"messages[2].content"`), as OpenAI answers. A
//! JSON `null` reads as absent, like OpenAI's optional fields. Unknown fields are never
//! read, so they are ignored.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The body's top-level object.
pub type Object = Map<String, Value>;

/// Parses a request body: valid UTF-8, valid JSON, a top-level object.
pub fn parse_body(bytes: &[u8]) -> Result<Object, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad_body(format!(
            "the request body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::bad_body(format!(
            "the request body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::bad_body(format!(
            "the request body must be a JSON object, not {}",
            type_name(&other)
        ))),
    }
}

/// JSON type name, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `param` had the wrong type.
pub fn wrong_type(param: &str, value: &Value, expected: &str) -> ApiError {
    ApiError::invalid(
        param,
        format!("{param} must be {expected}, not {}", type_name(value)),
    )
}

/// The field, with `null` read as absent.
pub fn get<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// An optional string.
pub fn opt_str<'a>(obj: &'a Object, key: &str) -> Result<Option<&'a str>, ApiError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(key, v, "a string")),
    }
}

/// An optional boolean.
pub fn opt_bool(obj: &Object, key: &str) -> Result<Option<bool>, ApiError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong_type(key, v, "a boolean")),
    }
}

/// An optional finite number, as f32.
pub fn opt_f32(obj: &Object, key: &str) -> Result<Option<f32>, ApiError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v @ Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x.abs() <= f64::from(f32::MAX) => Ok(Some(x as f32)),
            _ => Err(wrong_type(key, v, "a finite number")),
        },
        Some(v) => Err(wrong_type(key, v, "a number")),
    }
}

/// An optional integer in `[min, max]`.
pub fn opt_int(obj: &Object, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    let Some(v) = get(obj, key) else {
        return Ok(None);
    };
    let n = match v {
        // `2.0` is accepted as 2, as Python clients may send floats.
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    let Some(n) = n else {
        return Err(wrong_type(key, v, "an integer"));
    };
    if n < min || n > max {
        return Err(ApiError::invalid(
            key,
            format!("{key} = {n} is invalid: must be between {min} and {max}"),
        ));
    }
    Ok(Some(n))
}

/// An optional non-negative count in `[min, max]`, as usize.
pub fn opt_count(
    obj: &Object,
    key: &str,
    min: usize,
    max: usize,
) -> Result<Option<usize>, ApiError> {
    let (lo, hi) = (min as i64, i64::try_from(max).unwrap_or(i64::MAX));
    Ok(opt_int(obj, key, lo, hi)?.map(|n| n as usize))
}

/// A number (not necessarily an integer) within `[lo, hi]`.
pub fn opt_f32_in(obj: &Object, key: &str, lo: f32, hi: f32) -> Result<Option<f32>, ApiError> {
    match opt_f32(obj, key)? {
        Some(x) if !(lo..=hi).contains(&x) => Err(ApiError::invalid(
            key,
            format!("{key} = {x} is invalid: must be between {lo} and {hi}"),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(json: &str) -> Object {
        parse_body(json.as_bytes()).expect("a test object")
    }

    fn param(err: ApiError) -> String {
        err.param.unwrap_or_default()
    }

    /// Body-level failures carry no param and say what was wrong.
    #[test]
    fn body_errors() {
        let err = parse_body(b"{\"a\":\xff}").expect_err("bad utf-8");
        assert!(err.message.contains("UTF-8"), "{}", err.message);
        assert!(err.param.is_none());
        let err = parse_body(b"{\"a\":").expect_err("truncated");
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        let err = parse_body(b"[1]").expect_err("array");
        assert!(err.message.contains("an array"), "{}", err.message);
    }

    /// Wrong types and out-of-range values name the field.
    #[test]
    fn typed_reads_name_the_field() {
        let o = obj(r#"{"t":"hot","n":2.5,"m":99,"b":1,"s":3,"z":null,"f":1e300}"#);
        assert_eq!(param(opt_f32(&o, "t").expect_err("string")), "t");
        assert_eq!(param(opt_int(&o, "n", 1, 16).expect_err("fraction")), "n");
        let err = opt_int(&o, "m", 1, 16).expect_err("range");
        assert!(err.message.contains("between 1 and 16"), "{}", err.message);
        assert_eq!(param(opt_bool(&o, "b").expect_err("number")), "b");
        assert_eq!(param(opt_str(&o, "s").expect_err("number")), "s");
        assert_eq!(param(opt_f32(&o, "f").expect_err("huge")), "f");
        assert_eq!(opt_f32(&o, "z").expect("null is absent"), None);
        assert_eq!(opt_int(&o, "missing", 0, 1).expect("absent"), None);
        assert_eq!(
            opt_int(&obj(r#"{"n":2.0}"#), "n", 1, 16).expect("2.0"),
            Some(2)
        );
    }
}
