//! `api:order`: an order that backfill or polling read from the Admin GraphQL API
//! (<https://shopify.dev/docs/api/admin-graphql/latest/objects/Order>), published as
//! `{"order": <the Order node>, "lineItems": [<further lineItems connections>, …]}`. The
//! first page of lines is in the node; an order with more lines brings the rest as further
//! connection objects of the same shape, whose nodes follow the node's own, in order.
//!
//! The node is the same order a webhook carries, spelled differently, so it is rewritten into
//! the REST shape and mapped by [`order_event`]: one mapping of statuses, money, customer and
//! addresses for both paths. GraphQL's differences, and what they become:
//! - ids are gids (`gid://shopify/Order/450789469`); `legacyResourceId` is the REST id, and
//!   without it the gid's numeric tail, so one order keeps one key whichever path it came by;
//! - money is a `MoneyBag`; its `shopMoney` is the REST `*_price` amount;
//! - `displayFinancialStatus` is the REST `financial_status` upper-cased (`EXPIRED` has no
//!   REST value and stays unknown); `displayFulfillmentStatus` `FULFILLED` and
//!   `PARTIALLY_FULFILLED` are REST's `fulfilled` and `partial`, every other value none;
//! - a line's discount is the sum of its `discountAllocations` (codes, automatic and manual
//!   discounts), as the webhook path sums `discount_allocations`; `totalDiscountSet` holds
//!   only discounts set through draft orders, scripts or the API, and is read only for a
//!   line without allocations, as the REST `total_discount` is.
//!
//! A document says nothing of what happened, only how the order is now: it is a cancellation
//! when `cancelledAt` is set, a creation while `updatedAt` is `createdAt`, else an update.
//! A document whose last page of lines says there is a next one is missing lines, and is
//! invalid rather than booked short.

use orderbridge_schemas::{EventType, OrderEvent};
use serde::Deserialize;

use super::super::common::{self, invalid, timestamp, Amount, Id};
use super::super::{NormalizeError, RawRecord};
use super::{
    order_event, Allocation, Line, MoneySet, Order, ShopMoney, ShopifyAddress, ShopifyCustomer,
    TaxLine,
};

/// The event type of an order read from the API.
pub(super) const ORDER_DOCUMENT: &str = "api:order";

/// The event of an API document.
///
/// # Errors
/// [`NormalizeError::Unsupported`] for a kind other than [`ORDER_DOCUMENT`],
/// [`NormalizeError::Unparseable`] for a body that is not the envelope, and
/// [`NormalizeError::Invalid`] for a document without an order, an id, or all of its lines.
pub(super) fn order(raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
    if raw.event_type != ORDER_DOCUMENT {
        return Err(NormalizeError::Unsupported(raw.event_type.to_owned()));
    }
    let document: Document = common::parse(raw.body)?;
    let node = document
        .order
        .ok_or_else(|| invalid("the document has no order"))?;

    let (created_at, _) = timestamp("createdAt", node.created_at.as_deref())?;
    let (updated_at, _) = timestamp("updatedAt", node.updated_at.as_deref())?;
    let event_type = if node.cancelled_at.is_some() {
        EventType::Cancelled
    } else if updated_at.is_none() || updated_at == created_at {
        EventType::Created
    } else {
        EventType::Updated
    };

    let pages: Vec<Connection> = node
        .line_items
        .into_iter()
        .chain(document.line_items.into_iter().flatten())
        .collect();
    if pages
        .last()
        .and_then(|page| page.page_info.as_ref())
        .and_then(|info| info.has_next_page)
        == Some(true)
    {
        return Err(invalid(
            "the document's last page of lineItems has a next page: lines are missing",
        ));
    }
    let line_items = pages
        .into_iter()
        .flat_map(|page| page.nodes.into_iter().flatten())
        .map(line)
        .collect();

    let order = Order {
        id: present(node.legacy_resource_id).or_else(|| gid_tail(node.id.as_deref())),
        name: node.name,
        email: node.email,
        contact_email: None,
        created_at: node.created_at,
        updated_at: node.updated_at,
        cancelled_at: node.cancelled_at,
        closed_at: node.closed_at,
        currency: node.currency_code,
        financial_status: node
            .display_financial_status
            .map(|status| status.to_ascii_lowercase()),
        fulfillment_status: node.display_fulfillment_status.and_then(|status| {
            match status.as_str() {
                "FULFILLED" => Some("fulfilled".to_owned()),
                "PARTIALLY_FULFILLED" => Some("partial".to_owned()),
                _ => None,
            }
        }),
        total_price: amount(node.total_price_set),
        current_total_price: amount(node.current_total_price_set),
        subtotal_price: None,
        current_subtotal_price: amount(node.current_subtotal_price_set),
        total_tax: None,
        current_total_tax: amount(node.current_total_tax_set),
        total_discounts: None,
        current_total_discounts: amount(node.current_total_discounts_set),
        total_shipping_price_set: amount(node.total_shipping_price_set).map(|amount| MoneySet {
            shop_money: ShopMoney { amount },
        }),
        shipping_lines: Vec::new(),
        line_items,
        customer: node.customer.map(|c| ShopifyCustomer {
            id: present(c.legacy_resource_id),
            email: c.email,
            first_name: c.first_name,
            last_name: c.last_name,
        }),
        shipping_address: node.shipping_address.map(address),
        billing_address: node.billing_address.map(address),
        landing_site: None,
        referring_site: None,
    };
    order_event(raw, event_type, order)
}

