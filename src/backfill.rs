//! `orderbridge backfill`: wiring only. The work is `orderbridge_providers::backfill`.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use orderbridge_providers::backfill::{self, Request};
use orderbridge_providers::checkpoint::Checkpoints;
use orderbridge_providers::publish::RawPublisher;
use orderbridge_providers::Apis;
use orderbridge_schemas::Source;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Options of `orderbridge backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The provider (`sumeru`, `ebay`, …), as in `/webhooks/<source>`.
    source: String,
    /// The account, as in order keys (a shop id, a seller id); `-` when the source has none.
    #[arg(long, default_value = "-")]
    account: String,
    /// Orders created from this day (`2026-01-01`) or instant (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    from: DateTime<Utc>,
    /// Orders created before this day or instant; up to now when not given.
    #[arg(long, value_parser = parse_time)]
    to: Option<DateTime<Utc>>,
    /// Read the window again even if a backfill of it finished (orders that did not change
    /// add nothing downstream).
    #[arg(long)]
    restart: bool,
}

/// A day (midnight UTC) or an RFC 3339 instant.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{text:?} is neither a day (2026-01-01) nor an RFC 3339 instant"))
}

/// Runs the backfill until it is done, fails or is interrupted.
pub async fn run(
    args: &BackfillArgs,
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let source: Source = args
        .source
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown source {:?}", args.source))?;
    if let Some(to) = args.to {
        anyhow::ensure!(to > args.from, "--to must be after --from");
    }
    let apis = Apis::new(config.api.clone(), None).context("setting up the HTTP client")?;
    let api = apis
        .order_api(source, &args.account)
        .map_err(|err| anyhow::anyhow!("[api.{source}]: {err}"))?
        .with_context(|| {
            format!(
                "no [api.{}] configured for account {:?}: backfill reads the provider's API",
                source.as_str().replace('-', "_"),
                args.account
            )
        })?;
    let publisher = RawPublisher::new(&config.kafka, &config.topics.raw)?;
    let checkpoints = Checkpoints::new(&config.kafka, &config.topics.checkpoints)?;
    let request = Request {
        source,
        account: args.account.clone(),
        from: args.from,
        to: args.to,
        restart: args.restart,
    };
    let mut report = orderbridge_providers::progress::for_stderr(&format!("backfill {source}"));
    let summary = backfill::run(
        api.as_ref(),
        &publisher,
        &checkpoints,
        &request,
        report.as_mut(),
        &shutdown,
    )
    .await?;
    println!(
        "backfill {source} {}: {} orders published ({} by this run){}",
        request.checkpoint_key(),
        summary.published,
        summary.this_run,
        if summary.already_done {
            ", already done"
        } else {
            ""
        }
    );
    Ok(())
}
