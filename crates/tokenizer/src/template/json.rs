//! JSON on both sides of a template: request data in, Python-compatible `tojson` out.
//!
//! In: [`to_value`] turns `serde_json` values into template values, keeping object key
//! order (Python dicts do, and tool schemas are shown to the model in the order sent).
//!
//! Out: [`dumps`] reproduces Python's `json.dumps(x, ensure_ascii=…, indent=…,
//! separators=…, sort_keys=…)`, which is what `transformers` installs as `tojson`.
//! minijinja's own `tojson` HTML-escapes `<>&'` and rejects unknown kwargs, which would
//! change the tool-schema text a model was trained on.

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// A string-keyed map that iterates in insertion order.
#[derive(Debug)]
pub(crate) struct OrderedMap(pub Vec<(String, Value)>);

impl Object for OrderedMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_enumerator(|this| Box::new(this.0.iter().map(|(k, _)| Value::from(k.as_str()))))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Converts a `serde_json` value, preserving object key order.
pub(crate) fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from_object(OrderedMap(
            map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
        )),
    }
}

/// Options of Python's `json.dumps` that templates use.
#[derive(Clone, Debug)]
pub(crate) struct DumpOptions {
    /// Escape non-ASCII as `\uXXXX`.
    pub ensure_ascii: bool,
    /// Indentation string; `None` is single-line.
    pub indent: Option<String>,
    /// Item separator (default `", "`, or `","` when indenting).
    pub item_sep: String,
    /// Key separator (default `": "`).
    pub key_sep: String,
    /// Sort object keys.
    pub sort_keys: bool,
}

/// Serializes `v` as Python's `json.dumps` would, or fails like it on values JSON cannot hold.
pub(crate) fn dumps(v: &Value, opts: &DumpOptions) -> Result<String, Error> {
    let mut out = String::new();
    write_value(&mut out, v, opts, 0)?;
    Ok(out)
}

/// Deepest nesting `dumps` follows; Python's default recursion limit is of this order too.
const MAX_DEPTH: usize = 512;

fn write_value(out: &mut String, v: &Value, opts: &DumpOptions, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deeply",
        ));
    }
    match v.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => write_number(out, v),
        ValueKind::String => write_string(out, v.as_str().unwrap_or_default(), opts.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            write_container(out, ('[', ']'), items.len(), opts, depth, |out, i| {
                write_value(out, &items[i], opts, depth + 1)
            })?;
        }
        ValueKind::Map => {
            let mut entries: Vec<(String, Value)> = Vec::new();
            for key in v.try_iter()? {
                let value = v.get_item(&key)?;
                entries.push((key_string(&key)?, value));
            }
            if opts.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(out, ('{', '}'), entries.len(), opts, depth, |out, i| {
                write_string(out, &entries[i].0, opts.ensure_ascii);
                out.push_str(&opts.key_sep);
                write_value(out, &entries[i].1, opts, depth + 1)
            })?;
        }
        kind => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: a value of kind {kind} is not JSON serializable"),
            ));
        }
    }
    Ok(())
}

fn write_container(
    out: &mut String,
    (open, close): (char, char),
    n: usize,
    opts: &DumpOptions,
    depth: usize,
    mut item: impl FnMut(&mut String, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if n == 0 {
        out.push(close);
        return Ok(());
    }
    for i in 0..n {
        if i > 0 {
            out.push_str(&opts.item_sep);
        }
        if let Some(indent) = &opts.indent {
            out.push('\n');
            out.push_str(&indent.repeat(depth + 1));
        }
        item(out, i)?;
    }
    if let Some(indent) = &opts.indent {
        out.push('\n');
        out.push_str(&indent.repeat(depth));
    }
    out.push(close);
    Ok(())
}

/// Python converts str, int, float, bool and None keys; anything else is a TypeError.
fn key_string(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_string()),
        ValueKind::Number | ValueKind::Bool | ValueKind::None => {
            let mut s = String::new();
            write_value(&mut s, key, &DumpOptions::python_default(), 0)?;
            Ok(s)
        }
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: keys must be str, int, float, bool or None, not {kind}"),
        )),
    }
}

fn write_number(out: &mut String, v: &Value) {
    if v.is_integer() {
        out.push_str(&v.to_string());
        return;
    }
    let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
    out.push_str(&python_float_repr(f));
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation when the
/// decimal exponent is below -4 or at least 16, and `NaN`/`Infinity` as `json.dumps` writes them.
pub(crate) fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddde±x`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp output always contains 'e'");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        return format!(
            "{sign}{first}{frac}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    let n = digits.len() as i32;
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        format!("{sign}0.{zeros}{digits}")
    } else if exp + 1 >= n {
        let zeros = "0".repeat((exp + 1 - n) as usize);
        format!("{sign}{digits}{zeros}.0")
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{sign}{int}.{frac}")
    }
}

/// Writes a JSON string literal with Python's escaping rules.
fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl DumpOptions {
    /// `json.dumps` defaults as `transformers` calls it (`ensure_ascii=False`).
    pub(crate) fn python_default() -> DumpOptions {
        DumpOptions {
            ensure_ascii: false,
            indent: None,
            item_sep: ", ".into(),
            key_sep: ": ".into(),
            sort_keys: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(v: serde_json::Value, opts: &DumpOptions) -> String {
        dumps(&to_value(&v), opts).expect("serializable")
    }

    /// Floats print as Python's repr does, including the switch to exponent notation.
    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.125, "123456789.125"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.0, "0.0"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(f), want, "{f}");
        }
    }

    /// Default separators, key order, unicode kept verbatim, and no HTML escaping.
    #[test]
    fn dumps_defaults_like_python() {
        let v = serde_json::json!({"b": [1, 2.5, null, true], "a": "<é\"\n\u{1}>"});
        assert_eq!(
            dump(v, &DumpOptions::python_default()),
            r#"{"b": [1, 2.5, null, true], "a": "<é\"\n\u0001>"}"#
        );
    }

    /// `indent`, `sort_keys`, `ensure_ascii` (with surrogate pairs) and empty containers.
    #[test]
    fn dumps_options_like_python() {
        let opts = DumpOptions {
            ensure_ascii: true,
            indent: Some("  ".into()),
            item_sep: ",".into(),
            key_sep: ": ".into(),
            sort_keys: true,
        };
        let v = serde_json::json!({"z": {}, "a": ["é😀", []]});
        assert_eq!(
            dump(v, &opts),
            "{\n  \"a\": [\n    \"\\u00e9\\ud83d\\ude00\",\n    []\n  ],\n  \"z\": {}\n}"
        );
    }
}
