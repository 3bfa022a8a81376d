//! The delivery engine: canonical records in, ERP upserts out, many at once, each order's
//! records in order, offsets committed only behind finished work.
//!
//! - `ledger.rs` — which records are open per partition, the commit position (the lowest
//!   unfinished offset), and the chains that keep one order's records in order.
//! - `limiter.rs` — the adaptive bound on concurrent ERP calls.
//! - `breaker.rs` — the breaker for ERP-wide trouble (maintenance windows).
//! - `settle.rs` — one record: attempts, retries, dead letters, parking.
//!
//! The loop here fetches records, hands each to the ledger, starts those whose order has
//! nothing else running, and, as they finish, stores each partition's new commit position
//! (auto-commit sends only stored positions; shutdown commits them synchronously). A crash
//! between an upsert and the commit redelivers the record, and the ERP's idempotent upsert
//! makes the second delivery a no-op.
//!
//! Fetching pauses (the consumer keeps polling, so it stays in its group) when too many
//! records are open, and while the breaker is open: during a maintenance window nothing is
//! skipped, nothing committed, and `/readyz` says not ready.
//!
//! On a rebalance, records waiting for revoked partitions are dropped (their new owner reads
//! them from the committed offset); records already running finish, and the ERP's idempotent
//! upsert absorbs the overlap with the new owner.

mod breaker;
mod ledger;
mod limiter;
mod settle;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use orderbridge_runtime::{
    pause_after_consumer_error, Dependency, GroupContext, Health, KafkaSettings,
};
use orderbridge_schemas::{OrderEventCodec, Topics};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::breaker::Breaker;
use self::ledger::{Accepted, Ledger, Ticket};
use self::limiter::{Limiter, Permit};
use self::settle::{Settled, Worker};
use crate::config::SinkConfig;
use crate::erp::ErpClient;
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
    lag: prometheus::IntGaugeVec,
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
        // Consumer lag for the metrics, from librdkafka's statistics.
        .set("statistics.interval.ms", "5000")
        .create_with_context(GroupContext::new("sink", health).with_lag(lag))
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

/// The sink's engine.
pub struct Delivery {
    consumer: StreamConsumer<GroupContext>,
    health: Arc<Health>,
    worker: Arc<Worker>,
    max_open: usize,
    shutdown_grace: Duration,
}

