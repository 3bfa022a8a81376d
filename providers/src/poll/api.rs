//! Polling a provider's API for changed orders; see the module docs of [`super`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orderbridge_runtime::Backoff;
use orderbridge_schemas::Origin;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{pause, ApiPoll, Context};
use crate::api::{ListQuery, OrderApi, TimeField};
use crate::client::ApiError;
use crate::publish::{content_event_id, RawDocument};

/// An account's high-water mark: every change before `through` has been published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMark {
    /// Changes up to here are in the raw topic.
    pub through: DateTime<Utc>,
}

/// The checkpoint key of `poll`'s mark.
fn key(poll: &ApiPoll) -> String {
    format!("poll/{}/{}", poll.source, poll.account)
}

/// Polls until `shutdown`: reads the mark, then a round every `interval`.
pub(super) async fn run(
    poll: &ApiPoll,
    api: Arc<dyn OrderApi>,
    context: &Context,
    interval: Duration,
    shutdown: &CancellationToken,
) {
    let source = poll.source.as_str();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut mark = loop {
        match context.checkpoints.load::<ApiMark>(&key(poll)).await {
            Ok(mut marks) => break marks.remove(&key(poll)),
            Err(err) => {
                tracing::warn!(%source, account = %poll.account, error = %err, "cannot read the poll mark; trying again");
                if !pause(backoff.next_delay(), shutdown).await {
                    return;
                }
            }
        }
    };
    if let Some(found) = mark {
        tracing::info!(%source, account = %poll.account, through = %found.through, "polling from the mark");
    }
    loop {
        match poll_api_once(poll, api.as_ref(), context, mark, Utc::now(), shutdown).await {
            Ok(next) => {
                context
                    .metrics
                    .rounds
                    .with_label_values(&[source, "ok"])
                    .inc();
                mark = Some(next);
            }
            Err(err) => {
                context
                    .metrics
                    .rounds
                    .with_label_values(&[source, "failed"])
                    .inc();
                tracing::error!(%source, account = %poll.account, error = %err, "poll round failed; the mark stays, the next round reads the window again");
            }
        }
        // Set after every round, failed ones too: a poll that keeps failing shows its mark
        // falling behind.
        if let Some(mark) = mark {
            let lag = (Utc::now() - mark.through).num_seconds();
            context
                .metrics
                .mark_lag
                .with_label_values(&[source])
                .set(lag);
        }
        if !pause(interval, shutdown).await {
            return;
        }
    }
}

/// Why a round did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The provider refused (a permanent error), or kept failing.
    #[error("{0}")]
    Provider(#[from] ApiError),
    /// Kafka did not take a document or the mark.
    #[error("{0}")]
    Kafka(String),
    /// Shut down meanwhile.
    #[error("shut down")]
    Interrupted,
}

/// One round: every order changed in `[mark − overlap, now)` (or from `poll.start`, or now,
/// with no mark) published, then the mark moved to `now` and saved. The new mark.
///
/// # Errors
/// [`RoundError`]: the mark did not move.
pub async fn poll_api_once(
    poll: &ApiPoll,
    api: &dyn OrderApi,
    context: &Context,
    mark: Option<ApiMark>,
    now: DateTime<Utc>,
    shutdown: &CancellationToken,
) -> Result<ApiMark, RoundError> {
    let overlap =
        chrono::Duration::seconds(i64::try_from(poll.overlap_secs).unwrap_or(i64::MAX / 2));
    let from = match mark {
        Some(mark) => mark.through - overlap,
        None => poll.start.unwrap_or(now),
    };
    let query = ListQuery {
        field: TimeField::Updated,
        from,
        to: Some(now),
    };
    let mut cursor: Option<String> = None;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut published = 0u64;
    loop {
        let listed = tokio::select! {
            () = shutdown.cancelled() => return Err(RoundError::Interrupted),
            listed = api.list_orders(&query, cursor.as_deref()) => listed,
        };
        let page = match listed {
            Ok(page) => page,
            Err(ApiError::Transient {
                retry_after,
                reason,
                ..
            }) if backoff.attempts() < 8 => {
                let delay = backoff.next_delay_at_least(retry_after);
                tracing::warn!(source = %poll.source, %reason, ?delay, "listing changed orders failed; trying again");
                if !pause(delay, shutdown).await {
                    return Err(RoundError::Interrupted);
                }
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        backoff.reset();
        for document in &page.documents {
            let event_id = content_event_id(Origin::Poll, document);
            let raw = RawDocument {
                source: poll.source,
                account: &poll.account,
                document,
                origin: Origin::Poll,
                event_id: &event_id,
                content_type: crate::publish::JSON,
            };
            context
                .publisher
                .publish(&raw)
                .await
                .map_err(|err| RoundError::Kafka(err.to_string()))?;
            published += 1;
        }
        context
            .metrics
            .published
            .with_label_values(&[poll.source.as_str()])
            .inc_by(u64::try_from(page.documents.len()).unwrap_or(0));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let next = ApiMark { through: now };
    context
        .checkpoints
        .save(&key(poll), &next)
        .await
        .map_err(|err| RoundError::Kafka(err.to_string()))?;
    tracing::info!(source = %poll.source, account = %poll.account, %from, through = %now, published, "poll round done");
    Ok(next)
}
