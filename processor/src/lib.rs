//! Processor: raw webhooks in, canonical `OrderEvent`s out, nothing dropped.
//!
//! Layout:
//! - `sources/` — the [`Normalizer`](sources::Normalizer) trait and one pure normalizer per
//!   source (`sources/shopify.rs`, …, shared parsing in `sources/common.rs`), tested by golden
//!   fixtures under `tests/fixtures/<source>/`.
//! - `pipeline.rs` — the Kafka loop: batches, the exactly-once transaction or the
//!   at-least-once delivery-then-store, rewind and retry, dead letters.
//! - `state/` — what the processor remembers per partition (event ids already emitted, for
//!   duplicates; attribution and what was emitted per order, for the attribution join), read
//!   back from the canonical and attribution topics after every rebalance.
//! - `config.rs` — [`ProcessorConfig`] and the [`Guarantee`].
//! - `metrics.rs` — every metric name of this crate.

pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod sources;
pub mod state;

use std::sync::Arc;

use orderbridge_runtime::{KafkaSettings, Ops};
use orderbridge_schemas::{OrderEventCodec, Topics};
use tokio_util::sync::CancellationToken;

pub use config::{Guarantee, ProcessorConfig};
pub use metrics::ProcessorMetrics;
pub use pipeline::Pipeline;

/// Errors that stop the processor.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// A Kafka client failed fatally or could not be built.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The ops server failed.
    #[error("ops server: {0}")]
    Serve(#[from] std::io::Error),
    /// The topics cannot be joined: missing, or not co-partitioned.
    #[error("topics: {0}")]
    Topics(#[from] orderbridge_runtime::TopicError),
    /// The consumer's poll thread stopped.
    #[error("the consumer's poll thread stopped")]
    Stopped,
    /// A blocking Kafka call panicked or was cancelled.
    #[error("blocking task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs the processor until `shutdown`, reporting through `ops` (metrics, and
/// readiness once the consumer joined its group; served if it has a listener).
///
/// # Errors
/// When a client cannot be built or the pipeline fails fatally.
pub async fn run(
    config: &ProcessorConfig,
    kafka: &KafkaSettings,
    topics: &Topics,
    codec: Arc<OrderEventCodec>,
    mut ops: Ops,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    config.validate().map_err(ProcessorError::Config)?;
    let metrics = ProcessorMetrics::register(&ops.registry)?;
    ops.serve(&shutdown);
    // Partition N of raw, canonical, attribution and the state topic must meet in one
    // member. A broker that cannot be reached yet (restarting, or not up before us) is
    // waited for, reporting not ready, rather than a crash loop; topics that are missing or
    // disagree are a configuration to fix.
    let mut backoff = orderbridge_runtime::Backoff::new(
        std::time::Duration::from_millis(500),
        std::time::Duration::from_secs(15),
    );
    loop {
        match orderbridge_runtime::check_copartitioned(kafka, topics).await {
            Ok(()) => {
                ops.health
                    .set_held(orderbridge_runtime::Dependency::Kafka, false);
                break;
            }
            Err(orderbridge_runtime::TopicError::Kafka(err)) => {
                ops.health
                    .set_held(orderbridge_runtime::Dependency::Kafka, true);
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "Kafka cannot be reached yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    let pipeline = Pipeline::new(kafka, topics, config, codec, metrics, ops.health)?;
    pipeline.run(shutdown).await
}
