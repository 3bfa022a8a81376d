//! Provider API benchmark (`bench/providers.sh`): how close `orderbridge backfill` and
//! `orderbridge enrich` run to the rate a provider allows, and how often they are throttled.
//!
//! The provider is the integration tests' own simulator (`tests/support/providers/`, the
//! same code), which enforces its documented limit with a token bucket and answers 429 past
//! it. Each phase is measured from the provider's side: requests served between the first and
//! the last, against what its bucket allowed in that time (`burst + rate × seconds`), and the
//! 429s it sent. The baseline in the same run is a client without OrderBridge's bucket, that
//! only honours the provider's `Retry-After`: what a client that "backs off on 429" achieves.
//!
//! - `backfill`: Sumeru's `orders.list`, `--page-size` orders a page, through
//!   [`orderbridge_providers::backfill::run`] to the raw topic of librdkafka's mock cluster.
//! - `enrich`: Ordermentum `getOrder` for thin notifications waiting in the raw topic,
//!   through the enrich stage ([`orderbridge_providers::enrich::run`]).
//! - `shopify`: a backfill through Shopify's Admin GraphQL API, limited by query cost: points
//!   charged against what the shop's bucket allowed (`1,000 + restore rate × seconds`), and
//!   the `THROTTLED` answers. Its baseline is the usual hand-written loop: the same query,
//!   one second's pause after each `THROTTLED`, no cost accounting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeZone, Utc};
use clap::Parser;
use orderbridge_providers::backfill::{self, Request};
use orderbridge_providers::checkpoint::Checkpoints;
use orderbridge_providers::enrich::EnrichConfig;
use orderbridge_providers::metrics::EnrichMetrics;
use orderbridge_providers::ordermentum::OrdermentumApiConfig;
use orderbridge_providers::publish::{RawDocument, RawPublisher};
use orderbridge_providers::sumeru::SumeruApiConfig;
use orderbridge_providers::{ApiConfig, Apis, Document, PerAccount};
use orderbridge_runtime::{Health, KafkaSettings, Secret};
use orderbridge_schemas::{Origin, Source, Topics};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio_util::sync::CancellationToken;

mod sims;

use sims::core::Core;

#[derive(Parser)]
#[command(about = "How close backfill and enrich run to a provider's allowed rate")]
struct Args {
    /// The provider's limit, requests a second (the client is configured with the same).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// The provider's burst (and the client's).
    #[arg(long, default_value_t = 5)]
    burst: u32,
    /// Orders the backfill reads.
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Orders a page of the backfill's listing.
    #[arg(long, default_value_t = 10)]
    page_size: u32,
    /// Thin notifications the enrich stage completes.
    #[arg(long, default_value_t = 400)]
    notifications: usize,
    /// The Shopify shop's restore rate, points a second (its bucket holds 1,000).
    #[arg(long, default_value_t = 100.0)]
    points_per_sec: f64,
    /// Orders in the Shopify shop.
    #[arg(long, default_value_t = 600)]
    shopify_orders: usize,
    /// Skip the baseline rows (a client honouring only `Retry-After`).
    #[arg(long)]
    no_baseline: bool,
}

/// One measured phase.
struct Row {
    phase: &'static str,
    client: &'static str,
    served: u64,
    throttled: u64,
    seconds: f64,
    rate: f64,
    burst: u32,
}

impl Row {
    /// What the provider's bucket allowed while the phase ran.
    fn allowed(&self) -> f64 {
        f64::from(self.burst) + self.rate * self.seconds
    }

    fn print(&self) {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} % | {} |",
            self.phase,
            self.client,
            self.served,
            self.seconds,
            self.served as f64 / self.seconds.max(f64::EPSILON),
            self.rate,
            100.0 * self.served as f64 / self.allowed(),
            self.throttled
        );
    }
}

