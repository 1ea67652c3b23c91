//! The HTTP surface: the axum router, its layers and shared state.
//!
//! - `verify.rs`: the [`verify::SlackRequest`] extractor (size, timestamp,
//!   signature) that every Slack route goes through before parsing.
//! - `payloads.rs`: thin serde types of what Slack sends.
//! - `slack.rs`: the events, interactions and `/pulse` handlers.
//! - `mattermost.rs`: Mattermost's button and `/pulse` callbacks.
//! - `serve.rs`: serving connections within the `[server]` timeouts and cap.
//! - this file: routes, layers, `/healthz`, `/readyz` and `/metrics`.

pub mod mattermost;
pub mod payloads;
pub mod serve;
pub mod slack;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRef, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::clock::Clock;
use crate::config::Settings;
use crate::health::{self, Health};
use crate::service::readiness::Assessor;
use crate::store::Store;

/// Largest request body accepted, 1 MiB (the limit the README documents).
/// Slack's largest real payloads, `block_actions` carrying the whole message
/// and its state, are tens of KiB; anything near this is not Slack.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Slack expects an answer within 3 s; a request still running after this
/// is cut off rather than left to pile up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub metrics: Option<PrometheusHandle>,
    /// Re-assesses people after their answers are stored, off the request.
    pub assessor: Assessor,
    /// The supervised workers' state, for `/readyz`.
    pub health: Health,
}

impl FromRef<AppState> for verify::Verifier {
    fn from_ref(app: &AppState) -> Self {
        Self {
            secret: app.settings.chat.slack.signing_secret.clone(),
            clock: app.clock.clone(),
            max_body: MAX_BODY_BYTES,
        }
    }
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(handle_healthz))
        .route("/readyz", get(handle_readyz))
        .route("/metrics", get(handle_metrics))
        .route("/slack/events", post(slack::handle_events))
        .route("/slack/interactions", post(slack::handle_interactions))
        .route("/slack/commands", post(slack::handle_commands))
        .route("/mattermost/actions", post(mattermost::handle_actions))
        .route("/mattermost/commands", post(mattermost::handle_commands))
        .with_state(state)
        .layer(middleware::from_fn(track_requests))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
}

/// Counts requests by route and outcome, and records their latency.
async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let outcome = match response.status().as_u16() {
        200..=299 => "ok",
        400..=499 => "refused",
        _ => "error",
    };
    metrics::counter!("nudged_http_requests_total", "route" => route.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("nudged_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Liveness: 200 `ok` whenever the process answers HTTP. Nothing else is
/// checked: a liveness probe that failed on a database outage would have
/// the process restarted, which fixes nothing; `/readyz` reports that.
async fn handle_healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Readiness: 200 `ready`, or 503 with one line per cause (a worker down,
/// the store not taking writes, messages waiting too long); see
/// [`health::check_ready`].
async fn handle_readyz(State(state): State<AppState>) -> Response {
    let problems = health::check_ready(
        &state.health,
        state.store.as_ref(),
        state.clock.now(),
        state.settings.server.readyz_max_outbox_lag,
    )
    .await;
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        tracing::debug!(?problems, "not ready");
        let mut body = problems.join("\n");
        body.push('\n');
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// Prometheus text exposition.
async fn handle_metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
