//! Sumeru, the attribution platform: `order.created` and `order.attributed` (seed 000). Both
//! carry the order (`data.order_id`, customer email, total, currency, lines with sku,
//! quantity and price); `order.attributed` adds the attribution: first and last touch and
//! every touchpoint with its share of the credit (`credit_pct`, a percentage).
//!
//! Sumeru states a total but not its parts, so the subtotal is the lines' sum and tax,
//! shipping and discount stay zero. The version is the event's `created_at`, so an
//! `order.attributed` that follows its `order.created` supersedes it.
//!
//! An order read from Sumeru's API (`api:order`, by backfill or polling) is the same order
//! object a webhook carries as `data`; its version is its `updated_at` (else `created_at`).

use orderbridge_schemas::{Attribution, Customer, EventType, OrderEvent, OrderStatus, Touchpoint};
use serde::Deserialize;

use super::common::{
    self, currency, invalid, lines_total, money, parse, timestamp, trimmed, Amount, Id, SimpleLine,
};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes Sumeru events.
#[derive(Debug, Clone, Copy)]
pub struct SumeruNormalizer;

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    created_at: Option<String>,
    data: Option<Order>,
}

#[derive(Debug, Deserialize)]
struct Order {
    order_id: Option<Id>,
    shopify_order_id: Option<Id>,
    id: Option<Id>,
    order_number: Option<String>,
    customer: Option<SumeruCustomer>,
    total: Option<Amount>,
    currency: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    #[serde(default)]
    line_items: Vec<SimpleLine>,
    attribution: Option<SumeruAttribution>,
}

#[derive(Debug, Deserialize)]
struct SumeruCustomer {
    id: Option<Id>,
    email: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SumeruAttribution {
    first_touch: Option<Touch>,
    last_touch: Option<Touch>,
    #[serde(default)]
    touchpoints: Vec<Touch>,
}

#[derive(Debug, Deserialize)]
struct Touch {
    channel: Option<String>,
    campaign: Option<String>,
    source: Option<String>,
    medium: Option<String>,
    occurred_at: Option<String>,
    credit_pct: Option<f64>,
    credit_share: Option<f64>,
}

impl Normalizer for SumeruNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        if raw.event_type.starts_with(common::DOCUMENT_PREFIX) {
            let order: Order = parse(raw.body)?;
            let updated = order.updated_at.clone();
            return order_event(raw, order, EventType::Created, "updated_at", updated);
        }
        let event: Event = parse(raw.body)?;
        let kind = event.kind.as_deref().unwrap_or(raw.event_type);
        let event_type = match kind {
            "order.created" => EventType::Created,
            "order.attributed" => EventType::Updated,
            other => return Err(NormalizeError::Unsupported(other.to_owned())),
        };
        let order = event.data.ok_or_else(|| invalid("event has no data"))?;
        order_event(raw, order, event_type, "created_at", event.created_at)
    }
}

/// The event of `order`, which changed at `changed_at` (the field `changed_field`).
fn order_event(
    raw: &RawRecord<'_>,
    order: Order,
    event_type: EventType,
    changed_field: &str,
    changed_at: Option<String>,
) -> Result<OrderEvent, NormalizeError> {
    {
        // The same order id ingest keyed the record with.
        let id = common::required_id(
            order
                .order_id
                .as_ref()
                .or(order.shopify_order_id.as_ref())
                .or(order.id.as_ref()),
            "data.order_id",
        )?;
        let mut out = common::event(raw, &id);
        out.event_type = event_type;
        out.status = OrderStatus::Open;
        out.order_number = trimmed(order.order_number);
        out.currency = currency(order.currency.as_deref())?;
        out.line_items = order
            .line_items
            .into_iter()
            .map(|l| l.into_line("data.line_items"))
            .collect::<Result<_, _>>()?;
        out.totals.subtotal = lines_total(&out.line_items)?;
        out.totals.total = money("data.total", order.total.as_ref())?;
        out.customer = order.customer.map(|c| Customer {
            id: c.id.map(|id| id.to_string()),
            email: trimmed(c.email),
            name: trimmed(c.name),
        });
        let (created_at, created_original) =
            timestamp("data.created_at", order.created_at.as_deref())?;
        let (event_at, event_original) = timestamp(changed_field, changed_at.as_deref())?;
        out.source_created_at = created_at;
        out.source_created_at_original = created_original;
        out.source_updated_at = event_at;
        out.source_updated_at_original = event_original;
        out.version = common::version(event_at.or(created_at), raw);
        out.attribution = order.attribution.map(attribution).transpose()?;
        Ok(out)
    }
}

fn attribution(a: SumeruAttribution) -> Result<Attribution, NormalizeError> {
    Ok(Attribution {
        first_touch: a.first_touch.map(touchpoint).transpose()?,
        last_touch: a.last_touch.map(touchpoint).transpose()?,
        touchpoints: a
            .touchpoints
            .into_iter()
            .map(touchpoint)
            .collect::<Result<_, _>>()?,
    })
}

fn touchpoint(t: Touch) -> Result<Touchpoint, NormalizeError> {
    let share = t.credit_share.or(t.credit_pct.map(|pct| pct / 100.0));
    if share.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
        return Err(invalid("a touchpoint's credit is outside 0..100%"));
    }
    Ok(Touchpoint {
        channel: trimmed(t.channel).ok_or_else(|| invalid("a touchpoint has no channel"))?,
        campaign: trimmed(t.campaign),
        source: trimmed(t.source),
        medium: trimmed(t.medium),
        occurred_at: timestamp("occurred_at", t.occurred_at.as_deref())?.0,
        credit_share: share,
    })
}
