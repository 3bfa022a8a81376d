//! `orderbridge dlq list|show|replay`: what no stage could handle, why, and sending it back
//! once the cause is fixed.
//!
//! A replay republishes the dead letter's value and key to the topic (and partition) it was
//! read from, with its original headers, `ob-origin: replay`, `ob-replay-of` naming the dead
//! letter and `ob-replays` counting the replays. Downstream it is the record it was: the
//! processor turns a replayed raw record into its canonical event (a delivery it emitted
//! before is a duplicate), the sink upserts a replayed canonical event (an order the ERP holds
//! is "already present"). A replay whose cause is not fixed is dead-lettered again, as a new
//! dead letter carrying its replay count; nothing replays on its own, so it cannot loop.
//! Every replay is in the audit log with the dead letters it sent, and a dead letter already
//! replayed is not sent again unless `--again` says so.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orderbridge_runtime::{now_ms, KafkaSettings};
use orderbridge_schemas::{headers as ob, OrderEventCodec, Topics};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde::Serialize;

use super::read::{self, Partitions};
use super::{audit, format_ms, header, when};

/// `orderbridge dlq`.
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List dead letters (oldest first) with counts by class and source.
    List {
        #[command(flatten)]
        filter: Filter,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter, `<partition>:<offset>`: its headers, its reason, its body.
    Show {
        /// `<partition>:<offset>` in the dead-letter topic, as `dlq list` prints it.
        at: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Republish dead letters to the topic they came from (see `dlq list` for the filters).
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Only these dead letters, `<partition>:<offset>` (repeatable).
        #[arg(long = "record")]
        records: Vec<String>,
        /// Say what would be replayed; publish nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replay dead letters that were replayed before, too.
        #[arg(long)]
        again: bool,
        /// Who is replaying, for the audit log (default: `ORDERBRIDGE_ACTOR`, else the login).
        #[arg(long)]
        actor: Option<String>,
    },
}

/// Which dead letters.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct Filter {
    /// The stage that gave up: `processor`, `enrich`, `sink`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The error class: `unparseable`, `invalid`, `erp-rejected`, `parked`, `order-unknown`, …
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The source (`shopify`, `amazon-sns`, …).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Words the reason contains (any case).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The order key.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Dead-lettered at or after this time (RFC 3339) or this long ago (`24h`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Dead-lettered before this time (RFC 3339) or this long ago.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A dead letter as the commands show it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// `<partition>:<offset>` in the dead-letter topic.
    pub at: String,
    pub partition: i32,
    pub offset: i64,
    /// When it was dead-lettered, unix milliseconds.
    pub dead_lettered_at: i64,
    pub stage: String,
    pub class: String,
    pub reason: String,
    pub source: String,
    pub key: String,
    pub event_id: String,
    pub attempts: u32,
    /// How many times it had been replayed before it was dead-lettered (this time).
    pub replays: u32,
    /// Where it came from: `<topic>:<partition>:<offset>`.
    pub original: String,
    #[serde(skip)]
    pub original_topic: String,
    #[serde(skip)]
    pub original_partition: Option<i32>,
    #[serde(skip)]
    pub message: OwnedMessage,
}

impl DeadLetter {
    /// Reads the `ob-dlq-*` headers of `message`.
    pub fn of(message: OwnedMessage) -> Self {
        let get = |key: &str| header(&message, key).unwrap_or_default();
        let original_topic = get(ob::DLQ_ORIGINAL_TOPIC);
        let original_partition =
            header(&message, ob::DLQ_ORIGINAL_PARTITION).and_then(|p| p.parse::<i32>().ok());
        let original = format!(
            "{original_topic}:{}:{}",
            get(ob::DLQ_ORIGINAL_PARTITION),
            get(ob::DLQ_ORIGINAL_OFFSET)
        );
        let dead_lettered_at = header(&message, ob::DLQ_AT)
            .and_then(|at| at.parse::<i64>().ok())
            .or_else(|| message.timestamp().to_millis())
            .unwrap_or(0);
        Self {
            at: format!("{}:{}", message.partition(), message.offset()),
            partition: message.partition(),
            offset: message.offset(),
            dead_lettered_at,
            stage: get(ob::DLQ_STAGE),
            class: get(ob::DLQ_ERROR_CLASS),
            reason: get(ob::DLQ_REASON),
            source: get(ob::SOURCE),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            event_id: get(ob::EVENT_ID),
            attempts: get(ob::DLQ_ATTEMPTS).parse().unwrap_or(0),
            replays: get(ob::REPLAYS).parse().unwrap_or(0),
            original,
            original_topic,
            original_partition,
            message,
        }
    }
}

