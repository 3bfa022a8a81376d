//! The HTTP surface: `POST /webhooks/{source}` and `POST /webhooks/{source}/{account}` (and
//! `GET` on both for handshakes),
//! merged with `/metrics`, `/healthz` and `/readyz`. A plain [`Router`], so tests call it
//! with `tower::ServiceExt::oneshot` and no socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use orderbridge_runtime::{
    now_ms, ops_router, status_counter, Health, KafkaSettings, StatusWriter,
};
use orderbridge_schemas::{Origin, Source, Status, Topics};

use crate::config::IngestConfig;
use crate::metrics::IngestMetrics;
use crate::publish::Publisher;
use crate::verify::registry::{self, Verifiers};
use crate::verify::{Accepted, Reply, SharedVerifier, Verified, VerifyError, WebhookRequest};
use crate::IngestError;

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    inner: Arc<Inner>,
}

struct Inner {
    verifiers: Verifiers,
    publisher: Publisher,
    /// "received" for every webhook stored, to the status topic.
    status: StatusWriter,
    /// Signature refusals not yet written to the status topic.
    refusals: std::sync::Mutex<Refusals>,
    metrics: IngestMetrics,
    body_limit: usize,
    body_read_timeout: Duration,
    retry_after: HeaderValue,
}

/// The HTTP client verifiers fetch key material with. Redirects are off: a certificate URL
/// that passed the host check must not be able to send us elsewhere.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn key_fetch_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
}

impl IngestState {
    /// Builds the verifiers of every configured source, the producer and the metrics.
    ///
    /// # Errors
    /// When the configuration is invalid, the producer cannot be built or metrics collide.
    pub fn from_config(
        config: &IngestConfig,
        kafka: &KafkaSettings,
        topics: &Topics,
        registry: &prometheus::Registry,
    ) -> Result<Self, IngestError> {
        let http = key_fetch_client(Duration::from_millis(config.fetch_timeout_ms))
            .map_err(|err| IngestError::Config(format!("http client: {err}")))?;
        Self::with_http(config, kafka, topics, registry, &http)
    }

    /// Like [`IngestState::from_config`], fetching key material with `http` (tests point it
    /// at simulators).
    ///
    /// # Errors
    /// As [`IngestState::from_config`].
    pub fn with_http(
        config: &IngestConfig,
        kafka: &KafkaSettings,
        topics: &Topics,
        registry: &prometheus::Registry,
        http: &reqwest::Client,
    ) -> Result<Self, IngestError> {
        config.validate().map_err(IngestError::Config)?;
        let verifiers = registry::build(config, http).map_err(IngestError::Config)?;
        if verifiers.is_empty() {
            tracing::warn!("no source is configured: every webhook will get 404");
        }
        let publisher = Publisher::new(
            kafka,
            &topics.raw,
            Duration::from_millis(config.publish_timeout_ms),
        )?;
        let status = if config.status_updates {
            let records = status_counter("ingest", registry)?;
            StatusWriter::new(kafka, &topics.status, "ingest", records)?
        } else {
            StatusWriter::disabled()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                verifiers,
                publisher,
                status,
                refusals: std::sync::Mutex::new(Refusals::default()),
                metrics: IngestMetrics::register(registry)?,
                body_limit: config.body_limit_bytes,
                body_read_timeout: Duration::from_millis(config.body_read_timeout_ms),
                retry_after: HeaderValue::from(config.retry_after_secs),
            }),
        })
    }

    /// The publisher, for readiness and shutdown.
    pub fn publisher(&self) -> Publisher {
        self.inner.publisher.clone()
    }

    /// The routes served: source and account (`None` for `/webhooks/<source>`), sorted.
    pub fn routes(&self) -> Vec<(Source, Option<String>)> {
        let mut routes: Vec<_> = self.inner.verifiers.keys().cloned().collect();
        routes.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        routes
    }

    fn verifier(&self, source: &str, account: Option<&str>) -> Option<(Source, &SharedVerifier)> {
        let source = source.parse::<Source>().ok()?;
        self.inner
            .verifiers
            .get(&(source, account.map(str::to_owned)))
            .map(|verifier| (source, verifier))
    }
}

/// The ingest router with the ops endpoints merged in; `health` backs `/readyz`.
///
/// `POST` delivers a webhook; `GET` answers a provider's handshake (eBay's `challenge_code`)
/// where the source has one, and is 405 elsewhere, like any other method.
pub fn router(state: IngestState, registry: prometheus::Registry, health: Arc<Health>) -> Router {
    let body_limit = state.inner.body_limit;
    Router::new()
        .route("/webhooks/{source}", post(webhook).get(challenge))
        .route(
            "/webhooks/{source}/{account}",
            post(webhook_for_account).get(challenge_for_account),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            read_body,
        ))
        .with_state(state)
        .merge(ops_router(registry, health))
}

