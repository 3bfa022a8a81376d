//! Shared by the integration tests: waiting on conditions, signed webhooks, the pipeline
//! harness, and simulators of external systems.
#![allow(dead_code, clippy::unwrap_used)]

pub mod bc_sim;
pub mod ebay_sim;
pub mod http_sim;
mod latency;
pub mod netsuite_sim;
pub mod odoo_sim;
pub mod pipeline;
pub mod procs;
pub mod providers;
pub mod registry_sim;
pub mod sap_sim;
pub mod sftp_server;
pub mod signed;
pub mod sns_sim;

pub use latency::answer_after;

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`. Tests wait on
/// conditions like this, never on bare sleeps.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval, bounded by the deadline
    }
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The request of a golden fixture case: (headers as sent, raw body).
pub fn fixture(source: &str, case: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(source)
        .join(case);
    let headers: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("headers.json")).unwrap()).unwrap();
    (
        headers.into_iter().collect(),
        std::fs::read(dir.join("body.json")).unwrap(),
    )
}

/// The mappings the generic senders' fixtures come with (`tests/fixtures/<source>/mappings.toml`),
/// as an operator would configure them under `[processor.mappings]`.
pub fn fixture_mappings() -> orderbridge_processor::sources::mapped::Mappings {
    ["standard-webhooks", "custom"]
        .into_iter()
        .map(|source| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(source)
                .join("mappings.toml");
            let accounts = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            (source.to_owned(), accounts)
        })
        .collect()
}

/// The canonical event a Shopify fixture normalizes to (as the processor would emit it).
pub fn shopify_event(case: &str) -> orderbridge_schemas::OrderEvent {
    use orderbridge_processor::sources::{normalize, RawRecord};
    let (headers, body) = fixture("shopify", case);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (account, topic, id) = (
        get("X-Shopify-Shop-Domain"),
        get("X-Shopify-Topic"),
        get("X-Shopify-Webhook-Id"),
    );
    normalize(
        &RawRecord {
            source: orderbridge_schemas::Source::Shopify,
            account: &account,
            event_type: &topic,
            event_id: &id,
            // Milliseconds, as ingest's ob-received-at header carries it.
            received_at: chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, 1_745_350_202_000)
                .unwrap(),
            origin: "webhook",
            topic: "orders.raw.v1",
            partition: 0,
            offset: 0,
            body: &body,
        },
        &Default::default(),
    )
    .unwrap()
}

/// The basic Shopify order (`orders-create-basic`) again as a later event of `event_type`,
/// `version_step` versions on: what the adapter tests send after the create.
pub fn later_event(
    event_type: orderbridge_schemas::EventType,
    version_step: i64,
) -> orderbridge_schemas::OrderEvent {
    let mut event = shopify_event("orders-create-basic");
    event.event_type = event_type;
    event.version += version_step;
    event
}

/// SQL staging tables in a fresh SQLite file: the adapter, a pool to query them, and the
/// directory that must outlive both.
pub async fn staging_db() -> (
    std::sync::Arc<orderbridge_sink::erp::sql::SqlErp>,
    sqlx::SqlitePool,
    tempfile::TempDir,
) {
    use orderbridge_sink::erp::sql::{SqlConfig, SqlErp};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("staging.db").display());
    let erp = SqlErp::connect(&SqlConfig { url: url.clone() })
        .await
        .unwrap();
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    (std::sync::Arc::new(erp), db, dir)
}

/// The value of header `name` of `message`, as text.
pub fn header(message: &impl rdkafka::Message, name: &str) -> Option<String> {
    use rdkafka::message::Headers as _;
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
