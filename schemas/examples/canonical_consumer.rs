//! Your own consumer of `orders.canonical.v1`: a starting point for a team that wants the
//! orders OrderBridge normalizes (a warehouse feed, a fraud check, a data lake loader).
//!
//! ```sh
//! cargo run -p orderbridge-schemas --example canonical-consumer -- \
//!     --brokers localhost:9094 --registry http://localhost:8081 --group my-team-orders
//! ```
//!
//! What it shows, each a rule for any consumer of the topic:
//! - **Its own consumer group.** Never reuse `orderbridge-sink` or `orderbridge-processor`: a
//!   group shares partitions among its members, so you would take records from them.
//! - **`read_committed`.** The processor writes in Kafka transactions; without it you would
//!   also see records of aborted transactions.
//! - **Decoding through the registry.** Values are Avro in Confluent's wire format; the codec
//!   fetches the writer's schema by id and resolves it against the compiled-in one, so newer
//!   (fully compatible) schema versions keep decoding.
//! - **Versions, not arrival order.** `version` only grows per order; a record can arrive more
//!   than once (the topic is at-least-once for a consumer that fails before committing). Keep
//!   the newest version per `order_key` and ignore older or equal ones.
//! - **Partial events** (`partial = true`) carry a status or a shipment, not a whole order.
//! - **Commit after handling.** Offsets are committed only for records that were handled, so
//!   a crash re-reads them rather than skipping any.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use orderbridge_schemas::{ConfluentRegistry, OrderEvent, OrderEventCodec};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};

#[derive(Debug, Parser)]
#[command(about = "Print the orders of orders.canonical.v1, newest version per order")]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "localhost:9094")]
    brokers: String,
    /// The Confluent-compatible schema registry.
    #[arg(long, default_value = "http://localhost:8081")]
    registry: String,
    /// Your consumer group: its committed offsets are where you resume.
    #[arg(long, default_value = "orderbridge-example-consumer")]
    group: String,
    /// The canonical topic.
    #[arg(long, default_value = "orders.canonical.v1")]
    topic: String,
    /// Stop after this many records (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    max_records: u64,
}

/// What a consumer does with one order: here, print it. Returns false for a stale version.
fn handle(newest: &mut HashMap<String, i64>, event: &OrderEvent) -> bool {
    if newest
        .get(&event.order_key)
        .is_some_and(|seen| *seen >= event.version)
    {
        return false;
    }
    newest.insert(event.order_key.clone(), event.version);
    println!(
        "{} v{} {:?} {:?}{} {} {} ({} lines)",
        event.order_key,
        event.version,
        event.event_type,
        event.status,
        if event.partial { " (partial)" } else { "" },
        event.totals.total,
        event.currency,
        event.line_items.len(),
    );
    true
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = ConfluentRegistry::new(&args.registry, None).context("registry URL")?;
    let codec = OrderEventCodec::new(Arc::new(registry), &args.topic)?;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("creating the consumer")?;
    consumer.subscribe(&[&args.topic])?;

    let mut newest = HashMap::new();
    let mut seen = 0_u64;
    loop {
        let message = tokio::select! {
            message = consumer.recv() => message?,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(payload) = message.payload() else {
            anyhow::bail!(
                "a record without a value at {}/{}@{}",
                message.topic(),
                message.partition(),
                message.offset()
            );
        };
        // A record that does not decode stops the consumer before its offset is committed:
        // nothing is skipped. A real consumer would dead-letter it and go on.
        let event = codec.decode(payload).await.with_context(|| {
            format!(
                "decoding {}/{}@{}",
                message.topic(),
                message.partition(),
                message.offset()
            )
        })?;
        if !handle(&mut newest, &event) {
            println!(
                "{} v{} is not newer than v{}: ignored",
                event.order_key, event.version, newest[&event.order_key]
            );
        }
        consumer.commit_message(&message, CommitMode::Async)?;
        seen += 1;
        if args.max_records != 0 && seen >= args.max_records {
            break;
        }
    }
    // Committing synchronously on the way out leaves nothing handled but uncommitted.
    if seen > 0 {
        consumer.commit_consumer_state(CommitMode::Sync)?;
    }
    Ok(())
}