/// Reads a webhook's whole body within `body_read_timeout` of its headers, before anything
/// else looks at it: a body that trickles in gets 408 and gives its connection back, one over
/// the limit 413. What the handlers then take is in memory already.
async fn read_body(
    State(state): State<IngestState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, state.inner.body_limit);
    let read = tokio::time::timeout(
        state.inner.body_read_timeout,
        http_body_util::BodyExt::collect(limited),
    )
    .await;
    let label = parts
        .uri
        .path()
        .strip_prefix("/webhooks/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|source| source.parse::<Source>().ok())
        .map_or("unknown", Source::as_str);
    let count = |code: &str| {
        state
            .inner
            .metrics
            .responses
            .with_label_values(&[label, code])
            .inc();
    };
    match read {
        Ok(Ok(collected)) => {
            let body = axum::body::Body::from(collected.to_bytes());
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Ok(Err(err))
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            count("413");
            (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response()
        }
        Ok(Err(err)) => {
            // The client went away or sent a malformed body: nobody is waiting for an answer.
            tracing::debug!(source = label, error = %err, "request body unreadable");
            count("400");
            (StatusCode::BAD_REQUEST, "unreadable body\n").into_response()
        }
        Err(_elapsed) => {
            tracing::info!(
                source = label,
                timeout_ms = state.inner.body_read_timeout.as_millis() as u64,
                "request body not received in time"
            );
            count("408");
            (StatusCode::REQUEST_TIMEOUT, "body not received in time\n").into_response()
        }
    }
}

async fn webhook(
    State(state): State<IngestState>,
    Path(source): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &source, None, &method, &uri, &headers, body).await
}

async fn webhook_for_account(
    State(state): State<IngestState>,
    Path((source, account)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &state,
        &source,
        Some(&account),
        &method,
        &uri,
        &headers,
        body,
    )
    .await
}

async fn challenge(
    State(state): State<IngestState>,
    Path(source): Path<String>,
    uri: Uri,
) -> Response {
    answer_challenge(&state, &source, None, &uri)
}

async fn challenge_for_account(
    State(state): State<IngestState>,
    Path((source, account)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    answer_challenge(&state, &source, Some(&account), &uri)
}

fn answer_challenge(
    state: &IngestState,
    source: &str,
    account: Option<&str>,
    uri: &Uri,
) -> Response {
    let Some((source, verifier)) = state.verifier(source, account) else {
        return unknown(state);
    };
    match verifier.challenge(uri.query()) {
        Some(reply) => {
            state
                .inner
                .metrics
                .handshakes
                .with_label_values(&[source.as_str()])
                .inc();
            respond(reply)
        }
        None => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("POST"))],
            "method not allowed\n",
        )
            .into_response(),
    }
}

fn unknown(state: &IngestState) -> Response {
    state
        .inner
        .metrics
        .responses
        .with_label_values(&["unknown", "404"])
        .inc();
    (StatusCode::NOT_FOUND, "unknown source or account\n").into_response()
}

fn respond(reply: Reply) -> Response {
    (
        reply.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(reply.content_type),
        )],
        reply.body,
    )
        .into_response()
}

async fn handle(
    state: &IngestState,
    source: &str,
    account: Option<&str>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let metrics = &state.inner.metrics;
    let Some((source, verifier)) = state.verifier(source, account) else {
        return unknown(state);
    };
    let label = source.as_str();
    metrics.received.with_label_values(&[label]).inc();
    let received_at = now_ms();

    let request = WebhookRequest {
        method,
        path_and_query: uri.path_and_query().map_or("/", |pq| pq.as_str()),
        headers,
        body: &body,
        account,
        now: received_at.div_euclid(1000),
    };
    let verified = match verifier.verify(&request).await {
        Ok(Accepted::Publish(verified)) => verified,
        Ok(Accepted::Reply(reply)) => {
            metrics.handshakes.with_label_values(&[label]).inc();
            metrics
                .responses
                .with_label_values(&[label, reply.status.as_str()])
                .inc();
            return respond(reply);
        }
        Err(err) => return refuse(state, label, &err),
    };
    metrics
        .secret_matches
        .with_label_values(&[label, verified.secret_id()])
        .inc();

    let timer = metrics
        .publish_seconds
        .with_label_values(&[label])
        .start_timer();
    match state.inner.publisher.publish(&verified, received_at).await {
        Ok((partition, offset)) => {
            timer.observe_duration();
            metrics.responses.with_label_values(&[label, "200"]).inc();
            received(state, &verified, partition, offset);
            tracing::debug!(
                source = label,
                event_id = verified.event_id(),
                partition,
                offset,
                "webhook stored"
            );
            (StatusCode::OK, "ok\n").into_response()
        }
        Err(err) => {
            timer.stop_and_discard();
            metrics.responses.with_label_values(&[label, "503"]).inc();
            tracing::error!(source = label, event_id = verified.event_id(), error = %err, "webhook not stored");
            unavailable(state, "not stored, retry later\n")
        }
    }
}

