//! The delivery engine: canonical records in, ERP upserts out, many at once, each order's
//! records in order, offsets committed only behind finished work.
//!
//! - the ledger (`orderbridge_runtime::Ledger`) — which records are open per partition, the
//!   commit position (the lowest unfinished offset), and the chains that keep one order's
//!   records in order.
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
//! On a rebalance the revocation waits for this engine (the consumer is polled on a thread of
//! its own, `orderbridge_runtime::consumer`): records waiting for revoked partitions are
//! dropped (their new owner reads them from the committed offset), their retries and waits are
//! cancelled, and ERP calls already sent finish, bounded by `revoke_grace_ms`, so their
//! offsets are committed before the new owner starts. No two members ever write one
//! partition's orders at once: an ERP that does not refuse duplicates (Business Central, SAP,
//! Odoo) cannot get an order twice from a rebalance, nor an older write after a newer one.

mod breaker;
mod limiter;
mod settle;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use orderbridge_runtime::{
    Accepted, Dependency, Event, GroupConsumer, GroupContext, Health, KafkaSettings, Ledger,
    Revocation, StatusWriter, Ticket,
};
use orderbridge_schemas::{OrderEventCodec, Topics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::breaker::Breaker;
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
) -> KafkaResult<BaseConsumer<GroupContext>> {
    let mut client = kafka.client_config();
    client
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
        // Only the partitions that move are revoked, so the rest keep delivering.
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Consumer lag for the metrics, from librdkafka's statistics.
        .set("statistics.interval.ms", "5000");
    if let Some(instance) = &config.instance_id {
        // Static membership: a restart takes this name's partitions back at once.
        client.set("group.instance.id", instance);
    }
    client.create_with_context(
        GroupContext::new("sink", health)
            .with_lag(lag)
            // A revocation waits for the ERP calls of its partitions, then commits them.
            .with_revocation(Duration::from_millis(config.revoke_grace_ms), true),
    )
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
    consumer: GroupConsumer,
    health: Arc<Health>,
    worker: Arc<Worker>,
    max_open: usize,
    shutdown_grace: Duration,
}

/// A started record's task: the ticket it ran under, how it ended, and whether it was a
/// record set aside (dead-lettered because its order did not come) rather than one of its
/// key's chain.
type Task = (Ticket, Settled, Aside);

