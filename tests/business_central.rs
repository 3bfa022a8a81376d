//! The Business Central adapter against the simulator: idempotent creates, token handling,
//! throttling, maintenance, and creates that land but fail.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use orderbridge_schemas::EventType;
use orderbridge_sink::erp::business_central::BusinessCentral;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use support::bc_sim::{BcSim, Fault};
use support::{later_event, shopify_event};

const ITEMS: &[&str] = &["IPOD2008GREEN", "MUG-BLUE", "TEAPOT", "ESP-BEANS-1KG"];

async fn setup(timeout_ms: u64) -> (BcSim, BusinessCentral) {
    let sim = BcSim::start(ITEMS).await;
    let bc = BusinessCentral::new(sim.config(timeout_ms)).unwrap();
    (sim, bc)
}

#[tokio::test]
async fn creates_an_order_with_its_lines_once() {
    let (sim, bc) = setup(5_000).await;
    let event = shopify_event("orders-create-basic");
    assert_eq!(bc.upsert(&event).await.unwrap(), Upserted::Created);
    assert_eq!(
        bc.upsert(&event).await.unwrap(),
        Upserted::AlreadyPresent,
        "a redelivery finds the order"
    );
    let orders = sim.orders();
    assert_eq!(orders.len(), 1);
    let reference = external_reference(&event.order_key);
    assert_eq!(orders[0].external_document_number, reference);
    assert!(reference.len() <= 35 && reference == reference.to_uppercase());
    assert_eq!(orders[0].customer_number, "10000");
    assert_eq!(orders[0].currency_code, "USD");
    let items = orders[0].item_lines();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["lineObjectNumber"], "IPOD2008GREEN");
    assert_eq!(items[0]["quantity"], 2);
    assert_eq!(items[0]["unitPrice"], serde_json::json!(199));
    assert_eq!(
        orders[0].comments(),
        vec![format!("OrderBridge version {}", event.version)],
        "the version travels with the lines"
    );
}

#[tokio::test]
async fn updates_replace_the_lines_in_one_batch_and_older_events_are_stale() {
    let (sim, bc) = setup(5_000).await;
    bc.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let mut update = later_event(EventType::Updated, 2_000);
    update.line_items[0].quantity = 6;
    assert_eq!(bc.upsert(&update).await.unwrap(), Upserted::Updated);
    assert_eq!(sim.batches(), 1, "lines and version in one transaction");
    let order = &sim.orders()[0];
    let items = order.item_lines();
    assert_eq!(items.len(), 1, "old lines deleted, not kept");
    assert_eq!(items[0]["quantity"], 6);
    assert_eq!(
        order.comments(),
        vec![format!("OrderBridge version {}", update.version)]
    );
    assert_eq!(
        bc.upsert(&later_event(EventType::Updated, 1_000))
            .await
            .unwrap(),
        Upserted::Stale
    );
    assert_eq!(bc.upsert(&update).await.unwrap(), Upserted::AlreadyPresent);
    let mut status = later_event(EventType::Fulfilled, 3_000);
    status.partial = true;
    status.line_items.clear();
    assert_eq!(bc.upsert(&status).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(
        order.item_lines()[0]["quantity"],
        6,
        "a status event keeps the lines"
    );
    assert_eq!(
        order.comments(),
        vec![format!("OrderBridge version {}", status.version)]
    );
    assert_eq!(sim.orders().len(), 1);
}

#[tokio::test]
async fn an_update_bc_refuses_changes_nothing() {
    let (sim, bc) = setup(5_000).await;
    bc.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let mut update = later_event(EventType::Updated, 2_000);
    update.line_items[0].sku = Some("NO-SUCH-ITEM".into());
    let err = bc.upsert(&update).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("NO-SUCH-ITEM")),
        "{err:?}"
    );
    let order = &sim.orders()[0];
    assert_eq!(
        order.item_lines()[0]["lineObjectNumber"],
        "IPOD2008GREEN",
        "the batch was rolled back: the old line is still there"
    );
}

#[tokio::test]
async fn cancelling_deletes_the_order_once() {
    let (sim, bc) = setup(5_000).await;
    bc.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let cancelled = later_event(EventType::Cancelled, 1_000);
    assert_eq!(bc.upsert(&cancelled).await.unwrap(), Upserted::Updated);
    assert!(sim.orders().is_empty());
    assert_eq!(
        bc.upsert(&cancelled).await.unwrap(),
        Upserted::NotHeld,
        "nothing left to cancel: BC deletes a cancelled order, so a redelivered cancellation waits (and is dead-lettered as order-unknown)"
    );
}

#[tokio::test]
async fn refunds_become_one_credit_memo_each_also_after_the_order_was_invoiced() {
    let (sim, bc) = setup(5_000).await;
    let event = shopify_event("orders-create-basic");
    bc.upsert(&event).await.unwrap();
    let reference = external_reference(&event.order_key);
    sim.ship_and_invoice(&reference);
    assert!(sim.orders().is_empty());
    assert_eq!(
        bc.upsert(&event).await.unwrap(),
        Upserted::AlreadyPresent,
        "the posted invoice counts as the order"
    );
    assert_eq!(
        bc.upsert(&later_event(EventType::Updated, 1_000))
            .await
            .unwrap(),
        Upserted::Skipped,
        "a posted order takes no changes"
    );
    let refund = shopify_event("refunds-create");
    assert_eq!(bc.upsert(&refund).await.unwrap(), Upserted::Updated);
    assert_eq!(bc.upsert(&refund).await.unwrap(), Upserted::AlreadyPresent);
    let memos = sim.credit_memos();
    assert_eq!(memos.len(), 1);
    assert!(memos[0].external_document_number.len() <= 35);
    assert_ne!(memos[0].external_document_number, reference);
    assert_eq!(memos[0].lines[0]["lineObjectNumber"], "IPOD2008GREEN");
    assert!(sim.orders().is_empty(), "no order was created again");
}

