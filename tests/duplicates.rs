//! A provider retrying one delivery yields one canonical event: the same signed webhook
//! posted five times, then again after the processor restarted, reaches the canonical topic
//! once. Exactly-once on the mock cluster; at-least-once on the real broker when one is set.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use orderbridge_processor::Guarantee;
use rdkafka::message::{Headers, Message, OwnedMessage};
use support::pipeline::{post_shopify, Env};
use tokio_util::sync::CancellationToken;

fn event_id(record: &OwnedMessage) -> String {
    let headers = record.headers().unwrap();
    let header = headers.iter().find(|h| h.key == "ob-event-id").unwrap();
    String::from_utf8(header.value.unwrap().to_vec()).unwrap()
}

/// The event ids of the first `count` canonical records. Every record here has one order
/// key, so one partition, so they come in the order they were produced: a duplicate would
/// sit before the marker that was posted after it.
async fn first_ids(env: &Env, count: usize) -> Vec<String> {
    env.read(&env.topics.canonical, count, Duration::from_secs(60))
        .await
        .iter()
        .map(event_id)
        .collect()
}

async fn five_deliveries_one_event(env: &Env, guarantee: Guarantee) {
    let ingest = env.ingest();
    let group = support::unique("processor");
    let shutdown = CancellationToken::new();
    let processor =
        env.spawn_processor_in(&group, guarantee, &prometheus::Registry::new(), &shutdown);

    let (headers, body) = support::fixture("shopify", "orders-create-basic");
    for _ in 0..5 {
        assert_eq!(
            post_shopify(&ingest, &headers, &body, None).await,
            StatusCode::OK
        );
    }
    // A later event of the same order (same key, so same partition, so read after the
    // five): whatever of the five reached the topic is before it.
    let mut marker = headers.clone();
    for (name, value) in &mut marker {
        if name.eq_ignore_ascii_case("X-Shopify-Webhook-Id") {
            *value = "marker-1".into();
        }
    }
    assert_eq!(
        post_shopify(&ingest, &marker, &body, None).await,
        StatusCode::OK
    );
    let original = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043";
    assert_eq!(first_ids(env, 2).await, [original, "marker-1"]);

    // Restart: a new processor in the same group reads the filter back from the topic. (On
    // librdkafka's mock cluster it also reads the raw topic from the start again: the mock
    // acknowledges transactional offset commits without storing them. The filter absorbs
    // that too.)
    shutdown.cancel();
    processor.await.unwrap();
    let shutdown = CancellationToken::new();
    let processor =
        env.spawn_processor_in(&group, guarantee, &prometheus::Registry::new(), &shutdown);
    assert_eq!(
        post_shopify(&ingest, &headers, &body, None).await,
        StatusCode::OK
    );
    for (name, value) in &mut marker {
        if name.eq_ignore_ascii_case("X-Shopify-Webhook-Id") {
            *value = "marker-2".into();
        }
    }
    assert_eq!(
        post_shopify(&ingest, &marker, &body, None).await,
        StatusCode::OK
    );
    assert_eq!(first_ids(env, 3).await, [original, "marker-1", "marker-2"]);
    shutdown.cancel();
    processor.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_repeated_five_times_is_one_canonical_event() {
    five_deliveries_one_event(&Env::mock(), Guarantee::ExactlyOnce).await;
    if let Some(env) = Env::external().await {
        five_deliveries_one_event(&env, Guarantee::AtLeastOnce).await;
        eprintln!("duplicates suppressed on {}", env.kafka.bootstrap_servers);
    }
}

/// Two deliveries that share an event id but come from different accounts (or sources) are
/// different deliveries: a provider's ids are unique within its own account, not across
/// everyone's. Both records sit in one raw partition, where one filter sees both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_id_from_two_accounts_is_two_events() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let env = Env::mock();
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::ExactlyOnce, &shutdown);
    let (_, body) = support::fixture("shopify", "orders-create-basic");
    let producer: FutureProducer = env.kafka.producer_config().create().unwrap();
    let sources = [
        ("shopify", "a.myshopify.com"),
        ("shopify", "b.myshopify.com"),
        ("custom", "b.myshopify.com"),
    ];
    for (source, account) in sources {
        let key = format!("{source}:{account}:450789469");
        let headers = [
            ("ob-source", source),
            ("ob-account", account),
            ("ob-event-type", "orders/create"),
            ("ob-event-id", "evt-1"),
            ("ob-origin", "webhook"),
        ]
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value),
            })
        });
        producer
            .send(
                FutureRecord::to(&env.topics.raw)
                    .partition(0)
                    .key(&key)
                    .payload(&body)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    // The two Shopify records become orders; the custom one has no mapping and is kept in
    // the dead-letter topic: each of the three is an output of its own.
    let canonical = env
        .read(&env.topics.canonical, 2, Duration::from_secs(60))
        .await;
    // The two orders' keys land in partitions of their own: any order between them.
    let mut keys: Vec<&[u8]> = canonical.iter().map(|m| m.key().unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            &b"shopify:a.myshopify.com:450789469"[..],
            &b"shopify:b.myshopify.com:450789469"[..]
        ]
    );
    let dead = env.read(&env.topics.dlq, 1, Duration::from_secs(30)).await;
    assert_eq!(
        dead[0].key(),
        Some(&b"custom:b.myshopify.com:450789469"[..])
    );
    shutdown.cancel();
    processor.await.unwrap();
}
