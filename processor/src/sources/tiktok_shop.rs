//! TikTok Shop: type 1 (order status change) is thin, `data {order_id, order_status,
//! update_time}`, so it becomes a partial event (a status update); totals, lines and the
//! buyer come from the order API, not from here. Other types are not order events.
//!
//! Statuses (TikTok's): `UNPAID` → open, payment pending; `ON_HOLD`, `AWAITING_SHIPMENT`,
//! `AWAITING_COLLECTION` → open, paid; `IN_TRANSIT` → fulfilled (shipped), `DELIVERED` →
//! fulfilled, `COMPLETED` → closed, `CANCELLED` → cancelled. The version is `update_time`.

use orderbridge_schemas::{EventType, OrderEvent, OrderStatus, PaymentStatus};
use serde::Deserialize;

use super::common::{self, invalid, parse, unix_seconds, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes TikTok Shop notifications.
#[derive(Debug, Clone, Copy)]
pub struct TiktokShopNormalizer;

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "type")]
    kind: Option<i64>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    order_id: Option<Id>,
    order_status: Option<String>,
    update_time: Option<i64>,
}

impl Normalizer for TiktokShopNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let notification: Notification = parse(raw.body)?;
        match notification.kind {
            Some(1) => {}
            Some(other) => return Err(NormalizeError::Unsupported(format!("type {other}"))),
            None => return Err(invalid("notification has no type")),
        }
        let data = notification
            .data
            .ok_or_else(|| invalid("notification has no data"))?;
        let id = common::required_id(data.order_id.as_ref(), "data.order_id")?;
        let status = data
            .order_status
            .ok_or_else(|| invalid("data.order_status is missing"))?;
        let (status, payment, event_type) = match status.trim() {
            "UNPAID" => (
                OrderStatus::Open,
                PaymentStatus::Pending,
                EventType::Updated,
            ),
            "ON_HOLD" | "AWAITING_SHIPMENT" | "AWAITING_COLLECTION" => {
                (OrderStatus::Open, PaymentStatus::Paid, EventType::Updated)
            }
            "IN_TRANSIT" | "DELIVERED" => (
                OrderStatus::Fulfilled,
                PaymentStatus::Paid,
                EventType::Fulfilled,
            ),
            "COMPLETED" => (OrderStatus::Closed, PaymentStatus::Paid, EventType::Updated),
            "CANCELLED" => (
                OrderStatus::Cancelled,
                PaymentStatus::Unknown,
                EventType::Cancelled,
            ),
            other => return Err(invalid(&format!("unknown order_status {other:?}"))),
        };
        let mut out = common::event(raw, &id);
        out.partial = true;
        out.event_type = event_type;
        out.status = status;
        out.payment_status = payment;
        let (updated_at, original) = unix_seconds("data.update_time", data.update_time)?;
        out.source_updated_at = updated_at;
        out.source_updated_at_original = original;
        out.version = common::version(updated_at, raw);
        Ok(out)
    }
}
