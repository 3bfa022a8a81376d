//! Avro value → model. Values arrive resolved against our schema, so names are ours.
//! Matches on apache-avro's `Value` name the one expected variant and treat every other as a
//! shape error, so the wildcard lint (meant for our own classification enums) is off here.

use std::collections::HashMap;

use apache_avro::types::Value;
use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use super::{CodecError, DECIMAL_SCALE};
use crate::model::*;

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

    fn boolean(&mut self, field: &'static str) -> Result<bool, CodecError> {
        match self.take(field)? {
            Value::Boolean(b) => Ok(b),
            other => Err(shape(field, format!("expected a boolean, got {other:?}"))),
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

pub(super) fn decimal_from_bytes(bytes: &[u8]) -> Option<Decimal> {
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

pub(super) fn from_value(value: Value) -> Result<OrderEvent, CodecError> {
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
        partial: f.boolean("partial")?,
        source_created_at_original: f.opt_string("source_created_at_original")?,
        source_updated_at_original: f.opt_string("source_updated_at_original")?,
        shipment: f.optional("shipment", shipment_from)?,
        refund: f.optional("refund", refund_from)?,
    })
}

fn shipment_from(value: Value) -> Result<Shipment, CodecError> {
    let mut f = Fields::of(value, "Shipment")?;
    Ok(Shipment {
        shipment_id: f.opt_string("shipment_id")?,
        carrier: f.opt_string("carrier")?,
        tracking_code: f.opt_string("tracking_code")?,
        status: f.string("status")?,
        estimated_delivery_at: f.opt_timestamp("estimated_delivery_at")?,
    })
}

fn refund_from(value: Value) -> Result<Refund, CodecError> {
    let mut f = Fields::of(value, "Refund")?;
    Ok(Refund {
        refund_id: f.string("refund_id")?,
        amount: f.decimal("amount")?,
        reason: f.opt_string("reason")?,
        lines: f.array("lines", |value| {
            let mut f = Fields::of(value, "RefundLine")?;
            Ok(RefundLine {
                line_id: f.opt_string("line_id")?,
                sku: f.opt_string("sku")?,
                quantity: f.long("quantity")?,
                amount: f.decimal("amount")?,
            })
        })?,
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
