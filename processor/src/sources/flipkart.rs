//! Flipkart Marketplace order-management notifications. `shipment_created` is the one full
//! body: a shipment with its order items, each with `orderId`, SKU, quantity and
//! `priceComponents`. It becomes the order's created event (keyed by the first item's
//! `orderId`, as ingest keys it; a shipment spanning several orders is refused rather than
//! split by guess). Later events (`shipment_packed`, `shipment_shipped`, …) carry only the
//! shipment and a status, so they cannot be tied to an order here and are unsupported until
//! shipments are looked up.
//!
//! Flipkart states no currency: it is INR, the marketplace's only one. Per the contract,
//! `sellingPrice` is taken as the line's selling price for its quantity, `shippingCharge` as
//! its shipping and `totalPrice` as what the buyer pays for it ("customerPrice +
//! shippingCharge", so shipping included); the order's total is the sum of `totalPrice`. The
//! version is the event's `timestamp`.
//!
//! The unit price is sellingPrice ÷ quantity, which need not end at the paisa (499 for 3 is
//! 166.333…). It is rounded *up* to the paisa, and what that adds (less than a paisa a unit)
//! becomes the line's discount: unit price × quantity − discount is the selling price exactly,
//! so the line, the subtotal and the total stay what Flipkart charged (499 for 3: 166.34 each,
//! a discount of 0.02).
//!
//! With `[api.flipkart]`, the later (thin) events are completed: the enrich stage fetches the
//! shipment and its details (`api:shipment`: `{"shipments": {"shipments": [Shipment]},
//! "details": {"shipments": [{deliveryAddress, billingAddress, buyerDetails}]}}`), read here
//! as a whole order with the same rules for items and prices, the buyer's name and the
//! delivery address (`pinCode`, India). Its items' statuses say where the order is: all
//! `CANCELLED` cancels it, all shipped (`SHIPPED`, `PICKUP_COMPLETE`, `DELIVERED`,
//! `COMPLETED`) fulfils it. The version is the shipment's `updatedAt` (else its items'
//! latest `orderDate`).

use orderbridge_schemas::{
    Address, Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::common::{self, invalid, money, parse, timestamp, trimmed, Amount, Id};
use super::{NormalizeError, Normalizer, RawRecord};

/// Flipkart's currency.
const CURRENCY: &str = "INR";

/// Normalizes Flipkart notifications.
#[derive(Debug, Clone, Copy)]
pub struct FlipkartNormalizer;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    event_type: Option<String>,
    timestamp: Option<String>,
    attributes: Option<Attributes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    #[serde(default)]
    order_items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    order_item_id: Option<Id>,
    order_id: Option<Id>,
    order_date: Option<String>,
    sku: Option<String>,
    title: Option<String>,
    quantity: Option<i64>,
    status: Option<String>,
    price_components: Option<Prices>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prices {
    selling_price: Option<Amount>,
    total_price: Option<Amount>,
    shipping_charge: Option<Amount>,
}

impl Normalizer for FlipkartNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            return shipment(raw, parse(raw.body)?);
        }
        let notification: Notification = parse(raw.body)?;
        let kind = notification.event_type.as_deref().unwrap_or(raw.event_type);
        if kind != "shipment_created" {
            return Err(NormalizeError::Unsupported(kind.to_owned()));
        }
        let items = notification
            .attributes
            .map(|a| a.order_items)
            .unwrap_or_default();
        let mut out = order_items(raw, items)?;
        out.event_type = EventType::Created;
        out.status = OrderStatus::Open;
        let (at, original) = timestamp("timestamp", notification.timestamp.as_deref())?;
        out.source_updated_at = at;
        out.source_updated_at_original = original;
        out.version = common::version(at, raw);
        Ok(out)
    }
}

/// The event of the order `items` belong to (one order, or refused), with its lines and
/// totals as the module docs say; statuses and version are the caller's.
fn order_items(raw: &RawRecord<'_>, items: Vec<Item>) -> Result<OrderEvent, NormalizeError> {
    let first = items.first().ok_or_else(|| invalid("no orderItems"))?;
    let id = common::required_id(first.order_id.as_ref(), "orderItems[0].orderId")?;
    if items
        .iter()
        .any(|item| item.order_id.as_ref().map(ToString::to_string).as_deref() != Some(&id))
    {
        return Err(invalid("a shipment with items of several orders"));
    }
    let (created_at, created_original) =
        timestamp("orderItems[0].orderDate", first.order_date.as_deref())?;
    let mut out = common::event(raw, &id);
    out.currency = CURRENCY.to_owned();
    out.source_created_at = created_at;
    out.source_created_at_original = created_original;
    for item in items {
        let quantity = item
            .quantity
            .filter(|q| *q > 0)
            .ok_or_else(|| invalid("an order item has no quantity"))?;
        let prices = item
            .price_components
            .ok_or_else(|| invalid("an order item has no priceComponents"))?;
        let selling = money("sellingPrice", prices.selling_price.as_ref())?;
        let (unit_price, rounding) =
            common::unit_price("sellingPrice", selling, quantity, CURRENCY)?;
        out.totals.subtotal = common::add("sellingPrice", out.totals.subtotal, selling)?;
        out.totals.total = common::add(
            "totalPrice",
            out.totals.total,
            money("totalPrice", prices.total_price.as_ref())?,
        )?;
        out.totals.shipping = common::add(
            "shippingCharge",
            out.totals.shipping,
            money("shippingCharge", prices.shipping_charge.as_ref())?,
        )?;
        out.line_items.push(LineItem {
            line_id: item.order_item_id.map(|id| id.to_string()),
            sku: trimmed(item.sku),
            title: trimmed(item.title).unwrap_or_default(),
            quantity,
            unit_price,
            discount: rounding,
            tax: Decimal::ZERO,
        });
    }
    Ok(out)
}

