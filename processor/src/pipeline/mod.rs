//! The consume → normalize → produce loop, under either guarantee.
//!
//! Records are taken in batches (up to `batch_max_records`, or what arrived within
//! `batch_linger_ms` of the first). Each raw record becomes one output, a canonical event or
//! a dead letter with its reason, unless it repeats a delivery already emitted (nothing) or
//! waits for its order's attribution (emitted later). Then:
//!
//! - **exactly-once**: `begin_transaction`, produce every output, `send_offsets_to_transaction`
//!   with the batch's next offsets and the group metadata, `commit_transaction`. Readers with
//!   `read_committed` see the batch's outputs exactly when its offsets are committed.
//! - **at-least-once**: produce every output, wait for every delivery report, then store the
//!   batch's next offsets (auto-commit sends them later).
//!
//! If anything in between fails, nothing of the batch counts: the transaction is aborted (or
//! the offsets are simply not stored), the consumer is rewound to the batch's first offsets
//! (or further, to the oldest record still held for its attribution), and the batch is tried
//! again after a backoff. A fatal producer error (fenced) ends the run,
//! so the process restarts with a fresh producer and resumes from committed offsets.
//!
//! The consumer reads the attribution topic beside the raw topic (same group, same
//! partitions: they are co-partitioned). An attribution record is stored in the partition's
//! state (`state/`), and when its order was already emitted with other attribution it
//! becomes a partial canonical update carrying the attribution, in the same transaction as
//! the offsets. Repeated deliveries (an `ob-event-id` already emitted) produce nothing.
//!
//! Layout: this file is the loop; `clients.rs` builds the consumer and producer,
//! `records.rs` turns one record into its output, `commit.rs` makes a batch count.

mod clients;
mod commit;
mod records;

use records::source_of;

pub use clients::{build_consumer, build_producer};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderbridge_runtime::{
    header_str, pause_after_consumer_error, Backoff, Dependency, GroupContext, Health,
    KafkaSettings,
};
use orderbridge_schemas::{headers as ob, OrderEventCodec, Topics};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use crate::config::{Guarantee, ProcessorConfig};
use crate::metrics::ProcessorMetrics;
use crate::state::{PartitionStates, Windows};
use crate::ProcessorError;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
const CANONICAL_CONTENT_TYPE: &str = "application/vnd.orderbridge.order-event.v1+avro";

/// The processor's loop; see the module docs.
pub struct Pipeline {
    consumer: StreamConsumer<GroupContext>,
    /// Per-partition memory of duplicates and attribution, rebuilt from Kafka.
    state: tokio::sync::Mutex<PartitionStates>,
    health: Arc<Health>,
    producer: FutureProducer,
    codec: Arc<OrderEventCodec>,
    topics: Topics,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
}

impl Pipeline {
    /// Builds the clients and subscribes to the raw topic.
    ///
    /// # Errors
    /// When a client cannot be built or the subscription fails.
    pub fn new(
        kafka: &KafkaSettings,
        topics: &Topics,
        config: &ProcessorConfig,
        codec: Arc<OrderEventCodec>,
        metrics: ProcessorMetrics,
        health: Arc<Health>,
    ) -> Result<Self, ProcessorError> {
        let consumer = build_consumer(
            kafka,
            config,
            Arc::clone(&health),
            metrics.consumer_lag.clone(),
        )?;
        let window = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        let state = PartitionStates::new(
            kafka,
            &topics.canonical,
            &topics.attribution,
            Arc::clone(&codec),
            Windows {
                dedup: window(config.dedup_retention_secs),
                attribution: window(config.attribution_window_secs),
                hold: (config.attribution_wait_ms > 0)
                    .then(|| Duration::from_millis(config.attribution_wait_ms)),
            },
        );
        if state.joins_attribution() {
            consumer.subscribe(&[&topics.raw, &topics.attribution])?;
        } else {
            consumer.subscribe(&[&topics.raw])?;
        }
        Ok(Self {
            consumer,
            state: tokio::sync::Mutex::new(state),
            health,
            producer: build_producer(kafka, config)?,
            codec,
            topics: topics.clone(),
            config: config.clone(),
            metrics,
        })
    }

