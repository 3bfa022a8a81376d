//! One record, from canonical bytes to settled: upserted, or dead-lettered and acknowledged.
//!
//! - Every attempt takes a place under the concurrency limit, then passes the breaker.
//! - A rejection is dead-lettered with the ERP's message.
//! - Throttling waits at least the ERP's `Retry-After` and shrinks the limit.
//! - ERP-wide trouble waits (the breaker decides when to try again) and never counts against
//!   the record.
//! - A failure of the request itself is retried with backoff; after `park_after_attempts` of
//!   those while the ERP is otherwise healthy, the record is parked in the dead-letter topic so
//!   that one poisoned order cannot hold its key forever.
//!
//! Every retry runs the adapter's whole upsert again, lookup included: for the ERPs that do not
//! reject duplicates, a create that timed out or failed with a 5xx may have landed, and the
//! lookup finds it before anything is created twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use orderbridge_runtime::{
    coordinates, dlq_headers, header_str, Backoff, DeadLetter, Dependency, Health, StatusWriter,
};
use orderbridge_schemas::{headers as ob, OrderEvent, OrderEventCodec, Status, Topics};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use super::breaker::{Breaker, Verdict};
use super::limiter::{Limiter, Permit};
use crate::config::SinkConfig;
use crate::erp::{Cause, ErpClient, ErpError, Upserted};
use crate::metrics::SinkMetrics;

/// What every record's task shares.
pub(crate) struct Worker {
    pub erp: Arc<dyn ErpClient>,
    pub codec: Arc<OrderEventCodec>,
    pub limiter: Arc<Limiter>,
    pub breaker: Arc<Breaker>,
    pub dlq: FutureProducer,
    /// What the ERP did with each event, to the status topic.
    pub status: StatusWriter,
    pub topics: Topics,
    pub config: SinkConfig,
    pub metrics: SinkMetrics,
    pub shutdown: CancellationToken,
    /// Not ready while the schema registry cannot answer.
    pub health: Arc<Health>,
}

/// How a record's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Upserted, or dead-lettered and acknowledged: its offset may be committed.
    Done,
    /// Shutdown came first: the record stays uncommitted and is delivered again.
    Abandoned,
    /// The ERP does not hold the record's order yet and nothing was written: the engine sets
    /// the record aside until its order arrives (or dead-letters it as `order-unknown`).
    NotHeld,
}

/// Why a record goes to the dead-letter topic.
struct Dead<'a> {
    class: &'static str,
    reason: &'a str,
    attempts: u32,
}

