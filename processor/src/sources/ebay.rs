//! eBay.
//!
//! The Notification API's `ORDER_CONFIRMATION` names the order (`notification.data.order.orderId`
//! as delivered, `notification.data.orderId` as the AsyncAPI page shows) and nothing else ("the
//! seller looks up the orderId … and then issues a GetOrders call"). Without `[api.ebay]` it
//! becomes a partial event: created, open, paid, at the version of its `eventDate`.
//!
//! With it, the enrich stage fetches the order (`api:getOrder`, the Fulfillment API's
//! `Order`), read here as a whole order: `pricingSummary` gives the totals (`total`,
//! `priceSubtotal`, `deliveryCost`, `tax` when there is any, `priceDiscount` and
//! `deliveryDiscount` as negative amounts), each line's `lineItemCost` is its units'
//! price together (the unit price is it ÷ `quantity`, rounded up to the cent, the rounding a
//! discount so the line stays eBay's), a promotion's `discountedLineItemCost` the line's
//! discount, and its `taxes` its tax. The buyer is `buyer.buyerRegistrationAddress` (email,
//! name, address), the goods go to the first shipping step's `shipTo`. Statuses:
//! `cancelStatus.cancelState` `CANCELED` cancels; `orderFulfillmentStatus` `NOT_STARTED` is
//! open, `IN_PROGRESS` partly fulfilled, `FULFILLED` fulfilled; `orderPaymentStatus` gives the
//! payment. The version is `lastModifiedDate`.

use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::common::{self, invalid, money, parse, timestamp, trimmed, Amount, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes eBay notifications.
#[derive(Debug, Clone, Copy)]
pub struct EbayNormalizer;

#[derive(Debug, Deserialize)]
struct Notification {
    metadata: Option<Metadata>,
    notification: Option<Body>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    topic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    event_date: Option<String>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    order_id: Option<Id>,
    order: Option<DataOrder>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataOrder {
    order_id: Option<Id>,
}

impl Normalizer for EbayNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return order(raw, parse(raw.body)?);
        }
        let notification: Notification = parse(raw.body)?;
        let topic = notification
            .metadata
            .and_then(|m| m.topic)
            .unwrap_or_else(|| raw.event_type.to_owned());
        if topic != "ORDER_CONFIRMATION" {
            return Err(NormalizeError::Unsupported(topic));
        }
        let body = notification
            .notification
            .ok_or_else(|| invalid("no notification"))?;
        let id = common::required_id(
            body.data.as_ref().and_then(|d| {
                d.order
                    .as_ref()
                    .and_then(|o| o.order_id.as_ref())
                    .or(d.order_id.as_ref())
            }),
            "notification.data.order.orderId",
        )?;
        let mut out = common::event(raw, &id);
        out.partial = true;
        out.event_type = EventType::Created;
        out.status = OrderStatus::Open;
        out.payment_status = PaymentStatus::Paid;
        let (at, original) = timestamp("notification.eventDate", body.event_date.as_deref())?;
        out.source_created_at = at;
        out.source_created_at_original = original;
        out.version = common::version(at, raw);
        Ok(out)
    }
}

