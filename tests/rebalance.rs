//! Nothing doubled across a rebalance. A second sink joins the group while the first one's
//! Business Central creates are held by the ERP (the simulator holds each create for a few
//! seconds before it lands): the partitions that move must not be written by both members.
//! Business Central does not refuse a duplicate external document number, so a create from
//! the old owner landing after the new owner looked the order up and created it too would be
//! a second sales order (or credit memo), and an old write landing after a newer one would
//! regress the order.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::sync::Arc;
use std::time::Duration;

use orderbridge_runtime::Health;
use orderbridge_schemas::{EventType, OrderEvent};
use orderbridge_sink::erp::business_central::BusinessCentral;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::ErpClient;
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::bc_sim::BcSim;
use support::pipeline::{sink_config, Env, PARTITIONS};
use support::{shopify_event, unique, wait_for};
use tokio_util::sync::CancellationToken;

/// How long the ERP holds each create: longer than a rebalance takes here.
const HOLD: Duration = Duration::from_secs(15);

/// The basic order as if from shop `i`: one order per partition, each its own reference.
fn order(i: i32) -> OrderEvent {
    let mut event = shopify_event("orders-create-basic");
    event.account = format!("shop-{i}.myshopify.com");
    event.order_key = format!("shopify:{}:{}", event.account, event.source_order_id);
    event
}

fn refund(i: i32) -> OrderEvent {
    let mut event = shopify_event("refunds-create");
    let of = order(i);
    event.account = of.account;
    event.order_key = of.order_key;
    event
}

/// An update of order `i` at a later version, with another quantity.
fn update(i: i32) -> OrderEvent {
    let mut event = order(i);
    event.event_type = EventType::Updated;
    event.version += 1_000;
    event.line_items[0].quantity = 3;
    event
}

/// Writes `events` to the canonical topic, event `i` of each round to partition `i`.
async fn publish(env: &Env, events: &[(i32, OrderEvent)]) {
    let producer: FutureProducer = env
        .kafka
        .producer_config()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (partition, event) in events {
        let payload = env.codec.encode(event).await.unwrap();
        producer
            .send(
                FutureRecord::to(&env.topics.canonical)
                    .partition(*partition)
                    .key(&event.order_key)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)
            .unwrap();
    }
}

fn erp(bc: &BcSim) -> Arc<dyn ErpClient> {
    Arc::new(BusinessCentral::new(bc.config(30_000)).unwrap())
}

/// Sink A alone delivers `before` (and they land), then the ERP starts holding creates,
/// `held` is published, and sink B joins while A's creates are held. Returns once every
/// record is committed and nothing is held any more.
async fn join_while_held(bc: &BcSim, before: &[(i32, OrderEvent)], held: &[(i32, OrderEvent)]) {
    let mut env = Env::mock();
    // Rebalances are noticed within a heartbeat: keep it short, so B joins inside the hold.
    env.kafka
        .properties
        .insert("heartbeat.interval.ms".into(), "300".into());
    let group = unique("sink");
    let config = sink_config(&group);
    let shutdown = CancellationToken::new();
    let first = Health::new();
    let a = env.spawn_sink_with(
        &config,
        erp(bc),
        &prometheus::Registry::new(),
        Arc::clone(&first),
        &shutdown,
    );
    wait_for("sink A in its group", Duration::from_secs(30), || async {
        first.is_ready().then_some(())
    })
    .await;
    publish(&env, before).await;
    let landed = before.len();
    wait_for(
        "the first records delivered",
        Duration::from_secs(30),
        || async {
            (env.uncommitted(&group) == 0 && bc.orders().len() + bc.credit_memos().len() >= landed)
                .then_some(())
        },
    )
    .await;

    bc.hold_creates(Some(HOLD));
    publish(&env, held).await;
    let creates = held
        .iter()
        .filter(|(_, e)| e.event_type != EventType::Updated)
        .count() as u32;
    wait_for(
        "sink A's creates held by the ERP",
        Duration::from_secs(30),
        || async { (bc.holding() >= creates).then_some(()) },
    )
    .await;
    let second = Health::new();
    let b = env.spawn_sink_with(
        &config,
        erp(bc),
        &prometheus::Registry::new(),
        Arc::clone(&second),
        &shutdown,
    );
    wait_for(
        "everything delivered and committed",
        Duration::from_secs(90),
        || async { (env.uncommitted(&group) == 0 && bc.holding() == 0).then_some(()) },
    )
    .await;
    assert!(second.is_ready(), "sink B joined the group");
    shutdown.cancel();
    a.await.unwrap();
    b.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_joining_while_creates_are_held_leaves_one_order_each() {
    let bc = BcSim::start(&["IPOD2008GREEN"]).await;
    let held: Vec<(i32, OrderEvent)> = (0..PARTITIONS).map(|p| (p, order(p))).collect();
    join_while_held(&bc, &[], &held).await;
    for (_, event) in &held {
        let reference = external_reference(&event.order_key);
        assert_eq!(bc.orders_with_reference(&reference), 1, "{reference}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_joining_while_credit_memos_are_held_leaves_one_memo_each() {
    let bc = BcSim::start(&["IPOD2008GREEN"]).await;
    let before: Vec<(i32, OrderEvent)> = (0..PARTITIONS).map(|p| (p, order(p))).collect();
    let held: Vec<(i32, OrderEvent)> = (0..PARTITIONS).map(|p| (p, refund(p))).collect();
    join_while_held(&bc, &before, &held).await;
    let memos = bc.credit_memos();
    assert_eq!(
        memos.len(),
        held.len(),
        "one credit memo per refund: {memos:?}"
    );
    let mut references: Vec<&str> = memos
        .iter()
        .map(|m| m.external_document_number.as_str())
        .collect();
    references.dedup();
    assert_eq!(references.len(), held.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_joining_between_a_held_create_and_its_update_leaves_the_newest_order() {
    let bc = BcSim::start(&["IPOD2008GREEN"]).await;
    let mut held: Vec<(i32, OrderEvent)> = (0..PARTITIONS).map(|p| (p, order(p))).collect();
    held.extend((0..PARTITIONS).map(|p| (p, update(p))));
    join_while_held(&bc, &[], &held).await;
    for p in 0..PARTITIONS {
        let newest = update(p);
        let reference = external_reference(&newest.order_key);
        let orders: Vec<_> = bc
            .orders()
            .into_iter()
            .filter(|o| o.external_document_number == reference)
            .collect();
        assert_eq!(orders.len(), 1, "{reference}: {orders:?}");
        assert_eq!(
            orders[0].item_lines()[0]["quantity"],
            3,
            "{reference} holds the update, not the older create"
        );
        assert!(
            orders[0]
                .comments()
                .iter()
                .any(|c| c.contains(&newest.version.to_string())),
            "{reference} is at the newest version: {:?}",
            orders[0].comments()
        );
    }
}
