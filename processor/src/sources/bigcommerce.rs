//! BigCommerce: webhooks name an order and what happened to it, nothing more
//! (`{producer: "stores/<hash>", scope, created_at, data: {type: "order", id, status?}}`).
//! Without `[api.bigcommerce]` each becomes a partial event: `store/order/created` an open
//! order, `store/order/statusUpdated` its new status (`data.status.new_status_id`),
//! `store/order/archived` a closed one, `store/order/updated` a change of unknown status.
//! The version is the webhook's `created_at`.
//!
//! With it, the enrich stage fetches the order and its lines (`api:order`: `{"order": <GET
//! /v2/orders/{id}>, "products": [<GET …/products page>, …]}`), read here as a whole order:
//! money is four-decimal text; `total_inc_tax` is the total, `subtotal_ex_tax` the
//! subtotal, `total_tax` the tax, `shipping_cost_ex_tax` the shipping, `discount_amount` the
//! discount; each product row is a line with its unit `price_ex_tax`, `quantity`,
//! `total_tax` and the `applied_discounts` amounts (bundled children, priced at zero, are
//! part of their parent and left out). The buyer and the address are `billing_address`.
//! Dates are RFC 2822; the version is `date_modified`.
//!
//! Statuses (`status_id`): 0 incomplete, 1 pending, 7 awaiting payment, 12 manual
//! verification → open, payment pending; 8, 9, 11 awaiting pickup, shipment, fulfilment →
//! open, paid; 2 shipped, 10 completed → fulfilled; 3 partially shipped → partly fulfilled;
//! 4 refunded → cancelled, refunded; 5 cancelled, 6 declined → cancelled; 13 disputed → open;
//! 14 partially refunded → open, partly refunded.

use chrono::DateTime;
use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus,
};
use serde::Deserialize;

use super::common::{self, invalid, money, parse, trimmed, unix_seconds, Amount, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes BigCommerce webhooks and orders.
#[derive(Debug, Clone, Copy)]
pub struct BigcommerceNormalizer;

#[derive(Debug, Deserialize)]
struct Webhook {
    scope: Option<String>,
    created_at: Option<i64>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    id: Option<Id>,
    status: Option<StatusChange>,
}

#[derive(Debug, Deserialize)]
struct StatusChange {
    new_status_id: Option<i64>,
}

/// What a `status_id` means: (status, payment).
fn status_of(id: i64) -> Result<(OrderStatus, PaymentStatus), NormalizeError> {
    Ok(match id {
        0 | 1 | 7 | 12 => (OrderStatus::Open, PaymentStatus::Pending),
        8 | 9 | 11 => (OrderStatus::Open, PaymentStatus::Paid),
        2 | 10 => (OrderStatus::Fulfilled, PaymentStatus::Paid),
        3 => (OrderStatus::PartiallyFulfilled, PaymentStatus::Paid),
        4 => (OrderStatus::Cancelled, PaymentStatus::Refunded),
        5 | 6 => (OrderStatus::Cancelled, PaymentStatus::Unknown),
        13 => (OrderStatus::Open, PaymentStatus::Unknown),
        14 => (OrderStatus::Open, PaymentStatus::PartiallyRefunded),
        other => return Err(invalid(&format!("unknown status_id {other}"))),
    })
}

fn event_of(status: OrderStatus) -> EventType {
    match status {
        OrderStatus::Cancelled => EventType::Cancelled,
        OrderStatus::Fulfilled | OrderStatus::PartiallyFulfilled => EventType::Fulfilled,
        OrderStatus::Unknown | OrderStatus::Open | OrderStatus::Closed => EventType::Updated,
    }
}

impl Normalizer for BigcommerceNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return order(raw, parse(raw.body)?);
        }
        let webhook: Webhook = parse(raw.body)?;
        let scope = webhook.scope.as_deref().unwrap_or(raw.event_type);
        let data = webhook.data.ok_or_else(|| invalid("no data"))?;
        let id = common::required_id(data.id.as_ref(), "data.id")?;
        let mut out = common::event(raw, &id);
        out.partial = true;
        match scope {
            "store/order/created" => {
                out.event_type = EventType::Created;
                out.status = OrderStatus::Open;
            }
            "store/order/updated" => out.event_type = EventType::Updated,
            "store/order/archived" => {
                out.event_type = EventType::Updated;
                out.status = OrderStatus::Closed;
            }
            "store/order/statusUpdated" => {
                let new = data
                    .status
                    .and_then(|s| s.new_status_id)
                    .ok_or_else(|| invalid("data.status.new_status_id is missing"))?;
                (out.status, out.payment_status) = status_of(new)?;
                out.event_type = event_of(out.status);
            }
            other => return Err(NormalizeError::Unsupported(other.to_owned())),
        }
        let (at, original) = unix_seconds("created_at", webhook.created_at)?;
        out.source_updated_at = at;
        out.source_updated_at_original = original;
        out.version = common::version(at, raw);
        Ok(out)
    }
}

