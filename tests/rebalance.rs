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

/// Posts `count` distinct Shopify orders (own ids, own deliveries) through ingest.
async fn post_orders(env: &Env, from: usize, count: usize) -> Vec<String> {
    use axum::http::StatusCode;
    let ingest = env.ingest();
    let mut deliveries = Vec::with_capacity(count);
    for i in from..from + count {
        let (headers, body, delivery) = support::pipeline::nth_order("rebalance", i);
        assert_eq!(
            support::pipeline::post_shopify(&ingest, &headers, &body, None).await,
            StatusCode::OK
        );
        deliveries.push(delivery);
    }
    deliveries
}

/// Every canonical record's event id, read to the topic's end (`read_committed`).
async fn canonical_ids(env: &Env) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::{Headers as _, Message};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = env
        .kafka
        .client_config()
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for partition in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(&env.topics.canonical, partition, Duration::from_secs(10))
            .unwrap();
        ends.push(high);
        assignment
            .add_partition_offset(&env.topics.canonical, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    // A partition is read when its end was reported and the read is past the end asked for
    // at the start (librdkafka's mock reports an end per fetch, tansu a stale one when asked).
    let mut ids = Vec::new();
    let mut next = vec![0i64; PARTITIONS as usize];
    let mut done = vec![false; PARTITIONS as usize];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while done.iter().any(|d| !d) && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let partition = usize::try_from(message.partition()).unwrap();
                next[partition] = message.offset() + 1;
                let id = message
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "ob-event-id"))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                ids.push(id);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                let partition = usize::try_from(partition).unwrap();
                if next[partition] >= ends[partition] {
                    done[partition] = true;
                }
            }
            Some(Err(err)) => panic!("reading the canonical topic: {err}"),
            None => {}
        }
    }
    assert!(
        done.iter().all(|d| *d),
        "the canonical topic not read to its end in 30 s: at {next:?} of {ends:?}"
    );
    ids
}

/// Two processors: the second joins while the first is busy with a stream of webhooks. Every
/// delivery comes out exactly once: no batch of the first commits partitions the second
/// already processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_joining_mid_stream_emits_nothing_twice_and_skips_nothing() {
    use orderbridge_processor::Guarantee;
    joining_mid_stream(Env::mock(), Guarantee::ExactlyOnce).await;
    // tansu has no transactions.
    if let Some(env) = Env::external().await {
        joining_mid_stream(env, Guarantee::AtLeastOnce).await;
    }
}

async fn joining_mid_stream(mut env: Env, guarantee: orderbridge_processor::Guarantee) {
    use support::pipeline::counter;
    env.kafka
        .properties
        .insert("heartbeat.interval.ms".into(), "300".into());
    let group = unique("processor");
    let mut config = env.processor_config(&group, guarantee);
    // Small batches, so a rebalance falls inside one being gathered.
    config.batch_max_records = 7;
    config.batch_linger_ms = 200;
    let shutdown = CancellationToken::new();
    let first = prometheus::Registry::new();
    let a = env.spawn_processor_with(&config, &first, &shutdown);
    let mut deliveries = post_orders(&env, 0, 150).await;
    wait_for(
        "the first processor at work",
        Duration::from_secs(60),
        || async {
            (counter(
                &first,
                "orderbridge_processor_records_total",
                &[("outcome", "canonical")],
            ) >= 20)
                .then_some(())
        },
    )
    .await;
    let second = prometheus::Registry::new();
    let mut config_b = config.clone();
    config_b.transactional_id = Some(unique("txn-b"));
    let b = env.spawn_processor_with(&config_b, &second, &shutdown);
    deliveries.extend(post_orders(&env, 150, 150).await);
    // Waited on what came out, not on the processors' counters: the mock cluster keeps no
    // transactional offset commits, so a partition that changes hands is read again from its
    // start and the re-read records count as duplicates before the rest is processed.
    wait_for(
        "every delivery emitted",
        Duration::from_secs(120),
        || async {
            let ids: std::collections::BTreeSet<String> =
                canonical_ids(&env).await.into_iter().collect();
            (ids.len() >= deliveries.len()).then_some(())
        },
    )
    .await;
    shutdown.cancel();
    a.await.unwrap();
    b.await.unwrap();
    let ids = canonical_ids(&env).await;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for id in &ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "emitted more than once: {doubled:?}");
    assert_eq!(counts.len(), deliveries.len(), "every delivery came out");
    assert!(
        counter(
            &second,
            "orderbridge_processor_records_total",
            &[("outcome", "canonical")]
        ) > 0,
        "the second processor took a share"
    );
}

/// Orders held for their attribution when a second processor joins, while webhooks keep
/// arriving (so the rebalance falls inside a batch being gathered): they are not committed
/// past, so whoever owns their partitions afterwards emits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_held_for_attribution_across_a_rebalance_still_comes_out() {
    use orderbridge_processor::Guarantee;
    // librdkafka's mock acknowledges transactional offset commits without storing them, so
    // a commit past a held order only shows on a broker that stores them.
    held_across_a_rebalance(Env::mock(), Guarantee::ExactlyOnce).await;
    if let Some(env) = Env::external().await {
        held_across_a_rebalance(env, Guarantee::AtLeastOnce).await;
    }
}

async fn held_across_a_rebalance(mut env: Env, guarantee: orderbridge_processor::Guarantee) {
    env.kafka
        .properties
        .insert("heartbeat.interval.ms".into(), "300".into());
    let group = unique("processor");
    let mut config = env.processor_config(&group, guarantee);
    config.attribution_wait_ms = 6_000;
    // Long batches: the rebalance lands inside one.
    config.batch_linger_ms = 1_500;
    let shutdown = CancellationToken::new();
    let a = env.spawn_processor_with(&config, &prometheus::Registry::new(), &shutdown);
    // Orders in every partition, held for their attribution.
    let mut deliveries = post_orders(&env, 0, 12).await;
    let mut config_b = config.clone();
    config_b.transactional_id = Some(unique("txn-b"));
    let b = env.spawn_processor_with(&config_b, &prometheus::Registry::new(), &shutdown);
    // More orders while the group rebalances.
    for round in 0..20 {
        deliveries.extend(post_orders(&env, 100 + round * 3, 3).await);
        tokio::time::sleep(Duration::from_millis(150)).await; // a steady stream, not a burst
    }
    let ids = wait_for("every held order out", Duration::from_secs(90), || async {
        let ids = canonical_ids(&env).await;
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        (distinct.len() >= deliveries.len()).then_some(ids)
    })
    .await;
    shutdown.cancel();
    a.await.unwrap();
    b.await.unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "nothing twice: {ids:?}");
    let mut expected = deliveries.clone();
    expected.sort();
    assert_eq!(sorted, expected);
}
