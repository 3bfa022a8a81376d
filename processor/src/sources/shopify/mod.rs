//! Shopify `orders/create`, `orders/updated`, `orders/cancelled` and `orders/fulfilled` carry
//! the REST Order resource (<https://shopify.dev/docs/api/admin-rest/latest/resources/order>);
//! `refunds/create` carries a Refund (`refund.rs`), which becomes a partial `REFUNDED` event.
//! UTM parameters of the order's landing site, or its referring site, become its last touch
//! (`attribution.rs`). An order that backfill or polling read from the Admin GraphQL API
//! (`api:order`, `graphql.rs`) is rewritten into the REST shape and mapped the same way.
//!
//! Amounts are taken in the shop's currency (`currency`, the `*_price` fields), which is what
//! the books are kept in; the buyer's presentment currency is not used for ERP amounts.
//! The `current_*` fields (after edits and refunds) win over the originals when present.

use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus, Totals,
};
use serde::Deserialize;

mod attribution;
mod graphql;
mod refund;

use super::common::{self, currency, full_name, invalid, money, timestamp, trimmed, Amount, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes Shopify order webhooks and orders read from the Admin GraphQL API.
#[derive(Debug, Clone, Copy)]
pub struct ShopifyNormalizer;

impl Normalizer for ShopifyNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return graphql::order(raw);
        }
        let event_type = match raw.event_type {
            "orders/create" => EventType::Created,
            "orders/updated" => EventType::Updated,
            "orders/cancelled" => EventType::Cancelled,
            "orders/fulfilled" => EventType::Fulfilled,
            "refunds/create" => return refund::refund_event(raw),
            other => return Err(NormalizeError::Unsupported(other.to_owned())),
        };
        let order: Order = serde_json::from_slice(raw.body)
            .map_err(|err| NormalizeError::Unparseable(err.to_string()))?;
        order_event(raw, event_type, order)
    }
}

fn order_event(
    raw: &RawRecord<'_>,
    event_type: EventType,
    order: Order,
) -> Result<OrderEvent, NormalizeError> {
    let id = order
        .id
        .ok_or_else(|| invalid("order has no id"))?
        .to_string();
    let currency = currency(order.currency.as_deref())?;
    // The UTC instants order events; the text as sent keeps the shop's offset.
    let (created_at, created_original) = timestamp("created_at", order.created_at.as_deref())?;
    let (updated_at, updated_original) = timestamp("updated_at", order.updated_at.as_deref())?;
    let cancelled = order.cancelled_at.is_some() || event_type == EventType::Cancelled;

    let line_items = order
        .line_items
        .into_iter()
        .map(line_item)
        .collect::<Result<Vec<_>, _>>()?;
    let shipping = match order.total_shipping_price_set {
        Some(set) => set.shop_money.amount.parse("total_shipping_price_set")?,
        None => common::sum(
            "shipping_lines.price",
            order
                .shipping_lines
                .iter()
                .map(|line| line.price.parse("shipping_lines.price")),
        )?,
    };
    let totals = Totals {
        total: money(
            "total_price",
            order
                .current_total_price
                .as_ref()
                .or(order.total_price.as_ref()),
        )?,
        subtotal: money(
            "subtotal_price",
            order
                .current_subtotal_price
                .as_ref()
                .or(order.subtotal_price.as_ref()),
        )?,
        tax: money(
            "total_tax",
            order
                .current_total_tax
                .as_ref()
                .or(order.total_tax.as_ref()),
        )?,
        shipping,
        discount: money(
            "total_discounts",
            order
                .current_total_discounts
                .as_ref()
                .or(order.total_discounts.as_ref()),
        )?,
    };

    let customer_name = order
        .customer
        .as_ref()
        .and_then(|c| full_name(&c.first_name, &c.last_name));
    let email = trimmed(order.email)
        .or_else(|| trimmed(order.contact_email))
        .or_else(|| {
            order
                .customer
                .as_ref()
                .and_then(|c| trimmed(c.email.clone()))
        });
    let customer = match (&order.customer, &email) {
        (None, None) => None,
        (customer, _) => Some(Customer {
            id: customer
                .as_ref()
                .and_then(|c| c.id.as_ref())
                .map(ToString::to_string),
            email,
            name: customer_name,
        }),
    };

    let mut event = common::event(raw, &id);
    event.order_number = trimmed(order.name);
    event.event_type = event_type;
    event.status = if cancelled {
        OrderStatus::Cancelled
    } else if order.closed_at.is_some() && order.fulfillment_status.as_deref() == Some("fulfilled")
    {
        OrderStatus::Closed
    } else {
        match order.fulfillment_status.as_deref() {
            Some("fulfilled") => OrderStatus::Fulfilled,
            Some("partial") => OrderStatus::PartiallyFulfilled,
            _ => OrderStatus::Open,
        }
    };
    event.payment_status = match order.financial_status.as_deref() {
        Some("pending") => PaymentStatus::Pending,
        Some("authorized") => PaymentStatus::Authorized,
        Some("paid") => PaymentStatus::Paid,
        Some("partially_paid") => PaymentStatus::PartiallyPaid,
        Some("partially_refunded") => PaymentStatus::PartiallyRefunded,
        Some("refunded") => PaymentStatus::Refunded,
        Some("voided") => PaymentStatus::Voided,
        _ => PaymentStatus::Unknown,
    };
    // Shopify's updated_at moves forward with every change to the order, so it orders the
    // events of one order; received-at is the fallback for a body without it.
    event.version = common::version(updated_at.or(created_at), raw);
    event.currency = currency;
    event.totals = totals;
    event.line_items = line_items;
    event.customer = customer;
    event.shipping_address = order.shipping_address.map(address);
    event.billing_address = order.billing_address.map(address);
    event.source_created_at = created_at;
    event.source_updated_at = updated_at;
    event.source_created_at_original = created_original;
    event.source_updated_at_original = updated_original;
    event.attribution = attribution::from_landing(
        order.landing_site.as_deref(),
        order.referring_site.as_deref(),
    );
    Ok(event)
}

