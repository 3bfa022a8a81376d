//! The codec through the Confluent REST registry client, against the registry simulator.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::sync::Arc;

use orderbridge_schemas::{ConfluentRegistry, OrderEventCodec, RegistryError, SchemaRegistry};
use support::registry_sim::RegistrySim;
use support::shopify_event;

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