/// Watches a simulator's counts from its first served request to `until` served.
async fn watch(core: &Core, until: u64, deadline: Duration) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    loop {
        let served = Core::count(&core.counts.served);
        if served > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if served >= until {
            let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
            return Ok((seconds, Core::count(&core.counts.throttled)));
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "the provider served {served} of {until} requests in {deadline:?}"
        );
        // Sampling the provider's counters: the phase's clock, 2 ms resolution.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// librdkafka's mock cluster with the topics.
fn broker() -> anyhow::Result<(
    MockCluster<'static, DefaultProducerContext>,
    KafkaSettings,
    Topics,
)> {
    let mock = MockCluster::new(1).context("mock cluster")?;
    let topics = Topics::default();
    for topic in topics.all() {
        mock.create_topic(topic, 3, 1)
            .with_context(|| format!("topic {topic}"))?;
    }
    let kafka = KafkaSettings::new(mock.bootstrap_servers());
    Ok((mock, kafka, topics))
}

/// A progress report that says nothing: the benchmark prints its table.
struct Quiet;

impl orderbridge_providers::progress::Report for Quiet {
    fn begin(&mut self, _: Option<u64>, _: u64) {}
    fn advance(&mut self, _: u64, _: Option<u64>) {}
    fn waiting(&mut self, _: &str) {}
    fn end(&mut self, _: &str) {}
}

/// Backfills `request` through `api` into the raw topic, without a progress display; the
/// orders published.
async fn quiet_backfill(
    api: &dyn orderbridge_providers::OrderApi,
    kafka: &KafkaSettings,
    topics: &Topics,
    request: &Request,
) -> anyhow::Result<u64> {
    let publisher = RawPublisher::new(kafka, &topics.raw)?;
    let checkpoints = Checkpoints::new(kafka, &topics.checkpoints)?;
    let summary = backfill::run(
        api,
        &publisher,
        &checkpoints,
        request,
        &mut Quiet,
        &CancellationToken::new(),
    )
    .await?;
    Ok(summary.published)
}

/// The client's own limit: the provider's, or (baseline) none worth the name.
fn client_rate(args: &Args, bucket: bool) -> (Option<f64>, Option<u32>) {
    if bucket {
        (Some(args.rate), Some(args.burst))
    } else {
        (Some(args.rate * 1000.0), Some(args.burst * 1000))
    }
}

async fn backfill_phase(args: &Args, bucket: bool) -> anyhow::Result<Row> {
    use sims::sumeru::{SumeruSim, API_KEY};
    let (_mock, kafka, topics) = broker()?;
    let sim = SumeruSim::start(args.rate, args.burst).await;
    let from = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .context("date")?;
    sim.seed(1, args.orders, from, Duration::from_secs(60));
    let (rate_per_sec, burst) = client_rate(args, bucket);
    let config = ApiConfig {
        sumeru: Some(PerAccount {
            default: Some(SumeruApiConfig {
                base_url: sim.base_url(),
                api_key: Secret::new(API_KEY),
                rate_per_sec,
                burst,
                page_size: args.page_size,
            }),
            accounts: Default::default(),
        }),
        ..ApiConfig::default()
    };
    let apis = Apis::new(config, None)?;
    let api = apis
        .order_api(Source::Sumeru, "-")?
        .context("the Sumeru client")?;
    let request = Request {
        source: Source::Sumeru,
        account: "-".into(),
        from,
        to: None,
        restart: false,
    };
    let pages = args.orders.div_ceil(args.page_size as usize) as u64;
    let run = quiet_backfill(api.as_ref(), &kafka, &topics, &request);
    let deadline = Duration::from_secs_f64(600.0 + 4.0 * pages as f64 / args.rate);
    let (summary, watched) = tokio::join!(run, watch(&sim.core, pages, deadline));
    let published = summary?;
    let (seconds, throttled) = watched?;
    anyhow::ensure!(
        published == args.orders as u64,
        "published {published} of {} orders",
        args.orders
    );
    Ok(Row {
        phase: "backfill (pages)",
        client: if bucket {
            "OrderBridge"
        } else {
            "no client bucket"
        },
        served: pages,
        throttled,
        seconds,
        rate: args.rate,
        burst: args.burst,
    })
}

async fn enrich_phase(args: &Args, bucket: bool) -> anyhow::Result<Row> {
    use sims::ordermentum::{self, OrdermentumSim, API_KEY, SUPPLIER_ID};
    let (_mock, kafka, topics) = broker()?;
    let sim = OrdermentumSim::start(args.rate, args.burst).await;
    let publisher = RawPublisher::new(&kafka, &topics.raw)?;
    let now = Utc::now();
    // The thin notifications, as ingest writes them, waiting when the stage starts (a
    // backlog after an outage, a sale's first minutes).
    for n in 0..args.notifications {
        let id = format!("5e0b{n:04x}-8835-4cf6-a95c-e42bb16d0ca9");
        sim.put(ordermentum::order(&id, u32::try_from(n)?, now));
        let body = serde_json::json!({
            "event": "order_created",
            "timestamp": now.to_rfc3339(),
            "data": {"id": id, "createdAt": now.to_rfc3339(), "updatedAt": now.to_rfc3339(), "total": 150.25},
        });
        let document = Document {
            order_id: id.clone(),
            kind: "order_created".into(),
            body: serde_json::to_vec(&body)?,
            updated_at: None,
        };
        publisher
            .publish(&RawDocument {
                source: Source::Ordermentum,
                account: "-",
                document: &document,
                origin: Origin::Webhook,
                event_id: &format!("evt-{n}"),
                content_type: orderbridge_providers::publish::JSON,
            })
            .await?;
    }
    let (rate_per_sec, burst) = client_rate(args, bucket);
    let config = ApiConfig {
        ordermentum: Some(PerAccount {
            default: Some(OrdermentumApiConfig {
                base_url: sim.base_url(),
                api_key: Secret::new(API_KEY),
                supplier_id: Some(SUPPLIER_ID.into()),
                rate_per_sec,
                burst,
            }),
            accounts: Default::default(),
        }),
        ..ApiConfig::default()
    };
    let registry = prometheus::Registry::new();
    let metrics = EnrichMetrics::register(&registry)?;
    let apis = Arc::new(Apis::new(config, Some(metrics.api.clone()))?);
    let enrich = EnrichConfig {
        group_id: "bench-enrich".into(),
        retry_group_id: "bench-enrich-retry".into(),
        fetch_wait_max_ms: 50,
        ..EnrichConfig::default()
    };
    let shutdown = CancellationToken::new();
    let stage = {
        let (kafka, topics, stop) = (kafka.clone(), topics.clone(), shutdown.clone());
        tokio::spawn(async move {
            orderbridge_providers::enrich::run(
                &enrich,
                &kafka,
                &topics,
                apis,
                metrics,
                Health::new(),
                stop,
            )
            .await
        })
    };
    let wanted = args.notifications as u64;
    let deadline = Duration::from_secs_f64(600.0 + 4.0 * wanted as f64 / args.rate);
    let watched = watch(&sim.core, wanted, deadline).await;
    shutdown.cancel();
    stage.await??;
    let (seconds, throttled) = watched?;
    Ok(Row {
        phase: "enrich (getOrder)",
        client: if bucket {
            "OrderBridge"
        } else {
            "no client bucket"
        },
        served: wanted,
        throttled,
        seconds,
        rate: args.rate,
        burst: args.burst,
    })
}

/// The Shopify shop's bucket.
const SHOPIFY_BUCKET: u32 = 1_000;

async fn shopify_phase(args: &Args, ours: bool) -> anyhow::Result<Row> {
    use orderbridge_providers::shopify::ShopifyApiConfig;
    use sims::shopify::{ShopifySim, ACCESS_TOKEN, SHOP};
    let (_mock, kafka, topics) = broker()?;
    let sim = ShopifySim::start(args.points_per_sec, f64::from(SHOPIFY_BUCKET)).await;
    let from = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .context("date")?;
    sim.seed(1, args.shopify_orders, from, Duration::from_secs(60));
    let started = Instant::now();
    let published = if ours {
        let config = ApiConfig {
            shopify: Some(PerAccount {
                default: Some(ShopifyApiConfig {
                    shop: None,
                    base_url: Some(sim.base_url()),
                    api_version: "2025-10".into(),
                    access_token: Secret::new(ACCESS_TOKEN),
                    points_per_sec: None,
                    bucket_points: None,
                    orders_per_page: Some(12),
                    lines_per_page: Some(10),
                }),
                accounts: Default::default(),
            }),
            ..ApiConfig::default()
        };
        let apis = Apis::new(config, None)?;
        let api = apis
            .order_api(Source::Shopify, SHOP)?
            .context("the Shopify client")?;
        let request = Request {
            source: Source::Shopify,
            account: SHOP.into(),
            from,
            to: None,
            restart: false,
        };
        quiet_backfill(api.as_ref(), &kafka, &topics, &request).await?
    } else {
        naive_shopify_backfill(&sim.base_url(), ACCESS_TOKEN).await?
    };
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        published == args.shopify_orders as u64,
        "read {published} of {} orders",
        args.shopify_orders
    );
    Ok(Row {
        phase: "shopify backfill (points)",
        client: if ours {
            "OrderBridge"
        } else {
            "pause 1 s on THROTTLED"
        },
        served: ShopifySim::count(&sim.spent.points),
        throttled: ShopifySim::count(&sim.spent.throttled),
        seconds,
        rate: args.points_per_sec,
        burst: SHOPIFY_BUCKET,
    })
}

