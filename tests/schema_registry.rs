//! The codec through the Confluent REST registry client, against the registry simulator.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::sync::Arc;

use std::time::Duration;

use axum::http::StatusCode;
use orderbridge_processor::Guarantee;
use orderbridge_schemas::{ConfluentRegistry, OrderEventCodec, RegistryError, SchemaRegistry};
use support::pipeline::{counter, post_shopify, Env};
use support::registry_sim::{RegistrySim, Trouble};
use support::{fixture, shopify_event, unique, wait_for};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn events_round_trip_through_a_confluent_registry() {
    let sim = RegistrySim::start().await;
    let registry: Arc<dyn SchemaRegistry> =
        Arc::new(ConfluentRegistry::new(&sim.url, None).unwrap());
    let writer = OrderEventCodec::new(Arc::clone(&registry), "orders.canonical.v1").unwrap();
    let reader = OrderEventCodec::new(Arc::clone(&registry), "orders.canonical.v1").unwrap();
    for case in [
        "orders-create-basic",
        "orders-create-multicurrency-discount",
        "orders-create-jpy-zero-decimal",
    ] {
        let event = shopify_event(case);
        let bytes = writer.encode(&event).await.unwrap();
        assert_eq!(
            u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
            1,
            "the registry's id is on the wire"
        );
        let decoded = reader.decode(&bytes).await.unwrap();
        assert_eq!(decoded, event, "{case}");
        assert_eq!(
            decoded.totals.total.to_string(),
            event.totals.total.to_string(),
            "{case}: minor units kept"
        );
    }
    assert_eq!(
        sim.fetches(),
        1,
        "the reader fetches the writer's schema once and caches it"
    );
}

#[tokio::test]
async fn registry_refusals_are_classified() {
    let sim = RegistrySim::start().await;
    let registry = ConfluentRegistry::new(&sim.url, None).unwrap();
    let v1 = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    let incompatible = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"long"}]}"#;
    assert_eq!(registry.register("s-value", v1).await.unwrap(), 1);
    assert_eq!(
        registry.register("s-value", v1).await.unwrap(),
        1,
        "idempotent"
    );
    let err = registry
        .register("s-value", incompatible)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Incompatible { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let err = registry.schema(42).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(42)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_registry_is_retryable() {
    // A port nothing listens on: bind one, then close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let registry = ConfluentRegistry::new(&url, None).unwrap();
    let err = registry
        .register("s-value", r#""string""#)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn a_refused_connection_is_retryable_whatever_its_port_number() {
    // A closed port whose number holds "409" or "404": an error message naming it must not
    // read as the registry's "incompatible" or "not found".
    let port = (40400..41000)
        .filter(|p| p.to_string().contains("409") || p.to_string().contains("404"))
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 40400..41000");
    let registry = ConfluentRegistry::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let err = registry
        .register("s-value", r#""string""#)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "port {port}: {err:?}");
    let err = registry.schema(1).await.unwrap_err();
    assert!(err.is_retryable(), "port {port}: {err:?}");
}

#[tokio::test]
async fn registry_trouble_is_retryable_and_only_a_missing_schema_is_not() {
    let sim = RegistrySim::start().await;
    let registry = ConfluentRegistry::new(&sim.url, None).unwrap();
    let schema = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    let id = registry.register("s-value", schema).await.unwrap();
    for trouble in [
        Trouble::Status(500),
        Trouble::Status(502),
        Trouble::Status(503),
        Trouble::Status(504),
        Trouble::Status(429),
        Trouble::Status(401),
        Trouble::Status(403),
        Trouble::ForeignNotFound,
        Trouble::Garbled,
    ] {
        sim.trouble_for(trouble, Duration::from_secs(60));
        let err = registry.register("s-value", schema).await.unwrap_err();
        assert!(err.is_retryable(), "register, {trouble:?}: {err:?}");
        let err = registry.schema(id).await.unwrap_err();
        assert!(err.is_retryable(), "schema by id, {trouble:?}: {err:?}");
        sim.trouble_for(trouble, Duration::ZERO);
    }
    // The registry's own "no such schema" (40403) is the one permanent answer of a read.
    let err = registry.schema(id + 100).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(registry.schema(id).await.unwrap(), schema);
}

/// A registry failover while orders flow: for a while every call answers `trouble`. Nothing
/// may be dead-lettered for it; the orders wait and land once the registry answers.
async fn orders_wait_out(trouble: Trouble) {
    let sim = RegistrySim::start().await;
    let mut env = Env::mock();
    let confluent = |sim: &RegistrySim| {
        let registry: Arc<dyn SchemaRegistry> =
            Arc::new(ConfluentRegistry::new(&sim.url, None).unwrap());
        Arc::new(OrderEventCodec::new(registry, &env.topics.canonical).unwrap())
    };
    sim.trouble_for(trouble, Duration::from_secs(4));
    let (erp, db, _dir) = support::staging_db().await;
    let shutdown = CancellationToken::new();
    let (processor_metrics, sink_metrics) =
        (prometheus::Registry::new(), prometheus::Registry::new());
    // The processor writes and the sink reads through codecs of their own, as separate
    // processes would: each meets the failover.
    let writer = confluent(&sim);
    let reader = confluent(&sim);
    env.codec = writer;
    let processor = env.spawn_processor_in(
        &unique("processor"),
        Guarantee::ExactlyOnce,
        &processor_metrics,
        &shutdown,
    );
    env.codec = reader;
    let sink = env.spawn_sink(&unique("sink"), erp, &sink_metrics, &shutdown);
    let ingest = env.ingest();
    let (headers, body) = fixture("shopify", "orders-create-basic");
    assert_eq!(
        post_shopify(&ingest, &headers, &body, None).await,
        StatusCode::OK
    );
    let total: String = wait_for(
        &format!("the order in the staging table after {trouble:?}"),
        Duration::from_secs(60),
        || async {
            sqlx::query_scalar("SELECT total FROM orders")
                .fetch_optional(&db)
                .await
                .unwrap()
        },
    )
    .await;
    assert_eq!(total, "409.94");
    assert!(
        sim.troubled() > 0,
        "the registry was in trouble while the order flowed"
    );
    let dead = counter(
        &processor_metrics,
        "orderbridge_processor_records_total",
        &[("outcome", "dead_lettered")],
    ) + counter(&sink_metrics, "orderbridge_sink_dead_letters_total", &[]);
    assert_eq!(
        dead, 0,
        "{trouble:?}: a record was dead-lettered for registry trouble"
    );
    shutdown.cancel();
    processor.await.unwrap();
    sink.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_wait_out_a_registry_answering_500() {
    orders_wait_out(Trouble::Status(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_wait_out_a_registry_answering_429() {
    orders_wait_out(Trouble::Status(429)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_wait_out_a_registry_refusing_rotated_credentials() {
    orders_wait_out(Trouble::Status(401)).await;
}
