//! Writing provider documents to the raw topic, as a webhook of the same order would be:
//! the same key (the order key), the same `ob-` headers, the body untouched, with
//! `ob-origin` saying where it came from (`enrich`, `backfill`, `poll`).

use std::time::Duration;

use orderbridge_runtime::KafkaSettings;
use orderbridge_schemas::{headers as ob, order_key, Origin, Source};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sha2::{Digest, Sha256};

use crate::api::Document;

/// How long a write may wait for the broker before it counts as failed (and is done again).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A document on its way to the raw topic.
#[derive(Debug, Clone)]
pub struct RawDocument<'a> {
    /// Its source.
    pub source: Source,
    /// Its account (`-` when none).
    pub account: &'a str,
    /// The document.
    pub document: &'a Document,
    /// Where it came from.
    pub origin: Origin,
    /// Its `ob-event-id`: the notification's it completes, or one made from its content.
    pub event_id: &'a str,
    /// Its `ob-content-type`: [`JSON`] for API answers, [`X12`] for EDI.
    pub content_type: &'a str,
}

/// The content type of a provider API's answer.
pub const JSON: &str = "application/json";
/// The content type of an X12 interchange.
pub const X12: &str = "application/edi-x12";

/// The `ob-event-id` of a document that completes no notification: its origin and a hash
/// of its bytes, so the same document read twice (a backfill run again, a page read again
/// after a crash) is one delivery to the processor's duplicate filter, and a changed one is
/// a new delivery.
pub fn content_event_id(origin: Origin, document: &Document) -> String {
    let digest = Sha256::digest(&document.body);
    format!("{}:{}", origin.as_str(), hex::encode(&digest[..16]))
}

/// The raw-topic producer of the stages that read providers' APIs.
#[derive(Clone)]
pub struct RawPublisher {
    producer: FutureProducer,
    topic: String,
}

impl RawPublisher {
    /// A publisher to `topic`.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(kafka: &KafkaSettings, topic: &str) -> Result<Self, KafkaError> {
        let producer = kafka
            .producer_config()
            // A document is acknowledged (a cursor moved, an offset committed) only once every
            // in-sync replica has it.
            .set("acks", "all")
            // Our retries never duplicate or reorder documents within a partition.
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .set("linger.ms", "5")
            .create()?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Writes `raw` and waits for the broker's acknowledgement; its `(partition, offset)`.
    ///
    /// # Errors
    /// When the broker does not acknowledge it.
    pub async fn publish(&self, raw: &RawDocument<'_>) -> Result<(i32, i64), KafkaError> {
        let key = order_key(raw.source, raw.account, &raw.document.order_id);
        let received_at = chrono::Utc::now().timestamp_millis().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: ob::SOURCE,
                value: Some(raw.source.as_str()),
            })
            .insert(Header {
                key: ob::ACCOUNT,
                value: Some(raw.account),
            })
            .insert(Header {
                key: ob::EVENT_TYPE,
                value: Some(raw.document.kind.as_str()),
            })
            .insert(Header {
                key: ob::EVENT_ID,
                value: Some(raw.event_id),
            })
            .insert(Header {
                key: ob::RECEIVED_AT,
                value: Some(&received_at),
            })
            // No webhook secret verified this: the provider's API answered us.
            .insert(Header {
                key: ob::SECRET_ID,
                value: Some("api"),
            })
            .insert(Header {
                key: ob::ORIGIN,
                value: Some(raw.origin.as_str()),
            })
            .insert(Header {
                key: ob::CONTENT_TYPE,
                value: Some(raw.content_type),
            });
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&raw.document.body)
            .headers(headers);
        self.producer
            .send(record, Timeout::After(DELIVERY_TIMEOUT))
            .await
            .map(|delivered| (delivered.partition, delivered.offset))
            .map_err(|(err, _)| err)
    }
}
