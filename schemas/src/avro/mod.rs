//! The Avro codec for [`OrderEvent`], in the schema registry's wire format.
//!
//! Wire format (Confluent): byte 0 is the magic `0`, bytes 1..5 the schema id (big-endian),
//! then the Avro binary datum. Writers register the newest `avro/order_event/v<N>.avsc` under the subject
//! `<topic>-value` once and cache the id; readers fetch the writer's schema by id once,
//! cache it, and resolve it against the schema compiled into this crate, so an event written
//! by an older or newer compatible schema still reads.
//!
//! The mapping to Avro values is written out by hand rather than derived (`encode.rs`,
//! `decode.rs`): money must become Avro decimals with a fixed scale, optional fields become
//! `["null", T]` unions, and a mismatch should fail here with a field name, not deep inside a
//! serializer.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use rust_decimal::Decimal;
use tokio::sync::OnceCell;

mod decode;
mod encode;

use decode::from_value;
use encode::to_value;

use crate::model::*;
use crate::registry::{RegistryError, SchemaRegistry};

/// Every released version of the `OrderEvent` schema, oldest first. A released version is
/// frozen: change the schema by adding a file under `avro/order_event/`, never by editing
/// one (the compatibility tests in `compat.rs` hold each to the ones before it).
pub const ORDER_EVENT_VERSIONS: &[&str] = &[
    include_str!("../../avro/order_event/v1.avsc"),
    include_str!("../../avro/order_event/v2.avsc"),
];

/// The `OrderEvent` schema this build writes and reads into: the newest released version.
pub const ORDER_EVENT_SCHEMA: &str = ORDER_EVENT_VERSIONS[ORDER_EVENT_VERSIONS.len() - 1];

/// Scale of every decimal in the schema: four places hold every currency's minor units
/// (JPY 0, USD 2, KWD 3) and the sub-cent unit prices some sources send.
pub const DECIMAL_SCALE: u32 = 4;
/// Precision of every decimal in the schema.
pub const DECIMAL_PRECISION: u32 = 18;

const MAGIC: u8 = 0;

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The registry could not register or return a schema.
    #[error("schema registry: {0}")]
    Registry(#[from] RegistryError),
    /// The bytes are not in the wire format (no magic byte, too short).
    #[error("not schema registry wire format: {0}")]
    Wire(&'static str),
    /// Avro itself failed (schema parse, datum encode or decode).
    #[error("avro: {0}")]
    Avro(String),
    /// A decoded value does not have the shape the model expects.
    #[error("field `{field}`: {problem}")]
    Shape {
        /// The field at fault.
        field: &'static str,
        /// What was wrong.
        problem: String,
    },
    /// An amount does not fit the schema's decimal (precision 18, scale 4).
    #[error("amount {0} does not fit decimal(18, 4)")]
    Amount(Decimal),
}

impl CodecError {
    /// True when the failure is not the record's: the registry could not answer, or refused
    /// this build's own schema (incompatible, invalid: a deployment problem, never a record's).
    /// The stage then waits, reporting not ready, commits nothing and dead-letters nothing.
    /// False when the bytes or the event themselves are at fault (an amount that does not
    /// fit, bytes that are not the wire format, a schema id the registry says it never had),
    /// and a retry would fail the same way: the record is dead-lettered.
    pub fn is_retryable(&self) -> bool {
        match self {
            CodecError::Registry(err) => !matches!(err, RegistryError::NotFound(_)),
            CodecError::Wire(_)
            | CodecError::Avro(_)
            | CodecError::Shape { .. }
            | CodecError::Amount(_) => false,
        }
    }
}

impl From<apache_avro::Error> for CodecError {
    fn from(err: apache_avro::Error) -> Self {
        CodecError::Avro(err.to_string())
    }
}

/// This build's schema, parsed once for the process, so that the datum writer and every
/// reader resolving against it can borrow it for as long as the process runs.
static OUR_SCHEMA: LazyLock<Result<Schema, String>> =
    LazyLock::new(|| Schema::parse_str(ORDER_EVENT_SCHEMA).map_err(|err| err.to_string()));

/// The datum writer of [`OUR_SCHEMA`], built once. Building one walks and indexes the whole
/// schema; built per event, that was a good part of an event's encoding.
static WRITER: LazyLock<Result<GenericDatumWriter<'static>, String>> = LazyLock::new(|| {
    let schema = OUR_SCHEMA.as_ref().map_err(Clone::clone)?;
    GenericDatumWriter::builder(schema)
        .build()
        .map_err(|err| err.to_string())
});