/// Whether a task's record was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aside {
    No,
    Yes,
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
        let consumer = build_consumer(
            kafka,
            config,
            Arc::clone(&health),
            metrics.consumer_lag.clone(),
        )?;
        consumer.subscribe(&[&topics.canonical])?;
        let max_open = config.max_open_records.max(1);
        // The poll thread's buffer: what the engine has not taken in yet. Beyond the records
        // it may hold open, fetching more only fills memory.
        let consumer = GroupConsumer::start(consumer, max_open).map_err(SinkError::Thread)?;
        let max_in_flight = config
            .max_in_flight
            .unwrap_or_else(|| erp.default_max_in_flight());
        let worker = Worker {
            limiter: Limiter::new(
                max_in_flight,
                config.adaptive_concurrency,
                erp.latency_signals_load(),
            ),
            breaker: Arc::new(Breaker::new(
                config.breaker_threshold,
                Duration::from_millis(config.breaker_probe_ms),
                Duration::from_millis(config.retry_max_ms.max(config.breaker_probe_ms)),
            )),
            dlq: build_dlq_producer(kafka)?,
            status: if config.status_updates {
                StatusWriter::new(
                    kafka,
                    &topics.status,
                    "sink",
                    metrics.status_records.clone(),
                )?
            } else {
                StatusWriter::disabled()
            },
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
            max_open,
            shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
        })
    }

    /// Runs until `shutdown` is cancelled. The health given to [`Delivery::new`] turns ready
    /// when the consumer joins its group, not ready while the breaker is open, and not ready
    /// when the loop ends.
    ///
    /// # Errors
    /// When the consumer fails fatally.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SinkError> {
        let worker = Arc::clone(&self.worker);
        let erp = worker.erp.name();
        tracing::info!(
            erp,
            topic = %worker.topics.canonical,
            max_in_flight = worker.limiter.limit(),
            "sink running"
        );
        let mut engine = Engine {
            worker: Arc::clone(&worker),
            max_open: self.max_open,
            shutdown_grace: self.shutdown_grace,
            ledger: Ledger::default(),
            tasks: JoinSet::new(),
            paused: false,
            ready: VecDeque::new(),
            partitions: HashMap::new(),
            revoking: None,
            waiting: HashMap::new(),
            waited_since: HashMap::new(),
        };
        let mut breaker = worker.breaker.subscribe();
        let mut gauges = tokio::time::interval(Duration::from_secs(1));
        let result = loop {
            engine.release_if_settled(&self.consumer);
            engine.pause_or_resume(&self.consumer);
            let revoke_deadline = engine.revoking.as_ref().map(|r| r.deadline);
            let waited_out = engine.next_wait_over();
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                event = self.consumer.recv() => match event {
                    Some(Event::Message(message)) => engine.accept(message),
                    Some(Event::Assigned(_)) => {}
                    Some(Event::Revoked(revocation)) => engine.begin_revoke(revocation),
                    Some(Event::Fatal(err)) => break Err(err.into()),
                    None => break Err(SinkError::Task("the consumer's poll thread stopped".into())),
                },
                permit = worker.limiter.acquire(), if !engine.ready.is_empty() => {
                    engine.dispatch(permit);
                }
                Some(joined) = engine.tasks.join_next(), if !engine.tasks.is_empty() => {
                    if let Err(err) = engine.finished(joined, &self.consumer) {
                        break Err(err);
                    }
                }
                () = sleep_until(revoke_deadline), if revoke_deadline.is_some() => {
                    engine.release_overdue(&self.consumer);
                }
                () = sleep_until(waited_out), if waited_out.is_some() => {
                    engine.expire_waits(tokio::time::Instant::now());
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
        engine.drain(&self.consumer).await;
        drop(engine);
        self.health.set_ready(false);
        // Commits what was stored, then leaves the group, off the async workers: a slow or
        // gone broker cannot stall the rest of the process.
        self.consumer.close().await;
        result
    }
}

/// Sleeps until `at` (never returns without one; the select guards it).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the engine knows of one assigned partition beyond the ledger, for one ledger epoch
/// of it (a partition that leaves and comes back is new work).
struct PartitionWork {
    epoch: u64,
    /// Tasks running for it.
    running: usize,
    /// Cancels its records' waits (retries, the breaker, the limiter) when it is revoked.
    cancel: CancellationToken,
}

/// A revocation the engine is carrying out: its partitions' waiting records are dropped and
/// their retries cancelled; it is released once their running ERP calls finished.
struct Revoking {
    revocation: Revocation,
    partitions: HashSet<i32>,
    deadline: tokio::time::Instant,
}

/// The loop's state.
struct Engine {
    worker: Arc<Worker>,
    max_open: usize,
    shutdown_grace: Duration,
    ledger: Ledger,
    tasks: JoinSet<Task>,
    paused: bool,
    /// Records that may start (nothing of their order is running), oldest first; each starts
    /// when the limiter has a place. Starting in offset order keeps the commit position close
    /// behind the work.
    ready: VecDeque<Ticket>,
    partitions: HashMap<i32, PartitionWork>,
    revoking: Option<Revoking>,
    /// Records set aside because the ERP does not hold their order yet, by partition and
    /// key, oldest first. They resume when a record of their key finishes.
    waiting: HashMap<(i32, Vec<u8>), Vec<Ticket>>,
    /// When each record (partition, offset) first found its order missing.
    waited_since: HashMap<(i32, i64), tokio::time::Instant>,
}