/// Records that ingest has `verified` in the raw topic at `partition`/`offset` (never waits).
fn received(state: &IngestState, verified: &Verified, partition: i32, offset: i64) {
    let status = &state.inner.status;
    let mut record = status.record(&verified.record_key(), Status::Received);
    record.event_id = Some(verified.event_id().to_owned());
    record.event_type = Some(verified.event_type().to_owned());
    record.origin = Some(Origin::Webhook.as_str().to_owned());
    record.secret_id = Some(verified.secret_id().to_owned());
    record.record = Some(format!(
        "{}:{partition}:{offset}",
        state.inner.publisher.topic()
    ));
    status.write(&record);
}

/// Signature refusals per source and reason since each was last written to the status topic.
#[derive(Debug, Default)]
struct Refusals {
    pending: std::collections::HashMap<(&'static str, &'static str), (Instant, u64)>,
}

/// How often each source and reason's refusals are written to the status topic at most.
const REFUSALS_EVERY: Duration = Duration::from_secs(10);

impl Refusals {
    /// Counts a refusal; the count to write now, if one is due (the first refusal at once,
    /// then at most one every [`REFUSALS_EVERY`]).
    fn count(&mut self, source: &'static str, reason: &'static str) -> Option<u64> {
        let now = Instant::now();
        match self.pending.get_mut(&(source, reason)) {
            Some((last, count)) => {
                *count += 1;
                if now.duration_since(*last) < REFUSALS_EVERY {
                    return None;
                }
                *last = now;
                Some(std::mem::take(count))
            }
            None => {
                self.pending.insert((source, reason), (now, 0));
                Some(1)
            }
        }
    }
}

/// Answers a refused request: 401 with a body that says nothing of why (the reason is
/// logged and counted), or 503 when key material could not be fetched and a retry may work.
fn refuse(state: &IngestState, label: &'static str, err: &VerifyError) -> Response {
    let metrics = &state.inner.metrics;
    let status = err.status();
    metrics
        .responses
        .with_label_values(&[label, status.as_str()])
        .inc();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        metrics.key_fetch_failures.with_label_values(&[label]).inc();
        tracing::error!(source = label, error = %err, "webhook not verifiable now");
        return unavailable(state, "cannot verify now, retry later\n");
    }
    metrics
        .signature_failures
        .with_label_values(&[label, err.reason()])
        .inc();
    tracing::warn!(source = label, reason = err.reason(), error = %err, "webhook refused");
    // For the console's failures page: keyed by source, so that one partition holds a
    // source's refusals; nothing of the request (it is not trusted) but why. At most one
    // record per source and reason every REFUSALS_EVERY, counting the refusals since the
    // last: strangers' requests must not become a broker write each.
    let due = state
        .inner
        .refusals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .count(label, err.reason());
    if let Some(count) = due {
        let status_writer = &state.inner.status;
        let mut record = status_writer.record(
            &format!(
                "{}{label}",
                orderbridge_schemas::status::SIGNATURE_KEY_PREFIX
            ),
            Status::SignatureRejected,
        );
        record.reason = Some(err.reason().to_owned());
        record.count = Some(count);
        status_writer.write(&record);
    }
    // Say nothing about why: the body is for an attacker as much as for a provider.
    (StatusCode::UNAUTHORIZED, "invalid signature\n").into_response()
}

fn unavailable(state: &IngestState, body: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, state.inner.retry_after.clone())],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_written_at_once_then_summed_at_most_every_ten_seconds() {
        let mut refusals = Refusals::default();
        assert_eq!(
            refusals.count("shopify", "mismatch"),
            Some(1),
            "the first at once"
        );
        assert_eq!(refusals.count("shopify", "mismatch"), None);
        assert_eq!(refusals.count("shopify", "mismatch"), None);
        assert_eq!(
            refusals.count("shopify", "expired"),
            Some(1),
            "each reason counts apart"
        );
        // Ten seconds on, the next refusal carries the two held back and itself.
        if let Some((last, _)) = refusals.pending.get_mut(&("shopify", "mismatch")) {
            *last = last.checked_sub(REFUSALS_EVERY).unwrap_or(*last);
        }
        assert_eq!(refusals.count("shopify", "mismatch"), Some(3));
        assert_eq!(refusals.count("shopify", "mismatch"), None);
    }
}
