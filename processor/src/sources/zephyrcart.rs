//! ZephyrCart, the commerce platform: `order.created` and `order.refunded` (seed 001: the
//! ERP bridge subscribes to those two; the order is `data`, its id `data.id`, with customer
//! email, currency and line items). A refund names the order and carries
//! `data.refund {id, amount, reason, line_items[{sku, quantity, amount}]}`.
//!
//! The seed shows no more of the payload than that, so what it does not show is not read: a
//! total but no tax or shipping, and the subtotal is the lines' sum. The version is the
//! event's `created_at`.

use orderbridge_schemas::{
    Customer, EventType, OrderEvent, OrderStatus, PaymentStatus, Refund, RefundLine,
};
use serde::Deserialize;

use super::common::{
    self, currency, invalid, lines_total, money, parse, timestamp, trimmed, Amount, Id, SimpleLine,
};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes ZephyrCart events.
#[derive(Debug, Clone, Copy)]
pub struct ZephyrcartNormalizer;

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    created_at: Option<String>,
    data: Option<Order>,
}

#[derive(Debug, Deserialize)]
struct Order {
    id: Option<Id>,
    number: Option<String>,
    currency: Option<String>,
    total: Option<Amount>,
    created_at: Option<String>,
    customer: Option<ZephyrCustomer>,
    #[serde(default)]
    line_items: Vec<SimpleLine>,
    refund: Option<ZephyrRefund>,
}

#[derive(Debug, Deserialize)]
struct ZephyrCustomer {
    id: Option<Id>,
    email: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ZephyrRefund {
    id: Option<Id>,
    amount: Option<Amount>,
    reason: Option<String>,
    #[serde(default)]
    line_items: Vec<RefundedLine>,
}

#[derive(Debug, Deserialize)]
struct RefundedLine {
    id: Option<Id>,
    sku: Option<String>,
    quantity: Option<i64>,
    amount: Option<Amount>,
}

impl Normalizer for ZephyrcartNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let event: Event = parse(raw.body)?;
        let kind = event.kind.as_deref().unwrap_or(raw.event_type);
        let event_type = match kind {
            "order.created" => EventType::Created,
            "order.refunded" => EventType::Refunded,
            other => return Err(NormalizeError::Unsupported(other.to_owned())),
        };
        let order = event.data.ok_or_else(|| invalid("event has no data"))?;
        let id = common::required_id(order.id.as_ref(), "data.id")?;
        let mut out = common::event(raw, &id);
        out.event_type = event_type;
        out.order_number = trimmed(order.number);
        out.currency = currency(order.currency.as_deref())?;
        let (event_at, event_original) = timestamp("created_at", event.created_at.as_deref())?;
        let (created_at, created_original) =
            timestamp("data.created_at", order.created_at.as_deref())?;
        out.source_created_at = created_at;
        out.source_created_at_original = created_original;
        out.source_updated_at = event_at;
        out.source_updated_at_original = event_original;
        out.version = common::version(event_at.or(created_at), raw);
        out.customer = order.customer.map(|c| Customer {
            id: c.id.map(|id| id.to_string()),
            email: trimmed(c.email),
            name: trimmed(c.name),
        });
        if event_type == EventType::Refunded {
            // A refund event is about the money returned; the order itself is unchanged
            // here, so it is partial: the sink applies the refund and the status.
            let refund = order
                .refund
                .ok_or_else(|| invalid("order.refunded has no data.refund"))?;
            out.partial = true;
            out.status = OrderStatus::Unknown;
            // Whether this refund makes the order partly or fully refunded is not stated.
            out.payment_status = PaymentStatus::Unknown;
            out.refund = Some(Refund {
                refund_id: common::required_id(refund.id.as_ref(), "data.refund.id")?,
                amount: money("data.refund.amount", refund.amount.as_ref())?,
                reason: trimmed(refund.reason),
                lines: refund
                    .line_items
                    .into_iter()
                    .map(|l| {
                        Ok(RefundLine {
                            line_id: l.id.map(|id| id.to_string()),
                            sku: trimmed(l.sku),
                            quantity: l.quantity.ok_or_else(|| {
                                invalid("data.refund.line_items: a line has no quantity")
                            })?,
                            amount: money("data.refund.line_items.amount", l.amount.as_ref())?,
                        })
                    })
                    .collect::<Result<_, NormalizeError>>()?,
            });
        } else {
            out.status = OrderStatus::Open;
            out.line_items = order
                .line_items
                .into_iter()
                .map(|l| l.into_line("data.line_items"))
                .collect::<Result<_, _>>()?;
            out.totals.subtotal = lines_total(&out.line_items)?;
            out.totals.total = money("data.total", order.total.as_ref())?;
        }
        Ok(out)
    }
}
