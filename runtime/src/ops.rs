//! `/metrics`, `/healthz` and `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Whether a service can do its job right now (`/readyz`). Starts not ready.
///
/// Two things decide it: whether the service is up (its consumer joined the group), and
/// whether something it depends on holds it back (the sink's ERP is in a maintenance
/// window). Ready means up and not held.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    held: AtomicBool,
}

impl Health {
    /// A new, not-ready health flag.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Marks the service ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Marks the service held back by a dependency (or no longer).
    pub fn set_held(&self, held: bool) {
        self.held.store(held, Ordering::Relaxed);
    }

    /// Whether a dependency holds the service back.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether the service is ready: up, and not held back.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !self.is_held()
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    health: Arc<Health>,
}

/// A router with `/metrics`, `/healthz` and `/readyz`; ingest merges it into its own router,
/// the processor and sink serve it alone.
pub fn ops_router(registry: Registry, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(OpsState { registry, health })
}

/// How a service reports on itself: its metrics registry, its readiness, and where (if
/// anywhere) to serve them.
pub struct Ops {
    /// Where the service registers its metrics.
    pub registry: Registry,
    /// Behind `/readyz`.
    pub health: Arc<Health>,
    /// Where to serve the endpoints; `None` in `dev` and tests that read metrics directly.
    pub listener: Option<TcpListener>,
}

impl Ops {
    /// Fresh metrics and a not-ready health, served on `listener` if given.
    pub fn new(listener: Option<TcpListener>) -> Self {
        Self {
            registry: Registry::new(),
            health: Health::new(),
            listener,
        }
    }

    /// Starts serving the endpoints in the background until `shutdown`, if there is a listener.
    pub fn serve(&mut self, shutdown: &CancellationToken) {
        if let Some(listener) = self.listener.take() {
            spawn_ops_server(
                listener,
                self.registry.clone(),
                Arc::clone(&self.health),
                shutdown.clone(),
            );
        }
    }
}

/// Serves [`ops_router`] on `listener` in the background until `shutdown`; for the services
/// (processor, sink) whose only HTTP surface is this one.
pub fn spawn_ops_server(
    listener: TcpListener,
    registry: Registry,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let app = ops_router(registry, health);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %err, "ops server failed");
        }
    });
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        ),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_owned())],
            err.to_string().into_bytes(),
        ),
    }
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, "ready")
    } else if state.health.is_held() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: held back by a dependency",
        )
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
