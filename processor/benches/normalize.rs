//! Normalize + Avro-encode throughput per source, on one core: the processor's CPU work per
//! raw record, without Kafka. Each source runs its typical delivery (its golden fixture,
//! listed below), so a regression in one normalizer shows under its own name.
//!
//! ```sh
//! cargo bench -p orderbridge-processor --bench normalize
//! ```
//!
//! Criterion reports time per event; events per second per core is its `thrpt` line.

#![allow(missing_docs, clippy::unwrap_used)] // a benchmark binary; a panic is its failure report

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use orderbridge_processor::sources::mapped::Mappings;
use orderbridge_processor::sources::{normalize, RawRecord};
use orderbridge_schemas::{EmbeddedRegistry, OrderEventCodec, Source};

/// Each source's typical delivery: (source, fixture case).
const CASES: &[(Source, &str)] = &[
    (Source::Shopify, "orders-create-basic"),
    (Source::Sumeru, "order-attributed"),
    (Source::Zephyrcart, "order-created"),
    (Source::AmazonSns, "order-change-notification"),
    (Source::Ebay, "order-confirmation"),
    (Source::Etsy, "order-paid"),
    (Source::TiktokShop, "order-status-change"),
    (Source::Walmart, "po-created"),
    (Source::Flipkart, "shipment-created"),
    (Source::Easypost, "tracker-updated"),
    (Source::Ordermentum, "order-created"),
    (Source::StandardWebhooks, "bigcommerce-order-created"),
    (Source::Custom, "stripe-checkout-session-completed"),
];

struct Case {
    source: Source,
    account: String,
    event_type: String,
    event_id: String,
    body: Vec<u8>,
}

fn load(source: Source, case: &str) -> Case {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(source.as_str())
        .join(case);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let fields: BTreeMap<String, String> = match read("record.json") {
        Some(text) => serde_json::from_str(&text).unwrap(),
        None => {
            // Shopify cases carry their fields in the request headers, as ingest reads them.
            let headers: BTreeMap<String, String> =
                serde_json::from_str(&read("headers.json").unwrap()).unwrap();
            BTreeMap::from([
                ("account".into(), headers["X-Shopify-Shop-Domain"].clone()),
                ("event_type".into(), headers["X-Shopify-Topic"].clone()),
                ("event_id".into(), headers["X-Shopify-Webhook-Id"].clone()),
            ])
        }
    };
    Case {
        source,
        account: fields["account"].clone(),
        event_type: fields["event_type"].clone(),
        event_id: fields["event_id"].clone(),
        body: std::fs::read(dir.join("body.json")).unwrap(),
    }
}

fn mappings() -> Mappings {
    ["standard-webhooks", "custom"]
        .into_iter()
        .map(|source| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures")
                .join(source)
                .join("mappings.toml");
            let text = std::fs::read_to_string(path).unwrap();
            (source.to_owned(), toml::from_str(&text).unwrap())
        })
        .collect()
}

fn normalize_and_encode(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let codec =
        OrderEventCodec::new(Arc::new(EmbeddedRegistry::new()), "orders.canonical.v1").unwrap();
    // Registered once, as in the processor; encoding then never waits.
    runtime.block_on(codec.schema_id()).unwrap();
    let mappings = mappings();
    let mut group = c.benchmark_group("normalize+encode");
    group.throughput(Throughput::Elements(1));
    for (source, case) in CASES {
        let case = load(*source, case);
        let raw = RawRecord {
            source: case.source,
            account: &case.account,
            event_type: &case.event_type,
            event_id: &case.event_id,
            received_at: Utc.timestamp_millis_opt(1_745_350_202_000).unwrap(),
            origin: "webhook",
            topic: "orders.raw.v1",
            partition: 0,
            offset: 0,
            body: &case.body,
        };
        // Fail before measuring if the fixture no longer normalizes.
        normalize(&raw, &mappings).unwrap();
        group.bench_with_input(
            BenchmarkId::from_parameter(source.as_str()),
            &raw,
            |b, raw| {
                b.iter(|| {
                    let event = normalize(raw, &mappings).unwrap();
                    runtime.block_on(codec.encode(&event)).unwrap()
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, normalize_and_encode);
criterion_main!(benches);
