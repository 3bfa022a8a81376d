//! The ingest router's answers: 200 only after the broker acknowledged, 401/404/413 without
//! publishing, and 503 with `Retry-After` while the broker is down (mock-cluster fault
//! injection), then 200 again once it is back.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use orderbridge_ingest::IngestConfig;
use orderbridge_runtime::KafkaSettings;
use orderbridge_schemas::Topics;
use rdkafka::mocking::MockCluster;
use support::fixture;
use support::pipeline::{get_text, ingest_router, post_shopify, SECRET};
use tower::ServiceExt;

fn router(kafka: &KafkaSettings, topics: &Topics, publish_timeout_ms: u64) -> axum::Router {
    let config = IngestConfig {
        body_limit_bytes: 64 * 1024,
        publish_timeout_ms,
        ..IngestConfig::default()
    };
    ingest_router(kafka, topics, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_503_with_retry_after_while_the_broker_is_down() {
    let mock = MockCluster::new(1).unwrap();
    let topics = Topics::with_suffix(&support::unique("t"));
    mock.create_topic(&topics.raw, 1, 1).unwrap();
    let kafka = KafkaSettings::new(mock.bootstrap_servers());
    let ingest = router(&kafka, &topics, 1_500);
    let (headers, body) = fixture("shopify", "orders-create-basic");
    assert_eq!(
        post_shopify(&ingest, &headers, &body, None).await,
        StatusCode::OK
    );

    mock.broker_down(1).unwrap();
    let signature = orderbridge_ingest::verify::shopify::sign(SECRET, &body);
    let mut request = Request::post("/webhooks/shopify").header("X-Shopify-Hmac-Sha256", signature);
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = ingest
        .clone()
        .oneshot(request.body(Body::from(body.clone())).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get("retry-after").unwrap(), "5");

    mock.broker_up(1).unwrap();
    support::wait_for(
        "ingest to answer 200 again",
        std::time::Duration::from_secs(30),
        || async {
            (post_shopify(&ingest, &headers, &body, None).await == StatusCode::OK).then_some(())
        },
    )
    .await;
    // The first refusal, plus any while the broker was coming back.
    let metrics = get_text(&ingest, "/metrics").await;
    let refused: u64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(r#"orderbridge_ingest_responses_total{code="503",source="shopify"} "#)
        })
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    assert!(refused >= 1, "{metrics}");
}

#[tokio::test]
async fn refuses_what_it_must_not_publish() {
    // No broker at all: none of these requests may need one.
    let kafka = KafkaSettings::new("127.0.0.1:1");
    let ingest = router(&kafka, &Topics::default(), 1_000);
    let (headers, body) = fixture("shopify", "orders-create-basic");

    let unknown = Request::post("/webhooks/nowhere")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(
        ingest.clone().oneshot(unknown).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let huge = vec![b' '; 64 * 1024 + 1];
    assert_eq!(
        post_shopify(&ingest, &headers, &huge, None).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let unsigned = headers.clone();
    let request = Request::post("/webhooks/shopify")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(
        ingest.clone().oneshot(request).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_shopify(&ingest, &unsigned, &body, Some("bm90IHRoZSBzaWduYXR1cmU=")).await,
        StatusCode::UNAUTHORIZED
    );

    let metrics = get_text(&ingest, "/metrics").await;
    assert!(
        metrics.contains(
            r#"orderbridge_ingest_signature_failures_total{reason="missing",source="shopify"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"orderbridge_ingest_signature_failures_total{reason="malformed",source="shopify"} 1"#
        ),
        "{metrics}"
    );
    assert_eq!(get_text(&ingest, "/healthz").await, "ok");
    assert_eq!(
        get_text(&ingest, "/readyz").await,
        "not ready",
        "never ready before the broker answered"
    );
}

/// Slow clients cannot hold ingest: three hundred connections that never finish their
/// headers and a hundred whose bodies trickle in are closed (the latter answered 408) within
/// the timeouts, a normal webhook sent among them gets its 200 at once, and shutdown with
/// slow clients still connected ends within its grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_cannot_delay_a_webhook_or_shutdown() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let mock = MockCluster::new(1).unwrap();
    let topics = Topics::with_suffix(&support::unique("t"));
    mock.create_topic(&topics.raw, 1, 1).unwrap();
    let kafka = KafkaSettings::new(mock.bootstrap_servers());
    let config = support::pipeline::with_test_shopify(IngestConfig {
        header_read_timeout_ms: 1_000,
        body_read_timeout_ms: 1_000,
        shutdown_grace_ms: 1_000,
        ..IngestConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = {
        let (config, kafka, topics, shutdown) = (
            config.clone(),
            kafka.clone(),
            topics.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            orderbridge_ingest::run(&config, &kafka, &topics, listener, shutdown).await
        })
    };

    let mut slow = Vec::new();
    for i in 0..400 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = if i < 300 {
            // Headers that never end.
            "POST /webhooks/shopify HTTP/1.1\r\nHost: ingest\r\nX-Slow: ".to_owned()
        } else {
            // Headers, then ten bytes of a promised thousand.
            "POST /webhooks/shopify HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n\
             Content-Length: 1000\r\n\r\n{\"id\": 1, "
                .to_owned()
        };
        stream.write_all(head.as_bytes()).await.unwrap();
        slow.push(stream);
    }

    let (headers, body) = fixture("shopify", "orders-create-basic");
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/shopify"))
        .header(
            "X-Shopify-Hmac-Sha256",
            orderbridge_ingest::verify::shopify::sign(SECRET, &body),
        );
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let sent = Instant::now();
    let response = request.body(body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(
        sent.elapsed() < Duration::from_millis(900),
        "the webhook waited {:?} behind slow clients",
        sent.elapsed()
    );

    // Each slow connection is answered 408 or closed by the server within its timeout.
    let mut answered_408 = 0;
    for stream in &mut slow {
        let mut seen = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut seen)).await;
        assert!(read.is_ok(), "a slow connection was still open after 10 s");
        if seen.starts_with(b"HTTP/1.1 408") {
            answered_408 += 1;
        }
    }
    assert_eq!(answered_408, 100, "each trickling body is answered 408");

    // Slow clients again, then shutdown: it ends within its grace, not when they give up.
    let mut again = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"POST /webhooks/shopify HTTP/1.1\r\nHost: ingest\r\nContent-Length: 100\r\n\r\n{",
            )
            .await
            .unwrap();
        again.push(stream);
    }
    let stopping = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("ingest stopped within its shutdown grace")
        .unwrap()
        .unwrap();
    println!(
        "slow clients: 300 stalled headers and 100 trickling bodies cut off; webhook answered in {:?}; shutdown in {:?}",
        sent.elapsed(),
        stopping.elapsed()
    );
}
