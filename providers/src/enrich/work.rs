//! One record of the enrich stage: what it is, what to fetch, and where it ends — the raw
//! topic (the whole order, `ob-origin: enrich`), the retry topic (tried again later), or the
//! dead-letter topic (with the provider's reason). Every record ends in exactly one of them,
//! or in a counted decision that it needs nothing (`complete`, `not_configured`, `document`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use orderbridge_runtime::{dlq_headers, header_str, now_ms, Backoff, DeadLetter};
use orderbridge_schemas::{headers as ob, Origin, Source, Topics};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::EnrichConfig;
use crate::api::{OrderApi, OrderRef};
use crate::client::ApiError;
use crate::completion::{completion, key_order_id, Completion};
use crate::metrics::EnrichMetrics;
use crate::publish::{RawDocument, RawPublisher};
use crate::Apis;

/// Which topic a reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The raw topic: every webhook, of which the thin notifications are completed.
    Raw,
    /// The retry topic: notifications whose completion failed for now.
    Retry,
}

/// How a record's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// It reached its end (the label says which, for the metric): its offset may be committed.
    Done(&'static str),
    /// Stopped (revoked, shutting down) before its end: not committed; it is read again.
    Abandoned,
}

/// One account's share of the stage: its fetches at once, and how many wait for one.
struct Lane {
    permits: Semaphore,
    waiting: AtomicUsize,
}

/// Counts a record waiting in a lane for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What every record's work shares.
pub(super) struct Worker {
    pub(super) config: EnrichConfig,
    pub(super) topics: Topics,
    pub(super) apis: Arc<Apis>,
    pub(super) publisher: RawPublisher,
    pub(super) producer: FutureProducer,
    pub(super) metrics: EnrichMetrics,
    lanes: Mutex<HashMap<(Source, String), Arc<Lane>>>,
}

/// What the stage reads of a record's headers.
struct Record<'a> {
    source: Option<Source>,
    account: &'a str,
    event_type: &'a str,
    event_id: &'a str,
    origin: &'a str,
    attempts: u32,
    first_at: Option<i64>,
}

impl<'a> Record<'a> {
    fn read(message: &'a OwnedMessage) -> Self {
        let number = |key| header_str(message, key).and_then(|v| v.parse::<i64>().ok());
        Self {
            source: header_str(message, ob::SOURCE).and_then(|s| s.parse().ok()),
            account: header_str(message, ob::ACCOUNT).unwrap_or("-"),
            event_type: header_str(message, ob::EVENT_TYPE).unwrap_or(""),
            event_id: header_str(message, ob::EVENT_ID).unwrap_or("-"),
            origin: header_str(message, ob::ORIGIN).unwrap_or("webhook"),
            attempts: number(ob::ENRICH_ATTEMPTS)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            first_at: number(ob::ENRICH_FIRST_AT),
        }
    }
}

/// What to do with a record.
enum Plan {
    /// Nothing to fetch; the label says why.
    Skip(&'static str),
    /// Fetch this order with this account's client.
    Fetch(Source, Arc<dyn OrderApi>, OrderRef),
    /// It cannot be completed: dead-letter it with this class and reason.
    Refuse(&'static str, String),
}

impl Worker {
    pub(super) fn new(
        config: EnrichConfig,
        topics: Topics,
        apis: Arc<Apis>,
        publisher: RawPublisher,
        producer: FutureProducer,
        metrics: EnrichMetrics,
    ) -> Self {
        Self {
            config,
            topics,
            apis,
            publisher,
            producer,
            metrics,
            lanes: Mutex::new(HashMap::new()),
        }
    }

    fn lane(&self, source: Source, account: &str) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            lanes
                .entry((source, account.to_owned()))
                .or_insert_with(|| {
                    Arc::new(Lane {
                        permits: Semaphore::new(self.config.max_in_flight_per_account),
                        waiting: AtomicUsize::new(0),
                    })
                }),
        )
    }

    fn plan(&self, role: Role, record: &Record<'_>, message: &OwnedMessage) -> Plan {
        let Some(source) = record.source else {
            return Plan::Skip("complete");
        };
        // The stage completes webhooks (and their replays); documents it or a backfill
        // wrote are whole already.
        let from_webhook = matches!(record.origin, "webhook" | "replay");
        if !from_webhook {
            return Plan::Skip("document");
        }
        let order_id = message.key().and_then(key_order_id);
        let order = match completion(
            source,
            record.event_type,
            order_id,
            message.payload().unwrap_or_default(),
        ) {
            Completion::Complete => return Plan::Skip("complete"),
            Completion::Fetch(order) => order,
        };
        match self.apis.order_api(source, record.account) {
            Ok(Some(api)) => Plan::Fetch(source, api, order),
            // Read from the retry topic, the account's API was configured when it was first
            // tried; without it now, nothing can complete it.
            Ok(None) if role == Role::Retry => Plan::Refuse(
                "not-configured",
                format!("no [api.{source}] for account {} any more", record.account),
            ),
            // Not ours: the processor emits the notification's partial event.
            Ok(None) => Plan::Skip("not_configured"),
            Err(err) => Plan::Refuse(
                err.class(),
                format!("[api.{source}] for account {}: {err}", record.account),
            ),
        }
    }