impl Engine {
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
        let worker = Arc::clone(&self.worker);
        let fresh = || PartitionWork {
            epoch: ticket.epoch,
            running: 0,
            cancel: worker.shutdown.child_token(),
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
        self.tasks.spawn(async move {
            let settled = worker.settle(&ticket.message, permit, &cancel).await;
            (ticket, settled, Aside::No)
        });
    }

    /// When the oldest record waiting for its order has waited long enough.
    fn next_wait_over(&self) -> Option<tokio::time::Instant> {
        let wait = Duration::from_millis(self.worker.config.order_unknown_wait_ms);
        self.waiting
            .values()
            .flatten()
            .filter_map(|t| {
                self.waited_since
                    .get(&(t.message.partition(), t.message.offset()))
            })
            .min()
            .map(|since| *since + wait)
    }

    /// Sets aside a record whose order the ERP does not hold; dead-letters the oldest
    /// waiting ones when there are too many.
    fn wait_for_order(&mut self, ticket: Ticket) {
        let at = (ticket.message.partition(), ticket.message.offset());
        self.waited_since
            .entry(at)
            .or_insert_with(tokio::time::Instant::now);
        let key = (
            ticket.message.partition(),
            ticket.message.key().unwrap_or_default().to_vec(),
        );
        self.waiting.entry(key).or_default().push(ticket);
        let waiting: usize = self.waiting.values().map(Vec::len).sum();
        if waiting > self.worker.config.max_waiting_for_order.max(1) {
            // The oldest goes to the dead-letter topic now rather than memory growing.
            if let Some(oldest) = self.next_wait_over() {
                self.expire_waits(oldest);
            }
        }
    }

    /// Dead-letters every record whose wait for its order is over at `now`.
    fn expire_waits(&mut self, now: tokio::time::Instant) {
        let wait = Duration::from_millis(self.worker.config.order_unknown_wait_ms);
        let mut expired = Vec::new();
        for tickets in self.waiting.values_mut() {
            let (over, kept): (Vec<Ticket>, Vec<Ticket>) =
                std::mem::take(tickets).into_iter().partition(|t| {
                    self.waited_since
                        .get(&(t.message.partition(), t.message.offset()))
                        .is_some_and(|since| *since + wait <= now)
                });
            *tickets = kept;
            expired.extend(over);
        }
        self.waiting.retain(|_, tickets| !tickets.is_empty());
        for ticket in expired {
            let worker = Arc::clone(&self.worker);
            let cancel = self
                .partitions
                .get(&ticket.message.partition())
                .map_or_else(|| worker.shutdown.child_token(), |w| w.cancel.clone());
            let since = self
                .waited_since
                .get(&(ticket.message.partition(), ticket.message.offset()))
                .copied()
                .unwrap_or(now);
            if let Some(work) = self.partitions.get_mut(&ticket.message.partition()) {
                work.running += 1;
            }
            self.tasks.spawn(async move {
                let settled = worker
                    .order_unknown(&ticket.message, now.duration_since(since), &cancel)
                    .await;
                (ticket, settled, Aside::Yes)
            });
        }
    }

    /// Records of `message`'s key that waited for its order go again, first in its chain.
    fn resume_waiting(&mut self, message: &OwnedMessage) {
        let key = (
            message.partition(),
            message.key().unwrap_or_default().to_vec(),
        );
        let Some(tickets) = self.waiting.remove(&key) else {
            return;
        };
        // Newest first, each to the head: the oldest ends up first.
        for ticket in tickets.into_iter().rev() {
            if let Some(start) = self.ledger.resume(ticket) {
                self.ready.push_front(start);
            }
        }
    }

