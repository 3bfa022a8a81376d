//! `orderbridge revise`: correcting orders the ERP already holds, after a normalizer or
//! mapping fix.
//!
//! Reading a range again (`reprocess`) cannot correct them: the events come back at the
//! versions the ERP holds, so the sink's version guard calls them "already present". `revise`
//! re-publishes the raw records of a range to the raw topic with `ob-revision: <n>`; the
//! processor emits their events again at version + n × 100 (a revision is a delivery of its
//! own, not a duplicate), and the sink's guard lets them replace what the ERP holds.
//!
//! What it can and cannot do, by construction of the version:
//! - a revised event stays below the source's next change (versions are the source's time in
//!   ms × 1000), so an order changed at the source after the revised event is not regressed:
//!   its revised older events are "stale" and leave it as it is;
//! - so only orders whose newest event is in the range are corrected; include it;
//! - a second correction of the same orders needs a higher revision (at most 9);
//! - the ERP's order is replaced by the corrected event as a whole: changes made by hand in
//!   the ERP to those orders are overwritten, as any update would.

use std::time::Duration;

use anyhow::Context;
use orderbridge_providers::completion::{key_order_id, Enrichment};
use orderbridge_runtime::{now_ms, KafkaSettings};
use orderbridge_schemas::{headers as ob, Origin, Source, Topics, MAX_REVISION};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use super::read::{self, Partitions};
use super::{audit, header, when};

/// `orderbridge revise`.
#[derive(Debug, clap::Args)]
pub struct ReviseArgs {
    /// The revision the events are emitted at, 1 to 9; higher than any earlier revision of
    /// the same orders.
    #[arg(long)]
    pub revision: i64,
    /// Raw records received at or after this time (RFC 3339) or this long ago (`2h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Raw records received before this time (RFC 3339) or this long ago.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this source's records.
    #[arg(long)]
    pub source: Option<String>,
    /// Only this account's records.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this order's records.
    #[arg(long)]
    pub key: Option<String>,
    /// Say what would be re-published; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Who is revising, for the audit log (default: `ORDERBRIDGE_ACTOR`, else the login).
    #[arg(long)]
    pub actor: Option<String>,
}

/// Re-publishes the chosen raw records at the revision.
///
/// # Errors
/// When an argument is wrong or Kafka cannot be read or written.
pub async fn run(
    args: &ReviseArgs,
    kafka: &KafkaSettings,
    topics: &Topics,
    enrichment: &Enrichment,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_REVISION).contains(&args.revision),
        "--revision {}: a revision is 1 to {MAX_REVISION}",
        args.revision
    );
    anyhow::ensure!(
        args.since.is_some() || args.source.is_some() || args.key.is_some(),
        "name the records to revise: --since, --source or --key (revising the whole raw topic \
         is not a default)"
    );
    let now = now_ms();
    let since = args
        .since
        .as_deref()
        .map(|t| when::parse_time(t, now))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| when::parse_time(t, now))
        .transpose()?;
    let chosen = {
        let (k, topic) = (kafka.clone(), topics.raw.clone());
        let partitions = match &args.key {
            Some(key) => Partitions::OfKey(key.clone()),
            None => Partitions::All,
        };
        let (source, account, key) = (args.source.clone(), args.account.clone(), args.key.clone());
        let enrichment = enrichment.clone();
        tokio::task::spawn_blocking(move || {
            read::collect(&k, &topic, &partitions, since, |m| {
                let received = header(m, ob::RECEIVED_AT)
                    .and_then(|t| t.parse::<i64>().ok())
                    .or_else(|| m.timestamp().to_millis())
                    .unwrap_or(0);
                let is = |want: &Option<String>, have: Option<String>| {
                    want.as_ref().is_none_or(|w| have.as_deref() == Some(w))
                };
                since.is_none_or(|s| received >= s)
                    && until.is_none_or(|u| received < u)
                    && is(&source, header(m, ob::SOURCE))
                    && is(&account, header(m, ob::ACCOUNT))
                    && is(&key, m.key().map(|k| String::from_utf8_lossy(k).into_owned()))
                    // A revision of a revision is the original's, at the new revision.
                    && header(m, ob::REVISION).is_none()
                    // A thin notification emits nothing itself: the whole order enrich
                    // fetched for it is in the raw topic too, and is what gets revised.
                    && !awaits_enrichment(&enrichment, m)
            })
        })
        .await
        .context("reading the raw topic")??
    };
    let arguments = serde_json::json!({
        "revision": args.revision,
        "since": args.since,
        "until": args.until,
        "source": args.source,
        "account": args.account,
        "key": args.key,
        "dry_run": args.dry_run,
    });
    let actor = audit::actor(args.actor.as_deref());
    let orders: std::collections::BTreeSet<&[u8]> = chosen.iter().filter_map(|m| m.key()).collect();
    let (sent, failed) = if args.dry_run {
        (0, None)
    } else {
        publish(kafka, &topics.raw, &chosen, args.revision).await?
    };
    let result = match (&failed, args.dry_run) {
        (_, true) => "dry-run",
        (Some(_), false) => "failed",
        (None, false) => "ok",
    };
    audit::append(
        kafka,
        &topics.audit,
        &actor,
        "revise",
        arguments,
        result,
        serde_json::json!({ "records": chosen.len(), "sent": sent, "orders": orders.len(), "error": failed }),
    )
    .await?;
    if args.dry_run {
        println!(
            "dry run: {} raw record(s) of {} order(s) would be re-published at revision {}; nothing was published",
            chosen.len(),
            orders.len(),
            args.revision
        );
        return Ok(());
    }
    println!(
        "re-published {sent} raw record(s) of {} order(s) at revision {}",
        orders.len(),
        args.revision
    );
    if let Some(error) = failed {
        anyhow::bail!("revise stopped: {error}");
    }
    Ok(())
}

