//! `orderbridge poll`: the long-running service for sources that do not push.
//!
//! - **APIs** (`[[poll.api]]`): each round lists the orders the provider changed since the
//!   account's high-water mark (less an overlap, for a provider that commits late), publishes
//!   each to the raw topic as a webhook would be (`ob-origin: poll`), and only then moves the
//!   mark to the round's end. The mark is in the checkpoints topic (`poll/<source>/<account>`),
//!   so a restarted service goes on from it; a round cut short is read again, and what it
//!   publishes twice is one delivery to the processor (the event id is the content's hash).
//! - **EDI drops** (`[[poll.edi]]`): each round reads a partner's directory. A file is
//!   claimed by its content hash (`edi/<partner>/<sha256>` in the checkpoints topic): each
//!   purchase order in it goes to the raw topic as an interchange of its own (`ob-source:
//!   edi`, keyed by its PO number), the 997 acknowledgement is written when asked for, and
//!   then the claim is recorded (and the file moved, when asked for). A file claimed before,
//!   under any name, is not read again; one whose claim was not recorded (a crash) is read
//!   again and adds nothing downstream. A file that is not an X12 interchange is published
//!   whole under `edi:<partner>:file-<hash>`, so the processor dead-letters it with its
//!   reason: nothing is skipped silently.
//!
//! Files still being written are left for the next round: names starting with `.` or ending
//! in `.tmp`, `.part` or `.filepart` (what SFTP servers and clients use), and files changed
//! within `settle_secs`. A drop on the partner's SFTP server is fetched into the local
//! directory at the start of each round, and the 997s sent back there ([`sftp`]).

mod api;
mod edi;
pub mod sftp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orderbridge_runtime::Health;
use orderbridge_schemas::Source;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoints;
use crate::metrics::ApiMetrics;
use crate::publish::RawPublisher;
use crate::Apis;

pub use api::{poll_api_once, ApiMark, RoundError};
pub use edi::{poll_edi_once, Claim, EdiError, Round};

/// `[poll]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Seconds between rounds.
    pub interval_secs: u64,
    /// Address for `/metrics`, `/healthz`, `/readyz`.
    pub listen: std::net::SocketAddr,
    /// Providers' APIs polled for changed orders.
    pub api: Vec<ApiPoll>,
    /// Partners' EDI file drops.
    pub edi: Vec<EdiDrop>,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval_secs: 60,
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], 9094)),
            api: Vec::new(),
            edi: Vec::new(),
        }
    }
}

/// One account of one provider's API, polled (`[[poll.api]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiPoll {
    /// The source (`sumeru`, `ebay`, `bigcommerce`, …); its `[api.<source>]` must configure
    /// the account.
    pub source: Source,
    /// The account (`-` when the source has none).
    #[serde(default = "no_account")]
    pub account: String,
    /// Where the first round starts when there is no mark yet; unset: when the service first
    /// ran (history is `orderbridge backfill`'s).
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    /// How far before the mark each round reads again, in seconds, for changes the provider
    /// makes visible late.
    #[serde(default = "default_overlap")]
    pub overlap_secs: u64,
}

fn no_account() -> String {
    "-".into()
}

fn default_overlap() -> u64 {
    300
}

/// One partner's EDI drop (`[[poll.edi]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdiDrop {
    /// The partner: the account of its orders' keys (`edi:<partner>:<PO number>`).
    pub partner: String,
    /// The directory the partner's 850 files arrive in (a local path, a mounted or synced
    /// drop, or where files fetched from the partner's SFTP server land).
    pub dir: PathBuf,
    /// Where to write a 997 acknowledgement for each file read; unset: none.
    #[serde(default)]
    pub ack_dir: Option<PathBuf>,
    /// Where to move a file once claimed; unset: it stays (and is recognised as claimed).
    #[serde(default)]
    pub done_dir: Option<PathBuf>,
    /// A file changed within this many seconds may still be being written: next round.
    #[serde(default = "default_settle")]
    pub settle_secs: u64,
    /// The partner's SFTP server, when the drop is there: its files are brought into `dir`
    /// each round ([`sftp`]).
    #[serde(default)]
    pub sftp: Option<sftp::SftpDrop>,
}

