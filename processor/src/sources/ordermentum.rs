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
//!
//! With `[api.ordermentum]`, order events are completed: the enrich stage fetches the order
//! (`api:order`, `GET /v1/orders/{id}`), read here as a whole order: `total`, `subtotal`,
//! `totalGst` (the tax) and `freight` (the shipping) are the totals (numbers), each line item
//! has its unit `price` (text), `quantity` and `SKU`; the buyer is the retailer (its email
//! and name, else the purchaser's). Ordermentum states no currency: it trades in Australian
//! dollars only (AUD). `cancelledAt` cancels; `paidAt` means paid. The version is
//! `updatedAt`.

use orderbridge_schemas::{
    Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus, Refund,
};
use rust_decimal::Decimal;
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
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return order(raw, parse(raw.body)?);
        }
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

/// Ordermentum's currency: it trades in Australia only.
const CURRENCY: &str = "AUD";

/// `GET /v1/orders/{id}`'s order, as far as the canonical order needs it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    id: Option<Id>,
    order_number: Option<String>,
    retailer_id: Option<Id>,
    retailer_name: Option<String>,
    retailer: Option<Party>,
    purchaser: Option<Purchaser>,
    freight: Option<Amount>,
    subtotal: Option<Amount>,
    total_gst: Option<Amount>,
    total: Option<Amount>,
    paid_at: Option<serde_json::Value>,
    cancelled_at: Option<serde_json::Value>,
    #[serde(default)]
    line_items: Vec<Line>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Party {
    name: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Purchaser {
    name: Option<String>,
    retailer_email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    id: Option<Id>,
    name: Option<String>,
    #[serde(rename = "SKU")]
    sku: Option<String>,
    price: Option<Amount>,
    quantity: Option<i64>,
}

/// A time, or a value that says "not yet" (`null`, `{}` in the documented sample).
fn is_set(value: Option<&serde_json::Value>) -> bool {
    matches!(value, Some(serde_json::Value::String(s)) if !s.trim().is_empty())
}

/// A whole order (see the module docs).
fn order(raw: &RawRecord<'_>, order: Order) -> Result<OrderEvent, NormalizeError> {
    let id = common::required_id(order.id.as_ref(), "id")?;
    let mut out = common::event(raw, &id);
    out.currency = CURRENCY.to_owned();
    out.order_number = trimmed(order.order_number);
    let cancelled = is_set(order.cancelled_at.as_ref());
    out.status = if cancelled {
        OrderStatus::Cancelled
    } else {
        OrderStatus::Open
    };
    out.payment_status = if is_set(order.paid_at.as_ref()) {
        PaymentStatus::Paid
    } else {
        PaymentStatus::Pending
    };
    let (created_at, created_original) = timestamp("createdAt", order.created_at.as_deref())?;
    let (updated_at, updated_original) = timestamp("updatedAt", order.updated_at.as_deref())?;
    out.event_type = if cancelled {
        EventType::Cancelled
    } else if updated_at.is_some() && updated_at != created_at {
        EventType::Updated
    } else {
        EventType::Created
    };
    out.source_created_at = created_at;
    out.source_created_at_original = created_original;
    out.source_updated_at = updated_at;
    out.source_updated_at_original = updated_original;
    out.version = common::version(updated_at.or(created_at), raw);
    out.totals.total = money("total", order.total.as_ref())?;
    out.totals.subtotal = money("subtotal", order.subtotal.as_ref())?;
    out.totals.tax = money("totalGst", order.total_gst.as_ref())?;
    out.totals.shipping = money("freight", order.freight.as_ref())?;
    for line in order.line_items {
        out.line_items.push(LineItem {
            line_id: line.id.map(|id| id.to_string()),
            sku: trimmed(line.sku),
            title: trimmed(line.name).unwrap_or_default(),
            quantity: line
                .quantity
                .ok_or_else(|| invalid("a line item has no quantity"))?,
            unit_price: money("lineItems.price", line.price.as_ref())?,
            discount: Decimal::ZERO,
            tax: Decimal::ZERO,
        });
    }
    let retailer = order.retailer;
    let purchaser = order.purchaser;
    out.customer = Some(Customer {
        id: order.retailer_id.map(|id| id.to_string()),
        email: retailer
            .as_ref()
            .and_then(|r| trimmed(r.email.clone()))
            .or_else(|| {
                purchaser
                    .as_ref()
                    .and_then(|p| trimmed(p.retailer_email.clone()))
            }),
        name: retailer
            .and_then(|r| trimmed(r.name))
            .or_else(|| trimmed(order.retailer_name))
            .or_else(|| purchaser.and_then(|p| trimmed(p.name))),
    });
    Ok(out)
}
