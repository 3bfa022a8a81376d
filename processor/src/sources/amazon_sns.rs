//! Amazon SP-API order notifications delivered through SNS. The body is the SNS envelope; its
//! `Message` is a JSON *string* holding the notification. `ORDER_CHANGE` carries the order's
//! status and its items (SKU and quantity) but no prices, currency or buyer, so it becomes a
//! partial event; totals come from the Orders API.
//!
//! Statuses (`Summary.OrderStatus`): `Pending` → open, payment pending; `Unshipped` → open,
//! paid; `PartiallyShipped` → partially fulfilled; `Shipped`, `InvoiceUnconfirmed` →
//! fulfilled; `Canceled` → cancelled; `Unfulfillable`, `PendingAvailability` → open. The
//! version is `OrderChangeTrigger.TimeOfOrderChange`.
//!
//! With `[api.amazon_sns]`, the enrich stage fetches the order and its items from the Orders
//! API (`api:getOrder`: `{"order": {"payload": Order}, "orderItems": [{"payload":
//! {"OrderItems": […]}}, …]}`), read here as a whole order: `OrderTotal` is the total, each
//! item's `ItemPrice` its units' price together (the unit price is it ÷ `QuantityOrdered`,
//! rounded up to the cent, the rounding a discount), `ItemTax` and `ShippingTax` the tax,
//! `ShippingPrice` the shipping, `PromotionDiscount` and `ShippingDiscount` the discount;
//! the buyer and the address are there when a restricted data token was used. A `Pending`
//! order has no prices yet: it stays a status-only (partial) event until Amazon tells of a
//! later status. The version is `LastUpdateDate`.

use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::common::{self, invalid, money, parse, timestamp, trimmed, Amount, Id};
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

/// What an `OrderStatus` means.
fn status_of(
    status: Option<&str>,
) -> Result<(EventType, OrderStatus, PaymentStatus), NormalizeError> {
    Ok(match status.map(str::trim) {
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
    })
}

impl Normalizer for AmazonSnsNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return order(raw, parse(raw.body)?);
        }
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
        let (event_type, status, payment) = status_of(summary.order_status.as_deref())?;
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

/// The document the enrich stage publishes: getOrder's answer and getOrderItems' pages.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    order: Answer<Order>,
    #[serde(default)]
    order_items: Vec<Answer<ItemsPage>>,
}

