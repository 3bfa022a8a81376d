//! Duplicate suppression: a provider retrying one delivery (the same `ob-event-id`) yields
//! one canonical event, across restarts and rebalances, within a retention (default 7 days).
//!
//! The state is the canonical topic itself. Raw and canonical records share their key, so a
//! raw partition's canonical events sit in the canonical partition of the same number, each
//! with the `ob-event-id` header it came with. When the processor first needs a partition's
//! state (and again after any rebalance), it reads that canonical partition from
//! `now - retention` to its end, `read_committed`, and keeps the event ids it finds. Nothing
//! lives only on local disk or in memory: a new owner of the partition reads the same.
//!
//! Ids produced by a batch are remembered only once the batch is committed, so an aborted
//! transaction, whose events never became visible, does not suppress their retry.
//!
//! This holds for events whose canonical key equals their raw key, the normal case; a
//! record ingest could only key by event id, whose order key the processor found later, is
//! deduplicated by the idempotent sink instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orderbridge_runtime::KafkaSettings;
use orderbridge_schemas::headers as ob;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// How long a state load may take before the batch is retried.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the duplicate filter could not answer; the batch is retried.
#[derive(Debug, thiserror::Error)]
#[error("reading the canonical topic for duplicates: {0}")]
pub struct DedupError(String);

/// The event ids already on the canonical topic, per partition.
pub struct Dedup {
    kafka: KafkaSettings,
    topic: String,
    retention: Duration,
    partitions: Mutex<HashMap<i32, Seen>>,
}

struct Seen {
    generation: u64,
    /// Event id → when it was written (unix ms), for pruning past the retention.
    ids: HashMap<String, i64>,
}

impl Dedup {
    /// A filter over `topic` (the canonical topic) keeping `retention` of history.
    pub fn new(kafka: &KafkaSettings, topic: &str, retention: Duration) -> Self {
        Self {
            kafka: kafka.clone(),
            topic: topic.to_owned(),
            retention,
            partitions: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `event_id` already reached the canonical topic from raw partition
    /// `partition`. `generation` is the consumer's rebalance generation: state loaded in an
    /// older one is read again.
    ///
    /// # Errors
    /// When the canonical partition cannot be read.
    pub async fn contains(
        &self,
        partition: i32,
        generation: u64,
        event_id: &str,
    ) -> Result<bool, DedupError> {
        {
            let partitions = self.lock();
            if let Some(seen) = partitions.get(&partition) {
                if seen.generation == generation {
                    return Ok(seen.ids.contains_key(event_id));
                }
            }
        }
        let since = now_ms() - i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let (kafka, topic) = (self.kafka.clone(), self.topic.clone());
        let ids = tokio::task::spawn_blocking(move || load(&kafka, &topic, partition, since))
            .await
            .map_err(|err| DedupError(err.to_string()))??;
        tracing::info!(
            partition,
            events = ids.len(),
            "duplicate filter loaded from the canonical topic"
        );
        let found = ids.contains_key(event_id);
        self.lock().insert(partition, Seen { generation, ids });
        Ok(found)
    }

    /// Remembers ids that a committed batch put on the canonical topic.
    pub fn remember(&self, partition: i32, generation: u64, ids: impl IntoIterator<Item = String>) {
        let now = now_ms();
        let horizon = now - i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let mut partitions = self.lock();
        // Only into state loaded in this generation: otherwise the next lookup reloads it,
        // and the reload finds these ids on the topic.
        if let Some(seen) = partitions.get_mut(&partition) {
            if seen.generation == generation {
                seen.ids.extend(ids.into_iter().map(|id| (id, now)));
                if seen.ids.len() % 4096 == 0 {
                    seen.ids.retain(|_, at| *at >= horizon);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Seen>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reads canonical `partition` from the first record at or after `since_ms` to its end, and
/// returns the event ids with their record times.
fn load(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    since_ms: i64,
) -> Result<HashMap<String, i64>, DedupError> {
    let err = |e: KafkaError| DedupError(e.to_string());
    let consumer: BaseConsumer = kafka
        .client_config()
        // Assigned, not subscribed: this reader never joins a group or commits.
        .set("group.id", "orderbridge-processor-dedup")
        .set("enable.auto.commit", "false")
        // Events of aborted transactions never reached a reader; they are not duplicates.
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(err)?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(30))
        .map_err(err)?;
    let mut ids = HashMap::new();
    if high <= low {
        return Ok(ids);
    }
    // Start at the first record of the retention window when the broker can tell (not every
    // broker implements time lookups); otherwise read the partition and filter by time.
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset(topic, partition, Offset::Offset(since_ms))
        .map_err(err)?;
    let start = match consumer
        .offsets_for_times(wanted, Duration::from_secs(30))
        .ok()
        .and_then(|found| found.find_partition(topic, partition).map(|p| p.offset()))
    {
        Some(Offset::Offset(offset)) if (low..high).contains(&offset) => Offset::Offset(offset),
        _ => Offset::Offset(low),
    };
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, start)
        .map_err(err)?;
    consumer.assign(&assignment).map_err(err)?;
    let deadline = std::time::Instant::now() + LOAD_TIMEOUT;
    loop {
        if std::time::Instant::now() > deadline {
            return Err(DedupError(format!(
                "partition {partition} not read to its end in {LOAD_TIMEOUT:?}"
            )));
        }
        match consumer.poll(Duration::from_secs(1)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(ids),
            Some(Err(e)) => return Err(err(e)),
            Some(Ok(message)) => {
                let id = message.headers().and_then(|headers| {
                    headers
                        .iter()
                        .find(|h| h.key == ob::EVENT_ID)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .map(str::to_owned)
                });
                let at = message.timestamp().to_millis().unwrap_or_else(now_ms);
                if let Some(id) = id.filter(|_| at >= since_ms) {
                    ids.insert(id, at);
                }
            }
        }
    }
}
