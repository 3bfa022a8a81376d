//! Writing each order's status to the status topic, off the hot path, and finding the
//! partition an order key lives in.
//!
//! A [`StatusWriter`] hands records to librdkafka's queue and returns: it never waits for the
//! broker, never retries into the stage's loop, and drops a record (counted) when its queue
//! is full. The status topic is for people asking where an order is; losing a record of it
//! loses no order, and a stage never slows down for it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orderbridge_schemas::StatusRecord;
use prometheus::{IntCounterVec, Opts, Registry};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::KafkaSettings;

/// The partition the producers' partitioner (`murmur2_random`, the Java client's) gives a
/// non-empty `key` among `partitions`: where every record of an order is, in every topic keyed
/// by it.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    let hash = murmur2(key) & 0x7fff_ffff;
    let count = u32::try_from(partitions.max(1)).unwrap_or(1);
    i32::try_from(hash % count).unwrap_or(0)
}

/// The Java client's `Utils.murmur2` (seed `0x9747b28c`), as librdkafka's `murmur2`
/// partitioner computes it.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// Counts what became of status records the broker did not take.
struct Context {
    records: IntCounterVec,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        let outcome = if result.is_ok() { "written" } else { "failed" };
        self.records.with_label_values(&[outcome]).inc();
    }
}

/// Writes [`StatusRecord`]s for one stage; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct StatusWriter {
    inner: Option<std::sync::Arc<Inner>>,
}

struct Inner {
    producer: ThreadedProducer<Context>,
    topic: String,
    stage: &'static str,
    records: IntCounterVec,
}

impl StatusWriter {
    /// A writer for `stage` to `topic`, counting into `records` (see [`status_counter`]).
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(
        kafka: &KafkaSettings,
        topic: &str,
        stage: &'static str,
        records: IntCounterVec,
    ) -> Result<Self, KafkaError> {
        let producer: ThreadedProducer<Context> = kafka
            .producer_config()
            // Advisory records: one broker's acknowledgement is enough, and no idempotence
            // (its epoch bumps would only add work); a lost one loses no order.
            .set("acks", "1")
            .set("enable.idempotence", "false")
            // Batched generously: nobody waits for them.
            .set("linger.ms", "50")
            .set("queue.buffering.max.messages", "100000")
            .set("message.timeout.ms", "30000")
            .create_with_context(Context {
                records: records.clone(),
            })?;
        Ok(Self {
            inner: Some(std::sync::Arc::new(Inner {
                producer,
                topic: topic.to_owned(),
                stage,
                records,
            })),
        })
    }

    /// A writer that writes nothing (`status_updates = false`).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// The stage this writer records for (`""` when disabled).
    pub fn stage(&self) -> &'static str {
        self.inner.as_ref().map_or("", |inner| inner.stage)
    }

    /// A status record of this stage for `order_key`, now.
    pub fn record(&self, order_key: &str, status: orderbridge_schemas::Status) -> StatusRecord {
        StatusRecord::new(order_key, self.stage(), status, now_ms())
    }

    /// Queues `record`, keyed by its order key; never waits.
    pub fn write(&self, record: &StatusRecord) {
        let Some(inner) = &self.inner else {
            return;
        };
        let Ok(value) = serde_json::to_vec(record) else {
            return;
        };
        let sent = inner.producer.send(
            BaseRecord::to(&inner.topic)
                .key(record.order_key.as_bytes())
                .payload(&value),
        );
        if let Err((err, _)) = sent {
            inner.records.with_label_values(&["dropped"]).inc();
            tracing::debug!(error = %err, "status record dropped");
        }
    }

    /// Waits up to `timeout` for queued records to be written (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Some(inner) = &self.inner {
            use rdkafka::producer::Producer as _;
            let _ = inner.producer.flush(timeout);
        }
    }
}

impl Drop for Inner {
    /// What is still queued goes out before the writer goes (a stage stopping, a router
    /// dropped), for at most a second: a status record is never worth holding a shutdown.
    fn drop(&mut self) {
        use rdkafka::producer::Producer as _;
        let _ = self.producer.flush(Duration::from_secs(1));
    }
}

/// `orderbridge_<stage>_status_records_total{result}`, registered in `registry`: `written`
/// and `failed` (acknowledged or not by the broker), `dropped` (the local queue was full).
///
/// # Errors
/// When the metric is registered twice.
pub fn status_counter(stage: &str, registry: &Registry) -> prometheus::Result<IntCounterVec> {
    let records = IntCounterVec::new(
        Opts::new(
            format!("orderbridge_{stage}_status_records_total"),
            "Status-topic records: written (acknowledged), failed (not acknowledged), \
             dropped (local queue full)",
        ),
        &["result"],
    )?;
    registry.register(Box::new(records.clone()))?;
    for result in ["written", "failed", "dropped"] {
        records.with_label_values(&[result]);
    }
    Ok(records)
}

/// Now, unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_the_java_clients() {
        // Kafka's own `UtilsTest.testMurmur2`.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, expected) in cases {
            assert_eq!(
                i32::from_ne_bytes(murmur2(data).to_ne_bytes()),
                expected,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn a_partition_is_always_in_range() {
        for key in ["", "a", "shopify:shop.example:1", "ébay:-:ü"] {
            for partitions in [1, 3, 6, 100] {
                let p = partition_for(key.as_bytes(), partitions);
                assert!((0..partitions).contains(&p));
            }
        }
        assert_eq!(partition_for(b"x", 0), 0);
    }
}