fn line(node: LineNode) -> Line {
    Line {
        id: gid_tail(node.id.as_deref()),
        sku: node.sku,
        title: node.title,
        name: node.name,
        quantity: node.quantity,
        price: amount(node.original_unit_price_set),
        total_discount: amount(node.total_discount_set),
        discount_allocations: node
            .discount_allocations
            .into_iter()
            .flatten()
            .map(|allocation| Allocation {
                amount: allocation.allocated_amount_set.shop_money.amount,
            })
            .collect(),
        tax_lines: node
            .tax_lines
            .into_iter()
            .flatten()
            .map(|tax| TaxLine {
                price: tax.price_set.shop_money.amount,
            })
            .collect(),
    }
}

fn address(a: MailingAddress) -> ShopifyAddress {
    ShopifyAddress {
        name: a.name,
        first_name: a.first_name,
        last_name: a.last_name,
        company: a.company,
        address1: a.address1,
        address2: a.address2,
        city: a.city,
        province: a.province,
        province_code: a.province_code,
        zip: a.zip,
        country_code: a.country_code_v2,
        phone: a.phone,
    }
}

fn amount(bag: Option<MoneyBag>) -> Option<Amount> {
    bag.map(|bag| bag.shop_money.amount)
}

/// `id` unless it is blank, which is no id.
fn present(id: Option<Id>) -> Option<Id> {
    id.filter(|id| !id.to_string().is_empty())
}

/// The numeric tail of a gid (`gid://shopify/LineItem/466157049` → `466157049`): the id the
/// REST API and the webhooks use.
fn gid_tail(gid: Option<&str>) -> Option<Id> {
    let (_, tail) = gid?.trim().rsplit_once('/')?;
    tail.parse().ok().map(Id::Number)
}

/// What the API client publishes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    order: Option<OrderNode>,
    /// The pages of lines after the node's own.
    line_items: Option<Vec<Connection>>,
}

/// The fields of `Order` the client asks for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderNode {
    id: Option<String>,
    legacy_resource_id: Option<Id>,
    name: Option<String>,
    email: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    cancelled_at: Option<String>,
    closed_at: Option<String>,
    currency_code: Option<String>,
    display_financial_status: Option<String>,
    display_fulfillment_status: Option<String>,
    total_price_set: Option<MoneyBag>,
    current_total_price_set: Option<MoneyBag>,
    current_subtotal_price_set: Option<MoneyBag>,
    current_total_tax_set: Option<MoneyBag>,
    current_total_discounts_set: Option<MoneyBag>,
    total_shipping_price_set: Option<MoneyBag>,
    customer: Option<CustomerNode>,
    shipping_address: Option<MailingAddress>,
    billing_address: Option<MailingAddress>,
    line_items: Option<Connection>,
}

