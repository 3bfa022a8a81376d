//! Sink configuration; defaults live here.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::erp::ErpConfig;
use crate::mapping::MappingConfig;

/// Sink settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Consumer group id. Each ERP target gets its own group, so two sinks to two ERPs each
    /// see every order.
    pub group_id: String,
    /// The ERP to write to.
    pub erp: ErpConfig,
    /// How canonical values become the ERP's (`[sink.mapping]`, see `mapping.rs`).
    pub mapping: MappingConfig,
    /// First retry delay for a transient failure, in milliseconds.
    pub retry_initial_ms: u64,
    /// Longest retry delay (also the cap on an ERP's `Retry-After` and on the breaker's wait
    /// between probes), in milliseconds.
    pub retry_max_ms: u64,
    /// Most ERP calls at once. Unset: the ERP adapter's default (Business Central 5, NetSuite
    /// 5, SAP Business One 8, Odoo 4, SQL 16, HTTP 32), which stays within what each ERP
    /// documents. `1` delivers one record at a time.
    pub max_in_flight: Option<usize>,
    /// Whether concurrency adapts below `max_in_flight`: halved on 429, shrunk when the ERP's
    /// latency grows, grown back while it is healthy.
    pub adaptive_concurrency: bool,
    /// Records fetched and not yet finished (running or waiting behind their order) before
    /// fetching pauses.
    pub max_open_records: usize,
    /// ERP-wide failures in a row (503, unreachable, refused credentials) that open the
    /// breaker: partitions pause, `/readyz` reports not ready, and the ERP is probed.
    pub breaker_threshold: u32,
    /// First wait before probing an ERP whose breaker opened, in milliseconds; doubled after
    /// each failed probe up to `retry_max_ms`.
    pub breaker_probe_ms: u64,
    /// Failed attempts of one record, while the ERP is otherwise healthy, after which it is
    /// parked in the dead-letter topic (class `parked`) so that it cannot hold its order key.
    pub park_after_attempts: u32,
    /// How long an event for an order the ERP does not hold (a cancellation, a refund, a
    /// status that came before its order) waits for the order, in milliseconds. It is
    /// applied as soon as the order lands; past this wait it is dead-lettered as
    /// `order-unknown` (replayable). Its partition's committed offset stays before it
    /// meanwhile: a restart delivers what came after it again, which the upserts absorb.
    pub order_unknown_wait_ms: u64,
    /// Most such events waiting at once; past it the oldest is dead-lettered at once.
    pub max_waiting_for_order: usize,
    /// How long a stopping sink waits for ERP calls already running, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// At a rebalance, how long ERP calls already running for the partitions this member
    /// gives up get to finish (and their offsets to be committed) before the partitions go to
    /// their new owner, in milliseconds. Retries waiting for those partitions stop at once.
    /// Keep it above the ERP's `request_timeout_ms`: a call still running when the
    /// partitions go may land after the new owner wrote the same order.
    pub revoke_grace_ms: u64,
    /// This member's stable name in its group (`group.instance.id`, static membership): a
    /// restarted member with the same name takes its predecessor's partitions at once,
    /// without a rebalance, instead of after the predecessor's session timed out. Use the pod
    /// name of a StatefulSet (`sink-0`); never the same name for two running members.
    /// Unset: dynamic membership.
    pub instance_id: Option<String>,
    /// `fetch.wait.max.ms` of the canonical-topic consumer (see the processor's setting).
    pub fetch_wait_max_ms: u64,
    /// Address for `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// Record what the ERP did with each event (created, updated, already present, stale,
    /// dead-lettered with why) on the status topic; never waited for (see `orderbridge trace`).
    pub status_updates: bool,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            group_id: "orderbridge-sink".into(),
            erp: ErpConfig::default(),
            mapping: MappingConfig::default(),
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
            max_in_flight: None,
            adaptive_concurrency: true,
            max_open_records: 10_000,
            breaker_threshold: 5,
            breaker_probe_ms: 1_000,
            park_after_attempts: 8,
            order_unknown_wait_ms: 300_000,
            max_waiting_for_order: 1_000,
            shutdown_grace_ms: 10_000,
            revoke_grace_ms: 60_000,
            instance_id: None,
            fetch_wait_max_ms: 500,
            listen: SocketAddr::from(([0, 0, 0, 0], 9092)),
            status_updates: true,
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
        if self
            .instance_id
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            return Err("sink.instance_id must not be empty when set".into());
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err("sink.retry_initial_ms must be positive and at most retry_max_ms".into());
        }
        if self.max_in_flight == Some(0) {
            return Err("sink.max_in_flight must be at least 1".into());
        }
        if self.max_open_records == 0
            || self.breaker_threshold == 0
            || self.breaker_probe_ms == 0
            || self.park_after_attempts == 0
        {
            return Err(
                "sink.max_open_records, breaker_threshold, breaker_probe_ms and park_after_attempts must be positive"
                    .into(),
            );
        }
        Ok(())
    }
}
