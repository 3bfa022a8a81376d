//! Oracle NetSuite, through the SuiteTalk REST record API (`/services/rest/record/v1`).
//!
//! - Auth: OAuth 2.0 client credentials (machine to machine). The sink signs a JWT with the
//!   private key of the certificate mapped in NetSuite's "OAuth 2.0 Client Credentials (M2M)
//!   Setup" (ES256; the header's `kid` is the certificate id) and trades it at the token
//!   endpoint for an access token. The token is cached until a minute before it expires and
//!   fetched again after a 401 (one retry).
//! - Upsert: `PUT /salesOrder/eid:{reference}` creates the order if the external id is new
//!   and updates it otherwise; NetSuite itself is the idempotency here. External ids allow
//!   letters, digits, `_` and `-` only, which [`external_reference`] keeps to.
//! - Version guard: the order is read first (`GET /salesOrder/eid:{reference}`, 404 when
//!   new) for the version the sink last wrote, kept in a custom body field (`version_field`,
//!   default `custbody_orderbridge_version`, free-form text). An older event is `Stale`. An
//!   update replaces the item sublist (`?replace=item`); a status-only event patches the
//!   version alone.
//! - Attribution: into custom body fields named in `attribution_fields` (none by default:
//!   NetSuite refuses a field the account does not have, so each must be created first, as
//!   Free-Form Text, 300 characters, fewer for non-English text: the limit is bytes): the
//!   first and the last touch's channel, and every touchpoint with its credit as
//!   `channel:credit%;…`, cut by whole entries to 300 bytes. Written with the version: in the
//!   upsert's body, and on a partial event in one `PATCH` with it, so a late attribution
//!   changes those fields and the version only; an event without attribution leaves them.
//! - Cancel: NetSuite has no cancel action for sales orders in REST; every line is closed
//!   (`isClosed`), which closes the order. A closed order takes nothing but refunds.
//! - Refund: a credit memo upserted by its own external id (`PUT /creditMemo/eid:{refund
//!   reference}`), so a redelivered refund changes nothing.
//! - Concurrency: NetSuite limits concurrent requests per account (the limit is shared by
//!   every integration); `max_in_flight` defaults to 5, a developer account's limit. Going
//!   over is 429 (REST) or 400 `SSS_REQUEST_LIMIT_EXCEEDED` (RESTlets); both are throttling.
//! - Errors: NetSuite's body `{"title", "status", "o:errorDetails": [{"detail",
//!   "o:errorCode"}]}`, with the detail and code in every error.
//!
//! Contract: `shared/reference/erp-targets.md` §3. The item reference `{"id": "eid:<sku>"}`
//! (items found by their external id, which is the SKU) follows "external ids are written
//! `eid:<value>` anywhere an internal id is accepted" there; check it on the account.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use orderbridge_runtime::Secret;
use orderbridge_schemas::OrderEvent;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::attribution::AttributionFields;
use super::status::{classify, json_body, retry_after};
use super::token::TokenCache;
use super::{
    action, external_reference, json_number, reference, Action, Cause, ErpClient, ErpError,
    ErpSetupError, Held, Upserted,
};
use crate::mapping::Mapping;

/// NetSuite settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSuiteConfig {
    /// The account id, e.g. `1234567` or `1234567_SB1` for a sandbox.
    pub account_id: String,
    /// The REST root; default `https://<account>.suitetalk.api.netsuite.com` (the account id
    /// lower-cased, `_` as `-`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The integration record's client id.
    pub client_id: String,
    /// The certificate id NetSuite shows for the mapped certificate (the JWT's `kid`).
    pub certificate_id: String,
    /// The certificate's EC P-256 private key, PKCS#8 PEM.
    pub private_key: Secret,
    /// Internal id of the customer every order is booked to until customer mapping exists.
    pub default_customer_id: String,
    /// The custom body field (free-form text) that holds the canonical version the sink last
    /// wrote; empty: no guard.
    #[serde(default = "default_version_field")]
    pub version_field: String,
    /// The custom body fields (Free-Form Text) that take the attribution, e.g. `{ first_touch
    /// = "custbody_ob_first_touch", last_touch = "custbody_ob_last_touch", touchpoints =
    /// "custbody_ob_touchpoints" }`; a field left out is not written. Default: none.
    #[serde(default)]
    pub attribution_fields: AttributionFields,
    /// Internal id of a non-inventory item for a refund of money with no item lines; without
    /// one such a refund is dead-lettered with the reason.
    #[serde(default)]
    pub refund_item_id: Option<String>,
    /// Per-request timeout in milliseconds.
    #[serde(default = "super::default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_version_field() -> String {
    "custbody_orderbridge_version".into()
}

/// A Free-Form Text field's limit, in bytes: what the attribution fields are cut to.
const FREE_FORM_TEXT_MAX: usize = 300;

/// The NetSuite adapter.
pub struct NetSuite {
    config: NetSuiteConfig,
    base: String,
    key: SigningKey,
    http: reqwest::Client,
    mapping: Arc<Mapping>,
    token: TokenCache,
}

