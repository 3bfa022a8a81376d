//! What the processor remembers per partition, and how it gets it back from Kafka.
//!
//! Two features need memory across records: the duplicate filter (a provider retrying one
//! delivery, the same `ob-event-id`, yields one canonical event) and the attribution join (an
//! order carries the attribution known when it is emitted; attribution arriving later emits
//! an update). Neither keeps anything only on local disk or in memory. Raw, canonical and
//! attribution topics are co-partitioned by the order key, so everything partition `p` of
//! the raw topic needs sits in partition `p` of the other two:
//!
//! - **canonical `p`** holds every event emitted for those orders, with the `ob-event-id` it
//!   came from: the event ids seen, and per order the highest version and the attribution it
//!   was last emitted with;
//! - **attribution `p`** holds the attribution events of those orders.
//!
//! When a partition is first needed, and again after every rebalance, both are read from
//! `now - window` to their end (`read_committed`, see `scan.rs`). A new owner of the
//! partition, after a crash or a rebalance, reads the same and decides the same.
//!
//! The batch loop updates the state as it goes, so a later record of the same batch sees an
//! earlier one. If the batch does not commit, [`PartitionStates::forget`] drops everything and
//! the retry reads it back from what was committed.
//!
//! One gap, documented rather than hidden: a record ingest could key only by its event id
//! (its body named no order) lands in another partition than its order's; such a record is
//! deduplicated by the idempotent sink instead, and joined only with attribution that
//! happens to share its partition.

mod scan;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use orderbridge_runtime::{header_str, KafkaSettings};
use orderbridge_schemas::{
    headers as ob, Attribution, AttributionEvent, OrderEvent, OrderEventCodec,
};
use rdkafka::Message;

/// Why the state of a partition could not be read; the batch is retried.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading a partition failed or timed out.
    #[error("reading state from Kafka: {0}")]
    Kafka(String),
    /// A canonical event could not be decoded because the schema registry did not answer.
    #[error("decoding a canonical event for state: {0}")]
    Registry(String),
    /// The blocking read was cancelled or panicked.
    #[error("state reader: {0}")]
    Join(String),
}

/// How far back each kind of state reaches; `None` turns the feature off.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// Repeated deliveries are recognised this long.
    pub dedup: Option<Duration>,
    /// Attribution is joined with orders emitted this long before or after it.
    pub attribution: Option<Duration>,
    /// A new order without attribution is held this long for it before it is emitted.
    pub hold: Option<Duration>,
}

/// The state of every partition this processor owns.
pub struct PartitionStates {
    kafka: KafkaSettings,
    canonical_topic: String,
    attribution_topic: String,
    codec: Arc<OrderEventCodec>,
    windows: Windows,
    partitions: HashMap<i32, PartitionState>,
    /// When state past its window was last dropped (unix ms).
    pruned_at: i64,
}

/// What one partition remembers.
#[derive(Debug, Default)]
pub struct PartitionState {
    generation: u64,
    /// Event id → when its canonical event was written (unix ms).
    seen: HashMap<String, i64>,
    /// Order key → the attribution the attribution topic last gave it, and when (unix ms).
    attributions: HashMap<String, (Attribution, i64)>,
    /// Order key → what the canonical topic last said of it.
    orders: HashMap<String, Emitted>,
    /// Order key → its events held for attribution, oldest first. Held events live only here,
    /// so the partition's committed offset never passes the oldest of them: a crash re-reads
    /// and holds them again.
    held: HashMap<String, Vec<Held>>,
    /// Event ids of held events: a retried delivery of one is a duplicate too.
    held_ids: HashSet<String>,
    /// The raw offset after the last raw record taken in, in this generation.
    raw_next: Option<i64>,
}

