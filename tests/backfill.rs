//! `orderbridge backfill` as an operator runs it, against a rate-limited Sumeru simulator:
//! 2,000 orders, the command SIGKILLed halfway and run again, every order in the ERP once
//! (with its attribution), and running it a second time adding nothing downstream; and a
//! Shopify backfill through its GraphQL API, spending points at the shop's restore rate.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use support::pipeline::{counter, stop, topic_env, Env};
use support::procs::Procs;
use support::providers::core::Core;
use support::providers::sumeru::{SumeruSim, API_KEY};
use support::wait_for;
use tokio_util::sync::CancellationToken;

const ORDERS: usize = 2000;
const PAGE: usize = 20;
/// The simulator's (and the configured) rate: 100 pages take ten seconds.
const RATE: f64 = 10.0;

/// A configuration file for the command: the test's broker and Sumeru's API.
fn config(dir: &std::path::Path, env: &Env, sim: &SumeruSim) -> std::path::PathBuf {
    let path = dir.join("orderbridge.toml");
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
bootstrap_servers = "{bootstrap}"

[api.sumeru]
base_url = "{base}"
api_key = {{ env = "SUMERU_API_KEY" }}
rate_per_sec = {RATE}
burst = 2
page_size = {PAGE}
"#,
            bootstrap = env.kafka.bootstrap_servers,
            base = sim.base_url(),
        ),
    )
    .unwrap();
    path
}

