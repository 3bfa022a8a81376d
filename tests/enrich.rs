//! The enrich stage end to end: a signed thin notification through ingest, the whole order
//! fetched from the provider's API simulator by `orderbridge enrich`, normalized, and in the
//! ERP's staging tables with its lines, totals and customer; a provider that fails for a
//! while (with the stage killed meanwhile) still gives the order once; an order the provider
//! does not have ends in the dead-letter topic with the provider's reason.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use orderbridge_processor::Guarantee;
use orderbridge_providers::ebay::EbayApiConfig;
use orderbridge_providers::{ApiConfig, PerAccount};
use orderbridge_runtime::Secret;
use support::ebay_sim::EbaySim;
use support::pipeline::{counter, enrich_config, post, router, test_apis, Env};
use support::providers::ebay::{self as ebay_api, EbayApiSim};
use support::signed::{cases, config, Case};
use support::sns_sim::SnsSim;
use support::{staging_db, unique, wait_for};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

/// One account's settings for every account of a source.
fn every_account<T>(settings: T) -> Option<PerAccount<T>> {
    Some(PerAccount {
        default: Some(settings),
        accounts: Default::default(),
    })
}

fn ebay_api(sim: &EbayApiSim) -> ApiConfig {
    ApiConfig {
        ebay: every_account(EbayApiConfig {
            base_url: sim.base_url(),
            token_url: None,
            client_id: ebay_api::CLIENT_ID.into(),
            client_secret: Secret::new(ebay_api::CLIENT_SECRET),
            refresh_token: Secret::new(ebay_api::REFRESH_TOKEN),
            scope: "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly".into(),
            rate_per_sec: Some(20.0),
            burst: Some(5),
            page_size: 200,
        }),
        ..ApiConfig::default()
    }
}

/// The signed delivery of `source`'s fixture, and the order id it names.
fn delivery(source: &str) -> (Case, String) {
    let case = cases().into_iter().find(|c| c.source == source).unwrap();
    let order_id = case.key.rsplit(':').next().unwrap().to_owned();
    (case, order_id)
}

/// A pipeline whose processor leaves `api`'s accounts to the enrich stage: ingest, enrich,
/// processor and a sink writing staging tables.
struct Pipeline {
    env: Env,
    ingest: axum::Router,
    db: sqlx::SqlitePool,
    enrich_metrics: prometheus::Registry,
    processor_metrics: prometheus::Registry,
    sink_metrics: prometheus::Registry,
    shutdown: CancellationToken,
    stages: Vec<tokio::task::JoinHandle<()>>,
    _keys: (SnsSim, EbaySim, tempfile::TempDir),
}

impl Pipeline {
    async fn start(api: ApiConfig) -> Self {
        Self::start_with(api, true).await
    }

    /// The pipeline, with the enrich stage in it or (`enrich: false`) left to the test.
    async fn start_with(api: ApiConfig, enrich: bool) -> Self {
        let env = Env::mock();
        let (sns, keys) = (SnsSim::start().await, EbaySim::start().await);
        let ingest = router(&env, &config(&keys), &sns.client());
        let shutdown = CancellationToken::new();
        let mut processor = env.processor_config(&unique("processor"), Guarantee::ExactlyOnce);
        processor.enrichment = orderbridge_providers::completion::Enrichment::new(api.clone());
        let processor_metrics = prometheus::Registry::new();
        let mut stages = vec![env.spawn_processor_with(&processor, &processor_metrics, &shutdown)];
        let enrich_metrics = prometheus::Registry::new();
        if enrich {
            let (apis, metrics) = test_apis(api, &enrich_metrics);
            stages.push(env.spawn_enrich(
                &enrich_config(&unique("enrich")),
                apis,
                metrics,
                &shutdown,
            ));
        }
        let (erp, db, dir) = staging_db().await;
        let sink_metrics = prometheus::Registry::new();
        stages.push(env.spawn_sink(&unique("sink"), erp, &sink_metrics, &shutdown));
        Self {
            env,
            ingest,
            db,
            enrich_metrics,
            processor_metrics,
            sink_metrics,
            shutdown,
            stages,
            _keys: (sns, keys, dir),
        }
    }

    /// Stops every stage and waits for them, before the broker goes.
    async fn stop(mut self) {
        self.shutdown.cancel();
        for stage in self.stages.drain(..) {
            stage.await.unwrap();
        }
    }

    async fn deliver(&self, case: &Case) {
        let (status, text) = post(&self.ingest, &case.path, &case.headers, &case.body).await;
        assert_eq!(status, StatusCode::OK, "{}: {text}", case.source);
    }

