//! The audit log: one record per operator action on the audit topic, and `orderbridge audit`
//! to read it.

use std::time::Duration;

use anyhow::Context;
use orderbridge_runtime::{now_ms, KafkaSettings};
use orderbridge_schemas::AuditRecord;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use super::read::{self, Partitions};
use super::{format_ms, when};

/// Who is acting: `--actor`, else `ORDERBRIDGE_ACTOR`, else the login name.
pub fn actor(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("ORDERBRIDGE_ACTOR").ok())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Writes audit records; one producer for as many records as its holder writes (the
/// console keeps one).
pub struct Auditor {
    producer: FutureProducer,
    topic: String,
}

impl Auditor {
    /// An auditor writing to `topic`.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<Self> {
        let producer: FutureProducer = kafka
            .producer_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // An action waits this long for its record, then says it is not in the log.
            .set("message.timeout.ms", "15000")
            .create()?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Appends an action and waits for the broker: an action whose record cannot be
    /// written is reported as such.
    ///
    /// # Errors
    /// When the broker does not acknowledge the record.
    pub async fn append(
        &self,
        actor: &str,
        action: &str,
        arguments: serde_json::Value,
        result: &str,
        detail: serde_json::Value,
    ) -> anyhow::Result<()> {
        let record = AuditRecord {
            at: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            arguments,
            result: result.to_owned(),
            detail,
        };
        let value = serde_json::to_vec(&record)?;
        self.producer
            .send(
                FutureRecord::to(&self.topic).key(action).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(err, _)| {
                anyhow::anyhow!("writing the audit record to {}: {err}", self.topic)
            })?;
        Ok(())
    }
}

/// Appends one action to the audit topic with a producer of its own ([`Auditor::append`]).
///
/// # Errors
/// When the broker does not acknowledge the record.
pub async fn append(
    kafka: &KafkaSettings,
    topic: &str,
    actor: &str,
    action: &str,
    arguments: serde_json::Value,
    result: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    Auditor::new(kafka, topic)?
        .append(actor, action, arguments, result, detail)
        .await
}

/// [`append`] for an action that is done whatever the log says (a provider's subscription
/// exists once the provider made it): a record that cannot be written is a warning on
/// standard error, not a failure of the action.
pub async fn append_after(
    kafka: &KafkaSettings,
    topic: &str,
    actor: &str,
    action: &str,
    arguments: serde_json::Value,
    result: &str,
    detail: serde_json::Value,
) {
    if let Err(err) = append(kafka, topic, actor, action, arguments, result, detail).await {
        eprintln!("warning: the {action} is done but not in the audit log ({topic}): {err:#}");
    }
}

/// Every audit record of `topic` since `since_ms`, oldest first (unreadable ones are left out
/// with a warning).
///
/// # Errors
/// When the topic cannot be read.
pub fn records(
    kafka: &KafkaSettings,
    topic: &str,
    since_ms: Option<i64>,
) -> anyhow::Result<Vec<AuditRecord>> {
    let mut found = Vec::new();
    read::read(kafka, topic, &Partitions::All, since_ms, |message| {
        match serde_json::from_slice::<AuditRecord>(message.payload().unwrap_or_default()) {
            Ok(record) => found.push(record),
            Err(err) => tracing::warn!(
                partition = message.partition(),
                offset = message.offset(),
                error = %err,
                "not an audit record"
            ),
        }
        true
    })?;
    found.sort_by_key(|record| record.at);
    Ok(found)
}

/// `orderbridge audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only actions since this time (RFC 3339) or this long ago (`7d`).
    #[arg(long)]
    since: Option<String>,
    /// Only this action (`dlq-replay`, `reprocess`, `subscribe`, `console-sign-in`, …).
    #[arg(long)]
    action: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists the audit log.
///
/// # Errors
/// When the audit topic cannot be read.
pub async fn run(args: &AuditArgs, kafka: &KafkaSettings, topic: &str) -> anyhow::Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|s| when::parse_time(s, now_ms()))
        .transpose()?;
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    let mut found = tokio::task::spawn_blocking(move || records(&kafka, &topic, since))
        .await
        .context("reading the audit log")??;
    if let Some(action) = &args.action {
        found.retain(|record| &record.action == action);
    }
    for record in &found {
        if args.json {
            println!("{}", serde_json::to_string(record)?);
        } else {
            println!(
                "{}  {:<16} {:<16} {:<8} {}  {}",
                format_ms(record.at),
                record.actor,
                record.action,
                record.result,
                record.arguments,
                record.detail
            );
        }
    }
    if !args.json {
        eprintln!("{} action(s)", found.len());
    }
    Ok(())
}
