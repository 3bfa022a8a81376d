//! Where long-running commands keep their place, in Kafka like everything else: one
//! compacted topic (`orders.checkpoints.v1`), one key per thing remembered (a backfill's
//! window, a poll's high-water mark, an EDI file claimed), its newest value what counts.
//!
//! A command reads the keys it cares about when it starts, and writes a key only after
//! what the new value says is done is itself acknowledged by the broker: a killed command
//! resumes from its last checkpoint, and what it did after that is done again (the
//! processor's duplicate filter and the sink's upsert absorb it).

use std::collections::HashMap;
use std::time::Duration;

use orderbridge_runtime::{scan_partition, Cancel, KafkaSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Kafka did not take the write, or the topic could not be read.
    #[error("checkpoints topic {topic}: {reason}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What failed.
        reason: String,
    },
}

/// The checkpoints topic of one process.
#[derive(Clone)]
pub struct Checkpoints {
    kafka: KafkaSettings,
    topic: String,
    producer: FutureProducer,
}

impl Checkpoints {
    /// Checkpoints kept in `topic`.
    ///
    /// # Errors
    /// When the producer cannot be built.
    pub fn new(kafka: &KafkaSettings, topic: &str) -> Result<Self, KafkaError> {
        let producer = kafka
            .producer_config()
            // A checkpoint says work is done: it must be as durable as the work.
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()?;
        Ok(Self {
            kafka: kafka.clone(),
            topic: topic.to_owned(),
            producer,
        })
    }

    fn error(&self, reason: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::Kafka {
            topic: self.topic.clone(),
            reason: reason.to_string(),
        }
    }

    /// The newest value of every key that starts with `prefix`, read from the whole topic.
    /// A value that does not read as `T` (written by another version) is skipped with a
    /// warning, as if absent.
    ///
    /// # Errors
    /// When the topic cannot be read to its end.
    pub async fn load<T: DeserializeOwned + Send + 'static>(
        &self,
        prefix: &str,
    ) -> Result<HashMap<String, T>, CheckpointError> {
        let (kafka, topic, prefix) = (self.kafka.clone(), self.topic.clone(), prefix.to_owned());
        let read = tokio::task::spawn_blocking(move || -> Result<HashMap<String, T>, String> {
            let metadata_client: BaseConsumer = kafka.client_config().create().map_err(|e| e.to_string())?;
            let metadata = metadata_client
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len())
                .ok_or_else(|| "does not exist (create it with `orderbridge topics ensure`)".to_owned())?;
            let mut newest: HashMap<String, Option<Vec<u8>>> = HashMap::new();
            for partition in 0..partitions {
                let partition = i32::try_from(partition).map_err(|e| e.to_string())?;
                scan_partition(&kafka, "orderbridge-checkpoints", &topic, partition, &Cancel::default(), |message| {
                    let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                        return;
                    };
                    if key.starts_with(&prefix) {
                        newest.insert(key.to_owned(), message.payload().map(<[u8]>::to_vec));
                    }
                })
                .map_err(|e| e.to_string())?;
            }
            Ok(newest
                .into_iter()
                .filter_map(|(key, value)| {
                    let value = value?;
                    match serde_json::from_slice(&value) {
                        Ok(parsed) => Some((key, parsed)),
                        Err(err) => {
                            tracing::warn!(key = %key, error = %err, "checkpoint unreadable; ignored");
                            None
                        }
                    }
                })
                .collect())
        })
        .await
        .map_err(|err| self.error(err))?;
        read.map_err(|reason| self.error(reason))
    }

    /// Writes `key`'s new value and waits until the broker has it.
    ///
    /// # Errors
    /// When the broker does not take it.
    pub async fn save<T: Serialize>(&self, key: &str, value: &T) -> Result<(), CheckpointError> {
        let payload = serde_json::to_vec(value).map_err(|err| self.error(err))?;
        let record = FutureRecord::to(&self.topic).key(key).payload(&payload);
        self.producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map(|_| ())
            .map_err(|(err, _)| self.error(err))
    }
}
