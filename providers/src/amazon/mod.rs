//! Amazon: the Selling Partner API's Orders API (v0), reached with a Login with Amazon token,
//! for the SP-API `ORDER_CHANGE` notifications that arrive through an SNS subscription.
//!
//! - Token: `POST https://api.amazon.com/auth/o2/token`, form `grant_type=refresh_token`,
//!   the seller's refresh token and the app's client id and secret; an hour long, sent as
//!   `x-amz-access-token` (SigV4 is no longer required).
//! - Buyer PII (email, name, the street address) comes only with a restricted data token:
//!   `POST /tokens/2021-03-01/restrictedDataToken` for the order's path with
//!   `buyerInfo` and `shippingAddress`, then sent as `x-amz-access-token` on `getOrder`.
//! - `getOrder`: `GET /orders/v0/orders/{id}` → `{"payload": Order}`; `getOrderItems`:
//!   `GET /orders/v0/orders/{id}/orderItems[?NextToken]` → `{"payload": {OrderItems,
//!   NextToken?}}`; `getOrders`: `GET /orders/v0/orders?MarketplaceIds&CreatedAfter…`.
//! - An expired or refused token is 403 (`Unauthorized`), not 401: read as "fresh
//!   credentials, once". An unknown order id has been seen answered `200 {"payload":{}}`:
//!   no such order.
//! - Rate: a usage plan per operation (getOrder and getOrderItems 0.5/s in bursts of 30,
//!   getOrders 0.0167/s in bursts of 20, restricted data tokens 1/s in bursts of 10), one
//!   limiter each; `x-amzn-RateLimit-Limit` (the seller's real rate) is adopted when sent.
//!   No `Retry-After` is documented for a 429.
//!
//! One order is several answers: the document (`api:getOrder`) is the envelope
//! `{"order": <getOrder answer>, "orderItems": [<getOrderItems answer>, …]}`, each answer byte
//! for byte. Orders API v0 is deprecated in favour of v2026-01-01 (removal announced for
//! 2027-03-27); moving to it is a change of this module alone.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::oauth::{Bearer, ClientAuth, Grant, TokenHeader};
use crate::client::{ApiClient, ApiError, Limiter, Operation, Refusal, StaticHeader, Verdict};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of an Amazon order (the order and its items).
pub const ORDER_DOCUMENT: &str = "api:getOrder";

/// `[api.amazon_sns]`: one seller's SP-API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonApiConfig {
    /// The SP-API endpoint of the seller's region (`https://sellingpartnerapi-eu.amazon.com`,
    /// `…-fe…`).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The Login with Amazon token endpoint.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// The app's LWA client id (`amzn1.application-oa2-client.…`).
    pub client_id: String,
    /// The app's LWA client secret.
    pub client_secret: Secret,
    /// The seller's refresh token (`Atzr|…`).
    pub refresh_token: Secret,
    /// The marketplaces listed by a backfill (`ATVPDKIKX0DER` is amazon.com).
    #[serde(default = "default_marketplaces")]
    pub marketplace_ids: Vec<String>,
    /// Fetch the buyer's email, name and street address with a restricted data token (the
    /// app needs the role for it); without, orders come without them.
    #[serde(default = "default_true")]
    pub restricted_data: bool,
    /// Requests a second for each operation (overrides the usage plans' defaults).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests at once after a quiet spell, for each operation.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_endpoint() -> String {
    "https://sellingpartnerapi-na.amazon.com".into()
}

fn default_token_url() -> String {
    "https://api.amazon.com/auth/o2/token".into()
}

fn default_marketplaces() -> Vec<String> {
    vec!["ATVPDKIKX0DER".into()]
}

fn default_true() -> bool {
    true
}

/// The usage plans, as Amazon documents them.
const GET_ORDER: (f64, u32) = (0.5, 30);
const GET_ORDER_ITEMS: (f64, u32) = (0.5, 30);
const GET_ORDERS: (f64, u32) = (0.0167, 20);
const RESTRICTED_DATA_TOKEN: (f64, u32) = (1.0, 10);

