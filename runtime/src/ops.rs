//! `/metrics`, `/healthz` and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
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
/// window, the schema registry does not answer, the broker cannot be reached). Ready means
/// up and held back by nothing.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    /// One bit per [`Dependency`] holding the service back.
    held: AtomicU8,
}

/// What can hold a service back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The ERP (the sink's breaker is open).
    Erp,
    /// The schema registry cannot answer (or refuses our schema).
    Registry,
    /// The Kafka cluster cannot be reached.
    Kafka,
}

impl Dependency {
    const ALL: [Dependency; 3] = [Dependency::Erp, Dependency::Registry, Dependency::Kafka];

    fn bit(self) -> u8 {
        match self {
            Dependency::Erp => 1,
            Dependency::Registry => 2,
            Dependency::Kafka => 4,
        }
    }

    /// How `/readyz` names it.
    pub fn name(self) -> &'static str {
        match self {
            Dependency::Erp => "the ERP",
            Dependency::Registry => "the schema registry",
            Dependency::Kafka => "Kafka",
        }
    }
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

    /// Marks the service held back by `dependency` (or no longer).
    pub fn set_held(&self, dependency: Dependency, held: bool) {
        if held {
            self.held.fetch_or(dependency.bit(), Ordering::Relaxed);
        } else {
            self.held.fetch_and(!dependency.bit(), Ordering::Relaxed);
        }
    }

    /// Whether `dependency` holds the service back.
    pub fn is_held_by(&self, dependency: Dependency) -> bool {
        self.held.load(Ordering::Relaxed) & dependency.bit() != 0
    }

    /// Whether any dependency holds the service back.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed) != 0
    }

    /// The dependencies holding the service back.
    pub fn held_by(&self) -> Vec<Dependency> {
        Dependency::ALL
            .into_iter()
            .filter(|d| self.is_held_by(*d))
            .collect()
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
        (StatusCode::OK, "ready".to_owned())
    } else if state.health.is_held() {
        let names: Vec<&str> = state
            .health
            .held_by()
            .into_iter()
            .map(Dependency::name)
            .collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: held back by {}", names.join(" and ")),
        )
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dependency_holds_the_service_back_until_it_is_released() {
        let health = Health::new();
        health.set_ready(true);
        assert!(health.is_ready());
        health.set_held(Dependency::Erp, true);
        health.set_held(Dependency::Registry, true);
        assert!(!health.is_ready());
        assert_eq!(
            health.held_by(),
            vec![Dependency::Erp, Dependency::Registry]
        );
        // The breaker closing does not release what the registry holds.
        health.set_held(Dependency::Erp, false);
        assert!(!health.is_ready() && health.is_held_by(Dependency::Registry));
        health.set_held(Dependency::Registry, false);
        assert!(health.is_ready());
    }
}