/// A [`Filter`] with its times read.
pub struct Selection {
    filter: Filter,
    since: Option<i64>,
    until: Option<i64>,
    only: Option<HashSet<String>>,
}

impl Selection {
    /// The dead letters `filter` picks, of `records` only when some are named.
    ///
    /// # Errors
    /// When a time or a record is not understood.
    pub fn new(filter: &Filter, records: &[String]) -> anyhow::Result<Self> {
        let now = now_ms();
        // As `dlq list` prints them, whatever spacing or zeros they were typed with.
        let mut only = HashSet::new();
        for record in records {
            let (partition, offset) = parse_at(record)?;
            only.insert(format!("{partition}:{offset}"));
        }
        Ok(Self {
            filter: filter.clone(),
            since: filter
                .since
                .as_deref()
                .map(|t| when::parse_time(t, now))
                .transpose()?,
            until: filter
                .until
                .as_deref()
                .map(|t| when::parse_time(t, now))
                .transpose()?,
            only: (!only.is_empty()).then_some(only),
        })
    }

    fn matches(&self, dead: &DeadLetter) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.filter.stage, &dead.stage)
            && eq(&self.filter.class, &dead.class)
            && eq(&self.filter.source, &dead.source)
            && eq(&self.filter.key, &dead.key)
            && self
                .filter
                .reason
                .as_deref()
                .is_none_or(|words| dead.reason.to_lowercase().contains(&words.to_lowercase()))
            && self.since.is_none_or(|t| dead.dead_lettered_at >= t)
            && self.until.is_none_or(|t| dead.dead_lettered_at < t)
            && self
                .only
                .as_ref()
                .is_none_or(|only| only.contains(&dead.at))
    }
}

/// `<partition>:<offset>`.
fn parse_at(text: &str) -> anyhow::Result<(i32, i64)> {
    let (p, o) = text
        .split_once(':')
        .with_context(|| format!("{text:?} is not <partition>:<offset>"))?;
    Ok((
        p.trim()
            .parse()
            .with_context(|| format!("{text:?}: the partition is not a number"))?,
        o.trim()
            .parse()
            .with_context(|| format!("{text:?}: the offset is not a number"))?,
    ))
}

/// The dead letters `selection` picks, oldest first.
///
/// # Errors
/// When the dead-letter topic cannot be read.
pub async fn select(
    kafka: &KafkaSettings,
    topic: &str,
    selection: &Selection,
) -> anyhow::Result<Vec<DeadLetter>> {
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    // The whole topic (its retention bounds it), filtered by the dead letters' own times:
    // not every broker looks offsets up by time (librdkafka's mock cluster does not).
    let since = None;
    let partitions = match &selection.filter.key {
        Some(key) => Partitions::OfKey(key.clone()),
        None => Partitions::All,
    };
    let messages = tokio::task::spawn_blocking(move || {
        read::collect(&kafka, &topic, &partitions, since, |_| true)
    })
    .await
    .context("reading the dead-letter topic")??;
    let mut found: Vec<DeadLetter> = messages
        .into_iter()
        .map(DeadLetter::of)
        .filter(|dead| selection.matches(dead))
        .collect();
    found.sort_by_key(|dead| (dead.dead_lettered_at, dead.partition, dead.offset));
    Ok(found)
}

/// Runs a `dlq` command.
///
/// # Errors
/// When Kafka cannot be read or written, or an argument is wrong.
pub async fn run(
    command: &DlqCommand,
    kafka: &KafkaSettings,
    topics: &Topics,
    dlq_retention_ms: i64,
    codec: Option<Arc<OrderEventCodec>>,
) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { filter, json } => {
            let found = select(kafka, &topics.dlq, &Selection::new(filter, &[])?).await?;
            list(&found, *json)
        }
        DlqCommand::Show { at, json } => show(kafka, &topics.dlq, at, *json, codec).await,
        DlqCommand::Replay {
            filter,
            records,
            dry_run,
            again,
            actor,
        } => {
            let selection = Selection::new(filter, records)?;
            let options = ReplayOptions {
                dry_run: *dry_run,
                again: *again,
                actor: audit::actor(actor.as_deref()),
                arguments: serde_json::json!({
                    "filter": filter,
                    "records": records,
                    "dry_run": dry_run,
                    "again": again,
                }),
                lookback_since: lookback(dlq_retention_ms),
            };
            replay_command(kafka, topics, &selection, &options).await
        }
    }
}

