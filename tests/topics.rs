//! Topics as code: `ensure_topics` creates what is missing (on the real broker: librdkafka's
//! mock cluster has no CreateTopics) and refuses co-partitioned topics that disagree, and so
//! do `orderbridge topics ensure` and `orderbridge process`.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::process::Command;

use orderbridge_runtime::{ensure_topics, KafkaSettings, TopicError, TopicLayout};
use orderbridge_schemas::Topics;
use rdkafka::mocking::MockCluster;
use support::unique;

fn layout(partitions: i32) -> TopicLayout {
    TopicLayout {
        partitions,
        ..TopicLayout::default()
    }
}

async fn creates_what_is_missing(kafka: &KafkaSettings) {
    let topics = Topics::with_suffix(&unique("t"));
    let first = ensure_topics(kafka, &topics, layout(4)).await.unwrap();
    assert_eq!(first.len(), topics.all().len());
    assert!(
        first.iter().all(|t| t.created && t.partitions == 4),
        "{first:?}"
    );
    let second = ensure_topics(kafka, &topics, layout(4)).await.unwrap();
    assert!(
        second.iter().all(|t| !t.created && t.partitions == 4),
        "{second:?}"
    );
}

#[tokio::test]
async fn creates_missing_topics_on_the_real_broker() {
    let Some(bootstrap) = std::env::var("KAFKA_BOOTSTRAP")
        .ok()
        .filter(|b| !b.is_empty())
    else {
        println!("KAFKA_BOOTSTRAP not set: the real-broker case did not run");
        return;
    };
    creates_what_is_missing(&KafkaSettings::new(bootstrap)).await;
}

/// A mock cluster whose attribution topic has fewer partitions than raw and canonical.
fn disagreeing() -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    Topics,
) {
    let mock = MockCluster::new(1).unwrap();
    let topics = Topics::with_suffix(&unique("t"));
    mock.create_topic(&topics.raw, 3, 1).unwrap();
    mock.create_topic(&topics.canonical, 3, 1).unwrap();
    mock.create_topic(&topics.attribution, 2, 1).unwrap();
    mock.create_topic(&topics.dlq, 1, 1).unwrap();
    mock.create_topic(&topics.processor_state, 3, 1).unwrap();
    mock.create_topic(&topics.enrich_retry, 3, 1).unwrap();
    mock.create_topic(&topics.checkpoints, 1, 1).unwrap();
    mock.create_topic(&topics.status, 3, 1).unwrap();
    mock.create_topic(&topics.audit, 1, 1).unwrap();
    (mock, topics)
}

#[tokio::test]
async fn co_partitioned_topics_that_disagree_are_refused() {
    let (mock, topics) = disagreeing();
    let kafka = KafkaSettings::new(mock.bootstrap_servers());
    let err = ensure_topics(&kafka, &topics, layout(3)).await.unwrap_err();
    assert!(matches!(err, TopicError::NotCopartitioned(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("{} has 2", topics.attribution)),
        "{message}"
    );
    assert!(
        message.contains(&format!("{} has 3", topics.raw)),
        "{message}"
    );
}

#[test]
fn the_processor_and_topics_ensure_refuse_to_start_on_disagreeing_topics() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mock, topics) = runtime.block_on(async { disagreeing() });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orderbridge.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
[topics]
raw = "{raw}"
canonical = "{canonical}"
attribution = "{attribution}"
dlq = "{dlq}"
processor_state = "{state}"
enrich_retry = "{retry}"
checkpoints = "{checkpoints}"
status = "{status}"
audit = "{audit}"
[topic_layout]
partitions = 3
[processor]
listen = "127.0.0.1:0"
"#,
            bootstrap = mock.bootstrap_servers(),
            raw = topics.raw,
            canonical = topics.canonical,
            attribution = topics.attribution,
            dlq = topics.dlq,
            state = topics.processor_state,
            retry = topics.enrich_retry,
            checkpoints = topics.checkpoints,
            status = topics.status,
            audit = topics.audit,
        ),
    )
    .unwrap();
    for command in [&["process"][..], &["topics", "ensure"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_orderbridge"))
            .arg("--config")
            .arg(&path)
            .args(command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command:?} started: {stderr}");
        assert!(
            stderr.contains("co-partitioned") && stderr.contains("has 2"),
            "{command:?}: {stderr}"
        );
    }
}
