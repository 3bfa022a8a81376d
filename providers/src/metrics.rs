//! Every metric name of this crate. Labels come from fixed sets: provider names, operation
//! names written in the code, outcome classes; never an order, event or account id.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Requests to providers' APIs, whichever stage sends them.
#[derive(Clone)]
pub struct ApiMetrics {
    /// `orderbridge_provider_requests_total{provider,operation,outcome}`; outcome is the
    /// status class (`2xx`, `401`, `403`, `404`, `429`, `4xx`, `5xx`, `other`) or `error`
    /// (no answer).
    pub requests: IntCounterVec,
    /// `orderbridge_provider_request_seconds{provider,operation}`.
    pub request_seconds: HistogramVec,
}

impl ApiMetrics {
    /// Registers into `registry`.
    ///
    /// # Errors
    /// When a name is taken.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "orderbridge_provider_requests_total",
                "Requests to providers' APIs, by answer",
            ),
            &["provider", "operation", "outcome"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "orderbridge_provider_request_seconds",
                "Time for a provider's API to answer",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["provider", "operation"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        Ok(Self {
            requests,
            request_seconds,
        })
    }
}

/// The enrich stage.
#[derive(Clone)]
pub struct EnrichMetrics {
    /// `orderbridge_enrich_records_total{source,outcome}`: what became of each raw record the
    /// stage read: `enriched`, `retry_scheduled`, `dead_lettered`, `complete` (the record
    /// needs no completion), `not_configured` (no API configured for its account).
    pub records: IntCounterVec,
    /// `orderbridge_enrich_in_flight{source}`: fetches running.
    pub in_flight: IntGaugeVec,
    /// `orderbridge_enrich_consumer_lag{topic}`.
    pub consumer_lag: IntGaugeVec,
    /// Requests to providers.
    pub api: ApiMetrics,
}

impl EnrichMetrics {
    /// Registers into `registry`.
    ///
    /// # Errors
    /// When a name is taken.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let records = IntCounterVec::new(
            Opts::new(
                "orderbridge_enrich_records_total",
                "Raw records the enrich stage read, by what became of them",
            ),
            &["source", "outcome"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "orderbridge_enrich_in_flight",
                "Provider fetches running in the enrich stage",
            ),
            &["source"],
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "orderbridge_enrich_consumer_lag",
                "Records behind the end of the topics the enrich stage reads",
            ),
            &["topic"],
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(consumer_lag.clone()))?;
        Ok(Self {
            records,
            in_flight,
            consumer_lag,
            api: ApiMetrics::register(registry)?,
        })
    }
}
