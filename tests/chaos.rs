//! Chaos: nothing lost, nothing doubled, nothing regressed, whatever is killed.
//!
//! The pipeline runs as an operator runs it: `orderbridge ingest`, `process` (at-least-once)
//! and `sink` as separate processes, each a static group member (`instance_id`), on a tansu
//! broker with SQLite storage (it keeps its data across a restart), writing to the Business
//! Central simulator, which upserts by lookup-then-create and does not refuse a duplicate
//! external document number. Providers send signed orders as they do: every delivery
//! retried until it gets a 2xx, some delivered twice, some updates before their create and
//! some stale updates after newer ones. Meanwhile each stage and the broker is SIGKILLed,
//! each started again one to three seconds later, and the ERP goes into maintenance. tansu's
//! own failures are told apart and answered as an operator would ([`BrokerWatch`]).
//!
//! Then every acknowledged order must be in the ERP exactly once, at its newest version, and
//! no stage may have stopped by itself. `CHAOS_SECONDS` (default 40) is how long the chaos
//! lasts, `CHAOS_VICTIMS` (a comma-separated subset of `processor,sink,ingest,broker,
//! maintenance`, default all) who suffers it; the test prints its figures: orders, deliveries, kills per stage, lost, doubled,
//! regressed, the time from each stop to the first order sent after it reaching the ERP, and
//! the time to converge.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderbridge_runtime::{ensure_topics, KafkaSettings, TopicLayout};
use orderbridge_schemas::Topics;
use support::bc_sim::BcSim;
use support::procs::{free_port, ready, Procs};
use support::{unique, wait_for};

const SECRET: &str = "chaos-shopify-secret";
const SHOP: &str = "chaos.myshopify.com";

