//! `orderbridge enrich`: thin notifications in, whole orders out.
//!
//! Most marketplaces send an order id and a status, not the order (Amazon, eBay, Etsy,
//! TikTok Shop, Walmart, Flipkart after `shipment_created`, Ordermentum, BigCommerce). This
//! stage reads the raw topic beside the processor, and for each thin notification of an
//! account whose API is configured (`[api.<source>]`) fetches the whole order from the
//! provider and publishes it, byte for byte as the provider returned it, to the raw topic
//! under the order's key, with `ob-origin: enrich` and the notification's event id. The
//! processor normalizes that document like any other record (and counts the notification
//! itself as `awaiting_enrichment`), so network I/O never runs inside its transaction loop,
//! and reprocessing from the raw topic never fetches again.
//!
//! **Nothing waits on a slow provider but its own orders.** Fetches run many at once, each
//! order's records in order (the ledger), at most `max_in_flight_per_account` per account,
//! paced by that account's rate limiter. An account whose queue is full has its further
//! notifications sent to the retry topic at once; a fetch that fails for now (the provider
//! is down, throttling beyond patience, refusing our token) goes there too, with a time to
//! be tried again (`retry_delays_secs`). A second reader takes them from there when due. So
//! retry state lives in Kafka: a restart resumes every pending fetch. A permanent refusal
//! (the provider has no such order, our app may not see it) dead-letters the notification
//! with the provider's words; so does a completion still failing after
//! `retry_max_age_secs`. Dead letters point at the raw record, and a replay of one is
//! completed again.
//!
//! **Offsets** advance only behind records that reached their end (a document, a retry or
//! a dead letter acknowledged by the broker). A crash repeats what was in flight: the
//! documents it publishes again carry the same event id, and the processor's duplicate
//! filter drops them.
//!
//! Layout: this file is the two readers' loop; `work.rs` is one record's work;
//! `config.rs` is `[enrich]`.

mod config;
mod work;

pub use config::EnrichConfig;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use orderbridge_runtime::{
    Accepted, Event, GroupConsumer, GroupContext, Health, KafkaSettings, Ledger, Revocation, Ticket,
};
use orderbridge_schemas::Topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::work::{Outcome, Role, Worker};
use crate::metrics::EnrichMetrics;
use crate::publish::RawPublisher;
use crate::Apis;

/// Why the stage stopped.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// A Kafka client failed fatally or could not be built.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A reader's poll thread stopped, or a record's task failed.
    #[error("{0}")]
    Task(String),
}

/// Builds a reader of `topic` in `group`. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_consumer(
    kafka: &KafkaSettings,
    config: &EnrichConfig,
    group: &str,
    role: &'static str,
    health: Arc<Health>,
    lag: prometheus::IntGaugeVec,
) -> KafkaResult<BaseConsumer<GroupContext>> {
    let mut client = kafka.client_config();
    client
        .set("group.id", group)
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        // Webhooks only from committed processor-side writes; ingest does not use
        // transactions, so this costs nothing and keeps aborted records out if one ever does.
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        // Offsets are stored only behind records that reached their end; auto-commit sends
        // only what was stored.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("statistics.interval.ms", "5000");
    if let Some(instance) = &config.instance_id {
        // Static membership: a restart takes this name's partitions back at once.
        client.set("group.instance.id", format!("{instance}-{role}"));
    }
    client.create_with_context(
        GroupContext::new(role, health)
            .with_lag(lag)
            // A revocation waits for the fetches of its partitions, then commits.
            .with_revocation(Duration::from_millis(config.revoke_grace_ms), true),
    )
}

/// Builds the producer of retries and dead letters. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_producer(kafka: &KafkaSettings) -> KafkaResult<FutureProducer> {
    kafka
        .producer_config()
        // A record is committed past once its retry or dead letter is acknowledged.
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
}