#[derive(Debug, Deserialize)]
struct Answer<T> {
    payload: Option<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Order {
    amazon_order_id: Option<Id>,
    purchase_date: Option<String>,
    last_update_date: Option<String>,
    order_status: Option<String>,
    order_total: Option<Money>,
    buyer_info: Option<BuyerInfo>,
    shipping_address: Option<AmazonAddress>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Money {
    currency_code: Option<String>,
    amount: Option<Amount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BuyerInfo {
    buyer_email: Option<String>,
    buyer_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AmazonAddress {
    name: Option<String>,
    company_name: Option<String>,
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    state_or_region: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ItemsPage {
    #[serde(default)]
    order_items: Vec<OrderItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrderItem {
    order_item_id: Option<Id>,
    #[serde(rename = "SellerSKU")]
    seller_sku: Option<String>,
    title: Option<String>,
    quantity_ordered: Option<i64>,
    item_price: Option<Money>,
    item_tax: Option<Money>,
    shipping_price: Option<Money>,
    shipping_tax: Option<Money>,
    shipping_discount: Option<Money>,
    promotion_discount: Option<Money>,
}

/// `Money` in `currency` (absent: zero).
///
/// # Errors
/// When it is not a number or is in another currency.
fn amount(field: &str, value: Option<&Money>, currency: &str) -> Result<Decimal, NormalizeError> {
    let Some(m) = value else {
        return Ok(Decimal::ZERO);
    };
    if let Some(other) = m.currency_code.as_deref().map(str::trim) {
        if !other.eq_ignore_ascii_case(currency) {
            return Err(invalid(&format!(
                "{field} is in {other}, the order in {currency}"
            )));
        }
    }
    money(field, m.amount.as_ref())
}

/// A whole order from the Orders API (see the module docs).
fn order(raw: &RawRecord<'_>, document: Document) -> Result<OrderEvent, NormalizeError> {
    let order = document
        .order
        .payload
        .ok_or_else(|| invalid("getOrder's answer has no payload"))?;
    let id = common::required_id(order.amazon_order_id.as_ref(), "AmazonOrderId")?;
    let (mut event_type, status, payment) = status_of(order.order_status.as_deref())?;
    let mut out = common::event(raw, &id);
    out.status = status;
    out.payment_status = payment;
    let (created_at, created_original) = timestamp("PurchaseDate", order.purchase_date.as_deref())?;
    let (updated_at, updated_original) =
        timestamp("LastUpdateDate", order.last_update_date.as_deref())?;
    out.source_created_at = created_at;
    out.source_created_at_original = created_original;
    out.source_updated_at = updated_at;
    out.source_updated_at_original = updated_original;
    out.version = common::version(updated_at.or(created_at), raw);
    let items: Vec<OrderItem> = document
        .order_items
        .into_iter()
        .filter_map(|page| page.payload)
        .flat_map(|page| page.order_items)
        .collect();
    let Some(total) = order.order_total else {
        // Pending: no prices yet. What the notification said, no more.
        out.partial = true;
        out.event_type = event_type;
        return Ok(out);
    };
    let currency = common::currency(total.currency_code.as_deref())?;
    out.currency = currency.clone();
    if event_type != EventType::Cancelled {
        event_type = if updated_at.is_some() && updated_at != created_at {
            EventType::Updated
        } else {
            EventType::Created
        };
    }
    out.event_type = event_type;
    out.totals.total = amount("OrderTotal", Some(&total), &currency)?;
    for item in items {
        let quantity = item
            .quantity_ordered
            .ok_or_else(|| invalid("an order item has no QuantityOrdered"))?;
        let price = amount("ItemPrice", item.item_price.as_ref(), &currency)?;
        let promotion = amount(
            "PromotionDiscount",
            item.promotion_discount.as_ref(),
            &currency,
        )?
        .abs();
        let tax = amount("ItemTax", item.item_tax.as_ref(), &currency)?;
        let (unit_price, rounding) = if quantity == 0 {
            // A line cancelled down to nothing: no units, no price.
            (Decimal::ZERO, Decimal::ZERO)
        } else {
            common::unit_price("ItemPrice", price, quantity, &currency)?
        };
        out.totals.subtotal = common::add("ItemPrice", out.totals.subtotal, price)?;
        out.totals.tax = common::add("ItemTax", out.totals.tax, tax)?;
        out.totals.tax = common::add(
            "ShippingTax",
            out.totals.tax,
            amount("ShippingTax", item.shipping_tax.as_ref(), &currency)?,
        )?;
        out.totals.shipping = common::add(
            "ShippingPrice",
            out.totals.shipping,
            amount("ShippingPrice", item.shipping_price.as_ref(), &currency)?,
        )?;
        out.totals.discount = common::add("PromotionDiscount", out.totals.discount, promotion)?;
        out.totals.discount = common::add(
            "ShippingDiscount",
            out.totals.discount,
            amount(
                "ShippingDiscount",
                item.shipping_discount.as_ref(),
                &currency,
            )?
            .abs(),
        )?;
        out.line_items.push(LineItem {
            line_id: item.order_item_id.map(|id| id.to_string()),
            sku: trimmed(item.seller_sku),
            title: trimmed(item.title).unwrap_or_default(),
            quantity,
            unit_price,
            discount: common::add("PromotionDiscount", rounding, promotion)?,
            tax,
        });
    }
    if let Some(buyer) = order.buyer_info {
        let email = trimmed(buyer.buyer_email);
        let name = trimmed(buyer.buyer_name);
        if email.is_some() || name.is_some() {
            out.customer = Some(Customer {
                id: None,
                email,
                name,
            });
        }
    }
    out.shipping_address = order.shipping_address.map(|a| Address {
        name: trimmed(a.name),
        company: trimmed(a.company_name),
        line1: trimmed(a.address_line1),
        line2: trimmed(a.address_line2),
        city: trimmed(a.city),
        region: trimmed(a.state_or_region),
        postal_code: trimmed(a.postal_code),
        country_code: trimmed(a.country_code),
        phone: trimmed(a.phone),
    });
    Ok(out)
}