/// One seller's Orders API.
pub struct AmazonApi {
    get_order: ApiClient,
    get_order_items: ApiClient,
    get_orders: ApiClient,
    tokens: ApiClient,
    auth: Arc<Bearer<Grant>>,
    endpoint: String,
    marketplaces: Vec<String>,
    restricted_data: bool,
}

/// `x-amzn-RateLimit-Limit`: the rate Amazon allows this seller for the operation.
fn observe_rate(headers: &HeaderMap, limiter: &Limiter) {
    if let Some(rate) = headers
        .get("x-amzn-ratelimit-limit")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        limiter.set_rate(rate);
    }
}

/// An expired or refused token is 403 with `Unauthorized` (or a missing-token code); an
/// unknown order can come back as `200 {"payload":{}}`.
fn classify(status: u16, body: &[u8]) -> Option<Verdict> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        errors: Vec<Error>,
        payload: Option<serde_json::Map<String, serde_json::Value>>,
    }
    #[derive(Deserialize)]
    struct Error {
        code: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    let auth_codes = [
        "Unauthorized",
        "MissingAuthenticationToken",
        "InvalidAccessToken",
        "ExpiredToken",
    ];
    if status == 403
        && answer
            .errors
            .iter()
            .any(|e| e.code.as_deref().is_some_and(|c| auth_codes.contains(&c)))
    {
        return Some(Verdict::Unauthorized);
    }
    if (200..300).contains(&status)
        && answer
            .payload
            .as_ref()
            .is_some_and(serde_json::Map::is_empty)
    {
        return Some(Verdict::Refused(Refusal::NotFound));
    }
    None
}

impl AmazonApi {
    /// The client for seller `account`.
    pub fn new(shared: &Shared, account: &str, config: &AmazonApiConfig) -> Self {
        let limiter = |operation: &str, (rate, burst): (f64, u32)| {
            shared.limiter(
                &format!("amazon-sns/{account}/{operation}"),
                config.rate_per_sec.unwrap_or(rate),
                config.burst.unwrap_or(burst),
            )
        };
        let get_order = shared.client("amazon-sns", limiter("getOrder", GET_ORDER));
        let grant = Grant {
            url: config.token_url.clone(),
            client_id: config.client_id.clone(),
            client_secret: Some(config.client_secret.clone()),
            refresh_token: Some(config.refresh_token.clone()),
            scope: None,
            client_auth: ClientAuth::Form,
            headers: Vec::new(),
            query: false,
        };
        Self {
            auth: Arc::new(Bearer::new(
                grant,
                get_order.http().clone(),
                TokenHeader::Named("x-amz-access-token"),
            )),
            get_order_items: shared.client("amazon-sns", limiter("getOrderItems", GET_ORDER_ITEMS)),
            get_orders: shared.client("amazon-sns", limiter("getOrders", GET_ORDERS)),
            tokens: shared.client(
                "amazon-sns",
                limiter("createRestrictedDataToken", RESTRICTED_DATA_TOKEN),
            ),
            get_order,
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            marketplaces: config.marketplace_ids.clone(),
            restricted_data: config.restricted_data,
        }
    }

