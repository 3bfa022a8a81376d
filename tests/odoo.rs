//! The Odoo adapter against the JSON-RPC simulator: one order per reference (Odoo itself
//! accepts duplicates), updates with the version guard, "200 with an error" read as the
//! failure it is, a revoked key, throttling, the cancellation wizard avoided, credit notes,
//! maintenance, and a create that lands but answers 504.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use orderbridge_schemas::EventType;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::erp::odoo::Odoo;
use orderbridge_sink::erp::Cause;
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use support::odoo_sim::OdooSim;
use support::{later_event, shopify_event};

async fn setup() -> (OdooSim, Odoo) {
    let sim = OdooSim::start(&["IPOD2008GREEN", "MUG-BLUE"]).await;
    let odoo = Odoo::new(sim.config()).unwrap();
    (sim, odoo)
}

#[tokio::test]
async fn creates_an_order_once_with_products_found_by_sku() {
    let (sim, odoo) = setup().await;
    let event = shopify_event("orders-create-basic");
    assert_eq!(odoo.upsert(&event).await.unwrap(), Upserted::Created);
    assert_eq!(odoo.upsert(&event).await.unwrap(), Upserted::AlreadyPresent);
    let orders = sim.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].client_order_ref,
        external_reference(&event.order_key)
    );
    assert_eq!(orders[0].partner_id, 42);
    assert_eq!(orders[0].lines[0][2]["product_id"], 100);
    assert_eq!(orders[0].lines[0][2]["product_uom_qty"], 2);
    assert_eq!(orders[0].version, Some(event.version.to_string()));
    assert_eq!(sim.counts().0, 1, "one authentication for every call");
}

#[tokio::test]
async fn updates_replace_the_lines_and_older_events_are_stale() {
    let (sim, odoo) = setup().await;
    let event = shopify_event("orders-create-basic");
    odoo.upsert(&event).await.unwrap();
    let mut update = later_event(EventType::Updated, 2_000);
    update.line_items[0].quantity = 3;
    assert_eq!(odoo.upsert(&update).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(order.lines.len(), 1, "the old line was dropped, not kept");
    assert_eq!(order.lines[0][2]["product_uom_qty"], 3);
    assert_eq!(order.version, Some(update.version.to_string()));
    assert_eq!(
        odoo.upsert(&later_event(EventType::Updated, 1_000))
            .await
            .unwrap(),
        Upserted::Stale,
        "an update older than what Odoo holds"
    );
    let mut status = later_event(EventType::Fulfilled, 3_000);
    status.partial = true;
    assert_eq!(odoo.upsert(&status).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(order.lines[0][2]["product_uom_qty"], 3, "lines untouched");
    assert_eq!(order.version, Some(status.version.to_string()));
    assert_eq!(sim.orders().len(), 1);
}

#[tokio::test]
async fn throttling_is_transient_with_the_proxys_retry_after() {
    let (sim, odoo) = setup().await;
    sim.throttle(3);
    let err = odoo
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ErpError::Transient { retry_after: Some(d), cause: Cause::Throttled, .. } if d.as_secs() == 3),
        "{err:?}"
    );
    assert_eq!(
        odoo.upsert(&shopify_event("orders-create-basic"))
            .await
            .unwrap(),
        Upserted::Created
    );
}

#[tokio::test]
async fn odoos_errors_inside_a_200_are_failures_with_its_message() {
    let (sim, odoo) = setup().await;
    let err = odoo
        .upsert(&shopify_event("orders-create-jpy-zero-decimal"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ErpError::rejected("no Odoo product with SKU \"BOWL-RAKU\"")
    );
    let mut config = sim.config();
    config.default_partner_id = 9;
    let odoo = Odoo::new(config).unwrap();
    let err = odoo
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("ValidationError") && reason.contains("partner_id")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn a_revoked_key_is_transient_and_authentication_happens_again() {
    let (sim, odoo) = setup().await;
    odoo.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    sim.revoke_key(true);
    let err = odoo
        .upsert(&later_event(EventType::Updated, 1_000))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { reason, .. } if reason.contains("Access Denied")),
        "{err:?}"
    );
    let err = odoo
        .upsert(&later_event(EventType::Updated, 1_000))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { reason, .. } if reason.contains("refused the login")),
        "{err:?}"
    );
    sim.revoke_key(false);
    assert_eq!(
        odoo.upsert(&later_event(EventType::Updated, 1_000))
            .await
            .unwrap(),
        Upserted::Updated
    );
    assert_eq!(sim.counts().0, 3, "authenticated again after the refusal");
}

