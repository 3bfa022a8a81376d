//! Values from outside cannot stop a stage. `orderbridge dev` as a user runs it (the binary,
//! its own embedded broker, its SQLite staging tables) is sent correctly signed webhooks whose
//! numbers do not fit: a ZephyrCart line of 10¹⁶ units at 10¹⁴ each (their product overflows a
//! decimal), and a Flipkart line whose unit price does not end at the paisa (499 for 3). The
//! first is dead-lettered with its reason, the second lands with its total exact, and an
//! ordinary order sent after both still reaches the staging tables: nothing crashed.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use base64::Engine;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use sha1::Digest as _;
use support::procs::{free_port, Procs};
use support::signed::hmac_sha256;
use support::{unique, wait_for};

const DEV_SECRET: &str = "orderbridge-dev-secret";

fn zephyrcart_headers(body: &[u8]) -> Vec<(String, String)> {
    let ts = support::signed::now().to_string();
    let v1 = hex::encode(hmac_sha256(
        DEV_SECRET.as_bytes(),
        &[ts.as_bytes(), b".", body],
    ));
    vec![("x-zephyrcart-signature".into(), format!("t={ts},v1={v1}"))]
}

fn flipkart_headers(url: &str) -> Vec<(String, String)> {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let digest = sha1::Sha1::digest(format!("{date}{url}POST{DEV_SECRET}").as_bytes());
    let login = base64::engine::general_purpose::STANDARD
        .encode(format!("orderbridge-dev:{}", hex::encode(digest)));
    vec![
        ("X_Date".into(), date),
        ("X_Authorization".into(), format!("FKLOGIN {login}")),
    ]
}

async fn post(url: &str, headers: &[(String, String)], body: &[u8]) -> u16 {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_that_do_not_fit_are_dead_lettered_and_dev_keeps_running_and_shows_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dev.db");
    let (listen, registry) = (free_port(), free_port());
    let mut procs = Procs::new(dir.path());
    procs.spawn(
        "dev",
        &[
            "dev",
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--registry-listen",
            &format!("127.0.0.1:{registry}"),
            "--db",
            &db.display().to_string(),
        ],
        &[("RUST_LOG".into(), "info".into())],
    );
    let broker = wait_for("dev's banner", Duration::from_secs(90), || {
        let log = procs.log("dev");
        async move {
            log.lines()
                .find_map(|l| l.trim().strip_prefix("broker:"))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        }
    })
    .await;
    let base = format!("http://127.0.0.1:{listen}");

    // 10^16 units at 10^14: the product does not fit any decimal.
    let poison = br#"{"id":"evt_zc_poison","type":"order.created","created_at":"2026-03-02T10:15:00Z","data":{"id":"zc_ord_poison","currency":"EUR","total":"1.00","line_items":[{"sku":"X","quantity":10000000000000000,"price":"100000000000000"}]}}"#;
    let url = format!("{base}/webhooks/zephyrcart");
    assert_eq!(post(&url, &zephyrcart_headers(poison), poison).await, 200);

    // 499 for 3 units: 166.333… a unit.
    let flipkart = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/flipkart/shipment-created-quantity-3/body.json"),
    )
    .unwrap();
    let url = format!("{base}/webhooks/flipkart");
    assert_eq!(post(&url, &flipkart_headers(&url), &flipkart).await, 200);

    // And an ordinary order after both.
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/zephyrcart/order-created/body.json"),
    )
    .unwrap();
    let url = format!("{base}/webhooks/zephyrcart");
    assert_eq!(post(&url, &zephyrcart_headers(&body), &body).await, 200);

    let staging = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let totals: Vec<(String, String)> = wait_for(
        "both good orders in the staging tables",
        Duration::from_secs(60),
        || {
            let staging = staging.clone();
            async move {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT order_key, total FROM orders ORDER BY order_key")
                        .fetch_all(&staging)
                        .await
                        .ok()?;
                (rows.len() >= 2).then_some(rows)
            }
        },
    )
    .await;
    assert_eq!(
        totals,
        vec![
            (
                "flipkart:-:OD108833803073636000".to_owned(),
                "499.00".to_owned()
            ),
            ("zephyrcart:-:zc_ord_1001".to_owned(), "54.90".to_owned()),
        ]
    );
    let line: (i64, String, String) = sqlx::query_as(
        "SELECT quantity, unit_price, discount FROM order_lines WHERE order_key = 'flipkart:-:OD108833803073636000'",
    )
    .fetch_one(&staging)
    .await
    .unwrap();
    assert_eq!(line, (3, "166.34".to_owned(), "0.02".to_owned()));
    assert!(
        procs.exited("dev").is_none(),
        "dev stopped:\n{}",
        procs.log("dev")
    );

    // dev's one `/metrics` (printed in its banner) shows every stage, so what the dashboard
    // shows can be seen locally: the orders counted in by ingest, through the processor, and
    // into the ERP by the sink.
    let metrics_url = format!("{base}/metrics");
    assert!(
        procs.log("dev").contains(&metrics_url),
        "the banner names {metrics_url}:\n{}",
        procs.log("dev")
    );
    let metrics = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for family in [
        "orderbridge_ingest_webhooks_received_total",
        "orderbridge_processor_records_total",
        "orderbridge_processor_batch_seconds_bucket",
        "orderbridge_sink_upserts_total",
        "orderbridge_sink_receipt_to_erp_seconds_bucket",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(family)),
            "{family} is missing from dev's /metrics:\n{metrics}"
        );
    }
    let created = metrics
        .lines()
        .find(|l| l.starts_with("orderbridge_sink_upserts_total") && l.contains("created"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(created, Some(2.0), "{metrics}");

    // The poison order is kept, with its reason, where an operator can replay it from.
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["orders.dlq.v1"]).unwrap();
    let dead = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a dead letter")
        .unwrap()
        .detach();
    assert_eq!(dead.key(), Some(&b"zephyrcart:-:zc_ord_poison"[..]));
    assert_eq!(dead.payload(), Some(&poison[..]));
    let header = |name: &str| support::header(&dead, name);
    assert_eq!(
        header("ob-dlq-error-class").as_deref(),
        Some("out-of-range")
    );
    assert!(
        header("ob-dlq-reason").is_some_and(|r| r.contains("does not fit")),
        "{:?}",
        header("ob-dlq-reason")
    );
}
