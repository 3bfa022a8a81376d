//! The pipeline's topics as code: created from configuration when missing, checked when
//! present.
//!
//! - `raw`, `canonical` and `attribution` are co-partitioned: the processor joins partition N
//!   of each, so their partition counts must be equal. A stage refuses to start otherwise
//!   ([`check_copartitioned`]): records of one order would meet in different members.
//! - Retention: `raw` and `canonical` are event logs (`cleanup.policy=delete`). Their
//!   retention must outlast the processor's duplicate and attribution windows (7 days by
//!   default), which it rebuilds from them after every rebalance: 14 days by default.
//! - `attribution` is keyed state, the newest attribution of each order: compacted and
//!   deleted after the same retention (`compact,delete`).
//! - `dlq` keeps what no stage could handle until someone looked: 30 days by default.
//! - `processor_state` is the processor's memory, one entry per order: compacted, deleted
//!   after the same retention as raw, and co-partitioned with raw (entry `p` belongs to raw
//!   partition `p`).
//! - `enrich_retry` holds thin notifications waiting to be completed again: an event log with
//!   raw's retention.
//! - `checkpoints` is where commands keep their place (backfill cursors, poll marks, claimed
//!   files): compacted and never deleted, so a finished backfill stays finished.
//! - `status` is the newest status of each order (compacted), kept as long as dead letters.
//! - `audit` is the operators' log: an event log never deleted by retention.
//! - Durability: every topic gets `min.insync.replicas` of 2 (1 when there is only one
//!   replica), so with `acks=all` an acknowledged write is on two brokers, never on one.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

use crate::KafkaSettings;
use orderbridge_schemas::Topics;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How the pipeline's topics are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicLayout {
    /// Partitions of every topic (raw, canonical and attribution must be equal; they are
    /// co-partitioned). They bound each consumer group's parallelism.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// `retention.ms` of raw, canonical and attribution; longer than the processor's
    /// duplicate and attribution windows.
    pub retention_ms: i64,
    /// `retention.ms` of the dead-letter topic.
    pub dlq_retention_ms: i64,
    /// `min.insync.replicas`: how many replicas must have a write before the broker
    /// acknowledges it (to `acks=all` producers). Unset: 2, or the replication factor when
    /// it is lower.
    pub min_insync_replicas: Option<i32>,
}

impl Default for TopicLayout {
    fn default() -> Self {
        Self {
            partitions: 6,
            replication: 1,
            retention_ms: 14 * DAY_MS,
            dlq_retention_ms: 30 * DAY_MS,
            min_insync_replicas: None,
        }
    }
}

impl TopicLayout {
    /// `(topic, cleanup.policy, retention.ms)` for each of `topics`.
    fn configs<'a>(&self, topics: &'a Topics) -> [(&'a str, &'static str, i64); 9] {
        [
            (&topics.raw, "delete", self.retention_ms),
            (&topics.canonical, "delete", self.retention_ms),
            (&topics.attribution, "compact,delete", self.retention_ms),
            (&topics.dlq, "delete", self.dlq_retention_ms),
            (&topics.processor_state, "compact,delete", self.retention_ms),
            (&topics.enrich_retry, "delete", self.retention_ms),
            // A finished backfill's mark stays: running it again finds it done.
            (&topics.checkpoints, "compact", -1),
            // The newest status of each order, for as long as its records are kept.
            (&topics.status, "compact,delete", self.dlq_retention_ms),
            // Who did what stays: an audit log is not trimmed by the pipeline.
            (&topics.audit, "delete", -1),
        ]
    }

    /// The `min.insync.replicas` topics are created with.
    pub fn min_insync(&self) -> i32 {
        self.min_insync_replicas
            .unwrap_or(2)
            .clamp(1, self.replication.max(1))
    }

    /// The configuration a new topic gets, besides its partitions and replication.
    fn topic_config(&self, policy: &str, retention_ms: &str) -> Vec<(&'static str, String)> {
        vec![
            ("cleanup.policy", policy.to_owned()),
            ("retention.ms", retention_ms.to_owned()),
            ("min.insync.replicas", self.min_insync().to_string()),
        ]
    }
}

/// What [`ensure_topics`] found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    /// The topic's name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
    /// Whether this call created it.
    pub created: bool,
}

/// Why the topics are not usable.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The broker could not be asked.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A topic the stage needs does not exist.
    #[error("topic {0} does not exist (create it with `orderbridge topics ensure`)")]
    Missing(String),
    /// Co-partitioned topics differ in partition count.
    #[error("co-partitioned topics must have equal partition counts, but {0}; the processor joins partition N of each, so records of one order would meet in different members")]
    NotCopartitioned(String),
}

/// Creates the topics that are missing, with `layout` (only those: no admin request when all
/// exist); leaves existing ones as they are, and checks that the co-partitioned ones agree.
///
/// # Errors
/// When the admin request fails for a reason other than "already exists", or the
/// co-partitioned topics disagree.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &Topics,
    layout: TopicLayout,
) -> Result<Vec<TopicState>, TopicError> {
    let before = partition_counts(settings, topics).await?;
    let missing: Vec<(String, &str, String)> = layout
        .configs(topics)
        .iter()
        .filter(|(name, _, _)| before.get(*name).copied().flatten().is_none())
        .map(|(name, policy, retention)| ((*name).to_owned(), *policy, retention.to_string()))
        .collect();
    let mut created = Vec::new();
    if !missing.is_empty() {
        created = create(settings, &missing, layout).await?;
    }
    let counts = partition_counts(settings, topics).await?;
    check(topics, &counts)?;
    Ok(topics
        .all()
        .iter()
        .map(|name| TopicState {
            name: (*name).to_owned(),
            partitions: counts.get(*name).copied().flatten().unwrap_or(0),
            created: created.iter().any(|c| c == name),
        })
        .collect())
}

