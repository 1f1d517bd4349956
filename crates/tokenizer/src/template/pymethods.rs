//! Python methods on template values: `minijinja_contrib::pycompat` plus the string methods
//! it lacks (`rsplit`, `removeprefix`, `removesuffix`), which chat templates use to cut
//! reasoning blocks and tool-call markup out of message content.

use minijinja::value::{Kwargs, Value, ValueKind, from_args};
use minijinja::{Error, ErrorKind, State};

/// The environment's unknown-method callback: our additions first, then pycompat's.
pub(super) fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let (ValueKind::String, Some(s)) = (value.kind(), value.as_str()) {
        match method {
            "rsplit" => return rsplit(state, s, args),
            "removeprefix" => {
                let (prefix,): (&str,) = from_args(args)?;
                return Ok(Value::from(s.strip_prefix(prefix).unwrap_or(s)));
            }
            "removesuffix" => {
                let (suffix,): (&str,) = from_args(args)?;
                return Ok(Value::from(s.strip_suffix(suffix).unwrap_or(s)));
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Python's whitespace for `str.split()`/`str.rsplit()` without a separator.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.rsplit(sep=None, maxsplit=-1)`, positional or keyword arguments.
fn rsplit(state: &State, s: &str, args: &[Value]) -> Result<Value, Error> {
    let (sep, maxsplit, kwargs): (Option<Value>, Option<i64>, Kwargs) = from_args(args)?;
    let sep = match kwargs.get::<Option<Value>>("sep")? {
        Some(v) => Some(v),
        None => sep,
    };
    let maxsplit = kwargs
        .get::<Option<i64>>("maxsplit")?
        .or(maxsplit)
        .unwrap_or(-1);
    kwargs.assert_all_used()?;
    state.consume_fuel((s.len() / 64) as u64)?;
    let limit = usize::try_from(maxsplit).ok();
    let parts = match sep.filter(|v| !v.is_none()) {
        Some(sep) => {
            let sep = sep.as_str().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "rsplit: sep must be a string or None",
                )
            })?;
            if sep.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "rsplit: empty separator",
                ));
            }
            let mut parts: Vec<&str> = match limit {
                Some(n) => s.rsplitn(n.saturating_add(1), sep).collect(),
                None => s.rsplit(sep).collect(),
            };
            parts.reverse();
            parts
        }
        None => rsplit_whitespace(s, limit),
    };
    Ok(parts.into_iter().map(Value::from).collect())
}

/// `str.rsplit(None, maxsplit)`: words from the right; once `maxsplit` words are taken, the
/// rest (with its trailing whitespace removed, its leading whitespace kept) is one part.
fn rsplit_whitespace(s: &str, limit: Option<usize>) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = s.trim_end_matches(is_py_space);
    while !rest.is_empty() {
        if limit.is_some_and(|n| parts.len() == n) {
            parts.push(rest);
            break;
        }
        let start = rest.rfind(is_py_space).map_or(0, |i| {
            i + rest[i..].chars().next().map_or(1, char::len_utf8)
        });
        parts.push(&rest[start..]);
        rest = rest[..start].trim_end_matches(is_py_space);
    }
    parts.reverse();
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whitespace rsplit agrees with Python on runs, limits and edge whitespace.
    #[test]
    fn rsplit_whitespace_like_python() {
        assert_eq!(
            rsplit_whitespace("  a b\t\n c  ", None),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            rsplit_whitespace("  a b\t\n c  ", Some(1)),
            vec!["  a b", "c"]
        );
        assert_eq!(rsplit_whitespace("  a b  c  ", Some(0)), vec!["  a b  c"]);
        assert_eq!(
            rsplit_whitespace(" \u{3000}é 世界", Some(5)),
            vec!["é", "世界"]
        );
        assert_eq!(rsplit_whitespace("   ", None), Vec::<&str>::new());
        assert_eq!(rsplit_whitespace("", Some(2)), Vec::<&str>::new());
    }
}
