//! The canonical order as Rust types. `avro/` maps these to and from `order_event/v<N>.avsc`;
//! serde maps them to JSON for golden fixtures and for `mapping test` output.
//!
//! Money is [`Decimal`] everywhere, never a float, and every amount of one event is in the
//! event's `currency`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One canonical order event on `orders.canonical.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderEvent {
    /// `<source>:<account>:<order id>`, also the Kafka key.
    pub order_key: String,
    /// Source name, e.g. `shopify`.
    pub source: String,
    /// Shop domain, seller id or tenant; `-` if none.
    pub account: String,
    /// The order's id at the source.
    pub source_order_id: String,
    /// Human-facing order number (Shopify `name`, e.g. `#1001`).
    pub order_number: Option<String>,
    /// What happened to the order.
    pub event_type: EventType,
    /// Lifecycle status after this event.
    pub status: OrderStatus,
    /// Payment status after this event.
    pub payment_status: PaymentStatus,
    /// Per-order version that only grows; the sink never applies an older one over a newer one.
    /// The source's time for the event in ms × [`VERSIONS_PER_MS`], plus revisions the
    /// processor made (see [`version_at`]).
    pub version: i64,
    /// ISO 4217 currency of every amount in this event.
    pub currency: String,
    /// Order totals.
    pub totals: Totals,
    /// Line items.
    pub line_items: Vec<LineItem>,
    /// The buyer, when the source tells.
    pub customer: Option<Customer>,
    /// Where the goods go.
    pub shipping_address: Option<Address>,
    /// Who pays.
    pub billing_address: Option<Address>,
    /// When the order was created at the source, in UTC.
    pub source_created_at: Option<DateTime<Utc>>,
    /// When the order was last updated at the source, in UTC.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// Marketing attribution known when the event was emitted.
    pub attribution: Option<Attribution>,
    /// Where this event came from, so every ERP record traces back to its webhook.
    pub lineage: Lineage,
    /// A status-only notification (an order id and a new status): only the keys, event type,
    /// statuses (`Unknown` = unchanged), version, timestamps, shipment, refund, attribution
    /// (when present it replaces the order's) and lineage mean anything; totals are zero and
    /// line items lack prices. The sink applies it as an update of what it carries, never as
    /// a full order. The processor emits one when attribution arrives for an order it already
    /// emitted (lineage origin `attribution`). (Schema version 2.)
    #[serde(default)]
    pub partial: bool,
    /// `source_created_at` exactly as the source wrote it (offset and precision kept).
    #[serde(default)]
    pub source_created_at_original: Option<String>,
    /// `source_updated_at` exactly as the source wrote it.
    #[serde(default)]
    pub source_updated_at_original: Option<String>,
    /// The shipment a fulfilment or tracking event is about.
    #[serde(default)]
    pub shipment: Option<Shipment>,
    /// The refund a `REFUNDED` event is about.
    #[serde(default)]
    pub refund: Option<Refund>,
}

/// A shipment of (part of) the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shipment {
    /// The shipment's id at the source or carrier platform.
    pub shipment_id: Option<String>,
    /// Carrier, e.g. `USPS`.
    pub carrier: Option<String>,
    /// Tracking code.
    pub tracking_code: Option<String>,
    /// Status as the source names it, e.g. `in_transit`, `delivered`.
    pub status: String,
    /// When delivery is expected.
    pub estimated_delivery_at: Option<DateTime<Utc>>,
}

/// Money returned to the buyer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    /// The refund's id at the source.
    pub refund_id: String,
    /// Money returned, in the event's currency.
    pub amount: Decimal,
    /// Why, when the source says.
    pub reason: Option<String>,
    /// What was returned, line by line.
    pub lines: Vec<RefundLine>,
}

/// One returned line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLine {
    /// The order line's id at the source.
    pub line_id: Option<String>,
    /// SKU, as the source wrote it (trimmed).
    pub sku: Option<String>,
    /// Units returned.
    pub quantity: i64,
    /// Money returned for this line.
    pub amount: Decimal,
}

/// What happened to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// A symbol this reader does not know (written by a newer schema).
    Unknown,
    /// The order was placed.
    Created,
    /// The order changed.
    Updated,
    /// The order was cancelled.
    Cancelled,
    /// Money was returned.
    Refunded,
    /// Goods were shipped.
    Fulfilled,
}

