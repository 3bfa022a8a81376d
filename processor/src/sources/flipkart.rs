//! Flipkart Marketplace order-management notifications. `shipment_created` is the one full
//! body: a shipment with its order items, each with `orderId`, SKU, quantity and
//! `priceComponents`. It becomes the order's created event (keyed by the first item's
//! `orderId`, as ingest keys it; a shipment spanning several orders is refused rather than
//! split by guess). Later events (`shipment_packed`, `shipment_shipped`, …) carry only the
//! shipment and a status, so they cannot be tied to an order here and are unsupported until
//! shipments are looked up.
//!
//! Flipkart states no currency: it is INR, the marketplace's only one. Per the contract,
//! `sellingPrice` is taken as the line's selling price for its quantity, `totalPrice` as the
//! line's total and `shippingCharge` as its shipping; the order's total is their sum. The
//! version is the event's `timestamp`.
//!
//! The unit price is sellingPrice ÷ quantity, which need not end at the paisa (499 for 3 is
//! 166.333…). It is rounded *up* to the paisa, and what that adds (less than a paisa a unit)
//! becomes the line's discount: unit price × quantity − discount is the selling price exactly,
//! so the line, the subtotal and the total stay what Flipkart charged (499 for 3: 166.34 each,
//! a discount of 0.02).

use orderbridge_schemas::{EventType, LineItem, OrderEvent, OrderStatus};
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
        let notification: Notification = parse(raw.body)?;
        let kind = notification.event_type.as_deref().unwrap_or(raw.event_type);
        if kind != "shipment_created" {
            return Err(NormalizeError::Unsupported(kind.to_owned()));
        }
        let items = notification
            .attributes
            .map(|a| a.order_items)
            .unwrap_or_default();
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
        out.event_type = EventType::Created;
        out.status = OrderStatus::Open;
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
        out.totals.total = common::add("shippingCharge", out.totals.total, out.totals.shipping)?;
        let (at, original) = timestamp("timestamp", notification.timestamp.as_deref())?;
        out.source_updated_at = at;
        out.source_updated_at_original = original;
        out.version = common::version(at, raw);
        Ok(out)
    }
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
