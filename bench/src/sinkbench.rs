//! The sink benchmark: orders per second from the canonical topic into an ERP that takes
//! `--latency-ms` to answer each call, for the delivery engine at several `max_in_flight`
//! settings and for a sequential consumer (one record at a time: decode, upsert, store the
//! offset), with p50/p99 latency from canonical record to ERP acknowledgement.
//!
//! Everything runs in this process: librdkafka's mock cluster (12 partitions), and an ERP
//! that keeps the generic HTTP adapter's contract (`PUT /orders/{reference}`, 201 for a new
//! order, 200 for a newer version, 409 for an older one) and answers after the latency. The
//! sink code under test is the real one (`Delivery`, `HttpErp`), in release mode.
//!
//! Each setting runs twice on fresh topics:
//! 1. Throughput: a backlog of orders is published first, then drained; orders/s is the
//!    number of orders over the time from the first acknowledgement to the last.
//! 2. Latency: orders are published at half that rate for `--seconds`; each one's latency is
//!    its acknowledgement time minus its publication time (`lineage.received_at`).
//!
//! It prints a Markdown table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clap::Parser;
use orderbridge_runtime::{Health, KafkaSettings};
use orderbridge_schemas::{EmbeddedRegistry, OrderEvent, OrderEventCodec, Topics};
use orderbridge_sink::erp::http::{HttpConfig, HttpErp};
use orderbridge_sink::{Delivery, ErpClient, ErpError, SinkConfig, SinkMetrics};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 12;

#[derive(Parser)]
struct Cli {
    /// How long the ERP takes to answer each call.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Seconds of the latency phase, and roughly of each throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// `max_in_flight` settings of the engine to run.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    in_flight: Vec<usize>,
}

/// What the ERP saw.
#[derive(Default)]
struct Seen {
    /// Reference → version held.
    orders: HashMap<String, i64>,
    /// Publication-to-acknowledgement latencies, seconds.
    latencies: Vec<f64>,
    first: Option<Instant>,
    last: Option<Instant>,
}

#[derive(Clone)]
struct Erp {
    latency: Duration,
    seen: Arc<Mutex<Seen>>,
}

async fn receive(
    State(erp): State<Erp>,
    Path(reference): Path<String>,
    Json(event): Json<serde_json::Value>,
) -> StatusCode {
    tokio::time::sleep(erp.latency).await;
    let version = event["version"].as_i64().unwrap_or_default();
    let published = event["lineage"]["received_at"]
        .as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok());
    let mut seen = erp
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    seen.first.get_or_insert(now);
    seen.last = Some(now);
    if let Some(published) = published {
        let latency = (Utc::now() - published).to_std().unwrap_or_default();
        seen.latencies.push(latency.as_secs_f64());
    }
    match seen.orders.get(&reference).copied() {
        None => {
            seen.orders.insert(reference, version);
            StatusCode::CREATED
        }
        Some(held) if held < version => {
            seen.orders.insert(reference, version);
            StatusCode::OK
        }
        Some(_) => StatusCode::CONFLICT,
    }
}

async fn start_erp(latency: Duration) -> anyhow::Result<(SocketAddr, Arc<Mutex<Seen>>)> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/orders/{reference}", put(receive))
        .with_state(Erp {
            latency,
            seen: Arc::clone(&seen),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, seen))
}

/// How the canonical topic is consumed.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// One record at a time: decode, upsert, store the offset.
    Sequential,
    /// The delivery engine with this `max_in_flight`.
    Engine(usize),
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::Sequential => "sequential consumer".into(),
            Mode::Engine(n) => format!("engine, {n} in flight"),
        }
    }
}

/// One fresh broker, topics, codec and ERP.
struct Stage {
    _mock: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    kafka: KafkaSettings,
    topics: Topics,
    codec: Arc<OrderEventCodec>,
    erp: Arc<dyn ErpClient>,
    seen: Arc<Mutex<Seen>>,
    producer: FutureProducer,
}

