//! Mappings read payloads as configured, and refuse what they cannot map.

#![allow(clippy::unwrap_used)]

use super::*;
use chrono::{TimeZone, Utc};
use orderbridge_schemas::Source;

fn raw<'a>(event_type: &'a str, body: &'a [u8]) -> RawRecord<'a> {
    RawRecord {
        source: Source::Custom,
        account: "woo",
        event_type,
        event_id: "d1",
        received_at: Utc.timestamp_millis_opt(1_745_350_202_000).unwrap(),
        origin: "webhook",
        topic: "orders.raw.v1",
        partition: 0,
        offset: 1,
        body,
    }
}

fn woo() -> Mapping {
    toml::from_str(
        r#"
        order_id = "/id"
        order_number = "/number"
        events = { "order.created" = "CREATED", "order.updated" = "UPDATED" }
        status = { pointer = "/status", values = { "processing" = "OPEN", "completed" = "FULFILLED", "cancelled" = "CANCELLED" } }
        payment_status = { pointer = "/status", values = { "processing" = "PAID", "pending" = "PENDING" } }
        created_at = { pointer = "/date_created_gmt" }
        updated_at = { pointer = "/date_modified_gmt" }
        currency = "/currency"
        total = "/total"
        tax = "/total_tax"
        shipping = "/shipping_total"
        email = "/billing/email"
        lines = { pointer = "/line_items", id = "/id", sku = "/sku", title = "/name", quantity = "/quantity", price = "/price" }
        "#,
    )
    .unwrap()
}

#[test]
fn a_full_order_is_mapped_field_by_field() {
    let body = br#"{"id":727,"number":"727","status":"processing","currency":"usd",
        "date_created_gmt":"2025-04-22T19:30:00Z","date_modified_gmt":"2025-04-22T19:31:00Z",
        "total":"43.00","total_tax":"3.00","shipping_total":"10.00",
        "billing":{"email":" buyer@example.com "},
        "line_items":[{"id":315,"name":"Mug","sku":"MUG-1","quantity":2,"price":15}]}"#;
    let event = normalize(&raw("order.created", body), &woo()).unwrap();
    assert!(!event.partial);
    assert_eq!(event.order_key, "custom:woo:727");
    assert_eq!(
        (event.status, event.payment_status),
        (OrderStatus::Open, PaymentStatus::Paid)
    );
    assert_eq!(event.currency, "USD");
    assert_eq!(event.totals.total.to_string(), "43.00");
    assert_eq!(
        event.totals.subtotal.to_string(),
        "30",
        "the lines' sum when unmapped"
    );
    assert_eq!(event.line_items[0].sku.as_deref(), Some("MUG-1"));
    assert_eq!(
        event.customer.unwrap().email.as_deref(),
        Some("buyer@example.com")
    );
    assert_eq!(
        event.source_updated_at_original.as_deref(),
        Some("2025-04-22T19:31:00Z")
    );
}

#[test]
fn without_currency_and_total_it_is_a_status_update() {
    let body = br#"{"id":727,"status":"cancelled"}"#;
    let event = normalize(&raw("order.updated", body), &woo()).unwrap();
    assert!(event.partial);
    assert_eq!(event.status, OrderStatus::Cancelled);
    assert_eq!(event.currency, common::NO_CURRENCY);
}

#[test]
fn unmapped_types_are_unsupported_and_missing_ids_invalid() {
    let err = normalize(&raw("coupon.created", b"{}"), &woo()).unwrap_err();
    assert_eq!(err.class(), "unsupported");
    let err = normalize(&raw("order.created", br#"{"status":"x"}"#), &woo()).unwrap_err();
    assert_eq!(err.class(), "invalid");
    let err = normalize(&raw("order.created", b"not json"), &woo()).unwrap_err();
    assert_eq!(err.class(), "unparseable");
}

#[test]
fn unix_times_are_read_in_their_unit() {
    let mapping = Mapping {
        events: BTreeMap::from([("x".to_owned(), EventType::Updated)]),
        order_id: "/id".into(),
        updated_at: Some(Time {
            pointer: "/t".into(),
            format: TimeFormat::Unix,
        }),
        ..Mapping::default()
    };
    let event = normalize(&raw("x", br#"{"id":"a","t":1688588419}"#), &mapping).unwrap();
    assert_eq!(
        event.source_updated_at.unwrap().to_rfc3339(),
        "2023-07-05T20:20:19+00:00"
    );
    assert_eq!(
        event.version,
        orderbridge_schemas::version_at(event.source_updated_at.unwrap())
    );
}

#[test]
fn minor_units_become_the_currency_s_major_unit() {
    assert_eq!(
        AmountUnit::Minor
            .scale(Decimal::from(4299), "USD")
            .unwrap()
            .to_string(),
        "42.99"
    );
    assert_eq!(
        AmountUnit::Minor
            .scale(Decimal::from(4299), "JPY")
            .unwrap()
            .to_string(),
        "4299"
    );
    assert_eq!(
        AmountUnit::Minor
            .scale(Decimal::from(1250), "KWD")
            .unwrap()
            .to_string(),
        "1.250"
    );
    assert_eq!(
        AmountUnit::Decimal
            .scale(Decimal::from(7), "USD")
            .unwrap()
            .to_string(),
        "7"
    );
    // 28 decimal places cannot move two further: refused, never read unscaled.
    let tiny = Decimal::new(1, 28);
    assert!(AmountUnit::Minor.scale(tiny, "USD").is_err());
}
