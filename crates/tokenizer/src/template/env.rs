//! The sandboxed minijinja environment and the helpers `transformers` templates expect.
//!
//! This is the one place a template environment is built; [`super::ChatTemplate`] is its
//! only caller.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, ErrorKind};

use super::json::{DumpOptions, dumps};
use super::{RenderLimits, SYSTEM_CLOCK, clock};
use crate::error::Error;

/// Attached as the source of a minijinja error raised by `raise_exception`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Raised(String);

/// Attached as the source of a minijinja error raised when a helper refuses work over budget.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct OverBudget(String);

/// Builds the environment: HF whitespace rules, no loader, limits, and helpers.
pub(super) fn environment(
    limits: &RenderLimits,
    now: Arc<AtomicI64>,
) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(false)
        .build()
        .map_err(|e| Error::TemplateSyntax {
            message: e.to_string(),
        })?;
    env.set_syntax(syntax);
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(limits.max_recursion);
    // minijinja's builtin globals are range, dict, namespace and debug; templates use the
    // first three (jinja2 has them too). `debug()` would dump the whole render state.
    env.remove_global("debug");
    env.set_unknown_method_callback(super::pymethods::unknown_method);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, minijinja::Error> {
            Err(
                minijinja::Error::new(ErrorKind::InvalidOperation, message.clone())
                    .with_source(Raised(message)),
            )
        },
    );
    env.add_function(
        "strftime_now",
        move |fmt: String| -> Result<Value, minijinja::Error> {
            let fixed = now.load(Ordering::Relaxed);
            let secs = if fixed == SYSTEM_CLOCK {
                system_now()
            } else {
                fixed
            };
            clock::strftime(&fmt, secs).map(Value::from).map_err(|d| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: unsupported directive {d}"),
                )
            })
        },
    );
    let max_range = limits.max_range;
    env.add_function(
        "range",
        move |lower: i64, upper: Option<i64>, step: Option<i64>| {
            range(lower, upper, step, max_range)
        },
    );
    env.add_filter("tojson", tojson);
    Ok(env)
}

fn system_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Python's `range`, refusing more than `max` elements.
fn range(
    lower: i64,
    upper: Option<i64>,
    step: Option<i64>,
    max: usize,
) -> Result<Value, minijinja::Error> {
    let (start, stop) = match upper {
        Some(upper) => (lower, upper),
        None => (0, lower),
    };
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "range() arg 3 must not be zero",
        ));
    }
    let span = if step > 0 {
        i128::from(stop) - i128::from(start)
    } else {
        i128::from(start) - i128::from(stop)
    };
    let len = if span <= 0 {
        0
    } else {
        (span + i128::from(step.unsigned_abs()) - 1) / i128::from(step.unsigned_abs())
    };
    if len > max as i128 {
        let reason = format!("range() of {len} elements exceeds the limit of {max}");
        return Err(
            minijinja::Error::new(ErrorKind::InvalidOperation, reason.clone())
                .with_source(OverBudget(reason)),
        );
    }
    let items: Vec<Value> = (0..len as i64)
        .map(|i| Value::from(start + i * step))
        .collect();
    Ok(Value::from(items))
}

/// `tojson` as `transformers` defines it: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let mut opts = DumpOptions::python_default();
    if let Some(ascii) = kwargs.get::<Option<bool>>("ensure_ascii")? {
        opts.ensure_ascii = ascii;
    }
    let indent: Option<Value> = kwargs.get("indent")?;
    if let Some(indent) = indent.filter(|v| !v.is_none()) {
        opts.indent = Some(match indent.as_str() {
            Some(s) => s.to_string(),
            None => {
                " ".repeat(usize::try_from(indent.as_i64().unwrap_or(0).clamp(0, 64)).unwrap_or(0))
            }
        });
        opts.item_sep = ",".into();
    }
    let separators: Option<Value> = kwargs.get("separators")?;
    if let Some(seps) = separators.filter(|v| !v.is_none()) {
        let parts: Vec<Value> = seps.try_iter()?.collect();
        let (Some(item), Some(key), 2) = (
            parts.first().and_then(Value::as_str),
            parts.get(1).and_then(Value::as_str),
            parts.len(),
        ) else {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be a pair of strings",
            ));
        };
        opts.item_sep = item.to_string();
        opts.key_sep = key.to_string();
    }
    if let Some(sort) = kwargs.get::<Option<bool>>("sort_keys")? {
        opts.sort_keys = sort;
    }
    kwargs.assert_all_used()?;
    dumps(&value, &opts).map(Value::from_safe_string)
}