impl Stage {
    async fn new(latency: Duration, run: &str) -> anyhow::Result<Self> {
        let mock = MockCluster::new(1)?;
        let topics = Topics::with_suffix(run);
        for topic in topics.all() {
            mock.create_topic(topic, PARTITIONS, 1)?;
        }
        let kafka = KafkaSettings::new(mock.bootstrap_servers());
        let codec = Arc::new(OrderEventCodec::new(
            Arc::new(EmbeddedRegistry::new()),
            &topics.canonical,
        )?);
        let (addr, seen) = start_erp(latency).await?;
        let erp: Arc<dyn ErpClient> = Arc::new(HttpErp::new(HttpConfig {
            url: format!("http://{addr}/orders/{{reference}}"),
            bearer_token: None,
            request_timeout_ms: 30_000,
        })?);
        let producer = kafka
            .producer_config()
            .set("linger.ms", "2")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .context("producer")?;
        Ok(Self {
            _mock: mock,
            kafka,
            topics,
            codec,
            erp,
            seen,
            producer,
        })
    }

    /// Enqueues order `n`, stamped with the time of publication; the returned future
    /// resolves when the broker acknowledged it.
    async fn publish(
        &self,
        template: &OrderEvent,
        n: u64,
    ) -> anyhow::Result<rdkafka::producer::DeliveryFuture> {
        let mut event = template.clone();
        let id = 1_000_000 + n;
        event.source_order_id = id.to_string();
        event.order_key = format!("shopify:bench.myshopify.com:{id}");
        event.lineage.received_at = Utc::now();
        let payload = self.codec.encode(&event).await?;
        let record = FutureRecord::to(&self.topics.canonical)
            .key(&event.order_key)
            .payload(&payload);
        self.producer
            .send_result(record)
            .map_err(|(err, _)| anyhow::anyhow!("enqueue: {err}"))
    }

    /// Publishes orders `from..to` and waits for the broker's acknowledgements.
    async fn publish_all(&self, template: &OrderEvent, from: u64, to: u64) -> anyhow::Result<()> {
        let mut pending = Vec::new();
        for n in from..to {
            pending.push(self.publish(template, n).await?);
        }
        for delivery in pending {
            delivery
                .await
                .context("delivery cancelled")?
                .map_err(|(err, _)| err)?;
        }
        Ok(())
    }

    fn acknowledged(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .orders
            .len()
    }

    /// Starts consuming in `mode` until `shutdown`; the handle ends when the consumer did.
    fn start(
        &self,
        mode: Mode,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let group = format!("bench-{}", self.topics.canonical);
        match mode {
            Mode::Engine(n) => {
                let config = SinkConfig {
                    group_id: group,
                    max_in_flight: Some(n),
                    fetch_wait_max_ms: 10,
                    ..SinkConfig::default()
                };
                let metrics = SinkMetrics::register(&prometheus::Registry::new())?;
                let delivery = Delivery::new(
                    &self.kafka,
                    &self.topics,
                    &config,
                    Arc::clone(&self.codec),
                    Arc::clone(&self.erp),
                    metrics,
                    Health::new(),
                )?;
                let stop = shutdown.clone();
                Ok(tokio::spawn(async move {
                    if let Err(err) = delivery.run(stop).await {
                        eprintln!("sink failed: {err}");
                    }
                }))
            }
            Mode::Sequential => {
                let consumer: StreamConsumer = self
                    .kafka
                    .client_config()
                    .set("group.id", group)
                    .set("auto.offset.reset", "earliest")
                    .set("enable.auto.offset.store", "false")
                    .set("fetch.wait.max.ms", "10")
                    .create()?;
                consumer.subscribe(&[&self.topics.canonical])?;
                let codec = Arc::clone(&self.codec);
                let erp = Arc::clone(&self.erp);
                let stop = shutdown.clone();
                Ok(tokio::spawn(async move {
                    sequential(consumer, codec, erp, stop).await;
                }))
            }
        }
    }
}

/// The sequential consumer: what a sink without the engine does.
async fn sequential(
    consumer: StreamConsumer,
    codec: Arc<OrderEventCodec>,
    erp: Arc<dyn ErpClient>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            message = consumer.recv() => match message {
                Ok(message) => message,
                Err(_) => continue,
            },
        };
        let Ok(event) = codec.decode(message.payload().unwrap_or_default()).await else {
            continue;
        };
        while let Err(ErpError::Transient { .. }) = erp.upsert(&event).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut offsets = TopicPartitionList::new();
        if offsets
            .add_partition_offset(
                message.topic(),
                message.partition(),
                Offset::Offset(message.offset() + 1),
            )
            .is_ok()
        {
            let _ = consumer.store_offsets(&offsets);
        }
    }
}