fn line_item(line: Line) -> Result<LineItem, NormalizeError> {
    let quantity = line
        .quantity
        .ok_or_else(|| invalid("line item has no quantity"))?;
    // Shopify recommends discount_allocations over the older total_discount, which only
    // holds discounts set through draft orders, scripts or the API.
    let discount = if line.discount_allocations.is_empty() {
        money("line_items.total_discount", line.total_discount.as_ref())?
    } else {
        common::sum(
            "line_items.discount_allocations.amount",
            line.discount_allocations
                .iter()
                .map(|d| d.amount.parse("line_items.discount_allocations.amount")),
        )?
    };
    Ok(LineItem {
        line_id: line.id.map(|id| id.to_string()),
        sku: trimmed(line.sku),
        title: trimmed(line.title)
            .or_else(|| trimmed(line.name))
            .unwrap_or_default(),
        quantity,
        unit_price: money("line_items.price", line.price.as_ref())?,
        discount,
        tax: common::sum(
            "line_items.tax_lines.price",
            line.tax_lines
                .iter()
                .map(|t| t.price.parse("line_items.tax_lines.price")),
        )?,
    })
}

fn address(a: ShopifyAddress) -> Address {
    Address {
        name: trimmed(a.name).or_else(|| full_name(&a.first_name, &a.last_name)),
        company: trimmed(a.company),
        line1: trimmed(a.address1),
        line2: trimmed(a.address2),
        city: trimmed(a.city),
        region: trimmed(a.province_code).or_else(|| trimmed(a.province)),
        postal_code: trimmed(a.zip),
        country_code: trimmed(a.country_code),
        phone: trimmed(a.phone),
    }
}

