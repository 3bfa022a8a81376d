//! The pipeline under test: a broker (librdkafka's mock cluster, or the broker in
//! `KAFKA_BOOTSTRAP`), per-test topics and groups, the ingest router driven without a socket,
//! and the processor and sink as tasks with metrics the test can read.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use orderbridge_ingest::config::{Accounts, HmacConfig, NamedSecret};
use orderbridge_ingest::IngestConfig;
use orderbridge_processor::{Guarantee, Pipeline, ProcessorConfig, ProcessorMetrics};
use orderbridge_runtime::{ensure_topics, Health, KafkaSettings, Secret, TopicLayout};
use orderbridge_schemas::{EmbeddedRegistry, OrderEvent, OrderEventCodec, Topics};
use orderbridge_sink::{Delivery, ErpClient, SinkConfig, SinkMetrics};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const SECRET: &str = "shpss_test_secret";
pub const PARTITIONS: i32 = 3;

/// A broker and this test's topics. Holds the mock cluster alive when there is one.
pub struct Env {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub codec: Arc<OrderEventCodec>,
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl Env {
    /// librdkafka's in-process mock cluster (supports transactions).
    pub fn mock() -> Self {
        let mock = MockCluster::new(1).unwrap();
        let topics = Topics::with_suffix(&super::unique("t"));
        for topic in topics.all() {
            mock.create_topic(topic, PARTITIONS, 1).unwrap();
        }
        let kafka = KafkaSettings::new(mock.bootstrap_servers());
        Self::new(kafka, topics, Some(mock))
    }

    /// The real broker named by `KAFKA_BOOTSTRAP`, if set.
    pub async fn external() -> Option<Self> {
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP")
            .ok()
            .filter(|b| !b.is_empty())?;
        let kafka = KafkaSettings::new(bootstrap);
        let topics = Topics::with_suffix(&super::unique("t"));
        ensure_topics(
            &kafka,
            &topics,
            TopicLayout {
                partitions: PARTITIONS,
                replication: 1,
                ..TopicLayout::default()
            },
        )
        .await
        .unwrap();
        Some(Self::new(kafka, topics, None))
    }

    fn new(
        kafka: KafkaSettings,
        topics: Topics,
        mock: Option<MockCluster<'static, DefaultProducerContext>>,
    ) -> Self {
        let codec = Arc::new(
            OrderEventCodec::new(Arc::new(EmbeddedRegistry::new()), &topics.canonical).unwrap(),
        );
        Self {
            kafka,
            topics,
            codec,
            _mock: mock,
        }
    }

    /// The ingest router with the test Shopify secret.
    pub fn ingest(&self) -> axum::Router {
        ingest_router(&self.kafka, &self.topics, IngestConfig::default())
    }

    /// Starts the processor with `guarantee` until `shutdown`.
    pub fn spawn_processor(
        &self,
        guarantee: Guarantee,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        let registry = prometheus::Registry::new();
        self.spawn_processor_in(&super::unique("processor"), guarantee, &registry, shutdown)
    }

    /// Starts the processor in consumer group `group` (a restart joins the same group); its
    /// metrics go to `registry`.
    pub fn spawn_processor_in(
        &self,
        group: &str,
        guarantee: Guarantee,
        registry: &prometheus::Registry,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        let config = self.processor_config(group, guarantee);
        self.spawn_processor_with(&config, registry, shutdown)
    }

    /// The processor configuration tests run with: quick batches, the fixtures' mappings.
    pub fn processor_config(&self, group: &str, guarantee: Guarantee) -> ProcessorConfig {
        ProcessorConfig {
            guarantee,
            group_id: group.to_owned(),
            batch_linger_ms: 5,
            fetch_wait_max_ms: 50,
            mappings: super::fixture_mappings(),
            ..ProcessorConfig::default()
        }
    }

    /// Starts the processor with `config`; its metrics go to `registry`.
    pub fn spawn_processor_with(
        &self,
        config: &ProcessorConfig,
        registry: &prometheus::Registry,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        let metrics = ProcessorMetrics::register(registry).unwrap();
        // A restarted processor joins as soon as the old member is gone; keep the session
        // short (the mock broker's minimum) so a test does not wait the 45 s default.
        let mut kafka = self.kafka.clone();
        kafka
            .properties
            .insert("session.timeout.ms".into(), "6000".into());
        let pipeline = Pipeline::new(
            &kafka,
            &self.topics,
            config,
            Arc::clone(&self.codec),
            metrics,
            Health::new(),
        )
        .unwrap();
        let stop = shutdown.clone();
        tokio::spawn(async move { pipeline.run(stop).await.unwrap() })
    }

    /// The mock cluster, when this environment runs on one (to inject faults).
    pub fn mock_cluster(&self) -> Option<&MockCluster<'static, DefaultProducerContext>> {
        self._mock.as_ref()
    }