impl EventType {
    /// The Avro symbol, also used in staging tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Unknown => "UNKNOWN",
            EventType::Created => "CREATED",
            EventType::Updated => "UPDATED",
            EventType::Cancelled => "CANCELLED",
            EventType::Refunded => "REFUNDED",
            EventType::Fulfilled => "FULFILLED",
        }
    }
}

/// Lifecycle status of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Not known or not mapped.
    Unknown,
    /// Placed and not yet fulfilled.
    Open,
    /// Some lines shipped.
    PartiallyFulfilled,
    /// All lines shipped.
    Fulfilled,
    /// Cancelled.
    Cancelled,
    /// Closed/archived at the source.
    Closed,
}

impl OrderStatus {
    /// The Avro symbol, also used in staging tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Unknown => "UNKNOWN",
            OrderStatus::Open => "OPEN",
            OrderStatus::PartiallyFulfilled => "PARTIALLY_FULFILLED",
            OrderStatus::Fulfilled => "FULFILLED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Closed => "CLOSED",
        }
    }
}

/// Payment status of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Not known or not mapped.
    Unknown,
    /// Payment pending.
    Pending,
    /// Authorized, not captured.
    Authorized,
    /// Paid in full.
    Paid,
    /// Partly paid.
    PartiallyPaid,
    /// Partly refunded.
    PartiallyRefunded,
    /// Fully refunded.
    Refunded,
    /// Authorization voided.
    Voided,
}

impl PaymentStatus {
    /// The Avro symbol, also used in staging tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unknown => "UNKNOWN",
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Authorized => "AUTHORIZED",
            PaymentStatus::Paid => "PAID",
            PaymentStatus::PartiallyPaid => "PARTIALLY_PAID",
            PaymentStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            PaymentStatus::Refunded => "REFUNDED",
            PaymentStatus::Voided => "VOIDED",
        }
    }
}

/// Order totals, all in the event's currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Grand total the buyer pays.
    pub total: Decimal,
    /// Sum of line prices after line discounts, before tax and shipping.
    pub subtotal: Decimal,
    /// Total tax.
    pub tax: Decimal,
    /// Shipping charged.
    pub shipping: Decimal,
    /// Total discounts.
    pub discount: Decimal,
}

/// One line of the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineItem {
    /// The line's id at the source.
    pub line_id: Option<String>,
    /// Stock keeping unit; trimmed, never guessed.
    pub sku: Option<String>,
    /// Product title as sold.
    pub title: String,
    /// Units.
    pub quantity: i64,
    /// Price of one unit before discounts.
    pub unit_price: Decimal,
    /// Discount on the whole line.
    pub discount: Decimal,
    /// Tax on the whole line.
    pub tax: Decimal,
}

/// The buyer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// Customer id at the source.
    pub id: Option<String>,
    /// Email, trimmed.
    pub email: Option<String>,
    /// Full name.
    pub name: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Recipient name.
    pub name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// First street line.
    pub line1: Option<String>,
    /// Second street line.
    pub line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Province, state or region code.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: Option<String>,
    /// Phone.
    pub phone: Option<String>,
}

/// Marketing attribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    /// First touch.
    pub first_touch: Option<Touchpoint>,
    /// Last touch.
    pub last_touch: Option<Touchpoint>,
    /// Every touch, with credit shares.
    pub touchpoints: Vec<Touchpoint>,
}

/// One marketing touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Touchpoint {
    /// Channel, e.g. `paid_search`, `email`, `referral`.
    pub channel: String,
    /// Campaign name.
    pub campaign: Option<String>,
    /// utm_source or equivalent.
    pub source: Option<String>,
    /// utm_medium or equivalent.
    pub medium: Option<String>,
    /// When the touch happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Fraction of the order credited to this touch (0..1).
    pub credit_share: Option<f64>,
}

/// One record of `orders.attribution.v1`: the marketing attribution an attribution platform
/// (or another team) found for an order. Keyed by the order key, like every topic; the value
/// is this struct as JSON, e.g.
///
/// ```json
/// {"order_key": "shopify:shop.myshopify.com:450789469",
///  "attribution": {"first_touch": {"channel": "paid_search", "campaign": "spring", "source": "google",
///                                  "medium": "cpc", "occurred_at": "2025-04-20T09:00:00Z", "credit_share": 0.4},
///                  "last_touch": null, "touchpoints": []},
///  "attributed_at": "2025-04-22T17:00:00Z"}
/// ```
///
/// The processor joins it with the order of the same key: an order emitted after it carries
/// it, and an order emitted before it is emitted again, with it, at a higher version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributionEvent {
    /// The order key; when present it must equal the record's key.
    #[serde(default)]
    pub order_key: Option<String>,
    /// The attribution.
    pub attribution: Attribution,
    /// When the platform attributed the order.
    #[serde(default)]
    pub attributed_at: Option<DateTime<Utc>>,
}

