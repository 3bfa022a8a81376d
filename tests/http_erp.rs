//! The generic HTTP adapter against a receiver that keeps idempotency keys: one write per
//! event however often it is sent, newer versions applied, older ones stale, and the status
//! table's retries and rejections.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use orderbridge_schemas::EventType;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::erp::http::HttpErp;
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use support::http_sim::{Fault, HttpSim};
use support::{later_event, shopify_event};

#[tokio::test]
async fn one_write_per_event_newer_applied_older_stale() {
    let sim = HttpSim::start().await;
    let erp = HttpErp::new(sim.config()).unwrap();
    let event = shopify_event("orders-create-basic");
    let reference = external_reference(&event.order_key);
    assert_eq!(erp.upsert(&event).await.unwrap(), Upserted::Created);
    assert_eq!(
        erp.upsert(&event).await.unwrap(),
        Upserted::Created,
        "the receiver answers a repeated key as before"
    );
    assert_eq!(
        sim.order(&reference),
        Some((event.version, 1)),
        "written once"
    );
    assert_eq!(
        erp.upsert(&later_event(EventType::Updated, 2_000))
            .await
            .unwrap(),
        Upserted::Updated
    );
    assert_eq!(
        erp.upsert(&later_event(EventType::Updated, 1_000))
            .await
            .unwrap(),
        Upserted::Stale
    );
    assert_eq!(sim.order(&reference), Some((event.version + 2_000, 2)));
}

#[tokio::test]
async fn a_write_that_landed_but_answered_500_is_not_applied_twice() {
    let sim = HttpSim::start().await;
    let erp = HttpErp::new(sim.config()).unwrap();
    let event = shopify_event("orders-create-basic");
    sim.inject(Fault::LandsThen500);
    assert!(matches!(
        erp.upsert(&event).await,
        Err(ErpError::Transient { .. })
    ));
    erp.upsert(&event).await.unwrap();
    assert_eq!(
        sim.order(&external_reference(&event.order_key)),
        Some((event.version, 1))
    );
}

#[tokio::test]
async fn throttling_maintenance_and_credentials_are_transient_bad_bodies_rejected() {
    let sim = HttpSim::start().await;
    let erp = HttpErp::new(sim.config()).unwrap();
    let event = shopify_event("orders-create-basic");
    sim.inject(Fault::Throttle(4));
    assert!(matches!(
        erp.upsert(&event).await,
        Err(ErpError::Transient { retry_after: Some(d), .. }) if d == Duration::from_secs(4)
    ));
    sim.set_maintenance(true);
    assert!(matches!(
        erp.upsert(&event).await,
        Err(ErpError::Transient { .. })
    ));
    sim.set_maintenance(false);
    let mut config = sim.config();
    config.bearer_token = None;
    let anonymous = HttpErp::new(config).unwrap();
    assert!(matches!(
        anonymous.upsert(&event).await,
        Err(ErpError::Transient { reason, .. }) if reason.contains("invalid token")
    ));
    assert_eq!(erp.upsert(&event).await.unwrap(), Upserted::Created);
    sim.inject(Fault::Invalid("unknown SKU IPOD2008GREEN"));
    assert_eq!(
        erp.upsert(&later_event(EventType::Updated, 1_000)).await,
        Err(ErpError::rejected(
            "422 Unprocessable Entity: unknown SKU IPOD2008GREEN"
        )),
        "a refusal dead-letters the event with the receiver's message"
    );
}

#[tokio::test]
async fn cancellations_and_refunds_are_put_as_versions_of_the_order() {
    let sim = HttpSim::start().await;
    let erp = HttpErp::new(sim.config()).unwrap();
    let event = shopify_event("orders-create-basic");
    let reference = external_reference(&event.order_key);
    erp.upsert(&event).await.unwrap();
    let cancelled = later_event(EventType::Cancelled, 1_000);
    assert_eq!(erp.upsert(&cancelled).await.unwrap(), Upserted::Updated);
    assert_eq!(sim.order(&reference), Some((cancelled.version, 2)));
    let refund = shopify_event("refunds-create");
    assert_eq!(erp.upsert(&refund).await.unwrap(), Upserted::Updated);
    assert_eq!(
        erp.upsert(&refund).await.unwrap(),
        Upserted::Updated,
        "the receiver answers a repeated key as before"
    );
    assert_eq!(
        sim.order(&reference),
        Some((refund.version, 3)),
        "written once"
    );
}
