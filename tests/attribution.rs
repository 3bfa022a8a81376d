//! The attribution join, end to end: attribution written to `orders.attribution.v1` before
//! an order reaches the canonical topic inside it; attribution written after the order
//! reaches it as an update at a higher version. After a restart the processor reads its
//! state back from Kafka: the same attribution again emits nothing, and the order's next
//! update still carries it. Exactly-once on the mock cluster; at-least-once on the real
//! broker when one is set.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use orderbridge_processor::Guarantee;
use orderbridge_schemas::{Attribution, AttributionEvent, OrderEvent, Touchpoint};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::pipeline::{counter, post_shopify, Env};
use support::{unique, wait_for};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

fn attribution(campaign: &str) -> Attribution {
    let touch = |channel: &str, share: f64| Touchpoint {
        channel: channel.into(),
        campaign: Some(campaign.into()),
        source: Some("google".into()),
        medium: Some("cpc".into()),
        occurred_at: None,
        credit_share: Some(share),
    };
    Attribution {
        first_touch: Some(touch("paid_search", 0.6)),
        last_touch: Some(touch("email", 0.4)),
        touchpoints: vec![touch("paid_search", 0.6), touch("email", 0.4)],
    }
}

async fn send_attribution(env: &Env, order_key: &str, attribution: &Attribution) {
    // As another team's (Java) producer would write it: same partitioner as ours.
    let producer: FutureProducer = env.kafka.producer_config().create().unwrap();
    let value = serde_json::to_vec(&AttributionEvent {
        order_key: Some(order_key.to_owned()),
        attribution: attribution.clone(),
        attributed_at: None,
    })
    .unwrap();
    producer
        .send(
            FutureRecord::to(&env.topics.attribution)
                .key(order_key)
                .payload(&value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

/// The first `count` canonical events of `order_key`, in the order they were written (one
/// key, one partition). Reads from the start with a fresh group, `read_committed`.
async fn events_of(env: &Env, order_key: &str, count: usize) -> Vec<(String, OrderEvent)> {
    let consumer: StreamConsumer = env
        .kafka
        .client_config()
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&env.topics.canonical]).unwrap();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while events.len() < count {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {count} events of {order_key} arrived", events.len()))
            .unwrap();
        if message.key() == Some(order_key.as_bytes()) {
            let event = env.codec.decode(message.payload().unwrap()).await.unwrap();
            events.push((event_id(&message.detach()), event));
        }
    }
    events
}

/// Posts a Shopify fixture with its delivery id replaced by `delivery`.
async fn post(ingest: &axum::Router, case: &str, delivery: &str) {
    let (mut headers, body) = support::fixture("shopify", case);
    for (name, value) in &mut headers {
        if name.eq_ignore_ascii_case("X-Shopify-Webhook-Id") {
            *value = delivery.into();
        }
    }
    assert_eq!(
        post_shopify(ingest, &headers, &body, None).await,
        StatusCode::OK
    );
}

fn event_id(record: &OwnedMessage) -> String {
    let headers = record.headers().unwrap();
    let header = headers.iter().find(|h| h.key == "ob-event-id").unwrap();
    String::from_utf8(header.value.unwrap().to_vec()).unwrap()
}

/// The order key of the Shopify fixtures used here (`orders-create-basic` and its updates).
const ORDER: &str = "shopify:example-store.myshopify.com:450789469";
/// The order key of `orders-create-jpy-zero-decimal`.
fn jpy_order() -> String {
    let event = support::shopify_event("orders-create-jpy-zero-decimal");
    event.order_key
}

async fn attribution_before_the_order(env: &Env, guarantee: Guarantee) {
    let ingest = env.ingest();
    let metrics = prometheus::Registry::new();
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor_in(&unique("processor"), guarantee, &metrics, &shutdown);

    send_attribution(env, ORDER, &attribution("spring")).await;
    wait_for("the attribution to be taken in", DEADLINE, || async {
        (counter(
            &metrics,
            "orderbridge_processor_attribution_total",
            &[("outcome", "stored")],
        ) >= 1)
            .then_some(())
    })
    .await;
    post(&ingest, "orders-create-basic", "before-1").await;

    let events = events_of(env, ORDER, 1).await;
    let (id, order) = &events[0];
    assert_eq!(id, "before-1");
    assert!(!order.partial, "the order itself, whole");
    assert_eq!(order.attribution, Some(attribution("spring")));
    assert!(
        counter(
            &metrics,
            "orderbridge_processor_attribution_total",
            &[("outcome", "attached")]
        ) >= 1
    );
    shutdown.cancel();
    processor.await.unwrap();
}

async fn attribution_after_the_order(env: &Env, guarantee: Guarantee) {
    let ingest = env.ingest();
    let group = unique("processor");
    let shutdown = CancellationToken::new();
    let processor =
        env.spawn_processor_in(&group, guarantee, &prometheus::Registry::new(), &shutdown);
    let key = jpy_order();

    post(&ingest, "orders-create-jpy-zero-decimal", "after-1").await;
    let first = events_of(env, &key, 1).await;
    assert_eq!(first[0].1.attribution, None, "no attribution known yet");

    send_attribution(env, &key, &attribution("summer")).await;
    let events = events_of(env, &key, 2).await;
    let (order, update) = (&events[0].1, &events[1].1);
    assert_eq!(update.attribution, Some(attribution("summer")));
    assert!(update.partial, "an attribution update, not the order again");
    assert!(
        update.version > order.version,
        "{} must be above {}",
        update.version,
        order.version
    );
    assert_eq!(update.order_key, key);
    assert_eq!(update.lineage.raw_topic, env.topics.attribution);

    // A restarted processor reads its state back: the same attribution again is no news,
    // and the order's next update is emitted with it.
    shutdown.cancel();
    processor.await.unwrap();
    let shutdown = CancellationToken::new();
    let processor =
        env.spawn_processor_in(&group, guarantee, &prometheus::Registry::new(), &shutdown);
    send_attribution(env, &key, &attribution("summer")).await;
    let (mut headers, body) = support::fixture("shopify", "orders-create-jpy-zero-decimal");
    for (name, value) in &mut headers {
        match name.as_str() {
            "X-Shopify-Webhook-Id" => *value = "after-2".into(),
            "X-Shopify-Topic" => *value = "orders/updated".into(),
            _ => {}
        }
    }
    assert_eq!(
        post_shopify(&ingest, &headers, &body, None).await,
        StatusCode::OK
    );
    let events = events_of(env, &key, 3).await;
    let ids: Vec<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids[0], "after-1");
    assert!(ids[1].starts_with("attribution:"), "{ids:?}");
    assert_eq!(
        ids[2], "after-2",
        "nothing between the update and the next order event"
    );
    assert_eq!(events[2].1.attribution, Some(attribution("summer")));
    shutdown.cancel();
    processor.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_sent_before_the_order_is_on_the_order() {
    attribution_before_the_order(&Env::mock(), Guarantee::ExactlyOnce).await;
    if let Some(env) = Env::external().await {
        attribution_before_the_order(&env, Guarantee::AtLeastOnce).await;
        eprintln!(
            "attribution before the order: passed on {}",
            env.kafka.bootstrap_servers
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_sent_after_the_order_updates_it() {
    attribution_after_the_order(&Env::mock(), Guarantee::ExactlyOnce).await;
    if let Some(env) = Env::external().await {
        attribution_after_the_order(&env, Guarantee::AtLeastOnce).await;
        eprintln!(
            "attribution after the order: passed on {}",
            env.kafka.bootstrap_servers
        );
    }
}

/// Posts `case` as delivery `delivery` of Shopify topic `topic`.
async fn post_as(ingest: &axum::Router, case: &str, topic: &str, delivery: &str) {
    let (mut headers, body) = support::fixture("shopify", case);
    for (name, value) in &mut headers {
        match name.as_str() {
            "X-Shopify-Webhook-Id" => *value = delivery.into(),
            "X-Shopify-Topic" => *value = topic.into(),
            _ => {}
        }
    }
    assert_eq!(
        post_shopify(ingest, &headers, &body, None).await,
        StatusCode::OK
    );
}

async fn held(metrics: &prometheus::Registry, count: u64) {
    wait_for(&format!("{count} event(s) held"), DEADLINE, || async {
        (counter(
            metrics,
            "orderbridge_processor_attribution_total",
            &[("outcome", "held")],
        ) >= count)
            .then_some(())
    })
    .await;
}

async fn orders_wait_for_attribution(env: &Env, guarantee: Guarantee) {
    let ingest = env.ingest();
    let group = unique("processor");
    let mut config = env.processor_config(&group, guarantee);
    // Long enough that only the attribution lets the order out.
    config.attribution_wait_ms = 600_000;
    let shutdown = CancellationToken::new();
    let metrics = prometheus::Registry::new();
    let processor = env.spawn_processor_with(&config, &metrics, &shutdown);

    // The order and its update wait; a restart in between loses neither (the committed
    // offset never passed them, so the new processor reads and holds them again).
    post_as(&ingest, "orders-create-basic", "orders/create", "wait-1").await;
    held(&metrics, 1).await;
    shutdown.cancel();
    processor.await.unwrap();
    let shutdown = CancellationToken::new();
    let metrics = prometheus::Registry::new();
    let processor = env.spawn_processor_with(&config, &metrics, &shutdown);
    post_as(&ingest, "orders-create-basic", "orders/updated", "wait-2").await;
    held(&metrics, 2).await;

    send_attribution(env, ORDER, &attribution("autumn")).await;
    // Then a later update, emitted at once: nothing may come between it and the two.
    post_as(&ingest, "orders-create-basic", "orders/updated", "wait-3").await;
    let events = events_of(env, ORDER, 3).await;
    let ids: Vec<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["wait-1", "wait-2", "wait-3"], "in order, once each");
    for (id, event) in &events {
        assert!(!event.partial, "{id}: the order itself");
        assert_eq!(event.attribution, Some(attribution("autumn")), "{id}");
    }
    shutdown.cancel();
    processor.await.unwrap();

    // An order whose attribution never comes goes out when its wait is over.
    config.attribution_wait_ms = 500;
    let shutdown = CancellationToken::new();
    let metrics = prometheus::Registry::new();
    let processor = env.spawn_processor_with(&config, &metrics, &shutdown);
    let key = jpy_order();
    post_as(
        &ingest,
        "orders-create-jpy-zero-decimal",
        "orders/create",
        "wait-4",
    )
    .await;
    let events = events_of(env, &key, 1).await;
    assert_eq!(events[0].0, "wait-4");
    assert_eq!(events[0].1.attribution, None);
    assert_eq!(
        counter(
            &metrics,
            "orderbridge_processor_attribution_total",
            &[("outcome", "wait_expired")],
        ),
        1
    );
    shutdown.cancel();
    processor.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_wait_holds_orders_for_their_attribution() {
    orders_wait_for_attribution(&Env::mock(), Guarantee::ExactlyOnce).await;
    if let Some(env) = Env::external().await {
        orders_wait_for_attribution(&env, Guarantee::AtLeastOnce).await;
        eprintln!(
            "orders wait for attribution: passed on {}",
            env.kafka.bootstrap_servers
        );
    }
}
