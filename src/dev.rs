//! `orderbridge dev`: the whole pipeline in one process, nothing to install.
//!
//! librdkafka's in-process mock cluster is the broker (or `--brokers` for a real one), the
//! embedded registry holds the schema, ingest listens on 127.0.0.1:8080 and serves every
//! source with the development secrets of `orderbridge_ingest::development` (or the sources of `--config`), and
//! the sink writes SQLite staging tables to `./orderbridge-dev.db`. On start it prints the
//! bootstrap address, the topics, the URL of every source and a ready-to-paste `curl` with a
//! signed Shopify order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use std::path::Path;

use orderbridge_ingest::verify::shopify::sign;
use orderbridge_ingest::IngestConfig;
use orderbridge_processor::{Guarantee, ProcessorConfig};
use orderbridge_runtime::{ensure_topics, KafkaSettings, Ops, TopicLayout};
use orderbridge_schemas::{EmbeddedRegistry, OrderEventCodec, Source, Topics};
use orderbridge_sink::erp::sql::{SqlConfig, SqlErp};
use orderbridge_sink::{ErpConfig, SinkConfig};
use rdkafka::mocking::MockCluster;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use orderbridge_ingest::development::{self, how_to_sign, DEV_SECRET};

const DEV_SHOP: &str = "dev-store.myshopify.com";
const DEV_PARTITIONS: i32 = 3;
/// How long the processor's and the sink's fetches wait. The mock broker holds an empty
/// fetch for the whole wait and answers records written meanwhile only after it, so each
/// consuming stage adds half of this on average. Measured with bench/e2e.sh on 2 cores:
/// 20 ms gave a webhook-to-row p50 of 36 ms and 5 % of a core while idle, 10 ms 25 ms and
/// 7 %, 5 ms 20 ms and 8 %.
const DEV_FETCH_WAIT_MS: u64 = 10;

/// Options of `orderbridge dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Use this Kafka (`HOST:PORT`) instead of the embedded broker.
    #[arg(long)]
    brokers: Option<String>,
    /// Where ingest listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The SQLite file the sink writes.
    #[arg(long, default_value = "./orderbridge-dev.db")]
    db: PathBuf,
    /// Process at-least-once instead of exactly-once (for brokers without transactions).
    #[arg(long)]
    at_least_once: bool,
    /// Where the embedded schema registry answers Confluent's read API, for stock clients
    /// reading the canonical topic.
    #[arg(long, default_value = "127.0.0.1:8081")]
    registry_listen: SocketAddr,
}