/// Replaces `{% generation %}` / `{% endgeneration %}` (transformers' assistant-mask
/// markers, unknown to minijinja) by an equivalent always-true block, keeping any `-`
/// whitespace control.
pub(super) fn strip_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = rest.find("{%") {
        out.push_str(&rest[..open]);
        let tag = &rest[open..];
        let Some(close) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..close];
        let (lead, body) = inner.strip_prefix('-').map_or(("", inner), |b| ("-", b));
        let (body, trail) = body.strip_suffix('-').map_or((body, ""), |b| (b, "-"));
        match body.trim() {
            "generation" => out.push_str(&format!("{{%{lead} if true {trail}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{lead} endif {trail}%}}")),
            _ => out.push_str(&tag[..close + 2]),
        }
        rest = &tag[close + 2..];
    }
    out.push_str(rest);
    out
}

/// minijinja's message with its line information.
pub(super) fn describe(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "{} (line {line})",
            e.detail()
                .map_or_else(|| e.kind().to_string(), str::to_string)
        ),
        None => e.to_string(),
    }
}

/// Maps a render failure to our error: a raised exception, a budget hit, or other.
pub(super) fn classify(
    e: &minijinja::Error,
    output_overflowed: bool,
    limits: &RenderLimits,
) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(raised) = s.downcast_ref::<Raised>() {
            return Error::TemplateRaised {
                message: raised.0.clone(),
            };
        }
        if let Some(over) = s.downcast_ref::<OverBudget>() {
            return Error::TemplateBudget {
                reason: over.0.clone(),
            };
        }
        source = s.source();
    }
    if output_overflowed {
        return Error::TemplateBudget {
            reason: format!("output exceeds {} bytes", limits.max_output_bytes),
        };
    }
    match e.kind() {
        ErrorKind::OutOfFuel => Error::TemplateBudget {
            reason: format!("ran out of fuel ({} units)", limits.fuel),
        },
        _ if e.detail() == Some("recursion limit exceeded") => Error::TemplateBudget {
            reason: format!("recursion deeper than {}", limits.max_recursion),
        },
        _ => Error::TemplateRender {
            message: describe(e),
        },
    }
}

/// An in-memory writer that refuses to grow past a cap.
pub(super) struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl CappedWriter {
    pub(super) fn new(cap: usize) -> CappedWriter {
        CappedWriter {
            buf: Vec::new(),
            cap,
            overflowed: false,
        }
    }

    pub(super) fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.overflowed = true;
            return Err(io::Error::other("rendered output exceeds its cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generation tags become a no-op block with the same whitespace control.
    #[test]
    fn generation_tags_are_neutralised() {
        assert_eq!(
            strip_generation_tags("a{% generation %}b{%- endgeneration -%}c{% if x %}"),
            "a{% if true %}b{%- endif -%}c{% if x %}"
        );
        assert_eq!(strip_generation_tags("{% unterminated"), "{% unterminated");
    }

    /// `range` follows Python for positive and negative steps and refuses oversize ranges.
    #[test]
    fn range_matches_python() {
        let collect = |v: Value| {
            v.try_iter()
                .map(|it| it.map(|x| x.as_i64().unwrap_or(-99)).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(
            collect(range(3, None, None, 10).expect("ok")),
            vec![0, 1, 2]
        );
        assert_eq!(
            collect(range(5, Some(0), Some(-2), 10).expect("ok")),
            vec![5, 3, 1]
        );
        assert_eq!(
            collect(range(2, Some(1), None, 10).expect("ok")),
            Vec::<i64>::new()
        );
        assert!(range(0, Some(11), None, 10).is_err());
        assert!(range(0, Some(1), Some(0), 10).is_err());
    }
}
