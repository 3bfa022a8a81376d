//! Ordermentum, the wholesale platform: `order_created` and `order_updated` (seed 004). The
//! documented body is thin, `{event, timestamp, data: {id, createdAt, updatedAt, total}}`,
//! with neither lines nor currency, so each becomes a partial event keyed by `data.id`;
//! the order API (`GET /v1/orders/{id}`) has the rest. The version is `data.updatedAt`.
//!
//! Invoices and credit notes are about an order, named by `data.orderId` (as ingest keys
//! them); the seed lists these events without their bodies, so only what they must carry is
//! read. `invoice_created` / `invoice_updated` become a partial update of the order's payment
//! status (`paid` → paid, `unpaid`/`pending`/`overdue` → pending, anything else unchanged).
//! `credit_note_completed` becomes a partial `REFUNDED` event: the credit note's `total` in
//! its `currency` (a credit note without a currency is refused, not given one by guess).
//! Credit notes not yet completed, cancelled ones and purchaser events change no order and are
//! `unsupported`: kept in the dead-letter topic, replayable.

use orderbridge_schemas::{EventType, OrderEvent, OrderStatus, PaymentStatus, Refund};
use serde::Deserialize;

use super::common::{self, invalid, money, parse, timestamp, trimmed, Amount, Id};
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
    order_id: Option<Id>,
    created_at: Option<String>,
    updated_at: Option<String>,
    status: Option<String>,
    total: Option<Amount>,
    currency: Option<String>,
    reason: Option<String>,
}

/// What an Ordermentum event means for its order.
enum Kind {
    Order(EventType),
    Invoice,
    CreditNoteCompleted,
}

impl Normalizer for OrdermentumNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let webhook: Webhook = parse(raw.body)?;
        let kind = webhook.event.as_deref().unwrap_or(raw.event_type);
        let kind = match kind {
            "order_created" => Kind::Order(EventType::Created),
            "order_updated" => Kind::Order(EventType::Updated),
            "invoice_created" | "invoice_updated" => Kind::Invoice,
            "credit_note_completed" => Kind::CreditNoteCompleted,
            other => return Err(NormalizeError::Unsupported(other.to_owned())),
        };
        let data = webhook.data.ok_or_else(|| invalid("no data"))?;
        let mut out = match kind {
            Kind::Order(event_type) => {
                let id = common::required_id(data.id.as_ref(), "data.id")?;
                let mut out = common::event(raw, &id);
                out.event_type = event_type;
                out.status = if event_type == EventType::Created {
                    OrderStatus::Open
                } else {
                    OrderStatus::Unknown
                };
                out
            }
            Kind::Invoice => {
                let order = common::required_id(data.order_id.as_ref(), "data.orderId")?;
                let mut out = common::event(raw, &order);
                out.event_type = EventType::Updated;
                out.payment_status = match data.status.as_deref().map(str::trim) {
                    Some("paid") => PaymentStatus::Paid,
                    Some("unpaid" | "pending" | "overdue") => PaymentStatus::Pending,
                    _ => PaymentStatus::Unknown,
                };
                out
            }
            Kind::CreditNoteCompleted => {
                let order = common::required_id(data.order_id.as_ref(), "data.orderId")?;
                let note = common::required_id(data.id.as_ref(), "data.id")?;
                let currency = data
                    .currency
                    .as_deref()
                    .ok_or_else(|| invalid("credit note names no currency"))?;
                let mut out = common::event(raw, &order);
                out.event_type = EventType::Refunded;
                out.currency = common::currency(Some(currency))?;
                out.refund = Some(Refund {
                    refund_id: note,
                    amount: money("data.total", data.total.as_ref())?,
                    reason: trimmed(data.reason.clone()),
                    lines: Vec::new(),
                });
                out
            }
        };
        out.partial = true;
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
