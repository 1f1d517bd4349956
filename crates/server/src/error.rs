//! Errors: [`ServerError`] for starting and running the server, and [`ApiError`], the one
//! place where a failure becomes an HTTP status and an OpenAI-shaped body
//! `{"error":{"message","type","param","code"}}`.
//!
//! Every mapping from an internal error to a status is written once, in
//! [`ApiError::from_engine`] and the constructors below. Messages never carry file paths,
//! environment values or echoed request bodies (RELIABILITY §5(d) 9).

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use skiff_engine::EngineError;

/// Failures of [`crate::Server`] itself (not of one request).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A non-loopback bind without API keys and without the explicit insecure flag.
    #[error(
        "refusing to listen on {addr} without authentication: pass --api-key/--api-key-file, \
         or --insecure-no-auth to serve it open to the network"
    )]
    InsecureBind {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The host name did not resolve to an address.
    #[error("cannot resolve --host {host:?}: {message}")]
    BadHost {
        /// The `--host` value.
        host: String,
        /// Why it failed.
        message: String,
    },
    /// An API key is unusable (empty, or an empty key file).
    #[error("API key {source_name} is invalid: {reason}")]
    BadApiKey {
        /// Where the key came from (`--api-key` or the file name).
        source_name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A setting is outside its range.
    #[error("{param} = {value} is invalid: must be {allowed}")]
    InvalidConfig {
        /// The flag.
        param: &'static str,
        /// The value given.
        value: String,
        /// The allowed range.
        allowed: &'static str,
    },
    /// Binding or serving failed at the socket level.
    #[error("listening on {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Starting the engine for a model failed.
    #[error("starting the engine for model {model}: {source}")]
    Engine {
        /// The model id.
        model: String,
        /// The engine's error.
        source: EngineError,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// An error answered to one HTTP request, in OpenAI's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI `type`: `invalid_request_error`, `authentication_error`, `not_found_error`,
    /// `rate_limit_error` or `server_error`.
    pub kind: &'static str,
    /// The request parameter at fault, when there is one.
    pub param: Option<String>,
    /// A machine-readable code (`context_length_exceeded`, `model_not_found`, …).
    pub code: Option<&'static str>,
    /// Human-readable text naming the value and the limit.
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// 400 naming `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            param: Some(param.into()),
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 about the body as a whole (malformed JSON, invalid UTF-8).
    pub fn bad_body(message: impl Into<String>) -> ApiError {
        ApiError {
            param: None,
            ..ApiError::invalid("", message)
        }
    }

    /// 413: the body is over the size limit.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: Some("request_too_large"),
            ..ApiError::bad_body(format!(
                "the request body is larger than the server's limit of {limit} bytes"
            ))
        }
    }

    /// 400 with code `context_length_exceeded`.
    pub fn context_exceeded(prompt_tokens: usize, max_tokens: usize, limit: usize) -> ApiError {
        ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::invalid(
                "messages",
                format!(
                    "this model's context holds {limit} tokens, but the request needs \
                     {prompt_tokens} prompt tokens plus max_tokens = {max_tokens}; shorten the \
                     prompt or lower max_tokens"
                ),
            )
        }
    }

    /// 404 for a model the server does not serve.
    pub fn model_not_found(model: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
            message: format!("the model {model:?} does not exist on this server"),
            retry_after: None,
        }
    }

    /// 404 for an unknown route.
    pub fn no_route(path: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            param: None,
            code: Some("unknown_url"),
            message: format!("unknown URL {path}"),
            retry_after: None,
        }
    }

    /// 405 for a known route with the wrong method.
    pub fn method_not_allowed() -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: Some("method_not_allowed"),
            ..ApiError::no_route("")
        }
        .with_message("this URL does not accept that HTTP method")
    }

    /// 401: missing or wrong API key. The same body for every mismatch.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            param: None,
            code: Some("invalid_api_key"),
            message: "missing or invalid API key: send Authorization: Bearer <key>".into(),
            retry_after: None,
        }
    }

    /// 400 for a Host header outside the allow-list (DNS rebinding guard).
    pub fn bad_host() -> ApiError {
        ApiError {
            code: Some("invalid_host"),
            ..ApiError::bad_body(
                "the Host header is not one this server answers to (see --allow-host)",
            )
        }
    }

    /// 429: the admission queue is full.
    pub fn queue_full(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            param: None,
            code: Some("rate_limit_exceeded"),
            message: format!(
                "the server is at capacity ({limit} requests already waiting); retry later"
            ),
            retry_after: Some(1),
        }
    }

    /// 503 while models load.
    pub fn loading() -> ApiError {
        ApiError {
            code: Some("model_loading"),
            ..ApiError::unavailable("the model is still loading; retry shortly")
        }
    }

    /// 503 once shutdown began.
    pub fn shutting_down() -> ApiError {
        ApiError {
            code: Some("server_shutting_down"),
            ..ApiError::unavailable("the server is shutting down and accepts no new requests")
        }
    }

    /// 503 with a message.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "server_error",
            param: None,
            code: None,
            message: message.into(),
            retry_after: Some(1),
        }
    }

    /// 500: the request failed inside the engine (the engine stays up).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            param: None,
            code: Some("engine_error"),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Replaces the parameter.
    pub fn with_param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_string());
        self
    }

    /// Points a prompt-level error (`messages`) at `param` instead (`prompt` for
    /// completions); other errors are unchanged.
    pub fn with_param_if_messages(self, param: &str) -> ApiError {
        if self.param.as_deref() == Some("messages") {
            self.with_param(param)
        } else {
            self
        }
    }

    /// Replaces the message.
    pub fn with_message(mut self, message: impl Into<String>) -> ApiError {
        self.message = message.into();
        self
    }

    /// Maps a rejected [`skiff_engine::Engine::submit`] onto its status.
    pub fn from_engine(err: &EngineError) -> ApiError {
        match err {
            EngineError::QueueFull { limit } => ApiError::queue_full(*limit),
            EngineError::ContextExceeded {
                prompt_tokens,
                max_tokens,
                limit,
            } => ApiError::context_exceeded(*prompt_tokens, *max_tokens, *limit),
            EngineError::EmptyPrompt => ApiError::invalid("messages", err.to_string()),
            EngineError::InvalidRequest { param, .. } | EngineError::InvalidParam { param, .. } => {
                ApiError::invalid(*param, err.to_string())
            }
            EngineError::Sample(_) => ApiError::invalid("sampling", err.to_string()),
            EngineError::ShuttingDown => ApiError::shutting_down(),
            other => ApiError::internal(other.to_string()),
        }
    }

    /// The JSON body `{"error":{…}}`, also used as a mid-stream SSE event.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body has exactly OpenAI's four keys, with nulls where nothing applies.
    #[test]
    fn body_has_openai_shape() {
        let body = ApiError::invalid("n", "n = 99 is invalid").body();
        let error = body["error"].as_object().expect("an object");
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "param", "type"]);
        assert_eq!(error["param"], "n");
        assert_eq!(error["type"], "invalid_request_error");
        assert!(error["code"].is_null());
        assert!(ApiError::bad_body("x").body()["error"]["param"].is_null());
    }

    /// Each engine rejection lands on its documented status.
    #[test]
    fn engine_errors_map_to_statuses() {
        let cases = [
            (EngineError::QueueFull { limit: 4 }, 429, None),
            (
                EngineError::ContextExceeded {
                    prompt_tokens: 10,
                    max_tokens: 200,
                    limit: 128,
                },
                400,
                Some("messages"),
            ),
            (EngineError::EmptyPrompt, 400, Some("messages")),
            (
                EngineError::InvalidRequest {
                    param: "n",
                    message: "n = 17".into(),
                },
                400,
                Some("n"),
            ),
            (EngineError::ShuttingDown, 503, None),
        ];
        for (err, status, param) in cases {
            let api = ApiError::from_engine(&err);
            assert_eq!(api.status.as_u16(), status, "{err}");
            assert_eq!(api.param.as_deref(), param, "{err}");
        }
        assert_eq!(
            ApiError::from_engine(&EngineError::QueueFull { limit: 1 }).retry_after,
            Some(1)
        );
    }
}