/// An event held for its order's attribution.
#[derive(Debug)]
pub struct Held {
    /// The normalized event, not yet emitted.
    pub event: OrderEvent,
    /// Its delivery's [`delivery_id`].
    pub event_id: Option<String>,
    /// The raw record's offset.
    pub offset: i64,
    /// The raw record's `ob-` headers, for the canonical record.
    pub carried: Vec<(&'static str, Option<String>)>,
    /// When it is emitted without attribution.
    pub until: Instant,
}

/// What was last emitted for one order.
#[derive(Debug, Clone, PartialEq)]
struct Emitted {
    /// The highest version emitted; a revision goes above it.
    version: i64,
    /// The attribution the order was last emitted with.
    attribution: Option<Attribution>,
    /// When (unix ms), for pruning.
    at: i64,
}

impl PartitionStates {
    /// State over `canonical_topic` and `attribution_topic`, reaching back `windows`.
    pub fn new(
        kafka: &KafkaSettings,
        canonical_topic: &str,
        attribution_topic: &str,
        codec: Arc<OrderEventCodec>,
        windows: Windows,
    ) -> Self {
        Self {
            kafka: kafka.clone(),
            canonical_topic: canonical_topic.to_owned(),
            attribution_topic: attribution_topic.to_owned(),
            codec,
            windows,
            partitions: HashMap::new(),
            pruned_at: now_ms(),
        }
    }

    /// Whether attribution is joined (and its topic should be consumed).
    pub fn joins_attribution(&self) -> bool {
        self.windows.attribution.is_some()
    }

    /// How long new orders wait for attribution, if they do.
    pub fn hold(&self) -> Option<Duration> {
        self.windows.hold
    }

    /// The states loaded in rebalance `generation`: the partitions this processor owns and
    /// has seen records of. Older ones belong to partitions it may no longer own.
    pub fn current(&mut self, generation: u64) -> impl Iterator<Item = (i32, &mut PartitionState)> {
        self.partitions
            .iter_mut()
            .filter(move |(_, state)| state.generation == generation)
            .map(|(partition, state)| (*partition, state))
    }

    /// When the next held event is due, in rebalance `generation`.
    pub fn next_release(&mut self, generation: u64) -> Option<Instant> {
        self.current(generation)
            .filter_map(|(_, state)| state.next_due())
            .min()
    }

    /// The state of `partition` for rebalance `generation`, read from Kafka if this
    /// processor has none for that generation.
    ///
    /// # Errors
    /// When the partition's state cannot be read; retry the batch.
    pub async fn partition(
        &mut self,
        partition: i32,
        generation: u64,
    ) -> Result<&mut PartitionState, StateError> {
        let fresh = self
            .partitions
            .get(&partition)
            .is_some_and(|state| state.generation == generation);
        if !fresh {
            let state = self.load(partition, generation).await?;
            self.partitions.insert(partition, state);
        }
        self.partitions
            .get_mut(&partition)
            .ok_or_else(|| StateError::Join("state vanished while loading".into()))
    }

    /// Drops all state: the batch that changed it did not commit.
    pub fn forget(&mut self) {
        self.partitions.clear();
    }

    /// Drops what fell out of its window, at most once a minute, so a partition owned for
    /// weeks holds no more than a fresh owner would read back.
    pub fn prune(&mut self) {
        let now = now_ms();
        if now - self.pruned_at < 60_000 {
            return;
        }
        self.pruned_at = now;
        let horizon = |window: Option<Duration>| {
            window.map_or(i64::MAX, |w| {
                now.saturating_sub(i64::try_from(w.as_millis()).unwrap_or(i64::MAX))
            })
        };
        let (dedup, join) = (
            horizon(self.windows.dedup),
            horizon(self.windows.attribution),
        );
        for state in self.partitions.values_mut() {
            state.seen.retain(|_, at| *at >= dedup);
            state.orders.retain(|_, emitted| emitted.at >= join);
            state.attributions.retain(|_, (_, at)| *at >= join);
        }
    }

