//! Sink: canonical orders in, ERP records out — each order once, whatever is redelivered.
//!
//! Layout:
//! - `erp/` — the [`ErpClient`](erp::ErpClient) trait and the decision table with the version
//!   guard (`erp/mod.rs`), one adapter per ERP (`sql`, `business_central`,
//!   `sap_business_one`, `netsuite`, `odoo`, `http`), the status table every HTTP adapter
//!   goes through (`erp/status.rs`), the external reference (`erp/reference.rs`) and the
//!   marketing attribution as each ERP holds it (`erp/attribution.rs`).
//! - `delivery/` — the engine: records of one order in order, different orders in parallel
//!   under an adaptive limit, offsets stored behind the oldest unfinished record, a breaker
//!   for maintenance windows, dead letters and parking.
//! - `config.rs` — [`SinkConfig`].
//! - `metrics.rs` — every metric name of this crate.

pub mod config;
pub mod delivery;
pub mod erp;
pub mod mapping;
pub mod metrics;

use std::sync::Arc;

use orderbridge_runtime::{KafkaSettings, Ops};
use orderbridge_schemas::{OrderEventCodec, Topics};
use tokio_util::sync::CancellationToken;

pub use config::SinkConfig;
pub use delivery::Delivery;
pub use erp::{ErpClient, ErpConfig, ErpError, Upserted};
pub use metrics::SinkMetrics;

/// Errors that stop the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A Kafka client failed or could not be built.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The ERP client could not be set up.
    #[error("erp: {0}")]
    Erp(#[from] erp::ErpSetupError),
    /// Configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The consumer's poll thread could not be started.
    #[error("consumer thread: {0}")]
    Thread(std::io::Error),
    /// A delivery task panicked (an adapter bug); its record stays uncommitted.
    #[error("delivery task failed: {0}")]
    Task(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Runs the sink until `shutdown` with the ERP client `erp`, reporting through `ops` (metrics, and
/// readiness once the consumer joined its group; served if it has a listener).
///
/// # Errors
/// When a client cannot be built or the consumer fails.
pub async fn run(
    config: &SinkConfig,
    kafka: &KafkaSettings,
    topics: &Topics,
    codec: Arc<OrderEventCodec>,
    erp: Arc<dyn ErpClient>,
    mut ops: Ops,
    shutdown: CancellationToken,
) -> Result<(), SinkError> {
    config.validate().map_err(SinkError::Config)?;
    let metrics = SinkMetrics::register(&ops.registry)?;
    ops.serve(&shutdown);
    Delivery::new(kafka, topics, config, codec, erp, metrics, ops.health)?
        .run(shutdown)
        .await
}