    /// Takes `message` to its end; see the module docs.
    pub(super) async fn handle(
        &self,
        role: Role,
        message: &OwnedMessage,
        cancel: &CancellationToken,
    ) -> Outcome {
        let record = Record::read(message);
        if role == Role::Retry {
            // Not before its time: the provider was given a pause.
            let due = header_str(message, ob::ENRICH_DUE_AT)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
            if wait > 0 {
                tokio::select! {
                    () = cancel.cancelled() => return Outcome::Abandoned,
                    () = tokio::time::sleep(Duration::from_millis(wait)) => {}
                }
            }
        }
        let source_label = record.source.map_or("unknown", Source::as_str);
        let (source, api, order) = match self.plan(role, &record, message) {
            Plan::Skip(label) => return self.count(source_label, Outcome::Done(label)),
            Plan::Refuse(class, reason) => {
                let outcome = self
                    .dead_letter(role, message, class, &reason, record.attempts + 1, cancel)
                    .await;
                return self.count(source_label, outcome);
            }
            Plan::Fetch(source, api, order) => (source, api, order),
        };
        let lane = self.lane(source, record.account);
        if role == Role::Raw && lane.waiting.load(Ordering::Acquire) >= self.config.account_backlog
        {
            // The provider cannot keep up: this one waits in the retry topic, not here.
            let due = now_ms().saturating_add(millis(self.config.retry_delay(1)));
            let outcome = self
                .schedule_retry(
                    role,
                    message,
                    record.attempts,
                    due,
                    record.first_at,
                    "deferred: the account's backlog is full",
                    cancel,
                )
                .await;
            return self.count(
                source_label,
                if outcome == Outcome::Abandoned {
                    outcome
                } else {
                    Outcome::Done("deferred")
                },
            );
        }
        lane.waiting.fetch_add(1, Ordering::AcqRel);
        let waiting = Waiting(&lane.waiting);
        let permit = tokio::select! {
            () = cancel.cancelled() => return Outcome::Abandoned,
            permit = lane.permits.acquire() => permit,
        };
        drop(waiting);
        let in_flight = self.metrics.in_flight.with_label_values(&[source.as_str()]);
        in_flight.inc();
        let fetched = tokio::select! {
            () = cancel.cancelled() => None,
            fetched = api.fetch_order(&order) => Some(fetched),
        };
        in_flight.dec();
        drop(permit);
        let Some(fetched) = fetched else {
            return Outcome::Abandoned;
        };
        let attempts = record.attempts + 1;
        let outcome = match fetched {
            Ok(document) => {
                let raw = RawDocument {
                    source,
                    account: record.account,
                    document: &document,
                    origin: Origin::Enrich,
                    // The notification's id: the canonical event traces back to it, and a
                    // document fetched twice for it is one delivery to the duplicate filter.
                    event_id: record.event_id,
                    content_type: crate::publish::JSON,
                };
                let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
                loop {
                    match self.publisher.publish(&raw).await {
                        Ok(_) => break Outcome::Done("enriched"),
                        Err(err) => {
                            tracing::warn!(source = %source, error = %err, "could not publish a completed order; trying again");
                            tokio::select! {
                                () = cancel.cancelled() => break Outcome::Abandoned,
                                () = tokio::time::sleep(backoff.next_delay()) => {}
                            }
                        }
                    }
                }
            }
            Err(ApiError::Permanent { refusal, reason }) => {
                self.dead_letter(role, message, refusal.class(), &reason, attempts, cancel)
                    .await
            }
            Err(ApiError::Transient {
                reason,
                retry_after,
            }) => {
                let now = now_ms();
                let first_at = record.first_at.unwrap_or(now);
                let age =
                    Duration::from_millis(u64::try_from(now.saturating_sub(first_at)).unwrap_or(0));
                if age >= Duration::from_secs(self.config.retry_max_age_secs) {
                    let reason = format!(
                        "the provider could not give the order for {}s: {reason}",
                        age.as_secs()
                    );
                    self.dead_letter(
                        role,
                        message,
                        "provider-unavailable",
                        &reason,
                        attempts,
                        cancel,
                    )
                    .await
                } else {
                    let delay = self
                        .config
                        .retry_delay(attempts)
                        .max(retry_after.unwrap_or_default());
                    tracing::info!(source = %source, event_id = record.event_id, attempts, delay_s = delay.as_secs(), reason = %reason, "completion failed for now; trying again later");
                    self.schedule_retry(
                        role,
                        message,
                        attempts,
                        now.saturating_add(millis(delay)),
                        Some(first_at),
                        &reason,
                        cancel,
                    )
                    .await
                    .and_label("retry_scheduled")
                }
            }
        };
        self.count(source_label, outcome)
    }

