//! Amazon SP-API order notifications delivered through SNS. The body is the SNS envelope; its
//! `Message` is a JSON *string* holding the notification. `ORDER_CHANGE` carries the order's
//! status and its items (SKU and quantity) but no prices, currency or buyer, so it becomes a
//! partial event; totals come from the Orders API.
//!
//! Statuses (`Summary.OrderStatus`): `Pending` → open, payment pending; `Unshipped` → open,
//! paid; `PartiallyShipped` → partially fulfilled; `Shipped`, `InvoiceUnconfirmed` →
//! fulfilled; `Canceled` → cancelled; `Unfulfillable`, `PendingAvailability` → open. The
//! version is `OrderChangeTrigger.TimeOfOrderChange`.

use orderbridge_schemas::{EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::common::{self, invalid, parse, timestamp, trimmed, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes SP-API notifications inside SNS envelopes.
#[derive(Debug, Clone, Copy)]
pub struct AmazonSnsNormalizer;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(rename = "Type")]
    kind: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Notification {
    notification_type: Option<String>,
    payload: Option<Payload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Payload {
    order_change_notification: Option<OrderChange>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrderChange {
    amazon_order_id: Option<Id>,
    order_change_trigger: Option<Trigger>,
    summary: Option<Summary>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Trigger {
    time_of_order_change: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    order_status: Option<String>,
    purchase_date: Option<String>,
    #[serde(default)]
    order_items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    order_item_id: Option<Id>,
    #[serde(rename = "SellerSKU")]
    seller_sku: Option<String>,
    quantity: Option<i64>,
}

impl Normalizer for AmazonSnsNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let envelope: Envelope = parse(raw.body)?;
        if envelope.kind.as_deref() != Some("Notification") {
            return Err(NormalizeError::Unsupported(
                envelope.kind.unwrap_or_else(|| "no Type".into()),
            ));
        }
        let message = envelope.message.ok_or_else(|| invalid("no Message"))?;
        let notification: Notification = parse(message.as_bytes())?;
        let kind = notification.notification_type.unwrap_or_default();
        if kind != "ORDER_CHANGE" {
            return Err(NormalizeError::Unsupported(kind));
        }
        let change = notification
            .payload
            .and_then(|p| p.order_change_notification)
            .ok_or_else(|| invalid("no Payload.OrderChangeNotification"))?;
        let id = common::required_id(change.amazon_order_id.as_ref(), "AmazonOrderId")?;
        let summary = change.summary.ok_or_else(|| invalid("no Summary"))?;
        let (event_type, status, payment) = match summary.order_status.as_deref().map(str::trim) {
            Some("Pending") => (
                EventType::Created,
                OrderStatus::Open,
                PaymentStatus::Pending,
            ),
            Some("Unshipped") => (EventType::Updated, OrderStatus::Open, PaymentStatus::Paid),
            Some("PartiallyShipped") => (
                EventType::Fulfilled,
                OrderStatus::PartiallyFulfilled,
                PaymentStatus::Paid,
            ),
            Some("Shipped" | "InvoiceUnconfirmed") => (
                EventType::Fulfilled,
                OrderStatus::Fulfilled,
                PaymentStatus::Paid,
            ),
            Some("Canceled") => (
                EventType::Cancelled,
                OrderStatus::Cancelled,
                PaymentStatus::Unknown,
            ),
            Some("Unfulfillable" | "PendingAvailability") => (
                EventType::Updated,
                OrderStatus::Open,
                PaymentStatus::Unknown,
            ),
            other => return Err(invalid(&format!("unknown OrderStatus {other:?}"))),
        };
        let mut out = common::event(raw, &id);
        out.partial = true;
        out.event_type = event_type;
        out.status = status;
        out.payment_status = payment;
        out.line_items = summary
            .order_items
            .into_iter()
            .map(|item| {
                Ok(LineItem {
                    line_id: item.order_item_id.map(|id| id.to_string()),
                    sku: trimmed(item.seller_sku),
                    title: String::new(),
                    quantity: item
                        .quantity
                        .ok_or_else(|| invalid("an order item has no Quantity"))?,
                    unit_price: Decimal::ZERO,
                    discount: Decimal::ZERO,
                    tax: Decimal::ZERO,
                })
            })
            .collect::<Result<_, NormalizeError>>()?;
        let (created_at, created_original) =
            timestamp("PurchaseDate", summary.purchase_date.as_deref())?;
        let (changed_at, changed_original) = timestamp(
            "TimeOfOrderChange",
            change
                .order_change_trigger
                .as_ref()
                .and_then(|t| t.time_of_order_change.as_deref()),
        )?;
        out.source_created_at = created_at;
        out.source_created_at_original = created_original;
        out.source_updated_at = changed_at;
        out.source_updated_at_original = changed_original;
        out.version = common::version(changed_at, raw);
        Ok(out)
    }
}