/// One order's deliveries: what was sent, and the version the ERP must end at.
struct Order {
    id: u64,
    /// `(webhook id, topic, body)` in the order they are sent.
    deliveries: Vec<(String, &'static str, Vec<u8>)>,
    /// The newest `updated_at` among them, as the canonical version (ms × 1000).
    newest: i64,
    quantity_at_newest: i64,
}

fn body(id: u64, updated_at: chrono::DateTime<chrono::Utc>, quantity: i64) -> Vec<u8> {
    let when = updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({
        "id": id,
        "name": format!("#C{id}"),
        "email": "bob@example.com",
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": when,
        "currency": "USD",
        "financial_status": "paid",
        "total_price": "199.00",
        "subtotal_price": "199.00",
        "total_tax": "0.00",
        "line_items": [{"id": 1, "sku": "IPOD2008GREEN", "title": "IPod Nano", "quantity": quantity, "price": "199.00"}]
    })
    .to_string()
    .into_bytes()
}

/// Order `i`'s deliveries, varied as providers vary them.
fn order(i: u64) -> Order {
    let id = 8_000_000 + i;
    let base = chrono::DateTime::from_timestamp(1_767_225_600 + i as i64 * 10, 0).unwrap();
    let v1 = (base, 1);
    let v2 = (base + chrono::Duration::seconds(5), 2);
    let create = |(at, q): (chrono::DateTime<chrono::Utc>, i64), n: u32| {
        (format!("c-{id}-{n}"), "orders/create", body(id, at, q))
    };
    let update = |(at, q): (chrono::DateTime<chrono::Utc>, i64), n: u32| {
        (format!("u-{id}-{n}"), "orders/updated", body(id, at, q))
    };
    let deliveries = match i % 5 {
        // Create, then its update.
        0 => vec![create(v1, 0), update(v2, 0)],
        // The update arrives first (providers do not promise order), then the create.
        1 => vec![update(v2, 0), create(v1, 0)],
        // Delivered twice: the same webhook id again.
        2 => vec![create(v1, 0), create(v1, 0), update(v2, 0)],
        // A stale update after the newest: the older state arrives last.
        3 => vec![create(v1, 0), update(v2, 0), update(v1, 1)],
        // Just a create.
        _ => vec![create(v1, 0)],
    };
    let (newest, quantity_at_newest) = if i % 5 == 4 { v1 } else { v2 };
    Order {
        id,
        deliveries,
        newest: newest.timestamp_millis() * 1000,
        quantity_at_newest,
    }
}

/// Sends one delivery until it gets a 2xx, as Shopify retries: returns the attempts it took.
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    (webhook_id, topic, body): &(String, &'static str, Vec<u8>),
) -> u32 {
    let signature = orderbridge_ingest::verify::shopify::sign(SECRET, body);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = http
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Shopify-Topic", *topic)
            .header("X-Shopify-Shop-Domain", SHOP)
            .header("X-Shopify-Webhook-Id", webhook_id)
            .header("X-Shopify-Hmac-Sha256", &signature)
            .body(body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return attempts;
        }
        // A provider's retry backoff, short here: the test waits on the outcome, not on this.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// tansu 0.6's own failures, told apart from OrderBridge's and answered as an operator would.
///
/// - **Its storage stops.** tansu serves every request through one storage task; a request
///   whose client went away before the answer (any disconnect: a killed stage, a closed
///   consumer) or any storage error ends that task (`UnableToSend` on every request after,
///   sometimes a panic), while the process stays up. Answer: restart the broker.
/// - **It cannot take a bumped producer epoch.** When a write of an idempotent producer fails
///   in flight, librdkafka bumps the producer's epoch locally and goes on with sequence 0, as
///   Apache Kafka allows since KIP-360. tansu's SQLite storage looks the new epoch up, finds
///   no row and panics ("more or less than one row", tansu-storage's `lite.rs`), on every
///   write of that producer, across restarts. Answer: restart the broker and the stages, so
///   that each producer asks for a new id.
/// - **It hangs.** tansu answers no request at all (metadata included) while its one storage
///   task is busy. Before the harness added the index tansu's fetch lacks
///   ([`TANSU_HEADER_INDEX`]), that was minutes at a time once its file had grown for a few
///   minutes; with it, a 10-minute run saw none. Answer, should it happen: what a liveness
///   probe does, restart it after 30 s without an answer.
///
/// A real Kafka needs none of this.
struct BrokerWatch {
    /// How much of the broker's log has been read.
    seen: usize,
    /// When the broker last answered a metadata request (asked every two seconds).
    answered: Arc<Mutex<Instant>>,
    /// Ends the probe's thread when the watch goes.
    stop: Arc<AtomicBool>,
    storage: u32,
    epoch: u32,
    hung: u32,
}

impl Drop for BrokerWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl BrokerWatch {
    /// A watch of the broker at `kafka`, its liveness probe running until the test ends.
    fn new(kafka: &KafkaSettings) -> Self {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let answered = Arc::new(Mutex::new(Instant::now()));
        let probe: BaseConsumer = kafka.client_config().create().unwrap();
        let (last, stop) = (Arc::clone(&answered), Arc::new(AtomicBool::new(false)));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                if probe.fetch_metadata(None, Duration::from_secs(3)).is_ok() {
                    *last.lock().unwrap() = Instant::now();
                }
                std::thread::sleep(Duration::from_secs(2)); // the probe's period
            }
        });
        Self {
            seen: 0,
            answered,
            stop,
            storage: 0,
            epoch: 0,
            hung: 0,
        }
    }

    /// Marks everything the broker logged so far as read, and its silence so far as over (it
    /// was just restarted).
    fn skip(&mut self, procs: &Procs) {
        self.seen = procs.log("broker").len();
        *self.answered.lock().unwrap() = Instant::now();
    }

    /// Restarts what tansu's failure since the last look needs restarted.
    fn check(&mut self, procs: &mut Procs) {
        let log = procs.log("broker");
        let new = log.get(self.seen..).unwrap_or_default();
        if new.contains("more or less than one row") {
            self.epoch += 1;
            procs.restart("broker");
            for stage in ["ingest", "processor", "sink"] {
                procs.restart(stage);
            }
        } else if new.contains("panicked at") || new.contains("UnableToSend") {
            self.storage += 1;
            procs.restart("broker");
        } else if self.answered.lock().unwrap().elapsed() > Duration::from_secs(30) {
            self.hung += 1;
            procs.restart("broker");
        } else {
            return;
        }
        self.skip(procs);
    }
}

