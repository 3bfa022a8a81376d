//! Topic names, header keys, sources and the order key: the names every stage shares.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The topics of the pipeline. Names are configuration; these are the defaults from the design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    /// Verified webhook bodies, byte for byte (`orders.raw.v1`).
    pub raw: String,
    /// Canonical `OrderEvent`s in schema registry wire format (`orders.canonical.v1`).
    pub canonical: String,
    /// Attribution events keyed by order key (`orders.attribution.v1`).
    pub attribution: String,
    /// Records a stage could not handle, value untouched (`orders.dlq.v1`).
    pub dlq: String,
    /// The processor's memory (duplicate filter, attribution join), one compacted entry per
    /// order, co-partitioned with `raw` (`orders.processor-state.v1`).
    pub processor_state: String,
    /// Thin notifications whose completion from the provider's API failed for now, waiting
    /// to be tried again (`orders.enrich-retry.v1`).
    pub enrich_retry: String,
    /// Where long-running commands keep their place: backfill cursors, poll high-water
    /// marks, claimed EDI files; compacted, one entry per key (`orders.checkpoints.v1`).
    pub checkpoints: String,
    /// What each stage last did with each order (received, normalized, dead-lettered,
    /// delivered): [`crate::status::StatusRecord`]s keyed by order key, compacted
    /// (`orders.status.v1`). Read by `orderbridge trace` and the console.
    pub status: String,
    /// One [`crate::status::AuditRecord`] per operator action (replay, reprocess, subscribe,
    /// console sign-in) (`orders.audit.v1`).
    pub audit: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            raw: "orders.raw.v1".into(),
            canonical: "orders.canonical.v1".into(),
            attribution: "orders.attribution.v1".into(),
            dlq: "orders.dlq.v1".into(),
            processor_state: "orders.processor-state.v1".into(),
            enrich_retry: "orders.enrich-retry.v1".into(),
            checkpoints: "orders.checkpoints.v1".into(),
            status: "orders.status.v1".into(),
            audit: "orders.audit.v1".into(),
        }
    }
}

impl Topics {
    /// The same topic set with a suffix on every name; tests use it for per-test isolation.
    pub fn with_suffix(suffix: &str) -> Self {
        let base = Self::default();
        Self {
            raw: format!("{}.{suffix}", base.raw),
            canonical: format!("{}.{suffix}", base.canonical),
            attribution: format!("{}.{suffix}", base.attribution),
            dlq: format!("{}.{suffix}", base.dlq),
            processor_state: format!("{}.{suffix}", base.processor_state),
            enrich_retry: format!("{}.{suffix}", base.enrich_retry),
            checkpoints: format!("{}.{suffix}", base.checkpoints),
            status: format!("{}.{suffix}", base.status),
            audit: format!("{}.{suffix}", base.audit),
        }
    }

    /// All topic names, in pipeline order.
    pub fn all(&self) -> [&str; 9] {
        [
            &self.raw,
            &self.canonical,
            &self.attribution,
            &self.dlq,
            &self.processor_state,
            &self.enrich_retry,
            &self.checkpoints,
            &self.status,
            &self.audit,
        ]
    }
}

/// Header keys on OrderBridge records. All carry the `ob-` prefix except `content-type`.
pub mod headers {
    /// Source name (`shopify`, …).
    pub const SOURCE: &str = "ob-source";
    /// Account: shop domain, seller id, tenant; `-` if none.
    pub const ACCOUNT: &str = "ob-account";
    /// Provider's event type, e.g. `orders/create`; for a document read from a provider's
    /// API, [`DOCUMENT_PREFIX`] and the provider's name for it (`api:getOrder`).
    pub const EVENT_TYPE: &str = "ob-event-type";
    /// The `ob-event-type` prefix of a record whose body is a whole order read from a
    /// provider's API (completion, backfill, polling), not a webhook.
    pub const DOCUMENT_PREFIX: &str = "api:";
    /// Provider's delivery/event id, or a hash of the body when the provider gives none.
    pub const EVENT_ID: &str = "ob-event-id";
    /// When ingest received the webhook, unix milliseconds.
    pub const RECEIVED_AT: &str = "ob-received-at";
    /// Which rotation secret matched.
    pub const SECRET_ID: &str = "ob-secret-id";
    /// `webhook` | `enrich` | `backfill` | `poll` | `replay`.
    pub const ORIGIN: &str = "ob-origin";
    /// Provider's own timestamp for the event when it sends one (Shopify `X-Shopify-Triggered-At`).
    pub const TRIGGERED_AT: &str = "ob-triggered-at";
    /// The id Shopify gives every delivery caused by one merchant action (`X-Shopify-Event-Id`),
    /// to correlate deliveries to several subscriptions.
    pub const SHOPIFY_EVENT_ID: &str = "ob-shopify-event-id";
    /// The Shopify API version that serialized the payload.
    pub const SHOPIFY_API_VERSION: &str = "ob-shopify-api-version";
    /// Content type of the value.
    pub const CONTENT_TYPE: &str = "content-type";