fn default_settle() -> u64 {
    5
}

impl PollConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A message naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 {
            return Err("poll.interval_secs must be at least 1".into());
        }
        for poll in &self.api {
            if poll.overlap_secs > MAX_OVERLAP_SECS {
                return Err(format!(
                    "poll.api ({}): overlap_secs {} is more than 30 days",
                    poll.source, poll.overlap_secs
                ));
            }
        }
        let mut partners = std::collections::HashSet::new();
        for drop in &self.edi {
            // ':' would split its orders' keys, '/' reach into another partner's claims.
            if drop.partner.is_empty() || drop.partner.contains([':', '/']) {
                return Err(format!(
                    "poll.edi: partner {:?} must be a non-empty name without ':' or '/'",
                    drop.partner
                ));
            }
            if !partners.insert(drop.partner.as_str()) {
                return Err(format!(
                    "poll.edi: partner {:?} is listed twice; two readers would race for its files",
                    drop.partner
                ));
            }
            if let Some(sftp) = &drop.sftp {
                sftp.validate(drop)?;
            }
            if drop.ack_dir.as_ref() == Some(&drop.dir) {
                return Err(format!(
                    "poll.edi ({}): ack_dir is the drop itself; each 997 would be read back as a file of the partner's",
                    drop.partner
                ));
            }
        }
        Ok(())
    }
}

/// The longest overlap a poll may read again: 30 days.
const MAX_OVERLAP_SECS: u64 = 30 * 24 * 3600;

/// The poll service's metrics.
#[derive(Clone)]
pub struct PollMetrics {
    /// `orderbridge_poll_published_total{source}`: records published to the raw topic.
    pub published: IntCounterVec,
    /// `orderbridge_poll_rounds_total{source,outcome}`: rounds, `ok` or `failed`.
    pub rounds: IntCounterVec,
    /// `orderbridge_poll_edi_files_total{outcome}`: files `claimed`, `already_claimed`,
    /// `unreadable` (published whole, to be dead-lettered), `failed` (not claimed: tried again
    /// next round); from an SFTP drop, `downloaded`, `ack_sent`, `sftp_failed`,
    /// `sftp_skipped` (neither file nor directory) and `sftp_kept` (fetched, but its server
    /// copy cannot be moved or removed).
    pub edi_files: IntCounterVec,
    /// `orderbridge_poll_edi_rejected_sets_total`: transaction sets rejected (acknowledged
    /// `R`, published to be dead-lettered).
    pub edi_rejected: prometheus::IntCounter,
    /// `orderbridge_poll_mark_lag_seconds{source}`: how far behind now the oldest mark is.
    pub mark_lag: IntGaugeVec,
    /// Requests to providers.
    pub api: ApiMetrics,
}

impl PollMetrics {
    /// Registers into `registry`.
    ///
    /// # Errors
    /// When a name is taken.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let published = IntCounterVec::new(
            Opts::new(
                "orderbridge_poll_published_total",
                "Records the poll service published to the raw topic",
            ),
            &["source"],
        )?;
        let rounds = IntCounterVec::new(
            Opts::new("orderbridge_poll_rounds_total", "Poll rounds, by outcome"),
            &["source", "outcome"],
        )?;
        let edi_files = IntCounterVec::new(
            Opts::new(
                "orderbridge_poll_edi_files_total",
                "EDI files, by what became of them",
            ),
            &["outcome"],
        )?;
        let edi_rejected = prometheus::IntCounter::with_opts(Opts::new(
            "orderbridge_poll_edi_rejected_sets_total",
            "X12 transaction sets rejected (acknowledged with R)",
        ))?;
        let mark_lag = IntGaugeVec::new(
            Opts::new(
                "orderbridge_poll_mark_lag_seconds",
                "How far the poll's high-water mark is behind now",
            ),
            &["source"],
        )?;
        for metric in [&published, &rounds, &edi_files] {
            registry.register(Box::new(metric.clone()))?;
        }
        registry.register(Box::new(edi_rejected.clone()))?;
        registry.register(Box::new(mark_lag.clone()))?;
        Ok(Self {
            published,
            rounds,
            edi_files,
            edi_rejected,
            mark_lag,
            api: ApiMetrics::register(registry)?,
        })
    }
}

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The configuration asks for what cannot be polled.
    #[error("{0}")]
    Setup(String),
    /// A loop panicked.
    #[error("a poll loop failed: {0}")]
    Loop(#[from] tokio::task::JoinError),
}

