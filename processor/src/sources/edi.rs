//! EDI: X12 850 purchase orders a trading partner drops as files. `orderbridge poll` claims
//! each file, publishes each transaction set as an interchange of its own (the partner's
//! segments, new trailers; `orderbridge_providers::edi::single_sets`) keyed by its PO
//! number, with the partner as the account; this reads one.
//!
//! - BEG01 is the event: `00` original → created, open; `05` replace → updated, open; `01`
//!   cancellation and `03` delete → cancelled. Others (a confirmation, a change request)
//!   are not orders to book: unsupported, kept in the dead-letter topic.
//! - BEG03 is the order id and number; BEG05 the order's date.
//! - The currency is CUR02; without a CUR, X12 leaves it to the partner agreement, and US
//!   agreements mean dollars: `USD`. A partner trading in another currency sends CUR.
//! - Lines are the PO1 loops: the line number, whole units (PO102; a fraction of a unit is
//!   refused), the unit price (PO104) and the SKU: the vendor's part number (`VP`, ours),
//!   else the SKU (`SK`), the buyer's part (`BP`), the buyer's item (`IN`), the UPC or EAN,
//!   else the first id given. The title is the first PID description.
//! - Purchase orders carry no tax, shipping or discount: the total is the lines' sum.
//! - The customer is the buyer party (`N1*BY`), else the bill-to (`BT`), else the sender of
//!   the interchange, by id; the ship-to (`ST`) and bill-to parties are the addresses.
//! - X12 dates a PO but does not time a change, so the version is when the record was read
//!   (`ob-received-at`): a replacement read later supersedes what it replaces.

use std::str::FromStr;

use chrono::{NaiveTime, TimeZone, Utc};
use orderbridge_providers::edi::{read_850, Party, PurchaseOrder};
use orderbridge_schemas::{Address, Customer, EventType, LineItem, OrderEvent, OrderStatus};
use rust_decimal::Decimal;

use super::common::{self, invalid};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes one purchase order of a partner's file.
#[derive(Debug, Clone, Copy)]
pub struct EdiNormalizer;

/// The SKU's qualifiers, most wanted first.
const SKU_QUALIFIERS: [&str; 6] = ["VP", "SK", "BP", "IN", "UP", "EN"];

impl Normalizer for EdiNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let interchange =
            read_850(raw.body).map_err(|err| NormalizeError::Unparseable(err.to_string()))?;
        if let Some(rejected) = interchange.rejected().next() {
            return Err(invalid(&format!(
                "transaction set {} {} rejected: {}",
                rejected.set_id, rejected.control_number, rejected.error
            )));
        }
        let mut orders = interchange.orders();
        let (Some(order), None) = (orders.next(), orders.next()) else {
            return Err(invalid(
                "the record holds no purchase order, or more than one",
            ));
        };
        purchase_order(raw, order)
    }
}

/// PO105 codes whose price is per unit of the line's measure (each, current, contract, net,
/// quoted): the line is units × price.
const PER_UNIT_BASES: [&str; 5] = ["PE", "CP", "CT", "NT", "QT"];

fn purchase_order(raw: &RawRecord<'_>, po: &PurchaseOrder) -> Result<OrderEvent, NormalizeError> {
    if po.test {
        // A partner's test data (onboarding, a new map) is acknowledged but never booked.
        return Err(NormalizeError::Unsupported(
            "a test interchange (ISA15 T) is not booked".into(),
        ));
    }
    let mut out = common::event(raw, &po.number);
    out.order_number = Some(po.number.clone());
    (out.event_type, out.status) = match po.purpose.as_str() {
        "00" => (EventType::Created, OrderStatus::Open),
        "05" => (EventType::Updated, OrderStatus::Open),
        "01" | "03" => (EventType::Cancelled, OrderStatus::Cancelled),
        other => {
            return Err(NormalizeError::Unsupported(format!(
                "850 purpose BEG01 {other:?}"
            )))
        }
    };
    out.currency = common::currency(Some(po.currency.as_deref().unwrap_or("USD")))?;
    let created = Utc.from_utc_datetime(&po.date.and_time(NaiveTime::MIN));
    out.source_created_at = Some(created);
    out.source_created_at_original = Some(po.date.format("%Y%m%d").to_string());
    out.version = common::version(None, raw);
    for line in &po.lines {
        let number = line.number.clone();
        let what = number.as_deref().unwrap_or("?");
        let quantity = decimal(&format!("PO102 of line {what}"), line.quantity.as_deref())?;
        if !quantity.fract().is_zero() {
            return Err(invalid(&format!(
                "line {what}: {quantity} units is not a whole number"
            )));
        }
        if quantity <= Decimal::ZERO {
            return Err(invalid(&format!("line {what}: {quantity} units")));
        }
        let quantity = i64::try_from(quantity)
            .map_err(|_| NormalizeError::OutOfRange(format!("line {what}: quantity")))?;
        let unit_price = decimal(&format!("PO104 of line {what}"), line.unit_price.as_deref())?;
        if unit_price < Decimal::ZERO {
            return Err(invalid(&format!("line {what}: unit price {unit_price}")));
        }
        if let Some(basis) = line
            .price_basis
            .as_deref()
            .filter(|b| !PER_UNIT_BASES.contains(b))
        {
            // A price per hundred, per thousand, per pound of a case…: the line's total is not
            // units × price, and guessing it would book a wrong amount.
            return Err(NormalizeError::Unsupported(format!(
                "line {what}: price basis PO105 {basis:?}"
            )));
        }
        let sku = SKU_QUALIFIERS
            .iter()
            .find_map(|q| line.product_ids.iter().find(|id| id.qualifier == *q))
            .or(line.product_ids.first())
            .map(|id| id.id.clone());
        out.line_items.push(LineItem {
            line_id: number.clone(),
            sku,
            title: line.descriptions.first().cloned().unwrap_or_default(),
            quantity,
            unit_price,
            discount: Decimal::ZERO,
            tax: Decimal::ZERO,
        });
    }
    if out.line_items.is_empty() && out.event_type != EventType::Cancelled {
        return Err(invalid("the purchase order has no PO1 lines"));
    }
    out.totals.subtotal = common::lines_total(&out.line_items)?;
    out.totals.total = out.totals.subtotal;
    let party = |entity: &str| po.parties.iter().find(|p| p.entity == entity);
    let buyer = party("BY").or_else(|| party("BT"));
    out.customer = Some(Customer {
        id: buyer
            .and_then(|b| b.id.clone())
            .or_else(|| Some(po.sender.clone()).filter(|s| !s.is_empty())),
        email: None,
        name: buyer.and_then(|b| b.name.clone()),
    });
    out.shipping_address = party("ST").map(address);
    out.billing_address = party("BT").map(address);
    Ok(out)
}

/// A decimal element's text as a number.
fn decimal(field: &str, text: Option<&str>) -> Result<Decimal, NormalizeError> {
    let text = text.ok_or_else(|| invalid(&format!("{field} is missing")))?;
    Decimal::from_str(text).map_err(|_| invalid(&format!("{field} {text:?} is not a number")))
}

fn address(party: &Party) -> Address {
    Address {
        name: party.name.clone(),
        company: None,
        line1: party.address.first().cloned(),
        line2: party.address.get(1).cloned(),
        city: party.city.clone(),
        region: party.state.clone(),
        postal_code: party.postal_code.clone(),
        country_code: party.country.clone(),
        phone: None,
    }
}
