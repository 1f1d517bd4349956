//! `skiff loadgen`: load-test any OpenAI-compatible server (`skiff serve`, llama.cpp's
//! `llama-server`, vLLM…) with N concurrent streaming chat clients, and report output
//! tokens/s, requests/s, time to first token, inter-token latency and errors.
//!
//! Example: `skiff loadgen --url http://127.0.0.1:8080/v1 -c 32 --duration 60s`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use skiff_server::loadgen::{self, LoadgenConfig, PromptSet};

/// Arguments of `skiff loadgen`.
#[derive(clap::Args)]
pub struct Args {
    /// Base URL of the API, including /v1.
    #[arg(long, default_value = "http://127.0.0.1:8080/v1")]
    url: String,
    /// Model to request (default: the first one the server lists).
    #[arg(long)]
    model: Option<String>,
    /// Concurrent streaming clients.
    #[arg(short = 'c', long, default_value_t = 32)]
    concurrency: usize,
    /// How long to keep starting requests, e.g. 30s or 2m (default 30s unless --requests).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many requests in total.
    #[arg(long)]
    requests: Option<usize>,
    /// max_tokens of every request.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Sampling temperature of every request.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Ask the server to ignore end-of-generation tokens, so every answer is max-tokens
    /// long (supported by skiff, llama.cpp and vLLM).
    #[arg(long)]
    ignore_eos: bool,
    /// Bearer key to send (also SKIFF_API_KEY).
    #[arg(long, env = "SKIFF_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Prompt set: {"system": "...", "questions": ["...", ...]} (default: the built-in
    /// customer-service set).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Parses `30s`, `2m`, `500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (digits, scale) = if let Some(d) = t.strip_suffix("ms") {
        (d, 1e-3)
    } else if let Some(d) = t.strip_suffix('s') {
        (d, 1.0)
    } else if let Some(d) = t.strip_suffix('m') {
        (d, 60.0)
    } else if let Some(d) = t.strip_suffix('h') {
        (d, 3600.0)
    } else {
        (t, 1.0)
    };
    let n: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s or 2m"))?;
    let secs = n * scale;
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `skiff loadgen`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let prompts = match &args.prompts {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            PromptSet::from_json(&text)?
        }
        None => PromptSet::customer_service(),
    };
    let duration = match (args.duration, args.requests) {
        (None, None) => Some(Duration::from_secs(30)),
        (d, _) => d,
    };
    let config = LoadgenConfig {
        base_url: args.url.clone(),
        model: args.model.clone(),
        concurrency: args.concurrency,
        duration,
        requests: args.requests,
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        ignore_eos: args.ignore_eos,
        api_key: args.api_key.clone(),
        prompts,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(loadgen::run(config))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    if report.samples.is_empty() {
        bail!("no request succeeded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