    fn count(&self, source: &str, outcome: Outcome) -> Outcome {
        if let Outcome::Done(label) = outcome {
            self.metrics
                .records
                .with_label_values(&[source, label])
                .inc();
        }
        outcome
    }

    /// The record as it was read from the raw topic: for a retry record, its raw coordinates
    /// and headers without the stage's own.
    fn original(&self, role: Role, message: &OwnedMessage) -> OwnedMessage {
        if role == Role::Raw {
            return message.clone();
        }
        let number = |key| header_str(message, key).and_then(|v| v.parse::<i64>().ok());
        OwnedMessage::new(
            message.payload().map(<[u8]>::to_vec),
            message.key().map(<[u8]>::to_vec),
            self.topics.raw.clone(),
            message.timestamp(),
            number(ob::ENRICH_RAW_PARTITION)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(-1),
            number(ob::ENRICH_RAW_OFFSET).unwrap_or(-1),
            Some(without_enrich_headers(message)),
        )
    }

    async fn dead_letter(
        &self,
        role: Role,
        message: &OwnedMessage,
        class: &'static str,
        reason: &str,
        attempts: u32,
        cancel: &CancellationToken,
    ) -> Outcome {
        let original = self.original(role, message);
        tracing::warn!(
            event_id = header_str(&original, ob::EVENT_ID).unwrap_or("-"),
            partition = original.partition(),
            offset = original.offset(),
            class,
            reason = %reason,
            "dead-lettering a notification that cannot be completed"
        );
        let headers = dlq_headers(
            &original,
            &DeadLetter {
                stage: "enrich",
                class,
                reason,
                attempts,
            },
        );
        self.send(&self.topics.dlq, &original, headers, cancel)
            .await
            .and_label("dead_lettered")
    }

    #[allow(clippy::too_many_arguments)]
    async fn schedule_retry(
        &self,
        role: Role,
        message: &OwnedMessage,
        attempts: u32,
        due_ms: i64,
        first_at: Option<i64>,
        reason: &str,
        cancel: &CancellationToken,
    ) -> Outcome {
        let original = self.original(role, message);
        let mut headers = without_enrich_headers(&original);
        let mut reason = reason.to_owned();
        if reason.len() > 500 {
            let mut cut = 500;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        for (key, value) in [
            (ob::ENRICH_ATTEMPTS, attempts.to_string()),
            (ob::ENRICH_DUE_AT, due_ms.to_string()),
            (
                ob::ENRICH_FIRST_AT,
                first_at.unwrap_or_else(now_ms).to_string(),
            ),
            (ob::ENRICH_REASON, reason),
            (ob::ENRICH_RAW_PARTITION, original.partition().to_string()),
            (ob::ENRICH_RAW_OFFSET, original.offset().to_string()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(&value),
            });
        }
        self.send(&self.topics.enrich_retry, &original, headers, cancel)
            .await
    }

    /// Writes `original`'s key and value to `topic` with `headers`, trying until the broker
    /// takes it or `cancel`.
    async fn send(
        &self,
        topic: &str,
        original: &OwnedMessage,
        headers: OwnedHeaders,
        cancel: &CancellationToken,
    ) -> Outcome {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let mut record = FutureRecord::to(topic)
                .payload(original.payload().unwrap_or_default())
                .headers(headers.clone());
            if let Some(key) = original.key() {
                record = record.key(key);
            }
            let sent = tokio::select! {
                () = cancel.cancelled() => return Outcome::Abandoned,
                sent = self.producer.send(record, Timeout::After(Duration::from_secs(30))) => sent,
            };
            match sent {
                Ok(_) => return Outcome::Done("sent"),
                Err((err, _)) => {
                    tracing::warn!(topic, error = %err, "write failed; trying again");
                    tokio::select! {
                        () = cancel.cancelled() => return Outcome::Abandoned,
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }
}

impl Outcome {
    /// A finished send counts as `label`.
    fn and_label(self, label: &'static str) -> Self {
        match self {
            Outcome::Done(_) => Outcome::Done(label),
            Outcome::Abandoned => Outcome::Abandoned,
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `message`'s headers without the enrich stage's own (`ob-enrich-…`).
fn without_enrich_headers(message: &OwnedMessage) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(existing) = message.headers() {
        for header in existing.iter() {
            if !header.key.starts_with("ob-enrich-") {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
    }
    headers
}