/// Creates `missing` (`(name, cleanup.policy, retention.ms)`); the names it created.
async fn create(
    settings: &KafkaSettings,
    missing: &[(String, &str, String)],
    layout: TopicLayout,
) -> Result<Vec<String>, TopicError> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let configs: Vec<(&String, Vec<(&'static str, String)>)> = missing
        .iter()
        .map(|(name, policy, retention)| (name, layout.topic_config(policy, retention)))
        .collect();
    let new_topics: Vec<NewTopic<'_>> = configs
        .iter()
        .map(|(name, config)| {
            config.iter().fold(
                NewTopic::new(
                    name,
                    layout.partitions,
                    TopicReplication::Fixed(layout.replication),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut created = Vec::new();
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions = layout.partitions, "created topic");
                created.push(name);
            }
            // Created by someone else since we looked.
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "topic exists")
            }
            Err((name, code)) => {
                tracing::error!(topic = %name, error = %code, "could not create topic");
                return Err(KafkaError::AdminOp(code).into());
            }
        }
    }
    Ok(created)
}

/// Checks that raw, canonical, attribution and the processor's state topic exist and have
/// equal partition counts; the processor calls it before it joins its group.
///
/// # Errors
/// [`TopicError::Missing`] or [`TopicError::NotCopartitioned`], or the broker's error.
pub async fn check_copartitioned(
    settings: &KafkaSettings,
    topics: &Topics,
) -> Result<(), TopicError> {
    let counts = partition_counts(settings, topics).await?;
    check(topics, &counts)
}

fn check(topics: &Topics, counts: &BTreeMap<String, Option<i32>>) -> Result<(), TopicError> {
    let joined = [
        &topics.raw,
        &topics.canonical,
        &topics.attribution,
        &topics.processor_state,
    ];
    let mut found = Vec::new();
    for name in joined {
        match counts.get(name.as_str()).copied().flatten() {
            Some(partitions) => found.push((name, partitions)),
            None => return Err(TopicError::Missing(name.clone())),
        }
    }
    if found.windows(2).all(|pair| pair[0].1 == pair[1].1) {
        return Ok(());
    }
    let described = found
        .iter()
        .map(|(name, partitions)| format!("{name} has {partitions}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(TopicError::NotCopartitioned(described))
}

/// Each topic's partition count, `None` when it does not exist.
async fn partition_counts(
    settings: &KafkaSettings,
    topics: &Topics,
) -> Result<BTreeMap<String, Option<i32>>, TopicError> {
    let config = settings.client_config();
    let names: Vec<String> = topics.all().iter().map(|n| (*n).to_owned()).collect();
    // Metadata requests block: off the async workers.
    let counts = tokio::task::spawn_blocking(move || -> Result<_, KafkaError> {
        let client: BaseConsumer = config.create()?;
        let metadata = client.fetch_metadata(None, Duration::from_secs(10))?;
        Ok(names
            .into_iter()
            .map(|name| {
                let partitions = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == name && t.error().is_none())
                    .map(|t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX))
                    .filter(|n| *n > 0);
                (name, partitions)
            })
            .collect())
    })
    .await
    .map_err(|err| TopicError::Missing(format!("(metadata request failed: {err})")))??;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_created_with_two_in_sync_replicas_unless_fewer_exist() {
        let layout = |replication, min: Option<i32>| TopicLayout {
            replication,
            min_insync_replicas: min,
            ..TopicLayout::default()
        };
        let config = |layout: TopicLayout| {
            layout
                .topic_config("delete", "1000")
                .into_iter()
                .find(|(key, _)| *key == "min.insync.replicas")
                .map(|(_, value)| value)
        };
        assert_eq!(config(layout(3, None)).as_deref(), Some("2"));
        assert_eq!(config(layout(2, None)).as_deref(), Some("2"));
        assert_eq!(config(layout(1, None)).as_deref(), Some("1"));
        assert_eq!(config(layout(5, Some(3))).as_deref(), Some("3"));
        assert_eq!(
            config(layout(1, Some(3))).as_deref(),
            Some("1"),
            "never above the replicas"
        );
    }

    #[test]
    fn copartitioned_topics_must_exist_and_agree() {
        let topics = Topics::default();
        let mut counts: BTreeMap<String, Option<i32>> = topics
            .all()
            .iter()
            .map(|n| ((*n).to_owned(), Some(6)))
            .collect();
        assert!(check(&topics, &counts).is_ok());
        counts.insert(topics.dlq.clone(), Some(1));
        assert!(check(&topics, &counts).is_ok(), "the DLQ is not joined");
        counts.insert(topics.attribution.clone(), Some(3));
        let err = match check(&topics, &counts) {
            Err(err) => err.to_string(),
            Ok(()) => panic!("3 and 6 partitions passed"),
        };
        assert!(err.contains("orders.attribution.v1 has 3"), "{err}");
        counts.insert(topics.attribution.clone(), None);
        assert!(matches!(
            check(&topics, &counts),
            Err(TopicError::Missing(name)) if name == topics.attribution
        ));
    }
}
