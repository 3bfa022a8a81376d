//! The SAP Business One adapter against the Service Layer simulator: one order per reference
//! (SAP itself accepts duplicates), sessions and their expiry, cancellation, refunds as
//! credit notes, throttling, maintenance, SAP's own error messages, and creates that land
//! but answer 5xx.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use orderbridge_schemas::{EventType, OrderEvent};
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::erp::sap_business_one::SapBusinessOne;
use orderbridge_sink::erp::Cause;
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use support::sap_sim::{Fault, SapSim};
use support::{later_event, shopify_event};

const ITEMS: &[&str] = &["IPOD2008GREEN", "MUG-BLUE", "REFUND"];

async fn setup() -> (SapSim, SapBusinessOne) {
    let sim = SapSim::start(ITEMS).await;
    let sap = SapBusinessOne::new(sim.config(5_000)).unwrap();
    (sim, sap)
}

/// The partial refund event of Shopify's `refunds/create` fixture (of the basic order).
fn refund() -> OrderEvent {
    shopify_event("refunds-create")
}

#[tokio::test]
async fn creates_an_order_with_its_lines_once() {
    let (sim, sap) = setup().await;
    let event = shopify_event("orders-create-basic");
    assert_eq!(sap.upsert(&event).await.unwrap(), Upserted::Created);
    assert_eq!(
        sap.upsert(&event).await.unwrap(),
        Upserted::AlreadyPresent,
        "a redelivery finds the order by NumAtCard"
    );
    let orders = sim.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].num_at_card, external_reference(&event.order_key));
    assert_eq!(orders[0].card_code, "C20000");
    assert_eq!(orders[0].currency, "USD");
    assert_eq!(orders[0].lines[0]["ItemCode"], "IPOD2008GREEN");
    assert_eq!(orders[0].lines[0]["Quantity"], 2);
    assert_eq!(orders[0].lines[0]["UnitPrice"], serde_json::json!(199));
    assert_eq!(orders[0].version(), Some(event.version));
}

