//! [`Server`]: bind (with the security defaults), load models in the background, serve
//! until told to stop, then drain.
//!
//! Start-up order keeps the server reachable at once: the socket is bound first and
//! `/health` answers `loading` while each model loads on its own thread, then `ready` (or
//! `failed`). Shutdown (the future passed to [`Server::serve`] completes, e.g. on SIGTERM):
//! new requests get 503 `server_shutting_down`, open streams run to their end for up to
//! [`ServerConfig::shutdown_timeout`], after which the engines cancel what is left (those
//! streams end with an error event), and [`Server::serve`] returns `Ok`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use skiff_engine::ShutdownMode;
use tokio::net::TcpListener;

use crate::auth::ApiKeys;
use crate::error::{Result, ServerError};
use crate::metrics::Metrics;
use crate::model::{EngineSettings, ModelBundle, ServedModel};
use crate::routes::router;
use crate::state::{AppState, ModelSlot};

/// Default body limit (RELIABILITY §5(d) 6).
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;

/// How the server listens and guards itself.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address or host name to bind (default `127.0.0.1`).
    pub host: String,
    /// Port (0 picks a free one).
    pub port: u16,
    /// Accepted API keys; empty means no authentication.
    pub api_keys: Vec<String>,
    /// Serve a non-loopback address without keys.
    pub insecure_no_auth: bool,
    /// Extra names accepted in the Host header when bound to loopback.
    pub allow_hosts: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Hardware price per hour, for the cost estimate in `/metrics`.
    pub price_per_hour: f64,
    /// How long shutdown waits for open requests before cancelling them.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            api_keys: Vec::new(),
            insecure_no_auth: false,
            allow_hosts: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            price_per_hour: 0.0,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown_timeout: Duration,
}

impl Server {
    /// Checks the configuration against the bind rules and binds the socket.
    ///
    /// Errors: [`ServerError::InsecureBind`] for a non-loopback address with no API key and
    /// no `insecure_no_auth`; [`ServerError::BadApiKey`] for an empty key;
    /// [`ServerError::BadHost`] / [`ServerError::Io`] when the address cannot be used.
    pub async fn bind(config: ServerConfig) -> Result<Server> {
        if config.api_keys.iter().any(|k| k.trim().is_empty()) {
            return Err(ServerError::BadApiKey {
                source_name: "--api-key".into(),
                reason: "the key is empty",
            });
        }
        let addr = resolve(&config.host, config.port).await?;
        let loopback = addr.ip().is_loopback();
        if !loopback && config.api_keys.is_empty() && !config.insecure_no_auth {
            return Err(ServerError::InsecureBind { addr });
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Io { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Io { addr, source })?;
        let allowed_hosts = if loopback {
            let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            hosts.extend(config.allow_hosts.iter().cloned());
            hosts
        } else {
            Vec::new()
        };
        let state = AppState::new(
            Metrics::new(config.price_per_hour),
            ApiKeys::new(&config.api_keys),
            allowed_hosts,
            config.max_body_bytes,
        );
        Ok(Server {
            listener,
            addr,
            state: Arc::new(state),
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (health, engine statistics), for tests and the CLI.
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Registers model `id` as loading and loads it on a new thread with `loader`; the
    /// model becomes ready (or failed, with the loader's message) when that finishes.
    pub fn load_model<F>(&self, id: &str, settings: EngineSettings, loader: F)
    where
        F: FnOnce() -> std::result::Result<ModelBundle, String> + Send + 'static,
    {
        self.state.set_model(id, ModelSlot::Loading);
        let state = Arc::clone(&self.state);
        let id = id.to_string();
        std::thread::spawn(move || {
            let slot = match loader().and_then(|bundle| {
                ServedModel::start(id.clone(), bundle, &settings).map_err(|e| e.to_string())
            }) {
                Ok(model) => {
                    if model.fallback_template {
                        tracing::warn!(model = %id, "the model has no chat template; using ChatML");
                    }
                    ModelSlot::Ready(Arc::new(model))
                }
                Err(message) => {
                    tracing::error!(model = %id, "loading failed: {message}");
                    ModelSlot::Failed(message)
                }
            };
            state.set_model(&id, slot);
        });
    }

    /// Serves until `shutdown` completes, then drains (see the module docs).
    pub async fn serve<S>(self, shutdown: S) -> Result<()>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        let timeout = self.shutdown_timeout;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let app = router(Arc::clone(&state));
        let signal_state = Arc::clone(&state);
        let graceful = async move {
            shutdown.await;
            signal_state.begin_shutdown();
            let _ = stop_tx.send(true);
        };
        // After the deadline, cancel whatever is still running so open streams end.
        let deadline_state = Arc::clone(&state);
        let mut deadline_rx = stop_rx.clone();
        let deadline = tokio::spawn(async move {
            if deadline_rx.wait_for(|&stop| stop).await.is_ok() {
                tokio::time::sleep(timeout).await;
                stop_engines(&deadline_state, ShutdownMode::Cancel).await;
            }
        });
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(graceful)
            .await;
        deadline.abort();
        stop_engines(&state, ShutdownMode::Drain).await;
        served.map_err(|source| ServerError::Io {
            addr: self.addr,
            source,
        })
    }
}

/// Shuts every ready engine down (blocking calls, off the async workers).
async fn stop_engines(state: &AppState, mode: ShutdownMode) {
    for model in state.ready_models() {
        let _ = tokio::task::spawn_blocking(move || model.engine.shutdown(mode)).await;
    }
}

/// Resolves `host:port` to the first address.
async fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let bad = |message: String| ServerError::BadHost {
        host: host.to_string(),
        message,
    };
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str) -> ServerConfig {
        ServerConfig {
            host: host.into(),
            port: 0,
            ..ServerConfig::default()
        }
    }

    /// Loopback binds freely; a non-loopback bind needs a key or the explicit insecure flag.
    #[tokio::test]
    async fn bind_rules() {
        assert!(Server::bind(config("127.0.0.1")).await.is_ok());
        assert!(Server::bind(config("localhost")).await.is_ok());
        match Server::bind(config("0.0.0.0")).await {
            Err(ServerError::InsecureBind { addr }) => assert!(addr.ip().is_unspecified()),
            Err(other) => panic!("expected InsecureBind, got {other}"),
            Ok(_) => panic!("an open bind without keys was accepted"),
        }
        let keyed = ServerConfig {
            api_keys: vec!["sk-test".into()],
            ..config("0.0.0.0")
        };
        assert!(Server::bind(keyed).await.is_ok());
        let open = ServerConfig {
            insecure_no_auth: true,
            ..config("0.0.0.0")
        };
        assert!(Server::bind(open).await.is_ok());
        let empty_key = ServerConfig {
            api_keys: vec!["  ".into()],
            ..config("127.0.0.1")
        };
        assert!(matches!(
            Server::bind(empty_key).await,
            Err(ServerError::BadApiKey { .. })
        ));
    }
}
