//! BigCommerce: the Orders V2 API of a store, with an access token.
//!
//! - Auth: `X-Auth-Token: <access token>` (the app's token for the store);
//!   `Accept: application/json`. Base `…/stores/{store_hash}/v2`.
//! - `GET /v2/orders/{id}` → the order (no envelope; money as four-decimal strings, dates as
//!   RFC 2822); `GET /v2/orders/{id}/products?page&limit` → a bare array of lines, an empty
//!   page answered `204 No Content`.
//! - `GET /v2/orders?min_date_created&max_date_created&page&limit&sort=date_created:asc` (or
//!   `min_date_modified`) → a bare array; past the last page, 204.
//! - Errors are an array `[{status, message}]` (v2) or `{status, title, type}` (v3).
//! - Rate: a quota per store and window; every answer says `X-Rate-Limit-Requests-Left` and
//!   `X-Rate-Limit-Time-Reset-Ms` (ms until the window refills); a spent window holds the
//!   rest until then (a 429 carries the same headers).
//!
//! Webhooks (`store/order/*`) name the order (`data.id`) and the store (`producer:
//! stores/<hash>`, the account); completed as `api:order`, the envelope `{"order": <answer>,
//! "products": [<page>, …]}`, each answer byte for byte.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::{ApiClient, ApiError, Limiter, Operation, Refusal, StaticHeader};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of a BigCommerce order with its products.
pub const ORDER_DOCUMENT: &str = "api:order";

/// Lines per page of an order's products (BigCommerce allows up to 250).
const PRODUCTS_PER_PAGE: usize = 250;

/// `[api.bigcommerce]`: one store's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigcommerceApiConfig {
    /// Where the API is.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The store's hash; the account's name when not given.
    #[serde(default)]
    pub store_hash: Option<String>,
    /// The app's access token for the store.
    pub access_token: Secret,
    /// Requests a second this process sends (150 a 30-second window on standard plans).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_base_url() -> String {
    "https://api.bigcommerce.com".into()
}

/// A spent window (`X-Rate-Limit-Requests-Left: 0`) holds for `X-Rate-Limit-Time-Reset-Ms`.
fn observe_rate(headers: &HeaderMap, limiter: &Limiter) {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if number("x-rate-limit-requests-left") == Some(0) {
        if let Some(reset) = number("x-rate-limit-time-reset-ms") {
            limiter
                .hold_until(tokio::time::Instant::now() + Duration::from_millis(reset.min(60_000)));
        }
    }
}

/// One store's orders.
pub struct BigcommerceApi {
    client: ApiClient,
    auth: StaticHeader,
    base: String,
}

impl BigcommerceApi {
    /// The client for store `account`.
    ///
    /// # Errors
    /// When the token cannot be sent as a header.
    pub fn new(
        shared: &Shared,
        account: &str,
        config: &BigcommerceApiConfig,
    ) -> Result<Self, ApiError> {
        let client = shared.client(
            "bigcommerce",
            shared.limiter(
                &format!("bigcommerce/{account}"),
                config.rate_per_sec.unwrap_or(5.0),
                config.burst.unwrap_or(10),
            ),
        );
        let hash = config
            .store_hash
            .clone()
            .unwrap_or_else(|| account.to_owned());
        Ok(Self {
            client,
            auth: StaticHeader::new("x-auth-token", config.access_token.expose())?,
            base: format!(
                "{}/stores/{}",
                config.base_url.trim_end_matches('/'),
                crate::sumeru::urlencode(&hash)
            ),
        })
    }

