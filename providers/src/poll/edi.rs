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
    loop {
        match poll_edi_once(drop, context, &mut claims, Utc::now()).await {
            Ok(round) => {
                context
                    .metrics
                    .rounds
                    .with_label_values(&["edi", "ok"])
                    .inc();
                if round.claimed > 0 {
                    tracing::info!(partner = %drop.partner, ?round, "EDI round done");
                }
            }
            Err(err) => {
                context
                    .metrics
                    .rounds
                    .with_label_values(&["edi", "failed"])
                    .inc();
                tracing::error!(partner = %drop.partner, error = %err, "EDI round failed; the file stays unclaimed and is read again");
            }
        }
        if !pause(interval, shutdown).await {
            return;
        }
    }
}

/// Whether a file of this name may still be being written.
fn in_progress(name: &str) -> bool {
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
        let metadata = entry.metadata().map_err(io(&path))?;
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
        let bytes = tokio::fs::read(&path).await.map_err(io(&path))?;
        let hash = content_hash(&bytes);
        let key = format!("{}{hash}", prefix(&drop.partner));
        if claims.contains_key(&key) {
            round.already_claimed += 1;
            context
                .metrics
                .edi_files
                .with_label_values(&["already_claimed"])
                .inc();
            move_done(drop, &name, &path).await?;
            continue;
        }
        let claim = read_file(drop, context, claims, &name, &bytes, &hash, now).await?;
        context
            .checkpoints
            .save(&key, &claim)
            .await
            .map_err(|err| EdiError::Kafka(err.to_string()))?;
        claims.insert(key, claim);
        move_done(drop, &name, &path).await?;
        round.claimed += 1;
    }
    Ok(round)
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
            let body = set_bytes(&group.control_number, &rejected.control_number)
                .unwrap_or_else(|| bytes.to_vec());
            let id = format!(
                "set-{short}-{}-{}",
                group.control_number, rejected.control_number
            );
            let event_id = format!(
                "edi:{short}:{}:{}",
                group.control_number, rejected.control_number
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
