//! What the normalizer fuzz targets share: a raw record read from the fuzzer's bytes, and the
//! properties checked on every input.
//!
//! The bytes are read as the three headers a normalizer reads from a raw record, one a line
//! (`ob-event-type`, `ob-account`, `ob-event-id`), then the body. The seeds in
//! `seeds/<target>/` are the golden fixtures in that form, so mutation starts from deliveries
//! that reach deep into each normalizer. The generic senders (`standard-webhooks`, `custom`)
//! are read through the fixtures' own mappings, as an operator would configure them.
//!
//! Properties, for every input:
//! - normalizing never panics (values from outside cannot stop the processor);
//! - an error is permanent and has a dead-letter class;
//! - an event has every quantity within bounds, and encodes to the canonical wire format and
//!   reads back as it was (to the millisecond, the schema's precision for times), or its
//!   encoding is refused as a property of the event (never as a retryable failure: a retry
//!   would fail the same way, forever).

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use orderbridge_processor::sources::common::MAX_QUANTITY;
use orderbridge_processor::sources::{self, mapped::Mappings, RawRecord};
use orderbridge_schemas::{EmbeddedRegistry, OrderEvent, OrderEventCodec, Source};

struct World {
    runtime: tokio::runtime::Runtime,
    codec: OrderEventCodec,
    mappings: Mappings,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let mut mappings = Mappings::new();
    for (source, text) in [
        (
            "standard-webhooks",
            include_str!("../../../tests/fixtures/standard-webhooks/mappings.toml"),
        ),
        (
            "custom",
            include_str!("../../../tests/fixtures/custom/mappings.toml"),
        ),
    ] {
        mappings.insert(
            source.to_owned(),
            toml::from_str(text).expect("the fixtures' mappings parse"),
        );
    }
    World {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime"),
        codec: OrderEventCodec::new(
            std::sync::Arc::new(EmbeddedRegistry::new()),
            "orders.canonical.v1",
        )
        .expect("codec"),
        mappings,
    }
});

/// The normalizer properties for `source`, on the fuzzer's bytes.
pub fn normalize(source: Source, data: &[u8]) {
    let mut fields = data.splitn(4, |&b| b == b'\n');
    let mut field = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (event_type, account, event_id) = (field(), field(), field());
    let body = data.splitn(4, |&b| b == b'\n').nth(3).unwrap_or_default();
    let raw = RawRecord {
        source,
        account: &account,
        event_type: &event_type,
        event_id: &event_id,
        received_at: Utc
            .timestamp_millis_opt(1_767_225_600_000)
            .single()
            .expect("a valid instant"),
        origin: "webhook",
        topic: "orders.raw.v1",
        partition: 0,
        offset: 0,
        body,
    };
    let world = &*WORLD;
    let event = match sources::normalize(&raw, &world.mappings) {
        Ok(event) => event,
        Err(err) => {
            assert!(!err.class().is_empty() && !err.to_string().is_empty());
            return;
        }
    };
    for quantity in event.line_items.iter().map(|l| l.quantity).chain(
        event
            .refund
            .iter()
            .flat_map(|r| r.lines.iter().map(|l| l.quantity)),
    ) {
        assert!(
            (0..=MAX_QUANTITY).contains(&quantity),
            "quantity {quantity}"
        );
    }
    let encoded = world.runtime.block_on(world.codec.encode(&event));
    match encoded {
        Ok(bytes) => {
            let decoded = world
                .runtime
                .block_on(world.codec.decode(&bytes))
                .unwrap_or_else(|err| panic!("an encoded event does not decode: {err}"));
            assert_eq!(decoded, to_millis(event), "the event read back differs");
        }
        Err(err) => assert!(!err.is_retryable(), "retryable encode failure: {err}"),
    }
}

/// `event` with every instant cut to the millisecond, as the schema stores it.
fn to_millis(mut event: OrderEvent) -> OrderEvent {
    let cut = |at: &mut DateTime<Utc>| {
        if let Some(cut) = Utc.timestamp_millis_opt(at.timestamp_millis()).single() {
            *at = cut;
        }
    };
    for at in [
        event.source_created_at.as_mut(),
        event.source_updated_at.as_mut(),
        Some(&mut event.lineage.received_at),
    ]
    .into_iter()
    .flatten()
    {
        cut(at);
    }
    if let Some(at) = event
        .shipment
        .as_mut()
        .and_then(|s| s.estimated_delivery_at.as_mut())
    {
        cut(at);
    }
    if let Some(attribution) = event.attribution.as_mut() {
        for touch in attribution
            .first_touch
            .iter_mut()
            .chain(attribution.last_touch.iter_mut())
            .chain(attribution.touchpoints.iter_mut())
        {
            if let Some(at) = touch.occurred_at.as_mut() {
                cut(at);
            }
        }
    }
    event
}
