//! The routes, their handlers, and the middleware that logs and counts every request.
//!
//! A scoring request goes: take a scoring slot (`max_concurrency`), read the body under
//! `max_body_bytes` and `read_timeout`, then parse + check + score + serialise on the rayon pool
//! (never on the async threads). `request_timeout` bounds the server's part: waiting for the slot
//! plus scoring, not the time the client takes to send. The slot travels with the rayon job,
//! so a client that gives up does not free capacity that is still being used for its batch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mixed_r1_reward::{ScoreResult, Scorer, ScoringSample};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::{oneshot, Semaphore};
use tokio::time::{timeout_at, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::{debug, warn};

use crate::body::read_body;
use crate::error::{ApiError, ErrorKind};
use crate::metrics::{endpoint_label, BatchStats, Metrics};
use crate::openrlhf::{build_samples, RewardRequest, RewardResponse};
use crate::ServerConfig;

/// Everything a handler needs; shared by all requests.
pub struct AppState {
    pub scorer: Arc<Scorer>,
    pub config: ServerConfig,
    pub metrics: Metrics,
    slots: Arc<Semaphore>,
}

impl AppState {
    pub fn new(scorer: Arc<Scorer>, config: ServerConfig) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
        Arc::new(AppState {
            scorer,
            config,
            metrics: Metrics::default(),
            slots,
        })
    }
}

/// The number of samples a response carried, for the request log line.
#[derive(Clone, Copy)]
struct SampleCount(usize);

/// The router with every route and layer; serve it with [`crate::serve`].
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/get_reward", post(get_reward))
        .route("/score", post(score))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        // A panic in a handler becomes a 500 for that request; the server goes on.
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(
                ErrorKind::Internal,
                "internal error (a bug); see the server log",
            )
            .into_response()
        }))
        .with_state(state)
}

/// Logs one line per request (debug) and records it in the metrics.
async fn track(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = StdInstant::now();
    let endpoint = endpoint_label(req.uri().path());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let _in_flight = app.metrics.in_flight();
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let error = resp.extensions().get::<ErrorKind>().copied();
    let samples = resp.extensions().get::<SampleCount>().map(|c| c.0);
    app.metrics
        .record_request(endpoint, resp.status().as_u16(), error, elapsed);
    debug!(
        %method,
        path,
        status = resp.status().as_u16(),
        ms = format_args!("{:.2}", elapsed.as_secs_f64() * 1e3),
        samples,
        error = error.map(|k| k.label()),
        "request"
    );
    resp
}

async fn get_reward(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    scoring_request(app, headers, body, openrlhf_work).await
}

async fn score(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    scoring_request(app, headers, body, score_work).await
}

/// The CPU part of a scoring request: body bytes in, JSON bytes and statistics out.
type Work = fn(&AppState, &[u8]) -> Result<(Vec<u8>, BatchStats), ApiError>;

async fn scoring_request(
    app: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    work: Work,
) -> Response {
    match run_scoring(app, headers, body, work).await {
        Ok(resp) => resp,
        Err(e) => {
            if e.kind == ErrorKind::Internal {
                warn!(error = %e.message, "internal error");
            }
            e.into_response()
        }
    }
}

async fn run_scoring(
    app: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    work: Work,
) -> Result<Response, ApiError> {
    let cfg = &app.config;
    let deadline = Instant::now() + cfg.request_timeout;
    let slot = timeout_at(deadline, app.slots.clone().acquire_owned())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::Busy,
                format!(
                    "server busy: no scoring slot free within {:?} ({} requests in progress; \
                     server options --max-concurrency, --request-timeout)",
                    cfg.request_timeout, cfg.max_concurrency
                ),
            )
        })?
        .map_err(|_| ApiError::new(ErrorKind::Busy, "server is shutting down"))?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The client's sending time is bounded by its own limit and not charged to the server's.
    let read_started = Instant::now();
    let bytes: Bytes = read_body(
        body,
        declared,
        cfg.max_body_bytes,
        read_started + cfg.read_timeout,
    )
    .await?;
    let deadline = deadline + read_started.elapsed();

    let (tx, rx) = oneshot::channel();
    let job_app = app.clone();
    rayon::spawn(move || {
        // Held until the batch is done, even if the client has gone.
        let _slot = slot;
        // rayon aborts the process on a panic in a spawned job: catch it here.
        let out = catch_unwind(AssertUnwindSafe(|| work(&job_app, &bytes))).unwrap_or_else(|_| {
            Err(ApiError::new(
                ErrorKind::Internal,
                "internal error while scoring (a bug); see the server log",
            ))
        });
        let _ = tx.send(out);
    });
    let (json, stats) = timeout_at(deadline, rx)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::Timeout,
                format!(
                    "scoring did not finish within {:?} (server option --request-timeout)",
                    cfg.request_timeout
                ),
            )
        })?
        .map_err(|_| ApiError::new(ErrorKind::Internal, "the scoring job vanished (a bug)"))??;
    app.metrics.record_batch(&stats);
    let mut resp = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response();
    resp.extensions_mut().insert(SampleCount(stats.samples));
    Ok(resp)
}

