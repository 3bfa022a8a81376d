//! The raw-topic producer. A provider gets its 2xx only after this returns `Ok`, which is
//! after the broker acknowledged the write to all in-sync replicas.

use std::sync::Arc;
use std::time::Duration;

use orderbridge_runtime::{Health, KafkaSettings};
use orderbridge_schemas::{headers as ob, Origin};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use crate::verify::Verified;

/// Why a verified webhook could not be made durable. Every variant means "not stored": the
/// provider is answered 503 with `Retry-After` and will deliver again.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker did not acknowledge within the publish timeout.
    #[error("broker did not acknowledge in time")]
    Timeout,
    /// The producer's local queue is full (the broker is slow or away).
    #[error("producer queue full")]
    QueueFull,
    /// Any other producer error.
    #[error("kafka: {0}")]
    Kafka(KafkaError),
}

impl From<KafkaError> for PublishError {
    fn from(err: KafkaError) -> Self {
        match err.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => PublishError::QueueFull,
            Some(RDKafkaErrorCode::MessageTimedOut) => PublishError::Timeout,
            _ => PublishError::Kafka(err),
        }
    }
}

/// How long librdkafka keeps trying to deliver a webhook's write after its request was
/// answered (see `build_producer`).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds the raw-topic producer. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_producer(
    kafka: &KafkaSettings,
    publish_timeout: Duration,
) -> KafkaResult<FutureProducer> {
    kafka
        .producer_config()
        // A 200 to a provider must mean every in-sync replica has the body.
        .set("acks", "all")
        // Our own retries must never duplicate or reorder a webhook within a partition.
        .set("enable.idempotence", "true")
        // Not bounded by the answer's deadline: a write of an idempotent producer that times
        // out in flight makes librdkafka drain every partition and bump the producer's epoch,
        // stalling all webhooks of this pod, just when the broker is slow. A request whose
        // write is not acknowledged within `publish_timeout` gets its 503 anyway; the write
        // may still land, and the provider's retry of it is then a duplicate the processor
        // drops (same source, account and event id).
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT
                .max(publish_timeout)
                .as_millis()
                .to_string(),
        )
        // Webhook latency matters more than batching throughput.
        .set("linger.ms", "2")
        .create()
}

/// Publishes verified webhooks to the raw topic.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl Publisher {
    /// A publisher to `topic` that waits at most `timeout` for the acknowledgement.
    ///
    /// # Errors
    /// When the producer cannot be built.
    pub fn new(kafka: &KafkaSettings, topic: &str, timeout: Duration) -> KafkaResult<Self> {
        Ok(Self {
            producer: build_producer(kafka, timeout)?,
            topic: topic.to_owned(),
            timeout,
        })
    }

    /// The raw topic it writes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes the untouched body with its key and `ob-` headers and waits for the broker.
    ///
    /// # Errors
    /// [`PublishError`] when the write is not acknowledged in time.
    pub async fn publish(
        &self,
        verified: &Verified,
        received_at_ms: i64,
    ) -> Result<(i32, i64), PublishError> {
        let key = verified.record_key();
        let received_at = received_at_ms.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: ob::SOURCE,
                value: Some(verified.source().as_str()),
            })
            .insert(Header {
                key: ob::ACCOUNT,
                value: Some(verified.account()),
            })
            .insert(Header {
                key: ob::EVENT_TYPE,
                value: Some(verified.event_type()),
            })
            .insert(Header {
                key: ob::EVENT_ID,
                value: Some(verified.event_id()),
            })
            .insert(Header {
                key: ob::RECEIVED_AT,
                value: Some(&received_at),
            })
            .insert(Header {
                key: ob::SECRET_ID,
                value: Some(verified.secret_id()),
            })
            .insert(Header {
                key: ob::ORIGIN,
                value: Some(Origin::Webhook.as_str()),
            })
            .insert(Header {
                key: ob::CONTENT_TYPE,
                value: Some(verified.content_type()),
            });
        for (name, value) in verified.extra_headers() {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(verified.body().as_ref())
            .headers(headers);
        // `send` waits up to the timeout for queue space; the acknowledgement is waited for
        // until the request's deadline (the write itself goes on, see `build_producer`).
        let delivery = self.producer.send(record, Timeout::After(self.timeout));
        match tokio::time::timeout(self.timeout, delivery).await {
            Ok(Ok(delivered)) => Ok((delivered.partition, delivered.offset)),
            Ok(Err((err, _message))) => Err(err.into()),
            Err(_elapsed) => Err(PublishError::Timeout),
        }
    }

    /// Waits for queued writes to finish, up to `timeout`.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer.flush(timeout) {
            tracing::warn!(error = %err, "producer flush incomplete at shutdown");
        }
    }

    /// Keeps `health` ready while the raw topic's metadata can be fetched, until `shutdown`.
    pub async fn watch_readiness(self, health: Arc<Health>, shutdown: CancellationToken) {
        loop {
            let producer = self.producer.clone();
            let topic = self.topic.clone();
            let ready = tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(Some(&topic), Duration::from_secs(3))
                    .map(|metadata| {
                        metadata
                            .topics()
                            .iter()
                            .any(|t| t.name() == topic && t.error().is_none())
                    })
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if ready != health.is_ready() {
                tracing::info!(ready, topic = %self.topic, "ingest readiness changed");
            }
            health.set_ready(ready);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}