    /// The processor (exactly-once) and a sink writing SQL staging tables, in process, until
    /// `shutdown`.
    pub async fn downstream(&self, shutdown: &CancellationToken) -> Downstream {
        let processor_metrics = prometheus::Registry::new();
        let processor = self.spawn_processor_in(
            &super::unique("processor"),
            Guarantee::ExactlyOnce,
            &processor_metrics,
            shutdown,
        );
        let (erp, db, dir) = super::staging_db().await;
        let sink_metrics = prometheus::Registry::new();
        let sink = self.spawn_sink(&super::unique("sink"), erp, &sink_metrics, shutdown);
        Downstream {
            stages: vec![processor, sink],
            db,
            processor_metrics,
            sink_metrics,
            _dir: dir,
        }
    }

    /// Starts a sink in consumer group `group` writing to `erp`; its metrics go to `registry`.
    pub fn spawn_sink(
        &self,
        group: &str,
        erp: Arc<dyn ErpClient>,
        registry: &prometheus::Registry,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        self.spawn_sink_with(&sink_config(group), erp, registry, Health::new(), shutdown)
    }

    /// Starts a sink with `config` writing to `erp`, reporting into `registry` and `health`.
    pub fn spawn_sink_with(
        &self,
        config: &SinkConfig,
        erp: Arc<dyn ErpClient>,
        registry: &prometheus::Registry,
        health: Arc<Health>,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        let metrics = SinkMetrics::register(registry).unwrap();
        // A killed sink is noticed when its session times out, as after a real crash; keep
        // that short here (the mock broker's minimum) so crash tests do not wait 45 s.
        let mut kafka = self.kafka.clone();
        kafka
            .properties
            .insert("session.timeout.ms".into(), "6000".into());
        let delivery = Delivery::new(
            &kafka,
            &self.topics,
            config,
            Arc::clone(&self.codec),
            erp,
            metrics,
            health,
        )
        .unwrap();
        let stop = shutdown.clone();
        tokio::spawn(async move { delivery.run(stop).await.unwrap() })
    }

    /// Starts the enrich stage with `config` on `apis`; its metrics are `metrics`.
    pub fn spawn_enrich(
        &self,
        config: &orderbridge_providers::enrich::EnrichConfig,
        apis: Arc<orderbridge_providers::Apis>,
        metrics: orderbridge_providers::metrics::EnrichMetrics,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        let mut kafka = self.kafka.clone();
        kafka
            .properties
            .insert("session.timeout.ms".into(), "6000".into());
        let (config, topics, stop) = (config.clone(), self.topics.clone(), shutdown.clone());
        tokio::spawn(async move {
            orderbridge_providers::enrich::run(
                &config,
                &kafka,
                &topics,
                apis,
                metrics,
                Health::new(),
                stop,
            )
            .await
            .unwrap()
        })
    }