    /// A restricted data token for reading `path` with the buyer's details.
    async fn restricted_token(&self, path: &str) -> Result<StaticHeader, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Rdt {
            restricted_data_token: String,
        }
        let url = format!("{}/tokens/2021-03-01/restrictedDataToken", self.endpoint);
        let body = serde_json::json!({"restrictedResources": [
            {"method": "GET", "path": path, "dataElements": ["buyerInfo", "shippingAddress"]}
        ]});
        let reply = self
            .tokens
            .call(
                Operation::named("createRestrictedDataToken").classifying(classify),
                self.auth.as_ref(),
                |http| http.post(&url).json(&body),
            )
            .await?;
        let rdt: Rdt = reply.json("createRestrictedDataToken")?;
        StaticHeader::new("x-amz-access-token", &rdt.restricted_data_token)
    }

    /// Every page of an order's items, each answer as it came.
    async fn items(&self, order_id: &str) -> Result<Vec<String>, ApiError> {
        #[derive(Deserialize)]
        struct Items {
            payload: Option<ItemsPayload>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct ItemsPayload {
            next_token: Option<String>,
        }
        let url = format!(
            "{}/orders/v0/orders/{}/orderItems",
            self.endpoint,
            crate::sumeru::urlencode(order_id)
        );
        let mut pages = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let query: Vec<(&str, String)> =
                next.iter().map(|t| ("NextToken", t.clone())).collect();
            let reply = self
                .get_order_items
                .call(
                    Operation::named("getOrderItems")
                        .observing(observe_rate)
                        .classifying(classify),
                    self.auth.as_ref(),
                    |http| http.get(&url).query(&query),
                )
                .await?;
            let items: Items = reply.json("getOrderItems")?;
            pages.push(json_text(&reply.body, "getOrderItems")?);
            next = items
                .payload
                .and_then(|p| p.next_token)
                .filter(|t| !t.is_empty());
            if next.is_none() {
                return Ok(pages);
            }
            if pages.len() > 1000 {
                return Err(ApiError::permanent(
                    Refusal::Rejected,
                    "getOrderItems never ends",
                ));
            }
        }
    }

    /// The document of the order `order` (an answer of getOrder, or one order of getOrders,
    /// as text), with its items.
    async fn document(
        &self,
        order: &str,
        order_id: &str,
        updated_at: Option<DateTime<Utc>>,
    ) -> Result<Document, ApiError> {
        let items = self.items(order_id).await?;
        let body = format!(r#"{{"order":{order},"orderItems":[{}]}}"#, items.join(","));
        Ok(Document {
            order_id: order_id.to_owned(),
            kind: ORDER_DOCUMENT.into(),
            body: body.into_bytes(),
            updated_at,
        })
    }
}

/// A body that must be JSON, as text.
fn json_text(body: &[u8], what: &str) -> Result<String, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::transient(format!("{what}: an answer that is not UTF-8")))?;
    serde_json::from_str::<&RawValue>(text)
        .map_err(|err| ApiError::transient(format!("{what}: unreadable answer: {err}")))?;
    Ok(text.trim().to_owned())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrderKeys {
    amazon_order_id: Option<String>,
    last_update_date: Option<String>,
}

fn updated(keys: &OrderKeys) -> Option<DateTime<Utc>> {
    keys.last_update_date
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[async_trait]
impl OrderApi for AmazonApi {
    fn source(&self) -> Source {
        Source::AmazonSns
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        #[derive(Deserialize)]
        struct One {
            payload: Option<OrderKeys>,
        }
        let path = format!(
            "/orders/v0/orders/{}",
            crate::sumeru::urlencode(&order.order_id)
        );
        let url = format!("{}{path}", self.endpoint);
        let operation = Operation::named("getOrder")
            .observing(observe_rate)
            .classifying(classify);
        let reply = if self.restricted_data {
            let rdt = self.restricted_token(&path).await?;
            self.get_order
                .call(operation, &rdt, |http| http.get(&url))
                .await?
        } else {
            self.get_order
                .call(operation, self.auth.as_ref(), |http| http.get(&url))
                .await?
        };
        let one: One = reply.json("getOrder")?;
        let keys = one.payload.ok_or_else(|| {
            ApiError::permanent(Refusal::NotFound, "getOrder answered without the order")
        })?;
        let order_id = keys
            .amazon_order_id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| order.order_id.clone());
        self.document(
            &json_text(&reply.body, "getOrder")?,
            &order_id,
            updated(&keys),
        )
        .await
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        struct List<'a> {
            #[serde(borrow)]
            payload: Option<ListPayload<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct ListPayload<'a> {
            #[serde(borrow, default)]
            orders: Vec<&'a RawValue>,
            next_token: Option<String>,
        }
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        // "Before" must be at least two minutes in the past.
        let latest = Utc::now() - Span::minutes(2);
        let (after, before) = match query.field {
            TimeField::Created => ("CreatedAfter", "CreatedBefore"),
            TimeField::Updated => ("LastUpdatedAfter", "LastUpdatedBefore"),
        };
        let mut params = vec![
            ("MarketplaceIds", self.marketplaces.join(",")),
            (after, at(query.from)),
            ("MaxResultsPerPage", "100".to_owned()),
        ];
        if let Some(to) = query.to {
            params.push((before, at(to.min(latest))));
        }
        if let Some(token) = cursor {
            params.push(("NextToken", token.to_owned()));
        }
        let url = format!("{}/orders/v0/orders", self.endpoint);
        let reply = self
            .get_orders
            .call(
                Operation::named("getOrders")
                    .observing(observe_rate)
                    .classifying(classify),
                self.auth.as_ref(),
                |http| http.get(&url).query(&params),
            )
            .await?;
        let list: List<'_> = reply.json("getOrders")?;
        let payload = list
            .payload
            .ok_or_else(|| ApiError::transient("getOrders answered without a payload"))?;
        let mut documents = Vec::with_capacity(payload.orders.len());
        for order in payload.orders {
            let keys: OrderKeys = serde_json::from_str(order.get()).map_err(|err| {
                ApiError::transient(format!("getOrders: an unreadable order: {err}"))
            })?;
            let order_id = keys
                .amazon_order_id
                .clone()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    ApiError::permanent(
                        Refusal::Rejected,
                        "getOrders listed an order without its id",
                    )
                })?;
            // The same envelope as getOrder's: `{"payload": Order}`.
            let answer = format!(r#"{{"payload":{}}}"#, order.get());
            documents.push(self.document(&answer, &order_id, updated(&keys)).await?);
        }
        Ok(Page {
            documents,
            next: payload.next_token.filter(|t| !t.is_empty()),
            total: None,
        })
    }
}

