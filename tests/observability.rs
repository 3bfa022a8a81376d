//! The alert rules and the Grafana dashboard name only metrics the services export: the pipeline runs on the mock cluster through a good order, a forged signature, an
//! unparseable body, a throttled call and an order the ERP refuses; then ingest's `/metrics` is scraped, the
//! processor's and sink's registries are read, and every `orderbridge_…` name in
//! `helm/orderbridge/files/` must be among them.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use orderbridge_processor::Guarantee;
use orderbridge_sink::erp::sap_business_one::SapBusinessOne;
use prometheus::{Encoder, TextEncoder};
use support::pipeline::{counter, get_text, post_shopify, Env};
use support::sap_sim::{Fault, SapSim};
use support::{fixture, unique, wait_for};
use tokio_util::sync::CancellationToken;

/// The metric families in a Prometheus text exposition.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn exposition(registry: &prometheus::Registry) -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// The metric families an expression file names: `orderbridge_…`, with a histogram's
/// `_bucket`, `_sum` and `_count` series mapped to their family.
fn named_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("orderbridge_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(family.to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_the_alerts_name_is_exported() {
    let env = Env::mock();
    let shutdown = CancellationToken::new();
    let processor_registry = prometheus::Registry::new();
    let processor = env.spawn_processor_in(
        &unique("processor"),
        Guarantee::ExactlyOnce,
        &processor_registry,
        &shutdown,
    );
    let sim = SapSim::start(&["IPOD2008GREEN"]).await;
    // The first call is throttled, so a retry is counted too.
    sim.inject(Fault::Throttle(0));
    let sink_registry = prometheus::Registry::new();
    let erp = Arc::new(SapBusinessOne::new(sim.config(5_000)).unwrap());
    let sink = env.spawn_sink(&unique("sink"), erp, &sink_registry, &shutdown);
    let ingest = env.ingest();

    // A good order, one the ERP refuses (unknown item), an unparseable body, a forgery.
    for case in [
        "orders-create-basic",
        "orders-create-jpy-zero-decimal",
        "unparseable-body",
    ] {
        let (headers, body) = fixture("shopify", case);
        assert_eq!(
            post_shopify(&ingest, &headers, &body, None).await,
            StatusCode::OK
        );
    }
    let (headers, body) = fixture("shopify", "orders-create-basic");
    assert_eq!(
        post_shopify(&ingest, &headers, &body, Some("Zm9yZ2Vk")).await,
        StatusCode::UNAUTHORIZED
    );
    wait_for(
        "the order and the refusal",
        Duration::from_secs(60),
        || async {
            let refused = counter(&sink_registry, "orderbridge_sink_dead_letters_total", &[]);
            (sim.orders().len() == 1 && refused == 1).then_some(())
        },
    )
    .await;

    // Consumer lag comes from librdkafka's statistics, every 5 s.
    let exported = wait_for(
        "consumer lag in both stages",
        Duration::from_secs(30),
        || {
            let ingest = ingest.clone();
            let processor_registry = processor_registry.clone();
            let sink_registry = sink_registry.clone();
            async move {
                let mut exported = families(&get_text(&ingest, "/metrics").await);
                exported.extend(families(&exposition(&processor_registry)));
                exported.extend(families(&exposition(&sink_registry)));
                (exported.contains("orderbridge_processor_consumer_lag")
                    && exported.contains("orderbridge_sink_consumer_lag"))
                .then_some(exported)
            }
        },
    )
    .await;

    let files = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/orderbridge/files");
    let mut checked = 0;
    for entry in std::fs::read_dir(&files).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_some_and(|e| e == "json") {
            dashboard_queries_name_metrics(&path, &text);
        }
        let named = named_in(&text);
        let missing: Vec<_> = named.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{} names metrics nobody exports: {missing:?}\nexported: {exported:?}",
            path.display()
        );
        checked += named.len();
    }
    println!(
        "{checked} metric names in helm/orderbridge/files checked against {} exported families",
        exported.len()
    );
    assert!(checked >= 8, "the rules name {checked} metrics");

    shutdown.cancel();
    processor.await.unwrap();
    sink.await.unwrap();
}

/// A Grafana dashboard parses, and every panel queries at least one of our metrics.
fn dashboard_queries_name_metrics(path: &std::path::Path, text: &str) {
    let dashboard: serde_json::Value = serde_json::from_str(text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(!panels.is_empty(), "{} has no panels", path.display());
    for panel in panels {
        let exprs: Vec<&str> = panel["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["expr"].as_str())
            .collect();
        assert!(
            !exprs.is_empty() && exprs.iter().all(|e| !named_in(e).is_empty()),
            "panel {:?} queries none of our metrics: {exprs:?}",
            panel["title"]
        );
    }
}

#[test]
fn names_are_read_as_families() {
    let names = named_in(
        "histogram_quantile(0.99, rate(orderbridge_sink_receipt_to_erp_seconds_bucket[5m])) \
         and orderbridge_ingest_responses_total{code=~\"5..\"}",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "orderbridge_ingest_responses_total",
            "orderbridge_sink_receipt_to_erp_seconds"
        ]
    );
}