/// The baseline: pages of 12 orders with 10 lines each, as fast as answers come, one
/// second's pause after a `THROTTLED`. Returns the orders read.
async fn naive_shopify_backfill(base: &str, token: &str) -> anyhow::Result<u64> {
    let http = reqwest::Client::new();
    let url = format!("{base}/admin/api/2025-10/graphql.json");
    let query = "query OrderBridgeOrders($first: Int!, $after: String, $query: String, \
                 $sortKey: OrderSortKeys, $linesFirst: Int!) { orders(first: $first, \
                 after: $after, query: $query, sortKey: $sortKey) { nodes { id } \
                 pageInfo { hasNextPage endCursor } } }";
    let mut after: Option<String> = None;
    let mut read = 0u64;
    loop {
        let body = serde_json::json!({"query": query, "variables": {
            "first": 12, "after": after, "query": "created_at:>='2026-11-01T00:00:00Z'",
            "sortKey": "CREATED_AT", "linesFirst": 10,
        }});
        let answer: serde_json::Value = http
            .post(&url)
            .header("x-shopify-access-token", token)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        if answer["errors"][0]["extensions"]["code"] == "THROTTLED" {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let orders = &answer["data"]["orders"];
        read += orders["nodes"].as_array().map_or(0, Vec::len) as u64;
        if orders["pageInfo"]["hasNextPage"] != true {
            return Ok(read);
        }
        after = orders["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    println!(
        "provider limit {} requests/s, burst {}; backfill of {} orders ({} a page), {} thin notifications completed",
        args.rate, args.burst, args.orders, args.page_size, args.notifications
    );
    println!();
    println!("| phase | client | requests served | seconds | requests/s | allowed/s | of allowed | 429s |");
    println!("|---|---|---|---|---|---|---|---|");
    let clients: &[bool] = if args.no_baseline {
        &[true]
    } else {
        &[true, false]
    };
    for &bucket in clients {
        backfill_phase(&args, bucket).await?.print();
    }
    for &bucket in clients {
        enrich_phase(&args, bucket).await?.print();
    }
    println!();
    println!(
        "Shopify: {} orders, restore {} points/s, bucket {SHOPIFY_BUCKET}",
        args.shopify_orders, args.points_per_sec
    );
    println!();
    println!("| phase | client | points charged | seconds | points/s | restored/s | of allowed | THROTTLED |");
    println!("|---|---|---|---|---|---|---|---|");
    for &ours in clients {
        shopify_phase(&args, ours).await?.print();
    }
    Ok(())
}
