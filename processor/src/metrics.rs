//! Every metric the processor exports.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The processor's metrics.
#[derive(Debug, Clone)]
pub struct ProcessorMetrics {
    /// `orderbridge_processor_records_total{source,outcome}`; outcome is `canonical`,
    /// `dead_lettered`, `duplicate` or `awaiting_enrichment` (a thin notification the enrich
    /// stage completes); source is a source name, `unknown`, or `attribution` for records of
    /// the attribution topic.
    pub records: IntCounterVec,
    /// `orderbridge_processor_attribution_total{outcome}`: `attached` (an order was emitted
    /// with attribution from the attribution topic), `stored` (attribution for an order still
    /// to come, or already emitted with it), `reemitted` (an update of an order emitted
    /// before its attribution), `dead_lettered` (not an attribution event).
    pub attribution: IntCounterVec,
    /// `orderbridge_processor_batches_total{result}`; result is `committed` or `retried`.
    pub batches: IntCounterVec,
    /// `orderbridge_processor_batch_seconds{guarantee}`: from first record to commit.
    pub batch_seconds: HistogramVec,
    /// `orderbridge_processor_consumer_lag{topic}`: raw and attribution records this member
    /// has not read yet, from librdkafka's statistics every 5 s.
    pub consumer_lag: IntGaugeVec,
    /// `orderbridge_processor_status_records_total{result}`: status-topic records `written`,
    /// `failed` or `dropped` (see `orderbridge_runtime::status_counter`).
    pub status_records: IntCounterVec,
}

impl ProcessorMetrics {
    /// Creates and registers the metrics.
    ///
    /// # Errors
    /// When a metric with the same name is already registered.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            records: IntCounterVec::new(
                Opts::new(
                    "orderbridge_processor_records_total",
                    "Raw records processed, by source and outcome (canonical, dead_lettered, duplicate, awaiting_enrichment).",
                ),
                &["source", "outcome"],
            )?,
            attribution: IntCounterVec::new(
                Opts::new(
                    "orderbridge_processor_attribution_total",
                    "Attribution joined with orders, by outcome.",
                ),
                &["outcome"],
            )?,
            batches: IntCounterVec::new(
                Opts::new("orderbridge_processor_batches_total", "Batches, by result."),
                &["result"],
            )?,
            batch_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "orderbridge_processor_batch_seconds",
                    "Time to process and commit one batch.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["guarantee"],
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "orderbridge_processor_consumer_lag",
                    "Records this member has not read yet, by topic.",
                ),
                &["topic"],
            )?,
            status_records: orderbridge_runtime::status_counter("processor", registry)?,
        };
        registry.register(Box::new(metrics.records.clone()))?;
        registry.register(Box::new(metrics.attribution.clone()))?;
        registry.register(Box::new(metrics.consumer_lag.clone()))?;
        registry.register(Box::new(metrics.batches.clone()))?;
        registry.register(Box::new(metrics.batch_seconds.clone()))?;
        Ok(metrics)
    }
}
