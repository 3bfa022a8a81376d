//! Reading one partition of a compacted topic from its start to its end: how a new owner of a
//! partition gets the processor's memory back instead of keeping it on disk, and how a
//! command finds where it stopped (its checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

/// Why a partition could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading failed, or made no progress for too long.
    #[error("{0}")]
    Kafka(String),
    /// The read was cancelled.
    #[error("the read was cancelled")]
    Cancelled,
}

/// How long a read may go without a record (or the end) before it fails and is retried.
/// A read that makes progress is never cut, however long the partition is.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The reader's client context: the end of the partition is how the read knows it is done,
/// not an error worth librdkafka's global error log.
struct Quiet;

impl rdkafka::ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        tracing::warn!(error = %error, reason, "partition reader error");
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}

/// Stops a read from another thread.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Stops the read at its next record.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Calls `visit` with every committed record of `topic`'s `partition`, oldest first, up to
/// its end, reading as `group` (which is never joined nor committed to). Blocking: run it on
/// a blocking thread.
///
/// # Errors
/// When the partition cannot be read, the read stalls, or `cancel` stopped it.
pub fn scan_partition(
    kafka: &KafkaSettings,
    group: &str,
    topic: &str,
    partition: i32,
    cancel: &Cancel,
    visit: impl FnMut(&BorrowedMessage<'_>),
) -> Result<(), ScanError> {
    scan_partition_from(kafka, group, topic, partition, 0, cancel, visit)
}

/// [`scan_partition`] from offset `from` on (or the partition's start, when that is later).
///
/// # Errors
/// As [`scan_partition`].
pub fn scan_partition_from(
    kafka: &KafkaSettings,
    group: &str,
    topic: &str,
    partition: i32,
    from: i64,
    cancel: &Cancel,
    mut visit: impl FnMut(&BorrowedMessage<'_>),
) -> Result<(), ScanError> {
    let err = |e: KafkaError| ScanError::Kafka(format!("{topic}[{partition}]: {e}"));
    let consumer: BaseConsumer<Quiet> = kafka
        .client_config()
        // Assigned, not subscribed: this reader never joins the group nor commits.
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        // Entries of aborted transactions never happened; they are not state.
        .set("isolation.level", "read_committed")
        // The end is reported, so the read knows when it is there (markers included).
        .set("enable.partition.eof", "true")
        // A read to the end: at the end there is nothing to wait for.
        .set("fetch.wait.max.ms", "10")
        .create_with_context(Quiet)
        .map_err(err)?;
    // With read_committed, the end is the last stable offset: no open transaction is waited for.
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(30))
        .map_err(err)?;
    let low = low.max(from);
    if high <= low {
        return Ok(());
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(low))
        .map_err(err)?;
    consumer.assign(&assignment).map_err(err)?;
    let mut progress = Instant::now();
    let mut next = low;
    loop {
        if cancel.cancelled() {
            return Err(ScanError::Cancelled);
        }
        if progress.elapsed() > STALL_TIMEOUT {
            return Err(ScanError::Kafka(format!(
                "{topic}[{partition}]: no record for {STALL_TIMEOUT:?} before offset {high}"
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            // The end as this fetch saw it (past transaction markers, too). It is the end
            // when it is also at or past the end the read started with: brokers differ in
            // which of the two they get right (librdkafka's mock reports an end per fetch,
            // tansu a stale one when asked).
            Some(Err(KafkaError::PartitionEOF(_))) => {
                if let Some(Offset::Offset(at)) = consumer
                    .position()
                    .ok()
                    .and_then(|p| p.find_partition(topic, partition).map(|e| e.offset()))
                {
                    next = next.max(at);
                }
                if next >= high {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(err(e)),
            Some(Ok(message)) => {
                progress = Instant::now();
                next = message.offset() + 1;
                visit(&message);
            }
        }
    }
}
