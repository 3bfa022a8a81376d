//! The compose stack's own configuration carries the README's order to the ERP.
//!
//! No Docker engine runs in CI, so this runs what `docker-compose.yml` runs the way it runs
//! it: the `orderbridge` binary as separate processes (`topics ensure`, then `ingest`,
//! `process` and `sink`), each with the configuration and the environment of the compose
//! file. Only the addresses differ, through the same `ORDERBRIDGE_*` overrides an operator
//! uses: Kafka is librdkafka's mock cluster (exactly-once, as in compose), the registry and
//! Business Central are the tests' simulators, and every listener is on 127.0.0.1. The
//! order is the README's: the Shopify fixture, signed with the stack's secret.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use rdkafka::mocking::MockCluster;
use sha2::Sha256;
use support::bc_sim::BcSim;
use support::procs::{free_port, ready, Procs};
use support::registry_sim::RegistrySim;
use support::{unique, wait_for};

const COMPOSE: &str = include_str!("../docker-compose.yml");

/// The lines of the block scalar that follows `header` (a line of the compose file), with
/// the block's indentation removed.
fn block_after(header: &str) -> String {
    let start = COMPOSE
        .find(header)
        .unwrap_or_else(|| panic!("docker-compose.yml has no `{}`", header.trim()));
    let lines = COMPOSE[start + header.len()..].lines();
    let mut block = Vec::new();
    let mut indent = None;
    for line in lines {
        if line.trim().is_empty() {
            block.push(String::new());
            continue;
        }
        let depth = line.len() - line.trim_start().len();
        let indent = *indent.get_or_insert(depth);
        if depth < indent {
            break;
        }
        block.push(line[indent..].to_owned());
    }
    block.join("\n")
}

/// The `configs: orderbridge:` TOML and the `x-orderbridge` environment of the compose file.
fn compose_configuration() -> (String, Vec<(String, String)>) {
    let config = block_after("  orderbridge:\n    content: |\n");
    let env = block_after("  environment: &orderbridge-env\n")
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (config, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_order_flows_through_the_compose_configuration() {
    let (config, compose_env) = compose_configuration();
    assert!(config.contains("[sink.erp]"), "{config}");
    let secret = compose_env
        .iter()
        .find(|(k, _)| k == "SHOPIFY_APP_SECRET")
        .map(|(_, v)| v.clone())
        .expect("the compose environment names SHOPIFY_APP_SECRET");
    let partitions: i32 = config
        .lines()
        .find_map(|l| l.strip_prefix("partitions = "))
        .expect("[topic_layout] partitions")
        .parse()
        .unwrap();

    let mock = MockCluster::new(1).unwrap();
    let suffix = unique("compose");
    let topics = orderbridge_schemas::Topics::with_suffix(&suffix);
    // The mock cluster cannot create topics over the protocol; `topics ensure` then finds
    // them and checks that they are co-partitioned, as it does on a real cluster.
    for topic in topics.all() {
        mock.create_topic(topic, partitions, 1).unwrap();
    }
    let registry = RegistrySim::start().await;
    let bc = BcSim::start(&["IPOD2008GREEN"]).await;

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("orderbridge.toml");
    std::fs::write(&config_path, &config).unwrap();
    let (ingest_port, processor_port, sink_port) = (free_port(), free_port(), free_port());
    let path = std::env::var("PATH").unwrap_or_default();
    let mut env: Vec<(String, String)> = compose_env
        .into_iter()
        .filter(|(k, _)| k != "ORDERBRIDGE_CONFIG")
        .collect();
    env.extend(
        [
            ("PATH", path),
            ("ORDERBRIDGE_CONFIG", config_path.display().to_string()),
            (
                "ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS",
                mock.bootstrap_servers(),
            ),
            ("ORDERBRIDGE_SCHEMA_REGISTRY__URL", registry.url.clone()),
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
                "ORDERBRIDGE_PROCESSOR__GROUP_ID",
                format!("processor-{suffix}"),
            ),
            ("ORDERBRIDGE_SINK__GROUP_ID", format!("sink-{suffix}")),
            (
                "ORDERBRIDGE_SINK__ERP__API_URL",
                format!("http://{}/v2.0", bc.addr),
            ),
            (
                "ORDERBRIDGE_SINK__ERP__TOKEN_URL",
                format!("http://{}/{{tenant}}/oauth2/v2.0/token", bc.addr),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );

    env.extend(support::pipeline::topic_env(&topics));

    // The topics job first, as compose orders it (service_completed_successfully).
    let topics_job = Command::new(env!("CARGO_BIN_EXE_orderbridge"))
        .args(["topics", "ensure"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        topics_job.status.success(),
        "topics ensure: {}",
        String::from_utf8_lossy(&topics_job.stderr)
    );
    assert!(String::from_utf8_lossy(&topics_job.stdout).contains("co-partitioned"));

    let mut stack = Procs::new(dir.path());
    stack.spawn("ingest", &["--json-logs", "ingest"], &env);
    stack.spawn("processor", &["--json-logs", "process"], &env);
    stack.spawn("sink", &["--json-logs", "sink"], &env);
    for (stage, port) in [
        ("ingest", ingest_port),
        ("processor", processor_port),
        ("sink", sink_port),
    ] {
        wait_for(
            &format!("{stage} ready (its compose healthcheck)"),
            Duration::from_secs(60),
            || async move { ready(port).then_some(()) },
        )
        .await;
    }

    // The README's curl: the Shopify fixture, signed with the stack's secret.
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/shopify/orders-create-basic/body.json"),
    )
    .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&body);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{ingest_port}/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", "example-store.myshopify.com")
        .header(
            "X-Shopify-Webhook-Id",
            "0b9a4a2e-6f1c-4c8e-9d2a-000000000001",
        )
        .header("X-Shopify-Hmac-Sha256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let order = wait_for(
        "the order in Business Central",
        Duration::from_secs(60),
        || {
            let bc = bc.clone();
            async move {
                bc.orders()
                    .into_iter()
                    .find(|o| o.external_document_number.ends_with("-450789469"))
            }
        },
    )
    .await;
    let lines = order.item_lines();
    assert_eq!(lines.len(), 1, "{order:?}");
    assert_eq!(lines[0]["lineObjectNumber"], "IPOD2008GREEN");
    assert_eq!(lines[0]["quantity"], 2);
    assert_eq!(order.currency_code, "USD");
    assert_eq!(bc.orders().len(), 1);
    println!(
        "compose configuration: {} created in Business Central as {}",
        order.external_document_number, order.number
    );
}
