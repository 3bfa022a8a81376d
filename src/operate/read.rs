//! Reading a topic as an operator: every partition or one order key's, from a time on, to the
//! end as it is now. Never joins a group nor commits; runs on a blocking thread.

use std::time::Duration;

use anyhow::Context;
use orderbridge_runtime::{partition_for, scan_partition_from, Cancel, KafkaSettings, ScanError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The group operators' reads name (never joined, never committed to).
const READER_GROUP: &str = "orderbridge-operator";
const TIMEOUT: Duration = Duration::from_secs(15);

/// Which partitions of a topic to read.
#[derive(Debug, Clone)]
pub enum Partitions {
    /// All of them.
    All,
    /// The one a key is in (every topic keyed by order key puts an order in one partition).
    OfKey(String),
    /// These.
    These(Vec<i32>),
}

/// A topic's partition count.
///
/// # Errors
/// When the broker cannot be asked or the topic does not exist.
pub fn partition_count(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<i32> {
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    anyhow::ensure!(count > 0, "topic {topic} does not exist");
    Ok(i32::try_from(count).unwrap_or(i32::MAX))
}

/// Calls `visit` with the committed records of `topic`'s `partitions` written at or after
/// `since_ms` (all when `None`), partition by partition, oldest first. `visit` returns
/// `false` to stop.
///
/// # Errors
/// When the topic cannot be read.
pub fn read(
    kafka: &KafkaSettings,
    topic: &str,
    partitions: &Partitions,
    since_ms: Option<i64>,
    mut visit: impl FnMut(&BorrowedMessage<'_>) -> bool,
) -> anyhow::Result<()> {
    let count = partition_count(kafka, topic)?;
    let chosen: Vec<i32> = match partitions {
        Partitions::All => (0..count).collect(),
        Partitions::OfKey(key) => vec![partition_for(key.as_bytes(), count)],
        Partitions::These(these) => these
            .iter()
            .copied()
            .filter(|p| (0..count).contains(p))
            .collect(),
    };
    let starts = start_offsets(kafka, topic, &chosen, since_ms)?;
    for (partition, from) in starts {
        let Some(from) = from else { continue };
        let cancel = Cancel::default();
        let result = scan_partition_from(
            kafka,
            READER_GROUP,
            topic,
            partition,
            from,
            &cancel,
            |message| {
                if !visit(message) {
                    cancel.cancel();
                }
            },
        );
        match result {
            Ok(()) => {}
            Err(ScanError::Cancelled) => return Ok(()),
            Err(err) => return Err(anyhow::anyhow!("reading {topic}: {err}")),
        }
    }
    Ok(())
}

/// [`read`] collecting the records `keep` accepts.
///
/// # Errors
/// As [`read`].
pub fn collect(
    kafka: &KafkaSettings,
    topic: &str,
    partitions: &Partitions,
    since_ms: Option<i64>,
    mut keep: impl FnMut(&BorrowedMessage<'_>) -> bool,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let mut kept = Vec::new();
    read(kafka, topic, partitions, since_ms, |message| {
        if keep(message) {
            kept.push(message.detach());
        }
        true
    })?;
    Ok(kept)
}

/// The record of `topic` at `partition`/`offset`, if it is there.
///
/// # Errors
/// When the topic cannot be read.
pub fn one(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<Option<OwnedMessage>> {
    let mut found = None;
    let cancel = Cancel::default();
    anyhow::ensure!(
        (0..partition_count(kafka, topic)?).contains(&partition),
        "{topic} has no partition {partition}"
    );
    let result = scan_partition_from(
        kafka,
        READER_GROUP,
        topic,
        partition,
        offset,
        &cancel,
        |message| {
            if message.offset() == offset {
                found = Some(message.detach());
            }
            // The first record read is the one asked for, or it is gone (compacted, expired).
            cancel.cancel();
        },
    );
    match result {
        Ok(()) | Err(ScanError::Cancelled) => Ok(found),
        Err(err) => Err(anyhow::anyhow!("reading {topic}: {err}")),
    }
}

/// Where to start each partition: the first offset at or after `since_ms` (`None`: nothing
/// that recent), or the start.
fn start_offsets(
    kafka: &KafkaSettings,
    topic: &str,
    partitions: &[i32],
    since_ms: Option<i64>,
) -> anyhow::Result<Vec<(i32, Option<i64>)>> {
    let Some(since) = since_ms else {
        return Ok(partitions.iter().map(|p| (*p, Some(0))).collect());
    };
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let mut query = TopicPartitionList::new();
    for partition in partitions {
        query.add_partition_offset(topic, *partition, Offset::Offset(since))?;
    }
    let found = consumer
        .offsets_for_times(query, TIMEOUT)
        .with_context(|| format!("finding the offsets of {topic} at a time"))?;
    let mut starts = Vec::new();
    for e in found.elements() {
        let start = match e.offset() {
            Offset::Offset(at) => Some(at),
            // No record that recent, says the broker; unless it cannot look up by time at
            // all (librdkafka's mock cluster says this of every partition): then the last
            // record, newer than `since`, gives it away, and the partition is read whole.
            Offset::End => newest_is_recent(kafka, topic, e.partition(), since)?.then_some(0),
            Offset::Beginning | Offset::Stored | Offset::Invalid | Offset::OffsetTail(_) => Some(0),
        };
        starts.push((e.partition(), start));
    }
    Ok(starts)
}

/// Whether the last record of `topic`'s `partition` was written at or after `since_ms`. The
/// last offsets of a transactional topic are commit markers, not records: the newest of the
/// partition's last few offsets is the one that tells.
fn newest_is_recent(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    since_ms: i64,
) -> anyhow::Result<bool> {
    const TAIL: i64 = 16;
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, TIMEOUT)
        .with_context(|| format!("reading the ends of {topic}[{partition}]"))?;
    if high <= low {
        return Ok(false);
    }
    let mut newest = None;
    let result = scan_partition_from(
        kafka,
        READER_GROUP,
        topic,
        partition,
        high.saturating_sub(TAIL).max(low),
        &Cancel::default(),
        |message| newest = message.timestamp().to_millis().or(newest),
    );
    match result {
        Ok(()) | Err(ScanError::Cancelled) => Ok(newest.is_some_and(|at| at >= since_ms)),
        Err(err) => Err(anyhow::anyhow!("reading {topic}: {err}")),
    }
}