fn list(found: &[DeadLetter], json: bool) -> anyhow::Result<()> {
    if json {
        for dead in found {
            println!("{}", serde_json::to_string(dead)?);
        }
        return Ok(());
    }
    println!(
        "{:<10} {:<24} {:<9} {:<15} {:<12} {:<40} REASON",
        "AT", "DEAD-LETTERED", "STAGE", "CLASS", "SOURCE", "ORDER KEY"
    );
    for dead in found {
        let replays = if dead.replays > 0 {
            format!(" (after {} replay(s))", dead.replays)
        } else {
            String::new()
        };
        println!(
            "{:<10} {:<24} {:<9} {:<15} {:<12} {:<40} {}{replays}",
            dead.at,
            format_ms(dead.dead_lettered_at),
            dead.stage,
            dead.class,
            dead.source,
            dead.key,
            one_line(&dead.reason, 160),
        );
    }
    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_source: BTreeMap<&str, usize> = BTreeMap::new();
    for dead in found {
        *by_class.entry(&dead.class).or_default() += 1;
        *by_source.entry(&dead.source).or_default() += 1;
    }
    let counts = |counts: &BTreeMap<&str, usize>| {
        counts
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("{} dead letter(s)", found.len());
    if !found.is_empty() {
        println!("  by class:  {}", counts(&by_class));
        println!("  by source: {}", counts(&by_source));
    }
    Ok(())
}

/// The first `max` characters of `text` on one line.
fn one_line(text: &str, max: usize) -> String {
    let line: String = super::printable(text, false)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max).collect();
    cut.push('…');
    cut
}