    async fn load(&self, partition: i32, generation: u64) -> Result<PartitionState, StateError> {
        let now = now_ms();
        let windows = self.windows;
        let since = |window: Option<Duration>| {
            window.map(|w| now.saturating_sub(i64::try_from(w.as_millis()).unwrap_or(i64::MAX)))
        };
        let (dedup_since, join_since) = (since(windows.dedup), since(windows.attribution));
        let mut state = PartitionState {
            generation,
            ..PartitionState::default()
        };
        // The canonical topic is read once for both features, from the older horizon.
        let canonical_since = match (dedup_since, join_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(canonical_since) = canonical_since else {
            return Ok(state);
        };
        let (kafka, canonical, attribution_topic) = (
            self.kafka.clone(),
            self.canonical_topic.clone(),
            self.attribution_topic.clone(),
        );
        let codec = Arc::clone(&self.codec);
        let runtime = tokio::runtime::Handle::current();
        let state = tokio::task::spawn_blocking(move || {
            scan::scan(&kafka, &canonical, partition, canonical_since, |message| {
                let at = message.timestamp().to_millis().unwrap_or(now);
                if let Some(id) = delivery_id_of(message) {
                    if dedup_since.is_some_and(|since| at >= since) {
                        state.seen.insert(id, at);
                    }
                }
                if join_since.is_some_and(|since| at >= since) {
                    if let Some(payload) = message.payload() {
                        match runtime.block_on(codec.decode(payload)) {
                            Ok(event) => state.emitted(&event, at),
                            Err(err) if err.is_retryable() => {
                                return Err(StateError::Registry(err.to_string()))
                            }
                            // Not an event this processor wrote; it has no bearing on joins.
                            Err(err) => tracing::warn!(
                                partition,
                                offset = message.offset(),
                                error = %err,
                                "skipping an undecodable canonical record while loading state"
                            ),
                        }
                    }
                }
                Ok(())
            })?;
            if let Some(since) = join_since {
                scan::scan(&kafka, &attribution_topic, partition, since, |message| {
                    if let Some((key, event)) = attribution_of(message) {
                        let at = message.timestamp().to_millis().unwrap_or(now);
                        state.attributions.insert(key, (event.attribution, at));
                    }
                    Ok(())
                })?;
            }
            Ok::<_, StateError>(state)
        })
        .await
        .map_err(|err| StateError::Join(err.to_string()))??;
        tracing::info!(
            partition,
            event_ids = state.seen.len(),
            orders = state.orders.len(),
            attributions = state.attributions.len(),
            "partition state read back from Kafka"
        );
        Ok(state)
    }
}

impl PartitionState {
    /// Whether the delivery `event_id` (a [`delivery_id`]) already produced a canonical event,
    /// or is held to produce one.
    pub fn is_duplicate(&self, event_id: &str) -> bool {
        self.seen.contains_key(event_id) || self.held_ids.contains(event_id)
    }

    /// Notes that the raw record at `offset` was taken in.
    pub fn took(&mut self, offset: i64) {
        self.raw_next = Some(
            self.raw_next
                .map_or(offset + 1, |next| next.max(offset + 1)),
        );
    }

    /// The raw offset this partition may commit: past every record taken in, but never past
    /// a held one. `None` before any record of this generation.
    pub fn commit_offset(&self) -> Option<i64> {
        let next = self.raw_next?;
        Some(self.hold_floor().map_or(next, |floor| floor.min(next)))
    }

    /// The offset of the oldest held record.
    pub fn hold_floor(&self) -> Option<i64> {
        self.held.values().flatten().map(|held| held.offset).min()
    }

    /// Whether `event` (normalized, its attribution attached if known) waits: a new full
    /// order whose attribution is not known yet, or any event of an order whose earlier
    /// events wait (an order's events go out in order).
    pub fn should_hold(&self, event: &OrderEvent) -> bool {
        let key = &event.order_key;
        self.held.contains_key(key)
            || (!event.partial
                && !self.attributions.contains_key(key)
                && !self.orders.contains_key(key))
    }

    /// Holds `held` behind its order's earlier held events.
    pub fn hold(&mut self, held: Held) {
        if let Some(id) = &held.event_id {
            self.held_ids.insert(id.clone());
        }
        self.held
            .entry(held.event.order_key.clone())
            .or_default()
            .push(held);
    }

