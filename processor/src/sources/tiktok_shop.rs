//! TikTok Shop: type 1 (order status change) is thin, `data {order_id, order_status,
//! update_time}`, so it becomes a partial event (a status update); totals, lines and the
//! buyer come from the order API, not from here. Other types are not order events.
//!
//! Statuses (TikTok's): `UNPAID` → open, payment pending; `ON_HOLD`, `AWAITING_SHIPMENT`,
//! `AWAITING_COLLECTION` → open, paid; `IN_TRANSIT` → fulfilled (shipped), `DELIVERED` →
//! fulfilled, `COMPLETED` → closed, `CANCELLED` → cancelled. The version is `update_time`.
//!
//! With `[api.tiktok_shop]`, the enrich stage fetches the order (`api:orderDetail`, Get Order
//! Detail's order object), read here as a whole order: `payment` gives the totals
//! (`total_amount`, `sub_total`, `shipping_fee`, `tax`, and `seller_discount` with
//! `platform_discount` as the discount); TikTok lists one line item **per unit**, so items of
//! one SKU become one line whose quantity is their count, whose unit price is
//! `original_price` and whose discount and tax are the items' together. The buyer is
//! `buyer_email`, the goods go to `recipient_address` (`district_info` gives the state and
//! city). `PARTIALLY_SHIPPING` is partly fulfilled.

use std::collections::BTreeMap;

use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus,
};
use serde::Deserialize;

use super::common::{self, invalid, money, parse, trimmed, unix_seconds, Amount, Id};
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

/// What an order status means: (status, payment, event type).
fn status_of(status: &str) -> Result<(OrderStatus, PaymentStatus, EventType), NormalizeError> {
    Ok(match status.trim() {
        "UNPAID" => (
            OrderStatus::Open,
            PaymentStatus::Pending,
            EventType::Updated,
        ),
        "ON_HOLD" | "AWAITING_SHIPMENT" | "AWAITING_COLLECTION" => {
            (OrderStatus::Open, PaymentStatus::Paid, EventType::Updated)
        }
        "PARTIALLY_SHIPPING" => (
            OrderStatus::PartiallyFulfilled,
            PaymentStatus::Paid,
            EventType::Fulfilled,
        ),
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
        other => return Err(invalid(&format!("unknown order status {other:?}"))),
    })
}

impl Normalizer for TiktokShopNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return order(raw, parse(raw.body)?);
        }
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
        let (status, payment, event_type) = status_of(&status)?;
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