    /// Writes `events` to the canonical topic, keyed by order key, in this order, as the
    /// processor would; returns when the broker acknowledged all of them.
    pub async fn publish_canonical(&self, events: &[OrderEvent]) {
        let producer: FutureProducer = self
            .kafka
            .producer_config()
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        let mut pending = Vec::with_capacity(events.len());
        for event in events {
            let payload = self.codec.encode(event).await.unwrap();
            let producer = producer.clone();
            let topic = self.topics.canonical.clone();
            let key = event.order_key.clone();
            pending.push(async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(err, _)| err)
            });
        }
        // Sent in order (librdkafka keeps a partition's records in the order of `send`).
        for result in futures::future::join_all(pending).await {
            result.unwrap();
        }
    }

    /// Records of the canonical topic that consumer group `group` has not committed yet.
    pub fn uncommitted(&self, group: &str) -> i64 {
        let consumer: BaseConsumer = self
            .kafka
            .client_config()
            .set("group.id", group)
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            partitions.add_partition(&self.topics.canonical, partition);
        }
        let committed = consumer
            .committed_offsets(partitions, Duration::from_secs(10))
            .unwrap();
        committed
            .elements()
            .iter()
            .map(|element| {
                let (_, high) = consumer
                    .fetch_watermarks(
                        &self.topics.canonical,
                        element.partition(),
                        Duration::from_secs(10),
                    )
                    .unwrap();
                // Nothing committed yet: all of the partition is outstanding.
                let at = match element.offset() {
                    Offset::Offset(at) => at,
                    Offset::Beginning
                    | Offset::End
                    | Offset::Stored
                    | Offset::Invalid
                    | Offset::OffsetTail(_) => 0,
                };
                high - at
            })
            .sum()
    }

    /// Reads `topic` from the start with a fresh group until `count` records arrived.
    pub async fn read(&self, topic: &str, count: usize, timeout: Duration) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer = self
            .kafka
            .client_config()
            .set("group.id", super::unique("reader"))
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let mut records = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while records.len() < count {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(message) => records.push(message.unwrap().detach()),
                Err(_) => panic!(
                    "read {} of {count} records from {topic} before the deadline",
                    records.len()
                ),
            }
        }
        records
    }
}

/// The stages behind the raw topic ([`Env::downstream`]) and what a test reads of them.
pub struct Downstream {
    /// The processor's and the sink's tasks, for [`stop`].
    pub stages: Vec<JoinHandle<()>>,
    /// The staging database the sink writes.
    pub db: sqlx::SqlitePool,
    pub processor_metrics: prometheus::Registry,
    pub sink_metrics: prometheus::Registry,
    _dir: tempfile::TempDir,
}

/// Stops in-process stages and waits for them, so their consumers leave the group and close
/// while the broker is still there: a consumer closing against a mock cluster already dropped
/// can block the test's runtime from shutting down.
pub async fn stop(shutdown: &CancellationToken, stages: Vec<JoinHandle<()>>) {
    shutdown.cancel();
    for stage in stages {
        stage.await.unwrap();
    }
}

/// The sink configuration tests run with: quick retries and probes, a short fetch wait.
pub fn sink_config(group: &str) -> SinkConfig {
    SinkConfig {
        group_id: group.to_owned(),
        retry_initial_ms: 50,
        retry_max_ms: 1_000,
        fetch_wait_max_ms: 50,
        breaker_probe_ms: 500,
        shutdown_grace_ms: 2_000,
        ..SinkConfig::default()
    }
}

/// `config` serving Shopify with the test secret.
pub fn with_test_shopify(mut config: IngestConfig) -> IngestConfig {
    config.sources.shopify = Some(Accounts::single(HmacConfig {
        secrets: vec![NamedSecret {
            id: "test".into(),
            secret: Secret::new(SECRET),
        }],
        ..HmacConfig::default()
    }));
    config
}

/// An ingest router on `kafka` with `config` plus the test Shopify secret.
pub fn ingest_router(kafka: &KafkaSettings, topics: &Topics, config: IngestConfig) -> axum::Router {
    let config = with_test_shopify(config);
    let registry = prometheus::Registry::new();
    let state =
        orderbridge_ingest::IngestState::from_config(&config, kafka, topics, &registry).unwrap();
    orderbridge_ingest::router(state, registry, Health::new())
}

/// Posts a Shopify webhook (signed with `SECRET` unless `signature` is given) to the router.
pub async fn post_shopify(
    router: &axum::Router,
    headers: &[(String, String)],
    body: &[u8],
    signature: Option<&str>,
) -> StatusCode {
    let signature = signature
        .map(str::to_owned)
        .unwrap_or_else(|| orderbridge_ingest::verify::shopify::sign(SECRET, body));
    let mut request = Request::post("/webhooks/shopify")
        .header("content-type", "application/json")
        .header("X-Shopify-Hmac-Sha256", signature);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    response.status()
}