#[tokio::test]
async fn updates_replace_the_lines_and_older_events_are_stale() {
    let (sim, sap) = setup().await;
    sap.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let mut update = later_event(EventType::Updated, 2_000);
    update.line_items[0].quantity = 5;
    assert_eq!(sap.upsert(&update).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(
        order.lines.len(),
        1,
        "the lines were replaced, not appended to"
    );
    assert_eq!(order.lines[0]["Quantity"], 5);
    assert_eq!(order.version(), Some(update.version));
    assert_eq!(order.card_code, "C20000", "the business partner stays");
    assert_eq!(
        sap.upsert(&later_event(EventType::Updated, 1_000))
            .await
            .unwrap(),
        Upserted::Stale
    );
    assert_eq!(sap.upsert(&update).await.unwrap(), Upserted::AlreadyPresent);
    let mut status = later_event(EventType::Fulfilled, 3_000);
    status.partial = true;
    assert_eq!(sap.upsert(&status).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(
        order.lines[0]["Quantity"], 5,
        "a status event keeps the lines"
    );
    assert_eq!(order.version(), Some(status.version));
    assert_eq!(order.patches, 2);
    assert_eq!(sim.orders().len(), 1);
}

#[tokio::test]
async fn a_create_that_landed_but_answered_502_is_found_not_repeated() {
    let (sim, sap) = setup().await;
    let event = shopify_event("orders-create-basic");
    sim.inject(Fault::CreateLandsThen502);
    let err = sap.upsert(&event).await.unwrap_err();
    assert!(matches!(err, ErpError::Transient { .. }), "{err:?}");
    assert_eq!(sap.upsert(&event).await.unwrap(), Upserted::AlreadyPresent);
    assert_eq!(
        sim.orders_with_reference(&external_reference(&event.order_key)),
        1
    );
}

#[tokio::test]
async fn one_session_for_many_calls_and_a_new_one_when_it_times_out() {
    let (sim, sap) = setup().await;
    sap.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    sap.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    assert_eq!(sim.counts().0, 1, "one login, cookies reused");
    sim.expire_sessions();
    assert_eq!(
        sap.upsert(&shopify_event("orders-create-jpy-zero-decimal"))
            .await
            .unwrap_err(),
        ErpError::rejected("400 Bad Request: -10: Item code 'BOWL-RAKU' is invalid"),
        "after a new login the call goes through, and SAP's own message comes back"
    );
    assert_eq!(sim.counts().0, 2, "the timed-out session was replaced once");
}

#[tokio::test]
async fn a_wrong_password_is_erp_wide_trouble_not_the_orders() {
    let sim = SapSim::start(ITEMS).await;
    let mut config = sim.config(5_000);
    config.password = orderbridge_runtime::Secret::new("wrong");
    let sap = SapBusinessOne::new(config).unwrap();
    let err = sap
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { reason, .. } if reason.contains("Login failed")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn cancels_once_and_skips_orders_sap_never_had() {
    let (sim, sap) = setup().await;
    let cancelled = later_event(EventType::Cancelled, 1_000);
    assert_eq!(
        sap.upsert(&cancelled).await.unwrap(),
        Upserted::NotHeld,
        "nothing to cancel yet"
    );
    sap.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    assert_eq!(sap.upsert(&cancelled).await.unwrap(), Upserted::Updated);
    assert!(sim.orders()[0].cancelled);
    assert_eq!(
        sap.upsert(&cancelled).await.unwrap(),
        Upserted::AlreadyPresent,
        "cancelling again is looked up, not sent (SAP would refuse it)"
    );
}

#[tokio::test]
async fn a_refund_becomes_one_credit_note() {
    let (sim, sap) = setup().await;
    sap.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let refund = refund();
    assert_eq!(sap.upsert(&refund).await.unwrap(), Upserted::Updated);
    assert_eq!(sap.upsert(&refund).await.unwrap(), Upserted::AlreadyPresent);
    let notes = sim.credit_notes();
    assert_eq!(notes.len(), 1);
    let reference = external_reference(&refund.order_key);
    assert_eq!(notes[0].num_at_card, format!("{reference}-R-509562969"));
    assert_eq!(notes[0].lines[0]["ItemCode"], "IPOD2008GREEN");
    assert_eq!(notes[0].lines[0]["UnitPrice"], serde_json::json!(210.94));
}

#[tokio::test]
async fn a_refund_of_money_only_needs_a_refund_item() {
    let (sim, sap) = setup().await;
    sap.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let mut money_only = refund();
    money_only.refund.as_mut().unwrap().lines.clear();
    let err = sap.upsert(&money_only).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("refund_item_code")),
        "{err:?}"
    );
    let mut config = sim.config(5_000);
    config.refund_item_code = Some("REFUND".into());
    let sap = SapBusinessOne::new(config).unwrap();
    assert_eq!(sap.upsert(&money_only).await.unwrap(), Upserted::Updated);
    assert_eq!(sim.credit_notes()[0].lines[0]["ItemCode"], "REFUND");
}

#[tokio::test]
async fn throttling_and_maintenance_are_transient() {
    let (sim, sap) = setup().await;
    let event = shopify_event("orders-create-basic");
    sim.inject(Fault::Throttle(9));
    let err = sap.upsert(&event).await.unwrap_err();
    assert!(
        matches!(err, ErpError::Transient { retry_after: Some(d), cause: Cause::Throttled, .. } if d == Duration::from_secs(9)),
        "{err:?}"
    );
    sim.set_maintenance(true);
    let err = sap.upsert(&event).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { reason, cause: Cause::Unavailable, .. } if reason.contains("503")),
        "{err:?}"
    );
    sim.set_maintenance(false);
    assert_eq!(sap.upsert(&event).await.unwrap(), Upserted::Created);
    assert_eq!(sim.orders().len(), 1);
}

#[tokio::test]
async fn a_status_update_without_the_order_creates_nothing() {
    let (sim, sap) = setup().await;
    let mut partial = later_event(EventType::Updated, 1_000);
    partial.partial = true;
    assert_eq!(sap.upsert(&partial).await.unwrap(), Upserted::NotHeld);
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn a_session_refused_right_after_logging_in_is_the_erps_trouble_not_the_orders() {
    // As Business Central and NetSuite treat a 401 after fresh credentials: unavailable, so
    // the breaker decides and the order is never parked for it.
    let (sim, sap) = setup().await;
    sim.refuse_sessions(true);
    match sap.upsert(&shopify_event("orders-create-basic")).await {
        Err(ErpError::Transient { cause, .. }) => assert_eq!(cause, Cause::Unavailable),
        other => panic!("{other:?}"),
    }
    sim.refuse_sessions(false);
    assert_eq!(
        sap.upsert(&shopify_event("orders-create-basic"))
            .await
            .unwrap(),
        Upserted::Created
    );
}
