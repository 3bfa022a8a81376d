//! `orderbridge backfill <source> [--account A] --from DATE [--to DATE]`: the orders a
//! provider holds from before its webhooks were set up, page by page, each published to the
//! raw topic as a webhook of it would be (`ob-origin: backfill`), then normalized and
//! delivered like any other.
//!
//! **Resumable.** After each page is acknowledged by the broker, the cursor to the next
//! page is checkpointed (`orders.checkpoints.v1`, key `backfill/<source>/<account>/<from>/<to>`).
//! A killed backfill run again continues from the page after the last checkpoint; the page
//! it was publishing when killed is published again, and those records repeat deliveries the
//! processor already has (their event id is made from their bytes), so each order reaches
//! the ERP once. A finished backfill is marked done: running it again publishes nothing,
//! and `--restart` reads the window again, adding nothing downstream for orders that did not
//! change.
//!
//! **Rate.** The provider's client keeps the account's rate (a token bucket, and the
//! provider's 429s and rate-limit headers); a provider that is down or throttling beyond
//! the client's patience is waited out here, with the reason shown, never skipped.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use orderbridge_runtime::Backoff;
use orderbridge_schemas::{Origin, Source};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::{ListQuery, OrderApi, Page, TimeField};
use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::client::ApiError;
use crate::progress::Report;
use crate::publish::{content_event_id, RawDocument, RawPublisher};

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Request {
    /// The provider.
    pub source: Source,
    /// The account (`-` when the source has none).
    pub account: String,
    /// Orders created from (inclusive).
    pub from: DateTime<Utc>,
    /// Orders created before (exclusive); open when `None`.
    pub to: Option<DateTime<Utc>>,
    /// Read the window again even if a backfill of it finished.
    pub restart: bool,
}

impl Request {
    /// The checkpoint key of this window.
    pub fn checkpoint_key(&self) -> String {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        format!(
            "backfill/{}/{}/{}/{}",
            self.source,
            self.account,
            at(self.from),
            self.to.map_or_else(|| "open".to_owned(), at)
        )
    }
}

/// Where a backfill stands, as checkpointed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The cursor of the next page to read; `None` before the first page.
    pub cursor: Option<String>,
    /// Orders published so far.
    pub published: u64,
    /// Pages read so far.
    pub pages: u64,
    /// The listing's size, when the provider said.
    pub total: Option<u64>,
    /// Every page was read and published.
    pub done: bool,
}

/// How a backfill ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Orders published in all (this run and the runs it continued).
    pub published: u64,
    /// Orders published by this run.
    pub this_run: u64,
    /// The window was already done; nothing was read.
    pub already_done: bool,
}

/// Why a backfill stopped before its end. Its checkpoint stays: run it again to continue.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The provider refused for good (a cursor it no longer takes, permissions).
    #[error("the provider refused: {0}")]
    Provider(ApiError),
    /// The checkpoint could not be read.
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    /// Stopped (Ctrl-C, SIGTERM) after `published` orders.
    #[error("interrupted after {published} orders; run the same command again to continue")]
    Interrupted {
        /// Orders published up to the last checkpoint.
        published: u64,
    },
}

