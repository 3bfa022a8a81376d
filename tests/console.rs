//! The console in a real browser: `orderbridge console` as its own process, over a pipeline
//! with an order dead-lettered for an item the ERP did not know and fixed by a mapping change;
//! `tests/console/console.mjs` drives Debian's chromium through it (a wrong password gets
//! nothing; sign in, see the dead letter and its reason, replay it, see it delivered) and saves
//! a screenshot of each page in `target/console-screenshots/` (the README's are copies).
//!
//! `tests/run.sh` installs chromium and playwright-core and sets
//! `ORDERBRIDGE_REQUIRE_BROWSER=1`; without them, the test says so and passes only when that
//! variable is unset.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use orderbridge_processor::Guarantee;
use support::bc_sim::BcSim;
use support::pipeline::{post_shopify, stop, topic_env, Env};
use support::procs::{free_port, Procs};
use support::{fixture, unique, wait_for};
use tokio_util::sync::CancellationToken;

const ERP_ITEM: &str = "1896-S";
const OPERATOR: &str = "ops";
const PASSWORD: &str = "console-test-password";

/// The browser and the driver, or why they are missing.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("no chromium (Debian's package `chromium`)")?;
    let driver = root.join("tests/console/node_modules/playwright-core");
    if !driver.exists() {
        return Err("no playwright-core (npm ci --prefix tests/console)".into());
    }
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|_| "no node")?;
    Ok((chromium, root.join("tests/console/console.mjs")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_replays_a_dead_letter_from_the_console_in_a_browser() {
    let (chromium, script) = match browser() {
        Ok(found) => found,
        Err(missing) => {
            assert!(
                std::env::var("ORDERBRIDGE_REQUIRE_BROWSER").is_err(),
                "ORDERBRIDGE_REQUIRE_BROWSER is set but: {missing}"
            );
            eprintln!("skipped: {missing} (tests/run.sh installs them)");
            return;
        }
    };
    let env = Env::mock();
    let sim = BcSim::start(&[ERP_ITEM]).await;
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::ExactlyOnce, &shutdown);
    let group = unique("sink");
    let first = CancellationToken::new();
    let sink = env.spawn_sink(
        &group,
        sim.client_with_items(&[]),
        &prometheus::Registry::new(),
        &first,
    );
    let (headers, body) = fixture("shopify", "orders-create-basic");
    let ingest = env.ingest();
    assert_eq!(post_shopify(&ingest, &headers, &body, None).await, 200);
    // And one webhook that is not Shopify's: refused, counted on the failures page.
    assert_eq!(
        post_shopify(
            &ingest,
            &headers,
            &body,
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        )
        .await,
        401
    );
    drop(ingest);
    let dead = env
        .read(&env.topics.dlq, 1, Duration::from_secs(60))
        .await
        .remove(0);
    let dead_letter = {
        use rdkafka::Message;
        format!("{}:{}", dead.partition(), dead.offset())
    };
    // The mapping is fixed; the dead letter waits for an operator.
    stop(&first, vec![sink]).await;
    let sink = env.spawn_sink(
        &group,
        sim.client_with_items(&[("IPOD2008GREEN", ERP_ITEM)]),
        &prometheus::Registry::new(),
        &shutdown,
    );

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("orderbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[console]\nlisten = \"127.0.0.1:{port}\"\nusers = [{{ name = \"{OPERATOR}\", password = {{ env = \"OB_CONSOLE_PASSWORD\" }} }}]\nsession_key = {{ env = \"OB_CONSOLE_SESSION_KEY\" }}\n"
        ),
    )
    .unwrap();
    let mut vars = vec![
        (
            "ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS".to_owned(),
            env.kafka.bootstrap_servers.clone(),
        ),
        ("OB_CONSOLE_PASSWORD".to_owned(), PASSWORD.to_owned()),
        (
            "OB_CONSOLE_SESSION_KEY".to_owned(),
            "console-test-session-key-0123456789".to_owned(),
        ),
        ("RUST_LOG".to_owned(), "info".to_owned()),
    ];
    vars.extend(topic_env(&env.topics));
    let mut procs = Procs::new(dir.path());
    procs.spawn(
        "console",
        &["--config", &config.display().to_string(), "console"],
        &vars,
    );
    wait_for("the console", Duration::from_secs(30), || async {
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .current_dir(script.parent().unwrap())
        .env("CONSOLE_URL", format!("http://127.0.0.1:{port}"))
        .env("CONSOLE_USER", OPERATOR)
        .env("CONSOLE_PASSWORD", PASSWORD)
        .env("ORDER_ID", "450789469")
        .env("DEAD_LETTER", &dead_letter)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser test finished in time")
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{stderr}\nconsole log:\n{}",
        procs.log("console")
    );
    assert!(stdout.contains("console browser test passed"), "{stdout}");

    // What the browser saw is what happened.
    let orders = sim.orders();
    assert_eq!(orders.len(), 1, "the order once in the ERP");
    assert_eq!(orders[0].item_lines()[0]["lineObjectNumber"], ERP_ITEM);
    // Sign-ins: ops' wrong password, mallory's five guesses (the sixth is refused unchecked,
    // unlogged), ops' right one; the replay: started, then ok.
    let audit = env
        .read(&env.topics.audit, 9, Duration::from_secs(10))
        .await;
    let actions: Vec<serde_json::Value> = audit
        .iter()
        .map(|m| {
            use rdkafka::Message;
            serde_json::from_slice(m.payload().unwrap()).unwrap()
        })
        .collect();
    let summary: Vec<(String, String, String)> = actions
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap().to_owned(),
                a["action"].as_str().unwrap().to_owned(),
                a["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        (OPERATOR, "console-sign-in", "refused"),
        (OPERATOR, "console-sign-in", "ok"),
        (OPERATOR, "dlq-replay", "ok"),
    ] {
        assert!(
            summary
                .iter()
                .any(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()) == expected),
            "{expected:?} not in {summary:?}"
        );
    }
    for page in ["sign-in", "failures", "replay-confirm", "order", "audit"] {
        assert!(shots.join(format!("{page}.png")).exists(), "{page}.png");
    }
    stop(&shutdown, vec![processor, sink]).await;
}
