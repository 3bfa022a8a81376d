//! Sources whose payload shape is configuration, not code: the generic Standard Webhooks
//! receiver (BigCommerce, Svix-based senders) and providers declared under `custom`. Each
//! account gets a [`Mapping`]: JSON pointers into the body for the order's fields, and tables
//! from the provider's event types and status values to the canonical ones.
//!
//! ```toml
//! [processor.mappings.standard-webhooks.bigcommerce]
//! order_id = "/data/id"
//! events = { "store/order/created" = "CREATED", "store/order/statusUpdated" = "UPDATED" }
//! updated_at = { pointer = "/created_at", format = "unix" }
//! status = { pointer = "/data/status/new_status_id", values = { "5" = "CANCELLED", "10" = "FULFILLED" } }
//! ```
//!
//! An event is a full order when `currency` and `total` are mapped and present in the body;
//! otherwise it is partial (status-only), which is what thin notifications such as
//! BigCommerce's are. An event type the mapping does not list is `unsupported`: dead-lettered,
//! and replayable once the mapping names it. A source with no mapping for the account (nor a
//! `"*"` mapping for every account) is `unsupported` the same way.
//!
//! Normalizing stays pure: the mapping is data, the body is parsed once into a JSON value.

use std::collections::BTreeMap;

use chrono::DateTime;
use orderbridge_schemas::{Customer, EventType, LineItem, OrderEvent, OrderStatus, PaymentStatus};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::common::{self, invalid, money, trimmed, Amount};
use super::{NormalizeError, RawRecord};

/// Source name → account (or `"*"` for any) → its mapping.
pub type Mappings = BTreeMap<String, BTreeMap<String, Mapping>>;

/// The mapping of `raw`'s source and account, the account's own before the source's `"*"`.
pub fn mapping_for<'m>(mappings: &'m Mappings, raw: &RawRecord<'_>) -> Option<&'m Mapping> {
    let accounts = mappings.get(raw.source.as_str())?;
    accounts.get(raw.account).or_else(|| accounts.get("*"))
}

/// Where a provider's payload keeps the order, for one account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Provider event type (the `ob-event-type` ingest extracted) → canonical event type.
    pub events: BTreeMap<String, EventType>,
    /// JSON pointer to the order id (a string or a number). Required.
    pub order_id: String,
    /// Pointer to the human-facing order number.
    pub order_number: Option<String>,
    /// Where the order status is and what its values mean; unlisted values are `UNKNOWN`.
    pub status: Option<Values<OrderStatus>>,
    /// Where the payment status is and what its values mean.
    pub payment_status: Option<Values<PaymentStatus>>,
    /// When the order was created.
    pub created_at: Option<Time>,
    /// When the order last changed; orders the events of one order (the version).
    pub updated_at: Option<Time>,
    /// Pointer to the ISO 4217 currency. With `total`, makes an event a full order.
    pub currency: Option<String>,
    /// Pointer to the grand total.
    pub total: Option<String>,
    /// Pointer to the subtotal (default: the lines' sum).
    pub subtotal: Option<String>,
    /// Pointer to the total tax.
    pub tax: Option<String>,
    /// Pointer to the shipping charged.
    pub shipping: Option<String>,
    /// Pointer to the total discount.
    pub discount: Option<String>,
    /// Pointer to the buyer's email.
    pub email: Option<String>,
    /// Pointer to the buyer's id.
    pub customer_id: Option<String>,
    /// Pointer to the buyer's name.
    pub customer_name: Option<String>,
    /// Where the lines are and the pointers within each line.
    pub lines: Option<Lines>,
    /// How amounts are written: decimals (`"42.99"`, the default) or whole minor units of
    /// the currency (`4299` cents, as Stripe and Square write them).
    #[serde(default)]
    pub amounts: AmountUnit,
}

/// How a provider writes amounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountUnit {
    /// A decimal in the currency's major unit: `42.99`.
    #[default]
    Decimal,
    /// A whole number of the currency's minor units: `4299` for USD 42.99, `4299` for JPY 4299.
    Minor,
}