/// Runs the backfill `request` with `api`, publishing with `publisher`, keeping its place in
/// `checkpoints`, showing progress on `report`, until done or `shutdown`.
///
/// # Errors
/// [`BackfillError`]; the checkpoint then holds what was done.
pub async fn run(
    api: &dyn OrderApi,
    publisher: &RawPublisher,
    checkpoints: &Checkpoints,
    request: &Request,
    report: &mut dyn Report,
    shutdown: &CancellationToken,
) -> Result<Summary, BackfillError> {
    let key = request.checkpoint_key();
    let mut mark = if request.restart {
        Mark::default()
    } else {
        checkpoints
            .load::<Mark>(&key)
            .await?
            .remove(&key)
            .unwrap_or_default()
    };
    if mark.done {
        report.end(&format!(
            "already done ({} orders); --restart reads the window again",
            mark.published
        ));
        return Ok(Summary {
            published: mark.published,
            this_run: 0,
            already_done: true,
        });
    }
    let started_with = mark.published;
    report.begin(mark.total, mark.published);
    let query = ListQuery {
        field: TimeField::Created,
        from: request.from,
        to: request.to,
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let interrupted = |mark: &Mark| BackfillError::Interrupted {
        published: mark.published,
    };
    // The page at `mark.cursor`, being read. Once a page is in hand its successor is read
    // while the page goes to Kafka and its checkpoint is saved, so the provider's rate, not
    // our round trips, sets the pace.
    let list = |cursor: Option<String>| -> Listing<'_> {
        let query = &query;
        Box::pin(async move { api.list_orders(query, cursor.as_deref()).await })
    };
    let store = Store {
        request,
        publisher,
        checkpoints,
        key: &key,
    };
    let mut listing = list(mark.cursor.clone());
    // The page after the last one stored, when it was read meanwhile.
    let mut prefetched: Option<Result<Page, ApiError>> = None;
    loop {
        let listed = match prefetched.take() {
            Some(listed) => listed,
            None => tokio::select! {
                () = shutdown.cancelled() => return Err(interrupted(&mark)),
                listed = &mut listing => listed,
            },
        };
        let page = match listed {
            Ok(page) => page,
            Err(err @ ApiError::Transient { .. }) => {
                let delay = match &err {
                    ApiError::Transient { retry_after, .. } => {
                        backoff.next_delay_at_least(*retry_after)
                    }
                    ApiError::Permanent { .. } => backoff.next_delay(),
                };
                report.waiting(&format!("{err}; again in {}s", delay.as_secs().max(1)));
                wait(delay, shutdown)
                    .await
                    .map_err(|()| interrupted(&mark))?;
                listing = list(mark.cursor.clone());
                continue;
            }
            Err(err) => return Err(BackfillError::Provider(err)),
        };
        backoff.reset();
        let count = u64::try_from(page.documents.len()).unwrap_or(u64::MAX);
        let next = Mark {
            done: page.next.is_none(),
            cursor: page.next.clone(),
            published: mark.published.saturating_add(count),
            pages: mark.pages.saturating_add(1),
            total: page.total.or(mark.total),
        };
        // Futures are lazy: the next page's request runs only while polled, so it is polled
        // beside the storing of this one.
        let mut ahead = next
            .cursor
            .clone()
            .map(|cursor| futures::future::maybe_done(list(Some(cursor))));
        let reading = async {
            if let Some(ahead) = ahead.as_mut() {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = ahead => {}
                }
            }
        };
        let (stored, ()) = tokio::join!(store.page(&page, &next, report, shutdown), reading);
        stored.map_err(|()| interrupted(&mark))?;
        mark = next;
        report.advance(mark.published, mark.total);
        if mark.done {
            let this_run = mark.published - started_with;
            report.end(&format!(
                "done: {} orders ({this_run} this run)",
                mark.published
            ));
            return Ok(Summary {
                published: mark.published,
                this_run,
                already_done: false,
            });
        }
        match ahead.and_then(|mut ahead| std::pin::Pin::new(&mut ahead).take_output()) {
            Some(listed) => prefetched = Some(listed),
            // Not read (shut down meanwhile): read from the mark.
            None => listing = list(mark.cursor.clone()),
        }
    }
}

/// Where a backfill's pages go.
struct Store<'a> {
    request: &'a Request,
    publisher: &'a RawPublisher,
    checkpoints: &'a Checkpoints,
    key: &'a str,
}

impl Store<'_> {
    /// Puts `page` in Kafka, then saves `next`, the mark past it: the cursor never moves past
    /// a page that is not in Kafka. Failures are waited out; `Err` when shut down meanwhile.
    async fn page(
        &self,
        page: &Page,
        next: &Mark,
        report: &mut dyn Report,
        shutdown: &CancellationToken,
    ) -> Result<(), ()> {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let event_ids: Vec<String> = page
            .documents
            .iter()
            .map(|document| content_event_id(Origin::Backfill, document))
            .collect();
        let raws: Vec<RawDocument<'_>> = page
            .documents
            .iter()
            .zip(&event_ids)
            .map(|(document, event_id)| RawDocument {
                source: self.request.source,
                account: &self.request.account,
                document,
                origin: Origin::Backfill,
                event_id,
                content_type: crate::publish::JSON,
            })
            .collect();
        loop {
            let sends = raws.iter().map(|raw| self.publisher.publish(raw));
            let failed = futures::future::join_all(sends)
                .await
                .into_iter()
                .find_map(Result::err);
            let Some(err) = failed else { break };
            report.waiting(&format!("Kafka did not take the page: {err}"));
            wait(backoff.next_delay(), shutdown).await?;
        }
        while let Err(err) = self.checkpoints.save(self.key, next).await {
            report.waiting(&err.to_string());
            wait(backoff.next_delay(), shutdown).await?;
        }
        Ok(())
    }
}

/// A page of the listing being read.
type Listing<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Page, ApiError>> + Send + 'a>>;

/// Sleeps `delay`; `Err` when shut down meanwhile.
async fn wait(delay: Duration, shutdown: &CancellationToken) -> Result<(), ()> {
    tokio::select! {
        () = shutdown.cancelled() => Err(()),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_has_one_checkpoint_key() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        let request = Request {
            source: Source::Sumeru,
            account: "-".into(),
            from: at("2026-01-01T00:00:00Z"),
            to: None,
            restart: false,
        };
        assert_eq!(
            request.checkpoint_key(),
            "backfill/sumeru/-/2026-01-01T00:00:00Z/open"
        );
        let bounded = Request {
            to: Some(at("2026-02-01T00:00:00Z")),
            ..request
        };
        assert_eq!(
            bounded.checkpoint_key(),
            "backfill/sumeru/-/2026-01-01T00:00:00Z/2026-02-01T00:00:00Z"
        );
    }
}