/// Waits until the ERP acknowledged `count` orders, or `limit` passed.
async fn until_acknowledged(stage: &Stage, count: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut report = Instant::now() + Duration::from_secs(10);
    while stage.acknowledged() < count {
        if Instant::now() > report {
            eprintln!("    {} of {count} acknowledged", stage.acknowledged());
            report += Duration::from_secs(10);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {count} orders acknowledged in {limit:?}",
            stage.acknowledged()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Row {
    mode: Mode,
    orders_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    measured: usize,
}

async fn run(mode: Mode, cli: &Cli, template: &OrderEvent, run: usize) -> anyhow::Result<Row> {
    let latency = Duration::from_millis(cli.latency_ms);
    let calls_per_second = match mode {
        Mode::Sequential => 1.0,
        Mode::Engine(n) => n as f64,
    } / latency.as_secs_f64().max(0.001);
    let backlog = ((calls_per_second * cli.seconds as f64) as u64).clamp(100, 30_000);

    // 1. Throughput: drain a backlog.
    let stage = Stage::new(latency, &format!("bench{run}a")).await?;
    stage.publish_all(template, 0, backlog).await?;
    eprintln!("    {backlog} orders published; draining");
    let shutdown = CancellationToken::new();
    let consumer = stage.start(mode, &shutdown)?;
    until_acknowledged(
        &stage,
        backlog as usize,
        Duration::from_secs(cli.seconds * 20),
    )
    .await?;
    shutdown.cancel();
    consumer.await?; // before the broker goes away with the stage
    let orders_per_second = {
        let seen = stage
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let span = match (seen.first, seen.last) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        (backlog - 1) as f64 / span.max(f64::EPSILON)
    };

    // 2. Latency: a steady load at half that rate.
    let stage = Stage::new(latency, &format!("bench{run}b")).await?;
    let shutdown = CancellationToken::new();
    let consumer = stage.start(mode, &shutdown)?;
    // Warm up: the group joins and the first order goes through.
    stage.publish_all(template, 0, 1).await?;
    until_acknowledged(&stage, 1, Duration::from_secs(60)).await?;
    stage
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .latencies
        .clear();
    let rate = (orders_per_second / 2.0).max(1.0);
    let total = ((rate * cli.seconds as f64) as u64).max(10);
    let interval = Duration::from_secs_f64(1.0 / rate);
    eprintln!("    {total} orders at {rate:.0}/s");
    let started = tokio::time::Instant::now();
    let mut pending = Vec::new();
    for n in 1..=total {
        tokio::time::sleep_until(started + interval.mul_f64(n as f64)).await;
        pending.push(stage.publish(template, n).await?);
    }
    for delivery in pending {
        delivery
            .await
            .context("delivery cancelled")?
            .map_err(|(err, _)| err)?;
    }
    until_acknowledged(
        &stage,
        total as usize + 1,
        Duration::from_secs(cli.seconds * 20),
    )
    .await?;
    shutdown.cancel();
    consumer.await?;
    let mut latencies = stage
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .latencies
        .clone();
    latencies.sort_by(f64::total_cmp);
    Ok(Row {
        mode,
        orders_per_second,
        p50_ms: percentile(&latencies, 50.0) * 1000.0,
        p99_ms: percentile(&latencies, 99.0) * 1000.0,
        measured: latencies.len(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let template: OrderEvent = serde_json::from_str(include_str!(
        "../../tests/fixtures/shopify/orders-create-basic/expected.json"
    ))?;
    let mut modes = vec![Mode::Sequential];
    modes.extend(cli.in_flight.iter().map(|n| Mode::Engine(*n)));
    let mut rows = Vec::new();
    for (n, mode) in modes.into_iter().enumerate() {
        eprintln!("==> {}", mode.label());
        let row = run(mode, &cli, &template, n).await?;
        eprintln!(
            "    {:.1} orders/s, p50 {:.1} ms, p99 {:.1} ms",
            row.orders_per_second, row.p50_ms, row.p99_ms
        );
        rows.push(row);
    }
    let sequential = rows.first().map_or(1.0, |r| r.orders_per_second);
    println!(
        "\nERP latency {} ms per call; {} partitions; latency at half each setting's throughput.\n",
        cli.latency_ms, PARTITIONS
    );
    println!("| consumer | orders/s | × sequential | p50 ms | p99 ms | orders timed |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            row.mode.label(),
            row.orders_per_second,
            row.orders_per_second / sequential,
            row.p50_ms,
            row.p99_ms,
            row.measured
        );
    }
    Ok(())
}