impl AmountUnit {
    /// `amount` in the currency's major unit.
    ///
    /// # Errors
    /// [`NormalizeError::OutOfRange`] when the amount has more decimal places than a decimal
    /// can shift (its value would otherwise be read unscaled, a hundred times too large).
    fn scale(self, amount: Decimal, currency: &str) -> Result<Decimal, NormalizeError> {
        match self {
            AmountUnit::Decimal => Ok(amount),
            AmountUnit::Minor => {
                let mut scaled = amount;
                // Exact: a decimal's scale moves, no division rounds.
                scaled
                    .set_scale(amount.scale() + orderbridge_schemas::minor_units(currency))
                    .map_err(|_| {
                        NormalizeError::OutOfRange(format!(
                            "{amount} minor units of {currency} have too many decimal places"
                        ))
                    })?;
                Ok(scaled)
            }
        }
    }
}

impl Mapping {
    /// Every JSON pointer the mapping names, for validation.
    pub fn pointers(&self) -> impl Iterator<Item = &str> {
        let top = [
            Some(&self.order_id),
            self.order_number.as_ref(),
            self.status.as_ref().map(|v| &v.pointer),
            self.payment_status.as_ref().map(|v| &v.pointer),
            self.created_at.as_ref().map(|t| &t.pointer),
            self.updated_at.as_ref().map(|t| &t.pointer),
            self.currency.as_ref(),
            self.total.as_ref(),
            self.subtotal.as_ref(),
            self.tax.as_ref(),
            self.shipping.as_ref(),
            self.discount.as_ref(),
            self.email.as_ref(),
            self.customer_id.as_ref(),
            self.customer_name.as_ref(),
        ];
        let lines = self.lines.iter().flat_map(|l| {
            [
                Some(&l.pointer),
                l.id.as_ref(),
                l.sku.as_ref(),
                l.title.as_ref(),
                Some(&l.quantity),
                l.price.as_ref(),
            ]
        });
        top.into_iter().chain(lines).flatten().map(String::as_str)
    }
}

/// A pointer to a value and the canonical meaning of each of its values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Values<T> {
    /// JSON pointer.
    pub pointer: String,
    /// Provider value (numbers written as text) → canonical value.
    pub values: BTreeMap<String, T>,
}

/// A pointer to a timestamp and how it is written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Time {
    /// JSON pointer.
    pub pointer: String,
    /// How the value is written.
    #[serde(default)]
    pub format: TimeFormat,
}

/// How a timestamp is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// RFC 3339 text, any offset.
    #[default]
    Rfc3339,
    /// Unix seconds.
    Unix,
    /// Unix milliseconds.
    UnixMs,
}

/// The lines of an order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lines {
    /// Pointer to the array of lines.
    pub pointer: String,
    /// Within a line: its id.
    pub id: Option<String>,
    /// Within a line: the SKU.
    pub sku: Option<String>,
    /// Within a line: the title.
    pub title: Option<String>,
    /// Within a line: the quantity. Required.
    pub quantity: String,
    /// Within a line: the unit price.
    pub price: Option<String>,
}

/// Normalizes `raw` with `mapping`.
///
/// # Errors
/// `unsupported` for an unmapped event type, `unparseable` for a body that is not JSON,
/// `invalid` when a mapped field is missing or malformed.
pub fn normalize(raw: &RawRecord<'_>, mapping: &Mapping) -> Result<OrderEvent, NormalizeError> {
    let event_type = *mapping
        .events
        .get(raw.event_type)
        .ok_or_else(|| NormalizeError::Unsupported(raw.event_type.to_owned()))?;
    let body: Value = common::parse(raw.body)?;
    let order_id = text(&body, &mapping.order_id)
        .ok_or_else(|| invalid(&format!("no order id at {}", mapping.order_id)))?;

    let mut event = common::event(raw, &order_id);
    event.event_type = event_type;
    event.order_number = mapping.order_number.as_deref().and_then(|p| text(&body, p));
    event.status = looked_up(&body, mapping.status.as_ref()).unwrap_or(match event_type {
        EventType::Cancelled => OrderStatus::Cancelled,
        EventType::Unknown
        | EventType::Created
        | EventType::Updated
        | EventType::Refunded
        | EventType::Fulfilled => OrderStatus::Unknown,
    });
    event.payment_status =
        looked_up(&body, mapping.payment_status.as_ref()).unwrap_or(PaymentStatus::Unknown);
    let (created_at, created_original) = time(&body, mapping.created_at.as_ref())?;
    let (updated_at, updated_original) = time(&body, mapping.updated_at.as_ref())?;
    event.source_created_at = created_at;
    event.source_created_at_original = created_original;
    event.source_updated_at = updated_at;
    event.source_updated_at_original = updated_original;
    event.version = common::version(updated_at.or(created_at), raw);

    let currency = mapping.currency.as_deref().and_then(|p| text(&body, p));
    let total = mapping.total.as_deref().and_then(|p| amount(&body, p));
    let (Some(currency), Some(total)) = (currency, total) else {
        event.partial = true;
        return Ok(event);
    };
    event.currency = common::currency(Some(&currency))?;
    let unit = |amount: Decimal| mapping.amounts.scale(amount, &event.currency);
    event.line_items = lines(&body, mapping.lines.as_ref())?;
    for line in &mut event.line_items {
        line.unit_price = unit(line.unit_price)?;
    }
    let field = |pointer: &Option<String>, name: &str| -> Result<Option<Decimal>, NormalizeError> {
        pointer
            .as_deref()
            .and_then(|p| amount(&body, p))
            .map(|a| unit(a.parse(name)?))
            .transpose()
    };
    event.totals.total = unit(total.parse("total")?)?;
    event.totals.subtotal = match field(&mapping.subtotal, "subtotal")? {
        Some(subtotal) => subtotal,
        None => common::lines_total(&event.line_items)?,
    };
    event.totals.tax = field(&mapping.tax, "tax")?.unwrap_or_default();
    event.totals.shipping = field(&mapping.shipping, "shipping")?.unwrap_or_default();
    event.totals.discount = field(&mapping.discount, "discount")?.unwrap_or_default();
    let email = mapping.email.as_deref().and_then(|p| text(&body, p));
    let customer_id = mapping.customer_id.as_deref().and_then(|p| text(&body, p));
    let name = mapping
        .customer_name
        .as_deref()
        .and_then(|p| text(&body, p));
    if email.is_some() || customer_id.is_some() || name.is_some() {
        event.customer = Some(Customer {
            id: customer_id,
            email,
            name,
        });
    }
    Ok(event)
}

