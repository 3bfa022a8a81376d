//! Every metric ingest exports. Labels come from fixed sets: source names (plus `unknown`),
//! failure reasons, status codes; never order or event ids.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Ingest's metrics.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    /// `orderbridge_ingest_webhooks_received_total{source}`: requests that reached a source route.
    pub received: IntCounterVec,
    /// `orderbridge_ingest_signature_failures_total{source,reason}`.
    pub signature_failures: IntCounterVec,
    /// `orderbridge_ingest_responses_total{source,code}`.
    pub responses: IntCounterVec,
    /// `orderbridge_ingest_publish_seconds{source}`: time from verified to broker-acknowledged.
    pub publish_seconds: HistogramVec,
    /// `orderbridge_ingest_secret_matches_total{source,secret_id}`: which rotation secret
    /// verified each webhook, so an operator sees when an old one stopped being used.
    pub secret_matches: IntCounterVec,
    /// `orderbridge_ingest_key_fetch_failures_total{source}`: webhooks answered 503 because
    /// key material (SNS certificate, eBay key) or a confirmation could not be fetched.
    pub key_fetch_failures: IntCounterVec,
    /// `orderbridge_ingest_handshakes_total{source}`: handshakes and control messages answered
    /// (eBay challenges, SNS subscription confirmations, WooCommerce pings).
    pub handshakes: IntCounterVec,
}

impl IngestMetrics {
    /// Creates and registers the metrics.
    ///
    /// # Errors
    /// When a metric with the same name is already registered.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            received: IntCounterVec::new(
                Opts::new(
                    "orderbridge_ingest_webhooks_received_total",
                    "Webhook requests received, by source.",
                ),
                &["source"],
            )?,
            signature_failures: IntCounterVec::new(
                Opts::new(
                    "orderbridge_ingest_signature_failures_total",
                    "Webhooks rejected for a missing or invalid signature, by source and reason.",
                ),
                &["source", "reason"],
            )?,
            responses: IntCounterVec::new(
                Opts::new(
                    "orderbridge_ingest_responses_total",
                    "Responses sent, by source and status code.",
                ),
                &["source", "code"],
            )?,
            publish_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "orderbridge_ingest_publish_seconds",
                    "Time from a verified webhook to the broker's acknowledgement.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["source"],
            )?,
            secret_matches: IntCounterVec::new(
                Opts::new(
                    "orderbridge_ingest_secret_matches_total",
                    "Verified webhooks by source and the id of the secret or key that matched.",
                ),
                &["source", "secret_id"],
            )?,
            key_fetch_failures: IntCounterVec::new(
                Opts::new(
                    "orderbridge_ingest_key_fetch_failures_total",
                    "Webhooks answered 503 because key material could not be fetched, by source.",
                ),
                &["source"],
            )?,
            handshakes: IntCounterVec::new(
                Opts::new(
                    "orderbridge_ingest_handshakes_total",
                    "Handshakes and control messages answered without publishing, by source.",
                ),
                &["source"],
            )?,
        };
        registry.register(Box::new(metrics.received.clone()))?;
        registry.register(Box::new(metrics.secret_matches.clone()))?;
        registry.register(Box::new(metrics.key_fetch_failures.clone()))?;
        registry.register(Box::new(metrics.handshakes.clone()))?;
        registry.register(Box::new(metrics.signature_failures.clone()))?;
        registry.register(Box::new(metrics.responses.clone()))?;
        registry.register(Box::new(metrics.publish_seconds.clone()))?;
        Ok(metrics)
    }
}
