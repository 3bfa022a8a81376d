//! Reading one partition of a topic from a point in time to its end: how the processor
//! rebuilds its state from Kafka instead of keeping it on disk.

use std::time::{Duration, Instant};

use orderbridge_runtime::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::StateError;

/// How long reading one partition may take before the batch that needed it is retried.
const SCAN_TIMEOUT: Duration = Duration::from_secs(120);

/// Calls `visit` with every committed record of `topic`'s `partition` written at or after
/// `since_ms` (unix ms), oldest first, up to the partition's end as it is when the scan starts
/// or shortly after. Blocking: run it on a blocking thread.
///
/// # Errors
/// When the partition cannot be read in time, or `visit` fails.
pub(super) fn scan(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    since_ms: i64,
    mut visit: impl FnMut(&BorrowedMessage<'_>) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let err = |e: KafkaError| StateError::Kafka(format!("{topic}[{partition}]: {e}"));
    let consumer: BaseConsumer = kafka
        .client_config()
        // Assigned, not subscribed: this reader never joins the group nor commits.
        .set("group.id", "orderbridge-processor-state")
        .set("enable.auto.commit", "false")
        // Records of aborted transactions never reached a reader; they are not state.
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(err)?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(30))
        .map_err(err)?;
    if high <= low {
        return Ok(());
    }
    // Start at the first record of the window when the broker can tell (not every broker
    // implements time lookups); otherwise read the partition and filter by time.
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset(topic, partition, Offset::Offset(since_ms))
        .map_err(err)?;
    let start = match consumer
        .offsets_for_times(wanted, Duration::from_secs(30))
        .ok()
        .and_then(|found| found.find_partition(topic, partition).map(|p| p.offset()))
    {
        Some(Offset::Offset(offset)) if (low..high).contains(&offset) => offset,
        _ => low,
    };
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(err)?;
    consumer.assign(&assignment).map_err(err)?;
    let deadline = Instant::now() + SCAN_TIMEOUT;
    loop {
        if Instant::now() > deadline {
            return Err(StateError::Kafka(format!(
                "{topic}[{partition}] not read to its end in {SCAN_TIMEOUT:?}"
            )));
        }
        match consumer.poll(Duration::from_secs(1)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(()),
            Some(Err(e)) => return Err(err(e)),
            Some(Ok(message))
                if message
                    .timestamp()
                    .to_millis()
                    .is_none_or(|at| at >= since_ms) =>
            {
                visit(&message)?;
            }
            // Written before the window (the broker could not seek by time).
            Some(Ok(_)) => {}
        }
    }
}
