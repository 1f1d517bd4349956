//! [`AppState`]: what every handler shares — the models (loading, ready or failed), the
//! metrics, the API keys and the shutdown flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use skiff_engine::EngineStats;

use crate::auth::ApiKeys;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model::ServedModel;

/// Where one model is in its life.
#[derive(Clone)]
pub enum ModelSlot {
    /// Being loaded.
    Loading,
    /// Serving.
    Ready(Arc<ServedModel>),
    /// Loading failed; the message says why.
    Failed(String),
}

impl ModelSlot {
    /// Why model `id` cannot serve: its load failed, or its engine core has stopped (a ready
    /// model whose core panicked would never answer). `None` while loading or serving.
    pub fn failure(&self, id: &str) -> Option<String> {
        match self {
            ModelSlot::Failed(msg) => Some(msg.clone()),
            ModelSlot::Ready(m) if !m.engine.is_running() => Some(format!(
                "the engine of model {id:?} has stopped; see the server log"
            )),
            _ => None,
        }
    }

    /// The slot as `/health` lists it: `loading`, `ready` or `failed`.
    pub fn status(&self, id: &str) -> &'static str {
        match self {
            ModelSlot::Loading => "loading",
            _ if self.failure(id).is_some() => "failed",
            _ => "ready",
        }
    }
}

/// The server's overall state, as `/health` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// At least one model is still loading and none failed.
    Loading,
    /// Every model is ready.
    Ready,
    /// A model failed to load (the message of the first failure).
    Failed(String),
    /// Shutdown began: no new requests.
    ShuttingDown,
}

impl Health {
    /// `loading`, `ready`, `failed` or `shutting_down`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Loading => "loading",
            Health::Ready => "ready",
            Health::Failed(_) => "failed",
            Health::ShuttingDown => "shutting_down",
        }
    }
}

/// State shared by all handlers.
pub struct AppState {
    models: RwLock<Vec<(String, ModelSlot)>>,
    /// Request, token and latency counters.
    pub metrics: Metrics,
    /// Accepted API keys (empty: no authentication).
    pub keys: ApiKeys,
    /// Host names accepted in the Host header; empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// The body size limit, for the 413 message.
    pub max_body_bytes: usize,
    shutting_down: AtomicBool,
}

impl AppState {
    /// A state with no models yet.
    pub fn new(
        metrics: Metrics,
        keys: ApiKeys,
        allowed_hosts: Vec<String>,
        max_body_bytes: usize,
    ) -> AppState {
        AppState {
            models: RwLock::new(Vec::new()),
            metrics,
            keys,
            allowed_hosts,
            max_body_bytes,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Sets (or adds) the slot of model `id`.
    pub fn set_model(&self, id: &str, slot: ModelSlot) {
        let mut models = self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match models.iter_mut().find(|(m, _)| m == id) {
            Some(entry) => entry.1 = slot,
            None => models.push((id.to_string(), slot)),
        }
    }

    /// Every model id with its slot, in load order.
    pub fn models(&self) -> Vec<(String, ModelSlot)> {
        self.models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The ready models.
    pub fn ready_models(&self) -> Vec<Arc<ServedModel>> {
        self.models()
            .into_iter()
            .filter_map(|(_, slot)| match slot {
                ModelSlot::Ready(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The model a request names: 404 when unknown, 503 while loading or after shutdown began.
    pub fn model(&self, id: &str) -> Result<Arc<ServedModel>, ApiError> {
        if self.is_shutting_down() {
            return Err(ApiError::shutting_down());
        }
        let models = self.models();
        match models.iter().find(|(m, _)| m == id).map(|(_, s)| s) {
            Some(ModelSlot::Ready(m)) => Ok(Arc::clone(m)),
            Some(ModelSlot::Loading) => Err(ApiError::loading()),
            Some(ModelSlot::Failed(_)) => Err(ApiError::unavailable(format!(
                "the model {id:?} failed to load; see the server log"
            ))),
            None => Err(ApiError::model_not_found(id)),
        }
    }

    /// Overall health.
    pub fn health(&self) -> Health {
        if self.is_shutting_down() {
            return Health::ShuttingDown;
        }
        let models = self.models();
        if let Some(msg) = models.iter().find_map(|(id, s)| s.failure(id)) {
            return Health::Failed(msg);
        }
        if models.is_empty() || models.iter().any(|(_, s)| matches!(s, ModelSlot::Loading)) {
            Health::Loading
        } else {
            Health::Ready
        }
    }

    /// The engine snapshot of model `id`, when it is ready.
    pub fn engine_stats(&self, id: &str) -> Option<EngineStats> {
        self.ready_models()
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| m.engine.stats())
    }

    /// Stops admitting requests (they get 503 `server_shutting_down`).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True once shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