/// A started record's task: the ticket it ran under and how it ended.
type Task = (Ticket, Settled);

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
        let consumer = build_consumer(
            kafka,
            config,
            Arc::clone(&health),
            metrics.consumer_lag.clone(),
        )?;
        consumer.subscribe(&[&topics.canonical])?;
        let max_in_flight = config
            .max_in_flight
            .unwrap_or_else(|| erp.default_max_in_flight());
        let worker = Worker {
            limiter: Limiter::new(max_in_flight, config.adaptive_concurrency),
            breaker: Arc::new(Breaker::new(
                config.breaker_threshold,
                Duration::from_millis(config.breaker_probe_ms),
                Duration::from_millis(config.retry_max_ms.max(config.breaker_probe_ms)),
            )),
            dlq: build_dlq_producer(kafka)?,
            erp,
            codec,
            topics: topics.clone(),
            config: config.clone(),
            metrics,
            shutdown: CancellationToken::new(),
            health: Arc::clone(&health),
        };
        Ok(Self {
            consumer,
            health,
            worker: Arc::new(worker),
            max_open: config.max_open_records.max(1),
            shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
        })
    }

    /// Runs until `shutdown` is cancelled. The health given to [`Delivery::new`] turns ready
    /// when the consumer joins its group, not ready while the breaker is open, and not ready
    /// when the loop ends.
    ///
    /// # Errors
    /// When the consumer fails fatally.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SinkError> {
        let worker = Arc::clone(&self.worker);
        let erp = worker.erp.name();
        tracing::info!(
            erp,
            topic = %worker.topics.canonical,
            max_in_flight = worker.limiter.limit(),
            "sink running"
        );
        let mut engine = Engine {
            delivery: &self,
            ledger: Ledger::default(),
            tasks: JoinSet::new(),
            generation: self.consumer.context().generation(),
            paused: false,
            ready: VecDeque::new(),
        };
        let mut breaker = worker.breaker.subscribe();
        let mut gauges = tokio::time::interval(Duration::from_secs(1));
        let result = loop {
            engine.follow_rebalance();
            engine.pause_or_resume();
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                received = self.consumer.recv() => match received {
                    Ok(message) => engine.accept(message.detach()),
                    Err(err) => {
                        if let Err(err) = pause_after_consumer_error(err, &shutdown).await {
                            break Err(err.into());
                        }
                    }
                },
                permit = worker.limiter.acquire(), if !engine.ready.is_empty() => {
                    engine.dispatch(permit);
                }
                Some(joined) = engine.tasks.join_next(), if !engine.tasks.is_empty() => {
                    if let Err(err) = engine.finished(joined) {
                        break Err(err);
                    }
                }
                Ok(()) = breaker.changed() => {
                    let open = *breaker.borrow_and_update();
                    if open == self.health.is_held_by(Dependency::Erp) {
                        continue; // a probe failed: still open
                    }
                    self.health.set_held(Dependency::Erp, open);
                    worker.metrics.breaker_open.with_label_values(&[erp]).set(i64::from(open));
                    if open {
                        tracing::warn!(erp, "ERP unavailable: breaker open, partitions paused, probing");
                    } else {
                        tracing::info!(erp, "ERP answers again: breaker closed, resuming");
                    }
                }
                _ = gauges.tick() => engine.report(),
            }
        };
        engine.drain().await;
        drop(engine);
        self.health.set_ready(false);
        // The last commit blocks until the broker answers (or librdkafka gives up): off the
        // async workers, so a slow or gone broker cannot stall the rest of the process.
        let consumer = self.consumer;
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync))
                .await;
        match committed {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::debug!(error = %err, "nothing committed at shutdown"),
            Err(err) => tracing::warn!(error = %err, "the last commit failed"),
        }
        result
    }
}

/// The loop's state.
struct Engine<'a> {
    delivery: &'a Delivery,
    ledger: Ledger,
    tasks: JoinSet<Task>,
    generation: u64,
    paused: bool,
    /// Records that may start (nothing of their order is running), oldest first; each starts
    /// when the limiter has a place. Starting in offset order keeps the commit position close
    /// behind the work.
    ready: VecDeque<Ticket>,
}