/// The value at `pointer` as trimmed text (numbers written out), `None` if absent or empty.
fn text(body: &Value, pointer: &str) -> Option<String> {
    match body.pointer(pointer)? {
        Value::String(s) => trimmed(Some(s.clone())),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The amount at `pointer`, read from its decimal text.
fn amount(body: &Value, pointer: &str) -> Option<Amount> {
    match body.pointer(pointer)? {
        Value::String(s) => Some(Amount::Text(s.clone())),
        Value::Number(n) => Some(Amount::Number(n.clone())),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

fn looked_up<T: Copy>(body: &Value, values: Option<&Values<T>>) -> Option<T> {
    let values = values?;
    values.values.get(&text(body, &values.pointer)?).copied()
}

fn time(
    body: &Value,
    time: Option<&Time>,
) -> Result<(Option<chrono::DateTime<chrono::Utc>>, Option<String>), NormalizeError> {
    let Some(time) = time else {
        return Ok((None, None));
    };
    let Some(value) = text(body, &time.pointer) else {
        return Ok((None, None));
    };
    match time.format {
        TimeFormat::Rfc3339 => common::timestamp(&time.pointer, Some(&value)),
        TimeFormat::Unix | TimeFormat::UnixMs => {
            let number: i64 = value
                .parse()
                .map_err(|_| invalid(&format!("{}: {value:?} is not a number", time.pointer)))?;
            let at = if time.format == TimeFormat::Unix {
                DateTime::from_timestamp(number, 0)
            } else {
                DateTime::from_timestamp_millis(number)
            };
            let at =
                at.ok_or_else(|| invalid(&format!("{}: {number} is out of range", time.pointer)))?;
            Ok((Some(at), Some(value)))
        }
    }
}

fn lines(body: &Value, lines: Option<&Lines>) -> Result<Vec<LineItem>, NormalizeError> {
    let Some(lines) = lines else {
        return Ok(Vec::new());
    };
    let Some(items) = body.pointer(&lines.pointer).and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|line| {
            let get = |pointer: &Option<String>| pointer.as_deref().and_then(|p| text(line, p));
            let quantity = text(line, &lines.quantity)
                .and_then(|q| q.parse::<i64>().ok())
                .ok_or_else(|| {
                    invalid(&format!(
                        "a line has no whole quantity at {}",
                        lines.quantity
                    ))
                })?;
            let price = lines.price.as_deref().and_then(|p| amount(line, p));
            Ok(LineItem {
                line_id: get(&lines.id),
                sku: get(&lines.sku),
                title: get(&lines.title).unwrap_or_default(),
                quantity,
                unit_price: money("line price", price.as_ref())?,
                discount: Decimal::ZERO,
                tax: Decimal::ZERO,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