/// Whether `message` is a thin notification that `orderbridge enrich` completes (the
/// processor leaves it alone).
fn awaits_enrichment(enrichment: &Enrichment, message: &impl Message) -> bool {
    let Some(source) = header(message, ob::SOURCE).and_then(|s| s.parse::<Source>().ok()) else {
        return false;
    };
    enrichment.completes(
        source,
        &header(message, ob::ACCOUNT).unwrap_or_else(|| "-".into()),
        &header(message, ob::EVENT_TYPE).unwrap_or_default(),
        message.key().and_then(key_order_id),
        message.payload().unwrap_or_default(),
    )
}

/// Re-publishes `chosen` to `raw` at `revision`, each to its own partition, with a progress
/// bar: how many went, and why it stopped early, if it did.
async fn publish(
    kafka: &KafkaSettings,
    raw: &str,
    chosen: &[OwnedMessage],
    revision: i64,
) -> anyhow::Result<(u64, Option<String>)> {
    let producer: FutureProducer = kafka
        .producer_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()?;
    let mut progress = orderbridge_providers::progress::for_stderr("revise");
    let total = u64::try_from(chosen.len()).unwrap_or(u64::MAX);
    progress.begin(Some(total), 0);
    let mut sent = 0u64;
    let mut failed = None;
    for message in chosen {
        let mut record = FutureRecord::to(raw)
            .payload(message.payload().unwrap_or_default())
            .headers(revised_headers(message, revision))
            .partition(message.partition());
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Err((err, _)) = producer.send(record, Duration::from_secs(30)).await {
            failed = Some(err.to_string());
            break;
        }
        sent += 1;
        progress.advance(sent, Some(total));
    }
    progress.end(&format!("{sent} raw record(s) re-published"));
    Ok((sent, failed))
}

/// The original's headers with `ob-origin: replay`, `ob-replay-of` naming the original and
/// `ob-revision`.
fn revised_headers(message: &OwnedMessage, revision: i64) -> OwnedHeaders {
    super::headers_but(message, |key| {
        [ob::ORIGIN, ob::REPLAY_OF, ob::REVISION].contains(&key)
    })
    .insert(Header {
        key: ob::ORIGIN,
        value: Some(Origin::Replay.as_str()),
    })
    .insert(Header {
        key: ob::REPLAY_OF,
        value: Some(&orderbridge_runtime::coordinates(message)),
    })
    .insert(Header {
        key: ob::REVISION,
        value: Some(&revision.to_string()),
    })
}
