//! Rows of `skiff bench` results: llama-bench's markdown table and its JSON field names.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::{Args, ModelInfo};

/// One test: `pp{n_prompt}` when `n_gen` is 0, `tg{n_gen}` when `n_prompt` is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Test {
    /// Prompt tokens processed.
    pub n_prompt: usize,
    /// Tokens generated one at a time.
    pub n_gen: usize,
}

impl Test {
    /// llama-bench's test name: `pp512`, `tg128` or `pp512+tg128`.
    pub fn name(&self) -> String {
        match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, n) => format!("tg{n}"),
            (p, n) => format!("pp{p}+tg{n}"),
        }
    }

    /// Tokens each run processes.
    pub fn n_tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }
}

/// Bandwidth-roofline figures attached to a tg row by `--roofline`.
#[derive(Clone, Debug, PartialEq)]
pub struct Roofline {
    /// Measured read bandwidth at the row's thread count, bytes/s.
    pub bandwidth: f64,
    /// Bytes read per decoded token (weights plus mean KV).
    pub bytes_per_token: f64,
}

impl Roofline {
    /// The tokens/s the bandwidth allows.
    pub fn max_ts(&self) -> f64 {
        self.bandwidth / self.bytes_per_token
    }
}

/// One result row: a test at a thread count with its timed samples.
#[derive(Clone, Debug)]
pub struct Row {
    model_filename: String,
    model_type: String,
    model_size: u64,
    model_n_params: u64,
    n_batch: usize,
    kv_type: &'static str,
    /// Threads the test ran with.
    pub n_threads: usize,
    isa: &'static str,
    /// The test.
    pub test: Test,
    test_time: String,
    /// Wall time of each timed repetition.
    pub samples_ns: Vec<u64>,
    /// Set by `--roofline` on tg rows.
    pub roofline: Option<Roofline>,
}

impl Row {
    /// A row for `test` at `n_threads` threads with `samples_ns` (one per repetition).
    pub fn new(
        info: &ModelInfo,
        args: &Args,
        test: &Test,
        n_threads: usize,
        isa: &'static str,
        samples_ns: Vec<u64>,
    ) -> Row {
        Row {
            model_filename: info.filename.clone(),
            model_type: info.model_type.clone(),
            model_size: info.size,
            model_n_params: info.n_params,
            n_batch: args.batch_size,
            kv_type: args.kv_type.name(),
            n_threads,
            isa,
            test: *test,
            test_time: rfc3339_now(),
            samples_ns,
            roofline: None,
        }
    }

    /// Tokens/s of each sample.
    pub fn samples_ts(&self) -> Vec<f64> {
        let n = self.test.n_tokens() as f64;
        self.samples_ns
            .iter()
            .map(|&ns| n * 1e9 / (ns.max(1) as f64))
            .collect()
    }

    /// Mean tokens/s.
    pub fn avg_ts(&self) -> f64 {
        mean(&self.samples_ts())
    }

    /// Sample standard deviation of tokens/s (0 for one sample).
    pub fn stddev_ts(&self) -> f64 {
        stddev(&self.samples_ts())
    }

    fn samples_ns_f64(&self) -> Vec<f64> {
        self.samples_ns.iter().map(|&ns| ns as f64).collect()
    }

    /// The row as llama-bench's JSON object (its field names; fields that describe GPUs,
    /// NUMA masks or offload policies are left out), plus `isa` and, with `--roofline`,
    /// `roofline_bw_gbs`, `bytes_per_token`, `roofline_ts` and `roofline_frac`.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        let mut put = |k: &str, v: Value| {
            o.insert(k.to_string(), v);
        };
        put(
            "build_commit",
            json!(concat!("skiff-", env!("CARGO_PKG_VERSION"))),
        );
        put("build_number", json!(0));
        put("cpu_info", json!(cpu_info()));
        put("gpu_info", json!(""));
        put("backends", json!("CPU"));
        put("isa", json!(self.isa));
        put("model_filename", json!(self.model_filename));
        put("model_type", json!(self.model_type));
        put("model_size", json!(self.model_size));
        put("model_n_params", json!(self.model_n_params));
        put("n_batch", json!(self.n_batch));
        put("n_ubatch", json!(self.n_batch));
        put("n_threads", json!(self.n_threads));
        put("type_k", json!(self.kv_type));
        put("type_v", json!(self.kv_type));
        put("n_gpu_layers", json!(0));
        put("n_prompt", json!(self.test.n_prompt));
        put("n_gen", json!(self.test.n_gen));
        put("n_depth", json!(0));
        put("test_time", json!(self.test_time));
        put("avg_ns", json!(mean(&self.samples_ns_f64()).round() as u64));
        put(
            "stddev_ns",
            json!(stddev(&self.samples_ns_f64()).round() as u64),
        );
        put("avg_ts", json!(self.avg_ts()));
        put("stddev_ts", json!(self.stddev_ts()));
        put("samples_ns", json!(self.samples_ns));
        put("samples_ts", json!(self.samples_ts()));
        if let Some(r) = &self.roofline {
            put("roofline_bw_gbs", json!(r.bandwidth / 1e9));
            put("bytes_per_token", json!(r.bytes_per_token.round() as u64));
            put("roofline_ts", json!(r.max_ts()));
            put("roofline_frac", json!(self.avg_ts() / r.max_ts()));
        }
        Value::Object(o)
    }
}

