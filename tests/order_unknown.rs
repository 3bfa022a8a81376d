//! An event for an order the ERP does not hold yet is never committed away. A cancellation,
//! a refund or a status that arrives before its order (providers do not promise order across
//! topics, and a replay can bring a create back later) waits for the order; when the order
//! comes, it is applied after it, so a cancelled order stays cancelled and a refund is
//! booked. One whose order never comes is dead-lettered as `order-unknown` after a bounded
//! wait, replayable.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::sync::Arc;
use std::time::Duration;

use orderbridge_schemas::EventType;
use orderbridge_sink::erp::business_central::BusinessCentral;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::ErpClient;
use support::bc_sim::BcSim;
use support::pipeline::{sink_config, Env};
use support::{later_event, shopify_event, unique, wait_for};
use tokio_util::sync::CancellationToken;

const ITEMS: &[&str] = &["IPOD2008GREEN"];

/// Sink on Business Central; `events` published in this order; returns when they are all
/// committed.
async fn deliver(bc: &BcSim, events: &[orderbridge_schemas::OrderEvent]) {
    let env = Env::mock();
    let group = unique("sink");
    let shutdown = CancellationToken::new();
    let erp: Arc<dyn ErpClient> = Arc::new(BusinessCentral::new(bc.config(30_000)).unwrap());
    let sink = env.spawn_sink(&group, erp, &prometheus::Registry::new(), &shutdown);
    env.publish_canonical(events).await;
    wait_for(
        "every record committed",
        Duration::from_secs(60),
        || async { (env.uncommitted(&group) == 0).then_some(()) },
    )
    .await;
    shutdown.cancel();
    sink.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_before_its_order_keeps_the_order_cancelled() {
    let bc = BcSim::start(ITEMS).await;
    let create = shopify_event("orders-create-basic");
    let cancel = later_event(EventType::Cancelled, 1_000);
    deliver(&bc, &[cancel, create.clone()]).await;
    assert_eq!(
        bc.orders_with_reference(&external_reference(&create.order_key)),
        0,
        "the create that came after its cancellation did not bring the order back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_before_its_order_is_booked_once_the_order_is_there() {
    let bc = BcSim::start(ITEMS).await;
    let create = shopify_event("orders-create-basic");
    let refund = shopify_event("refunds-create");
    deliver(&bc, &[refund, create.clone()]).await;
    assert_eq!(
        bc.orders_with_reference(&external_reference(&create.order_key)),
        1
    );
    assert_eq!(
        bc.credit_memos().len(),
        1,
        "the refund was booked, not lost"
    );
}

/// A marketplace's status for an order no ERP ever received (its create never comes): kept
/// open for the wait, then dead-lettered as `order-unknown` with its value, and committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_whose_order_never_comes_is_dead_lettered_as_order_unknown() {
    use rdkafka::message::Message;
    let env = Env::mock();
    let (erp, db, _dir) = support::staging_db().await;
    let group = unique("sink");
    let mut config = sink_config(&group);
    config.order_unknown_wait_ms = 1_500;
    let shutdown = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let sink = env.spawn_sink_with(
        &config,
        erp,
        &registry,
        orderbridge_runtime::Health::new(),
        &shutdown,
    );
    let mut status = later_event(EventType::Fulfilled, 1_000);
    status.partial = true;
    // And an order of another key behind it in the same partition: it is not held up.
    let mut other = shopify_event("orders-create-basic");
    other.order_key = status.order_key.replace("450789469", "450789470");
    env.publish_canonical(&[status.clone(), other.clone()])
        .await;
    let rows: i64 = wait_for(
        "the other order in the staging table",
        Duration::from_secs(30),
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
                .fetch_one(&db)
                .await
                .unwrap();
            (n >= 1).then_some(n)
        },
    )
    .await;
    assert_eq!(rows, 1);
    let dead = env.read(&env.topics.dlq, 1, Duration::from_secs(30)).await;
    assert_eq!(dead[0].key(), Some(status.order_key.as_bytes()));
    let header = |name: &str| support::header(&dead[0], name);
    assert_eq!(
        header("ob-dlq-error-class").as_deref(),
        Some("order-unknown")
    );
    assert!(header("ob-dlq-reason").is_some_and(|r| r.contains("holds no order")));
    wait_for("both committed", Duration::from_secs(30), || async {
        (env.uncommitted(&group) == 0).then_some(())
    })
    .await;
    assert_eq!(
        support::pipeline::counter(
            &registry,
            "orderbridge_sink_dead_letters_total",
            &[("class", "order-unknown")]
        ),
        1
    );
    shutdown.cancel();
    sink.await.unwrap();
}
