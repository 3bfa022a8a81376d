//! Every metric the sink exports.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Latency buckets from 10 ms to an hour: webhook-to-ERP spans retries and maintenance windows.
const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The sink's metrics.
#[derive(Debug, Clone)]
pub struct SinkMetrics {
    /// `orderbridge_sink_upserts_total{erp,outcome}`: finished upserts by what they did.
    pub upserts: IntCounterVec,
    /// `orderbridge_sink_erp_failures_total{erp,class}`: failed attempts by class
    /// (`transient`, `throttled`, `unavailable`, `rejected`).
    pub failures: IntCounterVec,
    /// `orderbridge_sink_retries_total{erp}`: attempts retried after a transient failure.
    pub retries: IntCounterVec,
    /// `orderbridge_sink_dead_letters_total{erp,class}`: `erp-rejected`, `undecodable`, and
    /// `parked` (a record that kept failing while the ERP was otherwise healthy; alert on it).
    pub dead_letters: IntCounterVec,
    /// `orderbridge_sink_receipt_to_erp_seconds{erp}`: webhook receipt to ERP acknowledgement
    /// (observed when the upsert wrote: created or updated).
    pub receipt_to_erp: HistogramVec,
    /// `orderbridge_sink_order_to_erp_seconds{erp}`: order creation at the source to ERP
    /// acknowledgement.
    pub order_to_erp: HistogramVec,
    /// `orderbridge_sink_concurrency_limit{erp}`: ERP calls allowed at once right now.
    pub concurrency_limit: IntGaugeVec,
    /// `orderbridge_sink_in_flight{erp}`: ERP calls running.
    pub in_flight: IntGaugeVec,
    /// `orderbridge_sink_open_records{erp}`: records fetched and not finished.
    pub open_records: IntGaugeVec,
    /// `orderbridge_sink_waiting_for_order{erp}`: events waiting for an order the ERP does
    /// not hold yet (a cancellation or refund before its create), dead-lettered as
    /// `order-unknown` if it does not come.
    pub waiting_for_order: IntGaugeVec,
    /// `orderbridge_sink_breaker_open{erp}`: 1 while the ERP is unavailable and partitions
    /// are paused.
    pub breaker_open: IntGaugeVec,
    /// `orderbridge_sink_consumer_lag{topic}`: canonical records this member has not read
    /// yet, from librdkafka's statistics every 5 s.
    pub consumer_lag: IntGaugeVec,
    /// `orderbridge_sink_status_records_total{result}`: status-topic records `written`,
    /// `failed` or `dropped` (see `orderbridge_runtime::status_counter`).
    pub status_records: IntCounterVec,
}

impl SinkMetrics {
    /// Creates and registers the metrics.
    ///
    /// # Errors
    /// When a metric with the same name is already registered.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let latency = |name: &str, help: &str| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                &["erp"],
            )
        };
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["erp"]);
        let metrics = Self {
            upserts: IntCounterVec::new(
                Opts::new(
                    "orderbridge_sink_upserts_total",
                    "Finished upserts, by ERP and outcome.",
                ),
                &["erp", "outcome"],
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "orderbridge_sink_erp_failures_total",
                    "Failed ERP attempts, by ERP and class.",
                ),
                &["erp", "class"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "orderbridge_sink_retries_total",
                    "Attempts retried after a transient failure.",
                ),
                &["erp"],
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "orderbridge_sink_dead_letters_total",
                    "Records dead-lettered by the sink.",
                ),
                &["erp", "class"],
            )?,
            receipt_to_erp: latency(
                "orderbridge_sink_receipt_to_erp_seconds",
                "Webhook receipt (ob-received-at) to ERP acknowledgement.",
            )?,
            order_to_erp: latency(
                "orderbridge_sink_order_to_erp_seconds",
                "Order creation at the source to ERP acknowledgement.",
            )?,
            concurrency_limit: gauge(
                "orderbridge_sink_concurrency_limit",
                "ERP calls allowed at once (adapts to throttling and latency).",
            )?,
            in_flight: gauge("orderbridge_sink_in_flight", "ERP calls running.")?,
            open_records: gauge(
                "orderbridge_sink_open_records",
                "Canonical records fetched and not yet finished.",
            )?,
            waiting_for_order: gauge(
                "orderbridge_sink_waiting_for_order",
                "Events waiting for an order the ERP does not hold yet.",
            )?,
            breaker_open: gauge(
                "orderbridge_sink_breaker_open",
                "1 while the ERP is unavailable: partitions paused, probing.",
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "orderbridge_sink_consumer_lag",
                    "Canonical records this member has not read yet, by topic.",
                ),
                &["topic"],
            )?,
            status_records: orderbridge_runtime::status_counter("sink", registry)?,
        };
        registry.register(Box::new(metrics.upserts.clone()))?;
        registry.register(Box::new(metrics.failures.clone()))?;
        registry.register(Box::new(metrics.retries.clone()))?;
        registry.register(Box::new(metrics.dead_letters.clone()))?;
        registry.register(Box::new(metrics.receipt_to_erp.clone()))?;
        registry.register(Box::new(metrics.order_to_erp.clone()))?;
        registry.register(Box::new(metrics.concurrency_limit.clone()))?;
        registry.register(Box::new(metrics.in_flight.clone()))?;
        registry.register(Box::new(metrics.open_records.clone()))?;
        registry.register(Box::new(metrics.breaker_open.clone()))?;
        registry.register(Box::new(metrics.waiting_for_order.clone()))?;
        registry.register(Box::new(metrics.consumer_lag.clone()))?;
        Ok(metrics)
    }
}