    /// The staging row of `order_key`: (total, currency, customer email, lines).
    async fn order(&self, order_key: &str) -> (String, String, Option<String>, i64) {
        wait_for(&format!("{order_key} in the ERP"), DEADLINE, || async {
            sqlx::query_as::<_, (String, String, Option<String>, i64)>(
                "SELECT total, currency, customer_email, \
                 (SELECT COUNT(*) FROM order_lines l WHERE l.order_key = o.order_key) \
                 FROM orders o WHERE o.order_key = $1",
            )
            .bind(order_key)
            .fetch_optional(&self.db)
            .await
            .unwrap()
        })
        .await
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What the ERP must hold of a completed order.
struct Expected {
    total: String,
    currency: &'static str,
    email: Option<String>,
    lines: i64,
}

/// The signed thin notification `case` goes through ingest and `orderbridge enrich` (with
/// `api`) to the staging tables, where its order is `expected`: once, created from the
/// provider's whole order.
async fn completes(case: &Case, api: ApiConfig, expected: Expected) {
    let source = case.source;
    let pipeline = Pipeline::start(api).await;
    pipeline.deliver(case).await;
    let (total, currency, email, lines) = pipeline.order(case.key).await;
    assert_eq!(total, expected.total, "{source}: total");
    assert_eq!(currency, expected.currency, "{source}: currency");
    assert_eq!(email, expected.email, "{source}: customer email");
    assert_eq!(lines, expected.lines, "{source}: lines");
    // Once in effect: the ERP created the order once. The stages' own counters count
    // attempts (a record redelivered after a rebalance is fetched or read again, and the
    // duplicate filter and the sink's idempotence absorb it), so they are only checked to
    // show the path the order took: through the enrich stage, never as a partial order.
    wait_for(&format!("{source}: created once"), DEADLINE, || async {
        (counter(
            &pipeline.sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")],
        ) == 1)
            .then_some(())
    })
    .await;
    assert_eq!(
        counter(
            &pipeline.sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "updated")],
        ),
        0,
        "{source}: nothing rewrote the order"
    );
    // A stage counts a record once its output is committed, so a reader downstream can act
    // on the output a moment before the count moves: wait for the counts, within a deadline.
    wait_for(
        &format!("{source}: completed by the enrich stage"),
        DEADLINE,
        || async {
            (counter(
                &pipeline.enrich_metrics,
                "orderbridge_enrich_records_total",
                &[("source", source), ("outcome", "enriched")],
            ) >= 1)
                .then_some(())
        },
    )
    .await;
    wait_for(
        &format!("{source}: the notification itself left to the enrich stage"),
        DEADLINE,
        || async {
            (counter(
                &pipeline.processor_metrics,
                "orderbridge_processor_records_total",
                &[("source", source), ("outcome", "awaiting_enrichment")],
            ) >= 1)
                .then_some(())
        },
    )
    .await;
    pipeline.stop().await;
}

