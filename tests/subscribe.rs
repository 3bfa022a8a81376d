//! `orderbridge subscribe` and `orderbridge send-test` as an operator runs them, against the
//! providers' simulators and a real `orderbridge ingest` process:
//!
//! - Sumeru's guide end to end: subscribe (the secret written once, mode 0600, never
//!   printed), ingest reading that file, Sumeru's test delivery verified, a month backfilled
//!   with its attribution, and every order in the SQL staging tables and in Odoo with its
//!   first touch, last touch and touchpoint credits.
//! - eBay: the Notification API destination (eBay's challenge answered by ingest) and the
//!   `ORDER_CONFIRMATION` subscription; the test notification verified by ingest.
//! - Ordermentum and BigCommerce: the webhook registered with what ingest checks; a second
//!   run finds it instead of making another.
//! - Shopify: `webhookSubscriptionCreate` for each order topic through the GraphQL API, once;
//!   a refused token is a clear error that never prints the token.
//! - `send-test`: a signed sample followed from ingest to the ERP, stage by stage; a secret
//!   ingest does not hold is named as the reason.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use orderbridge_processor::Guarantee;
use orderbridge_sink::erp::reference::external_reference;
use support::odoo_sim::OdooSim;
use support::pipeline::{stop, topic_env, Env};
use support::procs::{free_port, ready, Procs};
use support::{staging_db, unique, wait_for};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `orderbridge <args>` to its end with only `vars` in its environment.
async fn orderbridge(args: &[&str], vars: &[(String, String)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let vars = vars.to_vec();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_orderbridge"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars)
            .output()
            .unwrap()
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the command finished within two minutes")
        .unwrap()
}

/// Standard output and error of a finished command, for assertions and failure reports.
fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A directory with `orderbridge.toml` made of `body` after the test broker's `[kafka]`.
fn config_file(dir: &Path, env: &Env, body: &str) -> PathBuf {
    let path = dir.join("orderbridge.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap_servers = \"{}\"\n\n{body}",
            env.kafka.bootstrap_servers
        ),
    )
    .unwrap();
    path
}

