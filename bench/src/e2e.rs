//! `loadgen e2e`: webhook to ERP, measured from outside. Unique signed Shopify orders are
//! sent at a fixed rate (open loop: each order has its scheduled send time, and every latency
//! is counted from that time, so a receiver that stalls cannot hide it by slowing the sender
//! down), and the staging table the ERP side writes is watched for each order's row. Nothing
//! of the system under test is asked: the receipt → ERP latency is from the scheduled send to
//! the moment the row is visible to another reader of the database.
//!
//! One `RESULT` line per rate, for `bench/e2e.sh` to tabulate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use orderbridge_ingest::verify::shopify::sign;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::SqlitePool;
use tokio::sync::{Mutex, Semaphore};

/// How often the staging table is read for new rows. Adds up to this much to every
/// receipt → ERP figure, the same for every system measured.
const WATCH_EVERY: Duration = Duration::from_millis(2);
/// Requests in flight at most; past it the sender waits, and the wait shows in the latencies
/// (they count from the scheduled time).
const MAX_IN_FLIGHT: usize = 2048;

/// Options of `loadgen e2e`.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    /// Receiver URL, e.g. http://127.0.0.1:8080/webhooks/shopify.
    #[arg(long)]
    url: String,
    /// Shopify app secret the receiver verifies with.
    #[arg(long)]
    secret: String,
    /// The SQLite file whose `orders` table the system under test writes.
    #[arg(long)]
    db: PathBuf,
    /// Rates (orders/s) always measured, in this order.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u32>,
    /// Then climbs these rates, stopping after the first the system cannot keep up with. The
    /// highest rate kept up (of all) is printed last, as `SUSTAINED`.
    #[arg(long, value_delimiter = ',')]
    climb: Vec<u32>,
    /// Seconds of sending at each rate.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keeping up means: every order landed, and receipt → ERP p99 below this.
    #[arg(long, default_value_t = 500)]
    keep_up_p99_ms: u64,
    /// How long to wait for the last orders after sending stops.
    #[arg(long, default_value_t = 60)]
    drain_seconds: u64,
    /// A process to report CPU and peak memory of, as `name=pid` (repeatable).
    #[arg(long)]
    process: Vec<String>,
    /// Name printed with each result.
    #[arg(long)]
    label: String,
}

const ORDER: &str = include_str!("../../tests/fixtures/shopify/orders-create-basic/body.json");

