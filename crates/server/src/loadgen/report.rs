//! The load test's figures: throughput, latency percentiles and errors, as a table for
//! people or one JSON object for scripts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::sse::{RequestError, Sample};

/// Everything measured in one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Concurrent clients.
    pub concurrency: usize,
    /// Wall time from the first request to the last response.
    pub elapsed: Duration,
    /// Successful requests.
    pub samples: Vec<Sample>,
    /// Failed requests.
    pub errors: Vec<RequestError>,
}

/// The figures derived from a [`Report`].
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Successful requests.
    pub requests: usize,
    /// Failed requests.
    pub errors: usize,
    /// Completion tokens over the wall time.
    pub output_tokens_per_s: f64,
    /// Successful requests over the wall time.
    pub requests_per_s: f64,
    /// Completion tokens in total.
    pub output_tokens: usize,
    /// Time to first token, median and 99th percentile.
    pub ttft_p50: Duration,
    /// See `ttft_p50`.
    pub ttft_p99: Duration,
    /// Gap between tokens of one stream, median and 99th percentile.
    pub itl_p50: Duration,
    /// See `itl_p50`.
    pub itl_p99: Duration,
    /// Mean gap between tokens of one stream (its inverse is the per-stream decode rate).
    pub itl_mean: Duration,
}

/// Nearest-rank percentile of `values` (sorted in place); zero when empty.
pub fn percentile(values: &mut [Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = (p / 100.0 * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

impl Report {
    /// Derives the figures.
    pub fn summary(&self) -> Summary {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let output_tokens: usize = self.samples.iter().map(|s| s.output_tokens).sum();
        let mut ttft: Vec<Duration> = self.samples.iter().filter_map(|s| s.ttft).collect();
        let mut itl: Vec<Duration> = self.samples.iter().flat_map(|s| s.gaps.clone()).collect();
        let itl_mean = if itl.is_empty() {
            Duration::ZERO
        } else {
            itl.iter().sum::<Duration>() / itl.len() as u32
        };
        Summary {
            itl_mean,
            requests: self.samples.len(),
            errors: self.errors.len(),
            output_tokens_per_s: output_tokens as f64 / secs,
            requests_per_s: self.samples.len() as f64 / secs,
            output_tokens,
            ttft_p50: percentile(&mut ttft, 50.0),
            ttft_p99: percentile(&mut ttft, 99.0),
            itl_p50: percentile(&mut itl, 50.0),
            itl_p99: percentile(&mut itl, 99.0),
        }
    }

    /// Errors grouped by message, most frequent first (at most `limit` kinds).
    pub fn error_kinds(&self, limit: usize) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for e in &self.errors {
            *counts.entry(e.to_string()).or_insert(0) += 1;
        }
        let mut kinds: Vec<(String, usize)> = counts.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        kinds.truncate(limit);
        kinds
    }

    /// The figures as one JSON object (durations in milliseconds).
    pub fn to_json(&self) -> serde_json::Value {
        let s = self.summary();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        serde_json::json!({
            "concurrency": self.concurrency,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": s.requests,
            "errors": s.errors,
            "output_tokens": s.output_tokens,
            "output_tokens_per_s": s.output_tokens_per_s,
            "requests_per_s": s.requests_per_s,
            "ttft_p50_ms": ms(s.ttft_p50),
            "ttft_p99_ms": ms(s.ttft_p99),
            "itl_p50_ms": ms(s.itl_p50),
            "itl_p99_ms": ms(s.itl_p99),
            "itl_mean_ms": ms(s.itl_mean),
            "error_kinds": self.error_kinds(5),
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.summary();
        writeln!(f, "concurrency:          {}", self.concurrency)?;
        writeln!(f, "duration:             {:.2?}", self.elapsed)?;
        writeln!(
            f,
            "requests:             {} ok, {} failed",
            s.requests, s.errors
        )?;
        writeln!(f, "output tokens:        {}", s.output_tokens)?;
        writeln!(f, "output tokens/s:      {:.1}", s.output_tokens_per_s)?;
        writeln!(f, "requests/s:           {:.2}", s.requests_per_s)?;
        writeln!(
            f,
            "TTFT p50 / p99:       {:.1?} / {:.1?}",
            s.ttft_p50, s.ttft_p99
        )?;
        writeln!(
            f,
            "inter-token p50 / p99: {:.1?} / {:.1?} (mean {:.1?})",
            s.itl_p50, s.itl_p99, s.itl_mean
        )?;
        for (message, n) in self.error_kinds(5) {
            writeln!(f, "error x{n}: {message}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Nearest-rank percentiles on small sets.
    #[test]
    fn percentiles() {
        let mut v: Vec<Duration> = (1..=100).rev().map(ms).collect();
        assert_eq!(percentile(&mut v, 50.0), ms(50));
        assert_eq!(percentile(&mut v, 99.0), ms(99));
        assert_eq!(percentile(&mut v, 100.0), ms(100));
        assert_eq!(percentile(&mut [ms(7)], 99.0), ms(7));
        assert_eq!(percentile(&mut [], 50.0), Duration::ZERO);
    }

    /// Throughput and grouped errors.
    #[test]
    fn summary_and_errors() {
        let sample = |tokens| Sample {
            ttft: Some(ms(100)),
            gaps: vec![ms(10), ms(20)],
            output_tokens: tokens,
            latency: ms(200),
        };
        let report = Report {
            concurrency: 2,
            elapsed: Duration::from_secs(2),
            samples: vec![sample(30), sample(10)],
            errors: vec![
                RequestError::Status {
                    status: 429,
                    body: "x".into(),
                },
                RequestError::Status {
                    status: 429,
                    body: "x".into(),
                },
                RequestError::Transport("reset".into()),
            ],
        };
        let s = report.summary();
        assert_eq!((s.requests, s.errors, s.output_tokens), (2, 3, 40));
        assert_eq!(s.output_tokens_per_s, 20.0);
        assert_eq!(s.requests_per_s, 1.0);
        assert_eq!((s.itl_p50, s.itl_p99), (ms(10), ms(20)));
        assert_eq!(s.itl_mean, ms(15));
        assert_eq!(report.error_kinds(5)[0], ("HTTP 429: x".to_string(), 2));
        assert_eq!(report.to_json()["output_tokens"], 40);
        assert!(report.to_string().contains("2 ok, 3 failed"));
    }
}
