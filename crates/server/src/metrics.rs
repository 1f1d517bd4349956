//! Server metrics and their Prometheus text rendering (exposition format 0.0.4), by hand:
//! a few counters and two histograms do not need a metrics framework.
//!
//! Series (all prefixed `skiff_`): requests by endpoint and status, prompt and completion
//! tokens, aborted requests, time-to-first-token and inter-token latency histograms, and per
//! model the engine's queue depth, running sequences, KV blocks used/free/cached, prefix
//! cache hit ratio, preemptions and steps; plus an estimated hardware cost from
//! `--price-per-hour` (uptime × price) and that cost per million completion tokens.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use skiff_engine::EngineStats;

/// Latency bucket upper bounds, in seconds.
const TTFT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const ITL_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cumulative latency histogram.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the +Inf bucket (not cumulative; summed on render).
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Every server-level counter. Shared by all requests; cheap atomic updates.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    price_per_hour: f64,
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    aborted: AtomicU64,
    /// Time from request arrival to its first generated token.
    pub ttft: Histogram,
    /// Time between consecutive tokens of one choice.
    pub itl: Histogram,
}

impl Metrics {
    /// Fresh counters; `price_per_hour` (any currency unit) drives the cost estimate.
    pub fn new(price_per_hour: f64) -> Metrics {
        Metrics {
            started: Instant::now(),
            price_per_hour,
            requests: Mutex::new(BTreeMap::new()),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
        }
    }

    /// Counts one answered request.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        let mut map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((endpoint, status)).or_insert(0) += 1;
    }

    /// Adds a finished request's token counts.
    pub fn tokens(&self, prompt: usize, completion: usize) {
        self.prompt_tokens
            .fetch_add(prompt as u64, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion as u64, Ordering::Relaxed);
    }

    /// Counts a request ended early by its client.
    pub fn aborted(&self) {
        self.aborted.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text for the server counters plus each model's engine snapshot.
    pub fn render(&self, engines: &[(String, EngineStats)]) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP skiff_requests_total HTTP requests answered, by endpoint and status.\n",
        );
        out.push_str("# TYPE skiff_requests_total counter\n");
        for ((endpoint, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "skiff_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        let completion = self.completion_tokens.load(Ordering::Relaxed);
        counter(
            &mut out,
            "skiff_prompt_tokens_total",
            "Prompt tokens of finished requests.",
            self.prompt_tokens.load(Ordering::Relaxed) as f64,
        );
        counter(
            &mut out,
            "skiff_completion_tokens_total",
            "Generated tokens of finished requests.",
            completion as f64,
        );
        counter(
            &mut out,
            "skiff_aborted_requests_total",
            "Requests whose client went away before the end.",
            self.aborted.load(Ordering::Relaxed) as f64,
        );
        self.ttft.render(
            &mut out,
            "skiff_time_to_first_token_seconds",
            "Time from request arrival to the first generated token.",
        );
        self.itl.render(
            &mut out,
            "skiff_inter_token_latency_seconds",
            "Time between consecutive tokens of one choice.",
        );
        let hours = self.started.elapsed().as_secs_f64() / 3600.0;
        let cost = hours * self.price_per_hour;
        counter(
            &mut out,
            "skiff_estimated_cost_total",
            "Hardware cost so far: uptime times --price-per-hour.",
            cost,
        );
        let per_million = if completion == 0 {
            0.0
        } else {
            cost / completion as f64 * 1e6
        };
        gauge(
            &mut out,
            "skiff_estimated_cost_per_million_completion_tokens",
            "Estimated cost divided by completion tokens, per million.",
            per_million,
        );
        render_engines(&mut out, engines);
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// One series per model for each engine figure.
fn render_engines(out: &mut String, engines: &[(String, EngineStats)]) {
    type Get = fn(&EngineStats) -> f64;
    let series: &[(&str, &str, &str, Get)] = &[
        (
            "skiff_queue_depth",
            "gauge",
            "Requests waiting for admission.",
            |s| s.waiting as f64,
        ),
        (
            "skiff_running_sequences",
            "gauge",
            "Sequences in the running batch.",
            |s| s.running as f64,
        ),
        (
            "skiff_kv_blocks_total",
            "gauge",
            "Blocks in the KV pool.",
            |s| s.kv_blocks_total as f64,
        ),
        (
            "skiff_kv_blocks_used",
            "gauge",
            "KV blocks held by sequences.",
            |s| s.kv_blocks_used as f64,
        ),
        (
            "skiff_kv_blocks_free",
            "gauge",
            "KV blocks held by no sequence (cached ones included).",
            |s| s.kv_blocks_total.saturating_sub(s.kv_blocks_used) as f64,
        ),
        (
            "skiff_kv_blocks_cached",
            "gauge",
            "Free KV blocks kept for the prefix cache.",
            |s| s.kv_blocks_cached as f64,
        ),
        (
            "skiff_prefix_cache_hit_ratio",
            "gauge",
            "Prompt tokens served from the prefix cache over prompt tokens looked up.",
            |s| {
                if s.prefix_lookup_tokens_total == 0 {
                    0.0
                } else {
                    s.prefix_hit_tokens_total as f64 / s.prefix_lookup_tokens_total as f64
                }
            },
        ),
        (
            "skiff_prefix_cache_hit_tokens_total",
            "counter",
            "Prompt tokens served from the prefix cache.",
            |s| s.prefix_hit_tokens_total as f64,
        ),
        (
            "skiff_preemptions_total",
            "counter",
            "Sequences preempted for KV space.",
            |s| s.preempted_total as f64,
        ),
        (
            "skiff_engine_steps_total",
            "counter",
            "Batched forward passes.",
            |s| s.steps_total as f64,
        ),
        (
            "skiff_engine_prompt_tokens_computed_total",
            "counter",
            "Prompt tokens run through the model (recomputation included).",
            |s| s.prompt_tokens_total as f64,
        ),
        (
            "skiff_engine_generated_tokens_total",
            "counter",
            "Tokens sampled by the engine.",
            |s| s.generated_tokens_total as f64,
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (model, stats) in engines {
            let _ = writeln!(
                out,
                "{name}{{model=\"{}\"}} {}",
                escape_label(model),
                get(stats)
            );
        }
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Histograms are cumulative with a +Inf bucket; every series has HELP and TYPE lines.
    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new(3.6);
        m.request("chat", 200);
        m.request("chat", 200);
        m.request("chat", 400);
        m.tokens(10, 4);
        m.ttft.observe(Duration::from_millis(30));
        m.ttft.observe(Duration::from_secs(100));
        let stats = EngineStats {
            kv_blocks_total: 10,
            kv_blocks_used: 3,
            prefix_hit_tokens_total: 1,
            prefix_lookup_tokens_total: 4,
            ..EngineStats::default()
        };
        let text = m.render(&[("a\"b".into(), stats)]);
        assert!(text.contains("skiff_requests_total{endpoint=\"chat\",status=\"200\"} 2\n"));
        assert!(text.contains("skiff_completion_tokens_total 4\n"));
        assert!(text.contains("skiff_time_to_first_token_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(text.contains("skiff_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("skiff_time_to_first_token_seconds_bucket{le=\"60\"} 1\n"));
        assert!(text.contains("skiff_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("skiff_time_to_first_token_seconds_count 2\n"));
        assert!(text.contains("skiff_kv_blocks_free{model=\"a\\\"b\"} 7\n"));
        assert!(text.contains("skiff_prefix_cache_hit_ratio{model=\"a\\\"b\"} 0.25\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{name} has no TYPE line"
            );
        }
    }
}
