//! What every provider client shares: one way to send a request to a provider's API and
//! classify its answer.
//!
//! - `limiter.rs` — the allowed rate per app and account (a token bucket), held back further
//!   by a 429's `Retry-After` and by rate-limit headers.
//! - `token.rs` — an account's access token, refreshed before it expires, one refresh at a
//!   time.
//! - `error.rs` — [`ApiError`] and the status table every answer goes through.
//! - `oauth.rs` — tokens from OAuth 2.0 token endpoints (refresh and client-credentials
//!   grants) and the [`Authorize`] that sends them.
//!
//! [`ApiClient::call`] is the one loop around a request: wait for the rate, add the
//! credentials ([`Authorize`]), send, classify. A 401 makes the credentials be fetched anew
//! once; a 429 waits for as long as the provider says (within a budget) and goes again; a
//! 5xx or a timeout is retried a few times with backoff; whatever is left is returned,
//! classified, for the stage to retry later or dead-letter. Retry logic lives here, apart
//! from each provider's transport.

mod error;
mod limiter;
pub mod oauth;
mod token;

pub use error::{provider_message, verdict, ApiError, Refusal, Verdict};
pub use limiter::{retry_after, Limiter};
pub use token::{Token, TokenCache};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use orderbridge_runtime::Backoff;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::metrics::ApiMetrics;

/// The longest provider answer read: an order document is far smaller; anything bigger is
/// not one.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Adds an account's credentials to a request.
#[async_trait]
pub trait Authorize: Send + Sync {
    /// Adds the credentials (fetching a token first when needed, signing the request when
    /// the provider wants it signed). Returns the token used, if any, for [`Authorize::refused`].
    ///
    /// # Errors
    /// When the credentials cannot be had (the token endpoint is down or refuses them).
    async fn authorize(&self, request: &mut reqwest::Request)
        -> Result<Option<Arc<str>>, ApiError>;

    /// The provider answered 401 to a request authorized with `used`: forget it so the next
    /// request gets fresh credentials.
    async fn refused(&self, used: Option<&str>) {
        let _ = used;
    }
}

/// Credentials that need nothing fetched: a static header.
pub struct StaticHeader {
    name: reqwest::header::HeaderName,
    value: reqwest::header::HeaderValue,
}

impl StaticHeader {
    /// `name: value`, the value marked sensitive (never printed by the HTTP stack).
    ///
    /// # Errors
    /// When the value cannot be a header value.
    pub fn new(name: &'static str, value: &str) -> Result<Self, ApiError> {
        let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            ApiError::permanent(
                Refusal::Rejected,
                format!("the {name} credential is not a valid header value"),
            )
        })?;
        value.set_sensitive(true);
        Ok(Self {
            name: reqwest::header::HeaderName::from_static(name),
            value,
        })
    }

    /// `Authorization: Bearer <token>`.
    ///
    /// # Errors
    /// When the token cannot be a header value.
    pub fn bearer(token: &str) -> Result<Self, ApiError> {
        Self::new("authorization", &format!("Bearer {token}"))
    }
}

#[async_trait]
impl Authorize for StaticHeader {
    async fn authorize(
        &self,
        request: &mut reqwest::Request,
    ) -> Result<Option<Arc<str>>, ApiError> {
        request
            .headers_mut()
            .insert(self.name.clone(), self.value.clone());
        Ok(None)
    }
}

/// What a call costs and what its answer tells about the rate.
#[derive(Clone, Copy)]
pub struct Operation {
    /// The provider's name for it (`getOrder`), a metric label.
    pub name: &'static str,
    /// Units of the rate it takes (1, or a query's cost).
    pub units: u32,
    /// Reads the provider's rate-limit headers into the limiter.
    pub observe: Option<fn(&HeaderMap, &Limiter)>,
    /// Reads a rate the provider reports in the body (Shopify's GraphQL `extensions.cost`)
    /// into the limiter, given the units this request reserved: it hands back what was not
    /// charged and sets the bucket's level, so the limiter alone makes a throttled request's
    /// retry wait for the points it lacked. Returns that wait, when the answer was throttled.
    pub observe_body: Option<ObserveBody>,
    /// Says what an answer means when its status alone does not (eBay answers an unknown
    /// order id with 400 and error 32100, TikTok Shop an expired token with 200 and code
    /// 105002, Amazon with 403): the verdict, from the status and body; `None` leaves the
    /// status table's.
    pub classify: Option<Classify>,
}

