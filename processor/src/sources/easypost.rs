//! EasyPost tracker events (`tracker.created`, `tracker.updated`): an `Event` whose `result`
//! is a `Tracker` (<https://docs.easypost.com/docs/trackers>). A tracker follows one
//! parcel, not an order, so each becomes a partial `FULFILLED` event carrying the shipment
//! (carrier, tracking code, EasyPost's status, estimated delivery) and nothing about the
//! order's own statuses: one parcel of several says nothing of the whole order.
//!
//! Which order: a tracker names its shipment (`shipment_id`), and EasyPost objects carry the
//! merchant's optional `reference`. When `reference` is an order key of another source
//! (`shopify:shop.myshopify.com:450789469`, set so when the label was bought), the event is
//! about that order; otherwise it is keyed `easypost:<account>:<reference or shipment id>`,
//! for consumers that link shipments to orders themselves. Nothing is guessed beyond that.
//!
//! The version is the event's `updated_at` (else `created_at`), so later scans win.

use orderbridge_schemas::{order_key, EventType, OrderEvent, Shipment, Source};
use serde::Deserialize;

use super::common::{self, invalid, parse, timestamp, trimmed};
use super::{NormalizeError, Normalizer, RawRecord};

/// Normalizes EasyPost tracker events.
#[derive(Debug, Clone, Copy)]
pub struct EasypostNormalizer;

#[derive(Debug, Deserialize)]
struct Event {
    description: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    result: Option<Tracker>,
}

#[derive(Debug, Deserialize)]
struct Tracker {
    object: Option<String>,
    id: Option<String>,
    reference: Option<String>,
    tracking_code: Option<String>,
    status: Option<String>,
    carrier: Option<String>,
    shipment_id: Option<String>,
    est_delivery_date: Option<String>,
    updated_at: Option<String>,
}

impl Normalizer for EasypostNormalizer {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        let event: Event = parse(raw.body)?;
        let description = event.description.as_deref().unwrap_or(raw.event_type);
        if !description.starts_with("tracker.") {
            return Err(NormalizeError::Unsupported(description.to_owned()));
        }
        let tracker = event
            .result
            .ok_or_else(|| invalid("tracker event has no result"))?;
        if tracker.object.as_deref().is_some_and(|o| o != "Tracker") {
            return Err(invalid("a tracker event's result is not a Tracker"));
        }
        let status = trimmed(tracker.status).ok_or_else(|| invalid("tracker has no status"))?;
        let shipment_id = trimmed(tracker.shipment_id);
        let reference = trimmed(tracker.reference);
        let order = reference
            .as_deref()
            .or(shipment_id.as_deref())
            .map(str::to_owned)
            .or_else(|| trimmed(tracker.id.clone()))
            .ok_or_else(|| invalid("tracker names no reference, shipment or id"))?;

        let mut out = common::event(raw, &order);
        if let Some((source, account, id)) = reference.as_deref().and_then(other_order) {
            out.order_key = order_key(source, account, id);
            out.source = source.as_str().to_owned();
            out.account = account.to_owned();
            out.source_order_id = id.to_owned();
        }
        out.partial = true;
        out.event_type = EventType::Fulfilled;
        let updated = tracker.updated_at.or(event.updated_at).or(event.created_at);
        let (updated_at, original) = timestamp("updated_at", updated.as_deref())?;
        out.source_updated_at = updated_at;
        out.source_updated_at_original = original;
        out.version = common::version(updated_at, raw);
        let (estimated, _) = timestamp("est_delivery_date", tracker.est_delivery_date.as_deref())?;
        out.shipment = Some(Shipment {
            shipment_id,
            carrier: trimmed(tracker.carrier),
            tracking_code: trimmed(tracker.tracking_code),
            status,
            estimated_delivery_at: estimated,
        });
        Ok(out)
    }
}

/// `reference` as `(source, account, order id)` when it is the order key of another source.
fn other_order(reference: &str) -> Option<(Source, &str, &str)> {
    let mut parts = reference.splitn(3, ':');
    let source = parts.next()?.parse::<Source>().ok()?;
    let (account, id) = (parts.next()?, parts.next()?);
    (source != Source::Easypost && !account.is_empty() && !id.is_empty())
        .then_some((source, account, id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_known_source_s_order_key_is_taken_as_the_order() {
        assert_eq!(
            other_order("shopify:shop.myshopify.com:450789469"),
            Some((Source::Shopify, "shop.myshopify.com", "450789469"))
        );
        assert_eq!(other_order("PO-1001"), None);
        assert_eq!(other_order("nosuch:acct:1"), None);
        assert_eq!(other_order("shopify::1"), None);
        assert_eq!(other_order("easypost:-:shp_1"), None);
    }
}