    /// Runs until `shutdown` is cancelled or a fatal error. The health given to
    /// [`Pipeline::new`] turns ready when the consumer joins its group, and not ready when the
    /// loop ends.
    ///
    /// # Errors
    /// A fatal Kafka error (e.g. the producer was fenced); the caller should exit so the
    /// process restarts from committed offsets.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ProcessorError> {
        let result = self.process(&shutdown).await;
        // Whatever ended the loop, this processor no longer does its job.
        self.health.set_ready(false);
        self.close();
        result
    }

    async fn process(&self, shutdown: &CancellationToken) -> Result<(), ProcessorError> {
        if self.config.guarantee == Guarantee::ExactlyOnce {
            let producer = self.producer.clone();
            tokio::task::spawn_blocking(move || producer.init_transactions(KAFKA_TIMEOUT))
                .await??;
        }
        tracing::info!(guarantee = ?self.config.guarantee, topic = %self.topics.raw, "processor running");
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            // Held orders fall due even when no record arrives.
            let release = {
                let generation = self.consumer.context().generation();
                self.state.lock().await.next_release(generation)
            };
            let Some(batch) = self.next_batch(shutdown, release).await? else {
                break;
            };
            let started = Instant::now();
            match self.process_batch(&batch).await {
                Ok(()) => {
                    backoff.reset();
                    self.health.set_held(Dependency::Registry, false);
                    self.health.set_held(Dependency::Kafka, false);
                    self.metrics.batches.with_label_values(&["committed"]).inc();
                    self.metrics
                        .batch_seconds
                        .with_label_values(&[self.guarantee_label()])
                        .observe(started.elapsed().as_secs_f64());
                }
                Err(BatchError::Fatal(err)) => return Err(err),
                Err(BatchError::Retry(reason, dependency)) => {
                    self.health.set_held(dependency, true);
                    self.metrics.batches.with_label_values(&["retried"]).inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %reason, delay_ms = delay.as_millis() as u64, records = batch.len(), "batch not committed; rewound to retry");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn guarantee_label(&self) -> &'static str {
        match self.config.guarantee {
            Guarantee::ExactlyOnce => "exactly-once",
            Guarantee::AtLeastOnce => "at-least-once",
        }
    }

    /// Waits for the first record, then gathers more until the batch is full or the linger
    /// time has passed. `None` on shutdown.
    /// `Some` of an empty batch when `release` (a held order falling due) comes first.
    async fn next_batch(
        &self,
        shutdown: &CancellationToken,
        release: Option<std::time::Instant>,
    ) -> Result<Option<Vec<OwnedMessage>>, ProcessorError> {
        let due = async {
            match release {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(due);
        let first = loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = &mut due => return Ok(Some(Vec::new())),
                received = self.consumer.recv() => received,
            };
            match received {
                Ok(message) => break message.detach(),
                Err(err) => pause_after_consumer_error(err, shutdown).await?,
            }
        };
        let mut batch = vec![first];
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.batch_linger_ms);
        while batch.len() < self.config.batch_max_records {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(message)) => batch.push(message.detach()),
                // Whatever was gathered still goes. librdkafka keeps recovering on its own;
                // a lasting problem shows up again at the next batch's first poll.
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "consumer error while filling a batch");
                    break;
                }
                Err(_linger_over) => break,
            }
        }
        Ok(Some(batch))
    }

    async fn process_batch(&self, batch: &[OwnedMessage]) -> Result<(), BatchError> {
        let mut states = self.state.lock().await;
        let result = self.process_batch_in(&mut states, batch).await;
        match &result {
            Ok(()) => states.prune(),
            Err(_) => {
                // Nothing of the batch counts. Records held from earlier batches are in
                // memory only and go with the state, so their partitions go back to the
                // oldest of them; the rest to the batch's start. The state saw outputs that
                // were never committed: it is read back from Kafka.
                let generation = self.consumer.context().generation();
                let floors: BTreeMap<i32, i64> = states
                    .current(generation)
                    .filter_map(|(partition, state)| Some((partition, state.hold_floor()?)))
                    .collect();
                self.rewind(batch, &floors);
                states.forget();
            }
        }
        result
    }

    async fn process_batch_in(
        &self,
        states: &mut PartitionStates,
        batch: &[OwnedMessage],
    ) -> Result<(), BatchError> {
        // Per-partition state is valid for one assignment of partitions.
        let generation = self.consumer.context().generation();
        let mut outputs = Vec::with_capacity(batch.len());
        let mut duplicates: Vec<&'static str> = Vec::new();
        let mut attribution: Vec<&'static str> = Vec::new();
        for message in batch {
            let state = states
                .partition(message.partition(), generation)
                .await
                .map_err(|err| {
                    let dependency = match err {
                        crate::state::StateError::Registry(_) => Dependency::Registry,
                        crate::state::StateError::Kafka(_) | crate::state::StateError::Join(_) => {
                            Dependency::Kafka
                        }
                    };
                    BatchError::Retry(err.to_string(), dependency)
                })?;
            if message.topic() == self.topics.attribution {
                let (outcome, output) = self.attribution_record(message, state).await?;
                attribution.push(outcome);
                outputs.extend(output);
                continue;
            }
            state.took(message.offset());
            let event_id = header_str(message, ob::EVENT_ID);
            if crate::state::delivery_id_of(message).is_some_and(|id| state.is_duplicate(&id)) {
                tracing::debug!(
                    partition = message.partition(),
                    offset = message.offset(),
                    event_id,
                    "duplicate delivery suppressed"
                );
                duplicates.push(source_of(message));
                continue;
            }
            outputs.extend(
                self.process_record(message, state, &mut attribution)
                    .await?,
            );
        }
        // Orders whose wait for attribution is over go out as they are.
        let now = std::time::Instant::now();
        for (_, state) in states.current(generation) {
            for order_key in state.due(now) {
                for held in state.release(&order_key) {
                    outputs.push(self.emit_held(held, state).await?);
                }
                attribution.push("wait_expired");
            }
        }
        if batch.is_empty() && outputs.is_empty() {
            return Ok(());
        }
        let offsets = self
            .commit_offsets(states, batch, generation)
            .map_err(|err| BatchError::Fatal(err.into()))?;
        match self.config.guarantee {
            Guarantee::ExactlyOnce => self.commit_transactionally(outputs, offsets).await?,
            Guarantee::AtLeastOnce => self.deliver_then_store(outputs, offsets).await?,
        }
        for source in duplicates {
            self.metrics
                .records
                .with_label_values(&[source, "duplicate"])
                .inc();
        }
        for outcome in attribution {
            self.metrics.attribution.with_label_values(&[outcome]).inc();
        }
        Ok(())
    }

    fn close(&self) {
        if self.config.guarantee == Guarantee::AtLeastOnce {
            // Send what was stored, synchronously, before leaving the group.
            if let Err(err) = self
                .consumer
                .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            {
                tracing::debug!(error = %err, "final commit skipped");
            }
        }
        self.consumer.unsubscribe();
    }
}

/// Why a batch did not commit.
enum BatchError {
    /// Nothing counted; rewind and try again. The dependency that failed holds the
    /// processor back (not ready) until a batch commits.
    Retry(String, Dependency),
    /// Stop the processor.
    Fatal(ProcessorError),
}

fn transactional(err: KafkaError) -> BatchError {
    if is_fatal(&err) {
        BatchError::Fatal(err.into())
    } else {
        BatchError::Retry(err.to_string(), Dependency::Kafka)
    }
}

/// What rdkafka says: a transactional error knows whether it is fatal (fenced, say); any
/// other error is fatal only when librdkafka raised its fatal error.
fn is_fatal(err: &KafkaError) -> bool {
    if let KafkaError::Transaction(inner) = err {
        return inner.is_fatal();
    }
    matches!(
        err.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::Fatal)
    )
}
