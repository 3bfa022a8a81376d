//! What the processor remembers per partition, and how it keeps it in Kafka.
//!
//! Two features need memory across records: the duplicate filter (a provider retrying one
//! delivery, the same source, account and `ob-event-id`, yields one canonical event) and the
//! attribution join (an order carries the attribution known when it is emitted; attribution
//! arriving later emits an update). Neither keeps anything only on local disk or in memory:
//!
//! - **The changelog.** Everything the two features know of one key (an order, or a record
//!   keyed by its event id) is one [`Entry`]: the deliveries it was emitted from, the highest
//!   version and the attribution it was emitted with, and the attribution the attribution
//!   topic gave it. Each batch that changes a key writes its entry to the compacted
//!   state topic (`orders.processor-state.v1`), in the same transaction as the batch's
//!   outputs and offsets (exactly-once), or before its offsets are stored (at-least-once).
//!   The state topic is co-partitioned with the raw topic: partition `p` holds the entries
//!   of raw partition `p`, written there explicitly.
//! - **Loading.** A newly assigned partition's entries are read from the state topic's
//!   partition, oldest first to its end (`load`, run off the batch loop while the consumer
//!   keeps polling). Compaction keeps one entry a key, so the cost grows with the orders of
//!   the window, not with the events the raw and canonical topics hold; entries past both
//!   windows are dropped as they are read.
//! - **A batch that does not commit** changes nothing: every key is copied the first time a
//!   batch touches it, and [`PartitionState::rollback`] puts the copies back. Only what the
//!   batch touched is undone; the rest of the partition's memory stays.
//!
//! Events held for their attribution (`attribution_wait_ms`) live only in memory: the
//! partition's committed offset never passes the oldest of them, so a new owner re-reads them.
//!
//! One gap, documented rather than hidden: a record ingest could key only by its event id
//! (its body named no order) lands in another partition than its order's; such a record is
//! deduplicated by the idempotent sink instead, and joined only with attribution that
//! happens to share its partition.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use orderbridge_runtime::{header_str, KafkaSettings};
use orderbridge_schemas::{headers as ob, Attribution, AttributionEvent, OrderEvent};
use rdkafka::Message;
use serde::{Deserialize, Serialize};

pub use orderbridge_runtime::Cancel;

/// Why the state of a partition could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading a partition failed, or made no progress for too long.
    #[error("reading state from Kafka: {0}")]
    Kafka(String),
    /// The read was cancelled (the partition was revoked meanwhile).
    #[error("reading state was cancelled")]
    Cancelled,
    /// The blocking read panicked.
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

impl Windows {
    /// Whether any state is kept (and so read and written).
    pub fn keeps_state(&self) -> bool {
        self.dedup.is_some() || self.attribution.is_some()
    }

    /// The unix-ms horizons before which dedup and join state is dropped, at `now`.
    fn horizons(&self, now: i64) -> (i64, i64) {
        let horizon = |window: Option<Duration>| {
            window.map_or(i64::MAX, |w| {
                now.saturating_sub(i64::try_from(w.as_millis()).unwrap_or(i64::MAX))
            })
        };
        (horizon(self.dedup), horizon(self.attribution))
    }
}

/// What the changelog holds of one key. Serialized as JSON; fields are short because there
/// is one of these per order of the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Deliveries ([`delivery_id`]) emitted for this key, and when (unix ms).
    #[serde(default, rename = "d", skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<(String, i64)>,
    /// What was last emitted for this order.
    #[serde(default, rename = "e", skip_serializing_if = "Option::is_none")]
    pub emitted: Option<Emitted>,
    /// The attribution the attribution topic last gave this order, and when (unix ms).
    #[serde(default, rename = "a", skip_serializing_if = "Option::is_none")]
    pub attribution: Option<(Attribution, i64)>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.seen.is_empty() && self.emitted.is_none() && self.attribution.is_none()
    }

    /// Drops what fell out of its window.
    fn prune(&mut self, dedup: i64, join: i64) {
        self.seen.retain(|(_, at)| *at >= dedup);
        if self.emitted.as_ref().is_some_and(|e| e.at < join) {
            self.emitted = None;
        }
        if self.attribution.as_ref().is_some_and(|(_, at)| *at < join) {
            self.attribution = None;
        }
    }
}

/// What was last emitted for one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emitted {
    /// The highest version emitted; a revision goes above it.
    #[serde(rename = "v")]
    pub version: i64,
    /// The attribution the order was last emitted with.
    #[serde(default, rename = "a", skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// When (unix ms), for pruning.
    #[serde(rename = "t")]
    pub at: i64,
}

