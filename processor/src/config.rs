//! Processor configuration; defaults live here.

use std::net::SocketAddr;

use serde::Deserialize;

/// The processing guarantee, as in Kafka Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    /// Consume → produce → commit offsets in one Kafka transaction. Needs a broker with
    /// transactions (Apache Kafka, the mock cluster; not tansu 0.6).
    ExactlyOnce,
    /// Idempotent producer; offsets stored only after the delivery report. A crash may
    /// re-emit a batch; duplicates are absorbed by event-id dedup and the idempotent sink.
    AtLeastOnce,
}

/// Processor settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// Processing guarantee.
    pub guarantee: Guarantee,
    /// Consumer group id.
    pub group_id: String,
    /// This member's stable name in its group (`group.instance.id`, static membership): a
    /// restarted processor with the same name takes its predecessor's partitions at once,
    /// without a rebalance. It also names the transactional id (`<group_id>-<instance_id>`),
    /// so a restarted processor fences its dead predecessor and aborts its open transaction
    /// at once, instead of the partitions' last stable offset staying held until
    /// `transaction.timeout.ms`. Use the pod name of a StatefulSet (`processor-0`); never the
    /// same name for two running processors. Unset: dynamic membership.
    pub instance_id: Option<String>,
    /// Transactional id (exactly-once). Must be unique per running processor. Unset: derived
    /// from `instance_id` when set, else from the host name and process id (fencing of
    /// zombies is then done by the consumer group generation, KIP-447).
    pub transactional_id: Option<String>,
    /// At a rebalance, how long the batch being gathered gets to commit before the
    /// partitions go to their new owner, in milliseconds.
    pub revoke_grace_ms: u64,
    /// Most records per batch (one transaction per batch).
    pub batch_max_records: usize,
    /// How long to wait to fill a batch once its first record arrived.
    pub batch_linger_ms: u64,
    /// `fetch.wait.max.ms` of the raw-topic consumer: how long a fetch may wait for data.
    /// Apache Kafka answers as soon as data arrives, so this mostly bounds idle polling;
    /// brokers that do not wake waiting fetches (librdkafka's mock holds an empty fetch for
    /// the whole wait, tansu sleeps out every fetch's wait) add up to this much latency, so
    /// `dev` turns it down to 10 ms and so should a deployment on such a broker.
    pub fetch_wait_max_ms: u64,
    /// How far back a repeated delivery (same `ob-event-id`) is recognised, in seconds
    /// (default 7 days); `0` turns the duplicate filter off. The filter's state is kept in the
    /// compacted processor-state topic, one entry per order.
    pub dedup_retention_secs: u64,
    /// How long attribution and orders wait for each other, in seconds (default 7 days): an
    /// order emitted up to this long after its attribution carries it, and attribution
    /// arriving up to this long after its order emits an update of it. `0` turns the join
    /// off (the attribution topic is then not read). Like the duplicate filter, the state is
    /// kept in the processor-state topic; the attribution topic should retain this long.
    pub attribution_window_secs: u64,
    /// How long a new order without attribution waits for it before it is emitted, in ms
    /// (default 0: orders go out at once, and late attribution is an update). While an order
    /// waits, its partition's committed offset stays before it (a crash re-reads it and it
    /// waits again) and its later events wait behind it. Needs the join and the duplicate
    /// filter on.
    pub attribution_wait_ms: u64,
    /// How the generic senders' payloads (`standard-webhooks`, `custom`) read as orders:
    /// source → account (or `"*"`) → mapping. See `sources/mapped.rs`.
    pub mappings: crate::sources::mapped::Mappings,
    /// Address for `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// Record what became of each record (normalized, duplicate, dead-lettered) on the status
    /// topic once its batch committed; never waited for (see `orderbridge trace`).
    pub status_updates: bool,
    /// Which accounts' thin notifications `orderbridge enrich` completes (those with an
    /// `[api.<source>]`): their notifications are counted as `awaiting_enrichment` and
    /// emit nothing, the whole order comes back as a document. Set from `[api]`, not here.
    #[serde(skip)]
    pub enrichment: orderbridge_providers::completion::Enrichment,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            guarantee: Guarantee::ExactlyOnce,
            group_id: "orderbridge-processor".into(),
            instance_id: None,
            transactional_id: None,
            revoke_grace_ms: 60_000,
            batch_max_records: 500,
            batch_linger_ms: 20,
            fetch_wait_max_ms: 500,
            dedup_retention_secs: 7 * 24 * 3600,
            attribution_window_secs: 7 * 24 * 3600,
            attribution_wait_ms: 0,
            mappings: crate::sources::mapped::Mappings::new(),
            listen: SocketAddr::from(([0, 0, 0, 0], 9091)),
            status_updates: true,
            enrichment: orderbridge_providers::completion::Enrichment::default(),
        }
    }
}

