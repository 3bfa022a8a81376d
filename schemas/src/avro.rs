//! The Avro codec for [`OrderEvent`], in the schema registry's wire format.
//!
//! Wire format (Confluent): byte 0 is the magic `0`, bytes 1..5 the schema id (big-endian),
//! then the Avro binary datum. Writers register `avro/order_event.avsc` under the subject
//! `<topic>-value` once and cache the id; readers fetch the writer's schema by id once,
//! cache it, and resolve it against the schema compiled into this crate, so an event written
//! by an older or newer compatible schema still reads.
//!
//! The mapping to Avro values is written out by hand rather than derived: money must become
//! Avro decimals with a fixed scale, optional fields become `["null", T]` unions, and a
//! mismatch should fail here with a field name, not deep inside a serializer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use tokio::sync::OnceCell;

use crate::model::*;
use crate::registry::{RegistryError, SchemaRegistry};

/// The canonical `OrderEvent` schema, as released.
pub const ORDER_EVENT_SCHEMA: &str = include_str!("../avro/order_event.avsc");

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
    /// True when trying again later may succeed (the registry was unreachable); false when the
    /// bytes or the event themselves are at fault and a retry would fail the same way.
    pub fn is_retryable(&self) -> bool {
        match self {
            CodecError::Registry(err) => err.is_retryable(),
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

/// Encodes and decodes [`OrderEvent`]s in wire format against a [`SchemaRegistry`].
pub struct OrderEventCodec {
    registry: Arc<dyn SchemaRegistry>,
    subject: String,
    schema: Schema,
    writer_id: OnceCell<u32>,
    writers: Mutex<HashMap<u32, Arc<Schema>>>,
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
        Ok(Self {
            registry,
            subject: format!("{topic}-value"),
            schema: Schema::parse_str(ORDER_EVENT_SCHEMA)?,
            writer_id: OnceCell::new(),
            writers: Mutex::new(HashMap::new()),
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
        let datum = GenericDatumWriter::builder(&self.schema)
            .build()?
            .write_value_to_vec(to_value(event)?)?;
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
        let writer = self.writer_schema(id).await?;
        let mut body = &bytes[5..];
        let value = GenericDatumReader::builder(&writer)
            .reader_schema(&self.schema)
            .build()?
            .read_value(&mut body)?;
        let mut event = from_value(value)?;
        // The wire carries scale 4 for every currency; readers get the currency's own.
        event.fit_amounts_to_currency();
        Ok(event)
    }

    async fn writer_schema(&self, id: u32) -> Result<Arc<Schema>, CodecError> {
        if let Some(schema) = self.cached_writer(id) {
            return Ok(schema);
        }
        let text = self.registry.schema(id).await?;
        let schema = Arc::new(Schema::parse_str(&text)?);
        self.writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    fn cached_writer(&self, id: u32) -> Option<Arc<Schema>> {
        self.writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned()
    }
}

// ---------------------------------------------------------------------------------------------
// Model → Avro value. Field order must follow order_event.avsc.

fn to_value(e: &OrderEvent) -> Result<Value, CodecError> {
    Ok(Value::Record(vec![
        ("order_key".into(), Value::String(e.order_key.clone())),
        ("source".into(), Value::String(e.source.clone())),
        ("account".into(), Value::String(e.account.clone())),
        (
            "source_order_id".into(),
            Value::String(e.source_order_id.clone()),
        ),
        ("order_number".into(), opt_string(&e.order_number)),
        (
            "event_type".into(),
            enum_value(e.event_type as u32, e.event_type.as_str()),
        ),
        (
            "status".into(),
            enum_value(e.status as u32, e.status.as_str()),
        ),
        (
            "payment_status".into(),
            enum_value(e.payment_status as u32, e.payment_status.as_str()),
        ),
        ("version".into(), Value::Long(e.version)),
        ("currency".into(), Value::String(e.currency.clone())),
        ("totals".into(), totals_value(&e.totals)?),
        (
            "line_items".into(),
            Value::Array(
                e.line_items
                    .iter()
                    .map(line_value)
                    .collect::<Result<_, _>>()?,
            ),
        ),
        (
            "customer".into(),
            optional(e.customer.as_ref().map(customer_value)),
        ),
        (
            "shipping_address".into(),
            optional(e.shipping_address.as_ref().map(address_value)),
        ),
        (
            "billing_address".into(),
            optional(e.billing_address.as_ref().map(address_value)),
        ),
        (
            "source_created_at".into(),
            opt_timestamp(e.source_created_at),
        ),
        (
            "source_updated_at".into(),
            opt_timestamp(e.source_updated_at),
        ),
        (
            "attribution".into(),
            optional(e.attribution.as_ref().map(attribution_value)),
        ),
        ("lineage".into(), lineage_value(&e.lineage)),
    ]))
}

fn enum_value(index: u32, symbol: &str) -> Value {
    Value::Enum(index, symbol.to_owned())
}

fn optional(value: Option<Value>) -> Value {
    match value {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

fn opt_string(s: &Option<String>) -> Value {
    optional(s.clone().map(Value::String))
}

fn opt_timestamp(t: Option<DateTime<Utc>>) -> Value {
    optional(t.map(|t| Value::TimestampMillis(t.timestamp_millis())))
}

/// Encodes an amount as the schema's decimal: the unscaled value at scale 4, as big-endian
/// two's complement in 8 bytes.
///
/// Eight, not the fewest: apache-avro's reader refuses a bytes-backed decimal whose length
/// could not hold the declared precision (18 digits need 8 bytes), and the Avro spec allows
/// any length, so a fixed width keeps every reader happy.
fn decimal_value(amount: Decimal) -> Result<Value, CodecError> {
    let mut scaled = amount;
    scaled.rescale(DECIMAL_SCALE);
    // rescale rounds; refuse rather than silently drop a fifth decimal place.
    if scaled != amount {
        return Err(CodecError::Amount(amount));
    }
    let unscaled = scaled.mantissa();
    if unscaled.unsigned_abs() >= 10u128.pow(DECIMAL_PRECISION) {
        return Err(CodecError::Amount(amount));
    }
    // |unscaled| < 10^18 < 2^63, so it fits an i64 exactly.
    let narrow = i64::try_from(unscaled).map_err(|_| CodecError::Amount(amount))?;
    Ok(Value::Decimal(apache_avro::Decimal::from(
        narrow.to_be_bytes(),
    )))
}

fn totals_value(t: &Totals) -> Result<Value, CodecError> {
    Ok(Value::Record(vec![
        ("total".into(), decimal_value(t.total)?),
        ("subtotal".into(), decimal_value(t.subtotal)?),
        ("tax".into(), decimal_value(t.tax)?),
        ("shipping".into(), decimal_value(t.shipping)?),
        ("discount".into(), decimal_value(t.discount)?),
    ]))
}

fn line_value(l: &LineItem) -> Result<Value, CodecError> {
    Ok(Value::Record(vec![
        ("line_id".into(), opt_string(&l.line_id)),
        ("sku".into(), opt_string(&l.sku)),
        ("title".into(), Value::String(l.title.clone())),
        ("quantity".into(), Value::Long(l.quantity)),
        ("unit_price".into(), decimal_value(l.unit_price)?),
        ("discount".into(), decimal_value(l.discount)?),
        ("tax".into(), decimal_value(l.tax)?),
    ]))
}

fn customer_value(c: &Customer) -> Value {
    Value::Record(vec![
        ("id".into(), opt_string(&c.id)),
        ("email".into(), opt_string(&c.email)),
        ("name".into(), opt_string(&c.name)),
    ])
}

fn address_value(a: &Address) -> Value {
    Value::Record(vec![
        ("name".into(), opt_string(&a.name)),
        ("company".into(), opt_string(&a.company)),
        ("line1".into(), opt_string(&a.line1)),
        ("line2".into(), opt_string(&a.line2)),
        ("city".into(), opt_string(&a.city)),
        ("region".into(), opt_string(&a.region)),
        ("postal_code".into(), opt_string(&a.postal_code)),
        ("country_code".into(), opt_string(&a.country_code)),
        ("phone".into(), opt_string(&a.phone)),
    ])
}

fn touch_value(t: &Touchpoint) -> Value {
    Value::Record(vec![
        ("channel".into(), Value::String(t.channel.clone())),
        ("campaign".into(), opt_string(&t.campaign)),
        ("source".into(), opt_string(&t.source)),
        ("medium".into(), opt_string(&t.medium)),
        ("occurred_at".into(), opt_timestamp(t.occurred_at)),
        (
            "credit_share".into(),
            optional(t.credit_share.map(Value::Double)),
        ),
    ])
}

fn attribution_value(a: &Attribution) -> Value {
    Value::Record(vec![
        (
            "first_touch".into(),
            optional(a.first_touch.as_ref().map(touch_value)),
        ),
        (
            "last_touch".into(),
            optional(a.last_touch.as_ref().map(touch_value)),
        ),
        (
            "touchpoints".into(),
            Value::Array(a.touchpoints.iter().map(touch_value).collect()),
        ),
    ])
}

fn lineage_value(l: &Lineage) -> Value {
    Value::Record(vec![
        ("raw_topic".into(), Value::String(l.raw_topic.clone())),
        ("raw_partition".into(), Value::Int(l.raw_partition)),
        ("raw_offset".into(), Value::Long(l.raw_offset)),
        ("event_id".into(), Value::String(l.event_id.clone())),
        (
            "received_at".into(),
            Value::TimestampMillis(l.received_at.timestamp_millis()),
        ),
        ("origin".into(), Value::String(l.origin.clone())),
    ])
}

// ---------------------------------------------------------------------------------------------
// Avro value → model. Values arrive resolved against our schema, so names are ours.
// Matches on apache-avro's `Value` name the one expected variant and treat every other as a
// shape error, so the wildcard lint (meant for our own classification enums) is off here.

struct Fields {
    what: &'static str,
    map: HashMap<String, Value>,
}

#[allow(clippy::wildcard_enum_match_arm)]
impl Fields {
    fn of(value: Value, what: &'static str) -> Result<Self, CodecError> {
        match unwrap_union(value) {
            Value::Record(fields) => Ok(Self {
                what,
                map: fields.into_iter().collect(),
            }),
            other => Err(shape(what, format!("expected a record, got {other:?}"))),
        }
    }

    fn take(&mut self, field: &'static str) -> Result<Value, CodecError> {
        self.map
            .remove(field)
            .map(unwrap_union)
            .ok_or_else(|| shape(self.what, format!("missing field {field}")))
    }

    fn string(&mut self, field: &'static str) -> Result<String, CodecError> {
        match self.take(field)? {
            Value::String(s) => Ok(s),
            other => Err(shape(field, format!("expected a string, got {other:?}"))),
        }
    }

    fn opt_string(&mut self, field: &'static str) -> Result<Option<String>, CodecError> {
        match self.take(field)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(shape(
                field,
                format!("expected a string or null, got {other:?}"),
            )),
        }
    }

    fn long(&mut self, field: &'static str) -> Result<i64, CodecError> {
        match self.take(field)? {
            Value::Long(n) => Ok(n),
            Value::Int(n) => Ok(i64::from(n)),
            other => Err(shape(field, format!("expected a long, got {other:?}"))),
        }
    }

    fn int(&mut self, field: &'static str) -> Result<i32, CodecError> {
        match self.take(field)? {
            Value::Int(n) => Ok(n),
            other => Err(shape(field, format!("expected an int, got {other:?}"))),
        }
    }

    fn decimal(&mut self, field: &'static str) -> Result<Decimal, CodecError> {
        match self.take(field)? {
            Value::Decimal(d) => {
                let bytes = Vec::<u8>::try_from(&d)
                    .map_err(|err| shape(field, format!("bad decimal: {err}")))?;
                decimal_from_bytes(&bytes).ok_or_else(|| shape(field, "decimal too wide".into()))
            }
            other => Err(shape(field, format!("expected a decimal, got {other:?}"))),
        }
    }

    fn timestamp(&mut self, field: &'static str) -> Result<DateTime<Utc>, CodecError> {
        match self.take(field)? {
            Value::TimestampMillis(ms) | Value::Long(ms) => millis(field, ms),
            other => Err(shape(
                field,
                format!("expected timestamp-millis, got {other:?}"),
            )),
        }
    }

    fn opt_timestamp(&mut self, field: &'static str) -> Result<Option<DateTime<Utc>>, CodecError> {
        match self.take(field)? {
            Value::Null => Ok(None),
            Value::TimestampMillis(ms) | Value::Long(ms) => millis(field, ms).map(Some),
            other => Err(shape(
                field,
                format!("expected timestamp-millis, got {other:?}"),
            )),
        }
    }

    fn symbol(&mut self, field: &'static str) -> Result<String, CodecError> {
        match self.take(field)? {
            Value::Enum(_, symbol) => Ok(symbol),
            other => Err(shape(field, format!("expected an enum, got {other:?}"))),
        }
    }

    fn optional<T>(
        &mut self,
        field: &'static str,
        read: impl FnOnce(Value) -> Result<T, CodecError>,
    ) -> Result<Option<T>, CodecError> {
        match self.take(field)? {
            Value::Null => Ok(None),
            value => read(value).map(Some),
        }
    }

    fn array<T>(
        &mut self,
        field: &'static str,
        read: impl Fn(Value) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        match self.take(field)? {
            Value::Array(items) => items.into_iter().map(read).collect(),
            other => Err(shape(field, format!("expected an array, got {other:?}"))),
        }
    }
}

fn shape(field: &'static str, problem: String) -> CodecError {
    CodecError::Shape { field, problem }
}

#[allow(clippy::wildcard_enum_match_arm)]
fn unwrap_union(value: Value) -> Value {
    match value {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

fn millis(field: &'static str, ms: i64) -> Result<DateTime<Utc>, CodecError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| shape(field, format!("timestamp {ms} out of range")))
}

fn decimal_from_bytes(bytes: &[u8]) -> Option<Decimal> {
    if bytes.is_empty() {
        return Some(Decimal::ZERO);
    }
    if bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xFF } else { 0x00 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    Decimal::try_from_i128_with_scale(i128::from_be_bytes(wide), DECIMAL_SCALE).ok()
}

fn from_value(value: Value) -> Result<OrderEvent, CodecError> {
    let mut f = Fields::of(value, "OrderEvent")?;
    let currency = f.string("currency");
    Ok(OrderEvent {
        order_key: f.string("order_key")?,
        source: f.string("source")?,
        account: f.string("account")?,
        source_order_id: f.string("source_order_id")?,
        order_number: f.opt_string("order_number")?,
        event_type: event_type_from(&f.symbol("event_type")?),
        status: status_from(&f.symbol("status")?),
        payment_status: payment_from(&f.symbol("payment_status")?),
        version: f.long("version")?,
        currency: currency?,
        totals: totals_from(f.take("totals")?)?,
        line_items: f.array("line_items", line_from)?,
        customer: f.optional("customer", customer_from)?,
        shipping_address: f.optional("shipping_address", address_from)?,
        billing_address: f.optional("billing_address", address_from)?,
        source_created_at: f.opt_timestamp("source_created_at")?,
        source_updated_at: f.opt_timestamp("source_updated_at")?,
        attribution: f.optional("attribution", attribution_from)?,
        lineage: lineage_from(f.take("lineage")?)?,
    })
}

fn totals_from(value: Value) -> Result<Totals, CodecError> {
    let mut f = Fields::of(value, "Totals")?;
    Ok(Totals {
        total: f.decimal("total")?,
        subtotal: f.decimal("subtotal")?,
        tax: f.decimal("tax")?,
        shipping: f.decimal("shipping")?,
        discount: f.decimal("discount")?,
    })
}

fn line_from(value: Value) -> Result<LineItem, CodecError> {
    let mut f = Fields::of(value, "LineItem")?;
    Ok(LineItem {
        line_id: f.opt_string("line_id")?,
        sku: f.opt_string("sku")?,
        title: f.string("title")?,
        quantity: f.long("quantity")?,
        unit_price: f.decimal("unit_price")?,
        discount: f.decimal("discount")?,
        tax: f.decimal("tax")?,
    })
}

fn customer_from(value: Value) -> Result<Customer, CodecError> {
    let mut f = Fields::of(value, "Customer")?;
    Ok(Customer {
        id: f.opt_string("id")?,
        email: f.opt_string("email")?,
        name: f.opt_string("name")?,
    })
}

fn address_from(value: Value) -> Result<Address, CodecError> {
    let mut f = Fields::of(value, "Address")?;
    Ok(Address {
        name: f.opt_string("name")?,
        company: f.opt_string("company")?,
        line1: f.opt_string("line1")?,
        line2: f.opt_string("line2")?,
        city: f.opt_string("city")?,
        region: f.opt_string("region")?,
        postal_code: f.opt_string("postal_code")?,
        country_code: f.opt_string("country_code")?,
        phone: f.opt_string("phone")?,
    })
}

#[allow(clippy::wildcard_enum_match_arm)]
fn touch_from(value: Value) -> Result<Touchpoint, CodecError> {
    let mut f = Fields::of(value, "Touchpoint")?;
    Ok(Touchpoint {
        channel: f.string("channel")?,
        campaign: f.opt_string("campaign")?,
        source: f.opt_string("source")?,
        medium: f.opt_string("medium")?,
        occurred_at: f.opt_timestamp("occurred_at")?,
        credit_share: f.optional("credit_share", |v| match v {
            Value::Double(share) => Ok(share),
            other => Err(shape(
                "credit_share",
                format!("expected a double, got {other:?}"),
            )),
        })?,
    })
}

fn attribution_from(value: Value) -> Result<Attribution, CodecError> {
    let mut f = Fields::of(value, "Attribution")?;
    Ok(Attribution {
        first_touch: f.optional("first_touch", touch_from)?,
        last_touch: f.optional("last_touch", touch_from)?,
        touchpoints: f.array("touchpoints", touch_from)?,
    })
}

fn lineage_from(value: Value) -> Result<Lineage, CodecError> {
    let mut f = Fields::of(value, "Lineage")?;
    Ok(Lineage {
        raw_topic: f.string("raw_topic")?,
        raw_partition: f.int("raw_partition")?,
        raw_offset: f.long("raw_offset")?,
        event_id: f.string("event_id")?,
        received_at: f.timestamp("received_at")?,
        origin: f.string("origin")?,
    })
}

// Unknown symbols cannot reach here: the schema's enum defaults map them to UNKNOWN during
// resolution. The fallbacks below cover a writer schema without defaults.
fn event_type_from(symbol: &str) -> EventType {
    match symbol {
        "CREATED" => EventType::Created,
        "UPDATED" => EventType::Updated,
        "CANCELLED" => EventType::Cancelled,
        "REFUNDED" => EventType::Refunded,
        "FULFILLED" => EventType::Fulfilled,
        _ => EventType::Unknown,
    }
}

fn status_from(symbol: &str) -> OrderStatus {
    match symbol {
        "OPEN" => OrderStatus::Open,
        "PARTIALLY_FULFILLED" => OrderStatus::PartiallyFulfilled,
        "FULFILLED" => OrderStatus::Fulfilled,
        "CANCELLED" => OrderStatus::Cancelled,
        "CLOSED" => OrderStatus::Closed,
        _ => OrderStatus::Unknown,
    }
}

fn payment_from(symbol: &str) -> PaymentStatus {
    match symbol {
        "PENDING" => PaymentStatus::Pending,
        "AUTHORIZED" => PaymentStatus::Authorized,
        "PAID" => PaymentStatus::Paid,
        "PARTIALLY_PAID" => PaymentStatus::PartiallyPaid,
        "PARTIALLY_REFUNDED" => PaymentStatus::PartiallyRefunded,
        "REFUNDED" => PaymentStatus::Refunded,
        "VOIDED" => PaymentStatus::Voided,
        _ => PaymentStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::registry::EmbeddedRegistry;
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