/// How many versions fit in one millisecond of source time. An event's version is its source
/// time in milliseconds times this ([`version_at`]); the processor numbers the events it
/// derives itself (an order emitted again once its attribution arrived) in between, so they
/// order after the event they revise and before the source's next change.
pub const VERSIONS_PER_MS: i64 = 1000;

/// How far each revision moves an event's version (see [`revised`]): above what the
/// processor's own derived events use (an attribution update is +1 each), below the next
/// millisecond of source time, so a correction never outranks the source's next change.
pub const REVISION_STEP: i64 = 100;

/// The highest revision: nine corrections of one event fit below its next millisecond.
pub const MAX_REVISION: i64 = 9;

/// The version of an event at `version` emitted again at `revision` (1 to [`MAX_REVISION`]);
/// `None` for a revision out of range or a version that would overflow.
pub fn revised(version: i64, revision: i64) -> Option<i64> {
    if !(1..=MAX_REVISION).contains(&revision) {
        return None;
    }
    version.checked_add(revision * REVISION_STEP)
}

/// The version of an event whose source time is `at`; see [`VERSIONS_PER_MS`].
pub fn version_at(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis().saturating_mul(VERSIONS_PER_MS)
}

/// Where a canonical event came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// Raw topic the webhook was read from.
    pub raw_topic: String,
    /// Partition of the raw record.
    pub raw_partition: i32,
    /// Offset of the raw record.
    pub raw_offset: i64,
    /// Provider's event id (`ob-event-id`).
    pub event_id: String,
    /// When ingest received the webhook.
    pub received_at: DateTime<Utc>,
    /// `webhook` | `backfill` | `poll` | `replay`, or `attribution` for an update the
    /// processor derived from `orders.attribution.v1` (then the raw coordinates are that
    /// topic's).
    pub origin: String,
}

/// Decimal places of a currency's minor unit (ISO 4217): 0 for JPY, 3 for KWD, 2 for most.
pub fn minor_units(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// `amount` written with the currency's minor units (`409.9400` USD → `409.94`, `1500.0000`
/// JPY → `1500`), keeping any further digits the source sent (`0.125` USD stays `0.125`).
pub fn in_minor_units(amount: Decimal, currency: &str) -> Decimal {
    let mut fitted = amount.normalize();
    let units = minor_units(currency);
    if fitted.scale() < units {
        fitted.rescale(units);
    }
    fitted
}

impl OrderEvent {
    /// Writes every amount with the event currency's minor units; see [`in_minor_units`].
    pub fn fit_amounts_to_currency(&mut self) {
        let currency = self.currency.clone();
        let fit = |amount: &mut Decimal| *amount = in_minor_units(*amount, &currency);
        let totals = &mut self.totals;
        for amount in [
            &mut totals.total,
            &mut totals.subtotal,
            &mut totals.tax,
            &mut totals.shipping,
            &mut totals.discount,
        ] {
            fit(amount);
        }
        for line in &mut self.line_items {
            fit(&mut line.unit_price);
            fit(&mut line.discount);
            fit(&mut line.tax);
        }
        if let Some(refund) = &mut self.refund {
            fit(&mut refund.amount);
            for line in &mut refund.lines {
                fit(&mut line.amount);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_take_the_currencys_minor_units() {
        let d = |s: &str| Decimal::from_str(s).unwrap_or_default();
        assert_eq!(in_minor_units(d("409.9400"), "USD").to_string(), "409.94");
        assert_eq!(in_minor_units(d("1500.0000"), "JPY").to_string(), "1500");
        assert_eq!(in_minor_units(d("1.2500"), "KWD").to_string(), "1.250");
        assert_eq!(in_minor_units(d("0.1250"), "USD").to_string(), "0.125");
        assert_eq!(in_minor_units(d("0"), "EUR").to_string(), "0.00");
    }
}
