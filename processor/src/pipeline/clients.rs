//! The processor's Kafka clients, built in one place each, every delivery-critical setting
//! with its reason.

use orderbridge_runtime::{GroupContext, Health, KafkaSettings};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaResult;
use rdkafka::producer::FutureProducer;
use std::sync::Arc;

use crate::config::{Guarantee, ProcessorConfig};

/// Builds the raw-topic consumer. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_consumer(
    kafka: &KafkaSettings,
    config: &ProcessorConfig,
    health: Arc<Health>,
    lag: prometheus::IntGaugeVec,
) -> KafkaResult<BaseConsumer<GroupContext>> {
    let mut client = kafka.client_config();
    client
        .set("group.id", &config.group_id)
        // Latency bound for brokers that hold empty fetches (see the config docs).
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        // A new group starts from the oldest webhook still retained: nothing is skipped.
        .set("auto.offset.reset", "earliest")
        // Replays and backfills may be written transactionally; never read aborted writes.
        .set("isolation.level", "read_committed")
        // Partition N of the raw and the attribution topic must go to the same member (the
        // join's state is per partition number); the range assignor does that for
        // co-partitioned topics, the sticky ones do not promise it.
        .set("partition.assignment.strategy", "range");
    match config.guarantee {
        // Offsets are committed inside the producer's transaction, never by the consumer.
        Guarantee::ExactlyOnce => client.set("enable.auto.commit", "false"),
        Guarantee::AtLeastOnce => client
            // Auto-commit sends only what we stored, and we store only after delivery reports.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false"),
    };
    if let Some(instance) = &config.instance_id {
        // Static membership: a restart takes this name's partitions back at once.
        client.set("group.instance.id", instance);
    }
    // A revocation waits for the batch being gathered to commit. At-least-once commits the
    // offsets it stored before the partitions go; exactly-once committed them in the
    // batch's transaction.
    let context = GroupContext::new("processor", health)
        .with_lag(lag)
        .with_revocation(
            std::time::Duration::from_millis(config.revoke_grace_ms),
            config.guarantee == Guarantee::AtLeastOnce,
        );
    client
        // Consumer lag for the metrics, from librdkafka's statistics.
        .set("statistics.interval.ms", "5000")
        .create_with_context(context)
}

/// Builds the canonical/DLQ producer. The one place these settings live.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn build_producer(
    kafka: &KafkaSettings,
    config: &ProcessorConfig,
) -> KafkaResult<FutureProducer> {
    let mut client = kafka.producer_config();
    client
        // A canonical event is only "produced" when every in-sync replica has it.
        .set("acks", "all")
        // Retries never duplicate or reorder within a partition.
        .set("enable.idempotence", "true")
        // The processor batches by itself (batch_max_records, batch_linger_ms) and then waits
        // for the whole batch's acknowledgements: a linger here would only delay each batch.
        .set("linger.ms", "0");
    if config.guarantee == Guarantee::ExactlyOnce {
        // Outputs and consumed offsets commit together or not at all.
        client.set("transactional.id", config.transactional_id());
    }
    client.create()
}
