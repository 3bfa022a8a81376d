//! What every normalizer needs: amounts and ids as sources write them, timestamps to UTC with
//! the original kept, trimmed text, currency codes, and the skeleton of an event.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use orderbridge_schemas::{
    order_key, EventType, Lineage, OrderEvent, OrderStatus, PaymentStatus, Totals,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{NormalizeError, RawRecord};

pub use orderbridge_schemas::headers::DOCUMENT_PREFIX;

/// ISO 4217's code for "no currency involved": the currency of a status-only event.
pub const NO_CURRENCY: &str = "XXX";

/// An amount as sources write it: a decimal string (`"199.00"`) or a JSON number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    /// `"199.00"`.
    Text(String),
    /// `199.0`; read from its decimal text, never through a float.
    Number(serde_json::Number),
}

impl Amount {
    /// The amount as a decimal.
    ///
    /// # Errors
    /// [`NormalizeError::Invalid`] naming `field` when it is not a number.
    pub fn parse(&self, field: &str) -> Result<Decimal, NormalizeError> {
        let text = match self {
            Amount::Text(text) => text.trim().to_owned(),
            Amount::Number(number) => number.to_string(),
        };
        Decimal::from_str(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(|_| NormalizeError::Invalid(format!("{field}: {text:?} is not an amount")))
    }
}

/// An amount that may be absent (zero).
///
/// # Errors
/// When present and not a number.
pub fn money(field: &str, amount: Option<&Amount>) -> Result<Decimal, NormalizeError> {
    amount.map_or(Ok(Decimal::ZERO), |a| a.parse(field))
}

/// An id a source sends as a number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// `450789469`.
    Number(u64),
    /// `"A-1001"`.
    Text(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Text(s) => f.write_str(s.trim()),
        }
    }
}

/// A required id, non-empty after trimming.
///
/// # Errors
/// [`NormalizeError::Invalid`] saying `what` is missing.
pub fn required_id(id: Option<&Id>, what: &str) -> Result<String, NormalizeError> {
    id.map(ToString::to_string)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid(&format!("{what} is missing")))
}

/// A permanent "this record is not a valid order" error.
pub fn invalid(what: &str) -> NormalizeError {
    NormalizeError::Invalid(what.to_owned())
}

/// An RFC 3339 timestamp in UTC, and the text as the source wrote it.
///
/// # Errors
/// When present and not RFC 3339.
pub fn timestamp(
    field: &str,
    value: Option<&str>,
) -> Result<(Option<DateTime<Utc>>, Option<String>), NormalizeError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok((None, None));
    };
    let at = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| NormalizeError::Invalid(format!("{field} {text:?}: {err}")))?;
    Ok((Some(at), Some(text.to_owned())))
}

/// Unix milliseconds as a UTC timestamp, and the number as the source wrote it.
///
/// # Errors
/// When out of range.
pub fn unix_millis(
    field: &str,
    value: Option<i64>,
) -> Result<(Option<DateTime<Utc>>, Option<String>), NormalizeError> {
    let Some(millis) = value else {
        return Ok((None, None));
    };
    let at = DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| NormalizeError::Invalid(format!("{field} {millis} is out of range")))?;
    Ok((Some(at), Some(millis.to_string())))
}

/// Unix seconds as a UTC timestamp, and the number as the source wrote it.
///
/// # Errors
/// When out of range.
pub fn unix_seconds(
    field: &str,
    value: Option<i64>,
) -> Result<(Option<DateTime<Utc>>, Option<String>), NormalizeError> {
    let Some(seconds) = value else {
        return Ok((None, None));
    };
    let at = DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| NormalizeError::Invalid(format!("{field} {seconds} is out of range")))?;
    Ok((Some(at), Some(seconds.to_string())))
}

