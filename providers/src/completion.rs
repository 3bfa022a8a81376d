//! Which raw records are thin notifications that `orderbridge enrich` completes from the
//! provider's API, and what to fetch for each.
//!
//! The processor asks the same question: a thin notification of an account whose API is
//! configured is completed by the enrich stage (the whole order comes back to the raw topic
//! as a document), so the processor emits nothing for it and counts it as
//! `awaiting_enrichment`; without an API, it emits the notification's partial event as
//! before. One function answers both, so the two stages cannot disagree.

use orderbridge_schemas::headers::DOCUMENT_PREFIX;
use orderbridge_schemas::Source;

use crate::api::OrderRef;
use crate::config::ApiConfig;

/// What a raw record needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Nothing: it is whole already, or not an order notification (the processor judges it).
    Complete,
    /// The whole order, fetched from the provider's API.
    Fetch(OrderRef),
}

/// What the raw record of `source` with `event_type`, the order id it was keyed by, and
/// `body` needs. Documents read from an API (`api:…`) are whole.
pub fn completion(
    source: Source,
    event_type: &str,
    order_id: Option<&str>,
    body: &[u8],
) -> Completion {
    if event_type.starts_with(DOCUMENT_PREFIX) {
        return Completion::Complete;
    }
    match source {
        Source::Ebay => crate::ebay::completion(order_id, body),
        Source::AmazonSns => crate::amazon::completion(order_id, body),
        Source::Etsy => crate::etsy::completion(order_id, body),
        Source::TiktokShop => crate::tiktok_shop::completion(order_id, body),
        Source::Walmart => crate::walmart::completion(order_id, body),
        Source::Flipkart => crate::flipkart::completion(body),
        Source::Ordermentum => crate::ordermentum::completion(order_id, body),
        Source::Bigcommerce => crate::bigcommerce::completion(order_id, body),
        Source::Shopify
        | Source::Sumeru
        | Source::Zephyrcart
        | Source::Easypost
        | Source::StandardWebhooks
        | Source::Custom
        | Source::Edi => Completion::Complete,
    }
}

/// The order id of a raw record's key (`<source>:<account>:<order id>`).
pub fn key_order_id(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key).ok()?.splitn(3, ':').nth(2)
}

/// Which accounts' thin notifications the enrich stage completes: those whose API is
/// configured. Cheap to clone; the processor holds one.
#[derive(Debug, Clone, Default)]
pub struct Enrichment {
    config: std::sync::Arc<ApiConfig>,
}

impl Enrichment {
    /// The accounts `config` configures.
    pub fn new(config: ApiConfig) -> Self {
        Self {
            config: std::sync::Arc::new(config),
        }
    }

    /// Whether the record is a thin notification `orderbridge enrich` completes.
    pub fn completes(
        &self,
        source: Source,
        account: &str,
        event_type: &str,
        order_id: Option<&str>,
        body: &[u8],
    ) -> bool {
        crate::configured(&self.config, source, account)
            && matches!(
                completion(source, event_type, order_id, body),
                Completion::Fetch(_)
            )
    }
}