/// Runs everything until `shutdown`; `config` (the global `--config`) replaces the
/// development sources with the file's `ingest.sources`.
pub async fn run(
    args: &DevArgs,
    config: Option<&Path>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topics = Topics::default();
    // The mock cluster lives as long as this function: it is the broker.
    let mut _mock = None;
    let bootstrap = match &args.brokers {
        Some(brokers) => {
            let kafka = KafkaSettings::new(brokers.clone());
            let layout = TopicLayout {
                partitions: DEV_PARTITIONS,
                replication: 1,
                ..TopicLayout::default()
            };
            ensure_topics(&kafka, &topics, layout)
                .await
                .context("creating topics")?;
            brokers.clone()
        }
        None => {
            let mock = MockCluster::new(1).context("starting the embedded broker")?;
            for topic in topics.all() {
                mock.create_topic(topic, DEV_PARTITIONS, 1)?;
            }
            let bootstrap = mock.bootstrap_servers();
            _mock = Some(mock);
            bootstrap
        }
    };
    let kafka = KafkaSettings::new(bootstrap.clone());
    let registry = Arc::new(EmbeddedRegistry::new());
    let codec = Arc::new(OrderEventCodec::new(
        Arc::clone(&registry) as Arc<dyn orderbridge_schemas::SchemaRegistry>,
        &topics.canonical,
    )?);
    // Registered now, so that a client asking the registry before the first event finds it.
    codec
        .schema_id()
        .await
        .context("registering the canonical schema")?;
    let registry_listener = TcpListener::bind(args.registry_listen)
        .await
        .with_context(|| format!("binding {} (is another dev running?)", args.registry_listen))?;

    let mut ingest = IngestConfig {
        listen: args.listen,
        ..IngestConfig::default()
    };
    // With --config, its sources and the processor's mappings for them; else the
    // development sources (no mappings: the generic senders' records are dead-lettered).
    let (sources, mappings) = match config {
        Some(path) => {
            let file = crate::config::Config::load(Some(path))?;
            (file.ingest.sources, file.processor.mappings)
        }
        None => (
            development::sources(&format!("http://{}", args.listen)),
            Default::default(),
        ),
    };
    ingest.sources = sources;
    let routes = ingest.sources.routes();
    let developing = config.is_none();
    let processor = ProcessorConfig {
        guarantee: if args.at_least_once {
            Guarantee::AtLeastOnce
        } else {
            Guarantee::ExactlyOnce
        },
        group_id: "orderbridge-dev-processor".into(),
        batch_linger_ms: 5,
        fetch_wait_max_ms: DEV_FETCH_WAIT_MS,
        mappings,
        ..ProcessorConfig::default()
    };
    let sql = SqlConfig {
        url: format!("sqlite://{}", args.db.display()),
    };
    let erp = Arc::new(
        SqlErp::connect(&sql)
            .await
            .context("opening the dev database")?,
    );
    let sink = SinkConfig {
        group_id: "orderbridge-dev-sink".into(),
        erp: ErpConfig::Sql(sql),
        fetch_wait_max_ms: DEV_FETCH_WAIT_MS,
        ..SinkConfig::default()
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {} (is another dev running?)", args.listen))?;

    // One registry for all three stages, served by ingest's `/metrics`: the stages' metric
    // families have distinct names, so they do not collide.
    let metrics = prometheus::Registry::new();
    let stage_ops = || Ops {
        registry: metrics.clone(),
        ..Ops::new(None)
    };
    let (processor_ops, sink_ops) = (stage_ops(), stage_ops());
    let ready = (
        Arc::clone(&processor_ops.health),
        Arc::clone(&sink_ops.health),
    );
    let mut tasks = JoinSet::new();
    {
        let stop = shutdown.clone();
        let app = crate::registry_api::router(Arc::clone(&registry));
        tasks.spawn(async move {
            axum::serve(registry_listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("schema registry API")
        });
    }
    {
        let (kafka, topics, stop) = (kafka.clone(), topics.clone(), shutdown.clone());
        tasks.spawn(async move {
            orderbridge_ingest::run_with_registry(&ingest, &kafka, &topics, listener, metrics, stop)
                .await
                .context("ingest")
        });
    }
    {
        let (kafka, topics, codec, stop) = (
            kafka.clone(),
            topics.clone(),
            Arc::clone(&codec),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            orderbridge_processor::run(&processor, &kafka, &topics, codec, processor_ops, stop)
                .await
                .context("processor")
        });
    }
    {
        let (kafka, topics, stop) = (kafka.clone(), topics.clone(), shutdown.clone());
        tasks.spawn(async move {
            orderbridge_sink::run(&sink, &kafka, &topics, codec, erp, sink_ops, stop)
                .await
                .context("sink")
        });
    }

    // Invite the first webhook only once processor and sink have joined their groups, so
    // that it flows straight through instead of waiting for a rebalance.
    let joined = async {
        while !(ready.0.is_ready() && ready.1.is_ready()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        () = joined => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("processor or sink has not joined its consumer group after 30 s");
        }
        () = shutdown.cancelled() => {}
    }
    print_banner(args, &bootstrap, &topics, &routes, developing);

    // Run until Ctrl-C, or until a service stops on its own (an error), which stops the rest.
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.context("a service panicked").and_then(|r| r);
        if let Err(err) = outcome {
            tracing::error!(error = %format!("{err:#}"), "service failed; stopping dev");
            result = result.and(Err(err));
        }
        shutdown.cancel();
    }
    result
}

