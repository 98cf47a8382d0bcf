//! # mixed-r1-server
//!
//! The Mixed-R1 reward over HTTP, for trainers that call a remote reward (OpenRLHF's
//! `--reward.remote_url`, `--remote_rm_url` before 0.11) or for anything that can POST JSON:
//!
//! | route              | body                                           | answer |
//! |--------------------|------------------------------------------------|--------|
//! | `POST /get_reward` | `{"query": [...], "prompts": [...], "labels": [...]}` (OpenRLHF) | `{"rewards": [...], "scores": [...], "extra_logs": {...}}` |
//! | `POST /score`      | a JSON array of scoring samples (DESIGN.md schema + `response`) | an array of `{"id", "reward", "format", "accuracy", "task", "error"}`, in order |
//! | `GET /health`      |                                                | `{"status": "ok", "version": ...}` |
//! | `GET /metrics`     |                                                | Prometheus text |
//!
//! See [`openrlhf`] for the protocol, labels and skip semantics. A request that fails as a whole
//! gets a status code and `{"error": "...", "kind": "...", "field": "..."}`: 400 for bad JSON or
//! a bad field (the message and `field` name it, e.g. `labels[3].frame`), 413 for a body over
//! `max_body_bytes` or a batch over `max_batch`, 408 for a body not received within
//! `read_timeout`, 503 (with `Retry-After`) when no scoring slot frees up or scoring overruns
//! `request_timeout` (which does not count the client's sending time).
//!
//! Scoring runs on the rayon pool, never on the async threads, so `/health` and `/metrics` stay
//! responsive under load. No request can take the server down: bodies are bounded, every wait
//! has a deadline, and panics become a 500 for their own request. [`serve`] stops accepting on
//! its shutdown signal and lets requests in flight finish (up to `shutdown_grace`).

pub mod app;
pub mod body;
pub mod error;
pub mod metrics;
pub mod openrlhf;

use std::future::{Future, IntoFuture};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use mixed_r1_reward::Scorer;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

pub use app::{router, AppState};
pub use error::{ApiError, ErrorKind};

/// Limits and defaults of the server. [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body; larger gets 413.
    pub max_body_bytes: usize,
    /// Most samples in one request; more gets 413.
    pub max_batch: usize,
    /// Scoring requests handled at once (reading + scoring); more wait for a slot.
    pub max_concurrency: usize,
    /// Time a client has to send its whole body; slower gets 408.
    pub read_timeout: Duration,
    /// The server's time for a request: waiting for a scoring slot plus scoring, not counting
    /// the client's sending (that is `read_timeout`); past it: 503.
    pub request_timeout: Duration,
    /// After the shutdown signal, how long requests in flight may still take.
    pub shutdown_grace: Duration,
    /// Task for OpenRLHF labels that do not name one (plain-string labels).
    pub default_task: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 16 << 20,
            max_batch: 4096,
            max_concurrency: 64,
            read_timeout: Duration::from_secs(30),
            // With read_timeout, below OpenRLHF's 180 s client timeout, so its client sees our
            // answer, not its own.
            request_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
            default_task: None,
        }
    }
}

impl ServerConfig {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 || self.max_batch == 0 || self.max_concurrency == 0 {
            return Err("max body bytes, max batch and max concurrency must be at least 1".into());
        }
        if self.read_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err("timeouts must be longer than zero".into());
        }
        if let Some(t) = &self.default_task {
            openrlhf::check_default_task(t)?;
        }
        Ok(())
    }
}

/// Serves the reward on `listener` until `shutdown` completes, then stops accepting, lets the
/// requests in flight finish (at most `config.shutdown_grace`) and returns.
pub async fn serve(
    listener: TcpListener,
    scorer: Arc<Scorer>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let addr = listener.local_addr()?;
    let grace = config.shutdown_grace;
    let cfg = scorer.config();
    info!(
        %addr,
        max_body_bytes = config.max_body_bytes,
        max_batch = config.max_batch,
        max_concurrency = config.max_concurrency,
        read_timeout_s = config.read_timeout.as_secs_f64(),
        request_timeout_s = config.request_timeout.as_secs_f64(),
        default_task = config.default_task.as_deref().unwrap_or("-"),
        format_mode = ?cfg.format.mode,
        accuracy_weight = cfg.accuracy_weight,
        format_weight = cfg.format_weight,
        bmas = scorer.bmas().is_some(),
        threads = rayon::current_num_threads(),
        "mixed-r1 reward server listening"
    );
    let state = AppState::new(scorer, config);
    let app = router(state.clone());
    // Small JSON answers: send them at once instead of waiting for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stopping = Arc::new(Notify::new());
    let notify = stopping.clone();
    let signal = async move {
        shutdown.await;
        info!("shutdown signal: no new connections; finishing requests in flight");
        notify.notify_one();
    };
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    tokio::select! {
        r = server => r?,
        _ = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
            warn!(grace_s = grace.as_secs_f64(), "requests still in flight after the shutdown grace period; stopping anyway");
        }
    }
    info!("mixed-r1 reward server stopped");
    Ok(())
}

/// A future that completes on SIGTERM or Ctrl-C (SIGINT).
///
/// The handlers are installed here, when this is called (inside a tokio runtime), not when the
/// future is first polled: call it before announcing the server, so that a SIGTERM sent right
/// after the announcement is a clean shutdown and not the default kill.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