#[tokio::test]
async fn caches_the_token_and_refreshes_it_on_401() {
    let (sim, bc) = setup(5_000).await;
    bc.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    bc.upsert(&shopify_event("orders-updated-partially-fulfilled"))
        .await
        .unwrap();
    assert_eq!(sim.counts().0, 1, "one token for several calls");
    sim.expire_tokens();
    assert_eq!(bc.upsert(&shopify_event("orders-create-jpy-zero-decimal")).await, Err(ErpError::rejected(
        "400 Bad Request: Internal_RecordNotFound: The Item does not exist. Identification fields and values: No.='BOWL-RAKU'  CorrelationId:  8c5f2a4e-0000-4000-8000-000000000000."
    )), "after a refreshed token the call goes through (and BC's own message comes back)");
    assert_eq!(sim.counts().0, 2, "the expired token was replaced once");
}

#[tokio::test]
async fn throttling_is_transient_and_carries_retry_after() {
    let (sim, bc) = setup(5_000).await;
    sim.inject(Fault::Throttle(7));
    let err = bc
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ErpError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{err:?}"
    );
    assert_eq!(
        bc.upsert(&shopify_event("orders-create-basic"))
            .await
            .unwrap(),
        Upserted::Created
    );
    assert_eq!(sim.orders().len(), 1);
}

#[tokio::test]
async fn a_maintenance_window_is_transient_and_creates_nothing() {
    let (sim, bc) = setup(5_000).await;
    sim.set_maintenance(true);
    let err = bc
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { reason, .. } if reason.contains("503")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
    sim.set_maintenance(false);
    assert_eq!(
        bc.upsert(&shopify_event("orders-create-basic"))
            .await
            .unwrap(),
        Upserted::Created
    );
}

#[tokio::test]
async fn a_create_that_landed_but_answered_503_is_found_before_retrying() {
    let (sim, bc) = setup(5_000).await;
    let event = shopify_event("orders-create-basic");
    sim.inject(Fault::CreateLandsThen503);
    assert!(matches!(
        bc.upsert(&event).await,
        Err(ErpError::Transient { .. })
    ));
    assert_eq!(bc.upsert(&event).await.unwrap(), Upserted::AlreadyPresent);
    assert_eq!(
        sim.orders_with_reference(&external_reference(&event.order_key)),
        1
    );
}

#[tokio::test]
async fn a_create_that_landed_but_timed_out_is_found_before_retrying() {
    let (sim, bc) = setup(300).await;
    let event = shopify_event("orders-create-basic");
    sim.inject(Fault::CreateLandsThenStall(Duration::from_secs(2)));
    let err = bc.upsert(&event).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { reason, .. } if reason.contains("timed out")),
        "{err:?}"
    );
    assert_eq!(bc.upsert(&event).await.unwrap(), Upserted::AlreadyPresent);
    assert_eq!(
        sim.orders_with_reference(&external_reference(&event.order_key)),
        1
    );
}

#[tokio::test]
async fn validation_errors_are_rejected_with_bcs_message() {
    let (sim, bc) = setup(5_000).await;
    // The gift-wrapping line has no SKU, so there is no BC item to put on it.
    let err = bc
        .upsert(&shopify_event("orders-create-multicurrency-discount"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("no SKU")),
        "{err:?}"
    );
    let err = bc
        .upsert(&shopify_event("orders-create-jpy-zero-decimal"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("The Item does not exist")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn wrong_credentials_are_transient_never_a_dead_letter() {
    let sim = BcSim::start(ITEMS).await;
    let mut config = sim.config(5_000);
    config.client_secret = orderbridge_runtime::Secret::new("wrong");
    let bc = BusinessCentral::new(config).unwrap();
    let err = bc
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { reason, .. } if reason.contains("token endpoint")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn a_cancellation_of_an_order_bc_never_had_creates_nothing() {
    let (sim, bc) = setup(5_000).await;
    let mut event = shopify_event("orders-cancelled");
    event.line_items.clear();
    assert_eq!(bc.upsert(&event).await.unwrap(), Upserted::NotHeld);
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn a_status_only_event_creates_no_sales_order() {
    let (sim, bc) = setup(5_000).await;
    let mut event = shopify_event("orders-create-basic");
    event.partial = true;
    event.line_items.clear();
    assert_eq!(bc.upsert(&event).await.unwrap(), Upserted::NotHeld);
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn updates_run_the_mapping_program_as_creates_do() {
    use orderbridge_sink::mapping::{Mapping, MappingConfig};
    let sim = BcSim::start(&["IPOD2008GREEN"]).await;
    let config: MappingConfig = toml::from_str(
        r#"program = '.salesOrderLines |= map(if .lineType == "Item" then .description = "mapped: " + .description else . end)'"#,
    )
    .unwrap();
    let bc = BusinessCentral::new(sim.config(5_000))
        .unwrap()
        .with_mapping(std::sync::Arc::new(Mapping::new(config).unwrap()));
    bc.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    let mut update = later_event(EventType::Updated, 1_000);
    update.line_items[0].quantity = 5;
    assert_eq!(bc.upsert(&update).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    let lines = order.item_lines();
    assert_eq!(lines[0]["quantity"], 5, "{order:?}");
    assert!(
        lines[0]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("mapped: ")),
        "the update's lines went through the program: {order:?}"
    );
    assert!(
        order
            .comments()
            .iter()
            .any(|c| c.ends_with(&update.version.to_string())),
        "the version line is there: {order:?}"
    );
}
