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
//!
//! With `[api.etsy]`, the enrich stage fetches the receipt (`api:getShopReceipt`), read here
//! as a whole order: money is `{amount, divisor, currency_code}` (the value is amount ÷
//! divisor); `grandtotal`, `subtotal`, `total_shipping_cost`, `total_tax_cost` with
//! `total_vat_cost`, and `discount_amt` are the totals; each transaction is a line whose
//! `price` is the unit price. `status` gives the state (`paid`, `completed` (shipped),
//! `open` and `payment processing` (not paid), `canceled`, `fully refunded`,
//! `partially refunded`); the version is `updated_timestamp`, so a receipt fetched later is
//! newer than every webhook of the same stage before it.

use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::common::{self, invalid, parse, trimmed, Id};
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
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return receipt(raw, parse(raw.body)?);
        }
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

/// A `ShopReceipt`, as far as the canonical order needs it.
#[derive(Debug, Deserialize)]
struct Receipt {
    receipt_id: Option<Id>,
    buyer_user_id: Option<Id>,
    buyer_email: Option<String>,
    name: Option<String>,
    first_line: Option<String>,
    second_line: Option<String>,
    city: Option<String>,
    state: Option<String>,
    zip: Option<String>,
    country_iso: Option<String>,
    status: Option<String>,
    is_shipped: Option<bool>,
    created_timestamp: Option<i64>,
    create_timestamp: Option<i64>,
    updated_timestamp: Option<i64>,
    update_timestamp: Option<i64>,
    grandtotal: Option<Money>,
    subtotal: Option<Money>,
    total_shipping_cost: Option<Money>,
    total_tax_cost: Option<Money>,
    total_vat_cost: Option<Money>,
    discount_amt: Option<Money>,
    #[serde(default)]
    transactions: Vec<Transaction>,
}

/// Etsy's money: `amount ÷ divisor` in `currency_code`.
#[derive(Debug, Deserialize)]
struct Money {
    amount: Option<i64>,
    divisor: Option<i64>,
    currency_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Transaction {
    transaction_id: Option<Id>,
    title: Option<String>,
    quantity: Option<i64>,
    sku: Option<String>,
    price: Option<Money>,
}

/// `amount ÷ divisor` (absent: zero), in `currency`.
///
/// # Errors
/// When the divisor is not a positive power of ten's kind of number, or the currency differs.
fn value(field: &str, money: Option<&Money>, currency: &str) -> Result<Decimal, NormalizeError> {
    let Some(m) = money else {
        return Ok(Decimal::ZERO);
    };
    if let Some(other) = m.currency_code.as_deref().map(str::trim) {
        if !other.eq_ignore_ascii_case(currency) {
            return Err(invalid(&format!(
                "{field} is in {other}, the receipt in {currency}"
            )));
        }
    }
    let divisor = m.divisor.unwrap_or(1);
    if divisor <= 0 {
        return Err(invalid(&format!("{field}: divisor {divisor}")));
    }
    Decimal::from(m.amount.unwrap_or(0))
        .checked_div(Decimal::from(divisor))
        .ok_or_else(|| NormalizeError::OutOfRange(format!("{field}: amount ÷ divisor")))
}

/// A whole receipt (see the module docs).
fn receipt(raw: &RawRecord<'_>, receipt: Receipt) -> Result<OrderEvent, NormalizeError> {
    let id = common::required_id(receipt.receipt_id.as_ref(), "receipt_id")?;
    let currency = common::currency(
        receipt
            .grandtotal
            .as_ref()
            .and_then(|m| m.currency_code.as_deref()),
    )?;
    let mut out = common::event(raw, &id);
    out.currency = currency.clone();
    let shipped = receipt.is_shipped == Some(true);
    let (event_type, status, payment) = match receipt.status.as_deref().map(str::trim) {
        Some("canceled" | "Canceled") => (
            EventType::Cancelled,
            OrderStatus::Cancelled,
            PaymentStatus::Unknown,
        ),
        Some("fully refunded" | "Fully Refunded") => (
            EventType::Cancelled,
            OrderStatus::Cancelled,
            PaymentStatus::Refunded,
        ),
        Some("partially refunded" | "Partially Refunded") => (
            EventType::Updated,
            if shipped {
                OrderStatus::Fulfilled
            } else {
                OrderStatus::Open
            },
            PaymentStatus::PartiallyRefunded,
        ),
        Some("completed" | "Completed") => (
            EventType::Fulfilled,
            OrderStatus::Fulfilled,
            PaymentStatus::Paid,
        ),
        Some("paid" | "Paid") => (
            if shipped {
                EventType::Fulfilled
            } else {
                EventType::Created
            },
            if shipped {
                OrderStatus::Fulfilled
            } else {
                OrderStatus::Open
            },
            PaymentStatus::Paid,
        ),
        Some("open" | "Open" | "payment processing" | "Payment Processing") => (
            EventType::Created,
            OrderStatus::Open,
            PaymentStatus::Pending,
        ),
        other => return Err(invalid(&format!("unknown receipt status {other:?}"))),
    };
    out.event_type = event_type;
    out.status = status;
    out.payment_status = payment;
    let (created_at, created_original) = common::unix_seconds(
        "created_timestamp",
        receipt.created_timestamp.or(receipt.create_timestamp),
    )?;
    let (updated_at, updated_original) = common::unix_seconds(
        "updated_timestamp",
        receipt.updated_timestamp.or(receipt.update_timestamp),
    )?;
    out.source_created_at = created_at;
    out.source_created_at_original = created_original;
    out.source_updated_at = updated_at;
    out.source_updated_at_original = updated_original;
    out.version = common::version(updated_at.or(created_at), raw);
    out.totals.total = value("grandtotal", receipt.grandtotal.as_ref(), &currency)?;
    out.totals.subtotal = value("subtotal", receipt.subtotal.as_ref(), &currency)?;
    out.totals.shipping = value(
        "total_shipping_cost",
        receipt.total_shipping_cost.as_ref(),
        &currency,
    )?;
    out.totals.tax = common::add(
        "total_tax_cost",
        value("total_tax_cost", receipt.total_tax_cost.as_ref(), &currency)?,
        value("total_vat_cost", receipt.total_vat_cost.as_ref(), &currency)?,
    )?;
    out.totals.discount = value("discount_amt", receipt.discount_amt.as_ref(), &currency)?;
    for transaction in receipt.transactions {
        out.line_items.push(LineItem {
            line_id: transaction.transaction_id.map(|id| id.to_string()),
            sku: trimmed(transaction.sku),
            title: trimmed(transaction.title).unwrap_or_default(),
            quantity: transaction
                .quantity
                .ok_or_else(|| invalid("a transaction has no quantity"))?,
            unit_price: value("transactions.price", transaction.price.as_ref(), &currency)?,
            discount: Decimal::ZERO,
            tax: Decimal::ZERO,
        });
    }
    out.customer = Some(Customer {
        id: receipt.buyer_user_id.map(|id| id.to_string()),
        email: trimmed(receipt.buyer_email),
        name: trimmed(receipt.name.clone()),
    });
    out.shipping_address = Some(Address {
        name: trimmed(receipt.name),
        line1: trimmed(receipt.first_line),
        line2: trimmed(receipt.second_line),
        city: trimmed(receipt.city),
        region: trimmed(receipt.state),
        postal_code: trimmed(receipt.zip),
        country_code: trimmed(receipt.country_iso),
        ..Address::default()
    });
    Ok(out)
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
