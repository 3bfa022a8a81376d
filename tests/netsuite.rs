//! The NetSuite adapter against the REST simulator: the upsert by external id, the version
//! guard, closing (cancelling) and credit memos, OAuth 2.0 M2M with a signed JWT, the
//! concurrency limit, throttling, maintenance and NetSuite's error bodies.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::sync::Arc;
use std::time::Duration;

use orderbridge_schemas::EventType;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::erp::netsuite::NetSuite;
use orderbridge_sink::erp::Cause;
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use support::netsuite_sim::{NetSuiteSim, CUSTOMER_ID};
use support::pipeline::{counter, sink_config, Env};
use support::{later_event, shopify_event, unique, wait_for};
use tokio_util::sync::CancellationToken;

const ITEMS: &[&str] = &["IPOD2008GREEN", "MUG-BLUE"];

async fn setup() -> (NetSuiteSim, NetSuite) {
    let sim = NetSuiteSim::start(ITEMS).await;
    let netsuite = NetSuite::new(sim.config()).unwrap();
    (sim, netsuite)
}

#[tokio::test]
async fn upserts_by_external_id_once_and_applies_newer_versions_only() {
    let (sim, netsuite) = setup().await;
    let event = shopify_event("orders-create-basic");
    assert_eq!(netsuite.upsert(&event).await.unwrap(), Upserted::Created);
    assert_eq!(
        netsuite.upsert(&event).await.unwrap(),
        Upserted::AlreadyPresent
    );
    let orders = sim.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].external_id, external_reference(&event.order_key));
    assert_eq!(orders[0].fields["entity"]["id"], CUSTOMER_ID);
    assert_eq!(orders[0].lines[0]["item"]["id"], "eid:IPOD2008GREEN");
    assert_eq!(orders[0].version(), Some(event.version));
    assert_eq!(orders[0].writes, 1, "the redelivery wrote nothing");

    let mut update = later_event(EventType::Updated, 2_000);
    update.line_items[0].quantity = 4;
    assert_eq!(netsuite.upsert(&update).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(order.lines.len(), 1, "the item sublist was replaced");
    assert_eq!(order.lines[0]["quantity"], 4);
    assert_eq!(
        netsuite
            .upsert(&later_event(EventType::Updated, 1_000))
            .await
            .unwrap(),
        Upserted::Stale
    );
    let mut status = later_event(EventType::Fulfilled, 3_000);
    status.partial = true;
    assert_eq!(netsuite.upsert(&status).await.unwrap(), Upserted::Updated);
    let order = &sim.orders()[0];
    assert_eq!(order.lines[0]["quantity"], 4);
    assert_eq!(order.version(), Some(status.version));
}

#[tokio::test]
async fn cancelling_closes_every_line_and_refunds_are_credit_memos() {
    let (sim, netsuite) = setup().await;
    let refund = shopify_event("refunds-create");
    assert_eq!(netsuite.upsert(&refund).await.unwrap(), Upserted::NotHeld);
    netsuite
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    assert_eq!(netsuite.upsert(&refund).await.unwrap(), Upserted::Updated);
    assert_eq!(
        netsuite.upsert(&refund).await.unwrap(),
        Upserted::AlreadyPresent
    );
    let memos = sim.credit_memos();
    assert_eq!(memos.len(), 1);
    // The refund's own external id: the order's with the refund id when that fits in 35
    // characters, else a hash of both; never the order's.
    let order_id = external_reference(&shopify_event("orders-create-basic").order_key);
    let memo_id = &memos[0].external_id;
    assert!(memo_id.len() <= 35 && *memo_id != order_id, "{memo_id}");
    assert!(
        memo_id.contains("-R-") || memo_id.starts_with("R-H"),
        "{memo_id}"
    );

    let cancelled = later_event(EventType::Cancelled, 1_000);
    assert_eq!(
        netsuite.upsert(&cancelled).await.unwrap(),
        Upserted::Updated
    );
    let order = &sim.orders()[0];
    assert!(order.lines.iter().all(|l| l["isClosed"] == true));
    assert_eq!(
        netsuite.upsert(&cancelled).await.unwrap(),
        Upserted::AlreadyPresent
    );
    assert_eq!(
        netsuite
            .upsert(&later_event(EventType::Updated, 2_000))
            .await
            .unwrap(),
        Upserted::Skipped,
        "a closed order takes no changes"
    );
}