impl NetSuite {
    /// A client for one NetSuite account.
    ///
    /// # Errors
    /// When the key is not an EC P-256 PKCS#8 PEM, or the URL or HTTP client is unusable.
    pub fn new(config: NetSuiteConfig) -> Result<Self, ErpSetupError> {
        let key = SigningKey::from_pkcs8_pem(config.private_key.expose()).map_err(|err| {
            ErpSetupError::Config(format!(
                "netsuite: private_key is not an EC P-256 PKCS#8 PEM key: {err}"
            ))
        })?;
        let base = config.base_url.clone().unwrap_or_else(|| {
            format!(
                "https://{}.suitetalk.api.netsuite.com",
                config.account_id.to_lowercase().replace('_', "-")
            )
        });
        let base = base.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base)
            .map_err(|err| ErpSetupError::Config(format!("netsuite: base_url: {err}")))?;
        let http = super::http_client(config.request_timeout_ms)?;
        Ok(Self {
            config,
            base,
            key,
            http,
            mapping: Arc::new(Mapping::default()),
            token: TokenCache::default(),
        })
    }

    /// Applies `mapping` (items, customers, channels, the program) to what this adapter
    /// sends.
    #[must_use]
    pub fn with_mapping(mut self, mapping: Arc<Mapping>) -> Self {
        self.mapping = mapping;
        self
    }

    /// The customer internal id of `event`: mapped, or the configured default.
    fn customer<'a>(&'a self, event: &'a OrderEvent) -> &'a str {
        self.mapping
            .customer(event)
            .unwrap_or(&self.config.default_customer_id)
    }

    fn token_url(&self) -> String {
        format!("{}/services/rest/auth/oauth2/v1/token", self.base)
    }

    fn record_url(&self, path: &str) -> String {
        format!("{}/services/rest/record/v1/{path}", self.base)
    }

    /// The signed client assertion: a JWT that NetSuite checks against the mapped
    /// certificate.
    fn assertion(&self) -> String {
        let now = Utc::now().timestamp();
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.config.certificate_id });
        let claims = json!({
            "iss": self.config.client_id,
            "scope": ["rest_webservices"],
            "aud": self.token_url(),
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    async fn bearer(&self) -> Result<String, ErpError> {
        self.token
            .bearer(|| {
                let assertion = self.assertion();
                self.http.post(self.token_url()).form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
            })
            .await
    }

    /// One record API call with a bearer token; on 401 a new token and one more try. 404 is
    /// `Ok(None)` (the record does not exist); other answers go through NetSuite's error
    /// body and the status table.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ErpError> {
        let reply = super::transport::send(
            "netsuite",
            self,
            "check the integration's role and the certificate mapping",
            || {
                let request = self.http.request(method.clone(), url);
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            },
        )
        .await?;
        if reply.status == StatusCode::NOT_FOUND && method == Method::GET {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(netsuite_error(reply.status, &reply.headers, &reply.text));
        }
        json_body(&reply.text).map(Some)
    }

    fn order_body(&self, event: &OrderEvent, reference: &str) -> Result<Value, ErpError> {
        let items = event
            .line_items
            .iter()
            .map(|line| {
                let sku = self.mapping.item(line, "NetSuite")?;
                Ok(json!({
                    "item": { "id": format!("eid:{sku}") },
                    "description": line.title.chars().take(100).collect::<String>(),
                    "quantity": line.quantity,
                    "rate": json_number(line.unit_price),
                }))
            })
            .collect::<Result<Vec<_>, ErpError>>()?;
        if items.is_empty() {
            return Err(ErpError::rejected("the order has no lines for NetSuite"));
        }
        let mut body = json!({
            "externalId": reference,
            "entity": { "id": self.customer(event) },
            "otherRefNum": reference,
            "currency": { "refName": event.currency },
            "item": { "items": items },
        });
        if let Some(created) = event.source_created_at {
            body["tranDate"] = json!(created.format("%Y-%m-%d").to_string());
        }
        if let Some(location) = self.mapping.channel(event) {
            body["location"] = json!({ "id": location });
        }
        self.stamp(&mut body, event);
        self.mapping.transform(event, body)
    }

    /// Puts the event's version, and its attribution when it carries one, on a body.
    fn stamp(&self, body: &mut Value, event: &OrderEvent) {
        super::stamp_version(body, &self.config.version_field, event);
        self.config
            .attribution_fields
            .write(body, event, FREE_FORM_TEXT_MAX);
    }

    fn held(&self, order: &Value) -> Held {
        let lines = order
            .pointer("/item/items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Held {
            version: super::read_version(order, &self.config.version_field),
            cancelled: !lines.is_empty()
                && lines
                    .iter()
                    .all(|l| l.get("isClosed").and_then(Value::as_bool) == Some(true)),
            posted: false,
        }
    }

    async fn refund(&self, event: &OrderEvent, reference: &str) -> Result<Upserted, ErpError> {
        let Some(refund) = &event.refund else {
            return Ok(Upserted::Skipped);
        };
        let credit = super::refund_reference(reference, &refund.refund_id, reference::MAX_LEN);
        let mut items: Vec<Value> = self
            .mapping
            .refund_items(refund, "NetSuite")?
            .into_iter()
            .map(|refunded| {
                json!({
                    "item": { "id": format!("eid:{}", refunded.item) },
                    "quantity": refunded.quantity,
                    "rate": json_number(refunded.unit_price),
                })
            })
            .collect();
        if items.is_empty() {
            let item = self.config.refund_item_id.as_deref().ok_or_else(|| {
                ErpError::rejected(
                    "the refund has no item lines and sink.erp.refund_item_id is not set",
                )
            })?;
            items.push(json!({ "item": { "id": item }, "quantity": 1, "rate": json_number(refund.amount) }));
        }
        let url = self.record_url(&format!("creditMemo/eid:{credit}"));
        if self.call(Method::GET, &url, None).await?.is_some() {
            return Ok(Upserted::AlreadyPresent);
        }
        let body = json!({
            "externalId": credit,
            "entity": { "id": self.customer(event) },
            "otherRefNum": reference,
            "currency": { "refName": event.currency },
            "item": { "items": items },
        });
        // A PUT by external id: should an earlier attempt have landed after all, this one
        // updates the same credit memo instead of adding a second.
        self.call(Method::PUT, &format!("{url}?replace=item"), Some(&body))
            .await?;
        Ok(Upserted::Updated)
    }
}

