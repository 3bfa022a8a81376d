//! `orderbridge reprocess`: moves a stage's consumer group to another place in its input
//! topics, as Kafka's `kafka-consumer-groups --reset-offsets` does, so that the stage reads
//! a range again when it next starts.
//!
//! It refuses while the group has live members (a running member would overwrite the new
//! offsets with its own at its next commit), and refuses to move a partition forward past
//! records the group has not read unless `--skip-unread` says so (they would never be
//! processed); it shows every partition's offset before and after. Reading again doubles nothing: the sink's upserts are idempotent (an order the ERP
//! holds is "already present", an older version is "stale"), and the processor's duplicate
//! filter turns a delivery it emitted before into nothing. So a reprocess re-delivers; to
//! *correct* what the ERP holds after a normalizer or mapping fix, re-emit the events with a
//! new revision (see the README, "Reprocessing").

use std::time::Duration;

use anyhow::{bail, Context};
use orderbridge_runtime::{now_ms, KafkaSettings};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::{audit, read, when};

const TIMEOUT: Duration = Duration::from_secs(15);

/// `orderbridge reprocess`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(
    ["to_datetime", "by_duration", "to_offset", "to_earliest", "to_latest"]
)))]
pub struct ReprocessArgs {
    /// The stage whose group moves: `processor` (raw and attribution topics) or `sink`
    /// (canonical topic). The group ids are the configuration's.
    #[arg(long)]
    pub group: String,
    /// To the first record at or after this time (RFC 3339).
    #[arg(long)]
    pub to_datetime: Option<String>,
    /// To the first record at or after this long ago (`2h`, `PT2H`, `7d`).
    #[arg(long)]
    pub by_duration: Option<String>,
    /// To this offset in every partition (`120`), or per partition (`0:120,1:98`).
    #[arg(long)]
    pub to_offset: Option<String>,
    /// To the start of every partition.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the end of every partition (skips what is not read yet: needs --skip-unread then).
    #[arg(long)]
    pub to_latest: bool,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow moving a partition forward, past records the group has not read: they are
    /// never processed. Without it such a move is refused.
    #[arg(long)]
    pub skip_unread: bool,
    /// Who is reprocessing, for the audit log (default: `ORDERBRIDGE_ACTOR`, else the login).
    #[arg(long)]
    pub actor: Option<String>,
}

/// One partition's move.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    /// The committed offset now (`None`: nothing committed).
    pub before: Option<i64>,
    pub after: i64,
    /// The partition's end: `end - after` records will be read again (or for the first time).
    pub end: i64,
    /// Records between the committed offset (or the partition's start) and `after` that the
    /// group never read and now never will: a move forward.
    pub skipped: i64,
}

/// Where to move to.
enum Target {
    Time(i64),
    Offsets(Vec<(Option<i32>, i64)>),
    Earliest,
    Latest,
}

impl Target {
    fn of(args: &ReprocessArgs) -> anyhow::Result<Self> {
        let now = now_ms();
        if let Some(time) = &args.to_datetime {
            let time = chrono::DateTime::parse_from_rfc3339(time.trim())
                .with_context(|| format!("--to-datetime {time:?} is not RFC 3339"))?;
            return Ok(Target::Time(time.timestamp_millis()));
        }
        if let Some(ago) = &args.by_duration {
            let ago = when::parse_duration(ago)?;
            return Ok(Target::Time(
                now - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX),
            ));
        }
        if let Some(offsets) = &args.to_offset {
            let mut parsed = Vec::new();
            for part in offsets.split(',') {
                let (partition, offset) = match part.split_once(':') {
                    Some((p, o)) => (Some(p.trim().parse::<i32>()?), o),
                    None => (None, part),
                };
                let offset: i64 = offset
                    .trim()
                    .parse()
                    .with_context(|| format!("--to-offset {part:?} is not an offset"))?;
                parsed.push((partition, offset));
            }
            return Ok(Target::Offsets(parsed));
        }
        if args.to_earliest {
            return Ok(Target::Earliest);
        }
        Ok(Target::Latest)
    }
}

/// Resets the group and prints the moves.
///
/// # Errors
/// When the group has live members, Kafka cannot be asked, or an argument is wrong.
pub async fn run(
    args: &ReprocessArgs,
    kafka: &KafkaSettings,
    group_id: &str,
    topics: Vec<String>,
    audit_topic: &str,
) -> anyhow::Result<()> {
    let target = Target::of(args)?;
    let arguments = serde_json::json!({
        "group": args.group,
        "group_id": group_id,
        "to_datetime": args.to_datetime,
        "by_duration": args.by_duration,
        "to_offset": args.to_offset,
        "to_earliest": args.to_earliest,
        "to_latest": args.to_latest,
        "dry_run": args.dry_run,
        "skip_unread": args.skip_unread,
    });
    let actor = audit::actor(args.actor.as_deref());
    let (k, g) = (kafka.clone(), group_id.to_owned());
    let (dry_run, skip_unread) = (args.dry_run, args.skip_unread);
    let planned =
        tokio::task::spawn_blocking(move || reset(&k, &g, &topics, &target, dry_run, skip_unread))
            .await?;
    let (result, detail) = match &planned {
        Ok(moves) if args.dry_run => ("dry-run", serde_json::json!({ "moves": moves })),
        Ok(moves) => ("ok", serde_json::json!({ "moves": moves })),
        Err(err) => ("refused", serde_json::json!({ "error": err.to_string() })),
    };
    audit::append(
        kafka,
        audit_topic,
        &actor,
        "reprocess",
        arguments,
        result,
        detail,
    )
    .await?;
    let moves = planned?;
    println!(
        "{:<40} {:>9} {:>12} {:>12} {:>10} {:>10}  (group {group_id})",
        "TOPIC", "PARTITION", "BEFORE", "AFTER", "TO READ", "SKIPPED"
    );
    let mut to_read = 0i64;
    for m in &moves {
        let before = m.before.map_or("-".to_owned(), |b| b.to_string());
        println!(
            "{:<40} {:>9} {:>12} {:>12} {:>10} {:>10}",
            m.topic,
            m.partition,
            before,
            m.after,
            m.end - m.after,
            m.skipped
        );
        to_read += m.end - m.after;
    }
    if args.dry_run {
        println!("dry run: nothing changed; {to_read} record(s) would be read again");
    } else {
        println!(
            "group {group_id} moved: {to_read} record(s) will be read when the {} starts",
            args.group
        );
    }
    Ok(())
}