/// An event held for its order's attribution.
#[derive(Debug, Clone)]
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

/// One key's memory: its changelog entry, and its events held in memory.
#[derive(Debug, Clone, Default)]
struct KeyState {
    entry: Entry,
    held: Vec<Held>,
}

/// What one partition remembers.
#[derive(Debug, Default)]
pub struct PartitionState {
    keys: HashMap<String, KeyState>,
    /// Delivery id → the key whose entry holds it: the duplicate filter's index.
    seen: HashMap<String, String>,
    /// Keys with held events.
    held_keys: HashSet<String>,
    /// Delivery ids of held events: a retried delivery of one is a duplicate too.
    held_ids: HashSet<String>,
    /// The raw offset after the last raw record taken in.
    raw_next: Option<i64>,
    /// The current batch's undo log: each key as it was before the batch first touched it.
    undo: HashMap<String, Option<KeyState>>,
    /// `raw_next` before the current batch, once it took a record.
    undo_raw_next: Option<Option<i64>>,
}

/// The state of every partition this processor owns and has loaded.
#[derive(Debug)]
pub struct PartitionStates {
    windows: Windows,
    partitions: HashMap<i32, PartitionState>,
    /// When state past its window was last dropped (unix ms).
    pruned_at: i64,
}

impl PartitionStates {
    /// No partitions yet; state reaches back `windows`.
    pub fn new(windows: Windows) -> Self {
        Self {
            windows,
            partitions: HashMap::new(),
            pruned_at: now_ms(),
        }
    }

    /// The windows.
    pub fn windows(&self) -> Windows {
        self.windows
    }

    /// Whether attribution is joined (and its topic should be consumed).
    pub fn joins_attribution(&self) -> bool {
        self.windows.attribution.is_some()
    }

    /// Takes in a loaded partition.
    pub fn insert(&mut self, partition: i32, state: PartitionState) {
        self.partitions.insert(partition, state);
    }

    /// Forgets a partition (revoked).
    pub fn remove(&mut self, partition: i32) -> Option<PartitionState> {
        self.partitions.remove(&partition)
    }

    /// Whether `partition` is loaded.
    pub fn has(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// The state of a loaded partition.
    pub fn get(&mut self, partition: i32) -> Option<&mut PartitionState> {
        self.partitions.get_mut(&partition)
    }

    /// Every loaded partition's state.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (i32, &mut PartitionState)> {
        self.partitions.iter_mut().map(|(p, s)| (*p, s))
    }

    /// When the next held event is due.
    pub fn next_release(&self) -> Option<Instant> {
        self.partitions
            .values()
            .filter_map(PartitionState::next_due)
            .min()
    }

    /// The batch committed: its changes stay.
    pub fn commit(&mut self) {
        for state in self.partitions.values_mut() {
            state.undo.clear();
            state.undo_raw_next = None;
        }
        self.prune();
    }

    /// The batch did not commit: every partition's keys it touched are as they were before.
    pub fn rollback(&mut self) {
        for state in self.partitions.values_mut() {
            state.rollback();
        }
    }

    /// Drops what fell out of its window, at most once a minute, so a partition owned for
    /// weeks holds no more than a fresh owner would read back.
    fn prune(&mut self) {
        let now = now_ms();
        if now - self.pruned_at < 60_000 {
            return;
        }
        self.pruned_at = now;
        let (dedup, join) = self.windows.horizons(now);
        for state in self.partitions.values_mut() {
            state.prune(dedup, join);
        }
    }
}

/// Reads partition `partition` of the state topic `topic` from its start to its end into a
/// partition state, dropping what fell out of `windows`. Blocking: run it on a blocking
/// thread. `cancel` stops it (the partition was revoked meanwhile).
///
/// # Errors
/// When the partition cannot be read, makes no progress for too long, or is cancelled.
pub fn load(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    windows: Windows,
    cancel: &Cancel,
) -> Result<PartitionState, StateError> {
    let mut state = PartitionState::default();
    if !windows.keeps_state() {
        return Ok(state);
    }
    let (dedup, join) = windows.horizons(now_ms());
    let mut read = 0u64;
    let scanned = orderbridge_runtime::scan_partition(
        kafka,
        "orderbridge-processor-state",
        topic,
        partition,
        cancel,
        |message| {
            read += 1;
            let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                return;
            };
            let entry = message
                .payload()
                .and_then(|p| serde_json::from_slice::<Entry>(p).ok());
            match entry {
                // A newer entry of the key replaces the older; a tombstone removes it.
                Some(mut entry) => {
                    entry.prune(dedup, join);
                    state.put(key, entry);
                }
                None => state.put(key, Entry::default()),
            }
        },
    );
    scanned.map_err(|err| match err {
        orderbridge_runtime::ScanError::Kafka(reason) => StateError::Kafka(reason),
        orderbridge_runtime::ScanError::Cancelled => StateError::Cancelled,
    })?;
    tracing::info!(
        partition,
        entries_read = read,
        keys = state.keys.len(),
        deliveries = state.seen.len(),
        "partition state loaded from the state topic"
    );
    Ok(state)
}

