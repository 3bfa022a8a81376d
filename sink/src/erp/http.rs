//! A plain HTTP target: each event is `PUT` to a URL of its own order, as the canonical
//! event in JSON, for ERPs and middleware that take a webhook.
//!
//! The contract a receiver is held to (and the simulator under `tests/` follows):
//!
//! - `PUT {url}` where `{reference}` in the configured URL is the order's external reference
//!   (`^[A-Z0-9-]{1,35}$`, see `reference.rs`), with the `OrderEvent` as JSON.
//! - `Idempotency-Key: <reference>-v<version>`: the same event sent again carries the same
//!   key, so a receiver that keeps keys answers it as before without applying it twice; a
//!   newer version of the order is a new key.
//! - `201` created, `200`/`204` applied, `409` the receiver holds a newer version (the event
//!   is stale, not an error). Everything else goes through the status table: 408, 429, 5xx
//!   and 401/403 are retried (honouring `Retry-After`), other 4xx dead-letter the event with
//!   the receiver's message.
//! - The body carries the order's marketing attribution as `attribution`: `first_touch`,
//!   `last_touch` and `touchpoints`, each touch with `channel`, `campaign`, `source`,
//!   `medium`, `occurred_at` and `credit_share` (0..1), or `null` when none is known. A null
//!   attribution means "not known to this event" (see `erp/attribution.rs`): the receiver
//!   keeps what it holds.
//! - An event with `partial: true` carries only what changed (statuses, `UNKNOWN` for
//!   unchanged; version; lineage; shipment, refund or attribution; its totals are zero and
//!   its lines lack prices): the receiver applies it to the order it holds, in place, never
//!   as a whole order. A late attribution is one (lineage origin `attribution`): it changes
//!   the attribution and the version only, and an older one is `409` like any other event.

use std::sync::Arc;

use async_trait::async_trait;
use orderbridge_runtime::Secret;
use orderbridge_schemas::OrderEvent;
use reqwest::StatusCode;
use serde::Deserialize;

use super::status::classify;
use super::transport::Fixed;
use super::{external_reference, ErpClient, ErpError, ErpSetupError, Upserted};
use crate::mapping::Mapping;

/// Header carrying the idempotency key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Generic HTTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The order's URL, with `{reference}` where the external reference goes, e.g.
    /// `https://erp.example.com/api/orders/{reference}`.
    pub url: String,
    /// Sent as `Authorization: Bearer …` when set.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// Per-request timeout in milliseconds.
    #[serde(default = "super::default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

/// The generic HTTP adapter.
pub struct HttpErp {
    config: HttpConfig,
    http: reqwest::Client,
    mapping: Arc<Mapping>,
}

impl HttpErp {
    /// A client for one receiver.
    ///
    /// # Errors
    /// When the URL has no `{reference}` or does not parse, or the client cannot be built.
    pub fn new(config: HttpConfig) -> Result<Self, ErpSetupError> {
        if !config.url.contains("{reference}") {
            return Err(ErpSetupError::Config(
                "http: url needs {reference}, where each order's reference goes".into(),
            ));
        }
        reqwest::Url::parse(&config.url.replace("{reference}", "X"))
            .map_err(|err| ErpSetupError::Config(format!("http: url: {err}")))?;
        let http = super::http_client(config.request_timeout_ms)?;
        Ok(Self {
            config,
            http,
            mapping: Arc::new(Mapping::default()),
        })
    }

    /// Applies `mapping` (items, customers, channels, the program) to what this adapter
    /// sends.
    #[must_use]
    pub fn with_mapping(mut self, mapping: Arc<Mapping>) -> Self {
        self.mapping = mapping;
        self
    }

    /// The body of `event`: the canonical event as JSON, through the mapping's program.
    fn body(&self, event: &OrderEvent) -> Result<serde_json::Value, ErpError> {
        let body = serde_json::to_value(event)
            .map_err(|err| ErpError::rejected(format!("the order as JSON: {err}")))?;
        self.mapping.transform(event, body)
    }
}

/// The idempotency key of `event`: one per order and version.
pub fn idempotency_key(event: &OrderEvent) -> String {
    format!(
        "{}-v{}",
        external_reference(&event.order_key),
        event.version
    )
}

#[async_trait]
impl ErpClient for HttpErp {
    fn name(&self) -> &'static str {
        "http"
    }

    fn default_max_in_flight(&self) -> usize {
        32
    }

    fn preview(&self, event: &OrderEvent) -> Result<super::Preview, ErpError> {
        let reference = external_reference(&event.order_key);
        Ok(super::Preview {
            method: "PUT",
            url: self.config.url.replace("{reference}", &reference),
            body: self.body(event)?,
        })
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let reference = external_reference(&event.order_key);
        let url = self.config.url.replace("{reference}", &reference);
        let body = self.body(event)?;
        let auth = Fixed(self.config.bearer_token.as_ref().map(|t| t.expose()));
        let reply = super::transport::send("http", &auth, "check sink.erp.bearer_token", || {
            self.http
                .put(&url)
                .header(IDEMPOTENCY_KEY, idempotency_key(event))
                .json(&body)
        })
        .await?;
        let status = reply.status;
        if status == StatusCode::CONFLICT {
            return Ok(Upserted::Stale);
        }
        classify(status, &reply.headers, &reply.text)?;
        Ok(if status == StatusCode::CREATED {
            Upserted::Created
        } else {
            Upserted::Updated
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_must_say_where_the_reference_goes() {
        let config = |url: &str| HttpConfig {
            url: url.into(),
            bearer_token: None,
            request_timeout_ms: 1_000,
        };
        assert!(HttpErp::new(config("https://erp.example.com/orders")).is_err());
        assert!(HttpErp::new(config("not a url/{reference}")).is_err());
        assert!(HttpErp::new(config("https://erp.example.com/orders/{reference}")).is_ok());
    }

    #[test]
    fn the_body_carries_the_attribution_with_each_touchpoints_credit() {
        let erp = HttpErp::new(HttpConfig {
            url: "https://erp.example.com/orders/{reference}".into(),
            bearer_token: None,
            request_timeout_ms: 1_000,
        })
        .unwrap_or_else(|err| panic!("{err}"));
        let event: OrderEvent = serde_json::from_str(include_str!(
            "../../../tests/fixtures/sumeru/order-attributed/expected.json"
        ))
        .unwrap_or_else(|err| panic!("fixture: {err}"));
        let body = erp.body(&event).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(body["attribution"]["first_touch"]["channel"], "google_ads");
        assert_eq!(body["attribution"]["last_touch"]["channel"], "email");
        assert_eq!(
            body["attribution"]["touchpoints"][0]["credit_share"],
            serde_json::json!(0.4)
        );
        assert_eq!(body["partial"], false);
    }
}
