//! `orderbridge trace <order key | source order id | ERP reference>`: an order's journey, in
//! time order, from every topic that holds it: what arrived in the raw topic (and from
//! where: webhook, backfill, enrich, poll, replay), which canonical events were emitted,
//! which records were dead-lettered and why, and what each stage recorded on the status
//! topic, the ERP's outcome included.
//!
//! An order key names one partition of each topic, so a trace by key reads four partitions.
//! A source order id or an ERP reference is first looked up in the status topic (all of it),
//! then, if the status topic does not know it, in the raw topic.

use std::sync::Arc;

use anyhow::Context;
use orderbridge_runtime::{coordinates, now_ms, KafkaSettings};
use orderbridge_schemas::{headers as ob, OrderEventCodec, Source, StatusRecord, Topics};
use orderbridge_sink::erp::reference::external_reference;
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use serde::Serialize;

use super::read::{self, Partitions};
use super::{format_ms, header, when};

/// `orderbridge trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// An order key (`shopify:shop.myshopify.com:450789469`), a source's order id
    /// (`450789469`) or the ERP's external reference (`SHOP-CAZHE1JD14-450789469`).
    pub order: String,
    /// Only records since this time (RFC 3339) or this long ago (`30d`); default: all kept.
    #[arg(long)]
    pub since: Option<String>,
    /// JSON (one object per order) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One thing that happened to an order.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// When, unix milliseconds.
    pub at: i64,
    /// `raw`, `canonical`, `dlq`, `status`.
    pub topic: &'static str,
    /// `<topic>:<partition>:<offset>`.
    pub record: String,
    /// What happened, in words.
    pub what: String,
    /// The facts behind it.
    pub detail: serde_json::Value,
}

/// An order's journey.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub order_key: String,
    /// The external reference the ERP adapters file it under.
    pub erp_reference: String,
    pub steps: Vec<Step>,
    /// The newest thing the status topic says, in words.
    pub now: Option<String>,
}

/// Traces the orders `args.order` names and prints them.
///
/// # Errors
/// When Kafka cannot be read, or nothing is known of the order.
pub async fn run(
    args: &TraceArgs,
    kafka: &KafkaSettings,
    topics: &Topics,
    codec: Option<Arc<OrderEventCodec>>,
) -> anyhow::Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|s| when::parse_time(s, now_ms()))
        .transpose()?;
    let keys = {
        let (k, t, q) = (kafka.clone(), topics.clone(), args.order.clone());
        tokio::task::spawn_blocking(move || resolve(&k, &t, &q, since))
            .await
            .context("looking the order up")??
    };
    anyhow::ensure!(
        !keys.is_empty(),
        "no order {:?} in the status or raw topics{}",
        args.order,
        if since.is_some() { " since then" } else { "" }
    );
    for key in keys {
        let trace = trace(kafka, topics, &key, since, codec.as_deref()).await?;
        if args.json {
            println!("{}", serde_json::to_string(&trace)?);
        } else {
            print(&trace);
        }
    }
    Ok(())
}

/// The order keys `query` names.
///
/// # Errors
/// When the status or raw topic cannot be read.
pub fn resolve(
    kafka: &KafkaSettings,
    topics: &Topics,
    query: &str,
    since: Option<i64>,
) -> anyhow::Result<Vec<String>> {
    let query = query.trim();
    let mut parts = query.splitn(3, ':');
    if let (Some(source), Some(_), Some(_)) = (parts.next(), parts.next(), parts.next()) {
        if source.parse::<Source>().is_ok() {
            return Ok(vec![query.to_owned()]);
        }
    }
    let names = |key: &str| {
        let mut parts = key.splitn(3, ':');
        let order_id = parts.nth(2);
        order_id == Some(query) || external_reference(key).eq_ignore_ascii_case(query)
    };
    let mut keys = std::collections::BTreeSet::new();
    // The status topic first (one record per order once compacted), the raw topic only
    // when the status topic does not know the order.
    for topic in [&topics.status, &topics.raw] {
        read::read(kafka, topic, &Partitions::All, since, |message| {
            if let Some(key) = message.key().map(String::from_utf8_lossy) {
                if names(&key) {
                    keys.insert(key.into_owned());
                }
            }
            true
        })?;
        if !keys.is_empty() {
            break;
        }
    }
    Ok(keys.into_iter().collect())
}