/// A provider's own reading of an answer: its status and body to a verdict.
pub type Classify = fn(u16, &[u8]) -> Option<Verdict>;

/// A provider's rate as its answer's body reports it: the body, the units the request
/// reserved, the limiter to update; says how long the limiter will hold a throttled retry.
pub type ObserveBody = fn(&[u8], u32, &Limiter) -> Option<Duration>;

impl Operation {
    /// A plain request costing one unit.
    pub const fn named(name: &'static str) -> Self {
        Self {
            name,
            units: 1,
            observe: None,
            observe_body: None,
            classify: None,
        }
    }

    /// Costing `units` of the rate (a query's estimated cost).
    #[must_use]
    pub const fn costing(mut self, units: u32) -> Self {
        self.units = units;
        self
    }

    /// With the rate its answers' bodies report read by `observe`.
    #[must_use]
    pub const fn observing_body(mut self, observe: ObserveBody) -> Self {
        self.observe_body = Some(observe);
        self
    }

    /// With its rate-limit headers read by `observe`.
    #[must_use]
    pub const fn observing(mut self, observe: fn(&HeaderMap, &Limiter)) -> Self {
        self.observe = Some(observe);
        self
    }

    /// With answers classified by `classify` where it knows better than the status.
    #[must_use]
    pub const fn classifying(mut self, classify: Classify) -> Self {
        self.classify = Some(classify);
        self
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its status (2xx).
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, exactly as sent.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON of type `T`.
    ///
    /// # Errors
    /// Transient when it is not: the answer was cut or garbled, which says nothing about the
    /// order; asking again may give a whole one.
    pub fn json<'a, T: serde::Deserialize<'a>>(&'a self, what: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|err| ApiError::transient(format!("{what}: unreadable answer: {err}")))
    }
}

/// How a call retries before it gives up and returns its error.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts for a 5xx, a timeout or a lost connection.
    pub attempts: u32,
    /// First backoff between them.
    pub backoff: Duration,
    /// Longest backoff, and longest `Retry-After` obeyed in place.
    pub max_backoff: Duration,
    /// How long in all a call may wait for 429s before it returns them as transient.
    pub throttle_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            throttle_budget: Duration::from_secs(60),
        }
    }
}

/// One account's connection to one provider's API.
#[derive(Clone)]
pub struct ApiClient {
    provider: &'static str,
    http: reqwest::Client,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    metrics: Option<ApiMetrics>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("provider", &self.provider)
            .field("limiter", &self.limiter.name())
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `provider` sending through `http`, at the rate of `limiter`.
    pub fn new(provider: &'static str, http: reqwest::Client, limiter: Arc<Limiter>) -> Self {
        Self {
            provider,
            http,
            limiter,
            retry: RetryPolicy::default(),
            metrics: None,
        }
    }

