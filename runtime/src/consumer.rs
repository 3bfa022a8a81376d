//! A consumer-group member polled on a thread of its own, so that a rebalance can wait for
//! the work of the partitions it takes away.
//!
//! librdkafka completes a revocation when the rebalance callback returns; whatever the old
//! owner still does for those partitions afterwards overlaps with the new owner, which starts
//! from the committed offset. An ERP that upserts by lookup-then-create (Business Central,
//! SAP, Odoo) then holds the order twice, and a processor commits offsets and emits events
//! for partitions another member already processes. So the callback here hands the
//! revocation to the stage as an [`Event::Revoked`] and **blocks until the stage says it is
//! done** with those partitions (it finished or cancelled their work and stored their
//! offsets), bounded by `revoke_grace`; then, for stages that commit stored offsets, it
//! commits them synchronously before the partitions go. That is only possible because the
//! callback runs on this module's poll thread, never on the stage's task: with a stream
//! consumer polled inside the stage's `recv()`, waiting for the stage would wait for itself.
//!
//! The poll thread keeps polling whatever the stage does (a slow batch, a state load), so the
//! member never misses `max.poll.interval.ms`. Records it polls are buffered for the stage;
//! past `buffer` of them it pauses fetching and resumes below half. A stage pauses fetching
//! itself with [`GroupConsumer::set_paused`] (the sink while its ERP is down): the thread
//! applies both, including to partitions assigned later.
//!
//! Events arrive in order: the records polled before a revocation come before it, and a
//! partition's records after an assignment come after that [`Event::Assigned`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;
use tokio::sync::mpsc;

use crate::kafka::GroupContext;

/// What the poll thread hands the stage.
#[derive(Debug)]
pub enum Event {
    /// A record.
    Message(OwnedMessage),
    /// Partitions newly assigned: `(topic, partition)`.
    Assigned(Vec<(String, i32)>),
    /// Partitions being taken away; see [`Revocation`].
    Revoked(Revocation),
    /// librdkafka raised its fatal error: the member cannot go on.
    Fatal(KafkaError),
}

/// Partitions being taken away. The group waits until [`Revocation::done`] is called (or the
/// revocation is dropped, or `revoke_grace` passed): until then this member still owns them,
/// and may finish and commit their work.
#[derive(Debug)]
pub struct Revocation {
    /// `(topic, partition)` revoked.
    pub partitions: Vec<(String, i32)>,
    /// The partitions were lost, not handed over (the member was fenced or its session
    /// expired): another member may already own them, and nothing of theirs is committed.
    pub lost: bool,
    done: std_mpsc::Sender<()>,
}

impl Revocation {
    /// The revoked partitions of `topic`.
    pub fn of(&self, topic: &str) -> HashSet<i32> {
        self.partitions
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| *p)
            .collect()
    }

    /// Lets the revocation complete: this member is done with the partitions.
    pub fn done(self) {
        let _ = self.done.send(());
    }
}

/// The part of the consumer context the poll thread's rebalance callback uses.
pub(crate) struct Handoff {
    events: Mutex<Option<mpsc::UnboundedSender<Event>>>,
    revoke_grace: Duration,
    commit_on_revoke: bool,
    /// Set when the assignment changed, so the poll thread applies its pause state again.
    assignment_changed: AtomicBool,
}

impl Handoff {
    pub(crate) fn new(revoke_grace: Duration, commit_on_revoke: bool) -> Self {
        Self {
            events: Mutex::new(None),
            revoke_grace,
            commit_on_revoke,
            assignment_changed: AtomicBool::new(false),
        }
    }

    fn sender(&self) -> Option<mpsc::UnboundedSender<Event>> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Called before librdkafka applies a rebalance, on the poll thread.
    pub(crate) fn before<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        rebalance: &Rebalance<'_>,
        role: &str,
    ) {
        let Rebalance::Revoke(partitions) = rebalance else {
            return;
        };
        let lost = consumer.assignment_lost();
        let list = elements(partitions);
        if list.is_empty() {
            return;
        }
        if let Some(events) = self.sender() {
            let (done, finished) = std_mpsc::channel();
            let revocation = Revocation {
                partitions: list.clone(),
                lost,
                done,
            };
            if events.send(Event::Revoked(revocation)).is_ok() {
                let started = std::time::Instant::now();
                match finished.recv_timeout(self.revoke_grace) {
                    // Done, or the stage dropped the revocation: it will not touch them.
                    Ok(()) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                        tracing::info!(
                            role,
                            partitions = list.len(),
                            lost,
                            waited_ms = started.elapsed().as_millis() as u64,
                            "revoked partitions released by the stage"
                        );
                    }
                    Err(std_mpsc::RecvTimeoutError::Timeout) => tracing::error!(
                        role,
                        partitions = list.len(),
                        grace_ms = self.revoke_grace.as_millis() as u64,
                        "the stage did not release revoked partitions within the grace; \
                         releasing them anyway (work still running for them may overlap \
                         with their new owner)"
                    ),
                }
            }
        }
        if self.commit_on_revoke && !lost {
            // What the stage stored for the revoked partitions reaches the broker before
            // their new owner reads the committed offsets.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => {}
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(err) => tracing::warn!(role, error = %err, "commit on revoke failed"),
            }
        }
    }

    /// Called after librdkafka applied a rebalance, on the poll thread.
    pub(crate) fn after(&self, rebalance: &Rebalance<'_>) {
        self.assignment_changed.store(true, Ordering::Release);
        if let Rebalance::Assign(partitions) = rebalance {
            let list = elements(partitions);
            if let (Some(events), false) = (self.sender(), list.is_empty()) {
                let _ = events.send(Event::Assigned(list));
            }
        }
    }
}

