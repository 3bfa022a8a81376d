//! What operators read besides the orders themselves: each order's status as the stages
//! record it (`orders.status.v1`), and the log of operator actions (`orders.audit.v1`).
//! Both are JSON, so that anything can read them; neither is needed to deliver an order.

use serde::{Deserialize, Serialize};

/// What a stage did with one record of an order: the value of a status-topic record, keyed
/// by the order key. The topic is compacted, so for each order the newest survives; until
/// compaction runs, the history is there too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// `<source>:<account>:<order id>`.
    pub order_key: String,
    /// The stage that recorded it: `ingest`, `processor`, `sink`.
    pub stage: String,
    /// What happened.
    pub status: Status,
    /// When, unix milliseconds.
    pub at: i64,
    /// The provider's event id of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The provider's event type (`orders/create`, `api:getOrder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// `webhook`, `backfill`, `poll`, `enrich`, `replay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Which rotation secret verified the webhook (ingest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
    /// The dead letter's class (`invalid`, `erp-rejected`, `parked`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Why, in words (a dead letter's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ERP written to (sink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp: Option<String>,
    /// The event's version (the order's updated-at as a sequence), when the stage knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Where the record this status is about was read: `<topic>:<partition>:<offset>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// How many events this one record stands for (signature refusals, summed per source
    /// and reason); absent: one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl StatusRecord {
    /// A record of `status` for `order_key` by `stage`, now, with nothing else known yet.
    pub fn new(order_key: impl Into<String>, stage: &str, status: Status, at: i64) -> Self {
        Self {
            order_key: order_key.into(),
            stage: stage.to_owned(),
            status,
            at,
            event_id: None,
            event_type: None,
            origin: None,
            secret_id: None,
            class: None,
            reason: None,
            erp: None,
            version: None,
            record: None,
            count: None,
        }
    }
}

/// What a stage did with an order's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Ingest verified the webhook and the raw topic has it.
    Received,
    /// The processor made it a canonical event.
    Normalized,
    /// The processor had emitted this delivery before: nothing new.
    Duplicate,
    /// A thin notification: `orderbridge enrich` fetches the whole order, which comes back
    /// through the raw topic and is normalized then.
    AwaitingEnrichment,
    /// A stage could not handle it: see `class` and `reason`; replayable.
    DeadLettered,
    /// The ERP created the order.
    Created,
    /// The ERP's order was brought up to this event.
    Updated,
    /// The ERP already held this event (a redelivery or replay).
    AlreadyPresent,
    /// The ERP holds a newer version; this event was not applied.
    Stale,
    /// Nothing to apply in this ERP (a booked or cancelled document).
    Skipped,
    /// Ingest refused a webhook whose signature (or timestamp) did not verify: 401. Keyed
    /// [`SIGNATURE_KEY_PREFIX`]`<source>`, never by order (nothing of the body is trusted).
    SignatureRejected,
}

/// The key prefix of [`Status::SignatureRejected`] records: `signature:<source>`.
pub const SIGNATURE_KEY_PREFIX: &str = "signature:";

impl Status {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Normalized => "normalized",
            Status::Duplicate => "duplicate",
            Status::AwaitingEnrichment => "awaiting-enrichment",
            Status::DeadLettered => "dead-lettered",
            Status::Created => "created",
            Status::Updated => "updated",
            Status::AlreadyPresent => "already-present",
            Status::Stale => "stale",
            Status::Skipped => "skipped",
            Status::SignatureRejected => "signature-rejected",
        }
    }
}

/// One operator action: the value of an audit-topic record, keyed by the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, unix milliseconds.
    pub at: i64,
    /// Who: the console's user, or the command's `--actor` (else the login name).
    pub actor: String,
    /// What: `dlq-replay`, `reprocess`, `subscribe`, `console-sign-in`.
    pub action: String,
    /// The arguments, as given.
    pub arguments: serde_json::Value,
    /// `ok`, `dry-run`, `refused` or `failed`.
    pub result: String,
    /// What it did or why not: counts, the records it touched, the error.
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_status_record_reads_back_and_leaves_out_what_it_does_not_know() {
        let mut record = StatusRecord::new("shopify:-:1", "sink", Status::AlreadyPresent, 42);
        record.erp = Some("business-central".into());
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"order_key":"shopify:-:1","stage":"sink","status":"already-present","at":42,"erp":"business-central"}"#
        );
        assert_eq!(serde_json::from_str::<StatusRecord>(&json).unwrap(), record);
        for status in [Status::DeadLettered, Status::Received, Status::Stale] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.as_str().into())
            );
        }
    }
}
