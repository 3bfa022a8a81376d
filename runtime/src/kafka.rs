//! Kafka settings shared by every client.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Where the brokers are and how to talk to them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `bootstrap.servers`, e.g. `kafka-0:9092,kafka-1:9092`.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties for every client (TLS, SASL, client.rack, …). Values may
    /// hold credentials, so `Debug` prints only the keys.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self::new("localhost:9092")
    }
}

impl KafkaSettings {
    /// Settings for a broker list with no extra properties.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
        }
    }

    /// The base client configuration every role starts from.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config.set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// The base configuration of every producer: [`Self::client_config`] with the Java
    /// clients' partitioner, so a key lands in the same partition number whichever client
    /// wrote it. Attribution written by another team's (Java, Kafka Streams) producer is then
    /// co-partitioned with our raw and canonical records of the same order.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config.set("partitioner", "murmur2_random");
        config.set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// The longest wait between attempts to reach a broker that went away (librdkafka's default
/// is 10 s): after a broker restart a client tries again within a second, so ingest is not
/// answering 503 for up to ten seconds after its broker is back. `[kafka] properties` can
/// set another.
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

/// How long a stage may take to release revoked partitions unless it says otherwise.
pub const DEFAULT_REVOKE_GRACE: Duration = Duration::from_secs(60);

/// What to do after `recv()` returned an error. librdkafka reports broker trouble (all
/// brokers down, a rebalance in progress) there while it recovers on its own, so: log, pause
/// half a second (or until shutdown), poll again. Only a fatal client error is returned, for
/// the caller to stop on.
///
/// # Errors
/// `err` itself when librdkafka raised its fatal error.
pub async fn pause_after_consumer_error(
    err: KafkaError,
    shutdown: &CancellationToken,
) -> Result<(), KafkaError> {
    if matches!(err.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
        return Err(err);
    }
    tracing::warn!(error = %err, "consumer error; librdkafka is retrying");
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(Duration::from_millis(500)) => {}
    }
    Ok(())
}

/// The consumer context of every OrderBridge consumer: it marks the service ready once the
/// consumer has joined its group (a service that has not joined cannot do its job, and `dev`
/// waits for this before it invites a webhook), and logs assignments and revocations.
pub struct GroupContext {
    role: &'static str,
    health: std::sync::Arc<crate::Health>,
    generation: std::sync::atomic::AtomicU64,
    lag: Option<prometheus::IntGaugeVec>,
    handoff: crate::consumer::Handoff,
}

impl GroupContext {
    /// A context for a consumer of `role` (`processor`, `sink`) reporting into `health`.
    pub fn new(role: &'static str, health: std::sync::Arc<crate::Health>) -> Self {
        Self {
            role,
            health,
            generation: std::sync::atomic::AtomicU64::new(0),
            lag: None,
            handoff: crate::consumer::Handoff::new(DEFAULT_REVOKE_GRACE, false),
        }
    }

    /// How revocations are handed to a [`GroupConsumer`](crate::GroupConsumer)'s stage: it
    /// gets up to `grace` to release revoked partitions, and with `commit_stored` the offsets
    /// it stored are committed synchronously before they go (for stages that store offsets
    /// and let librdkafka commit them, rather than committing in a transaction).
    #[must_use]
    pub fn with_revocation(mut self, grace: Duration, commit_stored: bool) -> Self {
        self.handoff = crate::consumer::Handoff::new(grace, commit_stored);
        self
    }

    pub(crate) fn handoff(&self) -> &crate::consumer::Handoff {
        &self.handoff
    }

    /// The role this context reports for (`processor`, `sink`).
    pub fn role(&self) -> &'static str {
        self.role
    }

    /// Reports this member's consumer lag per topic into `gauge` (labels: `topic`): the
    /// records between each assigned partition's position and its end, summed, from
    /// librdkafka's statistics (the consumer must set `statistics.interval.ms`).
    #[must_use]
    pub fn with_lag(mut self, gauge: prometheus::IntGaugeVec) -> Self {
        self.lag = Some(gauge);
        self
    }

    /// A number that changes whenever partitions are assigned or revoked: state kept per
    /// partition (the processor's duplicate filter) is stale once it moved.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl rdkafka::ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(gauge) = &self.lag else { return };
        for (name, topic) in &statistics.topics {
            // Partitions this member does not own report -1; the internal one is -1 too.
            let lag: i64 = topic
                .partitions
                .values()
                .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                .map(|p| p.consumer_lag)
                .sum();
            gauge.with_label_values(&[name.as_str()]).set(lag);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for GroupContext {
    fn pre_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.handoff.before(consumer, rebalance, self.role);
    }

    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        use rdkafka::consumer::Rebalance;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.handoff.after(rebalance);
        match rebalance {
            Rebalance::Assign(partitions) => {
                self.health.set_ready(true);
                tracing::info!(
                    role = self.role,
                    partitions = partitions.count(),
                    "partitions assigned"
                );
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(
                    role = self.role,
                    partitions = partitions.count(),
                    "partitions revoked"
                );
            }
            Rebalance::Error(err) => {
                tracing::warn!(role = self.role, error = %err, "rebalance failed")
            }
        }
    }
}