/// The Fulfillment API's `Order`, as far as the canonical order needs it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    order_id: Option<Id>,
    creation_date: Option<String>,
    last_modified_date: Option<String>,
    order_fulfillment_status: Option<String>,
    order_payment_status: Option<String>,
    cancel_status: Option<CancelStatus>,
    buyer: Option<Buyer>,
    pricing_summary: Option<PricingSummary>,
    #[serde(default)]
    line_items: Vec<Line>,
    #[serde(default)]
    fulfillment_start_instructions: Vec<Instruction>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelStatus {
    cancel_state: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Buyer {
    username: Option<String>,
    buyer_registration_address: Option<Contact>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    full_name: Option<String>,
    company_name: Option<String>,
    contact_address: Option<ContactAddress>,
    primary_phone: Option<Phone>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContactAddress {
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    state_or_province: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Phone {
    phone_number: Option<String>,
}

/// eBay's `Amount`: `{value: "29.99", currency: "USD"}`.
#[derive(Debug, Deserialize)]
struct Money {
    value: Option<Amount>,
    currency: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PricingSummary {
    price_subtotal: Option<Money>,
    delivery_cost: Option<Money>,
    tax: Option<Money>,
    total: Option<Money>,
    price_discount: Option<Money>,
    delivery_discount: Option<Money>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    line_item_id: Option<Id>,
    sku: Option<String>,
    title: Option<String>,
    quantity: Option<i64>,
    line_item_cost: Option<Money>,
    discounted_line_item_cost: Option<Money>,
    #[serde(default)]
    taxes: Vec<Tax>,
}

#[derive(Debug, Deserialize)]
struct Tax {
    amount: Option<Money>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Instruction {
    shipping_step: Option<ShippingStep>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShippingStep {
    ship_to: Option<Contact>,
}

/// An `Amount` in `currency` (absent: zero).
///
/// # Errors
/// When it is not a number, or is in another currency than the order's.
fn amount(
    field: &str,
    money_of: Option<&Money>,
    currency: &str,
) -> Result<Decimal, NormalizeError> {
    let Some(m) = money_of else {
        return Ok(Decimal::ZERO);
    };
    if let Some(other) = m.currency.as_deref().map(str::trim) {
        if !other.eq_ignore_ascii_case(currency) {
            return Err(invalid(&format!(
                "{field} is in {other}, the order in {currency}"
            )));
        }
    }
    money(field, m.value.as_ref())
}

fn address(contact: Contact) -> Address {
    let a = contact.contact_address;
    let part =
        |f: fn(&ContactAddress) -> &Option<String>| a.as_ref().and_then(|a| trimmed(f(a).clone()));
    Address {
        name: trimmed(contact.full_name),
        company: trimmed(contact.company_name),
        line1: part(|a| &a.address_line1),
        line2: part(|a| &a.address_line2),
        city: part(|a| &a.city),
        region: part(|a| &a.state_or_province),
        postal_code: part(|a| &a.postal_code),
        country_code: part(|a| &a.country_code),
        phone: contact.primary_phone.and_then(|p| trimmed(p.phone_number)),
    }
}

/// A whole order from the Fulfillment API (see the module docs).
fn order(raw: &RawRecord<'_>, order: Order) -> Result<OrderEvent, NormalizeError> {
    let id = common::required_id(order.order_id.as_ref(), "orderId")?;
    let pricing = order
        .pricing_summary
        .ok_or_else(|| invalid("the order has no pricingSummary"))?;
    let currency = common::currency(pricing.total.as_ref().and_then(|t| t.currency.as_deref()))?;
    let mut out = common::event(raw, &id);
    out.currency = currency.clone();
    let cancelled = order
        .cancel_status
        .and_then(|c| c.cancel_state)
        .is_some_and(|state| matches!(state.as_str(), "CANCELED" | "CANCELLED"));
    out.status = if cancelled {
        OrderStatus::Cancelled
    } else {
        match order.order_fulfillment_status.as_deref() {
            Some("NOT_STARTED") => OrderStatus::Open,
            Some("IN_PROGRESS") => OrderStatus::PartiallyFulfilled,
            Some("FULFILLED") => OrderStatus::Fulfilled,
            _ => OrderStatus::Unknown,
        }
    };
    out.payment_status = match order.order_payment_status.as_deref() {
        Some("PAID") => PaymentStatus::Paid,
        Some("PENDING") => PaymentStatus::Pending,
        Some("FULLY_REFUNDED") => PaymentStatus::Refunded,
        Some("PARTIALLY_REFUNDED") => PaymentStatus::PartiallyRefunded,
        _ => PaymentStatus::Unknown,
    };
    let (created_at, created_original) = timestamp("creationDate", order.creation_date.as_deref())?;
    let (updated_at, updated_original) =
        timestamp("lastModifiedDate", order.last_modified_date.as_deref())?;
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
    out.totals.total = amount("pricingSummary.total", pricing.total.as_ref(), &currency)?;
    out.totals.subtotal = amount(
        "pricingSummary.priceSubtotal",
        pricing.price_subtotal.as_ref(),
        &currency,
    )?;
    out.totals.shipping = amount(
        "pricingSummary.deliveryCost",
        pricing.delivery_cost.as_ref(),
        &currency,
    )?;
    out.totals.tax = amount("pricingSummary.tax", pricing.tax.as_ref(), &currency)?;
    // Discounts come as negative amounts.
    out.totals.discount = common::add(
        "pricingSummary.priceDiscount",
        amount(
            "pricingSummary.priceDiscount",
            pricing.price_discount.as_ref(),
            &currency,
        )?
        .abs(),
        amount(
            "pricingSummary.deliveryDiscount",
            pricing.delivery_discount.as_ref(),
            &currency,
        )?
        .abs(),
    )?;
    for line in order.line_items {
        let quantity = line
            .quantity
            .filter(|q| *q > 0)
            .ok_or_else(|| invalid("a line item has no quantity"))?;
        let cost = amount(
            "lineItems.lineItemCost",
            line.line_item_cost.as_ref(),
            &currency,
        )?;
        let (unit_price, rounding) =
            common::unit_price("lineItems.lineItemCost", cost, quantity, &currency)?;
        let promotion = match &line.discounted_line_item_cost {
            Some(discounted) => cost
                .checked_sub(amount(
                    "lineItems.discountedLineItemCost",
                    Some(discounted),
                    &currency,
                )?)
                .ok_or_else(|| {
                    NormalizeError::OutOfRange("lineItems.discountedLineItemCost".into())
                })?
                .max(Decimal::ZERO),
            None => Decimal::ZERO,
        };
        let tax = common::sum(
            "lineItems.taxes",
            line.taxes
                .iter()
                .map(|t| amount("lineItems.taxes.amount", t.amount.as_ref(), &currency)),
        )?;
        out.line_items.push(LineItem {
            line_id: line.line_item_id.map(|id| id.to_string()),
            sku: trimmed(line.sku),
            title: trimmed(line.title).unwrap_or_default(),
            quantity,
            unit_price,
            discount: common::add("lineItems.discount", rounding, promotion)?,
            tax,
        });
    }
    if let Some(buyer) = order.buyer {
        let registration = buyer.buyer_registration_address;
        out.customer = Some(Customer {
            id: trimmed(buyer.username),
            email: registration.as_ref().and_then(|r| trimmed(r.email.clone())),
            name: registration
                .as_ref()
                .and_then(|r| trimmed(r.full_name.clone())),
        });
        out.billing_address = registration.map(address);
    }
    out.shipping_address = order
        .fulfillment_start_instructions
        .into_iter()
        .find_map(|i| i.shipping_step.and_then(|s| s.ship_to))
        .map(address);
    Ok(out)
}