/// Starts `orderbridge ingest` on `port` with `config` and waits until it is ready.
async fn start_ingest(
    procs: &mut Procs,
    config: &Path,
    port: u16,
    env: &Env,
    vars: &[(String, String)],
) {
    let mut all = vars.to_vec();
    all.extend(topic_env(&env.topics));
    all.push((
        "ORDERBRIDGE_INGEST__LISTEN".into(),
        format!("127.0.0.1:{port}"),
    ));
    all.push(("RUST_LOG".into(), "warn".into()));
    procs.spawn(
        "ingest",
        &["--config", config.to_str().unwrap(), "ingest"],
        &all,
    );
    wait_for("ingest ready", DEADLINE, || async move {
        ready(port).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sumeru_guide_works_end_to_end() {
    use chrono::{TimeZone, Utc};
    use support::providers::sumeru::{SumeruSim, API_KEY};

    let env = Env::mock();
    let sim = SumeruSim::start(20.0, 5).await;
    // November's orders, one every five hours: 144 of them.
    let from = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let orders = sim.seed(1, 144, from, Duration::from_secs(5 * 3600));
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("sumeru-webhook-secret");
    let config = config_file(
        dir.path(),
        &env,
        &format!(
            r#"[ingest.sources.sumeru]
secrets = [{{ id = "sumeru", secret = {{ file = "{secret}" }} }}]

[api.sumeru]
base_url = "{base}"
api_key = {{ env = "SUMERU_API_KEY" }}
rate_per_sec = 20
burst = 5
page_size = 50
"#,
            secret = secret_file.display(),
            base = sim.base_url(),
        ),
    );
    let config_arg = config.to_str().unwrap();
    let mut vars = topic_env(&env.topics);
    vars.push(("SUMERU_API_KEY".into(), API_KEY.into()));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/webhooks/sumeru");

    // 1. Subscribe: the secret Sumeru makes is written to the file ingest reads, owner-only,
    //    and not printed.
    let output = orderbridge(
        &[
            "--config",
            config_arg,
            "subscribe",
            "sumeru",
            "--url",
            &url,
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
        &vars,
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    let subscriptions = sim.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    assert_eq!(subscriptions[0].url, url);
    assert_eq!(subscriptions[0].events, ["order.attributed"]);
    assert!(
        stdout.contains(&format!("new subscription {}", subscriptions[0].id)),
        "{stdout}"
    );
    let secret = &subscriptions[0].secret;
    assert_eq!(
        std::fs::read_to_string(&secret_file).unwrap().trim_end(),
        secret
    );
    // The subscription is in the audit log, its secret is not.
    let audit = env
        .read(&env.topics.audit, 1, Duration::from_secs(10))
        .await;
    let record: serde_json::Value = {
        use rdkafka::Message;
        serde_json::from_slice(audit[0].payload().unwrap()).unwrap()
    };
    assert_eq!(
        (
            &record["action"],
            &record["result"],
            &record["detail"]["id"]
        ),
        (
            &serde_json::json!("subscribe"),
            &serde_json::json!("ok"),
            &serde_json::json!(subscriptions[0].id)
        ),
        "{record}"
    );
    assert!(!record.to_string().contains(secret.as_str()), "{record}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));

    // 2. Ingest, with the secret from that file.
    let mut procs = Procs::new(dir.path());
    start_ingest(&mut procs, &config, port, &env, &vars).await;

    // 3. Sumeru's test delivery, verified by ingest. Running subscribe again finds the
    //    subscription rather than making a second.
    let output = orderbridge(
        &[
            "--config",
            config_arg,
            "subscribe",
            "sumeru",
            "--url",
            &url,
            "--test",
        ],
        &vars,
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("existing subscription"), "{stdout}");
    assert!(
        stdout.contains("test delivery: ingest answered 200"),
        "{stdout}"
    );
    assert_eq!(sim.subscriptions().len(), 1);
    let deliveries = sim.test_deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].0, 200, "{deliveries:?}");

    // 4. A month backfilled, with attribution.
    let output = orderbridge(
        &[
            "--config",
            config_arg,
            "backfill",
            "sumeru",
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-01",
        ],
        &vars,
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("144 orders published"), "{stdout}");

    // 5. Every order in the SQL staging tables and in Odoo, with its attribution: two sinks,
    //    each its own consumer group, as two ERPs would have.
    let shutdown = CancellationToken::new();
    let processor_metrics = prometheus::Registry::new();
    let mut stages = vec![env.spawn_processor_in(
        &unique("processor"),
        Guarantee::ExactlyOnce,
        &processor_metrics,
        &shutdown,
    )];
    let (erp, db, _db_dir) = staging_db().await;
    let sink_metrics = prometheus::Registry::new();
    stages.push(env.spawn_sink(&unique("sink"), erp, &sink_metrics, &shutdown));
    let skus: Vec<String> = (0..50)
        .map(|n| format!("SKU-{n}"))
        .chain(["SHIP-STD".to_owned()])
        .collect();
    let odoo = OdooSim::start(&skus.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let mut odoo_config = odoo.config();
    odoo_config.attribution_note_field = "x_orderbridge_attribution".into();
    let odoo_erp =
        std::sync::Arc::new(orderbridge_sink::erp::odoo::Odoo::new(odoo_config).unwrap());
    stages.push(env.spawn_sink(
        &unique("odoo-sink"),
        odoo_erp,
        &prometheus::Registry::new(),
        &shutdown,
    ));

    // The month, and the test delivery's order.
    let expected = orders.len() + 1;
    wait_for(
        "every order in the staging tables and in Odoo",
        Duration::from_secs(120),
        || async {
            let rows: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE source = 'sumeru'")
                    .fetch_one(&db)
                    .await
                    .unwrap();
            (rows == expected as i64 && odoo.orders().len() == expected).then_some(())
        },
    )
    .await;

    let channels = ["paid_search", "social", "email", "referral"];
    for n in 1..=orders.len() {
        let key = format!("sumeru:-:ord_{n}");
        let (first_touch, first_campaign, last_touch, last_medium): (String, Option<String>, String, Option<String>) =
            sqlx::query_as(
                "SELECT first_touch_channel, first_touch_campaign, last_touch_channel, last_touch_medium \
                 FROM orders WHERE order_key = $1",
            )
            .bind(&key)
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(
            (
                first_touch.as_str(),
                first_campaign.as_deref(),
                last_touch.as_str(),
                last_medium.as_deref()
            ),
            (
                channels[n % 4],
                Some("spring"),
                channels[(n + 2) % 4],
                Some("email")
            ),
            "{key}"
        );
        let credits: Vec<(String, f64)> = sqlx::query_as(
            "SELECT channel, credit_share FROM order_touchpoints WHERE order_key = $1 ORDER BY position",
        )
        .bind(&key)
        .fetch_all(&db)
        .await
        .unwrap();
        let expected_credits = [
            (channels[n % 4], 0.40),
            ("direct", 0.25),
            (channels[(n + 2) % 4], 0.35),
        ];
        assert_eq!(credits.len(), 3, "{key}: {credits:?}");
        for ((channel, share), (want_channel, want_share)) in credits.iter().zip(expected_credits) {
            assert_eq!(channel, want_channel, "{key}");
            assert!(
                (share - want_share).abs() < 1e-9,
                "{key}: {channel} {share}"
            );
        }
    }
    // Odoo: the last touch in its UTM fields, both touches and every credit in the note.
    let numbers: std::collections::BTreeMap<String, usize> = (1..=orders.len())
        .chain([900_001])
        .map(|n| (external_reference(&format!("sumeru:-:ord_{n}")), n))
        .collect();
    for order in odoo.orders() {
        let reference = &order.client_order_ref;
        let n = numbers[reference];
        assert_eq!(
            odoo.utm_of(&order),
            [
                None,
                Some("Newsletter".to_owned()),
                Some("Email".to_owned())
            ],
            "{reference}: the last touch has no campaign; its source and medium are Odoo's own"
        );
        let note = order.attribution.clone().unwrap_or_default();
        let touchpoints = format!(
            "Touchpoints: {} 40%; direct 25%; {} 35%",
            channels[n % 4],
            channels[(n + 2) % 4]
        );
        assert!(
            note.contains(&format!("First touch: {}", channels[n % 4]))
                && note.contains(&format!("Last touch: {}", channels[(n + 2) % 4]))
                && note.contains(&touchpoints),
            "{reference}: {note}"
        );
    }
    stop(&shutdown, stages).await;
    assert!(procs.crashed().is_empty(), "{}", procs.log("ingest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ebay_destination_passes_the_challenge_and_its_test_notification_is_verified() {
    use support::ebay_sim::EbaySim;
    use support::providers::ebay::{self as ebay_api, EbayApiSim};
    use support::signed::EBAY_TOKEN;

    let env = Env::mock();
    let keys = EbaySim::start().await;
    let sim = EbayApiSim::start(20.0, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/webhooks/ebay");
    let config = config_file(
        dir.path(),
        &env,
        &format!(
            r#"[ingest.sources.ebay]
verification_token = {{ env = "EBAY_VERIFICATION_TOKEN" }}
endpoint_url = "{url}"
client_id = "{keys_client}"
client_secret = {{ env = "EBAY_KEYS_SECRET" }}
api_base = "{keys}"

[api.ebay]
base_url = "{base}"
client_id = "{client}"
client_secret = {{ env = "EBAY_CLIENT_SECRET" }}
refresh_token = {{ env = "EBAY_REFRESH_TOKEN" }}
"#,
            keys_client = support::ebay_sim::CLIENT_ID,
            keys = keys.api_base(),
            base = sim.base_url(),
            client = ebay_api::CLIENT_ID,
        ),
    );
    let config_arg = config.to_str().unwrap();
    let mut vars = topic_env(&env.topics);
    vars.extend([
        ("EBAY_VERIFICATION_TOKEN".to_owned(), EBAY_TOKEN.to_owned()),
        (
            "EBAY_KEYS_SECRET".to_owned(),
            support::ebay_sim::CLIENT_SECRET.to_owned(),
        ),
        (
            "EBAY_CLIENT_SECRET".to_owned(),
            ebay_api::CLIENT_SECRET.to_owned(),
        ),
        (
            "EBAY_REFRESH_TOKEN".to_owned(),
            ebay_api::REFRESH_TOKEN.to_owned(),
        ),
    ]);
    let mut procs = Procs::new(dir.path());
    start_ingest(&mut procs, &config, port, &env, &vars).await;

    let args = [
        "--config",
        config_arg,
        "subscribe",
        "ebay",
        "--url",
        &url,
        "--alert-email",
        "ops@example.com",
        "--test",
    ];
    let output = orderbridge(&args, &vars).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("new subscription"), "{stdout}");
    let (destinations, subscriptions) = sim.notifications();
    assert_eq!(destinations.len(), 1, "{destinations:?}");
    assert_eq!(destinations[0]["deliveryConfig"]["endpoint"], url.as_str());
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    assert_eq!(subscriptions[0]["topicId"], "ORDER_CONFIRMATION");
    assert!(stdout.contains("test delivery requested"), "{stdout}");
    // eBay posts its test notification on its own time; ingest verifies its signature.
    wait_for("eBay's test notification delivered", DEADLINE, || async {
        sim.test_deliveries().first().copied()
    })
    .await;
    assert_eq!(sim.test_deliveries(), [200]);

    // Again: the destination and the subscription are found, not made twice.
    let output = orderbridge(&args[..args.len() - 1], &vars).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("existing subscription"), "{stdout}");
    let (destinations, subscriptions) = sim.notifications();
    assert_eq!((destinations.len(), subscriptions.len()), (1, 1));
    assert!(procs.crashed().is_empty(), "{}", procs.log("ingest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ordermentum_and_bigcommerce_webhooks_carry_what_ingest_checks() {
    use support::providers::bigcommerce::{self, BigCommerceSim};
    use support::providers::ordermentum::{self, OrdermentumSim};

    let env = Env::mock();
    let om = OrdermentumSim::start(20.0, 5).await;
    let bc = BigCommerceSim::start(20.0, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        &env,
        &format!(
            r#"[ingest.sources.ordermentum]
credentials = [{{ kind = "basic", id = "basic", username = "orderbridge", password = {{ env = "OM_PASSWORD" }} }}]

[ingest.sources.bigcommerce]
secrets = [{{ id = "bc", secret = {{ env = "BC_CLIENT_SECRET" }} }}]

[api.ordermentum]
base_url = "{om}"
api_key = {{ env = "OM_API_KEY" }}
supplier_id = "{supplier}"

[api.bigcommerce]
base_url = "{bc}"
store_hash = "{store}"
access_token = {{ env = "BC_ACCESS_TOKEN" }}
"#,
            om = om.base_url(),
            supplier = ordermentum::SUPPLIER_ID,
            bc = bc.base_url(),
            store = bigcommerce::STORE_HASH,
        ),
    );
    let config_arg = config.to_str().unwrap();
    let vars = vec![
        (
            "OM_PASSWORD".to_owned(),
            "delivery-password-0123".to_owned(),
        ),
        ("OM_API_KEY".to_owned(), ordermentum::API_KEY.to_owned()),
        ("BC_CLIENT_SECRET".to_owned(), "bc-client-secret".to_owned()),
        (
            "BC_ACCESS_TOKEN".to_owned(),
            bigcommerce::ACCESS_TOKEN.to_owned(),
        ),
    ];

    // Ordermentum: the supplier's order events, with the basic auth ingest checks.
    let om_url = "https://orders.example.com/webhooks/ordermentum";
    let args = [
        "--config",
        config_arg,
        "subscribe",
        "ordermentum",
        "--url",
        om_url,
        "--test",
    ];
    let output = orderbridge(&args, &vars).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("new subscription"), "{stdout}");
    assert!(stdout.contains("no test delivery"), "{stdout}");
    let webhooks = om.webhooks();
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    let hook = &webhooks[0];
    assert_eq!(hook["url"], om_url);
    assert_eq!(hook["entityId"], ordermentum::SUPPLIER_ID);
    assert_eq!(hook["entityType"], "supplier");
    assert_eq!(
        hook["events"],
        serde_json::json!(["order_created", "order_updated"])
    );
    assert_eq!(
        hook["authentication"]["basicAuth"]["username"],
        "orderbridge"
    );
    assert_eq!(
        hook["authentication"]["basicAuth"]["password"],
        "delivery-password-0123"
    );
    let output = orderbridge(&args, &vars).await;
    assert!(
        text(&output).0.contains("existing subscription"),
        "{:?}",
        text(&output)
    );
    assert_eq!(om.webhooks().len(), 1);

    // BigCommerce: every order event of the store; BigCommerce delivers only to https.
    let bc_url = "https://orders.example.com/webhooks/bigcommerce";
    let args = [
        "--config",
        config_arg,
        "subscribe",
        "bigcommerce",
        "--url",
        bc_url,
    ];
    let output = orderbridge(&args, &vars).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    let hooks = bc.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["scope"], "store/order/*");
    assert_eq!(hooks[0]["destination"], bc_url);
    let output = orderbridge(&args, &vars).await;
    assert!(
        text(&output).0.contains("existing subscription"),
        "{:?}",
        text(&output)
    );
    assert_eq!(bc.hooks().len(), 1);

    // A URL a provider would not deliver to, and a provider registered in its console.
    let output = orderbridge(
        &[
            "--config",
            config_arg,
            "subscribe",
            "bigcommerce",
            "--url",
            "http://orders.example.com/webhooks/bigcommerce",
        ],
        &vars,
    )
    .await;
    assert!(!output.status.success());
    assert!(
        text(&output).1.contains("--url must be https"),
        "{:?}",
        text(&output)
    );
    let output = orderbridge(
        &["--config", config_arg, "subscribe", "etsy", "--url", bc_url],
        &vars,
    )
    .await;
    assert!(!output.status.success());
    assert!(
        text(&output).1.contains("provider's own console"),
        "{:?}",
        text(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_test_follows_a_signed_sample_to_the_erp() {
    let env = Env::mock();
    let dir = tempfile::tempdir().unwrap();
    let group = unique("sink");
    let port = free_port();
    let body = |secret_var: &str| {
        format!(
            r#"[ingest]
listen = "127.0.0.1:{port}"

[ingest.sources.shopify]
secrets = [{{ id = "app", secret = {{ env = "{secret_var}" }} }}]

[sink]
group_id = "{group}"
"#
        )
    };
    let config = config_file(dir.path(), &env, &body("SHOPIFY_SECRET"));
    let mut vars = topic_env(&env.topics);
    vars.push(("SHOPIFY_SECRET".into(), "shpss_0123456789abcdef".into()));
    vars.push((
        "OTHER_SECRET".into(),
        "shpss_not_the_one_ingest_holds".into(),
    ));
    let mut procs = Procs::new(dir.path());
    start_ingest(&mut procs, &config, port, &env, &vars).await;
    let shutdown = CancellationToken::new();
    let processor_metrics = prometheus::Registry::new();
    let mut stages = vec![env.spawn_processor_in(
        &unique("processor"),
        Guarantee::ExactlyOnce,
        &processor_metrics,
        &shutdown,
    )];
    let (erp, db, _db_dir) = staging_db().await;
    let sink_metrics = prometheus::Registry::new();
    stages.push(env.spawn_sink(&group, erp, &sink_metrics, &shutdown));

    let output = orderbridge(
        &["--config", config.to_str().unwrap(), "send-test", "shopify"],
        &vars,
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    let passed: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        passed[1..],
        ["ingest", "raw", "canonical", "erp"],
        "{stdout}"
    );
    let order_key = stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .to_owned();
    let sku: String = sqlx::query_scalar("SELECT sku FROM order_lines WHERE order_key = $1")
        .bind(&order_key)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(sku, "OB-SEND-TEST");

    // Signed with a secret ingest does not hold: refused, and said why.
    let wrong = dir.path().join("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    let config = config_file(&wrong, &env, &body("OTHER_SECRET"));
    let output = orderbridge(
        &["--config", config.to_str().unwrap(), "send-test", "shopify"],
        &vars,
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("ingest     401"), "{stdout}");
    assert!(stderr.contains("refused the signature"), "{stderr}");
    stop(&shutdown, stages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shopify_order_topics_are_registered_through_graphql_once() {
    use support::providers::shopify::{self, ShopifySim};

    let env = Env::mock();
    let sim = ShopifySim::start(100.0, 1_000.0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        &env,
        &format!(
            r#"[api.shopify]
base_url = "{base}"
access_token = {{ env = "SHOPIFY_ACCESS_TOKEN" }}
"#,
            base = sim.base_url(),
        ),
    );
    let config_arg = config.to_str().unwrap();
    let vars = vec![(
        "SHOPIFY_ACCESS_TOKEN".to_owned(),
        shopify::ACCESS_TOKEN.to_owned(),
    )];
    let url = "https://orders.example.com/webhooks/shopify";
    let args = [
        "--config",
        config_arg,
        "subscribe",
        "shopify",
        "--account",
        shopify::SHOP,
        "--url",
        url,
        "--test",
    ];
    let output = orderbridge(&args, &vars).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("new subscription"), "{stdout}");
    assert!(stdout.contains("no test delivery"), "{stdout}");
    let made = sim.subscriptions();
    let topics: Vec<&str> = made.iter().map(|s| s["topic"].as_str().unwrap()).collect();
    assert_eq!(
        topics,
        [
            "ORDERS_CREATE",
            "ORDERS_UPDATED",
            "ORDERS_CANCELLED",
            "REFUNDS_CREATE"
        ]
    );
    assert!(made.iter().all(|s| s["uri"] == url), "{made:?}");

    // Again: every topic is already sent there; nothing new.
    let output = orderbridge(&args, &vars).await;
    assert!(
        text(&output).0.contains("existing subscription"),
        "{:?}",
        text(&output)
    );
    assert_eq!(sim.subscriptions().len(), 4);

    // A token Shopify refuses: a clear error, nothing registered, the token never printed.
    let wrong = vec![(
        "SHOPIFY_ACCESS_TOKEN".to_owned(),
        "shpat_revoked_token_value".to_owned(),
    )];
    let output = orderbridge(
        &[
            "--config",
            config_arg,
            "subscribe",
            "shopify",
            "--account",
            shopify::SHOP,
            "--url",
            "https://other.example.com/webhooks/shopify",
        ],
        &wrong,
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("Invalid API key or access token"),
        "{stderr}"
    );
    assert!(!stderr.contains("shpat_revoked") && !stdout.contains("shpat_revoked"));
    assert_eq!(sim.subscriptions().len(), 4);
}