/// What a poll loop needs.
#[derive(Clone)]
pub struct Context {
    /// Providers' API clients.
    pub apis: Arc<Apis>,
    /// The raw topic.
    pub publisher: RawPublisher,
    /// The checkpoints topic.
    pub checkpoints: Checkpoints,
    /// Metrics.
    pub metrics: PollMetrics,
}

/// Polls every configured API and drop, a round every `interval_secs`, until `shutdown`;
/// ready while its loops run.
///
/// # Errors
/// When an API account is not configured under `[api]` (at start, not at the first round).
pub async fn run(
    config: &PollConfig,
    context: Context,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> Result<(), PollError> {
    let interval = Duration::from_secs(config.interval_secs);
    let mut loops = tokio::task::JoinSet::new();
    for poll in &config.api {
        let api = context
            .apis
            .order_api(poll.source, &poll.account)
            .map_err(|err| PollError::Setup(format!("poll.api {}: {err}", poll.source)))?
            .ok_or_else(|| {
                PollError::Setup(format!(
                    "poll.api: no [api.{}] configured for account {:?}",
                    poll.source.as_str().replace('-', "_"),
                    poll.account
                ))
            })?;
        let (poll, context, shutdown) = (poll.clone(), context.clone(), shutdown.clone());
        loops.spawn(async move { api::run(&poll, api, &context, interval, &shutdown).await });
    }
    for drop in &config.edi {
        let (drop, context, shutdown) = (drop.clone(), context.clone(), shutdown.clone());
        loops.spawn(async move { edi::run(&drop, &context, interval, &shutdown).await });
    }
    if loops.is_empty() {
        return Err(PollError::Setup(
            "nothing to poll: configure [[poll.api]] or [[poll.edi]]".into(),
        ));
    }
    health.set_ready(true);
    while let Some(ended) = loops.join_next().await {
        ended?;
    }
    health.set_ready(false);
    Ok(())
}

/// Sleeps `delay`; `false` when shut down meanwhile.
async fn pause(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_of(partner: &str) -> EdiDrop {
        EdiDrop {
            partner: partner.into(),
            dir: PathBuf::from("in"),
            ack_dir: None,
            done_dir: None,
            settle_secs: 5,
            sftp: None,
        }
    }

    #[test]
    fn settings_that_would_lose_or_mix_up_files_are_refused() {
        let with = |edi: Vec<EdiDrop>| PollConfig {
            edi,
            ..PollConfig::default()
        };
        assert!(with(vec![drop_of("acme"), drop_of("globex")])
            .validate()
            .is_ok());
        for (edi, why) in [
            (vec![drop_of("acme/x")], "'/'"),
            (vec![drop_of("a:b")], "':'"),
            (vec![drop_of("acme"), drop_of("acme")], "twice"),
            (
                vec![EdiDrop {
                    ack_dir: Some(PathBuf::from("in")),
                    ..drop_of("acme")
                }],
                "ack_dir",
            ),
        ] {
            match with(edi).validate() {
                Err(err) => assert!(err.contains(why), "{err}"),
                Ok(()) => panic!("accepted, though {why}"),
            }
        }
    }

    #[test]
    fn an_overlap_that_time_arithmetic_cannot_hold_is_refused() {
        let config = |overlap_secs| PollConfig {
            api: vec![ApiPoll {
                source: Source::Sumeru,
                account: "-".into(),
                start: None,
                overlap_secs,
            }],
            ..PollConfig::default()
        };
        assert!(config(300).validate().is_ok());
        match config(u64::MAX).validate() {
            Err(err) => assert!(err.contains("overlap_secs"), "{err}"),
            Ok(()) => panic!("an overlap of u64::MAX seconds accepted"),
        }
    }
}