/// Plans the moves and, unless `dry_run`, commits them for the group.
fn reset(
    kafka: &KafkaSettings,
    group_id: &str,
    topics: &[String],
    target: &Target,
    dry_run: bool,
    skip_unread: bool,
) -> anyhow::Result<Vec<Move>> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .create()?;
    let groups = consumer
        .fetch_group_list(Some(group_id), TIMEOUT)
        .context("asking the broker about the group")?;
    if let Some(group) = groups.groups().iter().find(|g| g.name() == group_id) {
        let members = group.members();
        if !members.is_empty() {
            let who: Vec<String> = members
                .iter()
                .map(|m| format!("{} on {}", m.client_id(), m.client_host()))
                .collect();
            bail!(
                "group {group_id} has {} live member(s) ({}): stop them before reprocessing; \
                 a running member would commit its own offsets over the new ones",
                members.len(),
                who.join(", ")
            );
        }
    }
    let mut current = TopicPartitionList::new();
    let mut ends = Vec::new();
    for topic in topics {
        for partition in 0..read::partition_count(kafka, topic)? {
            current.add_partition(topic, partition);
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .with_context(|| format!("reading the ends of {topic}[{partition}]"))?;
            ends.push((topic.clone(), partition, low, high));
        }
    }
    let committed = consumer
        .committed_offsets(current, TIMEOUT)
        .context("reading the group's committed offsets")?;
    let at_time = match target {
        Target::Time(ms) => {
            let mut query = TopicPartitionList::new();
            for (topic, partition, _, _) in &ends {
                query.add_partition_offset(topic, *partition, Offset::Offset(*ms))?;
            }
            Some(
                consumer
                    .offsets_for_times(query, TIMEOUT)
                    .context("finding the offsets at that time")?,
            )
        }
        Target::Offsets(_) | Target::Earliest | Target::Latest => None,
    };
    let mut moves = Vec::new();
    let mut commit = TopicPartitionList::new();
    for (topic, partition, low, high) in ends {
        // `--to-offset` names offsets of the group's own topic (raw, canonical); another
        // topic it reads (attribution) has offsets of its own and stays where it is.
        if matches!(target, Target::Offsets(_)) && Some(&topic) != topics.first() {
            continue;
        }
        let before = committed
            .find_partition(&topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(at) => Some(at),
                Offset::Beginning
                | Offset::End
                | Offset::Stored
                | Offset::Invalid
                | Offset::OffsetTail(_) => None,
            });
        let wanted = match target {
            Target::Earliest => low,
            Target::Latest => high,
            Target::Time(_) => at_time
                .as_ref()
                .and_then(|found| found.find_partition(&topic, partition))
                .map_or(high, |e| match e.offset() {
                    Offset::Offset(at) => at,
                    // Nothing that recent: the end.
                    Offset::End
                    | Offset::Beginning
                    | Offset::Stored
                    | Offset::Invalid
                    | Offset::OffsetTail(_) => high,
                }),
            Target::Offsets(offsets) => {
                let chosen = offsets
                    .iter()
                    .find(|(p, _)| *p == Some(partition))
                    .or_else(|| offsets.iter().find(|(p, _)| p.is_none()));
                match chosen {
                    Some((_, offset)) => *offset,
                    // Not named: stays where it is.
                    None => before.unwrap_or(low),
                }
            }
        };
        // An offset outside the log is where Kafka's tool puts it too: the nearest end.
        let after = wanted.clamp(low, high);
        let skipped = (after - before.unwrap_or(low).max(low)).max(0);
        commit.add_partition_offset(&topic, partition, Offset::Offset(after))?;
        moves.push(Move {
            topic,
            partition,
            before,
            after,
            end: high,
            skipped,
        });
    }
    let skipped: i64 = moves.iter().map(|m| m.skipped).sum();
    if skipped > 0 && !skip_unread {
        let which: Vec<String> = moves
            .iter()
            .filter(|m| m.skipped > 0)
            .map(|m| format!("{}[{}]: {}", m.topic, m.partition, m.skipped))
            .collect();
        bail!(
            "this would skip {skipped} record(s) the group has not read ({}): they would never \
             be processed. Choose an earlier point, or pass --skip-unread to skip them",
            which.join(", ")
        );
    }
    if !dry_run {
        consumer
            .commit(&commit, CommitMode::Sync)
            .context("committing the new offsets for the group")?;
    }
    Ok(moves)
}
