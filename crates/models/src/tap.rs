//! Named taps on intermediate activations, for comparing a forward pass layer by layer
//! with a reference (llama.cpp's `cb(cur, "attn_norm", il)`).
//!
//! `tap(&x, "attn_norm", Some(layer_idx))` does nothing unless the environment variable
//! `SKIFF_TAP` is set when the first tap runs. Then every tap prints one line to stderr:
//! name, layer, length, sum, sum of absolute values and the first values. `SKIFF_TAP=1`
//! prints every tap; any other value prints only the taps whose name it contains
//! (`SKIFF_TAP=attn_out`).

use std::sync::OnceLock;

/// The tap filter, read once: `None` when taps are off.
fn filter() -> &'static Option<String> {
    static FILTER: OnceLock<Option<String>> = OnceLock::new();
    FILTER.get_or_init(|| std::env::var("SKIFF_TAP").ok())
}

/// Reports the activation `x` under `name` (and `layer_idx`, for per-layer taps) when
/// `SKIFF_TAP` asks for it; otherwise returns at once.
pub fn tap(x: &[f32], name: &str, layer_idx: Option<usize>) {
    let Some(filter) = filter() else { return };
    if filter != "1" && !name.contains(filter.as_str()) {
        return;
    }
    eprintln!("{}", describe(x, name, layer_idx));
}

/// The line a tap prints.
fn describe(x: &[f32], name: &str, layer_idx: Option<usize>) -> String {
    let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
    let sum_abs: f64 = x.iter().map(|&v| f64::from(v).abs()).sum();
    let head: Vec<String> = x.iter().take(4).map(|v| format!("{v:.6}")).collect();
    let layer = layer_idx.map_or_else(|| "-".to_string(), |i| i.to_string());
    format!(
        "tap {name:<16} layer {layer:>3} n {:>8} sum {sum:>14.6} sum_abs {sum_abs:>14.6} first [{}]",
        x.len(),
        head.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tap line carries the name, the layer, the checksums and the first values.
    #[test]
    fn describe_reports_checksums() {
        let line = describe(&[1.0, -2.0, 3.0], "attn_norm", Some(4));
        assert!(line.contains("attn_norm"), "{line}");
        assert!(line.contains("layer   4"), "{line}");
        assert!(line.contains("sum       2.000000"), "{line}");
        assert!(line.contains("sum_abs       6.000000"), "{line}");
        assert!(line.contains("[1.000000, -2.000000, 3.000000]"), "{line}");
    }
}
