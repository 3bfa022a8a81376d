//! A stage started while its broker cannot be reached waits for it instead of exiting: in
//! Kubernetes every broker restart would otherwise become a crash-loop back-off. The
//! processor is started against an address where nothing listens yet; it stays up and
//! reports not ready ("held back by Kafka"), and once a broker (tansu, when the test script
//! installed it) comes up there, it becomes ready.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use orderbridge_runtime::{ensure_topics, KafkaSettings, TopicLayout};
use orderbridge_schemas::Topics;
use support::procs::{free_port, Procs};
use support::{unique, wait_for};

async fn readyz(port: u16) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_waits_for_a_broker_that_is_not_up_yet() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, listen) = (free_port(), free_port());
    let topics = Topics::with_suffix(&unique("t"));
    let bootstrap = format!("127.0.0.1:{broker}");
    let mut env: Vec<(String, String)> = [
        ("ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS", bootstrap.clone()),
        (
            "ORDERBRIDGE_PROCESSOR__GUARANTEE",
            "at-least-once".to_owned(),
        ),
        ("ORDERBRIDGE_PROCESSOR__GROUP_ID", unique("processor")),
        (
            "ORDERBRIDGE_PROCESSOR__LISTEN",
            format!("127.0.0.1:{listen}"),
        ),
        ("RUST_LOG", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(support::pipeline::topic_env(&topics));
    let mut procs = Procs::new(dir.path());
    procs.spawn("processor", &["process"], &env);

    let (status, text) = wait_for(
        "the processor's /readyz to name Kafka",
        Duration::from_secs(60),
        || async {
            readyz(listen)
                .await
                .filter(|(_, text)| text.contains("Kafka"))
        },
    )
    .await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("Kafka"), "{text}");
    // Well past the first metadata request's failure: still running, still waiting.
    wait_for("a retry logged", Duration::from_secs(60), || {
        let log = procs.log("processor");
        async move { log.contains("Kafka cannot be reached yet").then_some(()) }
    })
    .await;
    assert!(
        procs.exited("processor").is_none(),
        "the processor exited:\n{}",
        procs.log("processor")
    );

    // The broker comes up where the processor looks for it.
    let tansu = std::process::Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://{bootstrap}"),
            "--advertised-listener-url",
            &format!("tcp://{bootstrap}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut tansu) = tansu else {
        assert!(
            std::env::var_os("ORDERBRIDGE_REQUIRE_BROKER").is_none(),
            "tansu is not on PATH but ORDERBRIDGE_REQUIRE_BROKER is set"
        );
        println!("tansu is not on PATH: the broker coming up was not tried");
        return;
    };
    let kafka = KafkaSettings::new(bootstrap);
    let layout = TopicLayout {
        partitions: 3,
        ..TopicLayout::default()
    };
    wait_for("the topics created", Duration::from_secs(30), || async {
        ensure_topics(&kafka, &topics, layout).await.ok()
    })
    .await;
    let ready = wait_for("the processor ready", Duration::from_secs(90), || async {
        readyz(listen).await.filter(|(status, _)| *status == 200)
    })
    .await;
    let _ = tansu.kill();
    let _ = tansu.wait();
    assert_eq!(ready.1, "ready");
}
