//! One [`Normalizer`] per source: pure, synchronous functions from a raw webhook body to a
//! canonical [`OrderEvent`]. No I/O, no clock, no randomness: the same raw record always gives
//! the same event, which is what makes replay and golden fixtures work.
//!
//! Adding a source: a file here implementing [`Normalizer`], its arm in [`normalizer_for`],
//! and a folder per case under `tests/fixtures/<source>/` (the fixture test picks it up).
//! The generic senders (`standard-webhooks`, `custom`) have no code of their own: their
//! payloads are read through a [`Mapping`](mapped::Mapping) from configuration (`mapped.rs`).

pub mod amazon_sns;
pub mod bigcommerce;
pub mod common;
pub mod easypost;
pub mod ebay;
pub mod edi;
pub mod etsy;
pub mod flipkart;
pub mod mapped;
pub mod ordermentum;
pub mod shopify;
pub mod sumeru;
pub mod tiktok_shop;
pub mod walmart;
pub mod zephyrcart;

use chrono::{DateTime, Utc};
use orderbridge_schemas::{OrderEvent, Source};

/// A raw record as the normalizer sees it: the body and what ingest put in the headers.
#[derive(Debug, Clone)]
pub struct RawRecord<'a> {
    /// The source (`ob-source`).
    pub source: Source,
    /// Account (`ob-account`).
    pub account: &'a str,
    /// Provider event type (`ob-event-type`).
    pub event_type: &'a str,
    /// Provider event id (`ob-event-id`).
    pub event_id: &'a str,
    /// When ingest received it (`ob-received-at`).
    pub received_at: DateTime<Utc>,
    /// `ob-origin`.
    pub origin: &'a str,
    /// Raw topic.
    pub topic: &'a str,
    /// Raw partition.
    pub partition: i32,
    /// Raw offset.
    pub offset: i64,
    /// The verified body, untouched.
    pub body: &'a [u8],
}

/// Why a raw record did not become a canonical event. Each is permanent for that record: it
/// goes to the dead-letter topic with this reason, and can be replayed once the code or the
/// data is fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The body is not the JSON the source sends.
    #[error("unparseable body: {0}")]
    Unparseable(String),
    /// The body parsed but a required field is missing or wrong.
    #[error("invalid order: {0}")]
    Invalid(String),
    /// An event type this version does not map.
    #[error("unsupported event type {0:?}")]
    Unsupported(String),
    /// A quantity or amount is beyond what an order can hold (a product or sum that does not
    /// fit a decimal, a quantity past [`common::MAX_QUANTITY`]).
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The normalizer failed on this record (a bug, caught where it runs): kept with the
    /// failure, to replay once the normalizer is fixed.
    #[error("normalizer failed: {0}")]
    Internal(String),
}

impl NormalizeError {
    /// The `ob-dlq-error-class` for this error.
    pub fn class(&self) -> &'static str {
        match self {
            NormalizeError::Unparseable(_) => "unparseable",
            NormalizeError::Invalid(_) => "invalid",
            NormalizeError::Unsupported(_) => "unsupported",
            NormalizeError::OutOfRange(_) => "out-of-range",
            NormalizeError::Internal(_) => "internal",
        }
    }
}

/// Turns one source's raw bodies into canonical events.
pub trait Normalizer: Send + Sync {
    /// Normalizes one raw record.
    ///
    /// # Errors
    /// [`NormalizeError`] when the record cannot become a canonical event.
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError>;
}

