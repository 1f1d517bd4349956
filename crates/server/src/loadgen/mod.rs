//! `skiff loadgen`: N concurrent streaming clients replaying a prompt set against any
//! OpenAI-compatible server, for a duration or a request count, measuring output tokens/s,
//! requests/s, time to first token, inter-token latency and errors.
//!
//! Each client sends `POST {base}/chat/completions` with `stream: true` and
//! `stream_options.include_usage`, one request after another. Every request is the prompt
//! set's shared system prompt plus the next question, so servers with a prefix cache can
//! reuse the system prompt as they would for a real support desk. The default set
//! ([`PromptSet::customer_service`]) is `testdata/prompts/customer_service.json`.

pub mod report;
pub mod sse;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use report::{Report, Summary, percentile};
pub use sse::{RequestError, Sample, SseParser, stream_request};

/// The default prompt set, embedded.
const CUSTOMER_SERVICE: &str = include_str!("../../../../testdata/prompts/customer_service.json");

/// Failures that stop a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The prompt set file is not `{"system": string, "questions": [string, …]}`.
    #[error("prompt set: {0}")]
    BadPromptSet(String),
    /// A setting is outside its range.
    #[error("{param} = {value} is invalid: must be {allowed}")]
    InvalidConfig {
        /// The flag.
        param: &'static str,
        /// The value.
        value: String,
        /// The allowed range.
        allowed: &'static str,
    },
    /// The model could not be discovered from `/models`.
    #[error("finding the model at {url}: {message}; pass --model")]
    NoModel {
        /// The URL asked.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// A shared system prompt and the questions asked under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptSet {
    /// The system message of every request.
    pub system: String,
    /// User questions, used in turn.
    pub questions: Vec<String>,
}

impl PromptSet {
    /// Parses `{"system": "...", "questions": ["...", ...]}`.
    pub fn from_json(text: &str) -> Result<PromptSet, LoadgenError> {
        let bad = |m: &str| LoadgenError::BadPromptSet(m.to_string());
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let system = v["system"]
            .as_str()
            .ok_or_else(|| bad("\"system\" must be a string"))?
            .to_string();
        let questions: Vec<String> = v["questions"]
            .as_array()
            .ok_or_else(|| bad("\"questions\" must be an array"))?
            .iter()
            .map(|q| q.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("every question must be a string"))?;
        if questions.is_empty() {
            return Err(bad("\"questions\" is empty"));
        }
        Ok(PromptSet { system, questions })
    }

    /// The built-in support-desk set.
    pub fn customer_service() -> PromptSet {
        PromptSet::from_json(CUSTOMER_SERVICE).expect("the embedded prompt set is valid")
    }
}

/// One load test.
#[derive(Clone, Debug)]
pub struct LoadgenConfig {
    /// Base URL including `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The model to ask for; `None` takes the first one `/models` lists.
    pub model: Option<String>,
    /// Concurrent clients, at least 1.
    pub concurrency: usize,
    /// Stop starting requests after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests in total.
    pub requests: Option<usize>,
    /// `max_tokens` of every request.
    pub max_tokens: usize,
    /// `temperature` of every request.
    pub temperature: f32,
    /// Send `ignore_eos` so every answer has exactly `max_tokens` tokens.
    pub ignore_eos: bool,
    /// Bearer key to send.
    pub api_key: Option<String>,
    /// The prompts.
    pub prompts: PromptSet,
}

impl LoadgenConfig {
    fn validate(&self) -> Result<(), LoadgenError> {
        let invalid = |param, value: String, allowed| {
            Err(LoadgenError::InvalidConfig {
                param,
                value,
                allowed,
            })
        };
        if self.concurrency == 0 {
            return invalid("--concurrency", "0".into(), "at least 1");
        }
        if self.max_tokens == 0 {
            return invalid("--max-tokens", "0".into(), "at least 1");
        }
        if self.duration.is_none() && self.requests.is_none() {
            return invalid(
                "--duration/--requests",
                "neither".into(),
                "at least one of them",
            );
        }
        Ok(())
    }

    fn body(&self, model: &str, question: &str) -> Value {
        let mut body = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": self.prompts.system},
                {"role": "user", "content": question},
            ],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if self.ignore_eos {
            body["ignore_eos"] = json!(true);
        }
        body
    }
}

