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
