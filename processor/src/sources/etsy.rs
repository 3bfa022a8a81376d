//! Etsy: webhooks are thin, `{event_type, resource_url, shop_id}`, and name the receipt (the
//! order) only in `resource_url`. Each becomes a partial event: `order.paid` → open, paid;
//! `order.canceled` → cancelled; `order.shipped` → fulfilled; `order.delivered` →
//! fulfilled. Totals, lines and the buyer come from the receipt API. Etsy's body has no time,
//! so the version is when the webhook was received.

use orderbridge_schemas::{EventType, OrderEvent, OrderStatus, PaymentStatus};
use serde::Deserialize;

use super::common::{self, invalid, parse};
use super::{NormalizeError, Normalizer, RawRecord};

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
        Ok(out)
    }
}