    /// Takes `order_key`'s held events out, oldest first, each full one given the
    /// attribution the topic holds for it (if any).
    pub fn release(&mut self, order_key: &str) -> Vec<Held> {
        let mut released = self.held.remove(order_key).unwrap_or_default();
        for held in &mut released {
            if let Some(id) = &held.event_id {
                self.held_ids.remove(id);
            }
            self.attach(&mut held.event);
        }
        released
    }

    /// Orders whose oldest held event is due at `now`.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.held
            .iter()
            .filter(|(_, queue)| queue.first().is_some_and(|held| held.until <= now))
            .map(|(key, _)| key.clone())
            .collect()
    }

    fn next_due(&self) -> Option<Instant> {
        self.held
            .values()
            .filter_map(|queue| queue.first())
            .map(|held| held.until)
            .min()
    }

    /// Gives a full order the attribution its attribution topic holds for it, which wins over
    /// what the order says of itself (an attribution platform knows more than a landing
    /// page). Returns whether it did. Partial events are left alone: they carry no order.
    pub fn attach(&self, event: &mut OrderEvent) -> bool {
        if event.partial {
            return false;
        }
        match self.attributions.get(&event.order_key) {
            Some((attribution, _)) => {
                event.attribution = Some(attribution.clone());
                true
            }
            None => false,
        }
    }

    /// Records that `event` was emitted (from delivery `event_id`, a [`delivery_id`], if any)
    /// at `at` (unix ms).
    pub fn record(&mut self, event_id: Option<&str>, event: &OrderEvent, at: i64) {
        if let Some(id) = event_id {
            self.seen.insert(id.to_owned(), at);
        }
        self.emitted(event, at);
    }

    fn emitted(&mut self, event: &OrderEvent, at: i64) {
        let entry = self
            .orders
            .entry(event.order_key.clone())
            .or_insert_with(|| Emitted {
                version: event.version,
                attribution: None,
                at,
            });
        entry.version = entry.version.max(event.version);
        entry.at = at;
        // A full order states its attribution; a partial event only when it carries one (an
        // attribution update).
        if !event.partial || event.attribution.is_some() {
            entry.attribution.clone_from(&event.attribution);
        }
    }

    /// Takes in attribution for `order_key`. When that order was already emitted with other
    /// attribution, returns the version its update must carry (above everything emitted).
    pub fn attribution_arrived(
        &mut self,
        order_key: &str,
        attribution: &Attribution,
        at: i64,
    ) -> Option<i64> {
        self.attributions
            .insert(order_key.to_owned(), (attribution.clone(), at));
        let emitted = self.orders.get(order_key)?;
        (emitted.attribution.as_ref() != Some(attribution)).then(|| emitted.version + 1)
    }
}

/// The order key and attribution event of an attribution record, `None` when it has no key
/// or its value is not an [`AttributionEvent`] (the batch loop dead-letters those).
pub fn attribution_of(message: &impl Message) -> Option<(String, AttributionEvent)> {
    let key = std::str::from_utf8(message.key()?).ok()?.to_owned();
    let event: AttributionEvent = serde_json::from_slice(message.payload()?).ok()?;
    match &event.order_key {
        Some(named) if *named != key => None,
        _ => Some((key, event)),
    }
}

/// What the duplicate filter knows a delivery by: its source, its account and its event id.
/// A provider's event ids are unique within one account of one source, not across them:
/// two shops' apps may well both send `evt-1`.
pub fn delivery_id(source: &str, account: &str, event_id: &str) -> String {
    // The separator cannot occur in a header value that came through ingest's key rules.
    format!("{source}\u{1f}{account}\u{1f}{event_id}")
}

/// The [`delivery_id`] of a raw or canonical record, from its `ob-` headers; `None` without an
/// event id.
pub fn delivery_id_of(message: &impl Message) -> Option<String> {
    let event_id = header_str(message, ob::EVENT_ID)?;
    Some(delivery_id(
        header_str(message, ob::SOURCE).unwrap_or("-"),
        header_str(message, ob::ACCOUNT).unwrap_or("-"),
        event_id,
    ))
}

/// Now, in unix ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
