//! What the status topic costs the pipeline: orders per second from webhook to ERP with
//! `status_updates` on and off, in one run, alternating (off, on, off, on, …) so that drift
//! of the machine falls on both.
//!
//! Everything runs in this release-mode process on librdkafka's mock cluster (6 partitions):
//! ingest's router (called without a socket, `--concurrency` requests at a time), the
//! processor (exactly-once) and the sink writing SQLite staging tables, the real code of each.
//! Each round posts `--orders` signed Shopify webhooks (unique orders) on fresh topics and
//! times from the first post to the sink's last "created"; it also counts the status records
//! the stages wrote and dropped.
//!
//! It prints a Markdown table and the on/off ratio of the medians.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::Request;
use clap::Parser;
use orderbridge_ingest::config::{Accounts, HmacConfig, NamedSecret};
use orderbridge_ingest::IngestConfig;
use orderbridge_processor::{Guarantee, Pipeline, ProcessorConfig, ProcessorMetrics};
use orderbridge_runtime::{Health, KafkaSettings, Secret};
use orderbridge_schemas::{EmbeddedRegistry, OrderEventCodec, Topics};
use orderbridge_sink::erp::sql::{SqlConfig, SqlErp};
use orderbridge_sink::{Delivery, SinkConfig, SinkMetrics};
use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const PARTITIONS: i32 = 6;
const SECRET: &str = "statusbench-secret";
const BODY: &str = include_str!("../../tests/fixtures/shopify/orders-create-basic/body.json");

#[derive(Parser)]
struct Cli {
    /// Orders per round.
    #[arg(long, default_value_t = 3000)]
    orders: usize,
    /// Rounds of each setting (they alternate).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Webhooks posted at a time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// One round's outcome.
struct Round {
    status: bool,
    seconds: f64,
    written: u64,
    dropped: u64,
}

fn counter(registry: &prometheus::Registry, name: &str, label: (&str, &str)) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric().iter())
        .filter(|metric| {
            metric
                .get_label()
                .iter()
                .any(|l| l.name() == label.0 && l.value() == label.1)
        })
        .map(|metric| metric.get_counter().get_value() as u64)
        .sum()
}

