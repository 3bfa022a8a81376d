//! The delivery loop: one canonical record at a time, upserted, then its offset stored.
//!
//! The offset of a record is stored only after its upsert finished (or it was dead-lettered
//! and the dead letter acknowledged); auto-commit then sends only stored offsets, and on
//! shutdown they are committed synchronously. So a crash between the upsert and the commit
//! redelivers the record, and the ERP's idempotent upsert makes the second delivery a no-op.
//!
//! Transient failures are retried with backoff, without limit and without moving the offset;
//! permanent ones are dead-lettered with the ERP's message, then committed.
//!
//! This is the spine's sequential loop. Key-ordered parallelism, the breaker, paused
//! partitions during long outages and parking a poisoned record after N attempts arrive with
//! the sink issue; until then a retry longer than `max.poll.interval.ms` makes the consumer
//! leave the group and the record is redelivered elsewhere, which the idempotent upsert absorbs.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use orderbridge_runtime::{
    dlq_headers, pause_after_consumer_error, Backoff, DeadLetter, GroupContext, Health,
    KafkaSettings,
};
use orderbridge_schemas::{OrderEvent, OrderEventCodec, Topics};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use crate::config::SinkConfig;
use crate::erp::{ErpClient, ErpError, Upserted};
use crate::metrics::SinkMetrics;
use crate::SinkError;

/// Builds the canonical-topic consumer. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_consumer(
    kafka: &KafkaSettings,
    config: &SinkConfig,
    health: Arc<Health>,
) -> KafkaResult<StreamConsumer<GroupContext>> {
    kafka
        .client_config()
        .set("group.id", &config.group_id)
        // Latency bound for brokers that hold empty fetches (see the config docs).
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        // Only events of committed processor transactions; never an aborted batch.
        .set("isolation.level", "read_committed")
        // A new group starts from the oldest canonical event still retained.
        .set("auto.offset.reset", "earliest")
        // Auto-commit sends only offsets we stored, and we store only after the upsert.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(GroupContext::new("sink", health))
}

/// Builds the dead-letter producer. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_dlq_producer(kafka: &KafkaSettings) -> KafkaResult<FutureProducer> {
    kafka
        .producer_config()
        // A record is committed after its dead letter is acknowledged: it must be durable.
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
}

/// What became of one record.
enum Settled {
    /// Upserted (or found present / stale / skipped).
    Done,
    /// Dead-lettered and acknowledged.
    DeadLettered,
}

/// The sink's loop.
pub struct Delivery {
    consumer: StreamConsumer<GroupContext>,
    health: Arc<Health>,
    dlq: FutureProducer,
    codec: Arc<OrderEventCodec>,
    erp: Arc<dyn ErpClient>,
    topics: Topics,
    config: SinkConfig,
    metrics: SinkMetrics,
}

impl Delivery {
    /// Builds the clients and subscribes to the canonical topic.
    ///
    /// # Errors
    /// When a client cannot be built or the subscription fails.
    pub fn new(
        kafka: &KafkaSettings,
        topics: &Topics,
        config: &SinkConfig,
        codec: Arc<OrderEventCodec>,
        erp: Arc<dyn ErpClient>,
        metrics: SinkMetrics,
        health: Arc<Health>,
    ) -> Result<Self, SinkError> {
        let consumer = build_consumer(kafka, config, Arc::clone(&health))?;
        consumer.subscribe(&[&topics.canonical])?;
        Ok(Self {
            consumer,
            health,
            dlq: build_dlq_producer(kafka)?,
            codec,
            erp,
            topics: topics.clone(),
            config: config.clone(),
            metrics,
        })
    }