impl PartitionState {
    /// Puts `entry` in as `key`'s (while loading; no undo).
    fn put(&mut self, key: &str, entry: Entry) {
        if let Some(old) = self.keys.remove(key) {
            for (id, _) in &old.entry.seen {
                self.seen.remove(id);
            }
        }
        if entry.is_empty() {
            return;
        }
        for (id, _) in &entry.seen {
            self.seen.insert(id.clone(), key.to_owned());
        }
        self.keys.insert(
            key.to_owned(),
            KeyState {
                entry,
                held: Vec::new(),
            },
        );
    }

    /// `key`'s state, for changing: copied to the undo log the first time a batch touches it.
    fn touch(&mut self, key: &str) -> &mut KeyState {
        if !self.undo.contains_key(key) {
            self.undo
                .insert(key.to_owned(), self.keys.get(key).cloned());
        }
        self.keys.entry(key.to_owned()).or_default()
    }

    fn rollback(&mut self) {
        for (key, before) in std::mem::take(&mut self.undo) {
            if let Some(now) = self.keys.remove(&key) {
                for (id, _) in &now.entry.seen {
                    self.seen.remove(id);
                }
                for held in &now.held {
                    if let Some(id) = &held.event_id {
                        self.held_ids.remove(id);
                    }
                }
            }
            self.held_keys.remove(&key);
            if let Some(before) = before {
                for (id, _) in &before.entry.seen {
                    self.seen.insert(id.clone(), key.clone());
                }
                for held in &before.held {
                    if let Some(id) = &held.event_id {
                        self.held_ids.insert(id.clone());
                    }
                }
                if !before.held.is_empty() {
                    self.held_keys.insert(key.clone());
                }
                self.keys.insert(key, before);
            }
        }
        if let Some(raw_next) = self.undo_raw_next.take() {
            self.raw_next = raw_next;
        }
    }

    fn prune(&mut self, dedup: i64, join: i64) {
        let seen = &mut self.seen;
        self.keys.retain(|_, state| {
            let before: Vec<String> = state.entry.seen.iter().map(|(id, _)| id.clone()).collect();
            state.entry.prune(dedup, join);
            for id in before {
                if !state.entry.seen.iter().any(|(kept, _)| *kept == id) {
                    seen.remove(&id);
                }
            }
            !state.entry.is_empty() || !state.held.is_empty()
        });
    }

    /// The changelog entries the current batch changed: `(key, entry)`, `None` for a key
    /// whose entry is now empty (a tombstone).
    pub fn changed(&self) -> Vec<(String, Option<Vec<u8>>)> {
        self.undo
            .keys()
            .filter_map(|key| {
                let entry = self.keys.get(key).map(|s| &s.entry);
                let before = self
                    .undo
                    .get(key)
                    .and_then(Option::as_ref)
                    .map(|s| &s.entry);
                // Only what the changelog holds counts; held events are memory only.
                if entry == before {
                    return None;
                }
                let value = entry
                    .filter(|e| !e.is_empty())
                    .and_then(|e| serde_json::to_vec(e).ok());
                Some((key.clone(), value))
            })
            .collect()
    }

    /// Whether the delivery `event_id` (a [`delivery_id`]) already produced a canonical event,
    /// or is held to produce one.
    pub fn is_duplicate(&self, event_id: &str) -> bool {
        self.seen.contains_key(event_id) || self.held_ids.contains(event_id)
    }

    /// Notes that the raw record at `offset` was taken in.
    pub fn took(&mut self, offset: i64) {
        if self.undo_raw_next.is_none() {
            self.undo_raw_next = Some(self.raw_next);
        }
        self.raw_next = Some(
            self.raw_next
                .map_or(offset + 1, |next| next.max(offset + 1)),
        );
    }