fn print_banner(
    args: &DevArgs,
    bootstrap: &str,
    topics: &Topics,
    routes: &[(Source, Option<String>)],
    developing: bool,
) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let order_id = 5_000_000_000_000 + now.as_secs();
    let body = sample_order(
        order_id,
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let signature = sign(DEV_SECRET, body.as_bytes());
    let broker = if args.brokers.is_some() {
        "Kafka"
    } else {
        "embedded mock Kafka"
    };
    let mut urls = String::new();
    for (source, account) in routes {
        let path = match account {
            Some(account) => format!("/webhooks/{source}/{account}"),
            None => format!("/webhooks/{source}"),
        };
        let url = format!("http://{}{path}", args.listen);
        let how = if developing {
            how_to_sign(source.as_str())
        } else {
            "as configured".to_owned()
        };
        urls.push_str(&format!("\n    {url:<58} {how}"));
    }
    println!(
        "\nOrderBridge dev is running.\n\
         \n  broker:    {bootstrap} ({broker})\
         \n  topics:    {}\
         \n  registry:  http://{} (Confluent read API, for Avro clients of the canonical topic)\
         \n  sink:      SQLite staging tables in {}\
         \n  metrics:   http://{}/metrics (ingest, processor and sink)\n\
         \n  webhooks (POST):{urls}",
        topics.all().join(", "),
        args.registry_listen,
        args.db.display(),
        args.listen,
    );
    if !developing {
        return;
    }
    println!(
        "\nstandard-webhooks and custom records are read through [processor.mappings] (see \
         `orderbridge config example`);\nwithout a mapping they are kept in the dead-letter \
         topic as `unsupported`, replayable.\n\
         \nSend a signed Shopify order:\n\n\
         curl -sS -w '%{{http_code}}\\n' -X POST http://{}/webhooks/shopify \\\n  \
         -H 'Content-Type: application/json' \\\n  \
         -H 'X-Shopify-Topic: orders/create' \\\n  \
         -H 'X-Shopify-Shop-Domain: {DEV_SHOP}' \\\n  \
         -H 'X-Shopify-Webhook-Id: dev-{order_id}' \\\n  \
         -H 'X-Shopify-Hmac-Sha256: {signature}' \\\n  \
         --data-binary '{body}'\n\
         \nThen: sqlite3 {} 'SELECT order_key, status, total, currency FROM orders'\n\
         \nFollow it, and see what was dead-lettered and why:\n\n  \
         ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS={bootstrap} orderbridge trace {order_id}\n  \
         ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS={bootstrap} orderbridge dlq list\n",
        args.listen,
        args.db.display(),
    );
}

/// A realistic `orders/create` body (compact, no single quotes, so it pastes into a shell).
fn sample_order(id: u64, now: &str) -> String {
    serde_json::json!({
        "id": id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
        "name": "#1001",
        "email": "bob@example.com",
        "created_at": now,
        "updated_at": now,
        "currency": "USD",
        "presentment_currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": null,
        "total_price": "409.94",
        "subtotal_price": "398.00",
        "total_tax": "11.94",
        "total_discounts": "0.00",
        "total_shipping_price_set": {"shop_money": {"amount": "0.00", "currency_code": "USD"}},
        "customer": {"id": 207119551, "email": "bob@example.com", "first_name": "Bob", "last_name": "Norman"},
        "line_items": [{
            "id": 466157049, "variant_id": 39072856, "sku": "IPOD2008GREEN",
            "title": "IPod Nano - 8gb", "quantity": 2, "price": "199.00", "total_discount": "0.00",
            "tax_lines": [{"title": "State tax", "rate": 0.03, "price": "11.94"}]
        }],
        "shipping_address": {
            "first_name": "Bob", "last_name": "Norman", "address1": "Chestnut Street 92",
            "city": "Louisville", "province_code": "KY", "zip": "40202", "country_code": "US"
        }
    })
    .to_string()
}