    /// On a record waiting in the enrich-retry topic: completions tried so far.
    pub const ENRICH_ATTEMPTS: &str = "ob-enrich-attempts";
    /// On a record waiting in the enrich-retry topic: when to try again, unix milliseconds.
    pub const ENRICH_DUE_AT: &str = "ob-enrich-due-at";
    /// On a record waiting in the enrich-retry topic: when its completion was first tried,
    /// unix milliseconds.
    pub const ENRICH_FIRST_AT: &str = "ob-enrich-first-at";
    /// On a record waiting in the enrich-retry topic: why the last try failed.
    pub const ENRICH_REASON: &str = "ob-enrich-reason";
    /// On a record waiting in the enrich-retry topic: the raw partition and offset it was
    /// read from, so its dead letter replays to the raw topic.
    pub const ENRICH_RAW_PARTITION: &str = "ob-enrich-raw-partition";
    /// See [`ENRICH_RAW_PARTITION`].
    pub const ENRICH_RAW_OFFSET: &str = "ob-enrich-raw-offset";

    /// Stage that dead-lettered the record (`processor`, `enrich`, `sink`).
    pub const DLQ_STAGE: &str = "ob-dlq-stage";
    /// Human-readable reason.
    pub const DLQ_REASON: &str = "ob-dlq-reason";
    /// Machine-readable error class (`unparseable`, `invalid`, `unsupported`, `erp-rejected`, …).
    pub const DLQ_ERROR_CLASS: &str = "ob-dlq-error-class";
    /// Topic the record was consumed from.
    pub const DLQ_ORIGINAL_TOPIC: &str = "ob-dlq-original-topic";
    /// Partition the record was consumed from.
    pub const DLQ_ORIGINAL_PARTITION: &str = "ob-dlq-original-partition";
    /// Offset the record was consumed from.
    pub const DLQ_ORIGINAL_OFFSET: &str = "ob-dlq-original-offset";
    /// How many attempts were made before dead-lettering.
    pub const DLQ_ATTEMPTS: &str = "ob-dlq-attempts";
    /// When it was dead-lettered, unix milliseconds.
    pub const DLQ_AT: &str = "ob-dlq-at";

    /// On a replayed record: the dead letter it replays, `<dlq topic>:<partition>:<offset>`.
    pub const REPLAY_OF: &str = "ob-replay-of";
    /// On a raw record re-published by `orderbridge revise`: the revision (1 to
    /// [`crate::model::MAX_REVISION`]) its canonical event is emitted at. The processor adds
    /// [`crate::model::REVISION_STEP`] × revision to the event's version, so that the sink's
    /// version guard lets the corrected event replace what the ERP holds, and counts it as a
    /// delivery of its own (not a duplicate of the original).
    pub const REVISION: &str = "ob-revision";
    /// On a replayed record: how many times this record has been replayed, the first
    /// replay being 1. A replay that is dead-lettered again keeps it, so the next replay
    /// counts on from it.
    pub const REPLAYS: &str = "ob-replays";
}

/// Where a raw record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A provider's webhook delivery.
    Webhook,
    /// A backfill through a provider's API.
    Backfill,
    /// A periodic poll of a provider's API (or a partner's file drop).
    Poll,
    /// A thin notification completed from the provider's API: the whole order, fetched.
    Enrich,
    /// A replay of a dead-lettered or earlier record.
    Replay,
}

impl Origin {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Webhook => "webhook",
            Origin::Backfill => "backfill",
            Origin::Poll => "poll",
            Origin::Enrich => "enrich",
            Origin::Replay => "replay",
        }
    }
}

