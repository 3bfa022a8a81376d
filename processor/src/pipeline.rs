//! The consume → normalize → produce loop, under either guarantee.
//!
//! Records are taken in batches (up to `batch_max_records`, or what arrived within
//! `batch_linger_ms` of the first). Each record becomes exactly one output: a canonical event,
//! or a dead letter with its reason. Then:
//!
//! - **exactly-once**: `begin_transaction`, produce every output, `send_offsets_to_transaction`
//!   with the batch's next offsets and the group metadata, `commit_transaction`. Readers with
//!   `read_committed` see the batch's outputs exactly when its offsets are committed.
//! - **at-least-once**: produce every output, wait for every delivery report, then store the
//!   batch's next offsets (auto-commit sends them later).
//!
//! If anything in between fails, nothing of the batch counts: the transaction is aborted (or
//! the offsets are simply not stored), the consumer is rewound to the batch's first offsets,
//! and the batch is tried again after a backoff. A fatal producer error (fenced) ends the run,
//! so the process restarts with a fresh producer and resumes from committed offsets.
//!
//! The consumer reads the attribution topic beside the raw topic (same group, same
//! partitions: they are co-partitioned). An attribution record is stored in the partition's
//! state (`state/`), and when its order was already emitted with other attribution it
//! becomes a partial canonical update carrying the attribution, in the same transaction as
//! the offsets. Repeated deliveries (an `ob-event-id` already emitted) produce nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use orderbridge_runtime::{
    dlq_headers, header_str, pause_after_consumer_error, Backoff, DeadLetter, GroupContext, Health,
    KafkaSettings,
};
use orderbridge_schemas::{headers as ob, EventType, OrderEvent, OrderEventCodec, Source, Topics};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::{Guarantee, ProcessorConfig};
use crate::metrics::ProcessorMetrics;
use crate::sources::{self, NormalizeError, RawRecord};
use crate::state::{self, Held, PartitionState, PartitionStates, Windows};
use crate::ProcessorError;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
const CANONICAL_CONTENT_TYPE: &str = "application/vnd.orderbridge.order-event.v1+avro";

/// Builds the raw-topic consumer. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_consumer(
    kafka: &KafkaSettings,
    config: &ProcessorConfig,
    health: Arc<Health>,
) -> KafkaResult<StreamConsumer<GroupContext>> {
    let mut client = kafka.client_config();
    client
        .set("group.id", &config.group_id)
        // Latency bound for brokers that hold empty fetches (see the config docs).
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        // A new group starts from the oldest webhook still retained: nothing is skipped.
        .set("auto.offset.reset", "earliest")
        // Replays and backfills may be written transactionally; never read aborted writes.
        .set("isolation.level", "read_committed")
        // Partition N of the raw and the attribution topic must go to the same member (the
        // join's state is per partition number); the range assignor does that for
        // co-partitioned topics, the sticky ones do not promise it.
        .set("partition.assignment.strategy", "range");
    match config.guarantee {
        // Offsets are committed inside the producer's transaction, never by the consumer.
        Guarantee::ExactlyOnce => client.set("enable.auto.commit", "false"),
        Guarantee::AtLeastOnce => client
            // Auto-commit sends only what we stored, and we store only after delivery reports.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false"),
    };
    client.create_with_context(GroupContext::new("processor", health))
}

/// Builds the canonical/DLQ producer. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_producer(
    kafka: &KafkaSettings,
    config: &ProcessorConfig,
) -> KafkaResult<FutureProducer> {
    let mut client = kafka.producer_config();
    client
        // A canonical event is only "produced" when every in-sync replica has it.
        .set("acks", "all")
        // Retries never duplicate or reorder within a partition.
        .set("enable.idempotence", "true")
        .set("linger.ms", "5");
    if config.guarantee == Guarantee::ExactlyOnce {
        // Outputs and consumed offsets commit together or not at all.
        client.set("transactional.id", config.transactional_id());
    }
    client.create()
}

/// One record's result: where it goes and what it carries.
struct Output {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: OwnedHeaders,
    source: &'static str,
    outcome: &'static str,
}

