//! Reading a partner's EDI drop; see the module docs of [`super`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use orderbridge_runtime::Backoff;
use orderbridge_schemas::{Origin, Source};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{pause, Context, EdiDrop};
use crate::api::Document;
use crate::edi::{content_hash, read_850, single_sets, write_997, AckControls, ControlNumber};
use crate::publish::{RawDocument, X12};

/// A claimed file, as recorded under `edi/<partner>/<content hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Its name when it was read.
    pub file: String,
    /// Purchase orders published.
    pub orders: usize,
    /// Transaction sets rejected (published to be dead-lettered, and acknowledged `R`).
    pub rejected: usize,
    /// The 997's control number, when one was written.
    pub ack_control: Option<u32>,
    /// When.
    pub claimed_at: DateTime<Utc>,
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Files read and claimed.
    pub claimed: usize,
    /// Files skipped as claimed before.
    pub already_claimed: usize,
    /// Files left for a later round (being written).
    pub unsettled: usize,
    /// Files that could not be claimed (unreadable, Kafka or the done directory failing):
    /// tried again next round.
    pub failed: usize,
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum EdiError {
    /// The drop (or the ack or done directory) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Kafka did not take a record or the claim.
    #[error("{0}")]
    Kafka(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EdiError + '_ {
    move |source| EdiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The key prefix of `partner`'s claims.
fn prefix(partner: &str) -> String {
    format!("edi/{partner}/")
}

/// Polls until `shutdown`: reads the claims, then a round every `interval`.
pub(super) async fn run(
    drop: &EdiDrop,
    context: &Context,
    interval: Duration,
    shutdown: &CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut claims = loop {
        match context
            .checkpoints
            .load::<Claim>(&prefix(&drop.partner))
            .await
        {
            Ok(loaded) => break loaded,
            Err(err) => {
                tracing::warn!(partner = %drop.partner, error = %err, "cannot read the EDI claims; trying again");
                if !pause(backoff.next_delay(), shutdown).await {
                    return;
                }
            }
        }
    };
    tracing::info!(partner = %drop.partner, claimed = claims.len(), dir = %drop.dir.display(), "reading the EDI drop");
    let mut seen = super::sftp::Seen::default();
    loop {
        if let Some(sftp) = &drop.sftp {
            // What the server holds comes into the local drop first.
            super::sftp::sync_round(drop, sftp, &mut seen, &context.metrics).await;
        }
        match poll_edi_once(drop, context, &mut claims, Utc::now()).await {
            Ok(round) => {
                let outcome = if round.failed > 0 { "failed" } else { "ok" };
                context
                    .metrics
                    .rounds
                    .with_label_values(&["edi", outcome])
                    .inc();
                if round.claimed > 0 || round.failed > 0 {
                    tracing::info!(partner = %drop.partner, ?round, "EDI round done");
                }
            }
            Err(err) => {
                context
                    .metrics
                    .rounds
                    .with_label_values(&["edi", "failed"])
                    .inc();
                tracing::error!(partner = %drop.partner, error = %err, "EDI round failed; its files stay unclaimed and are read again");
            }
        }
        if !pause(interval, shutdown).await {
            return;
        }
    }
}

/// Whether a file of this name may still be being written.
pub(super) fn in_progress(name: &str) -> bool {
    name.starts_with('.')
        || [".tmp", ".part", ".filepart"]
            .iter()
            .any(|suffix| name.to_ascii_lowercase().ends_with(suffix))
}

/// The files of the drop ready to read, oldest name first; and how many were left for later.
fn ready_files(
    drop: &EdiDrop,
    now: SystemTime,
) -> Result<(Vec<(String, PathBuf)>, usize), EdiError> {
    let mut files = Vec::new();
    let mut unsettled = 0;
    for entry in std::fs::read_dir(&drop.dir).map_err(io(&drop.dir))? {
        let entry = entry.map_err(io(&drop.dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Following links: a drop whose files are links (a sync tool's, a shared store's) is
        // read like any other.
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(err) => {
                // A dangling link, a file removed meanwhile: said, and the others go on.
                tracing::warn!(partner = %drop.partner, file = %path.display(), error = %err, "cannot stat a file of the EDI drop; leaving it");
                unsettled += 1;
                continue;
            }
        };
        if !metadata.is_file() {
            continue;
        }
        let changed = metadata.modified().map_err(io(&path))?;
        let settled = now
            .duration_since(changed)
            .is_ok_and(|age| age >= Duration::from_secs(drop.settle_secs));
        if in_progress(&name) || !settled {
            unsettled += 1;
            continue;
        }
        files.push((name, path));
    }
    files.sort();
    Ok((files, unsettled))
}

/// One round over the drop: every settled file not claimed before is read, published,
/// acknowledged and claimed (see the module docs). `claims` (by content hash) is kept up to
/// date.
///
/// # Errors
/// [`EdiError`]: the file at hand stays unclaimed; files before it are done.
pub async fn poll_edi_once(
    drop: &EdiDrop,
    context: &Context,
    claims: &mut HashMap<String, Claim>,
    now: DateTime<Utc>,
) -> Result<Round, EdiError> {
    let (files, unsettled) = ready_files(drop, SystemTime::from(now))?;
    let mut round = Round {
        unsettled,
        ..Round::default()
    };
    for (name, path) in files {
        // One file that cannot be read, published or moved does not hold up the others: it
        // is logged and counted, stays unclaimed, and is tried again next round.
        match claim_file(drop, context, claims, &name, &path, now).await {
            Ok(FileOutcome::Claimed) => round.claimed += 1,
            Ok(FileOutcome::ClaimedBefore) => round.already_claimed += 1,
            Ok(FileOutcome::Changing) => round.unsettled += 1,
            Err(err) => {
                context
                    .metrics
                    .edi_files
                    .with_label_values(&["failed"])
                    .inc();
                tracing::error!(partner = %drop.partner, file = %name, error = %err, "EDI file not claimed; trying it again next round");
                round.failed += 1;
            }
        }
    }
    Ok(round)
}

/// What became of one file of a round.
enum FileOutcome {
    /// Read, published, acknowledged and claimed.
    Claimed,
    /// Claimed before (its content, under any name).
    ClaimedBefore,
    /// It changed while it was read: still being written.
    Changing,
}

/// Reads the file at `path`, and unless its content was claimed before, publishes it,
/// acknowledges it and records its claim (in `claims` too); then moves it aside.
async fn claim_file(
    drop: &EdiDrop,
    context: &Context,
    claims: &mut HashMap<String, Claim>,
    name: &str,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<FileOutcome, EdiError> {
    let before = tokio::fs::metadata(path).await.map_err(io(path))?;
    let bytes = tokio::fs::read(path).await.map_err(io(path))?;
    let after = tokio::fs::metadata(path).await.map_err(io(path))?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if before.len() != read
        || after.len() != read
        || before.modified().ok() != after.modified().ok()
    {
        return Ok(FileOutcome::Changing);
    }
    let hash = content_hash(&bytes);
    let key = format!("{}{hash}", prefix(&drop.partner));
    if claims.contains_key(&key) {
        context
            .metrics
            .edi_files
            .with_label_values(&["already_claimed"])
            .inc();
        move_done(drop, name, path).await?;
        return Ok(FileOutcome::ClaimedBefore);
    }
    let claim = read_file(drop, context, claims, name, &bytes, &hash, now).await?;
    context
        .checkpoints
        .save(&key, &claim)
        .await
        .map_err(|err| EdiError::Kafka(err.to_string()))?;
    claims.insert(key, claim);
    move_done(drop, name, path).await?;
    Ok(FileOutcome::Claimed)
}

/// Publishes what `bytes` holds and writes its 997; the claim to record.
async fn read_file(
    drop: &EdiDrop,
    context: &Context,
    claims: &HashMap<String, Claim>,
    name: &str,
    bytes: &[u8],
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Claim, EdiError> {
    let short = &hash[..16];
    let publish = |order_id: String, kind: &'static str, body: Vec<u8>, event_id: String| async move {
        let document = Document {
            order_id,
            kind: kind.to_owned(),
            body,
            updated_at: None,
        };
        context
            .publisher
            .publish(&RawDocument {
                source: Source::Edi,
                account: &drop.partner,
                document: &document,
                origin: Origin::Poll,
                event_id: &event_id,
                content_type: X12,
            })
            .await
            .map_err(|err| EdiError::Kafka(err.to_string()))?;
        context.metrics.published.with_label_values(&["edi"]).inc();
        Ok::<(), EdiError>(())
    };
    let mut claim = Claim {
        file: name.to_owned(),
        orders: 0,
        rejected: 0,
        ack_control: None,
        claimed_at: now,
    };
    let interchange = match read_850(bytes) {
        Ok(interchange) => interchange,
        Err(err) => {
            // Not an interchange we can read, nor answer (that takes a TA1): kept whole, for
            // the processor to dead-letter with the reason.
            tracing::warn!(partner = %drop.partner, file = %name, error = %err, "not a readable X12 interchange; published whole, to be dead-lettered");
            context
                .metrics
                .edi_files
                .with_label_values(&["unreadable"])
                .inc();
            publish(
                format!("file-{short}"),
                "x12:unreadable",
                bytes.to_vec(),
                format!("edi:{short}:file"),
            )
            .await?;
            return Ok(claim);
        }
    };
    let sets = single_sets(bytes).unwrap_or_default();
    let set_bytes = |group: &str, set: &str| {
        sets.iter()
            .find(|s| s.group_control_number == group && s.control_number == set)
            .map(|s| s.bytes.clone())
    };
    for order in interchange.orders() {
        let body = set_bytes(&order.group_control_number, &order.control_number)
            .unwrap_or_else(|| bytes.to_vec());
        let event_id = format!(
            "edi:{short}:{}:{}",
            order.group_control_number, order.control_number
        );
        publish(order.number.clone(), "x12:850", body, event_id).await?;
        claim.orders += 1;
    }
    for group in &interchange.groups {
        for rejected in &group.rejected {
            tracing::warn!(partner = %drop.partner, file = %name, set = %rejected.control_number, error = %rejected.error, "transaction set rejected; acknowledged R and dead-lettered");
            context.metrics.edi_rejected.inc();
            // The whole interchange, not the set on its own: a set rejected for its group's
            // envelope (a GE count or control number) would read as valid alone, and be
            // booked although the partner was told R and will send it again.
            let body = bytes.to_vec();
            // By the set's position too: a set rejected for repeating an earlier set's
            // control number must not pass for that set's delivery.
            let id = format!(
                "set-{short}-{}-{}-{}",
                group.control_number, rejected.control_number, rejected.position
            );
            let event_id = format!(
                "edi:{short}:{}:{}:{}",
                group.control_number, rejected.control_number, rejected.position
            );
            publish(id, "x12:850", body, event_id).await?;
            claim.rejected += 1;
        }
    }
    if let Some(dir) = &drop.ack_dir {
        // The next control number of this partner's acknowledgements: after the last one
        // recorded, so a file read again after a crash gets the same 997.
        let last = claims
            .values()
            .filter_map(|c| c.ack_control)
            .max()
            .unwrap_or(0);
        let next = if last >= ControlNumber::MAX {
            1
        } else {
            last + 1
        };
        // `next` is 1 to 999 999 999, always a control number.
        if let Some(control) = ControlNumber::new(next) {
            let controls = AckControls {
                interchange: control,
                group: control,
            };
            if let Some(ack) = write_997(&interchange, controls, now.naive_utc()) {
                let target = dir.join(format!("997-{}-{short}.x12", drop.partner));
                let partial = dir.join(format!(".997-{}-{short}.x12.tmp", drop.partner));
                tokio::fs::write(&partial, ack)
                    .await
                    .map_err(io(&partial))?;
                tokio::fs::rename(&partial, &target)
                    .await
                    .map_err(io(&target))?;
                claim.ack_control = Some(control.get());
            }
        }
    }
    context
        .metrics
        .edi_files
        .with_label_values(&["claimed"])
        .inc();
    Ok(claim)
}

/// Moves a claimed file to the done directory, when there is one.
async fn move_done(drop: &EdiDrop, name: &str, path: &Path) -> Result<(), EdiError> {
    let Some(done) = &drop.done_dir else {
        return Ok(());
    };
    let target = done.join(name);
    if tokio::fs::rename(path, &target).await.is_err() {
        // Another file system: copy, then remove.
        tokio::fs::copy(path, &target).await.map_err(io(&target))?;
        tokio::fs::remove_file(path).await.map_err(io(path))?;
    }
    Ok(())
}
