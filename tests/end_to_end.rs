//! Signed webhooks into the ingest router, through the processor and the sink, into SQLite
//! staging tables — on librdkafka's mock cluster (exactly-once) and on the broker in
//! `KAFKA_BOOTSTRAP` (tansu in the test script; at-least-once, since it has no transactions).
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use orderbridge_processor::Guarantee;
use orderbridge_runtime::header_str;
use orderbridge_schemas::headers as ob;
use support::pipeline::{counter, get_text, post_shopify, Env};
use support::{fixture, unique, wait_for};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_on_the_mock_cluster_exactly_once() {
    let env = Env::mock();
    end_to_end(&env, Guarantee::ExactlyOnce).await;
    println!("end-to-end passed on the mock cluster (exactly-once)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_on_a_real_broker_at_least_once() {
    let Some(env) = Env::external().await else {
        // The README's test command always sets KAFKA_BOOTSTRAP (to tansu); a bare
        // `cargo test` has no broker to talk to, so say so instead of passing silently.
        assert!(
            std::env::var_os("ORDERBRIDGE_REQUIRE_BROKER").is_none(),
            "ORDERBRIDGE_REQUIRE_BROKER is set but KAFKA_BOOTSTRAP is not"
        );
        println!("SKIPPED end-to-end on a real broker: KAFKA_BOOTSTRAP is not set");
        return;
    };
    end_to_end(&env, Guarantee::AtLeastOnce).await;
    println!(
        "end-to-end passed on {} (at-least-once)",
        env.kafka.bootstrap_servers
    );
}

async fn end_to_end(env: &Env, guarantee: Guarantee) {
    let (erp, db, _dir) = support::staging_db().await;
    let shutdown = CancellationToken::new();
    let sink_metrics = prometheus::Registry::new();
    let processor_metrics = prometheus::Registry::new();
    let processor = env.spawn_processor_in(
        &unique("processor"),
        guarantee,
        &processor_metrics,
        &shutdown,
    );
    let sink = env.spawn_sink(&unique("sink"), erp, &sink_metrics, &shutdown);
    let ingest = env.ingest();

    // Four orders, one delivered twice, one forged, one unreadable, one we do not map.
    for case in [
        "orders-create-basic",
        "orders-create-multicurrency-discount",
        "orders-updated-partially-fulfilled",
        "orders-create-jpy-zero-decimal",
        "orders-create-basic",
    ] {
        let (headers, body) = fixture("shopify", case);
        assert_eq!(
            post_shopify(&ingest, &headers, &body, None).await,
            StatusCode::OK,
            "{case}"
        );
    }
    let (headers, body) = fixture("shopify", "orders-create-basic");
    let forged = String::from_utf8(body.clone())
        .unwrap()
        .replace("409.94", "0.01");
    let signature = orderbridge_ingest::verify::shopify::sign(support::pipeline::SECRET, &body);
    assert_eq!(
        post_shopify(&ingest, &headers, forged.as_bytes(), Some(&signature)).await,
        StatusCode::UNAUTHORIZED
    );
    for case in ["unparseable-body", "unsupported-topic"] {
        let (headers, body) = fixture("shopify", case);
        assert_eq!(
            post_shopify(&ingest, &headers, &body, None).await,
            StatusCode::OK,
            "{case}"
        );
    }

    let rows: Vec<(String, String, String, String)> =
        wait_for("four orders in the staging table", DEADLINE, || async {
            let rows: Vec<(String, String, String, String)> = sqlx::query_as(
                "SELECT order_key, currency, total, status FROM orders ORDER BY order_key",
            )
            .fetch_all(&db)
            .await
            .unwrap();
            (rows.len() == 4).then_some(rows)
        })
        .await;
    assert_eq!(
        rows,
        vec![
            (
                "shopify:berlin-coffee.myshopify.com:5873201938475".into(),
                "EUR".into(),
                "71.38".into(),
                "OPEN".into()
            ),
            (
                "shopify:example-store.myshopify.com:450789469".into(),
                "USD".into(),
                "409.94".into(),
                "OPEN".into()
            ),
            (
                "shopify:example-store.myshopify.com:450789470".into(),
                "CAD".into(),
                "118.65".into(),
                "PARTIALLY_FULFILLED".into()
            ),
            (
                "shopify:tokyo-ceramics.myshopify.com:7310000001".into(),
                "JPY".into(),
                "16500".into(),
                "OPEN".into()
            ),
        ]
    );
    let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_lines")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(lines, 1 + 2 + 2 + 1);

    // The duplicate delivery (same webhook id) was suppressed by the processor.
    wait_for(
        "the duplicate delivery to be recognised",
        DEADLINE,
        || async {
            (counter(
                &processor_metrics,
                "orderbridge_processor_records_total",
                &[("outcome", "duplicate")],
            ) >= 1)
                .then_some(())
        },
    )
    .await;

    // What could not be normalized is dead-lettered with its reason, value untouched.
    let dead = env.read(&env.topics.dlq, 2, DEADLINE).await;
    let mut classes: Vec<&str> = dead
        .iter()
        .map(|m| header_str(m, ob::DLQ_ERROR_CLASS).unwrap())
        .collect();
    classes.sort_unstable();
    assert_eq!(classes, ["unparseable", "unsupported"]);
    for message in &dead {
        assert_eq!(header_str(message, ob::DLQ_STAGE), Some("processor"));
        assert_eq!(
            header_str(message, ob::DLQ_ORIGINAL_TOPIC),
            Some(env.topics.raw.as_str())
        );
        assert!(!header_str(message, ob::DLQ_REASON).unwrap().is_empty());
    }
    let (_, unparseable) = fixture("shopify", "unparseable-body");
    assert!(dead
        .iter()
        .any(|m| rdkafka::Message::payload(m) == Some(unparseable.as_slice())));

    // The forged webhook was counted and published nothing: the raw topic holds exactly the
    // seven accepted deliveries.
    let metrics = get_text(&ingest, "/metrics").await;
    assert!(
        metrics.contains(
            r#"orderbridge_ingest_signature_failures_total{reason="mismatch",source="shopify"} 1"#
        ),
        "{metrics}"
    );
    let raw = env.read(&env.topics.raw, 7, DEADLINE).await;
    assert!(raw
        .iter()
        .all(|m| rdkafka::Message::payload(m) != Some(forged.as_bytes())));
    assert!(
        raw.iter()
            .all(|m| header_str(m, ob::CONTENT_TYPE) == Some("application/json")),
        "the raw record keeps the provider's content type"
    );

    // A newer update applies; an older one arriving late does not regress the order.
    let newer = with_update(&body, "2025-04-23T10:00:00-05:00", "refunded");
    let older = with_update(&body, "2025-04-22T15:00:00-05:00", "voided");
    // Each is its own delivery, with its own webhook id (a repeated id is a duplicate).
    let updated_headers = |delivery: &str| -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(k, v)| match k.as_str() {
                "X-Shopify-Topic" => (k.clone(), "orders/updated".to_owned()),
                "X-Shopify-Webhook-Id" => (k.clone(), delivery.to_owned()),
                _ => (k.clone(), v.clone()),
            })
            .collect()
    };
    for (delivery, update) in [("update-newer", &newer), ("update-older", &older)] {
        assert_eq!(
            post_shopify(&ingest, &updated_headers(delivery), update.as_bytes(), None).await,
            StatusCode::OK
        );
    }
    wait_for(
        "the older update to be refused as stale",
        DEADLINE,
        || async {
            (counter(
                &sink_metrics,
                "orderbridge_sink_upserts_total",
                &[("outcome", "stale")],
            ) == 1)
                .then_some(())
        },
    )
    .await;
    let payment: String = sqlx::query_scalar("SELECT payment_status FROM orders WHERE order_key = 'shopify:example-store.myshopify.com:450789469'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(payment, "REFUNDED");

    shutdown.cancel();
    processor.await.unwrap();
    sink.await.unwrap();
}

/// The basic order's body as an update made at `updated_at` with `financial_status`.
fn with_update(body: &[u8], updated_at: &str, financial_status: &str) -> String {
    String::from_utf8(body.to_vec())
        .unwrap()
        .replace(
            r#""updated_at":"2025-04-22T14:30:00-05:00""#,
            &format!(r#""updated_at":"{updated_at}""#),
        )
        .replace(
            r#""financial_status":"paid""#,
            &format!(r#""financial_status":"{financial_status}""#),
        )
}