    /// Runs until `shutdown` is cancelled. The health given to [`Delivery::new`] turns ready
    /// when the consumer joins its group, and not ready when the loop ends.
    ///
    /// # Errors
    /// When the consumer fails fatally.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SinkError> {
        let health = Arc::clone(&self.health);
        tracing::info!(erp = self.erp.name(), topic = %self.topics.canonical, "sink running");
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                received = self.consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message.detach(),
                Err(err) => {
                    pause_after_consumer_error(err, &shutdown).await?;
                    continue;
                }
            };
            match self.settle(&message, &shutdown).await {
                Some(Settled::Done | Settled::DeadLettered) => {
                    // The upsert (or dead letter) is done: only now may the offset move.
                    let next = message.offset() + 1;
                    if let Err(err) =
                        self.consumer
                            .store_offset(message.topic(), message.partition(), next)
                    {
                        // The partition was revoked meanwhile; its new owner redelivers this
                        // record and the idempotent upsert absorbs it.
                        tracing::warn!(partition = message.partition(), offset = message.offset(), error = %err, "offset not stored");
                    }
                }
                None => break, // shut down mid-retry: the record stays uncommitted
            }
        }
        health.set_ready(false);
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %err, "nothing to commit at shutdown");
        }
        Ok(())
    }

    /// Upserts one record, retrying transient failures until done or shutdown (`None`).
    async fn settle(
        &self,
        message: &OwnedMessage,
        shutdown: &CancellationToken,
    ) -> Option<Settled> {
        let erp = self.erp.name();
        let mut backoff = Backoff::new(
            Duration::from_millis(self.config.retry_initial_ms),
            Duration::from_millis(self.config.retry_max_ms),
        );
        loop {
            let attempt = self.attempt(message).await;
            let (reason, retry_after) = match attempt {
                Ok(()) => return Some(Settled::Done),
                Err(ErpError::Rejected { reason }) => {
                    self.metrics
                        .failures
                        .with_label_values(&[erp, "rejected"])
                        .inc();
                    return self
                        .dead_letter(message, &reason, backoff.attempts() + 1, shutdown)
                        .await;
                }
                Err(ErpError::Transient {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            self.metrics
                .failures
                .with_label_values(&[erp, "transient"])
                .inc();
            self.metrics.retries.with_label_values(&[erp]).inc();
            let delay = backoff.next_delay_at_least(retry_after);
            tracing::warn!(
                erp,
                partition = message.partition(),
                offset = message.offset(),
                attempt = backoff.attempts(),
                delay_ms = delay.as_millis() as u64,
                error = %reason,
                "transient ERP failure; retrying"
            );
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn attempt(&self, message: &OwnedMessage) -> Result<(), ErpError> {
        let payload = message.payload().unwrap_or_default();
        let event = match self.codec.decode(payload).await {
            Ok(event) => event,
            Err(err) if err.is_retryable() => return Err(ErpError::transient(err.to_string())),
            Err(err) => {
                return Err(ErpError::rejected(format!(
                    "undecodable canonical record: {err}"
                )))
            }
        };
        let outcome = self.erp.upsert(&event).await?;
        let erp = self.erp.name();
        self.metrics
            .upserts
            .with_label_values(&[erp, outcome.label()])
            .inc();
        if matches!(outcome, Upserted::Created | Upserted::Updated) {
            // Only a write is the ERP's acknowledgement of this event; a redelivery found
            // present hours later must not stretch the latency percentiles.
            self.observe_latency(&event);
        }
        tracing::info!(
            erp,
            order_key = %event.order_key,
            event_id = %event.lineage.event_id,
            partition = message.partition(),
            offset = message.offset(),
            outcome = outcome.label(),
            "order delivered"
        );
        Ok(())
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

    /// Produces the record to the DLQ and waits for the acknowledgement, retrying until it is
    /// durable: committing the offset of a record that is neither in the ERP nor in the DLQ
    /// would lose it.
    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        reason: &str,
        attempts: u32,
        shutdown: &CancellationToken,
    ) -> Option<Settled> {
        let erp = self.erp.name();
        tracing::error!(
            erp,
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "dead-lettering order"
        );
        let headers = dlq_headers(
            message,
            &DeadLetter {
                stage: "sink",
                class: "erp-rejected",
                reason,
                attempts,
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
                        .with_label_values(&[erp, "erp-rejected"])
                        .inc();
                    return Some(Settled::DeadLettered);
                }
                Err((err, _)) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "dead letter not acknowledged; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}
