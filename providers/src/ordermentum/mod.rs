//! Ordermentum, the wholesale platform: its REST API, with an API key.
//!
//! - Auth: `x-api-key: <key>` (required from July 2026; the legacy bearer token is also
//!   accepted by Ordermentum, not used here); `Accept: application/json`.
//! - `GET /v1/orders/{id}`: the whole order (lines, totals, the retailer); unknown → 404.
//! - `GET /v1/orders?supplierId&createdAt[gte]&createdAt[lt]&pageNo&pageSize` (or
//!   `updatedAt[gte]`) → `{meta: {totalResults, totalPages, pageNo}, links, data: […]}`.
//! - `POST /v1/webhooks`: see `subscribe`.
//! - Rate: 24 order fetches a minute, 40 searches; past it, 429 with `Retry-After: 60`.
//!
//! `order_created` / `order_updated` webhooks carry an id and a total; completed as
//! `api:order` (the order as Ordermentum answered it).

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::{ApiClient, ApiError, Operation, Refusal, StaticHeader};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of an Ordermentum order.
pub const ORDER_DOCUMENT: &str = "api:order";

/// `[api.ordermentum]`: one supplier's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdermentumApiConfig {
    /// Where the API is.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The supplier's API key (`om_api…`).
    pub api_key: Secret,
    /// The supplier's id (`entityId`); the account's name when not given.
    #[serde(default)]
    pub supplier_id: Option<String>,
    /// Requests a second this process sends (24 order fetches a minute by default).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_base_url() -> String {
    "https://api.ordermentum.com".into()
}

/// One supplier's orders.
pub struct OrdermentumApi {
    client: ApiClient,
    auth: StaticHeader,
    base: String,
    supplier_id: String,
}

impl OrdermentumApi {
    /// The client for supplier `account`.
    ///
    /// # Errors
    /// When the key cannot be sent as a header.
    pub fn new(
        shared: &Shared,
        account: &str,
        config: &OrdermentumApiConfig,
    ) -> Result<Self, ApiError> {
        let client = shared.client(
            "ordermentum",
            shared.limiter(
                &format!("ordermentum/{account}"),
                config.rate_per_sec.unwrap_or(0.4),
                config.burst.unwrap_or(24),
            ),
        );
        Ok(Self {
            client,
            auth: StaticHeader::new("x-api-key", config.api_key.expose())?,
            base: config.base_url.trim_end_matches('/').to_owned(),
            supplier_id: config
                .supplier_id
                .clone()
                .unwrap_or_else(|| account.to_owned()),
        })
    }
}

fn document(raw: &RawValue) -> Result<Document, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Keys {
        id: Option<crate::Id>,
        updated_at: Option<String>,
    }
    let keys: Keys = serde_json::from_str(raw.get()).map_err(|err| {
        ApiError::transient(format!("an order Ordermentum sent is unreadable: {err}"))
    })?;
    let order_id = keys
        .id
        .map(|id| id.to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::permanent(Refusal::Rejected, "Ordermentum sent an order without an id")
        })?;
    Ok(Document {
        order_id,
        kind: ORDER_DOCUMENT.into(),
        body: raw.get().as_bytes().to_vec(),
        updated_at: keys
            .updated_at
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    })
}