fn check_batch(n: usize, max: usize, field: &str) -> Result<(), ApiError> {
    if n > max {
        return Err(ApiError::new(
            ErrorKind::BatchTooLarge,
            format!(
                "{field} has {n} samples, more than the limit of {max} (server option --max-batch); \
                 split the batch"
            ),
        )
        .with_field(field));
    }
    Ok(())
}

/// `POST /get_reward`: OpenRLHF's remote reward protocol.
fn openrlhf_work(app: &AppState, body: &[u8]) -> Result<(Vec<u8>, BatchStats), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let req: RewardRequest = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ApiError::from_json(e, "", "the body"))?;
    de.end().map_err(|e| {
        ApiError::new(
            ErrorKind::BadJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    check_batch(req.query.len(), app.config.max_batch, "query")?;
    let (samples, extraction) = build_samples(req, app.config.default_task.as_deref())?;
    let results = app.scorer.score_batch(&samples);
    if let Some(r) = results.iter().find(|r| r.reward.is_none()) {
        debug!(
            skipped = results.iter().filter(|r| r.reward.is_none()).count(),
            first = r.error.as_deref().unwrap_or(""),
            "get_reward: samples skipped (sent as reward 0.0)"
        );
    }
    let stats = BatchStats::from_results(&results, extraction);
    let json = serde_json::to_vec(&RewardResponse::from_results(&results))
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("cannot write JSON: {e}")))?;
    Ok((json, stats))
}

/// `POST /score`: a JSON array of scoring samples; a result object per sample, in order. A
/// sample that cannot be read gets its own result with `reward: null` and the error, like a bad
/// line of `mixed-r1 reward score`; only a body that is not a JSON array fails as a whole.
fn score_work(app: &AppState, body: &[u8]) -> Result<(Vec<u8>, BatchStats), ApiError> {
    use rayon::prelude::*;
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::new(
                ErrorKind::BadField,
                format!("the body must be a JSON array of samples: {e}"),
            ),
            _ => ApiError::new(
                ErrorKind::BadJson,
                format!("the body is not valid JSON: {e}"),
            ),
        }
    })?;
    check_batch(items.len(), app.config.max_batch, "the body")?;
    let results: Vec<ScoreResult> = items
        .par_iter()
        .enumerate()
        .map(|(i, raw)| score_raw(&app.scorer, i, raw))
        .collect();
    let stats = BatchStats::from_results(&results, [0; 3]);
    let json = serde_json::to_vec(&results)
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("cannot write JSON: {e}")))?;
    Ok((json, stats))
}

fn score_raw(scorer: &Scorer, i: usize, raw: &RawValue) -> ScoreResult {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    match serde_path_to_error::deserialize::<_, ScoringSample>(&mut de) {
        Ok(sample) => scorer.score(&sample),
        Err(e) => {
            let e = ApiError::from_json(e, &format!("[{i}]"), &format!("sample [{i}]"));
            let mut r = ScoreResult::failed(format!("bad sample: {}", e.message));
            // Keep the id when it can be read, so the caller can match the error to its sample.
            #[derive(Deserialize)]
            struct IdOnly {
                id: Option<Value>,
            }
            r.id = serde_json::from_str::<IdOnly>(raw.get())
                .ok()
                .and_then(|x| x.id);
            r
        }
    }
}

/// `GET /health`: liveness and what this server scores with.
async fn health(State(app): State<Arc<AppState>>) -> Response {
    let cfg = app.scorer.config();
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "bmas": app.scorer.bmas().is_some(),
        "default_task": app.config.default_task,
        "accuracy_weight": cfg.accuracy_weight,
        "format_weight": cfg.format_weight,
        "max_batch": app.config.max_batch,
        "max_body_bytes": app.config.max_body_bytes,
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        app.metrics.render(),
    )
        .into_response()
}

const ROUTES: &str =
    "routes: POST /get_reward (OpenRLHF), POST /score (JSON array of samples), GET /health, GET /metrics";

async fn not_found(req: Request) -> Response {
    ApiError::new(
        ErrorKind::NotFound,
        format!("no route {} {}; {ROUTES}", req.method(), req.uri().path()),
    )
    .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "method {} not allowed on {}; {ROUTES}",
            req.method(),
            req.uri().path()
        ),
    )
    .into_response()
}
