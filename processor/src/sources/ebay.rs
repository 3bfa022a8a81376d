//! eBay Notification API: `ORDER_CONFIRMATION` names the order (`notification.data.orderId`)
//! and nothing else ("the seller looks up the orderId … and then issues a GetOrders call"),
//! so it becomes a partial event: created, open, paid. The version is `eventDate`.

use orderbridge_schemas::{EventType, OrderEvent, OrderStatus, PaymentStatus};
use serde::Deserialize;

use super::common::{self, invalid, parse, timestamp, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes eBay notifications.
#[derive(Debug, Clone, Copy)]
pub struct EbayNormalizer;

#[derive(Debug, Deserialize)]
struct Notification {
    metadata: Option<Metadata>,
    notification: Option<Body>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    topic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    event_date: Option<String>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    order_id: Option<Id>,
}

impl Normalizer for EbayNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let notification: Notification = parse(raw.body)?;
        let topic = notification
            .metadata
            .and_then(|m| m.topic)
            .unwrap_or_else(|| raw.event_type.to_owned());
        if topic != "ORDER_CONFIRMATION" {
            return Err(NormalizeError::Unsupported(topic));
        }
        let body = notification
            .notification
            .ok_or_else(|| invalid("no notification"))?;
        let id = common::required_id(
            body.data.as_ref().and_then(|d| d.order_id.as_ref()),
            "notification.data.orderId",
        )?;
        let mut out = common::event(raw, &id);
        out.partial = true;
        out.event_type = EventType::Created;
        out.status = OrderStatus::Open;
        out.payment_status = PaymentStatus::Paid;
        let (at, original) = timestamp("notification.eventDate", body.event_date.as_deref())?;
        out.source_created_at = at;
        out.source_created_at_original = original;
        out.version = common::version(at, raw);
        Ok(out)
    }
}
