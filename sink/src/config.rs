//! Sink configuration; defaults live here.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::erp::ErpConfig;

/// Sink settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Consumer group id. Each ERP target gets its own group, so two sinks to two ERPs each
    /// see every order.
    pub group_id: String,
    /// The ERP to write to.
    pub erp: ErpConfig,
    /// First retry delay for a transient failure, in milliseconds.
    pub retry_initial_ms: u64,
    /// Longest retry delay (also the cap on an ERP's `Retry-After`), in milliseconds.
    pub retry_max_ms: u64,
    /// `fetch.wait.max.ms` of the canonical-topic consumer (see the processor's setting).
    pub fetch_wait_max_ms: u64,
    /// Address for `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            group_id: "orderbridge-sink".into(),
            erp: ErpConfig::default(),
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
            fetch_wait_max_ms: 500,
            listen: SocketAddr::from(([0, 0, 0, 0], 9092)),
        }
    }
}

impl SinkConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A description of the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.group_id.trim().is_empty() {
            return Err("sink.group_id must not be empty".into());
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err("sink.retry_initial_ms must be positive and at most retry_max_ms".into());
        }
        Ok(())
    }
}
