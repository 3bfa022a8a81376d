//! Ingest: the only door into the pipeline.
//!
//! A webhook is verified on its raw bytes, then published untouched to `orders.raw.v1`,
//! keyed by its order key, and only when the broker has acknowledged the write does the
//! provider get its 2xx. Nothing here parses more of a body than it needs for the key.
//!
//! Layout:
//! - `verify/` — the [`Verifier`] trait, the [`Verified`] wrapper only a verifier can build,
//!   the HMAC engine with its presets (`scheme.rs`), id and key extraction (`extract.rs`),
//!   credential checks (`credentials.rs`), one file per source (`shopify.rs`, `amazon_sns.rs`,
//!   …) and `registry.rs`, which builds the verifier of every configured route.
//! - `publish.rs` — the Kafka producer (built in one place, `acks=all`, idempotent) and the
//!   raw record with its `ob-` headers.
//! - `router.rs` — the axum [`Router`](axum::Router): `POST /webhooks/{source}[/{account}]`
//!   plus `/metrics`, `/healthz`, `/readyz`. Tests drive it without a socket.
//! - `config.rs` — [`IngestConfig`]; `development.rs` — every source configured with one
//!   secret, for `dev`, the fuzzers and the benchmark.
//! - `metrics.rs` — every metric name of this crate.
//!
//! Status codes: 200 after the broker acknowledged (or a handshake's own answer); 401 for a
//! missing, wrong or stale signature (counted, nothing published, nothing echoed); 404 for an
//! unknown or unconfigured source or account; 405 for a method the route does not take; 413
//! over the body limit; 503 with `Retry-After` when Kafka could not take the write in time or
//! key material could not be fetched (SNS counts any 4xx as delivered, so "retry" is a 5xx).

pub mod config;
pub mod development;
pub mod metrics;
pub mod publish;
pub mod router;
pub mod serve;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use orderbridge_runtime::{Health, KafkaSettings};
use orderbridge_schemas::Topics;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::IngestConfig;
pub use metrics::IngestMetrics;
pub use publish::{PublishError, Publisher};
pub use router::{router, IngestState};
pub use verify::{Verified, Verifier, VerifyError};

/// Errors that stop ingest from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The Kafka producer could not be created.
    #[error("kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Serves ingest on `listener` until `shutdown` is cancelled, then flushes the producer.
///
/// # Errors
/// When the producer cannot be built, the configuration is invalid or the server fails.
pub async fn run(
    config: &IngestConfig,
    kafka: &KafkaSettings,
    topics: &Topics,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let registry = prometheus::Registry::new();
    run_with_registry(config, kafka, topics, listener, registry, shutdown).await
}

/// [`run`], registering ingest's metrics in `registry` and serving all of it on `/metrics`:
/// `dev` passes the registry its processor and sink register in, so one endpoint shows
/// every stage.
///
/// # Errors
/// As [`run`].
pub async fn run_with_registry(
    config: &IngestConfig,
    kafka: &KafkaSettings,
    topics: &Topics,
    listener: TcpListener,
    registry: prometheus::Registry,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let health = Health::new();
    let state = IngestState::from_config(config, kafka, topics, &registry)?;
    let readiness = tokio::spawn(
        state
            .publisher()
            .watch_readiness(Arc::clone(&health), shutdown.clone()),
    );
    let app = router(state.clone(), registry, health);
    tracing::info!(addr = ?listener.local_addr().ok(), "ingest listening");
    serve::serve(
        listener,
        app,
        serve::ServeLimits::of(config),
        shutdown.clone(),
    )
    .await?;
    readiness.abort();
    // In-flight requests have had their answers; anything still queued was never acknowledged
    // to a provider, but flush it anyway so a retry finds it already there.
    state.publisher().flush(Duration::from_secs(5));
    Ok(())
}
