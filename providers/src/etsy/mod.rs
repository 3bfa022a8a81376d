//! Etsy: Open API v3 receipts (an order is a shop receipt), with OAuth 2.
//!
//! - Token: `POST /v3/public/oauth/token`, form `grant_type=refresh_token`, `client_id` (the
//!   app's keystring) and the shop owner's refresh token: an access token for an hour
//!   (`<user id>.<token>`) and a **new** refresh token each time; the newest is kept for the
//!   next refresh.
//! - Every call also carries `x-api-key: <keystring>:<shared secret>` (a bare keystring has
//!   been refused with 403 since February 2026).
//! - `getShopReceipt`: `GET /v3/application/shops/{shop_id}/receipts/{receipt_id}`;
//!   `getShopReceipts`: `…/receipts?min_created&max_created&limit≤100&offset` → `{count,
//!   results}` (`min_last_modified` for polling).
//! - Rate: 10 requests a second and 10,000 a day per app; `x-remaining-this-second` and
//!   `x-remaining-today` say what is left, a 429 carries `retry-after`.
//!
//! Webhooks (`order.paid`, `order.shipped`, …) carry only `resource_url`; the shop is the
//! record's account (`shop_id`), the receipt its order id. Completed as `api:getShopReceipt`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::oauth::{Bearer, ClientAuth, Grant, TokenHeader};
use crate::client::{ApiClient, ApiError, Authorize, Limiter, Operation, Refusal, StaticHeader};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of an Etsy receipt.
pub const RECEIPT_DOCUMENT: &str = "api:getShopReceipt";

/// `[api.etsy]`: one shop's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtsyApiConfig {
    /// Where the API is.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The token endpoint; `<base_url>/v3/public/oauth/token` unless given.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The app's keystring (its client id).
    pub keystring: String,
    /// The app's shared secret.
    pub shared_secret: Secret,
    /// The shop owner's refresh token (from the consent flow).
    pub refresh_token: Secret,
    /// Requests a second this process sends for the shop.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_base_url() -> String {
    "https://api.etsy.com".into()
}

/// The bearer token and the app's key, on every request.
struct EtsyAuth {
    bearer: Bearer<Grant>,
    key: StaticHeader,
}

#[async_trait]
impl Authorize for EtsyAuth {
    async fn authorize(
        &self,
        request: &mut reqwest::Request,
    ) -> Result<Option<Arc<str>>, ApiError> {
        self.key.authorize(request).await?;
        self.bearer.authorize(request).await
    }

    async fn refused(&self, used: Option<&str>) {
        self.bearer.refused(used).await;
    }
}

/// One shop's receipts.
pub struct EtsyApi {
    client: ApiClient,
    auth: EtsyAuth,
    base: String,
    shop_id: String,
}

/// `x-remaining-this-second: 0` holds the rest of the second; `x-remaining-today: 0` the
/// next minute (Etsy does not say when its day turns).
fn observe_rate(headers: &HeaderMap, limiter: &Limiter) {
    let left = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let now = tokio::time::Instant::now();
    if left("x-remaining-today") == Some(0) {
        limiter.hold_until(now + Duration::from_secs(60));
    } else if left("x-remaining-this-second") == Some(0) {
        limiter.hold_until(now + Duration::from_secs(1));
    }
}

impl EtsyApi {
    /// The client for shop `account`.
    ///
    /// # Errors
    /// When the app's key cannot be sent as a header.
    pub fn new(shared: &Shared, account: &str, config: &EtsyApiConfig) -> Result<Self, ApiError> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let client = shared.client(
            "etsy",
            shared.limiter(
                &format!("etsy/{account}"),
                config.rate_per_sec.unwrap_or(10.0),
                config.burst.unwrap_or(10),
            ),
        );
        let grant = Grant {
            url: config
                .token_url
                .clone()
                .unwrap_or_else(|| format!("{base}/v3/public/oauth/token")),
            client_id: config.keystring.clone(),
            client_secret: None,
            refresh_token: Some(config.refresh_token.clone()),
            scope: None,
            client_auth: ClientAuth::FormIdOnly,
            headers: Vec::new(),
            query: false,
        };
        let key = StaticHeader::new(
            "x-api-key",
            &format!("{}:{}", config.keystring, config.shared_secret.expose()),
        )?;
        Ok(Self {
            auth: EtsyAuth {
                bearer: Bearer::new(grant, client.http().clone(), TokenHeader::Bearer),
                key,
            },
            client,
            base,
            shop_id: account.to_owned(),
        })
    }

    fn receipts_url(&self) -> String {
        format!(
            "{}/v3/application/shops/{}/receipts",
            self.base,
            crate::sumeru::urlencode(&self.shop_id)
        )
    }
}

