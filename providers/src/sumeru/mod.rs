//! Sumeru, the attribution platform (seed 000): its REST API at `/api/v1`, with a bearer API
//! key (`copt_live_…`).
//!
//! - `GET /api/v1/orders?filter[date_from]=…&filter[date_to]=…&include=attribution&limit=…&cursor=…`
//!   lists orders with their attribution: `{"data": [order, …], "pagination": {"has_next",
//!   "next_cursor"}}` (the SDK's `orders.list`). `filter[updated_from]` lists what changed
//!   since a time, for polling.
//! - `GET /api/v1/orders/{id}?include=attribution` is one order: `{"data": order}`.
//! - `GET` and `POST /api/v1/webhook-subscriptions`, `POST …/{id}/test`: a subscription for
//!   `order.attributed` (its secret shown once) and its test delivery.
//!
//! Each order is published as its own record, the bytes of its object exactly as they stood
//! in the answer (`api:order`); the order object is the `data` of an `order.attributed`
//! webhook, so one normalizer reads both. Rate limits: Sumeru states none we know of; the
//! client keeps `rate_per_sec` (10 by default) and obeys `Retry-After` and the
//! `RateLimit-Remaining` / `RateLimit-Reset` headers when they say the window is spent.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::{ApiClient, ApiError, Limiter, Operation, Refusal, StaticHeader};
use crate::Shared;

/// The document kind of one Sumeru order.
pub const ORDER_DOCUMENT: &str = "api:order";

/// `[api.sumeru]`: one Sumeru account's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumeruApiConfig {
    /// Where the API is.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The API key (`copt_live_…`).
    pub api_key: Secret,
    /// Requests a second this process sends for the account.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests that may go at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Orders per page of a listing (at most 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_base_url() -> String {
    "https://api.sumeru.systems".into()
}

fn default_page_size() -> u32 {
    100
}

/// One Sumeru account's API.
pub struct SumeruApi {
    client: ApiClient,
    auth: StaticHeader,
    base: String,
    page_size: u32,
}

impl SumeruApi {
    /// The client for `account`, configured by `config`.
    ///
    /// # Errors
    /// When the API key cannot be sent as a header.
    pub fn new(shared: &Shared, account: &str, config: &SumeruApiConfig) -> Result<Self, ApiError> {
        let limiter = shared.limiter(
            &format!("sumeru/{account}"),
            config.rate_per_sec.unwrap_or(10.0),
            config.burst.unwrap_or(10),
        );
        Ok(Self {
            client: shared.client("sumeru", limiter),
            auth: StaticHeader::bearer(config.api_key.expose())?,
            base: config.base_url.trim_end_matches('/').to_owned(),
            page_size: config.page_size.clamp(1, 100),
        })
    }

    /// The API's base URL (`…/api/v1`).
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.base)
    }
}

/// `RateLimit-Remaining: 0` with `RateLimit-Reset: <seconds>`: the window is spent.
pub(crate) fn observe_rate_limit(headers: &HeaderMap, limiter: &Limiter) {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    if let (Some(remaining), Some(reset)) =
        (number("ratelimit-remaining"), number("ratelimit-reset"))
    {
        if remaining < 1.0 && reset.is_finite() && reset > 0.0 {
            limiter.hold_until(
                tokio::time::Instant::now() + Duration::from_secs_f64(reset.min(3600.0)),
            );
        }
    }
}

#[derive(Deserialize)]
struct One<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow, default)]
    data: Vec<&'a RawValue>,
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    has_next: bool,
    next_cursor: Option<String>,
    total: Option<u64>,
}

/// The fields of an order object a record's key and a poll's mark need.
#[derive(Deserialize)]
struct Keys {
    order_id: Option<crate::Id>,
    shopify_order_id: Option<crate::Id>,
    id: Option<crate::Id>,
    updated_at: Option<String>,
}

