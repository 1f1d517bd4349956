//! One streamed chat request as a load-generator client sees it: send, read the
//! server-sent events, time every content chunk.
//!
//! The parser follows the SSE rules openai-python relies on: events end at a blank line
//! (`\n\n` or `\r\n\r\n`), `data:` lines carry the payload, lines starting with `:` are
//! comments, `data: [DONE]` ends the stream, and a JSON payload with an `error` key is a
//! mid-stream error.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

/// What one request produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// From sending the request to the first chunk with text.
    pub ttft: Option<Duration>,
    /// Gaps between consecutive text chunks.
    pub gaps: Vec<Duration>,
    /// Completion tokens: the usage chunk's count, else the number of text chunks.
    pub output_tokens: usize,
    /// Whole request time.
    pub latency: Duration,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A non-200 status (body abbreviated).
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The connection or the body stream failed.
    #[error("transport: {0}")]
    Transport(String),
    /// An `{"error":…}` event mid-stream.
    #[error("error event: {0}")]
    Event(String),
    /// The stream ended without `data: [DONE]`, or a payload was not JSON.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Incremental SSE framing: bytes in, complete `data` payloads out.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    /// Adds bytes; returns the data payloads of every event completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_event_end(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + sep).take(end).collect();
            let text = String::from_utf8_lossy(&event);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

/// Position and length of the first blank-line separator.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The text a chunk carries (chat `delta.content` or completion `text`), if any.
fn chunk_text(chunk: &Value) -> Option<&str> {
    let choice = chunk.get("choices")?.get(0)?;
    let text = choice
        .get("delta")
        .and_then(|d| d.get("content"))
        .or_else(|| choice.get("text"))?
        .as_str()?;
    (!text.is_empty()).then_some(text)
}

/// Sends `body` to `url` and reads the stream to its end.
pub async fn stream_request(
    client: &reqwest::Client,
    url: &str,
    api_key: Option<&str>,
    body: &Value,
) -> Result<Sample, RequestError> {
    let started = Instant::now();
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = api_key {
        req = req.bearer_auth(key);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| RequestError::Transport(e.to_string()))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Err(RequestError::Status {
            status,
            body: text.chars().take(200).collect(),
        });
    }
    let mut sample = Sample::default();
    let mut parser = SseParser::default();
    let mut last: Option<Instant> = None;
    let mut text_chunks = 0;
    let mut usage_tokens = None;
    let mut finished = false;
    let mut body = resp.bytes_stream();
    while let Some(bytes) = body.next().await {
        let bytes = bytes.map_err(|e| RequestError::Transport(e.to_string()))?;
        for payload in parser.push(&bytes) {
            if payload.trim() == "[DONE]" {
                if !finished {
                    // Strict clients fail here too ("stream ended without finish_reason").
                    return Err(RequestError::Protocol(
                        "the stream ended without a finish_reason".into(),
                    ));
                }
                sample.output_tokens = usage_tokens.unwrap_or(text_chunks);
                sample.latency = started.elapsed();
                return Ok(sample);
            }
            let chunk: Value = serde_json::from_str(&payload)
                .map_err(|e| RequestError::Protocol(format!("a data payload is not JSON: {e}")))?;
            if let Some(err) = chunk.get("error") {
                return Err(RequestError::Event(err.to_string()));
            }
            if let Some(n) = chunk
                .get("usage")
                .and_then(|u| u.get("completion_tokens"))
                .and_then(Value::as_u64)
            {
                usage_tokens = Some(n as usize);
            }
            finished |= chunk
                .get("choices")
                .and_then(|c| c.get(0))
                .and_then(|c| c.get("finish_reason"))
                .is_some_and(|r| !r.is_null());
            if chunk_text(&chunk).is_some() {
                let now = Instant::now();
                match last {
                    None => sample.ttft = Some(now - started),
                    Some(prev) => sample.gaps.push(now - prev),
                }
                last = Some(now);
                text_chunks += 1;
            }
        }
    }
    Err(RequestError::Protocol(
        "the stream ended without data: [DONE]".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events split anywhere across reads, both separators, comments and multi-line data.
    #[test]
    fn parses_events_across_reads() {
        let stream = b": keep-alive\n\ndata: {\"a\":1}\n\ndata: x\r\n\r\ndata: l1\ndata: l2\n\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            let mut p = SseParser::default();
            let mut got = p.push(&stream[..split]);
            got.extend(p.push(&stream[split..]));
            assert_eq!(
                got,
                ["{\"a\":1}", "x", "l1\nl2", "[DONE]"],
                "split at {split}"
            );
        }
    }

    /// Text comes from chat deltas or completion text; empty text does not count.
    #[test]
    fn chunk_text_reads_both_layouts() {
        let chat: Value = serde_json::json!({"choices":[{"delta":{"content":"hi"}}]});
        let role: Value =
            serde_json::json!({"choices":[{"delta":{"role":"assistant","content":""}}]});
        let text: Value = serde_json::json!({"choices":[{"text":"yo"}]});
        let usage: Value = serde_json::json!({"choices":[],"usage":{}});
        assert_eq!(chunk_text(&chat), Some("hi"));
        assert_eq!(chunk_text(&role), None);
        assert_eq!(chunk_text(&text), Some("yo"));
        assert_eq!(chunk_text(&usage), None);
    }
}