/// What an SP-API notification delivered through SNS needs: an `ORDER_CHANGE` names the
/// order (`Payload.OrderChangeNotification.AmazonOrderId`) to fetch.
pub fn completion(order_id: Option<&str>, body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Envelope {
        #[serde(rename = "Type")]
        kind: Option<String>,
        message: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Notification {
        notification_type: Option<String>,
        payload: Option<Payload>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Payload {
        order_change_notification: Option<Change>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Change {
        amazon_order_id: Option<String>,
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return Completion::Complete;
    };
    if envelope.kind.as_deref() != Some("Notification") {
        return Completion::Complete;
    }
    let Some(Ok(notification)) = envelope
        .message
        .as_deref()
        .map(serde_json::from_str::<Notification>)
    else {
        return Completion::Complete;
    };
    if notification.notification_type.as_deref() != Some("ORDER_CHANGE") {
        return Completion::Complete;
    }
    let named = notification
        .payload
        .and_then(|p| p.order_change_notification)
        .and_then(|c| c.amazon_order_id)
        .or_else(|| order_id.map(str::to_owned));
    match named
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
    {
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
    fn an_order_change_names_its_order() {
        let inner = r#"{"NotificationType":"ORDER_CHANGE","Payload":{"OrderChangeNotification":{"SellerId":"A3TH9S8BH6GOGM","AmazonOrderId":"903-8868176-2219830"}}}"#;
        let body = serde_json::json!({"Type": "Notification", "Message": inner}).to_string();
        assert_eq!(
            completion(None, body.as_bytes()),
            Completion::Fetch(OrderRef {
                order_id: "903-8868176-2219830".into(),
                lookup: None
            })
        );
        let other = serde_json::json!({"Type": "Notification", "Message": r#"{"NotificationType":"ANY_OFFER_CHANGED"}"#}).to_string();
        assert_eq!(completion(None, other.as_bytes()), Completion::Complete);
        let confirmation = serde_json::json!({"Type": "SubscriptionConfirmation"}).to_string();
        assert_eq!(
            completion(None, confirmation.as_bytes()),
            Completion::Complete
        );
    }

    #[test]
    fn an_expired_token_is_a_403_and_an_empty_payload_no_order() {
        let expired = br#"{"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied.","details":"The access token you provided has expired."}]}"#;
        assert_eq!(classify(403, expired), Some(Verdict::Unauthorized));
        assert_eq!(
            classify(200, br#"{"payload":{}}"#),
            Some(Verdict::Refused(Refusal::NotFound))
        );
        assert_eq!(classify(200, br#"{"payload":{"AmazonOrderId":"1"}}"#), None);
        assert_eq!(
            classify(429, br#"{"errors":[{"code":"QuotaExceeded"}]}"#),
            None
        );
    }
}