    /// With another retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Counting requests into `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Option<ApiMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The rate this client keeps.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// The HTTP client, for requests that are not the provider's API (a token endpoint).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends the request `build` makes, authorized by `auth`, as `operation`; see the module
    /// docs for what is retried in place.
    ///
    /// # Errors
    /// [`ApiError`], classified, once retrying in place is over.
    pub async fn call(
        &self,
        operation: Operation,
        auth: &dyn Authorize,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, ApiError> {
        let mut backoff = Backoff::new(self.retry.backoff, self.retry.max_backoff);
        let mut failures = 0u32;
        let mut refreshed = false;
        let mut throttled_for = Duration::ZERO;
        loop {
            self.limiter.acquire(operation.units).await;
            let mut request = build(&self.http).build().map_err(|err| {
                ApiError::permanent(
                    Refusal::Rejected,
                    format!("{}: cannot build the request: {err}", operation.name),
                )
            })?;
            let used = auth.authorize(&mut request).await?;
            let started = std::time::Instant::now();
            let answer = self.send(request).await;
            let elapsed = started.elapsed();
            let (status, headers, body) = match answer {
                Ok(answer) => answer,
                Err(reason) => {
                    self.count(operation.name, "error", elapsed);
                    failures += 1;
                    if failures >= self.retry.attempts {
                        return Err(ApiError::transient(format!("{}: {reason}", operation.name)));
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            self.count(operation.name, status_class(status), elapsed);
            if let Some(observe) = operation.observe {
                observe(&headers, &self.limiter);
            }
            let longest = self.retry.max_backoff.max(self.retry.throttle_budget);
            let reported = operation
                .observe_body
                .and_then(|observe| observe(&body, operation.units, &self.limiter))
                .map(|wait| wait.min(longest));
            let hint = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, longest))
                .or(reported);
            let what = || format!("{} {}: {}", operation.name, status, provider_message(&body));
            let verdict = operation
                .classify
                .and_then(|classify| classify(status.as_u16(), &body))
                .unwrap_or_else(|| verdict(status.as_u16()));
            match verdict {
                Verdict::Success => {
                    return Ok(Reply {
                        status,
                        headers,
                        body,
                    })
                }
                Verdict::Unauthorized if !refreshed => {
                    // The token may have been revoked or expired early: once, with fresh ones.
                    refreshed = true;
                    auth.refused(used.as_deref()).await;
                }
                Verdict::Unauthorized => {
                    return Err(ApiError::Transient {
                        reason: format!(
                            "{} (the account's credentials are refused; check them)",
                            what()
                        ),
                        retry_after: hint,
                    })
                }
                Verdict::Throttled => {
                    // Flow control, not failure: every later request of this account waits
                    // behind it, then this one goes again.
                    let wait = hint.unwrap_or_else(|| backoff.next_delay());
                    throttled_for += wait;
                    if throttled_for > self.retry.throttle_budget {
                        return Err(ApiError::Transient {
                            reason: what(),
                            retry_after: Some(wait),
                        });
                    }
                    // A provider that reported its bucket in the body has set the limiter's
                    // level already: the next reservation waits exactly for what is missing.
                    if reported.is_none() {
                        self.limiter.hold_until(tokio::time::Instant::now() + wait);
                    }
                }
                Verdict::Transient => {
                    failures += 1;
                    if failures >= self.retry.attempts {
                        return Err(ApiError::Transient {
                            reason: what(),
                            retry_after: hint,
                        });
                    }
                    tokio::time::sleep(backoff.next_delay_at_least(hint)).await;
                }
                Verdict::Refused(refusal) => return Err(ApiError::permanent(refusal, what())),
            }
        }
    }

    /// Sends and reads the whole answer (up to [`MAX_BODY`]); `Err` with a reason when no
    /// answer came.
    async fn send(
        &self,
        request: reqwest::Request,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let mut response = self
            .http
            .execute(request)
            .await
            .map_err(|err| describe(&err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| describe(&err))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("answer larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body.freeze()))
    }

    fn count(&self, operation: &str, outcome: &str, elapsed: Duration) {
        if let Some(metrics) = &self.metrics {
            metrics
                .requests
                .with_label_values(&[self.provider, operation, outcome])
                .inc();
            metrics
                .request_seconds
                .with_label_values(&[self.provider, operation])
                .observe(elapsed.as_secs_f64());
        }
    }
}

/// A transport failure in words that never include the request's URL query (which may carry
/// a signature or a key).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "answer cut off"
    } else {
        "request failed"
    };
    let host = err
        .url()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{kind} ({host})")
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        401 => "401",
        403 => "403",
        404 => "404",
        429 => "429",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// The rate limiters of one process, one per app and account, shared by every client of that
/// account (an enrichment and a backfill in one process share one rate).
#[derive(Debug, Default)]
pub struct Limiters {
    by_name: Mutex<HashMap<String, Arc<Limiter>>>,
}

impl Limiters {
    /// The limiter named `name`, made with `rate_per_sec` and `burst` the first time.
    pub fn get(&self, name: &str, rate_per_sec: f64, burst: u32) -> Arc<Limiter> {
        let mut by_name = self.by_name.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            by_name
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(Limiter::new(name, rate_per_sec, burst))),
        )
    }
}
