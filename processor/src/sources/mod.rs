//! One [`Normalizer`] per source: pure, synchronous functions from a raw webhook body to a
//! canonical [`OrderEvent`]. No I/O, no clock, no randomness: the same raw record always gives
//! the same event, which is what makes replay and golden fixtures work.
//!
//! Adding a source: a file here implementing [`Normalizer`], its arm in [`normalizer_for`],
//! and a folder per case under `tests/fixtures/<source>/` (the fixture test picks it up).

pub mod shopify;

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
}

impl NormalizeError {
    /// The `ob-dlq-error-class` for this error.
    pub fn class(&self) -> &'static str {
        match self {
            NormalizeError::Unparseable(_) => "unparseable",
            NormalizeError::Invalid(_) => "invalid",
            NormalizeError::Unsupported(_) => "unsupported",
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
    }
}
