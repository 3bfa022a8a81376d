//! The processor's memory is rebuilt without stalling it. A week of traffic sits in the
//! canonical topic (here 900,000 events over three partitions) and its memory in the state
//! topic (an entry per order), the processor runs with a short `max.poll.interval.ms`, and a
//! new webhook must still come out: the rebuild may neither keep the member from polling (it
//! would be evicted, rebuild again, and never catch up) nor cost more with every event the
//! topics hold. What is rebuilt is used: a retry of a delivery the state remembers is
//! suppressed.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use orderbridge_processor::state::{delivery_id, Entry};
use orderbridge_processor::Guarantee;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::pipeline::{post_shopify, Env, PARTITIONS};
use support::{fixture, shopify_event};
use tokio_util::sync::CancellationToken;

/// Canonical events (and state entries) already in each partition when the processor
/// starts, on a real broker. librdkafka's mock cluster keeps only the newest 30,000 or so
/// records of a partition (what it held before is gone, as if expired), so it gets fewer.
const HISTORY_PER_PARTITION: usize = 300_000;
const MOCK_HISTORY_PER_PARTITION: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_history_does_not_keep_a_new_webhook_from_coming_out() {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    history_then_a_webhook(
        Env::mock(),
        Guarantee::ExactlyOnce,
        MOCK_HISTORY_PER_PARTITION,
    )
    .await;
    // tansu has no transactions.
    if let Some(env) = Env::external().await {
        history_then_a_webhook(env, Guarantee::AtLeastOnce, HISTORY_PER_PARTITION).await;
    }
}

async fn history_then_a_webhook(mut env: Env, guarantee: Guarantee, history: usize) {
    // Evicted after 7 s without a poll (the session must not exceed it).
    env.kafka
        .properties
        .insert("max.poll.interval.ms".into(), "7000".into());
    env.kafka
        .properties
        .insert("session.timeout.ms".into(), "6000".into());

    // History: events of other orders, each from a delivery of its own, as a week of
    // traffic would leave them.
    let producer: FutureProducer = env
        .kafka
        .producer_config()
        .set("linger.ms", "50")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut event = shopify_event("orders-create-multicurrency-discount");
    let payload = env.codec.encode(&event).await.unwrap();
    let seeding = Instant::now();
    let mut deliveries = Vec::new();
    let week_start = chrono::Utc::now().timestamp_millis() - 6 * 24 * 3_600_000;
    for partition in 0..PARTITIONS {
        for i in 0..history {
            event.order_key = format!("shopify:history.myshopify.com:{partition}-{i}");
            let id = format!("history-{partition}-{i}");
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "ob-source",
                    value: Some("shopify"),
                })
                .insert(Header {
                    key: "ob-account",
                    value: Some("history.myshopify.com"),
                })
                .insert(Header {
                    key: "ob-event-id",
                    value: Some(id.as_str()),
                });
            // Spread over the last six days, as a week of traffic is.
            let at = week_start + (i as i64) * 6 * 24 * 3_600_000 / history as i64;
            let record = FutureRecord::to(&env.topics.canonical)
                .partition(partition)
                .timestamp(at)
                .key(&event.order_key)
                .payload(&payload)
                .headers(headers);
            // Sent without waiting for each: the queue takes them all, the flush below waits.
            deliveries.push(
                producer
                    .send_result(record)
                    .map_err(|(err, _)| err)
                    .unwrap(),
            );
        }
    }
    // The processor's memory of that week: one entry per order in the state topic.
    let now = chrono::Utc::now().timestamp_millis();
    for partition in 0..PARTITIONS {
        for i in 0..history {
            let key = format!("shopify:history.myshopify.com:{partition}-{i}");
            let entry = Entry {
                seen: vec![(
                    delivery_id(
                        "shopify",
                        "history.myshopify.com",
                        &format!("history-{partition}-{i}"),
                    ),
                    now,
                )],
                ..Entry::default()
            };
            let value = serde_json::to_vec(&entry).unwrap();
            let record = FutureRecord::to(&env.topics.processor_state)
                .partition(partition)
                .key(&key)
                .payload(&value);
            deliveries.push(
                producer
                    .send_result(record)
                    .map_err(|(err, _)| err)
                    .unwrap(),
            );
        }
    }
    // And of the order about to come: an earlier delivery of it, remembered. (Keyed as
    // ingest keys its raw record, so it lands in that record's partition.)
    let order_key = shopify_event("orders-create-basic").order_key;
    let remembered = Entry {
        seen: vec![(
            delivery_id(
                "shopify",
                "example-store.myshopify.com",
                "delivered-last-week",
            ),
            now,
        )],
        ..Entry::default()
    };
    let value = serde_json::to_vec(&remembered).unwrap();
    deliveries.push(
        producer
            .send_result(
                FutureRecord::to(&env.topics.processor_state)
                    .key(&order_key)
                    .payload(&value),
            )
            .map_err(|(err, _)| err)
            .unwrap(),
    );
    producer.flush(Duration::from_secs(120)).unwrap();
    // Every one acknowledged: a broker may refuse some under load.
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(err, _)| err).unwrap();
    }
    println!(
        "seeded {} canonical events and as many state entries in {:?}",
        history * PARTITIONS as usize,
        seeding.elapsed()
    );

    let shutdown = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let config = env.processor_config(&support::unique("processor"), guarantee);
    let processor = env.spawn_processor_with(&config, &registry, &shutdown);
    let ingest = env.ingest();
    // Read the canonical topic from where the history ends.
    let consumer: StreamConsumer = env
        .kafka
        .client_config()
        .set("group.id", support::unique("reader"))
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut from = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(&env.topics.canonical, partition, Duration::from_secs(10))
            .unwrap();
        from.add_partition_offset(&env.topics.canonical, partition, Offset::Offset(high))
            .unwrap();
    }
    consumer.assign(&from).unwrap();
    let (headers, body) = fixture("shopify", "orders-create-basic");
    // First a retry of the delivery the state remembers: a duplicate, nothing comes out.
    let retried: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| match k.as_str() {
            "X-Shopify-Webhook-Id" => (k.clone(), "delivered-last-week".to_owned()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    assert_eq!(
        post_shopify(&ingest, &retried, &body, None).await,
        StatusCode::OK
    );
    let sent = Instant::now();
    assert_eq!(
        post_shopify(&ingest, &headers, &body, None).await,
        StatusCode::OK
    );
    let key = order_key;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .expect("the new webhook's canonical event within 90 s")
            .unwrap();
        if message.key() == Some(key.as_bytes()) {
            // The remembered delivery was suppressed; this is the new one.
            let id = message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "ob-event-id"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned());
            assert_ne!(
                id.as_deref(),
                Some("delivered-last-week"),
                "a remembered delivery came out again"
            );
            break;
        }
    }
    println!(
        "the new webhook came out {:?} after it was sent",
        sent.elapsed()
    );
    shutdown.cancel();
    processor.await.unwrap();
}