/// A page of `lineItems`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Option<Vec<LineNode>>,
    page_info: Option<PageInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineNode {
    id: Option<String>,
    sku: Option<String>,
    title: Option<String>,
    name: Option<String>,
    quantity: Option<i64>,
    original_unit_price_set: Option<MoneyBag>,
    total_discount_set: Option<MoneyBag>,
    discount_allocations: Option<Vec<DiscountAllocationNode>>,
    tax_lines: Option<Vec<TaxLineNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiscountAllocationNode {
    allocated_amount_set: MoneyBag,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaxLineNode {
    price_set: MoneyBag,
}

/// An amount in the shop's and the buyer's currencies; only the shop's is read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyBag {
    shop_money: Money,
}

#[derive(Debug, Deserialize)]
struct Money {
    amount: Amount,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerNode {
    legacy_resource_id: Option<Id>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailingAddress {
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
    country_code_v2: Option<String>,
    phone: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeZone, Utc};
    use orderbridge_schemas::{OrderStatus, Source};
    use serde_json::json;

    use super::super::ShopifyNormalizer;
    use super::*;
    use crate::sources::Normalizer;

    fn raw<'a>(event_type: &'a str, body: &'a [u8]) -> RawRecord<'a> {
        RawRecord {
            source: Source::Shopify,
            account: "shop.myshopify.com",
            event_type,
            event_id: "backfill-1",
            received_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
            origin: "backfill",
            topic: "orders.raw.v1",
            partition: 0,
            offset: 0,
            body,
        }
    }

    fn normalize(document: &serde_json::Value) -> Result<OrderEvent, NormalizeError> {
        let body = serde_json::to_vec(document).unwrap();
        ShopifyNormalizer.normalize(&raw(ORDER_DOCUMENT, &body))
    }

    fn line(id: u64, sku: &str) -> serde_json::Value {
        json!({
            "id": format!("gid://shopify/LineItem/{id}"),
            "sku": sku,
            "title": sku,
            "quantity": 1,
            "originalUnitPriceSet": {"shopMoney": {"amount": "10.00", "currencyCode": "USD"}},
            "totalDiscountSet": {"shopMoney": {"amount": "0.0", "currencyCode": "USD"}},
            "taxLines": [],
        })
    }

    fn order(lines: serde_json::Value, has_next_page: bool) -> serde_json::Value {
        json!({
            "id": "gid://shopify/Order/450789469",
            "legacyResourceId": "450789469",
            "currencyCode": "USD",
            "createdAt": "2025-04-22T19:30:00Z",
            "updatedAt": "2025-04-22T19:30:00Z",
            "lineItems": {"nodes": lines, "pageInfo": {"hasNextPage": has_next_page, "endCursor": "c1"}},
        })
    }

    #[test]
    fn lines_of_further_pages_follow_the_nodes_own() {
        let document = json!({
            "order": order(json!([line(1, "A"), line(2, "B")]), true),
            "lineItems": [
                {"nodes": [line(3, "C")], "pageInfo": {"hasNextPage": true, "endCursor": "c2"}},
                {"nodes": [line(4, "D")], "pageInfo": {"hasNextPage": false, "endCursor": null}},
            ],
        });
        let event = normalize(&document).unwrap();
        let ids: Vec<_> = event
            .line_items
            .iter()
            .map(|l| l.line_id.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["1", "2", "3", "4"]);
        assert_eq!(event.event_type, EventType::Created);
    }

    #[test]
    fn a_document_still_promising_a_page_of_lines_is_invalid() {
        let document = json!({"order": order(json!([line(1, "A")]), true)});
        assert_eq!(normalize(&document).unwrap_err().class(), "invalid");
    }

    #[test]
    fn a_cancelled_order_is_a_cancellation() {
        let mut node = order(json!([line(1, "A")]), false);
        node["updatedAt"] = json!("2025-04-23T08:00:00Z");
        node["cancelledAt"] = json!("2025-04-23T08:00:00Z");
        node["cancelReason"] = json!("CUSTOMER");
        let event = normalize(&json!({"order": node})).unwrap();
        assert_eq!(event.event_type, EventType::Cancelled);
        assert_eq!(event.status, OrderStatus::Cancelled);
    }

    #[test]
    fn a_later_updated_at_is_an_update() {
        let mut node = order(json!([]), false);
        node["updatedAt"] = json!("2025-04-23T08:00:00Z");
        let event = normalize(&json!({"order": node})).unwrap();
        assert_eq!(event.event_type, EventType::Updated);
    }

    #[test]
    fn without_a_legacy_id_the_gids_tail_is_the_id() {
        let mut node = order(json!([]), false);
        node["legacyResourceId"] = serde_json::Value::Null;
        let event = normalize(&json!({"order": node})).unwrap();
        assert_eq!(event.source_order_id, "450789469");

        node["id"] = json!("gid://shopify/Order/");
        let err = normalize(&json!({"order": node})).unwrap_err();
        assert_eq!(err.class(), "invalid");
    }

    #[test]
    fn garbage_is_unparseable_no_order_invalid_another_kind_unsupported() {
        let garbage = ShopifyNormalizer
            .normalize(&raw(ORDER_DOCUMENT, b"<html>"))
            .unwrap_err();
        assert_eq!(garbage.class(), "unparseable");
        assert_eq!(
            normalize(&json!({"order": null})).unwrap_err().class(),
            "invalid"
        );
        let other = ShopifyNormalizer
            .normalize(&raw("api:customer", b"{}"))
            .unwrap_err();
        assert_eq!(other.class(), "unsupported");
    }
}
