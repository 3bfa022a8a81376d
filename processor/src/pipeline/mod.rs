//! The consume → normalize → produce loop, under either guarantee.
//!
//! Records are taken in batches (up to `batch_max_records`, or what arrived within
//! `batch_linger_ms` of the first). Each raw record becomes one output, a canonical event or
//! a dead letter with its reason, unless it repeats a delivery already emitted (nothing) or
//! waits for its order's attribution (emitted later). What the batch taught the partition's
//! memory goes to the state topic as one entry per key it changed (`state/`). Then:
//!
//! - **exactly-once**: `begin_transaction`, produce every output, `send_offsets_to_transaction`
//!   with the batch's next offsets and the group metadata, `commit_transaction`. Readers with
//!   `read_committed` see the batch's outputs exactly when its offsets are committed.
//! - **at-least-once**: produce every output, wait for every delivery report, then store the
//!   batch's next offsets (auto-commit sends them; a revocation commits them at once).
//!
//! If anything in between fails, nothing of the batch counts: the transaction is aborted (or
//! the offsets are simply not stored), what the batch changed in memory is rolled back (only
//! the keys it touched), and the same batch, still in memory, is tried again after a backoff.
//! A fatal producer error (fenced) ends the run, so the process restarts with a fresh
//! producer and resumes from committed offsets.
//!
//! **Rebalances.** The consumer is polled on a thread of its own
//! (`orderbridge_runtime::GroupConsumer`), which keeps the member in its group whatever the
//! loop does. A revocation waits for the loop: the batch being gathered is committed first
//! (this member still owns its partitions until it says it is done), a batch that cannot
//! commit drops the revoked partitions' records (their new owner reads them from the
//! committed offset), and the revoked partitions' memory and held orders are dropped. Only
//! then is the revocation released. So a batch never commits offsets or emits events for a
//! partition another member already processes, committed offsets never go backwards, and an
//! order held for its attribution is never committed past: its new owner re-reads it.
//! A newly assigned partition's memory is loaded from the state topic off the loop (its
//! records wait meanwhile, the other partitions go on).
//!
//! The consumer reads the attribution topic beside the raw topic (same group, same
//! partitions: they are co-partitioned). An attribution record is stored in the partition's
//! memory, and when its order was already emitted with other attribution it becomes a
//! partial canonical update carrying the attribution, in the same transaction as the offsets.
//!
//! Layout: this file is the loop; `clients.rs` builds the consumer and producer,
//! `records.rs` turns one record into its output, `commit.rs` makes a batch count.

mod clients;
mod commit;
mod records;

use records::source_of;

pub use clients::{build_consumer, build_producer};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderbridge_runtime::{
    header_str, Backoff, Dependency, Event, GroupConsumer, Health, KafkaSettings, Revocation,
    StatusWriter,
};
use orderbridge_schemas::{headers as ob, OrderEventCodec, Status, StatusRecord, Topics};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::Message;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Guarantee, ProcessorConfig};
use crate::metrics::ProcessorMetrics;
use crate::state::{self, Cancel, PartitionState, PartitionStates, StateError, Windows};
use crate::ProcessorError;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
const CANONICAL_CONTENT_TYPE: &str = "application/vnd.orderbridge.order-event.v1+avro";

/// The processor's loop; see the module docs.
pub struct Pipeline {
    consumer: GroupConsumer,
    health: Arc<Health>,
    producer: FutureProducer,
    codec: Arc<OrderEventCodec>,
    topics: Topics,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
    kafka: KafkaSettings,
    windows: Windows,
    /// What became of each record, to the status topic once its batch committed.
    status: StatusWriter,
}

/// A batch that did not commit, waiting to be tried again.
struct Failed {
    batch: Vec<OwnedMessage>,
    backoff: Backoff,
    retry_at: tokio::time::Instant,
}

/// A partition whose memory is being loaded: the load's cancel flag, and its records that
/// arrived meanwhile.
struct Loading {
    cancel: Cancel,
    waiting: Vec<OwnedMessage>,
}

