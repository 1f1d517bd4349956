//! The HTTP surface: [`router`] and one handler per endpoint.
//!
//! `/v1/*` sits behind [`crate::auth::guard`] (Host allow-list, API key); `/health`,
//! `/metrics` and `/openapi.json` are open for probes and scrapers and carry no request
//! data. Unknown URLs and wrong methods answer in the OpenAI error shape too.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde_json::json;

use crate::auth::{Tenant, guard};
use crate::error::ApiError;
use crate::generate::{self, Job, endpoint_label};
use crate::model::ServedModel;
use crate::state::{AppState, Health};
use crate::wire::{Endpoint, fields, parse_chat, parse_completion};

/// The application: every route over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(get_model))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), guard));
    Router::new()
        .merge(v1)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

/// Maps a body that could not be read: over the limit (413) or broken (400).
fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::bad_body(format!(
            "could not read the request body: {}",
            rejection.body_text()
        ))
    }
}

/// Runs blocking prompt work (template rendering, tokenization) off the async workers.
async fn blocking<T: Send + 'static>(
    model: Arc<ServedModel>,
    work: impl FnOnce(&ServedModel) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || work(&model))
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::internal(format!(
                "preparing the prompt failed: {e}"
            )))
        })
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let arrival = Instant::now();
    let result = async {
        let body = body.map_err(|r| body_error(&r, state.max_body_bytes))?;
        let req = parse_chat(&fields::parse_body(&body)?)?;
        let model = state.model(&req.params.model)?;
        let messages = req.messages;
        let prompt = blocking(Arc::clone(&model), move |m| m.encode_chat(&messages)).await?;
        generate::run(Job {
            state: Arc::clone(&state),
            model,
            endpoint: Endpoint::Chat,
            params: req.params,
            prompt,
            tenant,
            arrival,
        })
        .await
    }
    .await;
    finish(&state, Endpoint::Chat, result)
}

async fn completions(
    State(state): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let arrival = Instant::now();
    let result = async {
        let body = body.map_err(|r| body_error(&r, state.max_body_bytes))?;
        let req = parse_completion(&fields::parse_body(&body)?)?;
        let model = state.model(&req.params.model)?;
        let prompt_in = req.prompt;
        let prompt = blocking(Arc::clone(&model), move |m| m.encode_prompt(&prompt_in)).await?;
        generate::run(Job {
            state: Arc::clone(&state),
            model,
            endpoint: Endpoint::Completion,
            params: req.params,
            prompt,
            tenant,
            arrival,
        })
        .await
    }
    .await;
    finish(&state, Endpoint::Completion, result)
}

/// Counts a failed request and renders its error; successes were counted when answered.
fn finish(state: &AppState, endpoint: Endpoint, result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(response) => response,
        Err(err) => {
            state
                .metrics
                .request(endpoint_label(endpoint), err.status.as_u16());
            err.into_response()
        }
    }
}

fn model_json(id: &str, created: u64) -> serde_json::Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": "skiff"})
}

async fn list_models(State(state): State<Arc<AppState>>) -> Response {
    let data: Vec<_> = state
        .ready_models()
        .iter()
        .map(|m| model_json(&m.id, m.created))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn get_model(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.ready_models().iter().find(|m| m.id == id) {
        Some(m) => Json(model_json(&m.id, m.created)).into_response(),
        None => ApiError::model_not_found(&id).into_response(),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let health = state.health();
    let models: Vec<_> = state
        .models()
        .into_iter()
        .map(|(id, slot)| json!({"id": id, "status": slot.status(&id)}))
        .collect();
    let mut body = json!({"status": health.as_str(), "models": models});
    if let Health::Failed(message) = &health {
        body["error"] = json!(message);
    }
    let status = if health == Health::Ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let engines: Vec<_> = state
        .ready_models()
        .iter()
        .map(|m| (m.id.clone(), m.engine.stats()))
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&engines),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT,
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    ApiError::no_route(uri.path()).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}
