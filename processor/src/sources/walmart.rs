//! Walmart Marketplace: `PO_CREATED` (alone, or as the `subEventType` of `ORDER_UPDATES`)
//! carries the purchase order's lines with SKU and quantity but no prices, currency or
//! buyer, so it becomes a partial created event; the order API has the rest. `FRAUD_CANCEL`
//! (a sub-event of `ORDER_UPDATES`) cancels the whole purchase order: a partial cancelled
//! event. `PO_LINE_AUTOCANCELLED` and `INTENT_TO_CANCEL` do not say what the order is now and
//! are unsupported. The version is `source.eventTime`.
//!
//! With `[api.walmart]`, the enrich stage fetches the purchase order (`api:getAnOrder`, the
//! Orders API's order object), read here as a whole order: each order line's `PRODUCT`
//! charge is its unit price (the quantity is `orderLineQuantity.amount`, a string) with its
//! tax; `SHIPPING` charges are the line's shipping with theirs. The total is what those add
//! up to (Walmart states none). Lines whose statuses are all `Cancelled` count as cancelled:
//! every line cancelled cancels the order; all shipped or delivered fulfils it, some
//! partly. The buyer is `customerEmailId` (a relay address) and `shippingInfo`'s name, the
//! goods go to `shippingInfo.postalAddress` (`USA` is `US`). Walmart states no time of
//! change: the version is the latest `statusDate` of a line (else `orderDate`).

use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::common::{self, invalid, money, parse, timestamp, trimmed, Amount, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes Walmart notifications.
#[derive(Debug, Clone, Copy)]
pub struct WalmartNormalizer;

#[derive(Debug, Deserialize)]
struct Notification {
    source: Option<SourceInfo>,
    payload: Option<Payload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceInfo {
    event_type: Option<String>,
    event_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    sub_event_type: Option<String>,
    purchase_order_id: Option<Id>,
    customer_order_id: Option<Id>,
    order_date: Option<String>,
    #[serde(default)]
    order_lines: Vec<Line>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    line_number: Option<Id>,
    sku: Option<String>,
    product_name: Option<String>,
    quantity: Option<Quantity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Quantity {
    measurement_value: Option<Amount>,
}

/// A whole number of units from Walmart's decimal text.
fn units(field: &str, amount: &Amount) -> Result<i64, NormalizeError> {
    let quantity = amount.parse(field)?;
    quantity
        .fract()
        .is_zero()
        .then(|| quantity.to_i64())
        .flatten()
        .ok_or_else(|| invalid(&format!("{field}: a quantity that is not whole")))
}

impl Normalizer for WalmartNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return order(raw, parse(raw.body)?);
        }
        let notification: Notification = parse(raw.body)?;
        let source = notification.source.ok_or_else(|| invalid("no source"))?;
        let payload = notification.payload.ok_or_else(|| invalid("no payload"))?;
        let kind = match source.event_type.as_deref() {
            Some("ORDER_UPDATES") => payload.sub_event_type.clone().unwrap_or_default(),
            other => other.unwrap_or_default().to_owned(),
        };
        let id = common::required_id(payload.purchase_order_id.as_ref(), "purchaseOrderId")?;
        match kind.as_str() {
            "PO_CREATED" => {}
            // Walmart cancelled the whole purchase order; nothing else is carried.
            "FRAUD_CANCEL" => {
                let mut out = common::event(raw, &id);
                out.partial = true;
                out.event_type = EventType::Cancelled;
                out.status = OrderStatus::Cancelled;
                let (event_at, original) = timestamp("eventTime", source.event_time.as_deref())?;
                out.source_updated_at = event_at;
                out.source_updated_at_original = original;
                out.version = common::version(event_at, raw);
                return Ok(out);
            }
            // A line cancelled, or a buyer's request to cancel: neither says what the order
            // is now, so they wait for the order API (kept, replayable).
            _ => return Err(NormalizeError::Unsupported(kind)),
        }
        let mut out = common::event(raw, &id);
        out.partial = true;
        out.event_type = EventType::Created;
        out.status = OrderStatus::Open;
        out.order_number = payload.customer_order_id.map(|id| id.to_string());
        out.line_items = payload
            .order_lines
            .into_iter()
            .map(|line| {
                let quantity = line
                    .quantity
                    .and_then(|q| q.measurement_value)
                    .ok_or_else(|| invalid("an order line has no quantity"))?;
                Ok(LineItem {
                    line_id: line.line_number.map(|n| n.to_string()),
                    sku: trimmed(line.sku),
                    title: trimmed(line.product_name).unwrap_or_default(),
                    quantity: units("orderLines.quantity.measurementValue", &quantity)?,
                    unit_price: Decimal::ZERO,
                    discount: Decimal::ZERO,
                    tax: Decimal::ZERO,
                })
            })
            .collect::<Result<_, NormalizeError>>()?;
        let (created_at, created_original) = timestamp("orderDate", payload.order_date.as_deref())?;
        let (event_at, event_original) = timestamp("eventTime", source.event_time.as_deref())?;
        out.source_created_at = created_at;
        out.source_created_at_original = created_original;
        out.source_updated_at = event_at;
        out.source_updated_at_original = event_original;
        out.version = common::version(event_at, raw);
        Ok(out)
    }
}