/// The loop's changing state.
struct Progress {
    states: PartitionStates,
    loading: HashMap<i32, Loading>,
    loads: JoinSet<(i32, Result<PartitionState, StateError>)>,
    /// Records gathered for the next batch, in arrival order.
    batch: Vec<OwnedMessage>,
    /// When the first record of `batch` arrived.
    gathering_since: Option<tokio::time::Instant>,
    failed: Option<Failed>,
}

impl Pipeline {
    /// Builds the clients and subscribes to the raw topic (and the attribution topic when
    /// attribution is joined).
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
        let windows = Windows {
            dedup: window(config.dedup_retention_secs),
            attribution: window(config.attribution_window_secs),
            hold: (config.attribution_wait_ms > 0)
                .then(|| Duration::from_millis(config.attribution_wait_ms)),
        };
        if windows.attribution.is_some() {
            consumer.subscribe(&[&topics.raw, &topics.attribution])?;
        } else {
            consumer.subscribe(&[&topics.raw])?;
        }
        // Records buffered for the loop beyond a few batches only fill memory.
        let buffer = config.batch_max_records.saturating_mul(4).max(1_000);
        let consumer = GroupConsumer::start(consumer, buffer).map_err(ProcessorError::Serve)?;
        let status = if config.status_updates {
            StatusWriter::new(
                kafka,
                &topics.status,
                "processor",
                metrics.status_records.clone(),
            )?
        } else {
            StatusWriter::disabled()
        };
        Ok(Self {
            consumer,
            health,
            status,
            producer: build_producer(kafka, config)?,
            codec,
            topics: topics.clone(),
            config: config.clone(),
            metrics,
            kafka: kafka.clone(),
            windows,
        })
    }

    /// Runs until `shutdown` is cancelled or a fatal error. The health given to
    /// [`Pipeline::new`] turns ready when the consumer joins its group, and not ready when the
    /// loop ends.
    ///
    /// # Errors
    /// A fatal Kafka error (e.g. the producer was fenced); the caller should exit so the
    /// process restarts from committed offsets.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ProcessorError> {
        let result = self.process(&shutdown).await;
        // Whatever ended the loop, this processor no longer does its job.
        self.health.set_ready(false);
        self.consumer.close().await;
        result
    }

    async fn process(&mut self, shutdown: &CancellationToken) -> Result<(), ProcessorError> {
        if self.config.guarantee == Guarantee::ExactlyOnce {
            self.init_transactions(shutdown).await?;
        } else {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = self.connect_producer() => {}
            }
        }
        tracing::info!(guarantee = ?self.config.guarantee, topic = %self.topics.raw, "processor running");
        let mut progress = Progress {
            states: PartitionStates::new(self.windows),
            loading: HashMap::new(),
            loads: JoinSet::new(),
            batch: Vec::new(),
            gathering_since: None,
            failed: None,
        };
        let linger = Duration::from_millis(self.config.batch_linger_ms);
        let result = loop {
            if progress.failed.is_none() {
                let full = progress.batch.len() >= self.config.batch_max_records;
                let lingered = progress
                    .gathering_since
                    .is_some_and(|at| at + linger <= tokio::time::Instant::now());
                if full || lingered {
                    let batch = std::mem::take(&mut progress.batch);
                    progress.gathering_since = None;
                    if let Err(err) = self.attempt(&mut progress, batch).await {
                        break Err(err);
                    }
                    continue;
                }
            }
            // What to wake for: the batch's linger, a held order falling due, a retry.
            let wake = match &progress.failed {
                Some(failed) => Some(failed.retry_at),
                None => {
                    let lingers = progress.gathering_since.map(|at| at + linger);
                    let release = progress
                        .states
                        .next_release()
                        .map(tokio::time::Instant::from_std);
                    lingers.into_iter().chain(release).min()
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                event = self.consumer.recv() => match event {
                    Some(Event::Message(message)) => self.take(&mut progress, message),
                    Some(Event::Assigned(partitions)) => self.assigned(&mut progress, &partitions),
                    Some(Event::Revoked(revocation)) => {
                        if let Err(err) = self.revoked(&mut progress, revocation).await {
                            break Err(err);
                        }
                    }
                    Some(Event::Fatal(err)) => break Err(err.into()),
                    None => break Err(ProcessorError::Stopped),
                },
                Some(loaded) = progress.loads.join_next(), if !progress.loads.is_empty() => {
                    self.loaded(&mut progress, loaded);
                }
                () = sleep_until(wake), if wake.is_some() => {
                    if let Some(failed) = progress.failed.take() {
                        if let Err(err) = self.retry(&mut progress, failed).await {
                            break Err(err);
                        }
                    } else if progress.batch.is_empty() {
                        // Held orders fall due even when no record arrives.
                        if let Err(err) = self.attempt(&mut progress, Vec::new()).await {
                            break Err(err);
                        }
                    }
                    // Otherwise the linger is over: the top of the loop flushes.
                }
            }
        };
        for loading in progress.loading.values() {
            loading.cancel.cancel();
        }
        if self.config.guarantee == Guarantee::AtLeastOnce && progress.failed.is_none() {
            // A last batch, so that what arrived is not read again after a restart.
            let batch = std::mem::take(&mut progress.batch);
            if !batch.is_empty() {
                let _ = self.attempt(&mut progress, batch).await;
            }
        }
        result
    }

    /// Connects the (idempotent, non-transactional) producer before the first batch needs
    /// it. librdkafka connects to brokers only when something needs one, and the idempotent
    /// producer asks for its producer id only over a live connection, retrying on a 500 ms
    /// timer: left alone, the first batch after a start waited up to a second for both. A
    /// metadata request for the output topic opens the connection now. (Exactly-once needs
    /// none of this: `init_transactions` gets the id before anything is consumed.)
    async fn connect_producer(&self) {
        let (producer, topic) = (self.producer.clone(), self.topics.canonical.clone());
        let connected = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), KAFKA_TIMEOUT)
                .map(|_| ())
        })
        .await;
        if let Ok(Err(err)) = connected {
            // Not fatal: the first batch connects it anyway, and a broker that cannot be
            // reached shows in the batch's retries.
            tracing::warn!(error = %err, "could not reach Kafka for the producer yet");
        }
    }

    /// `init_transactions`, waiting out a broker that cannot be reached yet.
    async fn init_transactions(&self, shutdown: &CancellationToken) -> Result<(), ProcessorError> {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
        loop {
            let producer = self.producer.clone();
            let done =
                tokio::task::spawn_blocking(move || producer.init_transactions(KAFKA_TIMEOUT))
                    .await?;
            match done {
                Ok(()) => {
                    self.health.set_held(Dependency::Kafka, false);
                    return Ok(());
                }
                Err(err) if is_fatal(&err) => return Err(err.into()),
                Err(err) => {
                    self.health.set_held(Dependency::Kafka, true);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "cannot initialise transactions yet; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// A record from the poll thread: into the batch, or to wait for its partition's memory.
    fn take(&self, progress: &mut Progress, message: OwnedMessage) {
        let partition = message.partition();
        if let Some(loading) = progress.loading.get_mut(&partition) {
            loading.waiting.push(message);
            return;
        }
        if !progress.states.has(partition) {
            // Not assigned to this member (any more): its owner reads it.
            return;
        }
        if progress.gathering_since.is_none() {
            progress.gathering_since = Some(tokio::time::Instant::now());
        }
        progress.batch.push(message);
    }

    /// Partitions assigned: their memory is loaded off the loop.
    fn assigned(&self, progress: &mut Progress, partitions: &[(String, i32)]) {
        let raw: HashSet<i32> = partitions
            .iter()
            .filter(|(topic, _)| *topic == self.topics.raw)
            .map(|(_, p)| *p)
            .collect();
        for partition in raw {
            if progress.states.has(partition) || progress.loading.contains_key(&partition) {
                continue;
            }
            self.start_load(progress, partition, Duration::ZERO);
        }
    }

    fn start_load(&self, progress: &mut Progress, partition: i32, after: Duration) {
        let cancel = Cancel::default();
        progress.loading.insert(
            partition,
            Loading {
                cancel: cancel.clone(),
                waiting: Vec::new(),
            },
        );
        let (kafka, topic, windows) = (
            self.kafka.clone(),
            self.topics.processor_state.clone(),
            self.windows,
        );
        progress.loads.spawn_blocking(move || {
            std::thread::sleep(after); // a retry's backoff, on the loader's own thread
            (
                partition,
                state::load(&kafka, &topic, partition, windows, &cancel),
            )
        });
    }

    /// A load finished: the partition's records that waited for it join the batch.
    fn loaded(
        &self,
        progress: &mut Progress,
        loaded: Result<(i32, Result<PartitionState, StateError>), tokio::task::JoinError>,
    ) {
        let (partition, result) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::error!(error = %err, "a state load panicked");
                return;
            }
        };
        let Some(loading) = progress.loading.remove(&partition) else {
            return; // revoked meanwhile
        };
        match result {
            Ok(state) => {
                progress.states.insert(partition, state);
                for message in loading.waiting {
                    self.take(progress, message);
                }
            }
            Err(StateError::Cancelled) => {}
            Err(err) => {
                tracing::warn!(partition, error = %err, "loading partition state failed; retrying");
                self.health.set_held(Dependency::Kafka, true);
                self.start_load(progress, partition, Duration::from_secs(1));
                if let Some(again) = progress.loading.get_mut(&partition) {
                    again.waiting = loading.waiting;
                }
            }
        }
    }

    /// A revocation: see the module docs.
    async fn revoked(
        &self,
        progress: &mut Progress,
        revocation: Revocation,
    ) -> Result<(), ProcessorError> {
        let revoked: HashSet<i32> = revocation
            .partitions
            .iter()
            .filter(|(topic, _)| *topic == self.topics.raw || *topic == self.topics.attribution)
            .map(|(_, p)| *p)
            .collect();
        if !revocation.lost && progress.failed.is_none() {
            // Still ours until released: what was gathered commits now.
            let batch = std::mem::take(&mut progress.batch);
            progress.gathering_since = None;
            self.attempt(progress, batch).await?;
        }
        let ours = |m: &OwnedMessage| !revoked.contains(&m.partition());
        progress.batch.retain(ours);
        if progress.batch.is_empty() {
            progress.gathering_since = None;
        }
        if let Some(failed) = &mut progress.failed {
            failed.batch.retain(ours);
        }
        for partition in &revoked {
            progress.states.remove(*partition);
            if let Some(loading) = progress.loading.remove(partition) {
                loading.cancel.cancel();
            }
        }
        tracing::info!(partitions = ?revoked, lost = revocation.lost, "partitions released");
        revocation.done();
        Ok(())
    }

    /// Processes `batch` once; a batch that does not commit is kept for a retry.
    async fn attempt(
        &self,
        progress: &mut Progress,
        batch: Vec<OwnedMessage>,
    ) -> Result<(), ProcessorError> {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        self.try_batch(progress, batch, backoff).await
    }

    async fn retry(&self, progress: &mut Progress, failed: Failed) -> Result<(), ProcessorError> {
        self.try_batch(progress, failed.batch, failed.backoff).await
    }

    async fn try_batch(
        &self,
        progress: &mut Progress,
        batch: Vec<OwnedMessage>,
        mut backoff: Backoff,
    ) -> Result<(), ProcessorError> {
        let started = Instant::now();
        let result = self.process_batch(&mut progress.states, &batch).await;
        match result {
            Ok(()) => {
                progress.states.commit();
                self.health.set_held(Dependency::Registry, false);
                self.health.set_held(Dependency::Kafka, false);
                self.metrics.batches.with_label_values(&["committed"]).inc();
                self.metrics
                    .batch_seconds
                    .with_label_values(&[self.guarantee_label()])
                    .observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(BatchError::Fatal(err)) => Err(err),
            Err(BatchError::Retry(reason, dependency)) => {
                // Nothing of the batch counts: what it changed in memory is undone, and the
                // same records are tried again.
                progress.states.rollback();
                self.health.set_held(dependency, true);
                self.metrics.batches.with_label_values(&["retried"]).inc();
                let delay = backoff.next_delay();
                tracing::warn!(error = %reason, delay_ms = delay.as_millis() as u64, records = batch.len(), "batch not committed; retrying");
                progress.failed = Some(Failed {
                    batch,
                    backoff,
                    retry_at: tokio::time::Instant::now() + delay,
                });
                Ok(())
            }
        }
    }

    fn guarantee_label(&self) -> &'static str {
        match self.config.guarantee {
            Guarantee::ExactlyOnce => "exactly-once",
            Guarantee::AtLeastOnce => "at-least-once",
        }
    }

    async fn process_batch(
        &self,
        states: &mut PartitionStates,
        batch: &[OwnedMessage],
    ) -> Result<(), BatchError> {
        let mut outputs = Vec::with_capacity(batch.len());
        let mut duplicates: Vec<&'static str> = Vec::new();
        let mut statuses: Vec<StatusRecord> = Vec::new();
        let mut awaiting: Vec<&'static str> = Vec::new();
        let mut attribution: Vec<&'static str> = Vec::new();
        let mut attribution_next: BTreeMap<i32, i64> = BTreeMap::new();
        for message in batch {
            let Some(state) = states.get(message.partition()) else {
                continue; // not ours any more; its owner reads it
            };
            if message.topic() == self.topics.attribution {
                attribution_next.insert(message.partition(), message.offset() + 1);
                let (outcome, output) = self.attribution_record(message, state).await?;
                attribution.push(outcome);
                outputs.extend(output);
                continue;
            }
            state.took(message.offset());
            if state::delivery_id_of(message).is_some_and(|id| state.is_duplicate(&id)) {
                tracing::debug!(
                    partition = message.partition(),
                    offset = message.offset(),
                    event_id = header_str(message, ob::EVENT_ID),
                    "duplicate delivery suppressed"
                );
                duplicates.push(source_of(message));
                statuses.extend(self.raw_status(message, Status::Duplicate));
                continue;
            }
            if records::awaits_enrichment(message, &self.config.enrichment) {
                // `orderbridge enrich` fetches the whole order and publishes it to the raw
                // topic; that document is what becomes the canonical event.
                awaiting.push(source_of(message));
                statuses.extend(self.raw_status(message, Status::AwaitingEnrichment));
                continue;
            }
            outputs.extend(
                self.process_record(message, state, &mut attribution)
                    .await?,
            );
        }
        // Orders whose wait for attribution is over go out as they are.
        let now = std::time::Instant::now();
        for (_, state) in states.iter_mut() {
            for order_key in state.due(now) {
                for held in state.release(&order_key) {
                    outputs.push(self.emit_held(held, state).await?);
                }
                attribution.push("wait_expired");
            }
        }
        // What the batch taught each partition's memory, to its partition of the state topic.
        for (partition, state) in states.iter_mut() {
            for (key, value) in state.changed() {
                outputs.push(self.state_entry(partition, key, value));
            }
        }
        if batch.is_empty() && outputs.is_empty() {
            return Ok(());
        }
        let offsets = self
            .commit_offsets(states, &attribution_next)
            .map_err(|err| BatchError::Fatal(err.into()))?;
        statuses.extend(outputs.iter().filter_map(|output| self.status_of(output)));
        match self.config.guarantee {
            Guarantee::ExactlyOnce => self.commit_transactionally(outputs, offsets).await?,
            Guarantee::AtLeastOnce => self.deliver_then_store(outputs, offsets).await?,
        }
        // Only what counted is recorded: a batch that did not commit is tried again.
        for status in &statuses {
            self.status.write(status);
        }
        for source in duplicates {
            self.metrics
                .records
                .with_label_values(&[source, "duplicate"])
                .inc();
        }
        for source in awaiting {
            self.metrics
                .records
                .with_label_values(&[source, "awaiting_enrichment"])
                .inc();
        }
        for outcome in attribution {
            self.metrics.attribution.with_label_values(&[outcome]).inc();
        }
        Ok(())
    }
}

/// Sleeps until `at` (never returns without one; the select guards it).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why a batch did not commit.
enum BatchError {
    /// Nothing counted; try again. The dependency that failed holds the processor back
    /// (not ready) until a batch commits.
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
