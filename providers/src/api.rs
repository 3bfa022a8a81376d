//! What OrderBridge asks of a provider's API, whichever provider: one order in full (to
//! complete a thin notification), and pages of orders in a time window (to backfill history
//! and to poll a provider that does not push). [`OrderApi`] is the boundary; each provider's
//! folder implements it for one account.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orderbridge_schemas::Source;

use crate::client::ApiError;

pub use orderbridge_schemas::headers::DOCUMENT_PREFIX;

/// One order as a provider's API returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The order's id at the provider: the third part of its order key.
    pub order_id: String,
    /// What the body is, as the record's `ob-event-type`: [`DOCUMENT_PREFIX`] and the
    /// provider's name for it (`api:getOrder`).
    pub kind: String,
    /// The order, byte for byte as the provider returned it. When the provider gives an
    /// order in several answers (Amazon's order and its items), each answer byte for byte
    /// inside a JSON envelope the provider's normalizer reads.
    pub body: Vec<u8>,
    /// When the provider last changed the order, when it says; polling's high-water mark.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Which of an order's times a window is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    /// When it was placed (a backfill of history).
    Created,
    /// When it last changed (a poll for what is new).
    Updated,
}

/// A window of orders to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which time the window is of.
    pub field: TimeField,
    /// From (inclusive).
    pub from: DateTime<Utc>,
    /// To (exclusive); open when `None`.
    pub to: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The orders on it, in full.
    pub documents: Vec<Document>,
    /// Where the next page starts (the provider's cursor, token, offset or URL); `None` on
    /// the last page.
    pub next: Option<String>,
    /// How many orders the whole listing has, when the provider says.
    pub total: Option<u64>,
}

/// What a thin notification needs fetched to become a whole order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    /// The order's id, as ingest keyed the notification (or as the notification names it).
    pub order_id: String,
    /// What the provider's API is asked by, when it is not the order id (Flipkart's
    /// shipment id).
    pub lookup: Option<String>,
}

/// One account of one provider's API.
#[async_trait]
pub trait OrderApi: Send + Sync {
    /// The source whose API this is.
    fn source(&self) -> Source;

    /// The whole order `order` names.
    ///
    /// # Errors
    /// [`ApiError`]: transient (try later) or permanent (the provider does not have it, or
    /// will not give it).
    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError>;

    /// One page of the orders in `query`'s window, from `cursor` (`None`: the first page).
    ///
    /// # Errors
    /// As [`OrderApi::fetch_order`]; a cursor the provider no longer takes is permanent.
    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError>;
}