/// The normalizer for `source`.
pub fn normalizer_for(source: Source) -> &'static dyn Normalizer {
    match source {
        Source::Shopify => &shopify::ShopifyNormalizer,
        Source::Sumeru => &sumeru::SumeruNormalizer,
        Source::Zephyrcart => &zephyrcart::ZephyrcartNormalizer,
        Source::AmazonSns => &amazon_sns::AmazonSnsNormalizer,
        Source::Ebay => &ebay::EbayNormalizer,
        Source::Etsy => &etsy::EtsyNormalizer,
        Source::TiktokShop => &tiktok_shop::TiktokShopNormalizer,
        Source::Walmart => &walmart::WalmartNormalizer,
        Source::Flipkart => &flipkart::FlipkartNormalizer,
        Source::Ordermentum => &ordermentum::OrdermentumNormalizer,
        Source::Easypost => &easypost::EasypostNormalizer,
        Source::Bigcommerce => &bigcommerce::BigcommerceNormalizer,
        Source::Edi => &edi::EdiNormalizer,
        Source::StandardWebhooks | Source::Custom => &Unmapped,
    }
}

/// A generic sender's record whose account has no mapping. Dead-lettered as `unsupported`:
/// kept, with the reason, and replayable to the raw topic once a mapping names it, so
/// nothing accepted is lost in between.
struct Unmapped;

impl Normalizer for Unmapped {
    fn normalize(&self, raw: &RawRecord<'_>) -> Result<OrderEvent, NormalizeError> {
        Err(NormalizeError::Unsupported(format!(
            "no mapping for {}/{} under [processor.mappings]",
            raw.source, raw.account
        )))
    }
}

/// Normalizes `raw` with its source's normalizer (or, for a generic sender, its account's
/// mapping in `mappings`), then writes every amount with the currency's minor units, as
/// readers of the canonical topic will see them.
///
/// # Errors
/// [`NormalizeError`] from the source's normalizer.
pub fn normalize(
    raw: &RawRecord<'_>,
    mappings: &mapped::Mappings,
) -> Result<OrderEvent, NormalizeError> {
    let mut event = match mapped::mapping_for(mappings, raw) {
        Some(mapping) => mapped::normalize(raw, mapping)?,
        None => normalizer_for(raw.source).normalize(raw)?,
    };
    // Every source's quantities are bounded here, once, whatever its normalizer read.
    for line in &event.line_items {
        common::quantity("line_items", line.quantity)?;
    }
    for line in event.refund.iter().flat_map(|refund| &refund.lines) {
        common::quantity("refund.lines", line.quantity)?;
    }
    event.fit_amounts_to_currency();
    Ok(event)
}

#[cfg(test)]
mod golden {
    //! Golden fixtures: every folder under `tests/fixtures/<source>/` is a case with the
    //! request as the provider sent it (`headers.json`, `body.json`) and either the expected
    //! canonical event (`expected.json`) or the expected error class (`expected_error.txt`).
    //! `UPDATE_GOLDEN=1` rewrites `expected.json` from the current output, for review.
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use chrono::{TimeZone, Utc};
    use orderbridge_schemas::{EmbeddedRegistry, OrderEvent, OrderEventCodec, Source};

    use super::{normalize, RawRecord};