    /// Takes a task's end. A task that panicked stops the sink: its record would otherwise
    /// stay open for good, holding its partition's commit and its order's later records.
    /// Stopped, the sink is restarted (by its supervisor) and the record delivered again.
    fn finished(
        &mut self,
        joined: Result<Task, tokio::task::JoinError>,
        consumer: &GroupConsumer,
    ) -> Result<(), SinkError> {
        let (ticket, settled, aside) = match joined {
            Ok(task) => task,
            Err(err) => {
                tracing::error!(error = %err, "a delivery task failed; stopping with its record uncommitted");
                return Err(SinkError::Task(err.to_string()));
            }
        };
        let partition = ticket.message.partition();
        if let Some(work) = self.partitions.get_mut(&partition) {
            if work.epoch == ticket.epoch {
                work.running = work.running.saturating_sub(1);
            }
        }
        let at = (partition, ticket.message.offset());
        match (settled, aside) {
            (Settled::Abandoned, _) => return Ok(()),
            (Settled::Done | Settled::NotHeld, Aside::Yes) => {
                // Dead-lettered after its wait: its offset closes.
                self.waited_since.remove(&at);
                if let Some(position) = self.ledger.release_aside(&ticket) {
                    store(consumer, &ticket.message, position);
                }
                return Ok(());
            }
            (Settled::NotHeld, Aside::No) => {
                // Its order is not in the ERP: it waits, and its key's chain goes on.
                let next = self.ledger.set_aside(&ticket);
                if !self.is_revoking(partition) {
                    if let Some(next) = next {
                        self.ready.push_front(next);
                    }
                    self.wait_for_order(ticket);
                }
                return Ok(());
            }
            (Settled::Done, Aside::No) => {}
        }
        self.waited_since.remove(&at);
        let finished = self.ledger.finish(&ticket);
        if let Some(position) = finished.commit {
            store(consumer, &ticket.message, position);
        }
        if self.is_revoking(partition) {
            // Its partition is going: what waits stays uncommitted for the new owner.
            return Ok(());
        }
        if let Some(next) = finished.next {
            // Older than anything else waiting: it goes first.
            self.ready.push_front(next);
        }
        // What waited for this key's order may apply now.
        self.resume_waiting(&ticket.message);
        Ok(())
    }

    fn is_revoking(&self, partition: i32) -> bool {
        self.revoking
            .as_ref()
            .is_some_and(|r| r.partitions.contains(&partition))
    }

    /// A rebalance takes partitions away. Until they are released, this member still owns
    /// them: records of theirs that wait are dropped (the new owner reads them from the
    /// committed offset), their retries stop, and ERP calls already running finish, so that
    /// their outcome is committed and no write of theirs lands after the new owner's.
    fn begin_revoke(&mut self, revocation: Revocation) {
        let partitions = revocation.of(&self.worker.topics.canonical);
        for partition in &partitions {
            if let Some(work) = self.partitions.get(partition) {
                work.cancel.cancel();
            }
        }
        self.ready
            .retain(|ticket| !partitions.contains(&ticket.message.partition()));
        self.waiting
            .retain(|(partition, _), _| !partitions.contains(partition));
        self.waited_since
            .retain(|(partition, _), _| !partitions.contains(partition));
        tracing::info!(
            partitions = ?partitions,
            lost = revocation.lost,
            running = partitions
                .iter()
                .filter_map(|p| self.partitions.get(p))
                .map(|w| w.running)
                .sum::<usize>(),
            "partitions revoked; finishing their ERP calls before releasing them"
        );
        self.revoking = Some(Revoking {
            revocation,
            partitions,
            deadline: tokio::time::Instant::now()
                + Duration::from_millis(self.worker.config.revoke_grace_ms),
        });
    }

    /// Releases the revocation once nothing runs for its partitions any more.
    fn release_if_settled(&mut self, consumer: &GroupConsumer) {
        let settled = self.revoking.as_ref().is_some_and(|revoking| {
            revoking
                .partitions
                .iter()
                .all(|p| self.partitions.get(p).is_none_or(|w| w.running == 0))
        });
        if settled {
            self.release(consumer);
        }
    }