impl Engine<'_> {
    fn accept(&mut self, message: OwnedMessage) {
        if let Accepted::Start(ticket) = self.ledger.accept(message) {
            self.ready.push_back(ticket);
        }
    }

    /// Starts the oldest ready record under `permit`.
    fn dispatch(&mut self, permit: Permit) {
        let Some(ticket) = self.ready.pop_front() else {
            return;
        };
        let worker = Arc::clone(&self.delivery.worker);
        self.tasks.spawn(async move {
            let settled = worker.settle(&ticket.message, permit).await;
            (ticket, settled)
        });
    }

    /// Takes a task's end. A task that panicked stops the sink: its record would otherwise
    /// stay open for good, holding its partition's commit and its order's later records.
    /// Stopped, the sink is restarted (by its supervisor) and the record delivered again.
    fn finished(&mut self, joined: Result<Task, tokio::task::JoinError>) -> Result<(), SinkError> {
        let (ticket, settled) = match joined {
            Ok(task) => task,
            Err(err) => {
                tracing::error!(error = %err, "a delivery task failed; stopping with its record uncommitted");
                return Err(SinkError::Task(err.to_string()));
            }
        };
        if settled == Settled::Abandoned {
            return Ok(());
        }
        let finished = self.ledger.finish(&ticket);
        if let Some(position) = finished.commit {
            self.store(&ticket.message, position);
        }
        if let Some(next) = finished.next {
            // Older than anything else waiting: it goes first.
            self.ready.push_front(next);
        }
        Ok(())
    }

    /// Stores `position` (the next offset to read) as the commit position of `message`'s
    /// partition; auto-commit sends it. (`rd_kafka_offsets_store` takes the next offset;
    /// the older `rd_kafka_offset_store` would add one itself.)
    fn store(&self, message: &OwnedMessage, position: i64) {
        let mut offsets = TopicPartitionList::new();
        let stored = offsets
            .add_partition_offset(
                message.topic(),
                message.partition(),
                Offset::Offset(position),
            )
            .and_then(|()| self.delivery.consumer.store_offsets(&offsets));
        if let Err(err) = stored {
            // The partition was revoked meanwhile; its new owner redelivers from the
            // committed offset and the idempotent upsert absorbs it.
            tracing::warn!(partition = message.partition(), position, error = %err, "offset not stored");
        }
    }

    /// After a rebalance: forget what belongs to partitions no longer ours.
    fn follow_rebalance(&mut self) {
        let consumer = &self.delivery.consumer;
        let generation = consumer.context().generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let assigned = match consumer.assignment() {
            Ok(assignment) => assignment,
            Err(err) => {
                tracing::warn!(error = %err, "assignment unknown after a rebalance");
                return;
            }
        };
        let canonical = &self.delivery.worker.topics.canonical;
        let partitions: HashSet<i32> = assigned
            .elements()
            .iter()
            .filter(|e| e.topic() == canonical)
            .map(|e| e.partition())
            .collect();
        self.ledger.retain(&partitions);
        self.ready
            .retain(|ticket| partitions.contains(&ticket.message.partition()));
        // Partitions newly assigned start unpaused; pause them too if we are paused.
        if self.paused {
            if let Err(err) = consumer.pause(&assigned) {
                tracing::warn!(error = %err, "could not pause newly assigned partitions");
            }
        }
    }

    /// Pauses fetching while too many records are open or the ERP is unavailable; resumes
    /// when half of them finished and the ERP answers.
    fn pause_or_resume(&mut self) {
        let open = self.ledger.open();
        let max = self.delivery.max_open;
        let erp_down = self.delivery.worker.breaker.is_open();
        let pause = erp_down || open >= max || (self.paused && open > max / 2);
        if pause == self.paused {
            return;
        }
        let consumer = &self.delivery.consumer;
        let assigned = match consumer.assignment() {
            Ok(assignment) => assignment,
            Err(err) => {
                tracing::warn!(error = %err, "assignment unknown; cannot pause or resume");
                return;
            }
        };
        let done = if pause {
            consumer.pause(&assigned)
        } else {
            consumer.resume(&assigned)
        };
        match done {
            Ok(()) => {
                self.paused = pause;
                tracing::debug!(paused = pause, open, erp_down, "fetching paused or resumed");
            }
            Err(err) => tracing::warn!(error = %err, pause, "could not pause or resume"),
        }
    }

    fn report(&self) {
        let worker = &self.delivery.worker;
        let erp = worker.erp.name();
        let metrics = &worker.metrics;
        let limit = i64::try_from(worker.limiter.limit()).unwrap_or(i64::MAX);
        let in_flight = i64::try_from(worker.limiter.in_flight()).unwrap_or(i64::MAX);
        let open = i64::try_from(self.ledger.open()).unwrap_or(i64::MAX);
        metrics
            .concurrency_limit
            .with_label_values(&[erp])
            .set(limit);
        metrics.in_flight.with_label_values(&[erp]).set(in_flight);
        metrics.open_records.with_label_values(&[erp]).set(open);
        metrics
            .breaker_open
            .with_label_values(&[erp])
            .set(i64::from(worker.breaker.is_open()));
    }

    /// At shutdown: records waiting for the breaker or a retry are abandoned at once; calls
    /// already at the ERP get `shutdown_grace` to answer so their offsets can be stored.
    async fn drain(&mut self) {
        self.delivery.worker.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.delivery.shutdown_grace;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(joined)) => {
                    // Only what already finished counts now; nothing new starts.
                    if let Ok((ticket, Settled::Done)) = joined {
                        if let Some(position) = self.ledger.finish(&ticket).commit {
                            self.store(&ticket.message, position);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        running = self.tasks.len(),
                        "ERP calls still running at the end of the shutdown grace; their records stay uncommitted"
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}