#[async_trait]
impl OrderApi for OrdermentumApi {
    fn source(&self) -> Source {
        Source::Ordermentum
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        let url = format!(
            "{}/v1/orders/{}",
            self.base,
            crate::sumeru::urlencode(&order.order_id)
        );
        let reply = self
            .client
            .call(Operation::named("getOrder"), &self.auth, |http| {
                http.get(&url)
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        document(reply.json("getOrder")?)
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct List<'a> {
            meta: Option<Meta>,
            #[serde(borrow, default)]
            data: Vec<&'a RawValue>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            total_results: Option<u64>,
            total_pages: Option<u64>,
            page_size: Option<u64>,
        }
        let page: u64 = match cursor {
            None => 1,
            Some(c) => c.parse().map_err(|_| {
                ApiError::permanent(
                    Refusal::Rejected,
                    format!("{c:?} is not an Ordermentum page"),
                )
            })?,
        };
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let field = match query.field {
            TimeField::Created => "createdAt",
            TimeField::Updated => "updatedAt",
        };
        let mut params = vec![
            ("supplierId".to_owned(), self.supplier_id.clone()),
            (format!("{field}[gte]"), at(query.from)),
            ("pageNo".to_owned(), page.to_string()),
            ("pageSize".to_owned(), "100".to_owned()),
        ];
        if let Some(to) = query.to {
            params.push((format!("{field}[lt]"), at(to)));
        }
        let url = format!("{}/v1/orders", self.base);
        let reply = self
            .client
            .call(Operation::named("listOrders"), &self.auth, |http| {
                http.get(&url)
                    .query(&params)
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        let list: List<'_> = reply.json("listOrders")?;
        let documents = list
            .data
            .into_iter()
            .map(document)
            .collect::<Result<Vec<_>, _>>()?;
        let pages = list.meta.as_ref().and_then(|m| {
            m.total_pages.or_else(|| {
                let (total, size) = (m.total_results?, m.page_size.filter(|s| *s > 0)?);
                Some(total.div_ceil(size))
            })
        });
        let more = !documents.is_empty() && pages.is_none_or(|pages| page < pages);
        Ok(Page {
            documents,
            next: more.then(|| (page + 1).to_string()),
            total: list.meta.and_then(|m| m.total_results),
        })
    }
}

/// What an Ordermentum webhook needs: an order event without its lines names the order to
/// fetch.
pub fn completion(order_id: Option<&str>, body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    struct Webhook {
        event: Option<String>,
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        id: Option<crate::Id>,
        line_items: Option<Vec<serde_json::Value>>,
    }
    let Ok(webhook) = serde_json::from_slice::<Webhook>(body) else {
        return Completion::Complete;
    };
    if !matches!(
        webhook.event.as_deref(),
        Some("order_created" | "order_updated")
    ) {
        return Completion::Complete;
    }
    let Some(data) = webhook.data else {
        return Completion::Complete;
    };
    if data.line_items.is_some_and(|lines| !lines.is_empty()) {
        return Completion::Complete;
    }
    match data
        .id
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

impl OrdermentumApi {
    /// The id of this supplier's webhook to `target` for order events, when there is one (so
    /// the command run twice registers once).
    async fn existing_webhook(&self, url: &str, target: &str) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct Listed {
            #[serde(default)]
            data: Vec<Hook>,
        }
        #[derive(Deserialize)]
        struct Hook {
            id: crate::Id,
            url: Option<String>,
            #[serde(default)]
            events: Vec<String>,
        }
        let params = [
            ("supplierId", self.supplier_id.as_str()),
            ("pageSize", "100"),
        ];
        let reply = self
            .client
            .call(Operation::named("listWebhooks"), &self.auth, |http| {
                http.get(url)
                    .query(&params)
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        let listed: Listed = reply.json("listWebhooks")?;
        Ok(listed
            .data
            .into_iter()
            .find(|h| {
                h.url.as_deref() == Some(target) && h.events.iter().any(|e| e == "order_created")
            })
            .map(|h| h.id.to_string()))
    }

    /// Registers `request.url` for `order_created` and `order_updated` of this supplier,
    /// with the credentials ingest checks.
    ///
    /// # Errors
    /// What the API answered; missing credentials.
    pub(crate) async fn subscribe(
        &self,
        request: &crate::subscribe::Request,
    ) -> Result<crate::subscribe::Subscribed, crate::subscribe::SubscribeError> {
        use crate::subscribe::{DeliveryAuth, SubscribeError, Subscribed, TestOutcome};
        #[derive(Deserialize)]
        struct Created {
            id: crate::Id,
        }
        let mut body = serde_json::json!({
            "url": request.url,
            "name": "OrderBridge",
            "events": ["order_created", "order_updated"],
            "entityId": self.supplier_id,
            "entityType": "supplier",
        });
        match &request.delivery_auth {
            Some(DeliveryAuth::Basic { username, password }) => {
                body["authentication"] = serde_json::json!({"basicAuth": {"username": username, "password": password.expose()}});
            }
            Some(DeliveryAuth::Header { name, value }) => {
                body["headers"] = serde_json::json!({ name: value.expose() });
            }
            None => {
                return Err(SubscribeError::Missing(
                    "ingest.sources.ordermentum has no credentials: Ordermentum signs nothing, so \
                     deliveries must carry the basic auth or header ingest checks"
                        .into(),
                ))
            }
        }
        let url = format!("{}/v1/webhooks", self.base);
        let found = self.existing_webhook(&url, &request.url).await?;
        let (id, existing) = match found {
            Some(id) => (id, true),
            None => {
                let reply = self
                    .client
                    .call(Operation::named("createWebhook"), &self.auth, |http| {
                        http.post(&url)
                            .json(&body)
                            .header(reqwest::header::ACCEPT, "application/json")
                    })
                    .await?;
                let created: Created = reply.json("createWebhook")?;
                (created.id.to_string(), false)
            }
        };
        Ok(Subscribed {
            id,
            secret: None,
            existing,
            test: request.test.then(|| {
                TestOutcome::Unavailable(
                    "Ordermentum has no test delivery: place a test order in the supplier platform"
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
    fn an_order_event_without_lines_names_its_order() {
        let thin = br#"{"event":"order_created","timestamp":"2023-07-26T12:34:56Z","data":{"id":"17a36ca1-8835-4cf6-a95c-e42bb16d0ca9","total":150.25}}"#;
        assert_eq!(
            completion(None, thin),
            Completion::Fetch(OrderRef {
                order_id: "17a36ca1-8835-4cf6-a95c-e42bb16d0ca9".into(),
                lookup: None
            })
        );
        assert_eq!(
            completion(
                None,
                br#"{"event":"invoice_created","data":{"orderId":"x"}}"#
            ),
            Completion::Complete
        );
    }
}