impl Output {
    fn record(&self) -> FutureRecord<'_, Vec<u8>, Vec<u8>> {
        let record = FutureRecord::to(&self.topic)
            .payload(&self.payload)
            .headers(self.headers.clone());
        match &self.key {
            Some(key) => record.key(key),
            None => record,
        }
    }
}

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
        let consumer = build_consumer(kafka, config, Arc::clone(&health))?;
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
                    self.metrics.batches.with_label_values(&["committed"]).inc();
                    self.metrics
                        .batch_seconds
                        .with_label_values(&[self.guarantee_label()])
                        .observe(started.elapsed().as_secs_f64());
                }
                Err(BatchError::Fatal(err)) => return Err(err),
                Err(BatchError::Retry(reason)) => {
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
                .map_err(|err| BatchError::Retry(err.to_string()))?;
            if message.topic() == self.topics.attribution {
                let (outcome, output) = self.attribution_record(message, state).await?;
                attribution.push(outcome);
                outputs.extend(output);
                continue;
            }
            state.took(message.offset());
            let event_id = header_str(message, ob::EVENT_ID);
            if event_id.is_some_and(|id| state.is_duplicate(id)) {
                tracing::debug!(
                    partition = message.partition(),
                    offset = message.offset(),
                    event_id,
                    "duplicate delivery suppressed"
                );
                duplicates.push(source_of(message));
                continue;
            }
            outputs.extend(self.process_record(message, state).await?);
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

    /// Takes in one attribution record: an update of its order when the order was already
    /// emitted with other attribution, nothing when the order is still to come (it will be
    /// joined then), or a dead letter when the record is not an attribution event.
    async fn attribution_record(
        &self,
        message: &OwnedMessage,
        state: &mut PartitionState,
    ) -> Result<(&'static str, Vec<Output>), BatchError> {
        let Some((order_key, attribution)) = state::attribution_of(message) else {
            let reason = "not an attribution event: a key (the order key) and a JSON \
                          AttributionEvent whose order_key, if given, equals the key";
            return Ok((
                "dead_lettered",
                vec![self.dead_letter(message, "unparseable", reason, "attribution")],
            ));
        };
        let at = message
            .timestamp()
            .to_millis()
            .unwrap_or_else(state::now_ms);
        let Some(version) = state.attribution_arrived(&order_key, &attribution.attribution, at)
        else {
            // The order may be waiting for exactly this: it goes out now, with it.
            let mut released = Vec::new();
            for held in state.release(&order_key) {
                released.push(self.emit_held(held, state).await?);
            }
            let outcome = if released.is_empty() {
                "stored"
            } else {
                "released"
            };
            return Ok((outcome, released));
        };
        let Some(mut update) = attribution_update(&order_key, message, version) else {
            // A key that is no order key joins nothing; kept in state, not an error.
            return Ok(("stored", Vec::new()));
        };
        update.attribution = Some(attribution.attribution);
        let payload = match self.codec.encode(&update).await {
            Ok(payload) => payload,
            Err(err) if err.is_retryable() => return Err(BatchError::Retry(err.to_string())),
            Err(err) => {
                let reason = err.to_string();
                return Ok((
                    "dead_lettered",
                    vec![self.dead_letter(message, "invalid", &reason, "attribution")],
                ));
            }
        };
        state.record(Some(&update.lineage.event_id), &update, at);
        // Headers as a raw record's would be, so readers filter and trace it the same way.
        let carried = [
            (ob::SOURCE, Some(update.source.clone())),
            (ob::ACCOUNT, Some(update.account.clone())),
            (ob::EVENT_TYPE, Some("attribution".to_owned())),
            (ob::EVENT_ID, Some(update.lineage.event_id.clone())),
            (ob::RECEIVED_AT, Some(at.to_string())),
            (ob::ORIGIN, Some(update.lineage.origin.clone())),
        ];
        let output =
            self.canonical_with(&carried, update.order_key.clone(), payload, "attribution");
        Ok(("reemitted", vec![output]))
    }

    /// The canonical record of an event that waited for attribution.
    async fn emit_held(
        &self,
        held: Held,
        state: &mut PartitionState,
    ) -> Result<Output, BatchError> {
        // It encoded when it was held, and attribution holds nothing the schema could refuse,
        // so only a registry outage fails here.
        let payload = self
            .codec
            .encode(&held.event)
            .await
            .map_err(|err| BatchError::Retry(format!("encoding a held event: {err}")))?;
        let source = held
            .event
            .source
            .parse::<Source>()
            .map_or("unknown", Source::as_str);
        state.record(held.event_id.as_deref(), &held.event, state::now_ms());
        Ok(self.canonical_with(&held.carried, held.event.order_key, payload, source))
    }

    /// Normalizes and encodes one record. Only a registry outage is worth retrying; every
    /// other failure is a property of the record and becomes a dead letter.
    ///
    /// `None` when the event waits for its order's attribution (`attribution_wait_ms`).
    async fn process_record(
        &self,
        message: &OwnedMessage,
        state: &mut PartitionState,
    ) -> Result<Option<Output>, BatchError> {
        let (source, normalized) = normalize(message, &self.config.mappings);
        let source_label = source.map_or("unknown", Source::as_str);
        let (class, reason): (&'static str, String) = match normalized {
            Ok(mut event) => {
                if state.attach(&mut event) {
                    self.metrics
                        .attribution
                        .with_label_values(&["attached"])
                        .inc();
                }
                match self.codec.encode(&event).await {
                    Ok(_) if self.should_hold(state, &event) => {
                        self.metrics.attribution.with_label_values(&["held"]).inc();
                        state.hold(Held {
                            carried: carried_headers(message),
                            event_id: header_str(message, ob::EVENT_ID).map(str::to_owned),
                            offset: message.offset(),
                            until: std::time::Instant::now()
                                + Duration::from_millis(self.config.attribution_wait_ms),
                            event,
                        });
                        return Ok(None);
                    }
                    Ok(payload) => {
                        let at = message
                            .timestamp()
                            .to_millis()
                            .unwrap_or_else(state::now_ms);
                        state.record(header_str(message, ob::EVENT_ID), &event, at);
                        return Ok(Some(self.canonical(
                            message,
                            event.order_key,
                            payload,
                            source_label,
                        )));
                    }
                    Err(err) if err.is_retryable() => {
                        return Err(BatchError::Retry(err.to_string()))
                    }
                    // The event does not fit the schema (an amount beyond decimal(18,4)).
                    Err(err) => ("invalid", err.to_string()),
                }
            }
            Err(err) => (err.class(), err.to_string()),
        };
        Ok(Some(self.dead_letter(
            message,
            class,
            &reason,
            source_label,
        )))
    }

    fn should_hold(&self, state: &PartitionState, event: &OrderEvent) -> bool {
        self.config.attribution_wait_ms > 0 && state.should_hold(event)
    }

    /// The offsets a committed batch moves to: past each attribution record of the batch, and
    /// for each raw partition past every record taken in but never past a held one.
    fn commit_offsets(
        &self,
        states: &mut PartitionStates,
        batch: &[OwnedMessage],
        generation: u64,
    ) -> KafkaResult<TopicPartitionList> {
        let mut offsets = TopicPartitionList::new();
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        for message in batch
            .iter()
            .filter(|m| m.topic() == self.topics.attribution)
        {
            last.insert(message.partition(), message.offset());
        }
        for (partition, offset) in last {
            offsets.add_partition_offset(
                &self.topics.attribution,
                partition,
                Offset::Offset(offset + 1),
            )?;
        }
        for (partition, state) in states.current(generation) {
            if let Some(offset) = state.commit_offset() {
                offsets.add_partition_offset(
                    &self.topics.raw,
                    partition,
                    Offset::Offset(offset),
                )?;
            }
        }
        Ok(offsets)
    }

    /// The dead letter of `message`: its value and headers untouched, plus why.
    fn dead_letter(
        &self,
        message: &OwnedMessage,
        class: &'static str,
        reason: &str,
        source_label: &'static str,
    ) -> Output {
        tracing::warn!(
            source = source_label,
            event_id = header_str(message, ob::EVENT_ID).unwrap_or("-"),
            partition = message.partition(),
            offset = message.offset(),
            class,
            reason = %reason,
            "dead-lettering record"
        );
        Output {
            topic: self.topics.dlq.clone(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers: dlq_headers(
                message,
                &DeadLetter {
                    stage: "processor",
                    class,
                    reason,
                    attempts: 1,
                },
            ),
            source: source_label,
            outcome: "dead_lettered",
        }
    }

    /// The canonical record for an encoded event, carrying the raw record's `ob-` headers.
    fn canonical(
        &self,
        message: &OwnedMessage,
        order_key: String,
        payload: Vec<u8>,
        source: &'static str,
    ) -> Output {
        self.canonical_with(&carried_headers(message), order_key, payload, source)
    }

    /// A canonical record with the `ob-` headers `carried` (absent values left out).
    fn canonical_with(
        &self,
        carried: &[(&str, Option<String>)],
        order_key: String,
        payload: Vec<u8>,
        source: &'static str,
    ) -> Output {
        let mut headers = OwnedHeaders::new();
        for (key, value) in carried {
            if let Some(value) = value {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
        }
        headers = headers.insert(Header {
            key: ob::CONTENT_TYPE,
            value: Some(CANONICAL_CONTENT_TYPE),
        });
        Output {
            topic: self.topics.canonical.clone(),
            key: Some(order_key.into_bytes()),
            payload,
            headers,
            source,
            outcome: "canonical",
        }
    }

    async fn commit_transactionally(
        &self,
        outputs: Vec<Output>,
        offsets: TopicPartitionList,
    ) -> Result<(), BatchError> {
        let group = self
            .consumer
            .group_metadata()
            .ok_or_else(|| BatchError::Retry("consumer has no group metadata yet".into()))?;
        self.producer.begin_transaction().map_err(transactional)?;
        let mut deliveries = Vec::with_capacity(outputs.len());
        for output in &outputs {
            let record = output.record();
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((err, _)) => return Err(self.abort(err).await),
            }
        }
        let producer = self.producer.clone();
        let committed = tokio::task::spawn_blocking(move || {
            producer.send_offsets_to_transaction(&offsets, &group, KAFKA_TIMEOUT)?;
            // Flushes every output, then commits them with the offsets atomically. A
            // retriable error leaves the transaction committing: the commit may be called
            // again (librdkafka's documented recovery); anything else is handled by `abort`.
            let mut attempts = 0;
            loop {
                match producer.commit_transaction(KAFKA_TIMEOUT) {
                    Err(KafkaError::Transaction(err)) if err.is_retriable() && attempts < 3 => {
                        attempts += 1;
                        tracing::warn!(error = %err, attempts, "commit_transaction retriable; retrying");
                    }
                    result => return result,
                }
            }
        })
        .await
        .map_err(|join| BatchError::Fatal(ProcessorError::Join(join)))?;
        if let Err(err) = committed {
            return Err(self.abort(err).await);
        }
        for delivery in deliveries {
            // Already delivered by the commit; awaited only to release them.
            let _ = delivery.await;
        }
        self.count(&outputs);
        Ok(())
    }

    /// Aborts the open transaction after `err`, so the batch can be retried. A fatal error
    /// (the producer was fenced) or a failed abort ends the run instead: only a new producer
    /// can go on.
    async fn abort(&self, err: KafkaError) -> BatchError {
        if is_fatal(&err) {
            return BatchError::Fatal(err.into());
        }
        let producer = self.producer.clone();
        match tokio::task::spawn_blocking(move || producer.abort_transaction(KAFKA_TIMEOUT)).await {
            Ok(Ok(())) => BatchError::Retry(format!("transaction aborted: {err}")),
            Ok(Err(abort_err)) => {
                // The abort's own error is what ends the run; the error that made us abort
                // is the cause an operator needs, so it is logged with it.
                tracing::error!(cause = %err, error = %abort_err, "transaction could not be aborted");
                BatchError::Fatal(abort_err.into())
            }
            Err(join) => BatchError::Fatal(ProcessorError::Join(join)),
        }
    }

    async fn deliver_then_store(
        &self,
        outputs: Vec<Output>,
        offsets: TopicPartitionList,
    ) -> Result<(), BatchError> {
        let mut deliveries = Vec::with_capacity(outputs.len());
        for output in &outputs {
            let record = output.record();
            deliveries.push(self.producer.send(record, Timeout::After(KAFKA_TIMEOUT)));
        }
        for result in futures::future::join_all(deliveries).await {
            if let Err((err, _)) = result {
                return Err(BatchError::Retry(format!("delivery failed: {err}")));
            }
        }
        // Every output is acknowledged; only now may the consumed offsets move.
        self.consumer
            .store_offsets(&offsets)
            .map_err(|err| BatchError::Retry(format!("storing offsets: {err}")))?;
        self.count(&outputs);
        Ok(())
    }

    fn count(&self, outputs: &[Output]) {
        for output in outputs {
            self.metrics
                .records
                .with_label_values(&[output.source, output.outcome])
                .inc();
        }
    }

    /// Seeks every partition of the batch back to the batch's first offset on it, and each
    /// raw partition in `floors` back to that offset if it is older (a held record).
    fn rewind(&self, batch: &[OwnedMessage], floors: &BTreeMap<i32, i64>) {
        let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for message in batch {
            first
                .entry((message.topic().to_owned(), message.partition()))
                .or_insert(message.offset());
        }
        for (partition, floor) in floors {
            let entry = first
                .entry((self.topics.raw.clone(), *partition))
                .or_insert(*floor);
            *entry = (*entry).min(*floor);
        }
        for ((topic, partition), offset) in first {
            if let Err(err) = self.consumer.seek(
                &topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(5),
            ) {
                // The partition may have been revoked meanwhile; its new owner starts from
                // the committed offset, which never passed this batch nor a held record.
                tracing::warn!(%topic, partition, offset, error = %err, "rewind failed");
            }
        }
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
    /// Nothing counted; rewind and try again.
    Retry(String),
    /// Stop the processor.
    Fatal(ProcessorError),
}

fn transactional(err: KafkaError) -> BatchError {
    if is_fatal(&err) {
        BatchError::Fatal(err.into())
    } else {
        BatchError::Retry(err.to_string())
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

/// The raw record's `ob-` headers a canonical record carries on.
fn carried_headers(message: &OwnedMessage) -> Vec<(&'static str, Option<String>)> {
    [
        ob::SOURCE,
        ob::ACCOUNT,
        ob::EVENT_TYPE,
        ob::EVENT_ID,
        ob::RECEIVED_AT,
        ob::ORIGIN,
    ]
    .into_iter()
    .map(|key| (key, header_str(message, key).map(str::to_owned)))
    .collect()
}

/// The source label of a raw record.
fn source_of(message: &OwnedMessage) -> &'static str {
    header_str(message, ob::SOURCE)
        .and_then(|s| s.parse::<Source>().ok())
        .map_or("unknown", Source::as_str)
}

/// Reads the raw record's headers and runs its source's normalizer.
fn normalize(
    message: &OwnedMessage,
    mappings: &sources::mapped::Mappings,
) -> (Option<Source>, Result<OrderEvent, NormalizeError>) {
    let Some(source) = header_str(message, ob::SOURCE).and_then(|s| s.parse::<Source>().ok())
    else {
        return (
            None,
            Err(NormalizeError::Unsupported(
                header_str(message, ob::SOURCE)
                    .unwrap_or("no ob-source header")
                    .to_owned(),
            )),
        );
    };
    let received_at = header_str(message, ob::RECEIVED_AT)
        .and_then(|ms| ms.parse::<i64>().ok())
        .or_else(|| message.timestamp().to_millis())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let raw = RawRecord {
        source,
        account: header_str(message, ob::ACCOUNT).unwrap_or("-"),
        event_type: header_str(message, ob::EVENT_TYPE).unwrap_or("unknown"),
        event_id: header_str(message, ob::EVENT_ID).unwrap_or("-"),
        received_at,
        origin: header_str(message, ob::ORIGIN).unwrap_or("webhook"),
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        body: message.payload().unwrap_or_default(),
    };
    (Some(source), sources::normalize(&raw, mappings))
}

/// The partial event that gives `order_key`'s order new attribution at `version`, traced to
/// the attribution record `message`; `None` when the key is not an order key.
fn attribution_update(order_key: &str, message: &OwnedMessage, version: i64) -> Option<OrderEvent> {
    let mut parts = order_key.splitn(3, ':');
    let (source, account, order_id) = (parts.next()?, parts.next()?, parts.next()?);
    let event_id = format!("attribution:{}:{}", message.partition(), message.offset());
    let raw = RawRecord {
        source: source.parse().ok()?,
        account,
        event_type: "attribution",
        event_id: &event_id,
        received_at: message
            .timestamp()
            .to_millis()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        origin: "attribution",
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        body: &[],
    };
    let mut update = sources::common::event(&raw, order_id);
    update.event_type = EventType::Updated;
    update.partial = true;
    update.version = version;
    Some(update)
}