async fn round(cli: &Cli, status: bool, n: usize) -> anyhow::Result<Round> {
    let mock = MockCluster::new(1)?;
    let topics = Topics::with_suffix(&format!("statusbench-{n}"));
    for topic in topics.all() {
        mock.create_topic(topic, PARTITIONS, 1)?;
    }
    let kafka = KafkaSettings::new(mock.bootstrap_servers());
    let codec = Arc::new(OrderEventCodec::new(
        Arc::new(EmbeddedRegistry::new()),
        &topics.canonical,
    )?);
    let registry = prometheus::Registry::new();
    let shutdown = CancellationToken::new();

    let mut ingest = IngestConfig {
        status_updates: status,
        ..IngestConfig::default()
    };
    ingest.sources.shopify = Some(Accounts::single(HmacConfig {
        secrets: vec![NamedSecret {
            id: "bench".into(),
            secret: Secret::new(SECRET),
        }],
        ..HmacConfig::default()
    }));
    let state = orderbridge_ingest::IngestState::from_config(&ingest, &kafka, &topics, &registry)?;
    let router = orderbridge_ingest::router(state, registry.clone(), Health::new());

    let processor = Pipeline::new(
        &kafka,
        &topics,
        &ProcessorConfig {
            guarantee: Guarantee::ExactlyOnce,
            group_id: format!("processor-{n}"),
            status_updates: status,
            ..ProcessorConfig::default()
        },
        Arc::clone(&codec),
        ProcessorMetrics::register(&registry)?,
        Health::new(),
    )?;
    let stop = shutdown.clone();
    let processor = tokio::spawn(async move { processor.run(stop).await });

    let db = std::env::temp_dir().join(format!(
        "orderbridge-statusbench-{}-{n}.db",
        std::process::id()
    ));
    let erp = SqlErp::connect(&SqlConfig {
        url: format!("sqlite://{}", db.display()),
    })
    .await?;
    let sink = Delivery::new(
        &kafka,
        &topics,
        &SinkConfig {
            group_id: format!("sink-{n}"),
            status_updates: status,
            ..SinkConfig::default()
        },
        Arc::clone(&codec),
        Arc::new(erp),
        SinkMetrics::register(&registry)?,
        Health::new(),
    )?;
    let stop = shutdown.clone();
    let sink = tokio::spawn(async move { sink.run(stop).await });

    let template: serde_json::Value = serde_json::from_str(BODY)?;
    let started = Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..cli.orders {
        if posts.len() >= cli.concurrency {
            if let Some(done) = posts.join_next().await {
                done??;
            }
        }
        let mut order = template.clone();
        order["id"] = (900_000_000 + i).into();
        let body = serde_json::to_vec(&order)?;
        let request = Request::post("/webhooks/shopify")
            .header("content-type", "application/json")
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Shop-Domain", "bench.myshopify.com")
            .header("X-Shopify-Webhook-Id", format!("statusbench-{n}-{i}"))
            .header(
                "X-Shopify-Hmac-Sha256",
                orderbridge_ingest::verify::shopify::sign(SECRET, &body),
            )
            .body(Body::from(body))?;
        let router = router.clone();
        posts.spawn(async move {
            let response = router.oneshot(request).await?;
            anyhow::ensure!(
                response.status().is_success(),
                "ingest answered {}",
                response.status()
            );
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = posts.join_next().await {
        done??;
    }
    let total = u64::try_from(cli.orders)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while counter(
        &registry,
        "orderbridge_sink_upserts_total",
        ("outcome", "created"),
    ) < total
    {
        anyhow::ensure!(Instant::now() < deadline, "the orders did not all arrive");
        tokio::time::sleep(Duration::from_millis(5)).await; // polling, bounded by the deadline
    }
    let seconds = started.elapsed().as_secs_f64();
    // Status records still queued go out before they are counted.
    tokio::time::sleep(Duration::from_millis(300)).await; // the writers' linger is 50 ms
    let status_records = |result: &str| -> u64 {
        ["ingest", "processor", "sink"]
            .iter()
            .map(|stage| {
                let name = format!("orderbridge_{stage}_status_records_total");
                counter(&registry, &name, ("result", result))
            })
            .sum()
    };
    let (written, dropped) = (status_records("written"), status_records("dropped"));
    shutdown.cancel();
    processor.await?.context("processor")?;
    sink.await?.context("sink")?;
    let _ = std::fs::remove_file(&db);
    Ok(Round {
        status,
        seconds,
        written,
        dropped,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut rounds = Vec::new();
    for n in 0..cli.rounds * 2 {
        let status = n % 2 == 1;
        let result = round(&cli, status, n).await?;
        eprintln!(
            "round {n}: status {}: {:.0} orders/s",
            if status { "on" } else { "off" },
            cli.orders as f64 / result.seconds
        );
        rounds.push(result);
    }
    println!(
        "| status updates | round | orders | seconds | orders/s | status records written | dropped |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (n, r) in rounds.iter().enumerate() {
        println!(
            "| {} | {n} | {} | {:.2} | {:.0} | {} | {} |",
            if r.status { "on" } else { "off" },
            cli.orders,
            r.seconds,
            cli.orders as f64 / r.seconds,
            r.written,
            r.dropped
        );
    }
    let rate = |on: bool| {
        median(
            rounds
                .iter()
                .filter(|r| r.status == on)
                .map(|r| cli.orders as f64 / r.seconds)
                .collect(),
        )
    };
    let (off, on) = (rate(false), rate(true));
    println!();
    println!(
        "median: off {off:.0} orders/s, on {on:.0} orders/s; on/off = {:.3}",
        on / off
    );
    Ok(())
}