    /// The document of `order` (the order's answer, as text), with every page of its lines.
    async fn document(&self, order: &str) -> Result<Document, ApiError> {
        #[derive(Deserialize)]
        struct Keys {
            id: Option<crate::Id>,
            date_modified: Option<String>,
        }
        let keys: Keys = serde_json::from_str(order).map_err(|err| {
            ApiError::transient(format!("an order BigCommerce sent is unreadable: {err}"))
        })?;
        let order_id = keys
            .id
            .map(|id| id.to_string())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ApiError::permanent(Refusal::Rejected, "BigCommerce sent an order without an id")
            })?;
        let url = format!(
            "{}/v2/orders/{}/products",
            self.base,
            crate::sumeru::urlencode(&order_id)
        );
        let mut pages: Vec<String> = Vec::new();
        for page in 1.. {
            let params = [
                ("page", page.to_string()),
                ("limit", PRODUCTS_PER_PAGE.to_string()),
            ];
            let reply = self
                .client
                .call(
                    Operation::named("getOrderProducts").observing(observe_rate),
                    &self.auth,
                    |http| {
                        http.get(&url)
                            .query(&params)
                            .header(reqwest::header::ACCEPT, "application/json")
                    },
                )
                .await?;
            if reply.status == reqwest::StatusCode::NO_CONTENT || reply.body.is_empty() {
                break;
            }
            let rows: Vec<&RawValue> = reply.json("getOrderProducts")?;
            let full = rows.len() >= PRODUCTS_PER_PAGE;
            pages.push(json_text(&reply.body)?);
            if !full || page > 400 {
                break;
            }
        }
        Ok(Document {
            order_id,
            kind: ORDER_DOCUMENT.into(),
            body: format!(r#"{{"order":{order},"products":[{}]}}"#, pages.join(",")).into_bytes(),
            updated_at: keys
                .date_modified
                .and_then(|t| DateTime::parse_from_rfc2822(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }
}

fn json_text(body: &[u8]) -> Result<String, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::transient("BigCommerce sent an answer that is not UTF-8"))?;
    Ok(text.trim().to_owned())
}

#[async_trait]
impl OrderApi for BigcommerceApi {
    fn source(&self) -> Source {
        Source::Bigcommerce
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        let url = format!(
            "{}/v2/orders/{}",
            self.base,
            crate::sumeru::urlencode(&order.order_id)
        );
        let reply = self
            .client
            .call(
                Operation::named("getOrder").observing(observe_rate),
                &self.auth,
                |http| {
                    http.get(&url)
                        .header(reqwest::header::ACCEPT, "application/json")
                },
            )
            .await?;
        let raw: &RawValue = reply.json("getOrder")?;
        self.document(raw.get()).await
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        const LIMIT: usize = 50;
        let page: u64 = match cursor {
            None => 1,
            Some(c) => c.parse().map_err(|_| {
                ApiError::permanent(
                    Refusal::Rejected,
                    format!("{c:?} is not a BigCommerce page"),
                )
            })?,
        };
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut params = vec![("page", page.to_string()), ("limit", LIMIT.to_string())];
        match query.field {
            TimeField::Created => {
                params.push(("min_date_created", at(query.from)));
                if let Some(to) = query.to {
                    params.push(("max_date_created", at(to - chrono::Duration::seconds(1))));
                }
                params.push(("sort", "date_created:asc".to_owned()));
            }
            TimeField::Updated => {
                params.push(("min_date_modified", at(query.from)));
                params.push(("sort", "date_modified:asc".to_owned()));
            }
        }
        let url = format!("{}/v2/orders", self.base);
        let reply = self
            .client
            .call(
                Operation::named("getOrders").observing(observe_rate),
                &self.auth,
                |http| {
                    http.get(&url)
                        .query(&params)
                        .header(reqwest::header::ACCEPT, "application/json")
                },
            )
            .await?;
        if reply.status == reqwest::StatusCode::NO_CONTENT || reply.body.is_empty() {
            return Ok(Page {
                documents: Vec::new(),
                next: None,
                total: None,
            });
        }
        let orders: Vec<&RawValue> = reply.json("getOrders")?;
        let full = orders.len() >= LIMIT;
        let mut documents = Vec::with_capacity(orders.len());
        for order in orders {
            documents.push(self.document(order.get()).await?);
        }
        Ok(Page {
            documents,
            next: full.then(|| (page + 1).to_string()),
            total: None,
        })
    }
}

/// The store a webhook comes from: `producer` is `stores/<hash>`.
pub fn store_hash(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Webhook {
        producer: Option<String>,
    }
    let webhook: Webhook = serde_json::from_slice(body).ok()?;
    webhook
        .producer?
        .strip_prefix("stores/")
        .map(str::trim)
        .filter(|hash| !hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_owned)
}

/// What a BigCommerce webhook needs: an order event names the order to fetch.
pub fn completion(order_id: Option<&str>, body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    struct Webhook {
        scope: Option<String>,
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    struct Data {
        id: Option<crate::Id>,
    }
    let Ok(webhook) = serde_json::from_slice::<Webhook>(body) else {
        return Completion::Complete;
    };
    if !webhook
        .scope
        .as_deref()
        .is_some_and(|s| s.starts_with("store/order/"))
    {
        return Completion::Complete;
    }
    match webhook
        .data
        .and_then(|d| d.id)
        .map(|id| id.to_string())
        .or_else(|| order_id.map(str::to_owned))
        .filter(|id| !id.is_empty())
    {
        Some(order_id) => Completion::Fetch(OrderRef {
            order_id,
            lookup: None,
        }),
        None => Completion::Complete,
    }
}

impl BigcommerceApi {
    /// Registers `request.url` for every order event of the store (`store/order/*`).
    ///
    /// # Errors
    /// What the API answered.
    pub(crate) async fn subscribe(
        &self,
        request: &crate::subscribe::Request,
    ) -> Result<crate::subscribe::Subscribed, crate::subscribe::SubscribeError> {
        use crate::subscribe::{Subscribed, TestOutcome};
        #[derive(Deserialize)]
        struct Created {
            data: CreatedData,
        }
        #[derive(Deserialize)]
        struct CreatedData {
            id: crate::Id,
        }
        #[derive(Deserialize)]
        struct Listed {
            #[serde(default)]
            data: Vec<Hook>,
        }
        #[derive(Deserialize)]
        struct Hook {
            id: crate::Id,
            scope: Option<String>,
            destination: Option<String>,
        }
        let url = format!("{}/v3/hooks", self.base);
        let reply = self
            .client
            .call(Operation::named("listHooks"), &self.auth, |http| {
                http.get(&url)
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        let listed: Listed = reply.json("listHooks")?;
        let found = listed.data.into_iter().find(|h| {
            h.destination.as_deref() == Some(request.url.as_str())
                && h.scope.as_deref() == Some("store/order/*")
        });
        let (id, existing) = match found {
            Some(hook) => (hook.id.to_string(), true),
            None => {
                let body = serde_json::json!({"scope": "store/order/*", "destination": request.url, "is_active": true});
                let reply = self
                    .client
                    .call(Operation::named("createHook"), &self.auth, |http| {
                        http.post(&url)
                            .json(&body)
                            .header(reqwest::header::ACCEPT, "application/json")
                    })
                    .await?;
                let created: Created = reply.json("createHook")?;
                (created.data.id.to_string(), false)
            }
        };
        Ok(Subscribed {
            id,
            secret: None,
            existing,
            test: request.test.then(|| {
                TestOutcome::Unavailable(
                    "BigCommerce has no test delivery: create or update an order in the store"
                        .into(),
                )
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_webhook_names_its_order_and_store() {
        let body = br#"{"producer":"stores/abcde","hash":"0f1b","created_at":1688588419,"store_id":"1001197568","scope":"store/order/created","data":{"type":"order","id":272}}"#;
        assert_eq!(
            completion(None, body),
            Completion::Fetch(OrderRef {
                order_id: "272".into(),
                lookup: None
            })
        );
        assert_eq!(store_hash(body).as_deref(), Some("abcde"));
        assert_eq!(
            completion(
                None,
                br#"{"scope":"store/product/updated","data":{"id":1}}"#
            ),
            Completion::Complete
        );
        assert_eq!(store_hash(br#"{"producer":"stores/../x"}"#), None);
    }
}