/// Runs every rate, printing a `RESULT` line after each.
pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    let processes = args
        .process
        .iter()
        .map(|p| {
            let (name, pid) = p
                .split_once('=')
                .with_context(|| format!("--process {p}: expected name=pid"))?;
            Ok((
                name.to_owned(),
                pid.parse::<u32>().context("--process pid")?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let db = open_staging(&args.db).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let template: serde_json::Value = serde_json::from_str(ORDER)?;
    // Ids unique across runs against the same database.
    let mut next_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        * 100_000;
    let climb: Vec<u32> = args.climb.iter().copied().filter(|r| *r > 0).collect();
    let mut sustained = None;
    for (rate, climbing) in args
        .rates
        .iter()
        .map(|r| (*r, false))
        .chain(climb.iter().map(|r| (*r, true)))
    {
        let rung = Rung {
            rate,
            seconds: args.seconds,
            first_id: next_id,
        };
        next_id += u64::from(rate) * args.seconds + 1;
        let before = cpu_ticks(&processes);
        let outcome = rung
            .run(&client, &args, &template, &db)
            .await
            .with_context(|| format!("at {rate}/s"))?;
        let after = cpu_ticks(&processes);
        let keeps_up = outcome.missing == 0
            && outcome.e2e.pct(99.0) < Duration::from_millis(args.keep_up_p99_ms)
            && outcome.errors == 0;
        let mut line = format!(
            "RESULT label={} rate={rate} seconds={} sent={} errors={} ack_p50_ms={:.1} ack_p99_ms={:.1} \
             e2e_p50_ms={:.1} e2e_p99_ms={:.1} e2e_max_ms={:.1} first_second_p99_ms={:.1} \
             landed={} missing={} landed_per_s={:.0} drain_ms={} keeps_up={keeps_up}",
            args.label,
            args.seconds,
            outcome.sent,
            outcome.errors,
            ms(outcome.ack.pct(50.0)),
            ms(outcome.ack.pct(99.0)),
            ms(outcome.e2e.pct(50.0)),
            ms(outcome.e2e.pct(99.0)),
            ms(outcome.e2e.pct(100.0)),
            ms(outcome.first_second.pct(99.0)),
            outcome.landed,
            outcome.missing,
            outcome.landed_per_s,
            outcome.drain.as_millis(),
        );
        for ((name, pid), (b, a)) in processes.iter().zip(before.iter().zip(after.iter())) {
            // USER_HZ is 100 on Linux: a tick is 10 ms of CPU.
            let cpu_ms = a.saturating_sub(*b) * 10;
            line.push_str(&format!(
                " cpu_ms_{name}={cpu_ms} rss_mib_{name}={:.1}",
                peak_rss_mib(*pid)
            ));
        }
        println!("{line}");
        if keeps_up {
            sustained = sustained.max(Some(rate));
        } else if climbing {
            break;
        }
    }
    println!(
        "SUSTAINED label={} rate={}",
        args.label,
        sustained.map_or_else(|| "none".to_owned(), |r| r.to_string())
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits for the staging table to exist (the system under test creates it on start).
async fn open_staging(path: &std::path::Path) -> anyhow::Result<SqlitePool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if path.exists() {
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                .busy_timeout(Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orders'",
            )
            .fetch_optional(&pool)
            .await?;
            if exists.is_some() {
                return Ok(pool);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} has no orders table after 60 s",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Rung {
    rate: u32,
    seconds: u64,
    first_id: u64,
}

/// Latencies, sorted on demand.
#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn pct(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let count = sorted.len();
        if count == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * count as f64).ceil() as usize;
        sorted[rank.clamp(1, count) - 1]
    }
}

struct Outcome {
    sent: u64,
    errors: u64,
    ack: Latencies,
    e2e: Latencies,
    first_second: Latencies,
    landed: u64,
    missing: u64,
    /// Rows that appeared per second from the first send to the last row.
    landed_per_s: f64,
    /// From the end of sending to the last row.
    drain: Duration,
}

impl Rung {
    async fn run(
        &self,
        client: &reqwest::Client,
        args: &E2eArgs,
        template: &serde_json::Value,
        db: &SqlitePool,
    ) -> anyhow::Result<Outcome> {
        let count = u64::from(self.rate) * self.seconds;
        let interval = Duration::from_secs(1) / self.rate;
        let mut last_row: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM orders")
            .fetch_one(db)
            .await?;
        let start = Instant::now() + Duration::from_millis(50);
        let scheduled: HashMap<String, Instant> = (0..count)
            .map(|i| {
                (
                    (self.first_id + i).to_string(),
                    start + interval * u32::try_from(i).unwrap_or(u32::MAX),
                )
            })
            .collect();
        let acks = Arc::new(Mutex::new((Latencies::default(), 0u64)));
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let sending = {
            let (client, url, secret, template) = (
                client.clone(),
                args.url.clone(),
                args.secret.clone(),
                template.clone(),
            );
            let (acks, in_flight, first_id) =
                (Arc::clone(&acks), Arc::clone(&in_flight), self.first_id);
            tokio::spawn(async move {
                let mut requests = tokio::task::JoinSet::new();
                for i in 0..count {
                    let at = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
                    tokio::time::sleep_until(at.into()).await;
                    let permit = Arc::clone(&in_flight).acquire_owned().await;
                    let request =
                        signed_order(&client, &url, &secret, &template, first_id + i, "e2e");
                    let acks = Arc::clone(&acks);
                    requests.spawn(async move {
                        let response = request.send().await;
                        let took = at.elapsed();
                        drop(permit);
                        let ok = matches!(&response, Ok(r) if r.status().as_u16() == 200);
                        let mut acks = acks.lock().await;
                        if ok {
                            acks.0 .0.push(took);
                        } else {
                            acks.1 += 1;
                        }
                    });
                }
                while requests.join_next().await.is_some() {}
            })
        };

        // Watch the staging table until every order is there or the drain time is over.
        let send_end = start + interval * u32::try_from(count).unwrap_or(u32::MAX);
        let give_up = send_end + Duration::from_secs(args.drain_seconds);
        let mut landed: HashMap<String, Instant> = HashMap::with_capacity(scheduled.len());
        let mut last_landed = start;
        while landed.len() < scheduled.len() && Instant::now() < give_up {
            tokio::time::sleep(WATCH_EVERY).await;
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT rowid, source_order_id FROM orders WHERE rowid > ?1 ORDER BY rowid",
            )
            .bind(last_row)
            .fetch_all(db)
            .await?;
            let seen = Instant::now();
            for (rowid, id) in rows {
                last_row = last_row.max(rowid);
                if scheduled.contains_key(&id) {
                    landed.entry(id).or_insert(seen);
                    last_landed = seen;
                }
            }
        }
        sending.await.context("the sender")?;
        let (ack, errors) = std::mem::take(&mut *acks.lock().await);
        let mut e2e = Latencies::default();
        let mut first_second = Latencies::default();
        for (id, at) in &landed {
            if let Some(sent) = scheduled.get(id) {
                let took = at.saturating_duration_since(*sent);
                e2e.0.push(took);
                if *sent < start + Duration::from_secs(1) {
                    first_second.0.push(took);
                }
            }
        }
        let landed_count = landed.len() as u64;
        let span = last_landed.saturating_duration_since(start).as_secs_f64();
        Ok(Outcome {
            sent: count,
            errors,
            ack,
            e2e,
            first_second,
            landed: landed_count,
            missing: count - landed_count,
            landed_per_s: if span > 0.0 {
                landed_count as f64 / span
            } else {
                0.0
            },
            drain: last_landed.saturating_duration_since(send_end),
        })
    }
}

/// utime + stime of each process, in ticks (0 for one that is gone).
fn cpu_ticks(processes: &[(String, u32)]) -> Vec<u64> {
    processes
        .iter()
        .map(|(_, pid)| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // Fields after the command name (which may hold spaces) in parentheses.
                    let rest = stat.rsplit_once(')')?.1;
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    // utime and stime are fields 14 and 15 of the line; 12 and 13 after ')'.
                    let utime: u64 = fields.get(11)?.parse().ok()?;
                    let stime: u64 = fields.get(12)?.parse().ok()?;
                    Some(utime + stime)
                })
                .unwrap_or(0)
        })
        .collect()
}

/// The process's peak resident memory (VmHWM), 0 if it is gone.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A signed Shopify `orders/create` webhook: `template` with `id`, signed with `secret` the
/// way Shopify signs, its webhook id `<prefix>-<id>`.
pub fn signed_order(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    template: &serde_json::Value,
    id: u64,
    prefix: &str,
) -> reqwest::RequestBuilder {
    let mut order = template.clone();
    order["id"] = id.into();
    let body = order.to_string();
    let signature = sign(secret, body.as_bytes());
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-shop-domain", "bench-store.myshopify.com")
        .header("x-shopify-webhook-id", format!("{prefix}-{id}"))
        .header("x-shopify-hmac-sha256", signature)
        .body(body)
}