/// The journey of `order_key`.
///
/// # Errors
/// When a topic cannot be read.
pub async fn trace(
    kafka: &KafkaSettings,
    topics: &Topics,
    order_key: &str,
    since: Option<i64>,
    codec: Option<&OrderEventCodec>,
) -> anyhow::Result<Trace> {
    let records = {
        let (k, t, key) = (kafka.clone(), topics.clone(), order_key.to_owned());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let of_key = |topic: &str| {
                read::collect(&k, topic, &Partitions::OfKey(key.clone()), since, |m| {
                    m.key() == Some(key.as_bytes())
                })
            };
            Ok((
                of_key(&t.raw)?,
                of_key(&t.canonical)?,
                of_key(&t.dlq)?,
                of_key(&t.status)?,
            ))
        })
        .await
        .context("reading the order's records")??
    };
    let (raw, canonical, dlq, status) = records;
    let mut steps = Vec::new();
    steps.extend(raw.iter().map(raw_step));
    for message in &canonical {
        steps.push(canonical_step(message, codec).await);
    }
    steps.extend(dlq.iter().map(dlq_step));
    let mut newest: Option<StatusRecord> = None;
    for message in &status {
        let Ok(record) =
            serde_json::from_slice::<StatusRecord>(message.payload().unwrap_or_default())
        else {
            continue;
        };
        steps.push(status_step(message, &record));
        if newest.as_ref().is_none_or(|n| record.at >= n.at) {
            newest = Some(record);
        }
    }
    steps.sort_by_key(|step| (step.at, order_of(step.topic)));
    Ok(Trace {
        order_key: order_key.to_owned(),
        erp_reference: external_reference(order_key),
        steps,
        now: newest.map(|record| describe_status(&record)),
    })
}

/// Within one millisecond, the pipeline's order.
fn order_of(topic: &str) -> u8 {
    match topic {
        "raw" => 0,
        "canonical" => 1,
        "dlq" => 2,
        _ => 3,
    }
}

fn origin_words(message: &OwnedMessage) -> String {
    let origin = header(message, ob::ORIGIN).unwrap_or_else(|| "webhook".into());
    let words = match (
        header(message, ob::REPLAY_OF),
        header(message, ob::REVISION),
    ) {
        (Some(of), Some(_)) => format!("{origin} of {of}"),
        (Some(of), None) => format!("{origin} of dead letter {of}"),
        (None, _) => origin,
    };
    match header(message, ob::REVISION) {
        Some(revision) => format!("{words} at revision {revision}"),
        None => words,
    }
}

fn raw_step(message: &OwnedMessage) -> Step {
    let at = header(message, ob::RECEIVED_AT)
        .and_then(|t| t.parse().ok())
        .or_else(|| message.timestamp().to_millis())
        .unwrap_or(0);
    let event_type = header(message, ob::EVENT_TYPE).unwrap_or_default();
    let event_id = header(message, ob::EVENT_ID).unwrap_or_default();
    let mut what = format!(
        "received {event_type} (event {event_id}, {})",
        origin_words(message)
    );
    if let Some(secret) = header(message, ob::SECRET_ID) {
        what.push_str(&format!(", secret {secret}"));
    }
    Step {
        at,
        topic: "raw",
        record: coordinates(message),
        what,
        detail: serde_json::json!({
            "event_type": event_type,
            "event_id": event_id,
            "origin": header(message, ob::ORIGIN),
            "secret_id": header(message, ob::SECRET_ID),
            "replay_of": header(message, ob::REPLAY_OF),
            "bytes": message.payload().map_or(0, <[u8]>::len),
        }),
    }
}

