//! Model → Avro value. Field order must follow the schema (`avro/order_event/`).

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{CodecError, DECIMAL_PRECISION, DECIMAL_SCALE};
use crate::model::*;

pub(super) fn to_value(e: &OrderEvent) -> Result<Value, CodecError> {
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
        ("partial".into(), Value::Boolean(e.partial)),
        (
            "source_created_at_original".into(),
            opt_string(&e.source_created_at_original),
        ),
        (
            "source_updated_at_original".into(),
            opt_string(&e.source_updated_at_original),
        ),
        (
            "shipment".into(),
            optional(e.shipment.as_ref().map(shipment_value)),
        ),
        (
            "refund".into(),
            optional(e.refund.as_ref().map(refund_value).transpose()?),
        ),
    ]))
}

fn shipment_value(s: &Shipment) -> Value {
    Value::Record(vec![
        ("shipment_id".into(), opt_string(&s.shipment_id)),
        ("carrier".into(), opt_string(&s.carrier)),
        ("tracking_code".into(), opt_string(&s.tracking_code)),
        ("status".into(), Value::String(s.status.clone())),
        (
            "estimated_delivery_at".into(),
            opt_timestamp(s.estimated_delivery_at),
        ),
    ])
}

fn refund_value(r: &Refund) -> Result<Value, CodecError> {
    let lines = r
        .lines
        .iter()
        .map(|l| {
            Ok(Value::Record(vec![
                ("line_id".into(), opt_string(&l.line_id)),
                ("sku".into(), opt_string(&l.sku)),
                ("quantity".into(), Value::Long(l.quantity)),
                ("amount".into(), decimal_value(l.amount)?),
            ]))
        })
        .collect::<Result<_, CodecError>>()?;
    Ok(Value::Record(vec![
        ("refund_id".into(), Value::String(r.refund_id.clone())),
        ("amount".into(), decimal_value(r.amount)?),
        ("reason".into(), opt_string(&r.reason)),
        ("lines".into(), Value::Array(lines)),
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
pub(super) fn decimal_value(amount: Decimal) -> Result<Value, CodecError> {
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
