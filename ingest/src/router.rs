//! The HTTP surface: `POST /webhooks/{source}` and `POST /webhooks/{source}/{account}`,
//! merged with `/metrics`, `/healthz` and `/readyz`. A plain [`Router`], so tests call it
//! with `tower::ServiceExt::oneshot` and no socket.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use orderbridge_runtime::{ops_router, Health, KafkaSettings};
use orderbridge_schemas::{Source, Topics};

use crate::config::IngestConfig;
use crate::metrics::IngestMetrics;
use crate::publish::Publisher;
use crate::verify::shopify::ShopifyVerifier;
use crate::verify::{Verifier, WebhookRequest};
use crate::IngestError;

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    inner: Arc<Inner>,
}

struct Inner {
    verifiers: HashMap<Source, Box<dyn Verifier>>,
    publisher: Publisher,
    metrics: IngestMetrics,
    body_limit: usize,
    retry_after: HeaderValue,
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
        config.validate().map_err(IngestError::Config)?;
        let mut verifiers: HashMap<Source, Box<dyn Verifier>> = HashMap::new();
        if let Some(shopify) = &config.sources.shopify {
            verifiers.insert(
                Source::Shopify,
                Box::new(ShopifyVerifier::new(shopify.secrets.clone())),
            );
        }
        if verifiers.is_empty() {
            tracing::warn!("no source is configured: every webhook will get 404");
        }
        let publisher = Publisher::new(
            kafka,
            &topics.raw,
            Duration::from_millis(config.publish_timeout_ms),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                verifiers,
                publisher,
                metrics: IngestMetrics::register(registry)?,
                body_limit: config.body_limit_bytes,
                retry_after: HeaderValue::from(config.retry_after_secs),
            }),
        })
    }

    /// The publisher, for readiness and shutdown.
    pub fn publisher(&self) -> Publisher {
        self.inner.publisher.clone()
    }
}

/// The ingest router with the ops endpoints merged in; `health` backs `/readyz`.
pub fn router(state: IngestState, registry: prometheus::Registry, health: Arc<Health>) -> Router {
    let body_limit = state.inner.body_limit;
    Router::new()
        .route("/webhooks/{source}", post(webhook))
        .route("/webhooks/{source}/{account}", post(webhook_for_account))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .merge(ops_router(registry, health))
}

async fn webhook(
    State(state): State<IngestState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &source, None, &headers, body).await
}

async fn webhook_for_account(
    State(state): State<IngestState>,
    Path((source, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &source, Some(&account), &headers, body).await
}

async fn handle(
    state: &IngestState,
    source: &str,
    account: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let metrics = &state.inner.metrics;
    let Some((source, verifier)) = source
        .parse::<Source>()
        .ok()
        .and_then(|source| state.inner.verifiers.get(&source).map(|v| (source, v)))
    else {
        metrics
            .responses
            .with_label_values(&["unknown", "404"])
            .inc();
        return (StatusCode::NOT_FOUND, "unknown source\n").into_response();
    };
    let label = source.as_str();
    metrics.received.with_label_values(&[label]).inc();
    let received_at = now_ms();

    let verified = match verifier.verify(&WebhookRequest {
        headers,
        body: &body,
        account,
    }) {
        Ok(verified) => verified,
        Err(err) => {
            metrics
                .signature_failures
                .with_label_values(&[label, err.reason()])
                .inc();
            metrics.responses.with_label_values(&[label, "401"]).inc();
            tracing::warn!(
                source = label,
                reason = err.reason(),
                "webhook signature refused"
            );
            // Say nothing about why: the body is for an attacker as much as for a provider.
            return (StatusCode::UNAUTHORIZED, "invalid signature\n").into_response();
        }
    };

    let timer = metrics
        .publish_seconds
        .with_label_values(&[label])
        .start_timer();
    match state.inner.publisher.publish(&verified, received_at).await {
        Ok((partition, offset)) => {
            timer.observe_duration();
            metrics.responses.with_label_values(&[label, "200"]).inc();
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
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, state.inner.retry_after.clone())],
                "not stored, retry later\n",
            )
                .into_response()
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
