//! Ordermentum, the wholesale platform: `order_created` and `order_updated` (seed 004). The
//! documented body is thin, `{event, timestamp, data: {id, createdAt, updatedAt, total}}`,
//! with neither lines nor currency, so each becomes a partial event keyed by `data.id`;
//! the order API (`GET /v1/orders/{id}`) has the rest. Invoices and credit notes are not
//! order events yet. The version is `data.updatedAt`.

use orderbridge_schemas::{EventType, OrderEvent, OrderStatus};
use serde::Deserialize;

use super::common::{self, invalid, parse, timestamp, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes Ordermentum webhooks.
#[derive(Debug, Clone, Copy)]
pub struct OrdermentumNormalizer;

#[derive(Debug, Deserialize)]
struct Webhook {
    event: Option<String>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    id: Option<Id>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl Normalizer for OrdermentumNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let webhook: Webhook = parse(raw.body)?;
        let kind = webhook.event.as_deref().unwrap_or(raw.event_type);
        let event_type = match kind {
            "order_created" => EventType::Created,
            "order_updated" => EventType::Updated,
            other => return Err(NormalizeError::Unsupported(other.to_owned())),
        };
        let data = webhook.data.ok_or_else(|| invalid("no data"))?;
        let id = common::required_id(data.id.as_ref(), "data.id")?;
        let mut out = common::event(raw, &id);
        out.partial = true;
        out.event_type = event_type;
        out.status = if event_type == EventType::Created {
            OrderStatus::Open
        } else {
            OrderStatus::Unknown
        };
        let (created_at, created_original) =
            timestamp("data.createdAt", data.created_at.as_deref())?;
        let (updated_at, updated_original) =
            timestamp("data.updatedAt", data.updated_at.as_deref())?;
        out.source_created_at = created_at;
        out.source_created_at_original = created_original;
        out.source_updated_at = updated_at;
        out.source_updated_at_original = updated_original;
        out.version = common::version(updated_at.or(created_at), raw);
        Ok(out)
    }
}