/// Runs the load test to its end.
pub async fn run(config: LoadgenConfig) -> Result<Report, LoadgenError> {
    config.validate()?;
    let base = config.base_url.trim_end_matches('/').to_string();
    let client = reqwest::Client::new();
    let model = match &config.model {
        Some(m) => m.clone(),
        None => discover_model(&client, &base, config.api_key.as_deref()).await?,
    };
    let url = format!("{base}/chat/completions");
    let shared = Arc::new(Shared {
        config,
        model,
        url,
        client,
        started: AtomicUsize::new(0),
    });
    let t0 = Instant::now();
    let deadline = shared.config.duration.map(|d| t0 + d);
    let workers: Vec<_> = (0..shared.config.concurrency)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared), deadline)))
        .collect();
    let mut report = Report {
        concurrency: shared.config.concurrency,
        ..Report::default()
    };
    for w in workers {
        match w.await {
            Ok((samples, errors)) => {
                report.samples.extend(samples);
                report.errors.extend(errors);
            }
            Err(e) => report
                .errors
                .push(RequestError::Transport(format!("client task: {e}"))),
        }
    }
    report.elapsed = t0.elapsed();
    Ok(report)
}

struct Shared {
    config: LoadgenConfig,
    model: String,
    url: String,
    client: reqwest::Client,
    started: AtomicUsize,
}

/// One client: requests back to back until the deadline or the count is reached.
async fn worker(
    shared: Arc<Shared>,
    deadline: Option<Instant>,
) -> (Vec<Sample>, Vec<RequestError>) {
    let (mut samples, mut errors) = (Vec::new(), Vec::new());
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let i = shared.started.fetch_add(1, Ordering::Relaxed);
        if shared.config.requests.is_some_and(|n| i >= n) {
            break;
        }
        let questions = &shared.config.prompts.questions;
        let body = shared
            .config
            .body(&shared.model, &questions[i % questions.len()]);
        let key = shared.config.api_key.as_deref();
        match stream_request(&shared.client, &shared.url, key, &body).await {
            Ok(sample) => samples.push(sample),
            Err(e) => errors.push(e),
        }
    }
    (samples, errors)
}

/// The first model id `GET {base}/models` lists.
async fn discover_model(
    client: &reqwest::Client,
    base: &str,
    api_key: Option<&str>,
) -> Result<String, LoadgenError> {
    let url = format!("{base}/models");
    let fail = |message: String| LoadgenError::NoModel {
        url: url.clone(),
        message,
    };
    let mut req = client.get(&url);
    if let Some(key) = api_key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
    let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    v["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| fail("no model listed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped prompt set is a realistic support desk: a long shared system prompt and
    /// about forty distinct questions.
    #[test]
    fn default_prompt_set() {
        let set = PromptSet::customer_service();
        assert!(
            set.system.len() > 500,
            "system prompt is {} bytes",
            set.system.len()
        );
        assert!(
            set.questions.len() >= 40,
            "{} questions",
            set.questions.len()
        );
        let mut unique = set.questions.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), set.questions.len(), "duplicate questions");
    }

    /// Malformed prompt sets are refused with the reason.
    #[test]
    fn bad_prompt_sets() {
        for bad in [
            "[]",
            r#"{"system":1,"questions":["a"]}"#,
            r#"{"system":"s","questions":[]}"#,
            r#"{"system":"s","questions":[1]}"#,
        ] {
            assert!(PromptSet::from_json(bad).is_err(), "{bad}");
        }
    }

    /// Requests are streamed chats with usage; a run needs a bound.
    #[test]
    fn request_body_and_bounds() {
        let config = LoadgenConfig {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: Some("m".into()),
            concurrency: 2,
            duration: None,
            requests: Some(4),
            max_tokens: 16,
            temperature: 0.0,
            ignore_eos: true,
            api_key: None,
            prompts: PromptSet::customer_service(),
        };
        let body = config.body("m", "Where is my order?");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][1]["content"], "Where is my order?");
        assert_eq!(body["ignore_eos"], true);
        assert!(config.validate().is_ok());
        let unbounded = LoadgenConfig {
            requests: None,
            ..config.clone()
        };
        assert!(unbounded.validate().is_err());
        let idle = LoadgenConfig {
            concurrency: 0,
            ..config
        };
        assert!(idle.validate().is_err());
    }
}