    fn fixtures_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
    }

    /// What ingest put in the raw record's headers: `record.json` in the case (account,
    /// event type, event id), or for Shopify, read from the request headers as ingest does.
    fn header_fields(
        source: Source,
        case: &Path,
        headers: &BTreeMap<String, String>,
    ) -> (String, String, String) {
        let record = case.join("record.json");
        if record.exists() {
            let fields: BTreeMap<String, String> =
                serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
            let get = |k: &str| fields.get(k).cloned().unwrap_or_else(|| "-".into());
            return (get("account"), get("event_type"), get("event_id"));
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            source,
            Source::Shopify,
            "{}: record.json is missing",
            case.display()
        );
        (
            get("X-Shopify-Shop-Domain").unwrap_or_else(|| "-".into()),
            get("X-Shopify-Topic").unwrap_or_else(|| "unknown".into()),
            get("X-Shopify-Webhook-Id").unwrap_or_else(|| "-".into()),
        )
    }

    async fn round_trip(
        codec: &OrderEventCodec,
        event: &OrderEvent,
    ) -> Result<OrderEvent, orderbridge_schemas::CodecError> {
        codec.decode(&codec.encode(event).await?).await
    }

    #[test]
    fn every_fixture_normalizes_as_expected() {
        let update = std::env::var_os("UPDATE_GOLDEN").is_some();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let codec = OrderEventCodec::new(
            std::sync::Arc::new(EmbeddedRegistry::new()),
            "orders.canonical.v1",
        )
        .unwrap();
        let mut checked = 0;
        let mut failures = Vec::new();
        for source in Source::ALL {
            let dir = fixtures_root().join(source.as_str());
            let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.is_dir())
                .collect();
            cases.sort();
            assert!(!cases.is_empty(), "no fixtures for {source}");
            // A generic sender's fixtures come with the mapping an operator would configure.
            let mut mappings = super::mapped::Mappings::new();
            let mapping_file = dir.join("mappings.toml");
            if mapping_file.exists() {
                let accounts = toml::from_str(&std::fs::read_to_string(&mapping_file).unwrap())
                    .unwrap_or_else(|err| panic!("{}: {err}", mapping_file.display()));
                mappings.insert(source.as_str().to_owned(), accounts);
            }
            for case in cases {
                let name = format!("{source}/{}", case.file_name().unwrap().to_string_lossy());
                let headers: BTreeMap<String, String> = serde_json::from_str(
                    &std::fs::read_to_string(case.join("headers.json")).unwrap(),
                )
                .unwrap();
                // A partner's X12 is kept as sent, like a JSON body.
                let body = std::fs::read(case.join("body.json"))
                    .or_else(|_| std::fs::read(case.join("body.x12")))
                    .unwrap_or_else(|err| panic!("{name}: no body.json or body.x12: {err}"));
                let (account, event_type, event_id) = header_fields(*source, &case, &headers);
                let raw = RawRecord {
                    source: *source,
                    account: &account,
                    event_type: &event_type,
                    event_id: &event_id,
                    received_at: Utc.timestamp_millis_opt(1_745_350_202_000).unwrap(),
                    origin: "webhook",
                    topic: "orders.raw.v1",
                    partition: 0,
                    offset: 42,
                    body: &body,
                };
                let result = normalize(&raw, &mappings);
                let expected_error = case.join("expected_error.txt");
                if expected_error.exists() {
                    let class = std::fs::read_to_string(&expected_error)
                        .unwrap()
                        .trim()
                        .to_owned();
                    match result {
                        Err(err) if err.class() == class => {}
                        other => {
                            failures.push(format!("{name}: expected error {class}, got {other:?}"))
                        }
                    }
                    checked += 1;
                    continue;
                }
                let expected_path = case.join("expected.json");
                let event = match result {
                    Ok(event) => event,
                    Err(err) => {
                        failures.push(format!("{name}: {err}"));
                        continue;
                    }
                };
                // What the processor does next: the event must encode, and read back as it was.
                match runtime.block_on(round_trip(&codec, &event)) {
                    Ok(decoded) if decoded == event => {}
                    Ok(decoded) => failures.push(format!("{name}: read back as {decoded:?}")),
                    Err(err) => failures.push(format!("{name}: does not encode: {err}")),
                }
                if update {
                    let text = serde_json::to_string_pretty(&event).unwrap() + "\n";
                    std::fs::write(&expected_path, text).unwrap();
                }
                let expected: OrderEvent = serde_json::from_str(
                    &std::fs::read_to_string(&expected_path)
                        .unwrap_or_else(|err| panic!("{}: {err}", expected_path.display())),
                )
                .unwrap_or_else(|err| panic!("{}: {err}", expected_path.display()));
                if event != expected {
                    failures.push(format!(
                        "{name}: got\n{}",
                        serde_json::to_string_pretty(&event).unwrap()
                    ));
                }
                checked += 1;
            }
        }
        assert!(
            failures.is_empty(),
            "{} fixture(s) differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(checked >= 7, "only {checked} fixtures checked");
    }
}