async fn canonical_step(message: &OwnedMessage, codec: Option<&OrderEventCodec>) -> Step {
    let at = message.timestamp().to_millis().unwrap_or(0);
    let payload = message.payload().unwrap_or_default();
    let decoded = match codec {
        Some(codec) => Some(codec.decode(payload).await),
        None => None,
    };
    let (what, detail) = match decoded {
        Some(Ok(event)) => (
            format!(
                "emitted {} v{} ({}, {} {} total, {} line(s); {})",
                event.event_type.as_str(),
                event.version,
                event.status.as_str(),
                event.totals.total,
                event.currency,
                event.line_items.len(),
                origin_words(message)
            ),
            serde_json::json!({
                "event_type": event.event_type.as_str(),
                "version": event.version,
                "status": event.status.as_str(),
                "total": event.totals.total.to_string(),
                "currency": event.currency,
                "event_id": event.lineage.event_id,
                "from": format!("{}:{}:{}", event.lineage.raw_topic, event.lineage.raw_partition, event.lineage.raw_offset),
                "origin": header(message, ob::ORIGIN),
                "replay_of": header(message, ob::REPLAY_OF),
            }),
        ),
        Some(Err(err)) => (
            format!("emitted a canonical event the registry cannot decode here ({err})"),
            serde_json::json!({ "error": err.to_string() }),
        ),
        None => (
            format!(
                "emitted {} ({})",
                header(message, ob::EVENT_TYPE).unwrap_or_default(),
                origin_words(message)
            ),
            serde_json::json!({}),
        ),
    };
    Step {
        at,
        topic: "canonical",
        record: coordinates(message),
        what,
        detail,
    }
}

fn dlq_step(message: &OwnedMessage) -> Step {
    let dead = super::dlq::DeadLetter::of(message.clone());
    Step {
        at: dead.dead_lettered_at,
        topic: "dlq",
        record: coordinates(message),
        what: format!(
            "dead-lettered by {} ({}): {}{}",
            dead.stage,
            dead.class,
            dead.reason,
            if dead.replays > 0 {
                format!(" [after {} replay(s)]", dead.replays)
            } else {
                String::new()
            }
        ),
        detail: serde_json::to_value(&dead).unwrap_or_default(),
    }
}

fn status_step(message: &OwnedMessage, record: &StatusRecord) -> Step {
    Step {
        at: record.at,
        topic: "status",
        record: coordinates(message),
        what: describe_status(record),
        detail: serde_json::to_value(record).unwrap_or_default(),
    }
}

/// A status record in words: `sink: created in business-central (event …, v…)`.
fn describe_status(record: &StatusRecord) -> String {
    let mut words = format!("{}: {}", record.stage, record.status.as_str());
    if let Some(erp) = &record.erp {
        words.push_str(&format!(" in {erp}"));
    }
    if let Some(class) = &record.class {
        words.push_str(&format!(" ({class})"));
    }
    let mut facts = Vec::new();
    if let Some(event) = &record.event_id {
        facts.push(format!("event {event}"));
    }
    if let Some(version) = record.version {
        facts.push(format!("v{version}"));
    }
    if let Some(origin) = &record.origin {
        facts.push(origin.clone());
    }
    if !facts.is_empty() {
        words.push_str(&format!(" [{}]", facts.join(", ")));
    }
    if let Some(reason) = &record.reason {
        words.push_str(&format!(": {reason}"));
    }
    words.push_str(&format!(" at {}", format_ms(record.at)));
    words
}

fn print(trace: &Trace) {
    println!("order {}", trace.order_key);
    println!("  ERP reference: {}", trace.erp_reference);
    for step in &trace.steps {
        println!(
            "  {}  {:<9} {:<44} {}",
            format_ms(step.at),
            step.topic,
            step.record,
            super::printable(&step.what, false)
        );
    }
    match &trace.now {
        Some(now) => println!("  now: {}", super::printable(now, false)),
        None => println!("  now: no status recorded (status updates off, or none yet)"),
    }
    println!();
}