/// The enrich stage's document: the order and its product pages.
#[derive(Debug, Deserialize)]
struct Document {
    order: Order,
    #[serde(default)]
    products: Vec<Vec<Product>>,
}

#[derive(Debug, Deserialize)]
struct Order {
    id: Option<Id>,
    customer_id: Option<Id>,
    date_created: Option<String>,
    date_modified: Option<String>,
    status_id: Option<i64>,
    subtotal_ex_tax: Option<Amount>,
    shipping_cost_ex_tax: Option<Amount>,
    total_inc_tax: Option<Amount>,
    total_tax: Option<Amount>,
    discount_amount: Option<Amount>,
    currency_code: Option<String>,
    billing_address: Option<BillingAddress>,
}

#[derive(Debug, Deserialize)]
struct BillingAddress {
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    street_1: Option<String>,
    street_2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    zip: Option<String>,
    country_iso2: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Product {
    id: Option<Id>,
    name: Option<String>,
    sku: Option<String>,
    quantity: Option<i64>,
    price_ex_tax: Option<Amount>,
    total_tax: Option<Amount>,
    #[serde(default)]
    is_bundled_product: bool,
    #[serde(default)]
    applied_discounts: Vec<Discount>,
}

#[derive(Debug, Deserialize)]
struct Discount {
    amount: Option<Amount>,
}

/// An RFC 2822 date, and the text as BigCommerce wrote it.
fn rfc2822(
    field: &str,
    value: Option<&str>,
) -> Result<(Option<chrono::DateTime<chrono::Utc>>, Option<String>), NormalizeError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok((None, None));
    };
    let at = DateTime::parse_from_rfc2822(text)
        .map_err(|err| invalid(&format!("{field} {text:?}: {err}")))?
        .with_timezone(&chrono::Utc);
    Ok((Some(at), Some(text.to_owned())))
}

/// A whole order (see the module docs).
fn order(raw: &RawRecord<'_>, document: Document) -> Result<OrderEvent, NormalizeError> {
    let order = document.order;
    let id = common::required_id(order.id.as_ref(), "id")?;
    let mut out = common::event(raw, &id);
    out.currency = common::currency(order.currency_code.as_deref())?;
    (out.status, out.payment_status) = status_of(
        order
            .status_id
            .ok_or_else(|| invalid("the order has no status_id"))?,
    )?;
    let (created_at, created_original) = rfc2822("date_created", order.date_created.as_deref())?;
    let (updated_at, updated_original) = rfc2822("date_modified", order.date_modified.as_deref())?;
    let event_type = event_of(out.status);
    out.event_type =
        if event_type == EventType::Updated && (updated_at.is_none() || updated_at == created_at) {
            EventType::Created
        } else {
            event_type
        };
    out.source_created_at = created_at;
    out.source_created_at_original = created_original;
    out.source_updated_at = updated_at;
    out.source_updated_at_original = updated_original;
    out.version = common::version(updated_at.or(created_at), raw);
    out.totals.total = money("total_inc_tax", order.total_inc_tax.as_ref())?;
    out.totals.subtotal = money("subtotal_ex_tax", order.subtotal_ex_tax.as_ref())?;
    out.totals.tax = money("total_tax", order.total_tax.as_ref())?;
    out.totals.shipping = money("shipping_cost_ex_tax", order.shipping_cost_ex_tax.as_ref())?;
    out.totals.discount = money("discount_amount", order.discount_amount.as_ref())?;
    for product in document.products.into_iter().flatten() {
        if product.is_bundled_product {
            continue;
        }
        out.line_items.push(LineItem {
            line_id: product.id.map(|id| id.to_string()),
            sku: trimmed(product.sku),
            title: trimmed(product.name).unwrap_or_default(),
            quantity: product
                .quantity
                .ok_or_else(|| invalid("a product has no quantity"))?,
            unit_price: money("price_ex_tax", product.price_ex_tax.as_ref())?,
            discount: common::sum(
                "applied_discounts",
                product
                    .applied_discounts
                    .iter()
                    .map(|d| money("applied_discounts.amount", d.amount.as_ref())),
            )?,
            tax: money("total_tax", product.total_tax.as_ref())?,
        });
    }
    if let Some(billing) = order.billing_address {
        let name = common::full_name(&billing.first_name, &billing.last_name);
        out.customer = Some(Customer {
            id: order
                .customer_id
                .map(|id| id.to_string())
                .filter(|id| id != "0"),
            email: trimmed(billing.email),
            name: name.clone(),
        });
        out.billing_address = Some(Address {
            name,
            company: trimmed(billing.company),
            line1: trimmed(billing.street_1),
            line2: trimmed(billing.street_2),
            city: trimmed(billing.city),
            region: trimmed(billing.state),
            postal_code: trimmed(billing.zip),
            country_code: trimmed(billing.country_iso2),
            phone: trimmed(billing.phone),
        });
    }
    Ok(out)
}