/// A reader for each writer's schema this process has met, by the schema's text, resolving
/// it against [`OUR_SCHEMA`]; built once each and kept for the life of the process. A
/// process meets a handful of versions of one schema (every version is a file under
/// `avro/order_event/`), so this holds a handful of readers.
static READERS: LazyLock<Mutex<HashMap<String, &'static GenericDatumReader<'static>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The reader for `writer`'s schema text (see [`READERS`]).
fn reader_for(writer: &str) -> Result<&'static GenericDatumReader<'static>, CodecError> {
    let mut readers = READERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(reader) = readers.get(writer) {
        return Ok(reader);
    }
    let ours = OUR_SCHEMA
        .as_ref()
        .map_err(|err| CodecError::Avro(err.clone()))?;
    // Kept for the process's life, as the readers borrowing it are (see `READERS`).
    let schema: &'static Schema = Box::leak(Box::new(Schema::parse_str(writer)?));
    let reader: &'static GenericDatumReader<'static> = Box::leak(Box::new(
        GenericDatumReader::builder(schema)
            .reader_schema(ours)
            .build()?,
    ));
    readers.insert(writer.to_owned(), reader);
    Ok(reader)
}

/// Encodes and decodes [`OrderEvent`]s in wire format against a [`SchemaRegistry`].
pub struct OrderEventCodec {
    registry: Arc<dyn SchemaRegistry>,
    subject: String,
    writer_id: OnceCell<u32>,
    /// The reader for each writer schema id met, once the registry has told its schema.
    readers: Mutex<HashMap<u32, &'static GenericDatumReader<'static>>>,
}

impl std::fmt::Debug for OrderEventCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderEventCodec")
            .field("subject", &self.subject)
            .field("writer_id", &self.writer_id.get())
            .finish_non_exhaustive()
    }
}

impl OrderEventCodec {
    /// A codec for the value subject of `topic` (`<topic>-value`, the topic name strategy).
    ///
    /// # Errors
    /// If the compiled-in schema does not parse, which a test rules out.
    pub fn new(registry: Arc<dyn SchemaRegistry>, topic: &str) -> Result<Self, CodecError> {
        OUR_SCHEMA
            .as_ref()
            .map_err(|err| CodecError::Avro(err.clone()))?;
        Ok(Self {
            registry,
            subject: format!("{topic}-value"),
            writer_id: OnceCell::new(),
            readers: Mutex::new(HashMap::new()),
        })
    }

    /// Registers the schema (once) and returns its id.
    ///
    /// # Errors
    /// When the registry refuses or cannot be reached.
    pub async fn schema_id(&self) -> Result<u32, CodecError> {
        let id = self
            .writer_id
            .get_or_try_init(|| self.registry.register(&self.subject, ORDER_EVENT_SCHEMA))
            .await?;
        Ok(*id)
    }