/// A decimal string with two places.
fn cents(value: f64) -> String {
    format!("{value:.2}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ebay_order_confirmation_becomes_the_whole_order_in_the_erp() {
    let sim = EbayApiSim::start(20.0, 5).await;
    let (case, order_id) = delivery("ebay");
    let order = ebay_api::order(&order_id, 3, chrono::Utc::now());
    sim.put(order.clone());
    let expected = Expected {
        total: order["pricingSummary"]["total"]["value"]
            .as_str()
            .unwrap()
            .to_owned(),
        currency: "USD",
        email: order["buyer"]["buyerRegistrationAddress"]["email"]
            .as_str()
            .map(str::to_owned),
        lines: 1,
    };
    completes(&case, ebay_api(&sim), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_amazon_order_change_becomes_the_whole_order_in_the_erp() {
    use orderbridge_providers::amazon::AmazonApiConfig;
    use support::providers::amazon::{self, AmazonSim};
    let sim = AmazonSim::start(20.0, 10).await;
    let (case, order_id) = delivery("amazon-sns");
    let (order, items) = amazon::order(&order_id, 2, chrono::Utc::now());
    sim.put(order.clone(), items);
    let api = ApiConfig {
        amazon_sns: every_account(AmazonApiConfig {
            endpoint: sim.base_url(),
            token_url: format!("{}/auth/o2/token", sim.base_url()),
            client_id: amazon::CLIENT_ID.into(),
            client_secret: Secret::new(amazon::CLIENT_SECRET),
            refresh_token: Secret::new(amazon::REFRESH_TOKEN),
            marketplace_ids: vec![amazon::MARKETPLACE_ID.into()],
            restricted_data: true,
            rate_per_sec: Some(20.0),
            burst: Some(10),
        }),
        ..ApiConfig::default()
    };
    let expected = Expected {
        total: order["OrderTotal"]["Amount"].as_str().unwrap().to_owned(),
        currency: "USD",
        // With a restricted data token, the buyer's email comes with the order.
        email: order["BuyerInfo"]["BuyerEmail"].as_str().map(str::to_owned),
        lines: 2,
    };
    completes(&case, api, expected).await;
    assert_eq!(
        sim.rdt_issued(),
        1,
        "one restricted data token for the buyer's details"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_walmart_purchase_order_becomes_the_whole_order_in_the_erp() {
    use orderbridge_providers::walmart::WalmartApiConfig;
    use support::providers::walmart::{self, WalmartSim};
    let sim = WalmartSim::start(20.0, 10).await;
    let (case, order_id) = delivery("walmart");
    let order = walmart::order(&order_id, 3, chrono::Utc::now());
    sim.put(order.clone());
    let api = ApiConfig {
        walmart: every_account(WalmartApiConfig {
            base_url: sim.base_url(),
            client_id: walmart::CLIENT_ID.into(),
            client_secret: Secret::new(walmart::CLIENT_SECRET),
            service_name: "Walmart Marketplace".into(),
            rate_per_sec: Some(20.0),
            burst: Some(10),
        }),
        ..ApiConfig::default()
    };
    // Walmart states no total: the unit price times the units, shipping, and the taxes.
    let line = &order["orderLines"]["orderLine"][0];
    let charge = |i: usize| &line["charges"]["charge"][i];
    let amount = |i: usize| charge(i)["chargeAmount"]["amount"].as_f64().unwrap();
    let tax = |i: usize| charge(i)["tax"]["taxAmount"]["amount"].as_f64().unwrap();
    let units: f64 = line["orderLineQuantity"]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = Expected {
        total: cents(amount(0) * units + tax(0) + amount(1) + tax(1)),
        currency: "USD",
        email: order["customerEmailId"].as_str().map(str::to_owned),
        lines: 1,
    };
    completes(&case, api, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flipkart_shipment_event_becomes_the_whole_order_in_the_erp() {
    use orderbridge_providers::flipkart::FlipkartApiConfig;
    use support::providers::flipkart::{self, FlipkartSim};
    let sim = FlipkartSim::start(20.0, 10).await;
    // A thin event: `shipment_packed` names only its shipment. Flipkart's login header does
    // not sign the body, so the signed case's headers carry it.
    let (mut case, _) = delivery("flipkart");
    let (_, body) = support::fixture("flipkart", "shipment-packed-unsupported");
    case.body = body;
    case.key = "flipkart:-:OD108833803073636000";
    let (shipment, details) = flipkart::shipment(
        "d133588f-b0ac-443b-99b4-7ac8648a0f89",
        "OD108833803073636000",
        3,
        chrono::Utc::now(),
    );
    sim.put(shipment.clone(), details);
    let api = ApiConfig {
        flipkart: every_account(FlipkartApiConfig {
            base_url: format!("{}/sellers", sim.base_url()),
            token_url: format!("{}/oauth-service/oauth/token", sim.base_url()),
            app_id: flipkart::APP_ID.into(),
            app_secret: Secret::new(flipkart::APP_SECRET),
            rate_per_sec: Some(20.0),
            burst: Some(10),
        }),
        ..ApiConfig::default()
    };
    let total = shipment["orderItems"][0]["priceComponents"]["totalPrice"]
        .as_f64()
        .unwrap();
    let expected = Expected {
        total: cents(total),
        currency: "INR",
        email: None,
        lines: 1,
    };
    completes(&case, api, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_the_provider_does_not_have_is_dead_lettered_with_its_reason() {
    let sim = EbayApiSim::start(20.0, 5).await;
    let (case, order_id) = delivery("ebay");
    let pipeline = Pipeline::start(ebay_api(&sim)).await;
    pipeline.deliver(&case).await;
    let dead = pipeline
        .env
        .read(&pipeline.env.topics.dlq, 1, DEADLINE)
        .await;
    let header = |name: &str| support::header(&dead[0], name).unwrap_or_default();
    assert_eq!(header("ob-dlq-stage"), "enrich");
    assert_eq!(header("ob-dlq-error-class"), "provider-not-found");
    assert!(
        header("ob-dlq-reason").contains("404"),
        "{}",
        header("ob-dlq-reason")
    );
    assert_eq!(header("ob-dlq-original-topic"), pipeline.env.topics.raw);
    assert_eq!(header("ob-event-id"), case.event_id.unwrap());
    assert_eq!(
        rdkafka::Message::payload(&dead[0]).unwrap(),
        case.body.as_slice(),
        "the notification, untouched"
    );
    // The processor left it to the enrich stage (counted once its batch committed, which
    // may be a moment after enrich dead-lettered it), and nothing of it reached the ERP.
    wait_for("the processor to leave it to enrich", DEADLINE, || async {
        (counter(
            &pipeline.processor_metrics,
            "orderbridge_processor_records_total",
            &[("source", "ebay"), ("outcome", "awaiting_enrichment")],
        ) >= 1)
            .then_some(())
    })
    .await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE source_order_id = $1")
        .bind(&order_id)
        .fetch_one(&pipeline.db)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    pipeline.stop().await;
}

/// The end offsets of `topic`, summed.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_down_for_a_while_and_the_stage_killed_meanwhile_still_gives_the_order_once() {
    use support::procs::{free_port, Procs};
    let sim = EbayApiSim::start(20.0, 5).await;
    let (case, order_id) = delivery("ebay");
    sim.put(ebay_api::order(&order_id, 2, chrono::Utc::now()));
    let pipeline = Pipeline::start_with(ebay_api(&sim), false).await;
    // `orderbridge enrich` as a process, as it runs in production.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orderbridge.toml");
    let group = unique("enrich");
    std::fs::write(
        &config,
        format!(
            r#"[kafka]
bootstrap_servers = "{bootstrap}"
properties = {{ "session.timeout.ms" = "6000" }}

[enrich]
group_id = "{group}"
retry_group_id = "{group}-retry"
retry_delays_secs = [1, 2]
fetch_wait_max_ms = 50
listen = "127.0.0.1:{port}"

[api.ebay]
base_url = "{base}"
client_id = "{client}"
client_secret = {{ env = "EBAY_CLIENT_SECRET" }}
refresh_token = {{ env = "EBAY_REFRESH_TOKEN" }}
rate_per_sec = 20
"#,
            bootstrap = pipeline.env.kafka.bootstrap_servers,
            port = free_port(),
            base = sim.base_url(),
            client = ebay_api::CLIENT_ID,
        ),
    )
    .unwrap();
    let mut vars = support::pipeline::topic_env(&pipeline.env.topics);
    vars.push(("EBAY_CLIENT_SECRET".into(), ebay_api::CLIENT_SECRET.into()));
    vars.push(("EBAY_REFRESH_TOKEN".into(), ebay_api::REFRESH_TOKEN.into()));
    vars.push(("RUST_LOG".into(), "info".into()));
    let mut procs = Procs::new(dir.path());
    // The provider is down (503, Retry-After) for twenty seconds.
    sim.core.down_for(Duration::from_secs(20));
    procs.spawn(
        "enrich",
        &["--config", config.to_str().unwrap(), "enrich"],
        &vars,
    );
    pipeline.deliver(&case).await;
    wait_for(
        "the failed completion waiting in the retry topic",
        DEADLINE,
        || async {
            (records_in(&pipeline.env, &pipeline.env.topics.enrich_retry) >= 1).then_some(())
        },
    )
    .await;
    // Killed while the provider is still down, and started again.
    procs.kill("enrich");
    assert!(
        sim.core.faults.lock().unwrap().down_until.is_some(),
        "the provider is still down"
    );
    procs.restart("enrich");
    pipeline.order(case.key).await;
    let failed = support::providers::core::Core::count(&sim.core.counts.failed);
    assert!(failed >= 2, "the provider refused {failed} requests");
    // Once: created once, and one canonical event.
    wait_for("the sink's count", DEADLINE, || async {
        (counter(
            &pipeline.sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")],
        ) == 1)
            .then_some(())
    })
    .await;
    assert_eq!(
        records_in(&pipeline.env, &pipeline.env.topics.canonical),
        1,
        "one canonical event"
    );
    assert!(
        procs.log("enrich").contains("trying again later"),
        "{}",
        procs.log("enrich")
    );
    procs.kill("enrich");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_etsy_order_event_becomes_the_whole_receipt_in_the_erp() {
    use orderbridge_providers::etsy::EtsyApiConfig;
    use support::providers::etsy::{self, EtsySim};
    let sim = EtsySim::start(10.0, 10).await;
    let (case, order_id) = delivery("etsy");
    let receipt = etsy::receipt(order_id.parse().unwrap(), 2, chrono::Utc::now());
    sim.put(receipt.clone());
    let api = ApiConfig {
        etsy: every_account(EtsyApiConfig {
            base_url: sim.base_url(),
            token_url: None,
            keystring: etsy::KEYSTRING.into(),
            shared_secret: Secret::new(etsy::SHARED_SECRET),
            refresh_token: Secret::new(etsy::REFRESH_TOKEN),
            rate_per_sec: Some(10.0),
            burst: Some(10),
        }),
        ..ApiConfig::default()
    };
    let money = &receipt["grandtotal"];
    let total = money["amount"].as_f64().unwrap() / money["divisor"].as_f64().unwrap();
    let expected = Expected {
        total: cents(total),
        currency: "USD",
        email: receipt["buyer_email"].as_str().map(str::to_owned),
        lines: receipt["transactions"].as_array().unwrap().len() as i64,
    };
    completes(&case, api, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tiktok_shop_status_change_becomes_the_whole_order_in_the_erp() {
    use orderbridge_providers::tiktok_shop::TiktokShopApiConfig;
    use support::providers::tiktok_shop::{self, TikTokShopSim};
    let sim = TikTokShopSim::start(20.0, 10).await;
    let (case, order_id) = delivery("tiktok-shop");
    let order = tiktok_shop::order(&order_id, 3, chrono::Utc::now());
    sim.put(order.clone());
    let api = ApiConfig {
        tiktok_shop: every_account(TiktokShopApiConfig {
            base_url: sim.base_url(),
            auth_url: sim.base_url(),
            app_key: tiktok_shop::APP_KEY.into(),
            app_secret: Secret::new(tiktok_shop::APP_SECRET),
            refresh_token: Secret::new(tiktok_shop::REFRESH_TOKEN),
            shop_cipher: tiktok_shop::SHOP_CIPHER.into(),
            rate_per_sec: Some(20.0),
            burst: Some(10),
        }),
        ..ApiConfig::default()
    };
    let expected = Expected {
        total: order["payment"]["total_amount"]
            .as_str()
            .unwrap()
            .to_owned(),
        currency: "USD",
        email: order["buyer_email"].as_str().map(str::to_owned),
        // Three units of one SKU, listed one per unit: one line.
        lines: 1,
    };
    completes(&case, api, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ordermentum_order_event_becomes_the_whole_order_in_the_erp() {
    use orderbridge_providers::ordermentum::OrdermentumApiConfig;
    use support::providers::ordermentum::{self, OrdermentumSim};
    let sim = OrdermentumSim::start(20.0, 10).await;
    let (case, order_id) = delivery("ordermentum");
    let order = ordermentum::order(&order_id, 2, chrono::Utc::now());
    sim.put(order.clone());
    let api = ApiConfig {
        ordermentum: every_account(OrdermentumApiConfig {
            base_url: sim.base_url(),
            api_key: Secret::new(ordermentum::API_KEY),
            supplier_id: Some(ordermentum::SUPPLIER_ID.into()),
            rate_per_sec: Some(20.0),
            burst: Some(10),
        }),
        ..ApiConfig::default()
    };
    let expected = Expected {
        total: cents(order["total"].as_f64().unwrap()),
        currency: "AUD",
        email: order["retailer"]["email"].as_str().map(str::to_owned),
        lines: order["lineItems"].as_array().unwrap().len() as i64,
    };
    completes(&case, api, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bigcommerce_order_webhook_becomes_the_whole_order_in_the_erp() {
    use orderbridge_providers::bigcommerce::BigcommerceApiConfig;
    use support::providers::bigcommerce::{self, BigCommerceSim};
    let sim = BigCommerceSim::start(20.0, 10).await;
    let (case, order_id) = delivery("bigcommerce");
    let (order, products) = bigcommerce::order(order_id.parse().unwrap(), 2, chrono::Utc::now());
    sim.put(order.clone(), products.clone());
    let api = ApiConfig {
        bigcommerce: every_account(BigcommerceApiConfig {
            base_url: sim.base_url(),
            store_hash: None,
            access_token: Secret::new(bigcommerce::ACCESS_TOKEN),
            rate_per_sec: Some(20.0),
            burst: Some(10),
        }),
        ..ApiConfig::default()
    };
    let total: f64 = order["total_inc_tax"].as_str().unwrap().parse().unwrap();
    let expected = Expected {
        total: cents(total),
        currency: "USD",
        email: order["billing_address"]["email"]
            .as_str()
            .map(str::to_owned),
        lines: products.len() as i64,
    };
    completes(&case, api, expected).await;
}