fn elements(list: &TopicPartitionList) -> Vec<(String, i32)> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

/// A group member whose poll thread hands records and rebalances to the stage; see the
/// module docs.
pub struct GroupConsumer {
    consumer: Arc<BaseConsumer<GroupContext>>,
    events: mpsc::UnboundedReceiver<Event>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    buffered: AtomicUsize,
    paused_by_stage: AtomicBool,
    stop: AtomicBool,
}

impl GroupConsumer {
    /// Starts polling `consumer` (already subscribed) on a thread of its own; past `buffer`
    /// records waiting for the stage, fetching pauses.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(consumer: BaseConsumer<GroupContext>, buffer: usize) -> std::io::Result<Self> {
        let (sender, events) = mpsc::unbounded_channel();
        *consumer
            .context()
            .handoff()
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        let consumer = Arc::new(consumer);
        let shared = Arc::new(Shared {
            buffered: AtomicUsize::new(0),
            paused_by_stage: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let (consumer, shared) = (Arc::clone(&consumer), Arc::clone(&shared));
            let role = consumer.context().role();
            std::thread::Builder::new()
                .name(format!("{role}-consumer"))
                .spawn(move || poll_loop(&consumer, &shared, &sender, buffer.max(1)))?
        };
        Ok(Self {
            consumer,
            events,
            shared,
            thread: Some(thread),
        })
    }

    /// The next event; `None` once the poll thread stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.events.recv().await;
        if let Some(Event::Message(_)) = &event {
            self.shared.buffered.fetch_sub(1, Ordering::AcqRel);
        }
        event
    }

    /// The client, for offsets, seeks, group metadata and the assignment. (Its poll and its
    /// pause state belong to the poll thread.)
    pub fn consumer(&self) -> &BaseConsumer<GroupContext> {
        &self.consumer
    }

    /// Pauses (or resumes) fetching of every assigned partition, now and after rebalances.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused_by_stage.store(paused, Ordering::Release);
    }

    /// Stops the poll thread and leaves the group (dynamic members leave at once; a static
    /// member's place is kept for its session timeout, for its restart to take). Stored
    /// offsets are committed first when the stage commits stored offsets. Blocking work runs
    /// off the async workers.
    pub async fn close(mut self) {
        // Revocations at close are not handed to the stage: it has stopped.
        *self
            .consumer
            .context()
            .handoff()
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.shared.stop.store(true, Ordering::Release);
        let thread = self.thread.take();
        let consumer = Arc::clone(&self.consumer);
        drop(self);
        let closed = tokio::task::spawn_blocking(move || {
            if let Some(thread) = thread {
                let _ = thread.join();
            }
            if consumer.context().handoff().commit_on_revoke {
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => {}
                    Err(err) => tracing::debug!(error = %err, "nothing committed at close"),
                }
            }
            // The last reference: dropping it closes the consumer (leaving the group).
            drop(consumer);
        })
        .await;
        if let Err(err) = closed {
            tracing::warn!(error = %err, "closing the consumer failed");
        }
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// The poll thread: polls, hands records on, applies the pause state.
fn poll_loop(
    consumer: &BaseConsumer<GroupContext>,
    shared: &Shared,
    sender: &mpsc::UnboundedSender<Event>,
    buffer: usize,
) {
    let role = consumer.context().role();
    let mut paused = false;
    while !shared.stop.load(Ordering::Acquire) {
        let buffered = shared.buffered.load(Ordering::Acquire);
        let full = buffered >= buffer || (paused && buffered > buffer / 2);
        let pause = shared.paused_by_stage.load(Ordering::Acquire) || full;
        let changed = consumer
            .context()
            .handoff()
            .assignment_changed
            .swap(false, Ordering::AcqRel);
        if pause != paused || (changed && pause) {
            match consumer.assignment() {
                Ok(assigned) => {
                    let applied = if pause {
                        consumer.pause(&assigned)
                    } else {
                        consumer.resume(&assigned)
                    };
                    match applied {
                        Ok(()) => paused = pause,
                        Err(err) => {
                            tracing::warn!(role, error = %err, pause, "could not pause or resume")
                        }
                    }
                }
                Err(err) => tracing::warn!(role, error = %err, "assignment unknown"),
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                shared.buffered.fetch_add(1, Ordering::AcqRel);
                if sender.send(Event::Message(message.detach())).is_err() {
                    shared.buffered.fetch_sub(1, Ordering::AcqRel);
                }
            }
            Some(Err(err)) => {
                if matches!(err.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
                    let _ = sender.send(Event::Fatal(err));
                    return;
                }
                // Broker trouble librdkafka recovers from on its own: say so, poll again.
                tracing::warn!(role, error = %err, "consumer error; librdkafka is retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}