impl ProcessorConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A description of the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_max_records == 0 {
            return Err("processor.batch_max_records must be positive".into());
        }
        if self.group_id.trim().is_empty() {
            return Err("processor.group_id must not be empty".into());
        }
        if self
            .instance_id
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            return Err("processor.instance_id must not be empty when set".into());
        }
        if self.attribution_wait_ms > 0
            && (self.attribution_window_secs == 0 || self.dedup_retention_secs == 0)
        {
            // Records after a held one are emitted but not committed past; after a crash
            // only the duplicate filter keeps them from being emitted twice.
            return Err(
                "processor.attribution_wait_ms needs attribution_window_secs and \
                        dedup_retention_secs above 0"
                    .into(),
            );
        }
        for (source, accounts) in &self.mappings {
            // Sources with a normalizer of their own are read by it, never by a mapping.
            if !matches!(source.as_str(), "standard-webhooks" | "custom") {
                return Err(format!(
                    "processor.mappings.{source}: only standard-webhooks and custom are mapped"
                ));
            }
            for (account, mapping) in accounts {
                if mapping.events.is_empty() {
                    return Err(format!(
                        "processor.mappings.{source}.{account}.events names no event type"
                    ));
                }
                if let Some(pointer) = mapping
                    .pointers()
                    .find(|p| !p.is_empty() && !p.starts_with('/'))
                {
                    return Err(format!(
                        "processor.mappings.{source}.{account}: {pointer:?} is not a JSON pointer (it starts with /)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The transactional id to use.
    pub fn transactional_id(&self) -> String {
        if let Some(id) = &self.transactional_id {
            return id.clone();
        }
        if let Some(instance) = &self.instance_id {
            return format!("{}-{instance}", self.group_id);
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        format!("{}-{host}-{}", self.group_id, std::process::id())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn with_mappings(text: &str) -> Result<(), String> {
        let config: ProcessorConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()
    }

    #[test]
    fn mappings_are_checked_before_any_record_meets_them() {
        with_mappings(
            r#"[mappings.custom.woo]
            order_id = "/id"
            events = { "order.created" = "CREATED" }"#,
        )
        .unwrap();
        let err = with_mappings(
            r#"[mappings.shopify.shop]
            order_id = "/id"
            events = { "orders/create" = "CREATED" }"#,
        )
        .unwrap_err();
        assert!(err.contains("only standard-webhooks and custom"), "{err}");
        let err = with_mappings(
            r#"[mappings.custom.woo]
            order_id = "data.id"
            events = { "order.created" = "CREATED" }"#,
        )
        .unwrap_err();
        assert!(err.contains("not a JSON pointer"), "{err}");
        let err = with_mappings(
            r#"[mappings.custom.woo]
            order_id = "/id"
            events = {}"#,
        )
        .unwrap_err();
        assert!(err.contains("names no event type"), "{err}");
        assert!(with_mappings(
            r#"[mappings.custom.woo]
            order_id = "/id"
            events = { "x" = "SHIPPED" }"#
        )
        .is_err());
    }
}