    /// The raw offset this partition may commit: past every record taken in, but never past
    /// a held one. `None` before any record.
    pub fn commit_offset(&self) -> Option<i64> {
        let next = self.raw_next?;
        Some(self.hold_floor().map_or(next, |floor| floor.min(next)))
    }

    /// The offset of the oldest held record.
    pub fn hold_floor(&self) -> Option<i64> {
        self.held_keys
            .iter()
            .filter_map(|key| self.keys.get(key))
            .flat_map(|state| state.held.iter().map(|held| held.offset))
            .min()
    }

    /// Whether `event` (normalized, its attribution attached if known) waits: a new full
    /// order whose attribution is not known yet, or any event of an order whose earlier
    /// events wait (an order's events go out in order).
    pub fn should_hold(&self, event: &OrderEvent) -> bool {
        let key = &event.order_key;
        let state = self.keys.get(key);
        self.held_keys.contains(key)
            || (!event.partial
                && state.is_none_or(|s| s.entry.attribution.is_none() && s.entry.emitted.is_none()))
    }

    /// Holds `held` behind its order's earlier held events.
    pub fn hold(&mut self, held: Held) {
        let key = held.event.order_key.clone();
        if let Some(id) = &held.event_id {
            self.held_ids.insert(id.clone());
        }
        self.held_keys.insert(key.clone());
        self.touch(&key).held.push(held);
    }

    /// Takes `order_key`'s held events out, oldest first, each full one given the
    /// attribution the topic holds for it (if any).
    pub fn release(&mut self, order_key: &str) -> Vec<Held> {
        if !self.held_keys.remove(order_key) {
            return Vec::new();
        }
        let state = self.touch(order_key);
        let mut released = std::mem::take(&mut state.held);
        let attribution = state.entry.attribution.as_ref().map(|(a, _)| a.clone());
        for held in &mut released {
            if let Some(id) = &held.event_id {
                self.held_ids.remove(id);
            }
            if !held.event.partial {
                if let Some(attribution) = &attribution {
                    held.event.attribution = Some(attribution.clone());
                }
            }
        }
        released
    }

    /// Orders whose oldest held event is due at `now`.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.held_keys
            .iter()
            .filter(|key| {
                self.keys
                    .get(*key)
                    .and_then(|s| s.held.first())
                    .is_some_and(|held| held.until <= now)
            })
            .cloned()
            .collect()
    }

    fn next_due(&self) -> Option<Instant> {
        self.held_keys
            .iter()
            .filter_map(|key| self.keys.get(key)?.held.first())
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
        match self
            .keys
            .get(&event.order_key)
            .and_then(|s| s.entry.attribution.as_ref())
        {
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
        let key = event.order_key.clone();
        if let Some(id) = event_id {
            self.seen.insert(id.to_owned(), key.clone());
        }
        let state = self.touch(&key);
        if let Some(id) = event_id {
            state.entry.seen.push((id.to_owned(), at));
        }
        let emitted = state.entry.emitted.get_or_insert(Emitted {
            version: event.version,
            attribution: None,
            at,
        });
        emitted.version = emitted.version.max(event.version);
        emitted.at = at;
        // A full order states its attribution; a partial event only when it carries one (an
        // attribution update).
        if !event.partial || event.attribution.is_some() {
            emitted.attribution.clone_from(&event.attribution);
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
        let state = self.touch(order_key);
        state.entry.attribution = Some((attribution.clone(), at));
        let emitted = state.entry.emitted.as_ref()?;
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
/// event id. A revision (`ob-revision`, `orderbridge revise`) is a delivery of its own: the
/// corrected event is emitted although the original was.
pub fn delivery_id_of(message: &impl Message) -> Option<String> {
    let event_id = header_str(message, ob::EVENT_ID)?;
    let id = delivery_id(
        header_str(message, ob::SOURCE).unwrap_or("-"),
        header_str(message, ob::ACCOUNT).unwrap_or("-"),
        event_id,
    );
    // The revision as the processor reads it (`revise` in pipeline/records.rs): ` 1` and
    // `+1` are one revision, emitted at one version, so one delivery.
    Some(match header_str(message, ob::REVISION) {
        Some(revision) => {
            let revision = revision
                .trim()
                .parse::<i64>()
                .map_or_else(|_| revision.to_owned(), |n| n.to_string());
            format!("{id}\u{1f}revision {revision}")
        }
        None => id,
    })
}

/// Now, in unix ms.
pub use orderbridge_runtime::now_ms;

#[cfg(test)]
mod tests;