/// The closed set of sources, registered here once.
///
/// Adding a source: one arm here, `ingest/src/verify/<source>.rs`,
/// `processor/src/sources/<source>.rs`, and fixtures under `tests/fixtures/<source>/`.
/// A provider that signs like one of the HMAC presets needs no code: it is configured as a
/// [`Source::Custom`] account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Shopify Admin webhooks.
    Shopify,
    /// Sumeru, the attribution platform (`order.created`, `order.attributed`).
    Sumeru,
    /// ZephyrCart, the commerce platform (`order.created`, `order.refunded`).
    Zephyrcart,
    /// Amazon SP-API notifications delivered through an SNS HTTPS subscription.
    AmazonSns,
    /// eBay Notification API.
    Ebay,
    /// Etsy Open API v3 webhooks.
    Etsy,
    /// TikTok Shop webhooks.
    TiktokShop,
    /// Walmart Marketplace notifications.
    Walmart,
    /// Flipkart Marketplace order-management notifications.
    Flipkart,
    /// EasyPost events (tracker updates).
    Easypost,
    /// Ordermentum, the wholesale platform.
    Ordermentum,
    /// BigCommerce: Standard Webhooks signed with the app's client secret; thin order
    /// events completed from the Orders V2 API.
    Bigcommerce,
    /// Any Standard Webhooks sender (Svix-based platforms, and BigCommerce before it had a
    /// source of its own).
    StandardWebhooks,
    /// A provider declared in configuration with an HMAC preset or scheme (Stripe,
    /// WooCommerce, Square, GitHub-style); the account names the provider.
    Custom,
    /// X12 850 purchase orders a trading partner drops as files, read by `orderbridge
    /// poll`; the account names the partner. No webhooks.
    Edi,
}

impl Source {
    /// Every source, for metrics pre-registration and route listings.
    pub const ALL: &'static [Source] = &[
        Source::Shopify,
        Source::Sumeru,
        Source::Zephyrcart,
        Source::AmazonSns,
        Source::Ebay,
        Source::Etsy,
        Source::TiktokShop,
        Source::Walmart,
        Source::Flipkart,
        Source::Easypost,
        Source::Ordermentum,
        Source::Bigcommerce,
        Source::StandardWebhooks,
        Source::Custom,
        Source::Edi,
    ];

    /// The name used in routes, headers, order keys and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Shopify => "shopify",
            Source::Sumeru => "sumeru",
            Source::Zephyrcart => "zephyrcart",
            Source::AmazonSns => "amazon-sns",
            Source::Ebay => "ebay",
            Source::Etsy => "etsy",
            Source::TiktokShop => "tiktok-shop",
            Source::Walmart => "walmart",
            Source::Flipkart => "flipkart",
            Source::Easypost => "easypost",
            Source::Ordermentum => "ordermentum",
            Source::Bigcommerce => "bigcommerce",
            Source::StandardWebhooks => "standard-webhooks",
            Source::Custom => "custom",
            Source::Edi => "edi",
        }
    }

    /// Whether the source pushes webhooks to ingest (every one but the EDI file drop, which
    /// `orderbridge poll` reads).
    pub fn sends_webhooks(self) -> bool {
        !matches!(self, Source::Edi)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source")]
pub struct UnknownSource;

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .iter()
            .copied()
            .find(|source| source.as_str() == s)
            .ok_or(UnknownSource)
    }
}

/// The order key `<source>:<account>:<order id>` that keys raw, canonical and attribution
/// records, so that every record of one order lands on one partition, in order.
///
/// An empty account becomes `-`, as the design says.
pub fn order_key(source: Source, account: &str, order_id: &str) -> String {
    let account = if account.is_empty() { "-" } else { account };
    format!("{}:{account}:{order_id}", source.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_key_has_three_parts_and_dash_for_no_account() {
        assert_eq!(
            order_key(Source::Shopify, "shop.myshopify.com", "42"),
            "shopify:shop.myshopify.com:42"
        );
        assert_eq!(order_key(Source::Shopify, "", "42"), "shopify:-:42");
    }

    #[test]
    fn sources_round_trip_through_their_names() {
        for source in Source::ALL {
            assert_eq!(source.as_str().parse::<Source>(), Ok(*source));
        }
        assert_eq!("nope".parse::<Source>(), Err(UnknownSource));
    }
}