/// The JSON array llama-bench's `-o json` prints.
pub fn json_rows(rows: &[Row]) -> anyhow::Result<String> {
    let array = Value::Array(rows.iter().map(Row::to_json).collect());
    Ok(serde_json::to_string_pretty(&array)?)
}

/// Prints the header of the markdown table (llama-bench's default columns).
pub fn print_table_header() {
    println!(
        "| {:<30} | {:>10} | {:>10} | {:<10} | {:>7} | {:>13} | {:>20} |",
        "model", "size", "params", "backend", "threads", "test", "t/s"
    );
    println!(
        "| {:-<30} | {:->9}: | {:->9}: | {:-<10} | {:->6}: | {:->12}: | {:->19}: |",
        "", "", "", "", "", "", ""
    );
}

/// Prints one markdown row (as soon as it is measured, like llama-bench).
pub fn print_table_row(row: &Row) {
    println!(
        "| {:<30} | {:>10} | {:>10} | {:<10} | {:>7} | {:>13} | {:>20} |",
        row.model_type,
        format_size(row.model_size),
        format_params(row.model_n_params),
        format!("CPU {}", row.isa),
        row.n_threads,
        row.test.name(),
        format!("{:.2} ± {:.2}", row.avg_ts(), row.stddev_ts()),
    );
}

/// `123.45 MiB` / `1.23 GiB`, as llama-bench prints sizes.
pub fn format_size(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1 << 30 {
        format!("{:.2} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    }
}

/// `134.52 M` / `1.54 B`, as llama-bench prints parameter counts.
pub fn format_params(n: u64) -> String {
    if n < 1_000_000_000 {
        format!("{:.2} M", n as f64 / 1e6)
    } else {
        format!("{:.2} B", n as f64 / 1e9)
    }
}

/// `135M` / `1.5B`: the size class in a model description.
pub fn format_params_short(n: u64) -> String {
    if n < 1_000_000_000 {
        format!("{}M", (n as f64 / 1e6).round())
    } else {
        format!("{:.1}B", n as f64 / 1e9)
    }
}

/// Arithmetic mean (0 for none).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation, n − 1 in the denominator (0 for fewer than two values).
pub fn stddev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

/// The CPU's model name from `/proc/cpuinfo` (empty where unavailable).
fn cpu_info() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_default()
}

/// The current UTC time as RFC 3339 (`2026-11-29T07:35:00Z`), as llama-bench's `test_time`.
pub fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_llama_bench_formulas() {
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(stddev(&[5.0]), 0.0);
        assert!((mean(&[1.0, 2.0, 3.0, 4.0]) - 2.5).abs() < 1e-12);
        // Sample (n - 1) standard deviation of 1, 2, 3, 4 is sqrt(5/3).
        assert!((stddev(&[1.0, 2.0, 3.0, 4.0]) - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_528_500), "2026-12-29T07:15:00Z");
    }

    #[test]
    fn sizes_and_names() {
        assert_eq!(format_size(100 << 20), "100.00 MiB");
        assert_eq!(format_size(3 << 30), "3.00 GiB");
        assert_eq!(format_params(134_515_008), "134.52 M");
        assert_eq!(format_params(1_543_714_304), "1.54 B");
        assert_eq!(format_params_short(134_515_008), "135M");
        assert_eq!(format_params_short(7_615_616_512), "7.6B");
        assert_eq!(
            Test {
                n_prompt: 512,
                n_gen: 0
            }
            .name(),
            "pp512"
        );
        assert_eq!(
            Test {
                n_prompt: 0,
                n_gen: 128
            }
            .name(),
            "tg128"
        );
        assert_eq!(
            Test {
                n_prompt: 4,
                n_gen: 2
            }
            .name(),
            "pp4+tg2"
        );
    }
}