impl Worker {
    /// Settles `message`, retrying until done, shutdown, or `cancel` (its partition was
    /// revoked). The first attempt runs under `permit`, which the engine took for it (so
    /// records start in offset order); retries queue for a place again. An ERP call already
    /// sent is never cancelled: its outcome is unknown until it answers.
    pub async fn settle(
        &self,
        message: &OwnedMessage,
        permit: Permit,
        cancel: &CancellationToken,
    ) -> Settled {
        let mut first = Some(permit);
        let Some(event) = self.decode(message, cancel).await else {
            return Settled::Abandoned;
        };
        let event = match event {
            Ok(event) => event,
            Err(reason) => {
                let dead = Dead {
                    class: "undecodable",
                    reason: &reason,
                    attempts: 1,
                };
                return self.dead_letter(message, &dead, cancel).await;
            }
        };
        let erp = self.erp.name();
        let mut backoff = self.backoff();
        let mut request_failures = 0u32;
        loop {
            // The place under the limit first, then the breaker: the probe of an open breaker
            // is always a call that already holds a place, so it cannot wait on the callers
            // that wait for it.
            let permit = match first.take() {
                Some(permit) => permit,
                None => tokio::select! {
                    () = cancel.cancelled() => return Settled::Abandoned,
                    permit = self.limiter.acquire() => permit,
                },
            };
            let pass = tokio::select! {
                () = cancel.cancelled() => return Settled::Abandoned,
                pass = self.breaker.pass() => pass,
            };
            let started = Instant::now();
            let result = self.erp.upsert(&event).await;
            let latency = started.elapsed();
            drop(permit);
            let (reason, retry_after, cause) = match result {
                Ok(outcome) => {
                    self.breaker.record(pass, Verdict::Answered);
                    self.limiter.succeeded(latency);
                    self.delivered(message, &event, outcome);
                    return match outcome {
                        Upserted::NotHeld => Settled::NotHeld,
                        Upserted::Created
                        | Upserted::Updated
                        | Upserted::AlreadyPresent
                        | Upserted::Stale
                        | Upserted::Skipped => Settled::Done,
                    };
                }
                Err(ErpError::Rejected { reason }) => {
                    self.breaker.record(pass, Verdict::Answered);
                    self.metrics
                        .failures
                        .with_label_values(&[erp, "rejected"])
                        .inc();
                    let dead = Dead {
                        class: "erp-rejected",
                        reason: &reason,
                        attempts: backoff.attempts() + 1,
                    };
                    return self.dead_letter(message, &dead, cancel).await;
                }
                Err(ErpError::Transient {
                    reason,
                    retry_after,
                    cause,
                }) => (reason, retry_after, cause),
            };
            self.metrics
                .failures
                .with_label_values(&[erp, cause.label()])
                .inc();
            let counts = match cause {
                Cause::Unavailable => {
                    self.breaker.record(pass, Verdict::Unavailable);
                    // ERP-wide trouble, or this record's own (a request that always times
                    // out): told apart by the breaker. While other calls get answers it stays
                    // closed and the failure counts; once it opens, the failures so far were
                    // the ERP's and count no more.
                    if self.breaker.is_open() {
                        request_failures = 0;
                        false
                    } else {
                        true
                    }
                }
                Cause::Throttled => {
                    self.breaker.record(pass, Verdict::Answered);
                    self.limiter.throttled();
                    false
                }
                Cause::Request => {
                    self.breaker.record(pass, Verdict::Answered);
                    // Only a failure while the ERP is otherwise healthy counts against the record.
                    !self.breaker.is_open()
                }
            };
            if counts {
                request_failures += 1;
                if request_failures >= self.config.park_after_attempts {
                    let reason = format!(
                            "parked after {request_failures} failed attempts while the ERP was otherwise healthy; last: {reason}"
                        );
                    let dead = Dead {
                        class: "parked",
                        reason: &reason,
                        attempts: backoff.attempts() + 1,
                    };
                    return self.dead_letter(message, &dead, cancel).await;
                }
            }
            self.metrics.retries.with_label_values(&[erp]).inc();
            let delay = backoff.next_delay_at_least(retry_after);
            tracing::warn!(
                erp,
                partition = message.partition(),
                offset = message.offset(),
                attempt = backoff.attempts(),
                cause = cause.label(),
                delay_ms = delay.as_millis() as u64,
                error = %reason,
                "transient ERP failure; retrying"
            );
            if !sleep(delay, cancel).await {
                return Settled::Abandoned;
            }
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.config.retry_initial_ms),
            Duration::from_millis(self.config.retry_max_ms),
        )
    }

    /// The record's event; `Err` with a reason when it can never be decoded, `None` at
    /// shutdown. A registry that cannot answer is waited for.
    async fn decode(
        &self,
        message: &OwnedMessage,
        cancel: &CancellationToken,
    ) -> Option<Result<OrderEvent, String>> {
        let payload = message.payload().unwrap_or_default();
        let mut backoff = self.backoff();
        loop {
            match self.codec.decode(payload).await {
                Ok(event) => {
                    self.health.set_held(Dependency::Registry, false);
                    return Some(Ok(event));
                }
                Err(err) if err.is_retryable() => {
                    self.health.set_held(Dependency::Registry, true);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "schema registry unavailable; retrying");
                    if !sleep(delay, cancel).await {
                        return None;
                    }
                }
                Err(err) => {
                    self.health.set_held(Dependency::Registry, false);
                    return Some(Err(format!("undecodable canonical record: {err}")));
                }
            }
        }
    }

    fn delivered(&self, message: &OwnedMessage, event: &OrderEvent, outcome: Upserted) {
        let erp = self.erp.name();
        self.metrics
            .upserts
            .with_label_values(&[erp, outcome.label()])
            .inc();
        if matches!(outcome, Upserted::Created | Upserted::Updated) {
            // Only a write is the ERP's acknowledgement of this event; a redelivery found
            // present hours later must not stretch the latency percentiles.
            self.observe_latency(event);
        }
        let status = match outcome {
            Upserted::Created => Some(Status::Created),
            Upserted::Updated => Some(Status::Updated),
            Upserted::AlreadyPresent => Some(Status::AlreadyPresent),
            Upserted::Stale => Some(Status::Stale),
            Upserted::Skipped => Some(Status::Skipped),
            // Not settled yet: it waits for its order, then is applied or dead-lettered.
            Upserted::NotHeld => None,
        };
        if let Some(status) = status {
            let mut record = self.status.record(&event.order_key, status);
            record.event_id = Some(event.lineage.event_id.clone());
            record.event_type = Some(event.event_type.as_str().to_owned());
            record.origin = header_str(message, ob::ORIGIN).map(str::to_owned);
            record.erp = Some(erp.to_owned());
            record.version = Some(event.version);
            record.record = Some(coordinates(message));
            self.status.write(&record);
        }
        tracing::debug!(
            erp,
            order_key = %event.order_key,
            event_id = %event.lineage.event_id,
            partition = message.partition(),
            offset = message.offset(),
            outcome = outcome.label(),
            "order delivered"
        );
    }

    fn observe_latency(&self, event: &OrderEvent) {
        let now = Utc::now();
        let erp = self.erp.name();
        let seconds = |from: chrono::DateTime<Utc>| {
            (now - from)
                .to_std()
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        };
        self.metrics
            .receipt_to_erp
            .with_label_values(&[erp])
            .observe(seconds(event.lineage.received_at));
        if let Some(created) = event.source_created_at {
            self.metrics
                .order_to_erp
                .with_label_values(&[erp])
                .observe(seconds(created));
        }
    }

    /// Dead-letters a record whose order did not arrive within the wait, as `order-unknown`.
    pub async fn order_unknown(
        &self,
        message: &OwnedMessage,
        waited: Duration,
        cancel: &CancellationToken,
    ) -> Settled {
        let reason = format!(
            "the ERP ({}) holds no order {:?} for this event, and it did not arrive within {} s \
             (replay it once the order is there)",
            self.erp.name(),
            message
                .key()
                .map(String::from_utf8_lossy)
                .unwrap_or_default(),
            waited.as_secs()
        );
        let dead = Dead {
            class: "order-unknown",
            reason: &reason,
            attempts: 1,
        };
        self.dead_letter(message, &dead, cancel).await
    }

    /// Produces the record to the DLQ and waits for the acknowledgement, retrying until it is
    /// durable: committing the offset of a record that is neither in the ERP nor in the DLQ
    /// would lose it.
    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        dead: &Dead<'_>,
        cancel: &CancellationToken,
    ) -> Settled {
        let erp = self.erp.name();
        tracing::error!(
            erp,
            partition = message.partition(),
            offset = message.offset(),
            class = dead.class,
            reason = dead.reason,
            "dead-lettering order"
        );
        let headers = dlq_headers(
            message,
            &DeadLetter {
                stage: "sink",
                class: dead.class,
                reason: dead.reason,
                attempts: dead.attempts,
            },
        );
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        loop {
            let mut record = FutureRecord::to(&self.topics.dlq)
                .payload(message.payload().unwrap_or_default())
                .headers(headers.clone());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            match self
                .dlq
                .send(record, Timeout::After(Duration::from_secs(30)))
                .await
            {
                Ok(_) => {
                    self.metrics
                        .dead_letters
                        .with_label_values(&[erp, dead.class])
                        .inc();
                    if let Some(key) = message.key() {
                        let key = String::from_utf8_lossy(key);
                        let mut record = self.status.record(&key, Status::DeadLettered);
                        record.event_id = header_str(message, ob::EVENT_ID).map(str::to_owned);
                        record.event_type = header_str(message, ob::EVENT_TYPE).map(str::to_owned);
                        record.origin = header_str(message, ob::ORIGIN).map(str::to_owned);
                        record.class = Some(dead.class.to_owned());
                        // As the dead letter's header: ERP error bodies can be long.
                        record.reason = Some(dead.reason.chars().take(1000).collect());
                        record.erp = Some(erp.to_owned());
                        record.record = Some(coordinates(message));
                        self.status.write(&record);
                    }
                    return Settled::Done;
                }
                Err((err, _)) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "dead letter not acknowledged; retrying");
                    if !sleep(delay, cancel).await {
                        return Settled::Abandoned;
                    }
                }
            }
        }
    }
}

/// Sleeps `delay` unless cancelled first (`false`).
async fn sleep(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}