#[tokio::test]
async fn the_signed_token_is_reused_and_renewed_after_a_401() {
    let (sim, netsuite) = setup().await;
    netsuite
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap();
    netsuite
        .upsert(&later_event(EventType::Updated, 1_000))
        .await
        .unwrap();
    assert_eq!(sim.counts().0, 1, "one token for many calls");
    sim.expire_tokens();
    assert_eq!(
        netsuite
            .upsert(&later_event(EventType::Updated, 2_000))
            .await
            .unwrap(),
        Upserted::Updated
    );
    assert_eq!(sim.counts().0, 2, "a new token after the 401");

    // A key NetSuite does not know: the token endpoint refuses the assertion.
    let mut config = sim.config();
    config.certificate_id = "not-mapped".into();
    let stranger = NetSuite::new(config).unwrap();
    let err = stranger
        .upsert(&shopify_event("orders-create-basic"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { cause: Cause::Unavailable, reason, .. } if reason.contains("token endpoint")),
        "{err:?}"
    );
}

#[tokio::test]
async fn throttling_maintenance_and_refusals_are_classified() {
    let (sim, netsuite) = setup().await;
    let event = shopify_event("orders-create-basic");
    sim.refuse_with_request_limit(1);
    let err = netsuite.upsert(&event).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { cause: Cause::Throttled, reason, .. } if reason.contains("SSS_REQUEST_LIMIT_EXCEEDED")),
        "{err:?}"
    );
    sim.set_concurrency_limit(0); // every request over the account's limit: 429
    let err = netsuite.upsert(&event).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { cause: Cause::Throttled, reason, .. } if reason.contains("429")),
        "{err:?}"
    );
    sim.set_concurrency_limit(5);
    sim.set_maintenance(true);
    let err = netsuite.upsert(&event).await.unwrap_err();
    assert!(
        matches!(&err, ErpError::Transient { cause: Cause::Unavailable, reason, .. } if reason.contains("scheduled maintenance")),
        "{err:?}"
    );
    sim.set_maintenance(false);
    let err = netsuite
        .upsert(&shopify_event("orders-create-jpy-zero-decimal"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ErpError::Rejected { reason } if reason.contains("INVALID_KEY_OR_REF") && reason.contains("eid:BOWL-RAKU")),
        "{err:?}"
    );
    assert!(sim.orders().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sink_stays_within_the_accounts_concurrency_limit() {
    let env = Env::mock();
    let sim = NetSuiteSim::start(ITEMS).await;
    sim.set_latency(Duration::from_millis(30));
    sim.set_concurrency_limit(5);
    let events: Vec<_> = (0..60)
        .map(|n| {
            let mut event = shopify_event("orders-create-basic");
            event.order_key = format!("shopify:example-store.myshopify.com:{}", 2_000_000 + n);
            event
        })
        .collect();
    env.publish_canonical(&events).await;
    let shutdown = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let erp = Arc::new(NetSuite::new(sim.config()).unwrap());
    let sink = env.spawn_sink_with(
        &sink_config(&unique("sink")),
        erp,
        &registry,
        orderbridge_runtime::Health::new(),
        &shutdown,
    );
    wait_for("every order", Duration::from_secs(60), || async {
        (sim.orders().len() == 60).then_some(())
    })
    .await;
    let (_, refused, most) = sim.counts();
    println!("at most {most} requests at once, {refused} refused");
    assert!(most <= 5, "{most} requests at once");
    assert!(most >= 3, "the sink used the concurrency it has: {most}");
    assert_eq!(refused, 0);
    assert_eq!(
        counter(
            &registry,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")]
        ),
        60
    );
    shutdown.cancel();
    sink.await.unwrap();
}