/// One order object's document.
fn document(raw: &RawValue) -> Result<Document, ApiError> {
    let keys: Keys = serde_json::from_str(raw.get())
        .map_err(|err| ApiError::transient(format!("an order Sumeru sent is unreadable: {err}")))?;
    // The same precedence ingest keys `order.attributed` webhooks by, so both meet.
    let order_id = [keys.order_id, keys.shopify_order_id, keys.id]
        .into_iter()
        .flatten()
        .map(|id| id.to_string())
        .find(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::permanent(Refusal::Rejected, "Sumeru sent an order without an id")
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

/// A date as the SDK sends it (`2026-01-01`), or the whole time when it is not midnight.
fn filter_time(at: DateTime<Utc>) -> String {
    if at.num_seconds_from_midnight() == 0 && at.nanosecond() == 0 {
        at.format("%Y-%m-%d").to_string()
    } else {
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

#[async_trait]
impl OrderApi for SumeruApi {
    fn source(&self) -> Source {
        Source::Sumeru
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        let url = format!("{}/orders/{}", self.api_url(), urlencode(&order.order_id));
        let reply = self
            .client
            .call(
                Operation::named("orders.get").observing(observe_rate_limit),
                &self.auth,
                |http| http.get(&url).query(&[("include", "attribution")]),
            )
            .await?;
        let one: One<'_> = reply.json("orders.get")?;
        let data = one.data.ok_or_else(|| {
            ApiError::permanent(Refusal::NotFound, "Sumeru answered without the order")
        })?;
        document(data)
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        let url = format!("{}/orders", self.api_url());
        let (from_key, to_key) = match query.field {
            TimeField::Created => ("filter[date_from]", "filter[date_to]"),
            TimeField::Updated => ("filter[updated_from]", "filter[updated_to]"),
        };
        let mut params = vec![
            (from_key.to_owned(), filter_time(query.from)),
            ("include".to_owned(), "attribution".to_owned()),
            ("limit".to_owned(), self.page_size.to_string()),
        ];
        if let Some(to) = query.to {
            params.push((to_key.to_owned(), filter_time(to)));
        }
        if let Some(cursor) = cursor {
            params.push(("cursor".to_owned(), cursor.to_owned()));
        }
        let reply = self
            .client
            .call(
                Operation::named("orders.list").observing(observe_rate_limit),
                &self.auth,
                |http| http.get(&url).query(&params),
            )
            .await?;
        let list: List<'_> = reply.json("orders.list")?;
        let documents = list
            .data
            .into_iter()
            .map(document)
            .collect::<Result<Vec<_>, _>>()?;
        let (next, total) = match list.pagination {
            Some(p) if p.has_next => match p.next_cursor {
                Some(cursor) if !cursor.is_empty() => (Some(cursor), p.total),
                // "More pages, but no way to them": asking again cannot be right.
                _ => {
                    return Err(ApiError::permanent(
                        Refusal::Rejected,
                        "Sumeru says there are more orders but gives no cursor",
                    ))
                }
            },
            Some(p) => (None, p.total),
            None => (None, None),
        };
        Ok(Page {
            documents,
            next,
            total,
        })
    }
}

/// A path segment, percent-encoded.
pub(crate) fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl SumeruApi {
    /// Subscribes `request.url` to `order.attributed` (the order with its attribution), the
    /// secret made by Sumeru (`secret: "auto"`); with `request.test`, asks for a test
    /// delivery.
    ///
    /// # Errors
    /// What the API answered.
    pub(crate) async fn subscribe(
        &self,
        request: &crate::subscribe::Request,
    ) -> Result<crate::subscribe::Subscribed, crate::subscribe::SubscribeError> {
        #[derive(Deserialize)]
        struct Created {
            data: CreatedData,
        }
        #[derive(Deserialize)]
        struct CreatedData {
            id: String,
            secret: Option<String>,
        }
        #[derive(Deserialize)]
        struct Listed {
            #[serde(default)]
            data: Vec<Listing>,
        }
        #[derive(Deserialize)]
        struct Listing {
            id: String,
            url: Option<String>,
            #[serde(default)]
            events: Vec<String>,
        }
        let url = format!("{}/webhook-subscriptions", self.api_url());
        // Run again, the command finds its subscription instead of making a second one (whose
        // new secret ingest would not know).
        let reply = self
            .client
            .call(
                Operation::named("webhook-subscriptions.list"),
                &self.auth,
                |http| http.get(&url),
            )
            .await?;
        let listed: Listed = reply.json("webhook-subscriptions.list")?;
        let found = listed.data.into_iter().find(|s| {
            s.url.as_deref() == Some(request.url.as_str())
                && s.events.iter().any(|e| e == "order.attributed")
        });
        let (id, secret, existing) = match found {
            Some(subscription) => (subscription.id, None, true),
            None => {
                let body = serde_json::json!({"url": request.url, "events": ["order.attributed"], "secret": "auto"});
                let reply = self
                    .client
                    .call(
                        Operation::named("webhook-subscriptions.create"),
                        &self.auth,
                        |http| http.post(&url).json(&body),
                    )
                    .await?;
                let created: Created = reply.json("webhook-subscriptions.create")?;
                (created.data.id, created.data.secret.map(Secret::new), false)
            }
        };
        let test = if request.test {
            Some(self.test_delivery(&id).await?)
        } else {
            None
        };
        Ok(crate::subscribe::Subscribed {
            id,
            secret,
            existing,
            test,
        })
    }

    /// Asks Sumeru to send a test `order.attributed` to subscription `id`.
    async fn test_delivery(&self, id: &str) -> Result<crate::subscribe::TestOutcome, ApiError> {
        #[derive(Deserialize)]
        struct Tested {
            data: Option<TestedData>,
        }
        #[derive(Deserialize)]
        struct TestedData {
            response_status: Option<u16>,
        }
        let url = format!(
            "{}/webhook-subscriptions/{}/test",
            self.api_url(),
            urlencode(id)
        );
        let body = serde_json::json!({"event_type": "order.attributed"});
        let reply = self
            .client
            .call(
                Operation::named("webhook-subscriptions.test"),
                &self.auth,
                |http| http.post(&url).json(&body),
            )
            .await?;
        let tested: Tested = reply.json("webhook-subscriptions.test")?;
        Ok(match tested.data.and_then(|d| d.response_status) {
            Some(status) => crate::subscribe::TestOutcome::Delivered { status },
            None => crate::subscribe::TestOutcome::Requested,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_order_is_its_own_bytes_keyed_as_its_webhook_is() {
        let list = r#"{"data":[{"order_id":"ord_1", "total":"9.50","updated_at":"2026-03-02T10:15:00Z"},{"id":7}],"pagination":{"has_next":false}}"#;
        let parsed: List<'_> = serde_json::from_str(list).unwrap();
        let first = document(parsed.data[0]).unwrap();
        assert_eq!(first.order_id, "ord_1");
        assert_eq!(
            first.body,
            br#"{"order_id":"ord_1", "total":"9.50","updated_at":"2026-03-02T10:15:00Z"}"#.to_vec()
        );
        assert!(first.updated_at.is_some());
        assert_eq!(document(parsed.data[1]).unwrap().order_id, "7");
        let nameless: List<'_> = serde_json::from_str(r#"{"data":[{"total":1}]}"#).unwrap();
        assert!(!document(nameless.data[0]).unwrap_err().is_transient());
    }

    #[test]
    fn dates_go_as_the_sdk_sends_them() {
        let midnight = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(filter_time(midnight), "2026-01-01");
        let later = DateTime::parse_from_rfc3339("2026-01-01T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(filter_time(later), "2026-01-01T10:30:00.000Z");
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