/// Records in `topic` (the sum of its partitions' end offsets).
fn records_in(env: &Env, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = env.kafka.client_config().create().unwrap();
    (0..support::pipeline::PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum()
}

/// Waits until the staging tables hold `count` orders.
async fn orders_in_erp(db: &sqlx::SqlitePool, count: usize) {
    wait_for(
        &format!("{count} orders in the ERP"),
        Duration::from_secs(120),
        || async {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
                .fetch_one(db)
                .await
                .unwrap();
            (rows == count as i64).then_some(())
        },
    )
    .await;
}

/// Waits for `name` to exit by itself, up to `timeout`.
async fn exit_of(procs: &mut Procs, name: &str, timeout: Duration) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = procs.exited(name) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not finish within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, bounded by the deadline
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_backfill_resumes_and_every_order_reaches_the_erp_once() {
    let env = Env::mock();
    let sim = SumeruSim::start(RATE, 2).await;
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    // 2,000 orders over January, one every 20 minutes; and some after the window.
    sim.seed(1, ORDERS, from, Duration::from_secs(1200));
    sim.seed(
        ORDERS + 1,
        10,
        Utc.with_ymd_and_hms(2026, 2, 3, 0, 0, 0).unwrap(),
        Duration::from_secs(60),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &env, &sim);
    let mut vars = topic_env(&env.topics);
    vars.push(("SUMERU_API_KEY".into(), API_KEY.into()));
    vars.push(("RUST_LOG".into(), "warn".into()));
    let args = [
        "--config",
        config.to_str().unwrap(),
        "backfill",
        "sumeru",
        "--from",
        "2026-01-01",
        "--to",
        "2026-02-01",
    ];
    let mut procs = Procs::new(dir.path());
    procs.spawn("backfill", &args, &vars);

    // Killed halfway: after the 40th page was served.
    wait_for("40 pages served", Duration::from_secs(60), || async {
        (Core::count(&sim.core.counts.served) >= 40).then_some(())
    })
    .await;
    procs.kill("backfill");
    let published_before = records_in(&env, &env.topics.raw);
    assert!(
        (600..ORDERS as i64).contains(&published_before),
        "killed halfway, yet {published_before} records were published"
    );

    // Run again: it continues from its checkpoint, not from the start.
    procs.restart("backfill");
    let status = exit_of(&mut procs, "backfill", Duration::from_secs(120)).await;
    let log = procs.log("backfill");
    assert!(status.success(), "{log}");
    assert!(log.contains("resuming after"), "{log}");
    assert!(log.contains("2000 orders published"), "{log}");
    let published = records_in(&env, &env.topics.raw);
    // Each page before the last checkpoint once, the page in flight at the kill maybe twice.
    assert!(
        (ORDERS as i64..=ORDERS as i64 + PAGE as i64).contains(&published),
        "{published} records for {ORDERS} orders"
    );
    // At the allowed rate, not bouncing off it.
    let throttled = Core::count(&sim.core.counts.throttled);
    assert!(throttled <= 5, "{throttled} requests were throttled");

    // The pipeline takes them to the ERP.
    let shutdown = CancellationToken::new();
    let down = env.downstream(&shutdown).await;
    let (db, processor_metrics, sink_metrics) = (
        down.db.clone(),
        down.processor_metrics.clone(),
        down.sink_metrics.clone(),
    );
    orders_in_erp(&db, ORDERS).await;
    let created = counter(
        &sink_metrics,
        "orderbridge_sink_upserts_total",
        &[("outcome", "created")],
    );
    assert_eq!(created, ORDERS as u64, "each order created once");
    // With its lines, total and attribution.
    let (total, lines): (String, i64) = sqlx::query_as(
        "SELECT o.total, (SELECT COUNT(*) FROM order_lines l WHERE l.order_key = o.order_key) \
         FROM orders o WHERE o.order_key = 'sumeru:-:ord_7'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let expected = support::providers::sumeru::order(7, from);
    assert_eq!(total, expected["total"].as_str().unwrap());
    assert_eq!(lines, 2);

    // A second run finds the window done and publishes nothing.
    let finished = records_in(&env, &env.topics.raw);
    procs.restart("backfill");
    let status = exit_of(&mut procs, "backfill", Duration::from_secs(60)).await;
    assert!(status.success());
    assert!(procs.log("backfill").contains("already done"));
    assert_eq!(records_in(&env, &env.topics.raw), finished);

    // Read again on purpose (--restart): everything repeats, nothing changes downstream.
    let mut again: Vec<&str> = args.to_vec();
    again.push("--restart");
    procs.spawn("restart", &again, &vars);
    let status = exit_of(&mut procs, "restart", Duration::from_secs(120)).await;
    assert!(status.success(), "{}", procs.log("restart"));
    assert_eq!(records_in(&env, &env.topics.raw), finished + ORDERS as i64);
    wait_for(
        "the repeated orders to be seen as repeats",
        Duration::from_secs(120),
        || async {
            let repeats = counter(
                &processor_metrics,
                "orderbridge_processor_records_total",
                &[("outcome", "duplicate")],
            );
            (repeats >= ORDERS as u64).then_some(())
        },
    )
    .await;
    assert_eq!(
        counter(
            &sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")]
        ),
        ORDERS as u64
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(rows, ORDERS as i64);
    stop(&shutdown, down.stages).await;
}

/// Shopify's GraphQL API charges points, not requests: a backfill sends each query once the
/// shop's bucket holds its cost (never throttled), asks for fewer orders when a page would
/// cost more than one query may, and completes an order with more lines than one page holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shopify_backfill_waits_for_the_shops_points_and_lands_every_order() {
    use support::providers::shopify::{self, ShopifySim};
    const SHOPIFY_ORDERS: usize = 300;
    /// Points a second the simulated shop restores.
    const RESTORE: f64 = 400.0;
    let env = Env::mock();
    let sim = ShopifySim::start(RESTORE, 1_000.0).await;
    let from = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    sim.seed(1, SHOPIFY_ORDERS, from, Duration::from_secs(600));
    // One order of 23 lines (three pages of ten), and one after the window.
    sim.put(shopify::order(
        9_001,
        Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 5).unwrap(),
        23,
    ));
    sim.put(shopify::order(
        9_002,
        Utc.with_ymd_and_hms(2026, 4, 2, 0, 0, 0).unwrap(),
        1,
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orderbridge.toml");
    std::fs::write(
        &config,
        format!(
            r#"[kafka]
bootstrap_servers = "{bootstrap}"

[api.shopify]
base_url = "{base}"
access_token = {{ env = "SHOPIFY_ACCESS_TOKEN" }}
"#,
            bootstrap = env.kafka.bootstrap_servers,
            base = sim.base_url(),
        ),
    )
    .unwrap();
    let mut vars = topic_env(&env.topics);
    vars.push(("SHOPIFY_ACCESS_TOKEN".into(), shopify::ACCESS_TOKEN.into()));
    vars.push(("RUST_LOG".into(), "warn".into()));
    let args = [
        "--config",
        config.to_str().unwrap(),
        "backfill",
        "shopify",
        "--account",
        shopify::SHOP,
        "--from",
        "2026-03-01",
        "--to",
        "2026-04-01",
    ];
    let mut procs = Procs::new(dir.path());
    let started = std::time::Instant::now();
    procs.spawn("backfill", &args, &vars);
    let status = exit_of(&mut procs, "backfill", Duration::from_secs(120)).await;
    let elapsed = started.elapsed();
    let log = procs.log("backfill");
    assert!(status.success(), "{log}");
    let expected = SHOPIFY_ORDERS + 1;
    assert!(
        log.contains(&format!("{expected} orders published")),
        "{log}"
    );
    assert_eq!(records_in(&env, &env.topics.raw), expected as i64);
    // The default page (25 orders of 10 lines) asks for more than 1,000 points: asked once,
    // then halved for the rest of the run.
    assert_eq!(ShopifySim::count(&sim.spent.too_costly), 1, "{log}");
    assert!(log.contains("asking for fewer"), "{log}");
    // Each query waits until the shop's bucket holds its cost: never throttled.
    let throttled = ShopifySim::count(&sim.spent.throttled);
    assert_eq!(throttled, 0, "{throttled} queries were throttled\n{log}");
    let points = ShopifySim::count(&sim.spent.points);
    println!(
        "shopify backfill: {expected} orders, {} queries, {points} points in {elapsed:.1?} \
         ({:.0} points/s of {RESTORE} restored, plus the 1,000-point bucket), {throttled} throttled",
        ShopifySim::count(&sim.spent.queries),
        points as f64 / elapsed.as_secs_f64(),
    );

    // The pipeline takes them to the ERP, the long order with all its lines.
    let shutdown = CancellationToken::new();
    let down = env.downstream(&shutdown).await;
    let (db, sink_metrics) = (down.db.clone(), down.sink_metrics.clone());
    orders_in_erp(&db, expected).await;
    let (total, lines): (String, i64) = sqlx::query_as(
        "SELECT o.total, (SELECT COUNT(*) FROM order_lines l WHERE l.order_key = o.order_key) \
         FROM orders o WHERE o.order_key = 'shopify:example-store.myshopify.com:9001'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(lines, 23);
    assert_eq!(total, shopify::order(9_001, from, 23).total);
    assert_eq!(
        counter(
            &sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")]
        ),
        expected as u64
    );
    stop(&shutdown, down.stages).await;
}
