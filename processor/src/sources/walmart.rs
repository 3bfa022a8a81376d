//! Walmart Marketplace: `PO_CREATED` (alone, or as the `subEventType` of `ORDER_UPDATES`)
//! carries the purchase order's lines with SKU and quantity but no prices, currency or
//! buyer, so it becomes a partial created event; the order API has the rest. `FRAUD_CANCEL`
//! (a sub-event of `ORDER_UPDATES`) cancels the whole purchase order: a partial cancelled
//! event. `PO_LINE_AUTOCANCELLED` and `INTENT_TO_CANCEL` do not say what the order is now and
//! are unsupported. The version is `source.eventTime`.

use orderbridge_schemas::{EventType, LineItem, OrderEvent, OrderStatus};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::common::{self, invalid, parse, timestamp, trimmed, Amount, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes Walmart notifications.
#[derive(Debug, Clone, Copy)]
pub struct WalmartNormalizer;

#[derive(Debug, Deserialize)]
struct Notification {
    source: Option<SourceInfo>,
    payload: Option<Payload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceInfo {
    event_type: Option<String>,
    event_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    sub_event_type: Option<String>,
    purchase_order_id: Option<Id>,
    customer_order_id: Option<Id>,
    order_date: Option<String>,
    #[serde(default)]
    order_lines: Vec<Line>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    line_number: Option<Id>,
    sku: Option<String>,
    product_name: Option<String>,
    quantity: Option<Quantity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Quantity {
    measurement_value: Option<Amount>,
}

impl Normalizer for WalmartNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let notification: Notification = parse(raw.body)?;
        let source = notification.source.ok_or_else(|| invalid("no source"))?;
        let payload = notification.payload.ok_or_else(|| invalid("no payload"))?;
        let kind = match source.event_type.as_deref() {
            Some("ORDER_UPDATES") => payload.sub_event_type.clone().unwrap_or_default(),
            other => other.unwrap_or_default().to_owned(),
        };
        let id = common::required_id(payload.purchase_order_id.as_ref(), "purchaseOrderId")?;
        match kind.as_str() {
            "PO_CREATED" => {}
            // Walmart cancelled the whole purchase order; nothing else is carried.
            "FRAUD_CANCEL" => {
                let mut out = common::event(raw, &id);
                out.partial = true;
                out.event_type = EventType::Cancelled;
                out.status = OrderStatus::Cancelled;
                let (event_at, original) = timestamp("eventTime", source.event_time.as_deref())?;
                out.source_updated_at = event_at;
                out.source_updated_at_original = original;
                out.version = common::version(event_at, raw);
                return Ok(out);
            }
            // A line cancelled, or a buyer's request to cancel: neither says what the order
            // is now, so they wait for the order API (kept, replayable).
            _ => return Err(NormalizeError::Unsupported(kind)),
        }
        let mut out = common::event(raw, &id);
        out.partial = true;
        out.event_type = EventType::Created;
        out.status = OrderStatus::Open;
        out.order_number = payload.customer_order_id.map(|id| id.to_string());
        out.line_items = payload
            .order_lines
            .into_iter()
            .map(|line| {
                let quantity = line
                    .quantity
                    .and_then(|q| q.measurement_value)
                    .ok_or_else(|| invalid("an order line has no quantity"))?
                    .parse("orderLines.quantity.measurementValue")?;
                Ok(LineItem {
                    line_id: line.line_number.map(|n| n.to_string()),
                    sku: trimmed(line.sku),
                    title: trimmed(line.product_name).unwrap_or_default(),
                    quantity: quantity
                        .fract()
                        .is_zero()
                        .then(|| quantity.to_i64())
                        .flatten()
                        .ok_or_else(|| invalid("an order line's quantity is not whole"))?,
                    unit_price: Decimal::ZERO,
                    discount: Decimal::ZERO,
                    tax: Decimal::ZERO,
                })
            })
            .collect::<Result<_, NormalizeError>>()?;
        let (created_at, created_original) = timestamp("orderDate", payload.order_date.as_deref())?;
        let (event_at, event_original) = timestamp("eventTime", source.event_time.as_deref())?;
        out.source_created_at = created_at;
        out.source_created_at_original = created_original;
        out.source_updated_at = event_at;
        out.source_updated_at_original = event_original;
        out.version = common::version(event_at, raw);
        Ok(out)
    }
}