/// Trims; an empty string is no value. Never changes case or content otherwise: SKUs and
/// emails are the source's, not ours to guess at.
pub fn trimmed(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// "First Last" from the parts that are there.
pub fn full_name(first: &Option<String>, last: &Option<String>) -> Option<String> {
    let name = [first, last]
        .iter()
        .filter_map(|part| part.as_deref().map(str::trim).filter(|p| !p.is_empty()))
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

/// An ISO 4217 code, upper-cased (Stripe writes `usd`).
///
/// # Errors
/// When absent or not three letters.
pub fn currency(value: Option<&str>) -> Result<String, NormalizeError> {
    value
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
        .ok_or_else(|| invalid("order has no ISO 4217 currency"))
}

/// The skeleton of an event for `order_id`: zero totals, no lines, unknown statuses, no
/// currency, version = when it was received, and the lineage of `raw`. Normalizers fill in
/// what their source tells.
pub fn event(raw: &RawRecord<'_>, order_id: &str) -> OrderEvent {
    OrderEvent {
        order_key: order_key(raw.source, raw.account, order_id),
        source: raw.source.as_str().to_owned(),
        account: raw.account.to_owned(),
        source_order_id: order_id.to_owned(),
        order_number: None,
        event_type: EventType::Unknown,
        status: OrderStatus::Unknown,
        payment_status: PaymentStatus::Unknown,
        version: orderbridge_schemas::version_at(raw.received_at),
        currency: NO_CURRENCY.to_owned(),
        totals: Totals {
            total: Decimal::ZERO,
            subtotal: Decimal::ZERO,
            tax: Decimal::ZERO,
            shipping: Decimal::ZERO,
            discount: Decimal::ZERO,
        },
        line_items: Vec::new(),
        customer: None,
        shipping_address: None,
        billing_address: None,
        source_created_at: None,
        source_updated_at: None,
        attribution: None,
        lineage: Lineage {
            raw_topic: raw.topic.to_owned(),
            raw_partition: raw.partition,
            raw_offset: raw.offset,
            event_id: raw.event_id.to_owned(),
            received_at: raw.received_at,
            origin: raw.origin.to_owned(),
        },
        partial: false,
        source_created_at_original: None,
        source_updated_at_original: None,
        shipment: None,
        refund: None,
    }
}

/// The version of an event: the source's own time for it when it has one (so versions of
/// one order grow as the source changed it), else when it was received.
pub fn version(at: Option<DateTime<Utc>>, raw: &RawRecord<'_>) -> i64 {
    orderbridge_schemas::version_at(at.unwrap_or(raw.received_at))
}

/// Parses the body as `T`.
///
/// # Errors
/// [`NormalizeError::Unparseable`] with serde's reason.
pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, NormalizeError> {
    serde_json::from_slice(body).map_err(|err| NormalizeError::Unparseable(err.to_string()))
}

/// A line as the simpler sources write it: `{sku, quantity, price}`, maybe an id and a name.
#[derive(Debug, Deserialize)]
pub struct SimpleLine {
    /// The line's id.
    pub id: Option<Id>,
    /// SKU.
    pub sku: Option<String>,
    /// Product title.
    pub title: Option<String>,
    /// Product name (where `title` is not used).
    pub name: Option<String>,
    /// Units.
    pub quantity: Option<i64>,
    /// Unit price.
    pub price: Option<Amount>,
}

impl SimpleLine {
    /// The canonical line.
    ///
    /// # Errors
    /// When the quantity is missing or the price is not a number.
    pub fn into_line(self, field: &str) -> Result<orderbridge_schemas::LineItem, NormalizeError> {
        Ok(orderbridge_schemas::LineItem {
            line_id: self.id.as_ref().map(ToString::to_string),
            sku: trimmed(self.sku),
            title: trimmed(self.title)
                .or_else(|| trimmed(self.name))
                .unwrap_or_default(),
            quantity: self
                .quantity
                .ok_or_else(|| invalid(&format!("{field}: a line has no quantity")))?,
            unit_price: money(&format!("{field}.price"), self.price.as_ref())?,
            discount: Decimal::ZERO,
            tax: Decimal::ZERO,
        })
    }
}

/// The most units one line may carry. Quantities come from outside; bounding them keeps every
/// product of a quantity and an amount far inside a decimal (a unit price fits decimal(18, 4),
/// so quantity × price stays below 10²³), and a billion units of one line is no real order.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// A line's quantity, checked against `0..=`[`MAX_QUANTITY`].
///
/// # Errors
/// [`NormalizeError::OutOfRange`] naming `field`.
pub fn quantity(field: &str, quantity: i64) -> Result<i64, NormalizeError> {
    if (0..=MAX_QUANTITY).contains(&quantity) {
        Ok(quantity)
    } else {
        Err(NormalizeError::OutOfRange(format!(
            "{field}: quantity {quantity} is outside 0..={MAX_QUANTITY}"
        )))
    }
}

/// `a + b`, checked: amounts come from outside, and `rust_decimal`'s operators panic on
/// overflow.
///
/// # Errors
/// [`NormalizeError::OutOfRange`] naming `field`.
pub fn add(field: &str, a: Decimal, b: Decimal) -> Result<Decimal, NormalizeError> {
    a.checked_add(b).ok_or_else(|| overflow(field))
}

/// The checked sum of `amounts`, stopping at the first error.
///
/// # Errors
/// An error of `amounts`, or [`NormalizeError::OutOfRange`] naming `field` on overflow.
pub fn sum(
    field: &str,
    amounts: impl IntoIterator<Item = Result<Decimal, NormalizeError>>,
) -> Result<Decimal, NormalizeError> {
    amounts
        .into_iter()
        .try_fold(Decimal::ZERO, |total, amount| add(field, total, amount?))
}

/// quantity × unit price of `line`, checked.
///
/// # Errors
/// [`NormalizeError::OutOfRange`] when the product does not fit a decimal.
pub fn line_amount(line: &orderbridge_schemas::LineItem) -> Result<Decimal, NormalizeError> {
    line.unit_price
        .checked_mul(Decimal::from(line.quantity))
        .ok_or_else(|| overflow("line_items: quantity × price"))
}

/// The sum of quantity × unit price over `lines`: the subtotal a source implies without
/// writing it.
///
/// # Errors
/// [`NormalizeError::OutOfRange`] when it does not fit a decimal.
pub fn lines_total(lines: &[orderbridge_schemas::LineItem]) -> Result<Decimal, NormalizeError> {
    sum("subtotal", lines.iter().map(line_amount))
}

/// The unit price of a line whose `quantity` units cost `line_total` together (Flipkart's
/// `sellingPrice`, eBay's `lineItemCost`, Amazon's `ItemPrice`), rounded *up* to the
/// currency's minor unit, and the discount that brings the line back to `line_total`
/// exactly: unit price × quantity − discount is what the source charged (499 for 3: 166.34
/// each and a discount of 0.02), so lines, subtotal and total stay the source's.
///
/// # Errors
/// [`NormalizeError::OutOfRange`] naming `field` when the quantity is out of bounds or the
/// amounts do not fit a decimal; [`NormalizeError::Invalid`] for no units.
pub fn unit_price(
    field: &str,
    line_total: Decimal,
    quantity: i64,
    currency: &str,
) -> Result<(Decimal, Decimal), NormalizeError> {
    let out_of_range = || NormalizeError::OutOfRange(format!("{field} ÷ quantity"));
    let units = Decimal::from(self::quantity(field, quantity)?);
    if units.is_zero() {
        return Err(invalid(&format!("{field}: a line of no units")));
    }
    let unit = line_total
        .checked_div(units)
        .ok_or_else(out_of_range)?
        .round_dp_with_strategy(
            orderbridge_schemas::minor_units(currency),
            rust_decimal::RoundingStrategy::ToPositiveInfinity,
        );
    let rounding = unit
        .checked_mul(units)
        .and_then(|gross| gross.checked_sub(line_total))
        .ok_or_else(out_of_range)?;
    Ok((unit, rounding))
}

fn overflow(field: &str) -> NormalizeError {
    NormalizeError::OutOfRange(format!("{field}: the amount does not fit a decimal"))
}