/// The Orders API's order, as far as the canonical order needs it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    purchase_order_id: Option<Id>,
    customer_order_id: Option<Id>,
    customer_email_id: Option<String>,
    order_date: Option<i64>,
    shipping_info: Option<ShippingInfo>,
    order_lines: Option<OrderLines>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShippingInfo {
    phone: Option<String>,
    postal_address: Option<PostalAddress>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostalAddress {
    name: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderLines {
    #[serde(default)]
    order_line: Vec<OrderLine>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderLine {
    line_number: Option<Id>,
    item: Option<Item>,
    charges: Option<Charges>,
    order_line_quantity: Option<LineQuantity>,
    status_date: Option<i64>,
    order_line_statuses: Option<Statuses>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    product_name: Option<String>,
    sku: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Charges {
    #[serde(default)]
    charge: Vec<Charge>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Charge {
    charge_type: Option<String>,
    charge_amount: Option<Money>,
    tax: Option<ChargeTax>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChargeTax {
    tax_amount: Option<Money>,
}

#[derive(Debug, Deserialize)]
struct Money {
    currency: Option<String>,
    amount: Option<Amount>,
}

#[derive(Debug, Deserialize)]
struct LineQuantity {
    amount: Option<Amount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statuses {
    #[serde(default)]
    order_line_status: Vec<LineStatus>,
}

#[derive(Debug, Deserialize)]
struct LineStatus {
    status: Option<String>,
}

/// Walmart `Money` in `currency` (absent: zero; the first one seen sets the currency).
fn amount(
    field: &str,
    value: Option<&Money>,
    currency: &mut Option<String>,
) -> Result<Decimal, NormalizeError> {
    let Some(m) = value else {
        return Ok(Decimal::ZERO);
    };
    if let Some(code) = m.currency.as_deref() {
        let code = common::currency(Some(code))?;
        match currency {
            Some(known) if *known != code => {
                return Err(invalid(&format!(
                    "{field} is in {code}, the order in {known}"
                )))
            }
            Some(_) => {}
            None => *currency = Some(code),
        }
    }
    money(field, m.amount.as_ref())
}

/// A whole purchase order (see the module docs).
fn order(raw: &RawRecord<'_>, order: Order) -> Result<OrderEvent, NormalizeError> {
    let id = common::required_id(order.purchase_order_id.as_ref(), "purchaseOrderId")?;
    let mut out = common::event(raw, &id);
    out.order_number = order.customer_order_id.map(|id| id.to_string());
    let mut currency: Option<String> = None;
    let (mut lines_total, mut cancelled, mut shipped) = (0usize, 0usize, 0usize);
    let mut latest = order.order_date;
    for line in order.order_lines.map(|l| l.order_line).unwrap_or_default() {
        lines_total += 1;
        latest = latest.max(line.status_date);
        let statuses: Vec<String> = line
            .order_line_statuses
            .map(|s| s.order_line_status)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.status)
            .collect();
        if !statuses.is_empty() && statuses.iter().all(|s| s.eq_ignore_ascii_case("Cancelled")) {
            cancelled += 1;
        } else if !statuses.is_empty()
            && statuses
                .iter()
                .all(|s| matches!(s.as_str(), "Shipped" | "Delivered" | "Cancelled"))
        {
            shipped += 1;
        }
        let quantity = units(
            "orderLineQuantity.amount",
            line.order_line_quantity
                .as_ref()
                .and_then(|q| q.amount.as_ref())
                .ok_or_else(|| invalid("an order line has no orderLineQuantity"))?,
        )?;
        let (mut unit_price, mut tax) = (Decimal::ZERO, Decimal::ZERO);
        for charge in line.charges.map(|c| c.charge).unwrap_or_default() {
            let value = amount("chargeAmount", charge.charge_amount.as_ref(), &mut currency)?;
            let charge_tax = amount(
                "taxAmount",
                charge.tax.as_ref().and_then(|t| t.tax_amount.as_ref()),
                &mut currency,
            )?;
            tax = common::add("tax", tax, charge_tax)?;
            match charge.charge_type.as_deref() {
                Some("PRODUCT") => unit_price = common::add("PRODUCT", unit_price, value)?,
                Some("SHIPPING") => {
                    out.totals.shipping = common::add("SHIPPING", out.totals.shipping, value)?
                }
                other => return Err(invalid(&format!("unknown chargeType {other:?}"))),
            }
        }
        let item = line.item;
        let line = LineItem {
            line_id: line.line_number.map(|n| n.to_string()),
            sku: item.as_ref().and_then(|i| trimmed(i.sku.clone())),
            title: item
                .and_then(|i| trimmed(i.product_name))
                .unwrap_or_default(),
            quantity,
            unit_price,
            discount: Decimal::ZERO,
            tax,
        };
        out.totals.subtotal =
            common::add("subtotal", out.totals.subtotal, common::line_amount(&line)?)?;
        out.totals.tax = common::add("tax", out.totals.tax, tax)?;
        out.line_items.push(line);
    }
    out.currency = currency.ok_or_else(|| invalid("no charge says the order's currency"))?;
    out.totals.total = common::sum(
        "total",
        [
            Ok(out.totals.subtotal),
            Ok(out.totals.shipping),
            Ok(out.totals.tax),
        ],
    )?;
    (out.event_type, out.status) = if lines_total > 0 && cancelled == lines_total {
        (EventType::Cancelled, OrderStatus::Cancelled)
    } else if lines_total > 0 && shipped + cancelled == lines_total {
        (EventType::Fulfilled, OrderStatus::Fulfilled)
    } else if shipped > 0 {
        (EventType::Fulfilled, OrderStatus::PartiallyFulfilled)
    } else {
        (EventType::Created, OrderStatus::Open)
    };
    out.payment_status = PaymentStatus::Paid;
    let shipping = order.shipping_info;
    let address = shipping.as_ref().and_then(|s| s.postal_address.as_ref());
    out.customer = Some(Customer {
        id: None,
        email: trimmed(order.customer_email_id),
        name: address.and_then(|a| trimmed(a.name.clone())),
    });
    out.shipping_address = address.map(|a| Address {
        name: trimmed(a.name.clone()),
        company: None,
        line1: trimmed(a.address1.clone()),
        line2: trimmed(a.address2.clone()),
        city: trimmed(a.city.clone()),
        region: trimmed(a.state.clone()),
        postal_code: trimmed(a.postal_code.clone()),
        country_code: trimmed(a.country.clone()).map(|c| match c.as_str() {
            "USA" => "US".to_owned(),
            _ => c,
        }),
        phone: shipping.as_ref().and_then(|s| trimmed(s.phone.clone())),
    });
    let (created_at, created_original) = common::unix_millis("orderDate", order.order_date)?;
    let (updated_at, updated_original) = common::unix_millis("statusDate", latest)?;
    out.source_created_at = created_at;
    out.source_created_at_original = created_original;
    out.source_updated_at = updated_at;
    out.source_updated_at_original = updated_original;
    out.version = common::version(updated_at.or(created_at), raw);
    Ok(out)
}