/// The SQL that gives tansu's `header` table the index its fetch needs.
///
/// tansu 0.6 reads each fetched record's headers with one query on `header` by
/// `(topition, offset_id)` (tansu-storage's `header_fetch.sql`), and its schema gives that
/// table no index: every record fetched scans every header the broker ever stored, all
/// topics together. OrderBridge's records carry about ten headers each, so a few minutes in,
/// a record costs tens of milliseconds to fetch (91 ms at 500,000 header rows, against
/// 0.05 ms with the index; `EXPLAIN QUERY PLAN` says `SCAN h`), a state load of a few
/// thousand entries takes minutes, and the broker, which serves every request through one
/// storage task, stops answering anything meanwhile. Apache Kafka's fetch cost does not grow
/// with what it has stored; the harness adds the missing index rather than measure that.
const TANSU_HEADER_INDEX: &str =
    "create index if not exists header_record on header (topition, offset_id)";

/// Adds [`TANSU_HEADER_INDEX`] to the broker's SQLite file at `db`, once tansu has created
/// its schema. Python's `sqlite3` module does it (the machine's python3, which `tests/run.sh`
/// needs for its deployment checks too); tansu keeps the file in WAL mode, so this is one
/// more writer that waits its turn.
fn index_tansu_headers(db: &std::path::Path) {
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1], timeout=60)\n\
                  c.execute(sys.argv[2])\n\
                  c.commit()\n\
                  plan = c.execute('explain query plan select k from header where topition = 1 and offset_id = 1').fetchall()\n\
                  print(plan[-1][-1])\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .arg(TANSU_HEADER_INDEX)
        .output()
        .expect("python3 (with its sqlite3 module) indexes tansu's header table");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && plan.contains("USING INDEX header_record"),
        "indexing tansu's header table in {}: {plan}{}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tansu broker, restartable on its port with its SQLite storage.