#[derive(Deserialize)]
struct Keys {
    receipt_id: Option<crate::Id>,
    updated_timestamp: Option<i64>,
    update_timestamp: Option<i64>,
}

fn document(raw: &RawValue) -> Result<Document, ApiError> {
    let keys: Keys = serde_json::from_str(raw.get())
        .map_err(|err| ApiError::transient(format!("a receipt Etsy sent is unreadable: {err}")))?;
    let order_id = keys
        .receipt_id
        .map(|id| id.to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::permanent(
                Refusal::Rejected,
                "Etsy sent a receipt without a receipt_id",
            )
        })?;
    Ok(Document {
        order_id,
        kind: RECEIPT_DOCUMENT.into(),
        body: raw.get().as_bytes().to_vec(),
        updated_at: keys
            .updated_timestamp
            .or(keys.update_timestamp)
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
    })
}

#[async_trait]
impl OrderApi for EtsyApi {
    fn source(&self) -> Source {
        Source::Etsy
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        let url = format!(
            "{}/{}",
            self.receipts_url(),
            crate::sumeru::urlencode(&order.order_id)
        );
        let reply = self
            .client
            .call(
                Operation::named("getShopReceipt").observing(observe_rate),
                &self.auth,
                |http| http.get(&url),
            )
            .await?;
        document(reply.json("getShopReceipt")?)
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        struct List<'a> {
            count: Option<u64>,
            #[serde(borrow, default)]
            results: Vec<&'a RawValue>,
        }
        const LIMIT: u64 = 100;
        let offset: u64 = match cursor {
            None => 0,
            Some(c) => c.parse().map_err(|_| {
                ApiError::permanent(Refusal::Rejected, format!("{c:?} is not an Etsy offset"))
            })?,
        };
        let mut params = vec![("limit", LIMIT.to_string()), ("offset", offset.to_string())];
        match query.field {
            TimeField::Created => {
                params.push(("min_created", query.from.timestamp().to_string()));
                if let Some(to) = query.to {
                    // Inclusive on Etsy's side: one second before the window's end.
                    params.push(("max_created", (to.timestamp() - 1).to_string()));
                }
            }
            TimeField::Updated => {
                params.push(("min_last_modified", query.from.timestamp().to_string()))
            }
        }
        let url = self.receipts_url();
        let reply = self
            .client
            .call(
                Operation::named("getShopReceipts").observing(observe_rate),
                &self.auth,
                |http| http.get(&url).query(&params),
            )
            .await?;
        let list: List<'_> = reply.json("getShopReceipts")?;
        let documents = list
            .results
            .into_iter()
            .map(document)
            .collect::<Result<Vec<_>, _>>()?;
        let read = u64::try_from(documents.len()).unwrap_or(u64::MAX);
        let end = offset.saturating_add(read);
        let more = read > 0 && list.count.is_none_or(|count| end < count);
        Ok(Page {
            documents,
            next: more.then(|| end.to_string()),
            total: list.count,
        })
    }
}

/// What an Etsy webhook needs: an `order.*` event names its receipt in `resource_url`.
pub fn completion(order_id: Option<&str>, body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    struct Webhook {
        event_type: Option<String>,
        resource_url: Option<String>,
    }
    let Ok(webhook) = serde_json::from_slice::<Webhook>(body) else {
        return Completion::Complete;
    };
    if !webhook
        .event_type
        .as_deref()
        .is_some_and(|e| e.starts_with("order."))
    {
        return Completion::Complete;
    }
    let named = webhook
        .resource_url
        .as_deref()
        .and_then(|url| url.trim_end_matches('/').rsplit_once("/receipts/"))
        .map(|(_, id)| id.trim().to_owned())
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .or_else(|| order_id.map(str::to_owned));
    match named {
        Some(order_id) => Completion::Fetch(OrderRef {
            order_id,
            lookup: None,
        }),
        None => Completion::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_event_names_its_receipt() {
        let body = br#"{"event_type":"order.paid","resource_url":"https://openapi.etsy.com/v3/application/shops/12345/receipts/54321","shop_id":12345}"#;
        assert_eq!(
            completion(None, body),
            Completion::Fetch(OrderRef {
                order_id: "54321".into(),
                lookup: None
            })
        );
        assert_eq!(
            completion(None, br#"{"event_type":"listing.updated"}"#),
            Completion::Complete
        );
    }
}