#[derive(Debug, Deserialize)]
struct Order {
    id: Option<Id>,
    name: Option<String>,
    email: Option<String>,
    contact_email: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    cancelled_at: Option<String>,
    closed_at: Option<String>,
    currency: Option<String>,
    financial_status: Option<String>,
    fulfillment_status: Option<String>,
    total_price: Option<Amount>,
    current_total_price: Option<Amount>,
    subtotal_price: Option<Amount>,
    current_subtotal_price: Option<Amount>,
    total_tax: Option<Amount>,
    current_total_tax: Option<Amount>,
    total_discounts: Option<Amount>,
    current_total_discounts: Option<Amount>,
    total_shipping_price_set: Option<MoneySet>,
    #[serde(default)]
    shipping_lines: Vec<ShippingLine>,
    #[serde(default)]
    line_items: Vec<Line>,
    customer: Option<ShopifyCustomer>,
    shipping_address: Option<ShopifyAddress>,
    billing_address: Option<ShopifyAddress>,
    /// Path and query of the page the buyer landed on, with any UTM parameters.
    landing_site: Option<String>,
    /// The site that referred the buyer.
    referring_site: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MoneySet {
    shop_money: ShopMoney,
}

#[derive(Debug, Deserialize)]
struct ShopMoney {
    amount: Amount,
}

#[derive(Debug, Deserialize)]
struct ShippingLine {
    price: Amount,
}

#[derive(Debug, Deserialize)]
struct Line {
    id: Option<Id>,
    sku: Option<String>,
    title: Option<String>,
    name: Option<String>,
    quantity: Option<i64>,
    price: Option<Amount>,
    total_discount: Option<Amount>,
    #[serde(default)]
    discount_allocations: Vec<Allocation>,
    #[serde(default)]
    tax_lines: Vec<TaxLine>,
}

#[derive(Debug, Deserialize)]
struct Allocation {
    amount: Amount,
}

#[derive(Debug, Deserialize)]
struct TaxLine {
    price: Amount,
}

#[derive(Debug, Deserialize)]
struct ShopifyCustomer {
    id: Option<Id>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ShopifyAddress {
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    province: Option<String>,
    province_code: Option<String>,
    zip: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::{TimeZone, Utc};
    use orderbridge_schemas::Source;

    fn raw<'a>(event_type: &'a str, body: &'a [u8]) -> RawRecord<'a> {
        RawRecord {
            source: Source::Shopify,
            account: "shop.myshopify.com",
            event_type,
            event_id: "e1",
            received_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
            origin: "webhook",
            topic: "orders.raw.v1",
            partition: 0,
            offset: 0,
            body,
        }
    }

    #[test]
    fn an_unknown_topic_is_unsupported_not_guessed() {
        let err = ShopifyNormalizer
            .normalize(&raw("products/update", b"{}"))
            .unwrap_err();
        assert_eq!(err.class(), "unsupported");
    }

    #[test]
    fn garbage_is_unparseable_and_a_missing_id_invalid() {
        assert_eq!(
            ShopifyNormalizer
                .normalize(&raw("orders/create", b"<html>"))
                .unwrap_err()
                .class(),
            "unparseable"
        );
        let no_id = br#"{"currency":"USD"}"#;
        assert_eq!(
            ShopifyNormalizer
                .normalize(&raw("orders/create", no_id))
                .unwrap_err()
                .class(),
            "invalid"
        );
        let bad_amount = br#"{"id":1,"currency":"USD","total_price":"12,50"}"#;
        let err = ShopifyNormalizer
            .normalize(&raw("orders/create", bad_amount))
            .unwrap_err();
        assert!(err.to_string().contains("total_price"), "{err}");
    }

    #[test]
    fn timestamps_become_utc() {
        let body = br#"{"id":1,"currency":"usd","created_at":"2025-04-22T14:30:00-05:00"}"#;
        let event = ShopifyNormalizer
            .normalize(&raw("orders/create", body))
            .unwrap();
        assert_eq!(
            event.source_created_at.unwrap().to_rfc3339(),
            "2025-04-22T19:30:00+00:00"
        );
        assert_eq!(event.currency, "USD");
        assert_eq!(
            event.version,
            orderbridge_schemas::version_at(event.source_created_at.unwrap())
        );
    }
}