fn spawn_tansu(procs: &mut Procs, port: u16) {
    let url = format!("tcp://127.0.0.1:{port}");
    procs.spawn_program(
        "broker",
        "tansu",
        &[
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "sqlite://chaos.db",
        ],
        // A broker panic's backtrace goes into its log.
        &[("RUST_BACKTRACE".to_owned(), "1".to_owned())],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_doubled_or_regressed_whatever_is_killed() {
    if std::process::Command::new("tansu")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("ORDERBRIDGE_REQUIRE_BROKER").is_none(),
            "tansu is not on PATH but ORDERBRIDGE_REQUIRE_BROKER is set"
        );
        println!("SKIPPED chaos: tansu is not on PATH (tests/run.sh installs it)");
        return;
    }
    let chaos_for = Duration::from_secs(
        std::env::var("CHAOS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(40),
    );
    // Kept after the run (under target/), so that a failure's logs can be read in full.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("chaos"));
    std::fs::create_dir_all(&dir).unwrap();
    println!("chaos logs in {}", dir.display());
    let mut procs = Procs::new(&dir);
    let broker_port = free_port();
    spawn_tansu(&mut procs, broker_port);
    let bootstrap = format!("127.0.0.1:{broker_port}");
    let kafka = KafkaSettings::new(bootstrap.clone());
    let topics = Topics::with_suffix(&unique("chaos"));
    let layout = TopicLayout {
        partitions: 3,
        ..TopicLayout::default()
    };
    wait_for(
        "the broker and the topics",
        Duration::from_secs(60),
        || async { ensure_topics(&kafka, &topics, layout).await.ok() },
    )
    .await;
    index_tansu_headers(&dir.join("chaos.db"));

    let bc = BcSim::start(&["IPOD2008GREEN"]).await;
    let config = format!(
        r#"[kafka]
bootstrap_servers = "{bootstrap}"
[kafka.properties]
"session.timeout.ms" = "30000"
"heartbeat.interval.ms" = "1000"

[ingest.sources.shopify]
secrets = [{{ id = "chaos", secret = {{ env = "CHAOS_SHOPIFY_SECRET" }} }}]

[processor]
guarantee = "at-least-once"
group_id = "chaos-processor-{suffix}"
instance_id = "processor-0"
batch_linger_ms = 5
fetch_wait_max_ms = 50

[sink]
group_id = "chaos-sink-{suffix}"
instance_id = "sink-0"
retry_initial_ms = 50
retry_max_ms = 2000
breaker_probe_ms = 500
fetch_wait_max_ms = 50

[sink.erp]
kind = "business-central"
api_url = "http://{bc}/v2.0"
token_url = "http://{bc}/{{tenant}}/oauth2/v2.0/token"
tenant_id = "{tenant}"
environment = "{environment}"
company_id = "{company}"
client_id = "{client}"
client_secret = {{ env = "CHAOS_BC_SECRET" }}
default_customer_number = "{customer}"
request_timeout_ms = 5000
"#,
        suffix = unique("g"),
        bc = bc.addr,
        tenant = support::bc_sim::TENANT,
        environment = support::bc_sim::ENVIRONMENT,
        company = support::bc_sim::COMPANY,
        client = support::bc_sim::CLIENT_ID,
        customer = support::bc_sim::CUSTOMER,
    );
    let config_path = dir.join("orderbridge.toml");
    std::fs::write(&config_path, config).unwrap();
    let (ingest_port, processor_port, sink_port) = (free_port(), free_port(), free_port());
    let mut env: Vec<(String, String)> = [
        ("ORDERBRIDGE_CONFIG", config_path.display().to_string()),
        ("CHAOS_SHOPIFY_SECRET", SECRET.to_owned()),
        ("CHAOS_BC_SECRET", support::bc_sim::CLIENT_SECRET.to_owned()),
        (
            "ORDERBRIDGE_INGEST__LISTEN",
            format!("127.0.0.1:{ingest_port}"),
        ),
        (
            "ORDERBRIDGE_PROCESSOR__LISTEN",
            format!("127.0.0.1:{processor_port}"),
        ),
        ("ORDERBRIDGE_SINK__LISTEN", format!("127.0.0.1:{sink_port}")),
        (
            "RUST_LOG",
            "warn,orderbridge_runtime=info,orderbridge_processor=info,orderbridge_sink=info"
                .to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(support::pipeline::topic_env(&topics));
    for (stage, args) in [
        ("ingest", &["ingest"][..]),
        ("processor", &["process"][..]),
        ("sink", &["sink"][..]),
    ] {
        procs.spawn(stage, args, &env);
    }
    for (stage, port) in [
        ("ingest", ingest_port),
        ("processor", processor_port),
        ("sink", sink_port),
    ] {
        wait_for(
            &format!("{stage} ready"),
            Duration::from_secs(90),
            || async move { ready(port).then_some(()) },
        )
        .await;
    }

    // The providers: orders sent at a steady pace, each delivery retried until 2xx.
    let url = format!("http://127.0.0.1:{ingest_port}/webhooks/shopify");
    let stop = Arc::new(AtomicBool::new(false));
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let deliveries = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let providers = {
        let (stop, sent_at, deliveries, attempts) = (
            Arc::clone(&stop),
            Arc::clone(&sent_at),
            Arc::clone(&deliveries),
            Arc::clone(&attempts),
        );
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut orders = Vec::new();
            let mut senders = tokio::task::JoinSet::new();
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let next = order(i);
                i += 1;
                sent_at.lock().unwrap().insert(next.id, Instant::now());
                let (http, url) = (http.clone(), url.clone());
                let (deliveries, attempts) = (Arc::clone(&deliveries), Arc::clone(&attempts));
                let sent: Vec<_> = next.deliveries.clone();
                // Each order's deliveries in their order; orders side by side.
                senders.spawn(async move {
                    for delivery in &sent {
                        let tries = deliver(&http, &url, delivery).await;
                        deliveries.fetch_add(1, Ordering::Relaxed);
                        attempts.fetch_add(u64::from(tries), Ordering::Relaxed);
                    }
                });
                orders.push(next);
                // About 25 orders a second: a pace, not a wait on a condition.
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            while senders.join_next().await.is_some() {}
            orders
        })
    };

    // The ERP, watched: when each order's reference first appears.
    let first_seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watcher = {
        let (bc, first_seen) = (bc.clone(), Arc::clone(&first_seen));
        tokio::spawn(async move {
            // Only what is new since the last look: a look's cost does not grow with the run.
            let mut looked = 0;
            loop {
                let created = bc.created_since(looked);
                looked += created.len();
                let now = Instant::now();
                {
                    let mut seen = first_seen.lock().unwrap();
                    for reference in created {
                        seen.entry(reference).or_insert(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await; // a poll interval
            }
        })
    };

    // The chaos: a victim every few seconds, restarted one to three seconds later.
    let all = ["processor", "sink", "ingest", "broker", "maintenance"];
    let victims: Vec<&str> = match std::env::var("CHAOS_VICTIMS") {
        Ok(list) => all
            .into_iter()
            .filter(|v| list.split(',').any(|w| w.trim() == *v))
            .collect(),
        Err(_) => all.to_vec(),
    };
    assert!(!victims.is_empty(), "CHAOS_VICTIMS names none of {all:?}");
    let mut kills: BTreeMap<&str, u32> = BTreeMap::new();
    let mut kill_times: Vec<(&str, Instant, Duration)> = Vec::new();
    let started = Instant::now();
    let mut round = 0usize;
    let mut wedges = BrokerWatch::new(&kafka);
    // Whether an order first sent after `since` has reached the ERP: the pipeline flows.
    let flowing = |since: Instant| {
        let sent = sent_at.lock().unwrap();
        let seen = first_seen.lock().unwrap();
        sent.iter().filter(|(_, at)| **at >= since).any(|(id, _)| {
            let reference =
                orderbridge_sink::erp::external_reference(&format!("shopify:{SHOP}:{id}"));
            seen.contains_key(&reference)
        })
    };
    while started.elapsed() < chaos_for {
        let victim = victims[round % victims.len()];
        let down = Duration::from_millis(1_000 + (round as u64 * 700) % 2_000);
        round += 1;
        *kills.entry(victim).or_default() += 1;
        let at = Instant::now();
        if victim == "maintenance" {
            bc.set_maintenance(true);
            tokio::time::sleep(down).await; // the window's length
            bc.set_maintenance(false);
        } else {
            procs.kill(victim);
            kill_times.push((victim, at, down));
            tokio::time::sleep(down).await; // how long the stage stays down
            procs.restart(victim);
            if victim == "broker" {
                // What the killed broker wrote while it went down is not a wedge.
                wedges.skip(&procs);
            }
        }
        // The next victim once this one's outage is over, so that each recovery is timed
        // on its own (and a stage that never recovers fails the test here).
        let deadline = Instant::now() + Duration::from_secs(120);
        while !flowing(at) {
            assert!(
                Instant::now() < deadline,
                "the pipeline did not flow again within 120 s after {victim}"
            );
            wedges.check(&mut procs);
            tokio::time::sleep(Duration::from_millis(100)).await; // polling the outcome
        }
        tokio::time::sleep(Duration::from_secs(1)).await; // steady flow between victims
    }
    stop.store(true, Ordering::Release);
    let orders = providers.await.unwrap();
    let sent_deliveries = deliveries.load(Ordering::Relaxed);
    println!(
        "chaos over after {:?}: {} orders, {} deliveries acknowledged ({} attempts)",
        started.elapsed(),
        orders.len(),
        sent_deliveries,
        attempts.load(Ordering::Relaxed)
    );

    // Convergence: every order once, at its newest version.
    let converging = Instant::now();
    let expected: Vec<(String, &Order)> = orders
        .iter()
        .map(|o| {
            let key = format!("shopify:{SHOP}:{}", o.id);
            (orderbridge_sink::erp::external_reference(&key), o)
        })
        .collect();
    let settled = |bc: &BcSim| {
        let held = bc.orders();
        let mut by_reference: HashMap<&str, Vec<&support::bc_sim::SalesOrder>> = HashMap::new();
        for order in &held {
            by_reference
                .entry(order.external_document_number.as_str())
                .or_default()
                .push(order);
        }
        let (mut lost, mut doubled, mut regressed) = (0, 0, 0);
        for (reference, order) in &expected {
            match by_reference.get(reference.as_str()).map(Vec::as_slice) {
                None | Some([]) => lost += 1,
                Some([one]) => {
                    let at_newest = one
                        .comments()
                        .iter()
                        .any(|c| c.ends_with(&order.newest.to_string()))
                        && one.item_lines()[0]["quantity"] == order.quantity_at_newest;
                    if !at_newest {
                        regressed += 1;
                    }
                }
                Some(_) => doubled += 1,
            }
        }
        (lost, doubled, regressed)
    };
    let converge_by = Instant::now() + Duration::from_secs(180);
    let mut converged = false;
    while Instant::now() < converge_by {
        if settled(&bc) == (0, 0, 0) {
            converged = true;
            break;
        }
        wedges.check(&mut procs);
        tokio::time::sleep(Duration::from_millis(200)).await; // polling the ERP
    }
    let (lost, doubled, regressed) = settled(&bc);
    let converge_time = converging.elapsed();
    watcher.abort();

    // Time from each kill to the first order sent after it reaching the ERP.
    let seen = first_seen.lock().unwrap().clone();
    let sent = sent_at.lock().unwrap().clone();
    let mut recoveries: BTreeMap<&str, Vec<(Duration, Duration)>> = BTreeMap::new();
    for (victim, at, down) in &kill_times {
        let recovered = expected
            .iter()
            .filter(|(_, o)| sent.get(&o.id).is_some_and(|s| s >= at))
            .filter_map(|(reference, _)| seen.get(reference))
            .min();
        if let Some(recovered) = recovered {
            recoveries
                .entry(victim)
                .or_default()
                .push((recovered.duration_since(*at), *down));
        }
    }
    let crashed = procs.crashed();
    println!(
        "the ERP holds {} sales orders; (token requests, lookups, creates) {:?}",
        bc.orders().len(),
        bc.counts()
    );
    println!(
        "chaos figures: orders {}, deliveries {}, kills {:?}, lost {lost}, doubled {doubled}, regressed {regressed}, converged in {:?}; tansu failures answered by the harness: storage {}, producer epoch {}, hung {}",
        orders.len(),
        sent_deliveries,
        kills,
        converge_time,
        wedges.storage,
        wedges.epoch,
        wedges.hung
    );
    for (victim, times) in &recoveries {
        let n = u32::try_from(times.len()).unwrap_or(1).max(1);
        let max = times.iter().map(|t| t.0).max().unwrap_or_default();
        let mean = times.iter().map(|t| t.0).sum::<Duration>() / n;
        let down = times.iter().map(|t| t.1).sum::<Duration>() / n;
        let after = times
            .iter()
            .map(|t| t.0.saturating_sub(t.1))
            .sum::<Duration>()
            / n;
        println!(
            "SIGKILL to flowing again, {victim}: mean {mean:.1?}, max {max:.1?} over {} kills \
             (down before the restart: mean {down:.1?}; restart to flowing: mean {after:.1?})",
            times.len()
        );
    }
    assert!(
        crashed.is_empty(),
        "stages stopped by themselves: {crashed:?}"
    );
    assert!(
        converged,
        "not converged: lost {lost}, doubled {doubled}, regressed {regressed}"
    );
    assert_eq!((lost, doubled, regressed), (0, 0, 0));
}