/// Get Order Detail's order, as far as the canonical order needs it.
#[derive(Debug, Deserialize)]
struct Order {
    id: Option<Id>,
    status: Option<String>,
    create_time: Option<i64>,
    update_time: Option<i64>,
    user_id: Option<Id>,
    buyer_email: Option<String>,
    payment: Option<Payment>,
    recipient_address: Option<Recipient>,
    #[serde(default)]
    line_items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Payment {
    currency: Option<String>,
    sub_total: Option<Amount>,
    shipping_fee: Option<Amount>,
    seller_discount: Option<Amount>,
    platform_discount: Option<Amount>,
    total_amount: Option<Amount>,
    tax: Option<Amount>,
}

#[derive(Debug, Deserialize)]
struct Recipient {
    name: Option<String>,
    phone_number: Option<String>,
    address_line1: Option<String>,
    address_line2: Option<String>,
    postal_code: Option<String>,
    region_code: Option<String>,
    #[serde(default)]
    district_info: Vec<District>,
}

#[derive(Debug, Deserialize)]
struct District {
    address_level_name: Option<String>,
    address_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Item {
    id: Option<Id>,
    sku_id: Option<Id>,
    seller_sku: Option<String>,
    product_name: Option<String>,
    sku_name: Option<String>,
    original_price: Option<Amount>,
    sale_price: Option<Amount>,
    seller_discount: Option<Amount>,
    platform_discount: Option<Amount>,
    currency: Option<String>,
    #[serde(default)]
    item_tax: Vec<ItemTax>,
}

#[derive(Debug, Deserialize)]
struct ItemTax {
    tax_amount: Option<Amount>,
}

/// A whole order (see the module docs).
fn order(raw: &RawRecord<'_>, order: Order) -> Result<OrderEvent, NormalizeError> {
    let id = common::required_id(order.id.as_ref(), "id")?;
    let payment = order
        .payment
        .ok_or_else(|| invalid("the order has no payment"))?;
    let currency = common::currency(payment.currency.as_deref())?;
    let mut out = common::event(raw, &id);
    out.currency = currency.clone();
    let (status, paid, event_type) = status_of(
        order
            .status
            .as_deref()
            .ok_or_else(|| invalid("the order has no status"))?,
    )?;
    out.status = status;
    out.payment_status = paid;
    let (created_at, created_original) = unix_seconds("create_time", order.create_time)?;
    let (updated_at, updated_original) = unix_seconds("update_time", order.update_time)?;
    out.event_type = match event_type {
        EventType::Cancelled | EventType::Fulfilled => event_type,
        EventType::Unknown | EventType::Created | EventType::Updated | EventType::Refunded
            if updated_at.is_some() && updated_at != created_at =>
        {
            EventType::Updated
        }
        EventType::Unknown | EventType::Created | EventType::Updated | EventType::Refunded => {
            EventType::Created
        }
    };
    out.source_created_at = created_at;
    out.source_created_at_original = created_original;
    out.source_updated_at = updated_at;
    out.source_updated_at_original = updated_original;
    out.version = common::version(updated_at.or(created_at), raw);
    out.totals.total = money("payment.total_amount", payment.total_amount.as_ref())?;
    out.totals.subtotal = money("payment.sub_total", payment.sub_total.as_ref())?;
    out.totals.shipping = money("payment.shipping_fee", payment.shipping_fee.as_ref())?;
    out.totals.tax = money("payment.tax", payment.tax.as_ref())?;
    out.totals.discount = common::add(
        "payment.seller_discount",
        money("payment.seller_discount", payment.seller_discount.as_ref())?,
        money(
            "payment.platform_discount",
            payment.platform_discount.as_ref(),
        )?,
    )?;
    // One item per unit: units of one SKU become one line, in the order they first appear.
    let mut lines: Vec<LineItem> = Vec::new();
    let mut by_sku: BTreeMap<String, usize> = BTreeMap::new();
    for item in order.line_items {
        if let Some(other) = item.currency.as_deref().map(str::trim) {
            if !other.is_empty() && !other.eq_ignore_ascii_case(&currency) {
                return Err(invalid(&format!(
                    "a line item is in {other}, the order in {currency}"
                )));
            }
        }
        let key = item
            .sku_id
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| item.seller_sku.clone())
            .unwrap_or_default();
        let unit = match &item.original_price {
            Some(price) => price.parse("line_items.original_price")?,
            None => money("line_items.sale_price", item.sale_price.as_ref())?,
        };
        let discount = common::add(
            "line_items.discount",
            money("line_items.seller_discount", item.seller_discount.as_ref())?,
            money(
                "line_items.platform_discount",
                item.platform_discount.as_ref(),
            )?,
        )?;
        let tax = common::sum(
            "line_items.item_tax",
            item.item_tax
                .iter()
                .map(|t| money("item_tax.tax_amount", t.tax_amount.as_ref())),
        )?;
        match by_sku.get(&key).and_then(|&at| lines.get_mut(at)) {
            Some(line) if line.unit_price == unit => {
                line.quantity = line.quantity.saturating_add(1);
                line.discount = common::add("line_items.discount", line.discount, discount)?;
                line.tax = common::add("line_items.item_tax", line.tax, tax)?;
            }
            _ => {
                by_sku.insert(key, lines.len());
                let title = match (trimmed(item.product_name), trimmed(item.sku_name)) {
                    (Some(product), Some(sku)) if sku != "Default" => format!("{product} - {sku}"),
                    (Some(product), _) => product,
                    (None, sku) => sku.unwrap_or_default(),
                };
                lines.push(LineItem {
                    line_id: item.id.map(|id| id.to_string()),
                    sku: trimmed(item.seller_sku),
                    title,
                    quantity: 1,
                    unit_price: unit,
                    discount,
                    tax,
                });
            }
        }
    }
    out.line_items = lines;
    let recipient = order.recipient_address;
    out.customer = Some(Customer {
        id: order.user_id.map(|id| id.to_string()),
        email: trimmed(order.buyer_email),
        name: recipient.as_ref().and_then(|r| trimmed(r.name.clone())),
    });
    out.shipping_address = recipient.map(|r| {
        let level = |name: &str| {
            r.district_info
                .iter()
                .find(|d| {
                    d.address_level_name
                        .as_deref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(name))
                })
                .and_then(|d| trimmed(d.address_name.clone()))
        };
        Address {
            region: level("State"),
            city: level("City"),
            name: trimmed(r.name),
            line1: trimmed(r.address_line1),
            line2: trimmed(r.address_line2),
            postal_code: trimmed(r.postal_code),
            country_code: trimmed(r.region_code),
            phone: trimmed(r.phone_number),
            company: None,
        }
    });
    Ok(out)
}