/// NetSuite's error body, classified: the concurrency limit is throttling whatever its
/// status; everything else by the status table, with NetSuite's detail and code.
fn netsuite_error(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    text: &str,
) -> ErpError {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let detail = body
        .get("o:errorDetails")
        .and_then(Value::as_array)
        .and_then(|details| details.first());
    let code = detail
        .and_then(|d| d.get("o:errorCode"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = detail
        .and_then(|d| d.get("detail"))
        .and_then(Value::as_str)
        .or_else(|| body.get("title").and_then(Value::as_str))
        .unwrap_or_default();
    if code == "SSS_REQUEST_LIMIT_EXCEEDED" || status == StatusCode::TOO_MANY_REQUESTS {
        return ErpError::Transient {
            reason: format!("{status}: {code} {message}").trim().to_owned(),
            retry_after: retry_after(headers),
            cause: Cause::Throttled,
        };
    }
    let shaped = if message.is_empty() {
        text.to_owned()
    } else {
        json!({ "error": { "code": code, "message": message } }).to_string()
    };
    classify(status, headers, &shaped)
        .err()
        .unwrap_or_else(|| ErpError::transient(format!("unexpected {status}")))
}

/// NetSuite's M2M bearer token, for the shared transport.
#[async_trait]
impl super::transport::Auth for NetSuite {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ErpError> {
        Ok(request.bearer_auth(self.bearer().await?))
    }

    async fn refused(&self) {
        self.token.forget().await;
    }
}

#[async_trait]
impl ErpClient for NetSuite {
    fn name(&self) -> &'static str {
        "netsuite"
    }

    fn default_max_in_flight(&self) -> usize {
        5
    }

    fn preview(&self, event: &OrderEvent) -> Result<super::Preview, ErpError> {
        let reference = external_reference(&event.order_key);
        Ok(super::Preview {
            method: "PUT",
            url: self.record_url(&format!("salesOrder/eid:{reference}")),
            body: self.order_body(event, &reference)?,
        })
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let reference = external_reference(&event.order_key);
        let url = self.record_url(&format!("salesOrder/eid:{reference}"));
        let order = self
            .call(Method::GET, &format!("{url}?expandSubResources=true"), None)
            .await?;
        let held = order.as_ref().map(|order| self.held(order));
        match (action(event, held), order) {
            (Action::Create, _) => {
                let body = self.order_body(event, &reference)?;
                self.call(Method::PUT, &url, Some(&body)).await?;
                Ok(Upserted::Created)
            }
            (Action::Update, Some(_)) => {
                let body = self.order_body(event, &reference)?;
                self.call(Method::PUT, &format!("{url}?replace=item"), Some(&body))
                    .await?;
                Ok(Upserted::Updated)
            }
            (Action::UpdateStatus, Some(_)) => {
                let mut body = json!({});
                self.stamp(&mut body, event);
                if body.as_object().is_some_and(serde_json::Map::is_empty) {
                    return Ok(Upserted::Skipped);
                }
                self.call(Method::PATCH, &url, Some(&body)).await?;
                Ok(Upserted::Updated)
            }
            (Action::Cancel, Some(order)) => {
                let closed: Vec<Value> = order
                    .pointer("/item/items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|line| line.get("line").cloned())
                    .map(|line| json!({ "line": line, "isClosed": true }))
                    .collect();
                let mut body = json!({ "item": { "items": closed } });
                self.stamp(&mut body, event);
                self.call(Method::PATCH, &url, Some(&body)).await?;
                Ok(Upserted::Updated)
            }
            (Action::Refund, Some(_)) => self.refund(event, &reference).await,
            (Action::Update | Action::UpdateStatus | Action::Cancel | Action::Refund, None) => {
                Ok(Upserted::Skipped)
            }
            (Action::Nothing(outcome), _) => Ok(outcome),
        }
    }
}