    /// Encodes one event in wire format.
    ///
    /// # Errors
    /// When the schema cannot be registered or an amount does not fit the schema.
    pub async fn encode(&self, event: &OrderEvent) -> Result<Vec<u8>, CodecError> {
        let id = self.schema_id().await?;
        let writer = WRITER
            .as_ref()
            .map_err(|err| CodecError::Avro(err.clone()))?;
        let datum = writer.write_value_to_vec(to_value(event)?)?;
        let mut out = Vec::with_capacity(5 + datum.len());
        out.push(MAGIC);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&datum);
        Ok(out)
    }

    /// Decodes one event from wire format, resolving the writer's schema against ours.
    ///
    /// # Errors
    /// When the bytes are not wire format, the writer's schema cannot be fetched, or the datum
    /// does not decode into an [`OrderEvent`].
    pub async fn decode(&self, bytes: &[u8]) -> Result<OrderEvent, CodecError> {
        if bytes.len() < 5 {
            return Err(CodecError::Wire("shorter than the 5-byte header"));
        }
        if bytes[0] != MAGIC {
            return Err(CodecError::Wire("magic byte is not 0"));
        }
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let reader = self.reader(id).await?;
        let mut body = &bytes[5..];
        let value = reader.read_value(&mut body)?;
        let mut event = from_value(value)?;
        // The wire carries scale 4 for every currency; readers get the currency's own.
        event.fit_amounts_to_currency();
        Ok(event)
    }

    async fn reader(&self, id: u32) -> Result<&'static GenericDatumReader<'static>, CodecError> {
        if let Some(reader) = self.cached_reader(id) {
            return Ok(reader);
        }
        let text = self.registry.schema(id).await?;
        let reader = reader_for(&text)?;
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, reader);
        Ok(reader)
    }

    fn cached_reader(&self, id: u32) -> Option<&'static GenericDatumReader<'static>> {
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::decode::decimal_from_bytes;
    use super::encode::decimal_value;
    use super::*;
    use crate::registry::EmbeddedRegistry;
    use apache_avro::types::Value;
    use chrono::{TimeZone, Utc};
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn sample() -> OrderEvent {
        let touch = Touchpoint {
            channel: "paid_search".into(),
            campaign: Some("spring".into()),
            source: Some("google".into()),
            medium: Some("cpc".into()),
            occurred_at: Some(Utc.timestamp_millis_opt(1_745_000_000_000).unwrap()),
            credit_share: Some(0.6),
        };
        OrderEvent {
            order_key: "shopify:shop.myshopify.com:450789469".into(),
            source: "shopify".into(),
            account: "shop.myshopify.com".into(),
            source_order_id: "450789469".into(),
            order_number: Some("#1001".into()),
            event_type: EventType::Created,
            status: OrderStatus::Open,
            payment_status: PaymentStatus::Paid,
            version: 1_745_350_200_000,
            currency: "KWD".into(),
            totals: Totals {
                total: dec("409.945"),
                subtotal: dec("398.00"),
                tax: dec("11.945"),
                shipping: dec("0"),
                discount: dec("-0.0001"),
            },
            line_items: vec![LineItem {
                line_id: Some("466157049".into()),
                sku: Some("IPOD2008GREEN".into()),
                title: "IPod Nano - 8gb".into(),
                quantity: 2,
                unit_price: dec("199.00"),
                discount: dec("-12345678901234.5678"),
                tax: dec("11.945"),
            }],
            customer: Some(Customer {
                id: Some("207119551".into()),
                email: Some("bob@example.com".into()),
                name: None,
            }),
            shipping_address: Some(Address {
                city: Some("Ottawa".into()),
                ..Address::default()
            }),
            billing_address: None,
            source_created_at: Some(Utc.timestamp_millis_opt(1_745_350_200_000).unwrap()),
            source_updated_at: None,
            attribution: Some(Attribution {
                first_touch: Some(touch.clone()),
                last_touch: None,
                touchpoints: vec![touch],
            }),
            lineage: Lineage {
                raw_topic: "orders.raw.v1".into(),
                raw_partition: 3,
                raw_offset: 17,
                event_id: "b54557e4".into(),
                received_at: Utc.timestamp_millis_opt(1_745_350_201_123).unwrap(),
                origin: "webhook".into(),
            },
            partial: false,
            source_created_at_original: Some("2025-04-22T14:30:00-05:00".into()),
            source_updated_at_original: None,
            shipment: Some(Shipment {
                shipment_id: Some("shp_123".into()),
                carrier: Some("USPS".into()),
                tracking_code: Some("9400100000000000000000".into()),
                status: "delivered".into(),
                estimated_delivery_at: Some(Utc.timestamp_millis_opt(1_746_144_000_000).unwrap()),
            }),
            refund: Some(Refund {
                refund_id: "509562969".into(),
                amount: dec("41.94"),
                reason: Some("damaged".into()),
                lines: vec![RefundLine {
                    line_id: Some("466157049".into()),
                    sku: Some("IPOD2008GREEN".into()),
                    quantity: 1,
                    amount: dec("41.94"),
                }],
            }),
        }
    }

    #[tokio::test]
    async fn round_trips_through_wire_format() {
        let registry = Arc::new(EmbeddedRegistry::new());
        let codec = OrderEventCodec::new(registry, "orders.canonical.v1").unwrap();
        let event = sample();
        let bytes = codec.encode(&event).await.unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        assert_eq!(id, codec.schema_id().await.unwrap());
        let back = codec.decode(&bytes).await.unwrap();
        assert_eq!(back, event);
    }

    #[tokio::test]
    async fn an_event_written_with_version_1_reads_with_the_new_fields_defaulted() {
        let registry = Arc::new(EmbeddedRegistry::new());
        let codec = OrderEventCodec::new(registry.clone(), "orders.canonical.v1").unwrap();
        codec.schema_id().await.unwrap();
        // A producer still on version 1 (its readers of version 2 data are checked in
        // compat.rs): register v1 and write with it.
        let v1 = ORDER_EVENT_VERSIONS[0];
        let id = registry
            .register("orders.canonical.v1-value", v1)
            .await
            .unwrap();
        let v1_schema = Schema::parse_str(v1).unwrap();
        let v1_names: Vec<String> = serde_json::from_str::<serde_json::Value>(v1).unwrap()
            ["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        let mut event = sample();
        let Value::Record(fields) = encode::to_value(&event).unwrap() else {
            panic!("a record")
        };
        let v1_record = Value::Record(
            fields
                .into_iter()
                .filter(|(name, _)| v1_names.contains(name))
                .collect(),
        );
        let datum = GenericDatumWriter::builder(&v1_schema)
            .build()
            .unwrap()
            .write_value_to_vec(v1_record)
            .unwrap();
        let mut bytes = vec![MAGIC];
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&datum);

        let read = codec.decode(&bytes).await.unwrap();
        event.partial = false;
        event.source_created_at_original = None;
        event.source_updated_at_original = None;
        event.shipment = None;
        event.refund = None;
        assert_eq!(read, event);
    }

    #[tokio::test]
    async fn refuses_amounts_the_schema_cannot_hold() {
        let codec = OrderEventCodec::new(Arc::new(EmbeddedRegistry::new()), "t").unwrap();
        let mut event = sample();
        event.totals.total = dec("0.00001");
        assert!(matches!(
            codec.encode(&event).await,
            Err(CodecError::Amount(_))
        ));
        event.totals.total = dec("100000000000000");
        assert!(matches!(
            codec.encode(&event).await,
            Err(CodecError::Amount(_))
        ));
    }

    #[tokio::test]
    async fn rejects_bytes_that_are_not_wire_format() {
        let codec = OrderEventCodec::new(Arc::new(EmbeddedRegistry::new()), "t").unwrap();
        assert!(matches!(
            codec.decode(b"{}").await,
            Err(CodecError::Wire(_))
        ));
        assert!(matches!(
            codec.decode(&[1, 0, 0, 0, 1, 2]).await,
            Err(CodecError::Wire(_))
        ));
        let unknown_id = [0, 0, 0, 0, 99, 2];
        let err = codec.decode(&unknown_id).await.unwrap_err();
        assert!(
            matches!(err, CodecError::Registry(RegistryError::NotFound(99))),
            "{err}"
        );
    }

    #[test]
    fn decimals_are_eight_byte_twos_complement_at_scale_4() {
        for (amount, unscaled) in [
            ("0", 0i64),
            ("0.0001", 1),
            ("199.00", 1_990_000),
            ("-0.0128", -128),
            ("99999999999999.9999", 999_999_999_999_999_999),
        ] {
            let Value::Decimal(d) = decimal_value(dec(amount)).unwrap() else {
                panic!("not a decimal")
            };
            let bytes = Vec::<u8>::try_from(&d).unwrap();
            assert_eq!(bytes, unscaled.to_be_bytes().to_vec(), "{amount}");
            assert_eq!(decimal_from_bytes(&bytes).unwrap(), dec(amount));
        }
        // A minimal encoding from another writer still reads.
        assert_eq!(decimal_from_bytes(&[0xFF, 0x7F]).unwrap(), dec("-0.0129"));
    }
}