/// A record's value for people: pretty JSON when it is JSON, the decoded event when it is a
/// canonical record, else its size and the first bytes as text.
pub async fn describe_value(payload: &[u8], codec: Option<&OrderEventCodec>) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) {
        return serde_json::to_string_pretty(&value).unwrap_or_default();
    }
    if payload.first() == Some(&0) && payload.len() > 5 {
        if let Some(codec) = codec {
            match codec.decode(payload).await {
                Ok(event) => {
                    return serde_json::to_string_pretty(&event).unwrap_or_default();
                }
                Err(err) => {
                    return format!(
                    "(an Avro canonical event of {} bytes that the registry cannot decode: {err})",
                    payload.len()
                )
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&payload[..payload.len().min(2000)]).into_owned();
    format!("({} bytes, not JSON)\n{text}", payload.len())
}

async fn show(
    kafka: &KafkaSettings,
    topic: &str,
    at: &str,
    json: bool,
    codec: Option<Arc<OrderEventCodec>>,
) -> anyhow::Result<()> {
    let (partition, offset) = parse_at(at)?;
    let (k, t) = (kafka.clone(), topic.to_owned());
    let message = tokio::task::spawn_blocking(move || read::one(&k, &t, partition, offset))
        .await
        .context("reading the dead letter")??
        .with_context(|| format!("{topic} has no record at {at} (expired, or not written yet)"))?;
    let dead = DeadLetter::of(message);
    let body = describe_value(dead.message.payload().unwrap_or_default(), codec.as_deref()).await;
    let headers: Vec<(String, String)> = dead
        .message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        h.value
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if json {
        let mut value = serde_json::to_value(&dead)?;
        value["headers"] = serde_json::to_value(&headers)?;
        value["body"] = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("dead letter {topic} {at}");
    println!("  order key:      {}", dead.key);
    println!(
        "  dead-lettered:  {} by {} ({}), after {} attempt(s)",
        format_ms(dead.dead_lettered_at),
        dead.stage,
        dead.class,
        dead.attempts
    );
    println!(
        "  reason:         {}",
        super::printable(&dead.reason, false)
    );
    println!("  came from:      {}", dead.original);
    if dead.replays > 0 {
        println!("  replays before: {}", dead.replays);
    }
    println!("  headers:");
    for (key, value) in &headers {
        println!(
            "    {}: {}",
            super::printable(key, false),
            super::printable(value, false)
        );
    }
    println!("  body:");
    for line in super::printable(&body, true).lines() {
        println!("    {line}");
    }
    Ok(())
}

/// How a replay runs.
pub struct ReplayOptions {
    /// Say what would be replayed; publish nothing.
    pub dry_run: bool,
    /// Replay dead letters replayed before, too.
    pub again: bool,
    /// Who, for the audit log.
    pub actor: String,
    /// The arguments as given, for the audit log.
    pub arguments: serde_json::Value,
    /// How far back the audit log is read for earlier replays (the dead-letter topic's
    /// retention), unix milliseconds; `None`: all of it.
    pub lookback_since: Option<i64>,
}

/// What a replay did (or, dry, would do), each dead letter as `<partition>:<offset>`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Replayed {
    /// Published again (dry run: would be).
    pub replayed: Vec<String>,
    /// Replayed before, and not `again`.
    pub skipped: Vec<String>,
    /// From a topic that is not one of the pipeline's inputs.
    pub refused: Vec<String>,
    /// Why the replay stopped early.
    pub error: Option<String>,
}

/// The dead letters of the dead-letter topic replayed before, as `<partition>:<offset>`,
/// from the audit log since `since_ms` (the dead-letter topic's retention: older dead letters
/// are gone). A replay that was started counts, whether or not it finished: it may have
/// sent them.
///
/// # Errors
/// When the audit topic cannot be read.
pub fn replayed_before(
    kafka: &KafkaSettings,
    topics: &Topics,
    since_ms: Option<i64>,
) -> anyhow::Result<HashSet<String>> {
    let mut done = HashSet::new();
    for record in audit::records(kafka, &topics.audit, since_ms)? {
        if record.action != "dlq-replay" || record.detail["topic"] != topics.dlq.as_str() {
            continue;
        }
        for field in ["replayed", "replaying"] {
            if let Some(replayed) = record.detail[field].as_array() {
                done.extend(
                    replayed
                        .iter()
                        .filter_map(|r| r.as_str().map(str::to_owned)),
                );
            }
        }
    }
    Ok(done)
}

/// Since when earlier replays matter: the dead-letter topic's retention back from now
/// (`None` when it keeps them for ever).
pub fn lookback(dlq_retention_ms: i64) -> Option<i64> {
    (dlq_retention_ms > 0).then(|| now_ms().saturating_sub(dlq_retention_ms))
}

/// The topics a dead letter may go back to: the pipeline's inputs.
fn replayable(topics: &Topics, topic: &str) -> bool {
    [
        &topics.raw,
        &topics.canonical,
        &topics.attribution,
        &topics.enrich_retry,
    ]
    .iter()
    .any(|t| t.as_str() == topic)
}

/// The headers of a replayed record: the original's, without what the dead-lettering and
/// earlier replays added, with `ob-origin: replay`, `ob-replay-of` and `ob-replays`.
fn replay_headers(dead: &DeadLetter, dlq_topic: &str) -> OwnedHeaders {
    super::headers_but(&dead.message, |key| {
        key.starts_with("ob-dlq-") || [ob::ORIGIN, ob::REPLAY_OF, ob::REPLAYS].contains(&key)
    })
    .insert(Header {
        key: ob::ORIGIN,
        value: Some(orderbridge_schemas::Origin::Replay.as_str()),
    })
    .insert(Header {
        key: ob::REPLAY_OF,
        value: Some(&format!("{dlq_topic}:{}", dead.at)),
    })
    .insert(Header {
        key: ob::REPLAYS,
        value: Some(&(dead.replays + 1).to_string()),
    })
}

/// Replays the dead letters `selection` picks (see the module docs), reporting to
/// `progress`, and appends the action to the audit log.
///
/// # Errors
/// When Kafka cannot be read, or the audit record cannot be written. A replay that stops
/// part-way is not an error: [`Replayed::error`] says why, and the audit log has it.
pub async fn replay(
    kafka: &KafkaSettings,
    topics: &Topics,
    selection: &Selection,
    options: &ReplayOptions,
    auditor: &audit::Auditor,
    progress: &mut dyn orderbridge_providers::progress::Report,
) -> anyhow::Result<Replayed> {
    let found = select(kafka, &topics.dlq, selection).await?;
    let done = {
        let (k, t, since) = (kafka.clone(), topics.clone(), options.lookback_since);
        tokio::task::spawn_blocking(move || replayed_before(&k, &t, since))
            .await
            .context("reading the audit log")??
    };
    let mut outcome = Replayed::default();
    let mut send = Vec::new();
    for dead in found {
        if !replayable(topics, &dead.original_topic) {
            outcome.refused.push(dead.at.clone());
        } else if done.contains(&dead.at) && !options.again {
            outcome.skipped.push(dead.at.clone());
        } else {
            send.push(dead);
        }
    }
    if options.dry_run {
        outcome.replayed = send.iter().map(|d| d.at.clone()).collect();
        auditor
            .append(
                &options.actor,
                "dlq-replay",
                options.arguments.clone(),
                "dry-run",
                serde_json::json!({ "topic": topics.dlq, "would_replay": outcome.replayed }),
            )
            .await?;
        return Ok(outcome);
    }
    // Before anything is sent: a replay killed half-way still counts as started, so that
    // its dead letters are not sent again unless asked.
    if !send.is_empty() {
        auditor
            .append(
                &options.actor,
                "dlq-replay",
                options.arguments.clone(),
                "started",
                serde_json::json!({
                    "topic": topics.dlq,
                    "replaying": send.iter().map(|d| &d.at).collect::<Vec<_>>(),
                }),
            )
            .await?;
    }
    let producer: FutureProducer = kafka
        .producer_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()?;
    let total = u64::try_from(send.len()).unwrap_or(u64::MAX);
    progress.begin(Some(total), 0);
    for dead in &send {
        let headers = replay_headers(dead, &topics.dlq);
        let mut record = FutureRecord::to(&dead.original_topic)
            .payload(dead.message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = dead.message.key() {
            record = record.key(key);
        }
        // Back to its own partition: the order's records stay together and in order.
        if let Some(partition) = dead.original_partition {
            record = record.partition(partition);
        }
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => outcome.replayed.push(dead.at.clone()),
            Err((err, _)) => {
                outcome.error = Some(format!("{}: {err}", dead.at));
                break;
            }
        }
        let done = u64::try_from(outcome.replayed.len()).unwrap_or(u64::MAX);
        progress.advance(done, Some(total));
    }
    progress.end(&format!(
        "{} dead letter(s) replayed",
        outcome.replayed.len()
    ));
    audit::append(
        kafka,
        &topics.audit,
        &options.actor,
        "dlq-replay",
        options.arguments.clone(),
        if outcome.error.is_some() {
            "failed"
        } else {
            "ok"
        },
        serde_json::json!({
            "topic": topics.dlq,
            "replayed": outcome.replayed,
            "skipped": outcome.skipped,
            "refused": outcome.refused,
            "error": outcome.error,
        }),
    )
    .await?;
    Ok(outcome)
}

/// `dlq replay` on the command line: the replay, and what it did in words.
async fn replay_command(
    kafka: &KafkaSettings,
    topics: &Topics,
    selection: &Selection,
    options: &ReplayOptions,
) -> anyhow::Result<()> {
    let mut progress = orderbridge_providers::progress::for_stderr("replay");
    let auditor = audit::Auditor::new(kafka, &topics.audit)?;
    let outcome = replay(
        kafka,
        topics,
        selection,
        options,
        &auditor,
        progress.as_mut(),
    )
    .await?;
    for at in &outcome.refused {
        eprintln!("{at}: not from one of the pipeline's input topics; not replayed");
    }
    if !outcome.skipped.is_empty() {
        eprintln!(
            "{} dead letter(s) were replayed before ({}); --again replays them once more",
            outcome.skipped.len(),
            outcome.skipped.join(", ")
        );
    }
    let left = outcome.skipped.len() + outcome.refused.len();
    if options.dry_run {
        for at in &outcome.replayed {
            println!("would replay {at}");
        }
        println!(
            "dry run: {} dead letter(s) would be replayed, {left} skipped; nothing was published",
            outcome.replayed.len()
        );
        return Ok(());
    }
    println!(
        "replayed {} dead letter(s), skipped {left}",
        outcome.replayed.len()
    );
    if let Some(error) = outcome.error {
        anyhow::bail!("replay stopped: {error}");
    }
    Ok(())
}