/// The enrich stage's document of a shipment.
#[derive(Debug, Deserialize)]
struct ShipmentDocument {
    shipments: Shipments<Shipment>,
    details: Option<Shipments<Details>>,
}

#[derive(Debug, Deserialize)]
struct Shipments<T> {
    #[serde(default = "Vec::new")]
    shipments: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shipment {
    updated_at: Option<String>,
    #[serde(default)]
    order_items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    delivery_address: Option<FlipkartAddress>,
    buyer_details: Option<Buyer>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlipkartAddress {
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(alias = "pincode")]
    pin_code: Option<String>,
    city: Option<String>,
    #[serde(alias = "stateName")]
    state: Option<String>,
    address_line1: Option<String>,
    address_line2: Option<String>,
    contact_number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Buyer {
    first_name: Option<String>,
    last_name: Option<String>,
}

/// A whole shipment (see the module docs).
fn shipment(raw: &RawRecord<'_>, document: ShipmentDocument) -> Result<OrderEvent, NormalizeError> {
    let shipment = document
        .shipments
        .shipments
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the document holds no shipment"))?;
    let statuses: Vec<String> = shipment
        .order_items
        .iter()
        .filter_map(|item| item.status.clone())
        .collect();
    let latest_order_date = shipment
        .order_items
        .iter()
        .filter_map(|item| item.order_date.clone())
        .max();
    let mut out = order_items(raw, shipment.order_items)?;
    let shipped = |s: &String| {
        matches!(
            s.as_str(),
            "SHIPPED" | "PICKUP_COMPLETE" | "DELIVERED" | "COMPLETED"
        )
    };
    (out.event_type, out.status) =
        if !statuses.is_empty() && statuses.iter().all(|s| s == "CANCELLED") {
            (EventType::Cancelled, OrderStatus::Cancelled)
        } else if !statuses.is_empty() && statuses.iter().all(|s| shipped(s) || s == "CANCELLED") {
            (EventType::Fulfilled, OrderStatus::Fulfilled)
        } else if statuses.iter().any(shipped) {
            (EventType::Fulfilled, OrderStatus::PartiallyFulfilled)
        } else {
            (EventType::Updated, OrderStatus::Open)
        };
    out.payment_status = PaymentStatus::Paid;
    if let Some(details) = document
        .details
        .and_then(|d| d.shipments.into_iter().next())
    {
        let name = |first: Option<String>, last: Option<String>| common::full_name(&first, &last);
        if let Some(buyer) = details.buyer_details {
            out.customer = Some(Customer {
                id: None,
                email: None,
                name: name(buyer.first_name, buyer.last_name),
            });
        }
        out.shipping_address = details.delivery_address.map(|a| Address {
            name: name(a.first_name, a.last_name),
            company: None,
            line1: trimmed(a.address_line1),
            line2: trimmed(a.address_line2),
            city: trimmed(a.city),
            region: trimmed(a.state),
            postal_code: trimmed(a.pin_code),
            country_code: Some("IN".to_owned()),
            phone: trimmed(a.contact_number),
        });
    }
    let (at, original) = match timestamp("updatedAt", shipment.updated_at.as_deref())? {
        (Some(at), original) => (Some(at), original),
        (None, _) => timestamp("orderItems.orderDate", latest_order_date.as_deref())?,
    };
    out.source_updated_at = at;
    out.source_updated_at_original = original;
    out.version = common::version(at, raw);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_price_rounds_up_to_the_paisa_and_the_line_keeps_its_price() {
        for (selling, quantity, unit, rounding) in [
            (499, 1, "499", "0"),
            (499, 2, "249.50", "0"),
            (499, 3, "166.34", "0.02"),
            (499, 7, "71.29", "0.03"),
            (1000, 3, "333.34", "0.02"),
        ] {
            let selling = Decimal::from(selling);
            let (got_unit, got_rounding) =
                common::unit_price("sellingPrice", selling, quantity, CURRENCY).unwrap_or_default();
            assert_eq!(
                got_unit.normalize(),
                unit.parse::<Decimal>().unwrap_or_default().normalize()
            );
            assert_eq!(
                got_rounding.normalize(),
                rounding.parse::<Decimal>().unwrap_or_default().normalize()
            );
            assert_eq!(got_unit * Decimal::from(quantity) - got_rounding, selling);
        }
        assert!(
            common::unit_price("sellingPrice", Decimal::from(499), 0, CURRENCY).is_err(),
            "no units, no unit price"
        );
    }
}