#[tokio::test]
async fn a_confirmed_order_is_cancelled_not_handed_a_wizard() {
    let (sim, odoo) = setup().await;
    let cancelled = later_event(EventType::Cancelled, 1_000);
    assert_eq!(odoo.upsert(&cancelled).await.unwrap(), Upserted::NotHeld);
    odoo.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    sim.confirm(1);
    assert_eq!(odoo.upsert(&cancelled).await.unwrap(), Upserted::Updated);
    assert_eq!(sim.orders()[0].state, "cancel");
    assert_eq!(
        odoo.upsert(&cancelled).await.unwrap(),
        Upserted::AlreadyPresent
    );
}

#[tokio::test]
async fn maintenance_and_a_lost_answer_never_double_an_order() {
    let (sim, odoo) = setup().await;
    let event = shopify_event("orders-create-basic");
    sim.set_maintenance(true);
    assert!(matches!(
        odoo.upsert(&event).await,
        Err(ErpError::Transient { .. })
    ));
    sim.set_maintenance(false);
    sim.create_lands_then_504();
    assert!(matches!(
        odoo.upsert(&event).await,
        Err(ErpError::Transient { .. })
    ));
    assert_eq!(odoo.upsert(&event).await.unwrap(), Upserted::AlreadyPresent);
    assert_eq!(sim.orders().len(), 1);
    assert_eq!(
        sim.counts().1,
        1,
        "the retry looked up, it did not create again"
    );
}

#[tokio::test]
async fn refunds_become_one_credit_note_each() {
    let (sim, odoo) = setup().await;
    let refund = shopify_event("refunds-create");
    assert_eq!(
        odoo.upsert(&refund).await.unwrap(),
        Upserted::NotHeld,
        "nothing to refund in an Odoo that never had the order"
    );
    odoo.upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    assert_eq!(odoo.upsert(&refund).await.unwrap(), Upserted::Updated);
    assert_eq!(
        odoo.upsert(&refund).await.unwrap(),
        Upserted::AlreadyPresent,
        "a redelivered refund finds its credit note"
    );
    let notes = sim.credit_notes();
    assert_eq!(notes.len(), 1);
    let reference = external_reference(&refund.order_key);
    assert!(
        notes[0].reference.starts_with(&format!("{reference}-R-")),
        "{}",
        notes[0].reference
    );
    assert_eq!(notes[0].lines[0][2]["product_id"], 100);
    assert_eq!(sim.orders().len(), 1);
}

#[tokio::test]
async fn database_concurrency_errors_are_retried_not_rejected() {
    // What Odoo reports when PostgreSQL gave up on a transaction and Odoo's own retries
    // ran out: worth another try later, never the order's fault.
    for (exception, message) in [
        ("psycopg2.errors.DeadlockDetected", "deadlock detected"),
        (
            "psycopg2.errors.LockNotAvailable",
            "could not obtain lock on row in relation \"sale_order\"",
        ),
        (
            "psycopg2.errors.SerializationFailure",
            "could not serialize access due to concurrent update",
        ),
    ] {
        let (sim, odoo) = setup().await;
        sim.fail_next_create(exception, message);
        let order = shopify_event("orders-create-basic");
        match odoo.upsert(&order).await {
            Err(ErpError::Transient { .. }) => {}
            other => panic!("{exception}: {other:?}"),
        }
        assert_eq!(
            odoo.upsert(&order).await.unwrap(),
            Upserted::Created,
            "{exception}"
        );
        assert_eq!(sim.orders().len(), 1);
    }
}
