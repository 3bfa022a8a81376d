//! Etsy: webhooks are thin, `{event_type, resource_url, shop_id}`, and name the receipt (the
//! order) only in `resource_url`. Each becomes a partial event: `order.paid` → open, paid;
//! `order.canceled` → cancelled; `order.shipped` → fulfilled; `order.delivered` →
//! fulfilled. Totals, lines and the buyer come from the receipt API.
//!
//! Etsy's body has no time, and a delivery Etsy retries arrives later than the events after
//! it: with versions from receive time alone, a late retry of `order.paid` would come out
//! newer than the `order.shipped` it preceded and bring the order back to open. So the
//! version is the receive time moved back by a step per stage still ahead in the order's
//! life (paid, shipped, delivered, cancelled), each step [`RETRY_WINDOW`] long: an event of an
//! earlier stage received up to that much later still orders before a later stage's, while
//! events of one stage order by when they came.

use orderbridge_schemas::{EventType, OrderEvent, OrderStatus, PaymentStatus};
use serde::Deserialize;

use super::common::{self, invalid, parse};
use super::{NormalizeError, Normalizer, RawRecord};

/// How late a retried delivery may arrive and still order before the next stage's event.
pub const RETRY_WINDOW: chrono::Duration = chrono::Duration::days(3);

/// The stages of an Etsy order, in the order they happen (cancelled is last: nothing follows).
const STAGES: [&str; 4] = [
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.canceled",
];

/// Normalizes Etsy webhooks.
#[derive(Debug, Clone, Copy)]
pub struct EtsyNormalizer;

#[derive(Debug, Deserialize)]
struct Webhook {
    event_type: Option<String>,
    resource_url: Option<String>,
}

impl Normalizer for EtsyNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let webhook: Webhook = parse(raw.body)?;
        let kind = webhook.event_type.as_deref().unwrap_or(raw.event_type);
        let (event_type, status, payment) = match kind {
            "order.paid" => (EventType::Updated, OrderStatus::Open, PaymentStatus::Paid),
            "order.canceled" => (
                EventType::Cancelled,
                OrderStatus::Cancelled,
                PaymentStatus::Unknown,
            ),
            "order.shipped" | "order.delivered" => (
                EventType::Fulfilled,
                OrderStatus::Fulfilled,
                PaymentStatus::Unknown,
            ),
            other => return Err(NormalizeError::Unsupported(other.to_owned())),
        };
        // .../shops/{shop_id}/receipts/{receipt_id}: the same id ingest keyed the record by.
        let receipt = webhook
            .resource_url
            .as_deref()
            .and_then(|url| url.trim_end_matches('/').rsplit_once("/receipts/"))
            .map(|(_, id)| id.trim().to_owned())
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .ok_or_else(|| invalid("resource_url names no receipt"))?;
        let mut out = common::event(raw, &receipt);
        out.partial = true;
        out.event_type = event_type;
        out.status = status;
        out.payment_status = payment;
        let stage = STAGES.iter().position(|s| *s == kind).unwrap_or(0);
        let ahead = i32::try_from(STAGES.len() - 1 - stage).unwrap_or(0);
        out.version = common::version(Some(raw.received_at - RETRY_WINDOW * ahead), raw);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::{TimeZone, Utc};
    use orderbridge_schemas::Source;

    fn version(event_type: &str, received_ms: i64) -> i64 {
        let body = format!(
            r#"{{"event_type":"{event_type}","resource_url":"https://openapi.etsy.com/v3/application/shops/1/receipts/7","shop_id":1}}"#
        );
        let raw = RawRecord {
            source: Source::Etsy,
            account: "1",
            event_type,
            event_id: "msg",
            received_at: Utc.timestamp_millis_opt(received_ms).unwrap(),
            origin: "webhook",
            topic: "orders.raw.v1",
            partition: 0,
            offset: 0,
            body: body.as_bytes(),
        };
        EtsyNormalizer.normalize(&raw).unwrap().version
    }

    #[test]
    fn a_late_retry_of_an_earlier_stage_orders_before_the_later_stage() {
        let t = 1_767_225_600_000;
        let hour = 3_600_000;
        // Shipped at t; the paid event before it retried by Etsy, received two hours later.
        assert!(version("order.paid", t + 2 * hour) < version("order.shipped", t));
        assert!(version("order.shipped", t + 2 * hour) < version("order.delivered", t));
        assert!(version("order.delivered", t + 2 * hour) < version("order.canceled", t));
        // Within a stage, later is newer.
        assert!(version("order.paid", t) < version("order.paid", t + 1));
    }
}