/// Runs the stage until `shutdown`: the raw reader and the retry reader.
///
/// # Errors
/// When a client cannot be built or a reader fails fatally.
pub async fn run(
    config: &EnrichConfig,
    kafka: &KafkaSettings,
    topics: &Topics,
    apis: Arc<Apis>,
    metrics: EnrichMetrics,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> Result<(), EnrichError> {
    config.validate().map_err(EnrichError::Config)?;
    let worker = Arc::new(Worker::new(
        config.clone(),
        topics.clone(),
        apis,
        RawPublisher::new(kafka, &topics.raw)?,
        build_producer(kafka)?,
        metrics.clone(),
    ));
    let raw = Reader::new(
        Role::Raw,
        kafka,
        config,
        &topics.raw,
        Arc::clone(&worker),
        Arc::clone(&health),
        &metrics,
    )?;
    let retry = Reader::new(
        Role::Retry,
        kafka,
        config,
        &topics.enrich_retry,
        Arc::clone(&worker),
        Arc::clone(&health),
        &metrics,
    )?;
    tracing::info!(raw = %topics.raw, retry = %topics.enrich_retry, "enrich stage running");
    let stop = shutdown.clone();
    let (a, b) = tokio::join!(raw.run(shutdown.clone()), async {
        let result = retry.run(stop.clone()).await;
        if result.is_err() {
            stop.cancel();
        }
        result
    });
    health.set_ready(false);
    a.and(b)
}

/// What the reader knows of one assigned partition, for one ledger epoch of it.
struct PartitionWork {
    epoch: u64,
    running: usize,
    cancel: CancellationToken,
}

struct Revoking {
    revocation: Revocation,
    partitions: HashSet<i32>,
    deadline: tokio::time::Instant,
}

/// One topic's reader: records in, each taken to its end, offsets stored behind them.
struct Reader {
    role: Role,
    topic: String,
    consumer: GroupConsumer,
    worker: Arc<Worker>,
    ledger: Ledger,
    tasks: JoinSet<(Ticket, Outcome)>,
    partitions: HashMap<i32, PartitionWork>,
    revoking: Option<Revoking>,
    paused: bool,
    shutdown: CancellationToken,
}

impl Reader {
    fn new(
        role: Role,
        kafka: &KafkaSettings,
        config: &EnrichConfig,
        topic: &str,
        worker: Arc<Worker>,
        health: Arc<Health>,
        metrics: &EnrichMetrics,
    ) -> Result<Self, EnrichError> {
        let (group, name) = match role {
            Role::Raw => (&config.group_id, "enrich"),
            Role::Retry => (&config.retry_group_id, "enrich-retry"),
        };
        let consumer = build_consumer(
            kafka,
            config,
            group,
            name,
            health,
            metrics.consumer_lag.clone(),
        )?;
        consumer.subscribe(&[topic])?;
        let consumer = GroupConsumer::start(consumer, config.max_open_records)
            .map_err(|err| EnrichError::Task(format!("starting the {name} reader: {err}")))?;
        Ok(Self {
            role,
            topic: topic.to_owned(),
            consumer,
            worker,
            ledger: Ledger::default(),
            tasks: JoinSet::new(),
            partitions: HashMap::new(),
            revoking: None,
            paused: false,
            shutdown: CancellationToken::new(),
        })
    }

    async fn run(mut self, shutdown: CancellationToken) -> Result<(), EnrichError> {
        let result = loop {
            self.release_if_settled();
            self.pause_or_resume();
            let deadline = self.revoking.as_ref().map(|r| r.deadline);
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                event = self.consumer.recv() => match event {
                    Some(Event::Message(message)) => self.accept(message),
                    Some(Event::Assigned(_)) => {}
                    Some(Event::Revoked(revocation)) => self.begin_revoke(revocation),
                    Some(Event::Fatal(err)) => break Err(err.into()),
                    None => break Err(EnrichError::Task("a reader's poll thread stopped".into())),
                },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Err(err) = self.finished(joined) {
                        break Err(err);
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    tracing::warn!(topic = %self.topic, "fetches still running for revoked partitions at the end of the grace; releasing them");
                    self.release();
                }
            }
        };
        self.drain().await;
        self.consumer.close().await;
        result
    }

    fn accept(&mut self, message: OwnedMessage) {
        if let Accepted::Start(ticket) = self.ledger.accept(message) {
            self.start(ticket);
        }
    }

    fn start(&mut self, ticket: Ticket) {
        let fresh = || PartitionWork {
            epoch: ticket.epoch,
            running: 0,
            cancel: self.shutdown.child_token(),
        };
        let work = self
            .partitions
            .entry(ticket.message.partition())
            .or_insert_with(fresh);
        if work.epoch != ticket.epoch {
            *work = fresh();
        }
        work.running += 1;
        let cancel = work.cancel.clone();
        let (worker, role) = (Arc::clone(&self.worker), self.role);
        self.tasks.spawn(async move {
            let outcome = worker.handle(role, &ticket.message, &cancel).await;
            (ticket, outcome)
        });
    }

    fn finished(
        &mut self,
        joined: Result<(Ticket, Outcome), tokio::task::JoinError>,
    ) -> Result<(), EnrichError> {
        let (ticket, outcome) = joined.map_err(|err| {
            // Its record would stay open for good; stopped, the stage restarts and reads it again.
            EnrichError::Task(format!("a record's task failed: {err}"))
        })?;
        let partition = ticket.message.partition();
        if let Some(work) = self.partitions.get_mut(&partition) {
            if work.epoch == ticket.epoch {
                work.running = work.running.saturating_sub(1);
            }
        }
        if outcome == Outcome::Abandoned {
            return Ok(());
        }
        let finished = self.ledger.finish(&ticket);
        if let Some(position) = finished.commit {
            self.store(&ticket.message, position);
        }
        let revoking = self
            .revoking
            .as_ref()
            .is_some_and(|r| r.partitions.contains(&partition));
        if let (Some(next), false) = (finished.next, revoking) {
            self.start(next);
        }
        Ok(())
    }

    fn store(&self, message: &OwnedMessage, position: i64) {
        let mut offsets = TopicPartitionList::new();
        let stored = offsets
            .add_partition_offset(
                message.topic(),
                message.partition(),
                Offset::Offset(position),
            )
            .and_then(|()| self.consumer.consumer().store_offsets(&offsets));
        if let Err(err) = stored {
            tracing::warn!(topic = message.topic(), partition = message.partition(), position, error = %err, "offset not stored");
        }
    }

    fn begin_revoke(&mut self, revocation: Revocation) {
        let partitions = revocation.of(&self.topic);
        for partition in &partitions {
            if let Some(work) = self.partitions.get(partition) {
                // Everything running for them stops (a fetch only reads): their records are
                // read again by the new owner from the committed offset.
                work.cancel.cancel();
            }
        }
        self.revoking = Some(Revoking {
            revocation,
            partitions,
            deadline: tokio::time::Instant::now()
                + Duration::from_millis(self.worker.config.revoke_grace_ms),
        });
    }

    fn release_if_settled(&mut self) {
        let settled = self.revoking.as_ref().is_some_and(|revoking| {
            revoking
                .partitions
                .iter()
                .all(|p| self.partitions.get(p).is_none_or(|w| w.running == 0))
        });
        if settled {
            self.release();
        }
    }

    fn release(&mut self) {
        let Some(revoking) = self.revoking.take() else {
            return;
        };
        for partition in &revoking.partitions {
            self.partitions.remove(partition);
        }
        let kept: HashSet<i32> = self
            .ledger
            .partitions()
            .filter(|p| !revoking.partitions.contains(p))
            .collect();
        self.ledger.retain(&kept);
        revoking.revocation.done();
    }

    fn pause_or_resume(&mut self) {
        let open = self.ledger.open();
        let max = self.worker.config.max_open_records;
        let pause = open >= max || (self.paused && open > max / 2);
        if pause != self.paused {
            self.consumer.set_paused(pause);
            self.paused = pause;
        }
    }

    /// At shutdown: waits are dropped at once; fetches already sent get the shutdown grace to
    /// finish, so their offsets can be stored.
    async fn drain(&mut self) {
        self.shutdown.cancel();
        if let Some(revoking) = self.revoking.take() {
            revoking.revocation.done();
        }
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.worker.config.shutdown_grace_ms);
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok((ticket, Outcome::Done(_))))) => {
                    if let Some(position) = self.ledger.finish(&ticket).commit {
                        self.store(&ticket.message, position);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