    /// The grace is over: the partitions go, whatever still runs for them (its outcome is
    /// not committed; the new owner delivers the record again).
    fn release_overdue(&mut self, consumer: &GroupConsumer) {
        tracing::error!(
            grace_ms = self.worker.config.revoke_grace_ms,
            "ERP calls still running for revoked partitions at the end of the revoke grace; \
             releasing the partitions (raise sink.revoke_grace_ms above the ERP's request timeout)"
        );
        self.release(consumer);
    }

    fn release(&mut self, consumer: &GroupConsumer) {
        let Some(revoking) = self.revoking.take() else {
            return;
        };
        for partition in &revoking.partitions {
            self.partitions.remove(partition);
        }
        let kept: HashSet<i32> = match consumer.consumer().assignment() {
            Ok(assigned) => assigned
                .elements()
                .iter()
                .filter(|e| e.topic() == self.worker.topics.canonical)
                .map(|e| e.partition())
                .filter(|p| !revoking.partitions.contains(p))
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "assignment unknown while releasing partitions");
                self.ledger
                    .partitions()
                    .filter(|p| !revoking.partitions.contains(p))
                    .collect()
            }
        };
        self.ledger.retain(&kept);
        // What finished was stored; the callback commits it before the partitions go.
        revoking.revocation.done();
    }

    /// Pauses fetching while too many records are open or the ERP is unavailable; resumes
    /// when half of them finished and the ERP answers.
    fn pause_or_resume(&mut self, consumer: &GroupConsumer) {
        let open = self.ledger.open();
        let max = self.max_open;
        let erp_down = self.worker.breaker.is_open();
        let pause = erp_down || open >= max || (self.paused && open > max / 2);
        if pause != self.paused {
            consumer.set_paused(pause);
            self.paused = pause;
            tracing::debug!(paused = pause, open, erp_down, "fetching paused or resumed");
        }
    }

    fn report(&self) {
        let worker = &self.worker;
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
        let waiting: usize = self.waiting.values().map(Vec::len).sum();
        metrics
            .waiting_for_order
            .with_label_values(&[erp])
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        metrics
            .breaker_open
            .with_label_values(&[erp])
            .set(i64::from(worker.breaker.is_open()));
    }

    /// At shutdown: records waiting for the breaker or a retry are abandoned at once; calls
    /// already at the ERP get `shutdown_grace` to answer so their offsets can be stored.
    async fn drain(&mut self, consumer: &GroupConsumer) {
        self.worker.shutdown.cancel();
        if let Some(revoking) = self.revoking.take() {
            revoking.revocation.done();
        }
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(joined)) => {
                    // Only what already finished counts now; nothing new starts.
                    let position = match joined {
                        Ok((ticket, Settled::Done, Aside::No)) => {
                            self.ledger.finish(&ticket).commit.map(|p| (ticket, p))
                        }
                        Ok((ticket, Settled::Done, Aside::Yes)) => {
                            self.ledger.release_aside(&ticket).map(|p| (ticket, p))
                        }
                        Ok((_, Settled::Abandoned | Settled::NotHeld, _)) | Err(_) => None,
                    };
                    if let Some((ticket, position)) = position {
                        store(consumer, &ticket.message, position);
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

/// Stores `position` (the next offset to read) as the commit position of `message`'s
/// partition; auto-commit sends it, and a revocation commits it synchronously.
/// (`rd_kafka_offsets_store` takes the next offset; the older `rd_kafka_offset_store` would
/// add one itself.)
fn store(consumer: &GroupConsumer, message: &OwnedMessage, position: i64) {
    let mut offsets = TopicPartitionList::new();
    let stored = offsets
        .add_partition_offset(
            message.topic(),
            message.partition(),
            Offset::Offset(position),
        )
        .and_then(|()| consumer.consumer().store_offsets(&offsets));
    if let Err(err) = stored {
        // The partition was lost (not handed over) meanwhile; its new owner redelivers
        // from the committed offset and the idempotent upsert absorbs it.
        tracing::warn!(partition = message.partition(), position, error = %err, "offset not stored");
    }
}
