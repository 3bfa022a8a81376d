//! The benchmark's load generator: signed Shopify `orders/create` webhooks, as fast as
//! `--concurrency` connections allow, for `--seconds`, against any receiver at `--url`.
//! Each request carries a new order id (so keys spread over partitions) and is signed with
//! `--secret` the way Shopify signs. It prints one `RESULT` line: requests, errors,
//! requests per second, ack latency percentiles, and every 200 received (warm-up included,
//! to compare with the records on the topic).
//!
//! `loadgen topics --brokers … --topic …` creates the topics a run needs first;
//! `loadgen count --consume …` reads a topic back and counts its records and distinct keys;
//! `loadgen e2e …` measures webhook to ERP at fixed rates (see `e2e.rs`, `bench/e2e.sh`).

mod e2e;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use orderbridge_runtime::{ensure_topics, KafkaSettings, TopicLayout};
use orderbridge_schemas::Topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the topics (6 partitions, replication 1) if missing.
    Topics {
        #[arg(long)]
        brokers: String,
        /// Raw topics to create.
        #[arg(long, required = true)]
        topic: Vec<String>,
    },
    /// Print how many records `--topic` holds: the sum of its partitions' watermarks, or with
    /// `--consume` the records read back (tansu's watermarks undercount under load).
    Count {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
        /// Read every record instead of trusting the watermarks, and count distinct keys.
        #[arg(long)]
        consume: bool,
    },
    /// Send unique signed orders at fixed rates and time each from its scheduled send to
    /// its row in the ERP's staging table.
    E2e(e2e::E2eArgs),
    /// Send signed webhooks and report throughput and latency.
    Run {
        /// Receiver URL, e.g. http://127.0.0.1:8080/webhooks/shopify.
        #[arg(long)]
        url: String,
        /// Shopify app secret the receiver verifies with.
        #[arg(long)]
        secret: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Measured seconds (after warm-up).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Warm-up seconds, not measured.
        #[arg(long, default_value_t = 3)]
        warmup: u64,
        /// Name printed with the result.
        #[arg(long)]
        label: String,
    },
}

const ORDER: &str = include_str!("../../tests/fixtures/shopify/orders-create-basic/body.json");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Topics { brokers, topic } => {
            let kafka = KafkaSettings::new(brokers);
            let layout = TopicLayout {
                partitions: 6,
                replication: 1,
                ..TopicLayout::default()
            };
            for name in topic {
                // ensure_topics creates a whole set; give each raw topic its own set.
                let topics = Topics {
                    raw: name.clone(),
                    canonical: format!("{name}.canonical"),
                    attribution: format!("{name}.attribution"),
                    dlq: format!("{name}.dlq"),
                    processor_state: format!("{name}.processor-state"),
                    enrich_retry: format!("{name}.enrich-retry"),
                    checkpoints: format!("{name}.checkpoints"),
                    status: format!("{name}.status"),
                    audit: format!("{name}.audit"),
                };
                ensure_topics(&kafka, &topics, layout)
                    .await
                    .with_context(|| format!("creating {name}"))?;
            }
            Ok(())
        }
        Command::Count {
            brokers,
            topic,
            consume: true,
        } => {
            let consumer: BaseConsumer = KafkaSettings::new(brokers)
                .client_config()
                .set("group.id", "orderbridge-bench-consume")
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "true")
                .create()?;
            consumer.subscribe(&[&topic])?;
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let partitions = metadata
                .topics()
                .iter()
                .map(|t| t.partitions().len())
                .sum::<usize>();
            let (mut records, mut eof) = (0u64, std::collections::HashSet::new());
            let mut keys = std::collections::HashSet::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while eof.len() < partitions && Instant::now() < deadline {
                match consumer.poll(Duration::from_secs(1)) {
                    Some(Ok(message)) => {
                        records += 1;
                        keys.insert(message.key().map(<[u8]>::to_vec));
                    }
                    Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                        eof.insert(p);
                    }
                    Some(Err(err)) => anyhow::bail!("consuming: {err}"),
                    None => {}
                }
            }
            println!("{records} records, {} distinct keys", keys.len());
            Ok(())
        }
        Command::Count { brokers, topic, .. } => {
            let consumer: BaseConsumer = KafkaSettings::new(brokers)
                .client_config()
                .set("group.id", "orderbridge-bench-count")
                .create()?;
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let mut total = 0;
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let (low, high) =
                    consumer.fetch_watermarks(&topic, partition.id(), Duration::from_secs(10))?;
                total += high - low;
            }
            println!("{total}");
            Ok(())
        }
        Command::E2e(args) => e2e::run(args).await,
        Command::Run {
            url,
            secret,
            concurrency,
            seconds,
            warmup,
            label,
        } => run(&url, &secret, concurrency, seconds, warmup, &label).await,
    }
}

async fn run(
    url: &str,
    secret: &str,
    concurrency: usize,
    seconds: u64,
    warmup: u64,
    label: &str,
) -> anyhow::Result<()> {
    let template: serde_json::Value = serde_json::from_str(ORDER)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let next_id = Arc::new(AtomicU64::new(1_000_000_000));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(warmup);
    let until = measure_from + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, secret, template, next_id) = (
            client.clone(),
            url.to_owned(),
            secret.to_owned(),
            template.clone(),
            Arc::clone(&next_id),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut acked = 0u64;
            loop {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let response = e2e::signed_order(&client, &url, &secret, &template, id, "bench")
                    .send()
                    .await;
                let took = sent.elapsed();
                let ok = matches!(&response, Ok(r) if r.status().as_u16() == 200);
                acked += u64::from(ok);
                if sent >= measure_from {
                    if ok {
                        latencies.push(took);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors, acked)
        }));
    }
    let mut latencies = Vec::new();
    let (mut errors, mut acked) = (0, 0);
    for task in tasks {
        let (mut l, e, a) = task.await?;
        latencies.append(&mut l);
        errors += e;
        acked += a;
    }
    latencies.sort_unstable();
    let count = latencies.len();
    let pct = |p: f64| {
        if count == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * count as f64).ceil() as usize;
        latencies[rank.clamp(1, count) - 1].as_secs_f64() * 1000.0
    };
    println!(
        "RESULT label={label} requests={count} errors={errors} seconds={seconds} rps={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} concurrency={concurrency} acked_total={acked}",
        count as f64 / seconds as f64,
        pct(50.0),
        pct(99.0),
        pct(100.0),
    );
    Ok(())
}