/// GETs `path` from the router and returns the body as text.
pub async fn get_text(router: &axum::Router, path: &str) -> String {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The value of a counter with the given label values in a registry, or 0.
pub fn counter(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric().iter())
        .filter(|metric| {
            labels.iter().all(|(key, value)| {
                metric
                    .get_label()
                    .iter()
                    .any(|l| l.name() == *key && l.value() == *value)
            })
        })
        .map(|metric| metric.get_counter().get_value() as u64)
        .sum()
}

/// The ingest router of `config` on `env`, fetching key material with `http` (simulators).
pub fn router(env: &Env, config: &IngestConfig, http: &reqwest::Client) -> axum::Router {
    let registry = prometheus::Registry::new();
    let state = orderbridge_ingest::IngestState::with_http(
        config,
        &env.kafka,
        &env.topics,
        &registry,
        http,
    )
    .unwrap();
    orderbridge_ingest::router(state, registry, Health::new())
}

/// POSTs `body` with `headers` to `path` of `router`: the status and the answer's text.
pub async fn post(
    router: &axum::Router,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (StatusCode, String) {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The enrich stage configuration tests run with: quick retries, short fetch waits.
pub fn enrich_config(group: &str) -> orderbridge_providers::enrich::EnrichConfig {
    orderbridge_providers::enrich::EnrichConfig {
        group_id: group.to_owned(),
        retry_group_id: format!("{group}-retry"),
        retry_delays_secs: vec![1, 2],
        fetch_wait_max_ms: 50,
        ..orderbridge_providers::enrich::EnrichConfig::default()
    }
}

/// Provider clients that give up quickly, so a test's failures show in seconds.
pub fn test_apis(
    api: orderbridge_providers::ApiConfig,
    registry: &prometheus::Registry,
) -> (
    Arc<orderbridge_providers::Apis>,
    orderbridge_providers::metrics::EnrichMetrics,
) {
    let metrics = orderbridge_providers::metrics::EnrichMetrics::register(registry).unwrap();
    let shared = orderbridge_providers::Shared::new(&api, Some(metrics.api.clone()))
        .unwrap()
        .with_retry(orderbridge_providers::RetryPolicy {
            attempts: 2,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            throttle_budget: Duration::from_secs(5),
        });
    (
        Arc::new(orderbridge_providers::Apis::with_shared(shared, api)),
        metrics,
    )
}

/// The `ORDERBRIDGE_TOPICS__*` variables naming `topics`, as a process of the binary reads them.
pub fn topic_env(topics: &Topics) -> Vec<(String, String)> {
    [
        ("ORDERBRIDGE_TOPICS__RAW", &topics.raw),
        ("ORDERBRIDGE_TOPICS__CANONICAL", &topics.canonical),
        ("ORDERBRIDGE_TOPICS__ATTRIBUTION", &topics.attribution),
        ("ORDERBRIDGE_TOPICS__DLQ", &topics.dlq),
        (
            "ORDERBRIDGE_TOPICS__PROCESSOR_STATE",
            &topics.processor_state,
        ),
        ("ORDERBRIDGE_TOPICS__ENRICH_RETRY", &topics.enrich_retry),
        ("ORDERBRIDGE_TOPICS__CHECKPOINTS", &topics.checkpoints),
        ("ORDERBRIDGE_TOPICS__STATUS", &topics.status),
        ("ORDERBRIDGE_TOPICS__AUDIT", &topics.audit),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.clone()))
    .collect()
}

/// The basic Shopify order as order `i` (its own id) in delivery `<prefix>-<i>`: `(headers,
/// body)` as the provider would send them, unsigned.
pub fn nth_order(prefix: &str, i: usize) -> (Vec<(String, String)>, Vec<u8>, String) {
    let (headers, body) = super::fixture("shopify", "orders-create-basic");
    let mut order: serde_json::Value = serde_json::from_slice(&body).unwrap();
    order["id"] = (700_000 + i).into();
    let delivery = format!("{prefix}-{i}");
    let headers = headers
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "X-Shopify-Webhook-Id" => (k, delivery.clone()),
            _ => (k, v),
        })
        .collect();
    (headers, serde_json::to_vec(&order).unwrap(), delivery)
}
