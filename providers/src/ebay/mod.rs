//! eBay: the Sell Fulfillment API (`/sell/fulfillment/v1/order`) with a seller's user token.
//!
//! - Token: `POST /identity/v1/oauth2/token`, HTTP basic app credentials (App ID : Cert ID),
//!   `grant_type=refresh_token`, the seller's refresh token and the fulfillment scope; a user
//!   token lasts two hours. eBay does not rotate refresh tokens (about 18 months).
//! - `getOrder`: `GET /sell/fulfillment/v1/order/{orderId}`: the `Order`. An unknown id is
//!   400 with error 32100 ("Invalid order ID") or 404: both are "no such order".
//! - `getOrders`: `GET /sell/fulfillment/v1/order?filter=creationdate:[a..b]&limit&offset`
//!   (`lastmodifieddate` for polling): `{total, limit, offset, next?, orders[]}`; `limit` is
//!   at most 200.
//! - Rate: eBay documents a daily call limit per app (100,000 for Fulfillment, about 1.16 a
//!   second) and no rate-limit headers; a 429 carries error 2001. The default rate is that
//!   average with room for bursts.
//!
//! `ORDER_CONFIRMATION` notifications name the order as `notification.data.order.orderId`
//! (as delivered) or `notification.data.orderId` (as the AsyncAPI page shows); either is
//! completed with `getOrder`, published as `api:getOrder`.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::oauth::{Bearer, ClientAuth, Grant, TokenHeader};
use crate::client::{ApiClient, ApiError, Operation, Refusal, Verdict};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of an eBay order.
pub const ORDER_DOCUMENT: &str = "api:getOrder";

/// The scope a user token needs to read orders.
const FULFILLMENT_SCOPE: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly";

/// `[api.ebay]`: one seller's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbayApiConfig {
    /// Where the API is (`https://api.sandbox.ebay.com` for the sandbox).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The token endpoint; `<base_url>/identity/v1/oauth2/token` unless given.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The app's App ID (client id).
    pub client_id: String,
    /// The app's Cert ID (client secret).
    pub client_secret: Secret,
    /// The seller's refresh token (from the consent flow).
    pub refresh_token: Secret,
    /// Scopes the user token is asked for.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Requests a second this process sends for the seller.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests that may go at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Orders per page of a listing (at most 200).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_base_url() -> String {
    "https://api.ebay.com".into()
}

fn default_scope() -> String {
    FULFILLMENT_SCOPE.into()
}

fn default_page_size() -> u32 {
    200
}

/// One seller's Fulfillment API.
pub struct EbayApi {
    client: ApiClient,
    auth: Bearer<Grant>,
    base: String,
    page_size: u32,
}

impl EbayApi {
    /// The client for `account`.
    pub fn new(shared: &Shared, account: &str, config: &EbayApiConfig) -> Self {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let limiter = shared.limiter(
            &format!("ebay/{account}"),
            config.rate_per_sec.unwrap_or(1.16),
            config.burst.unwrap_or(20),
        );
        let client = shared.client("ebay", limiter);
        let grant = Grant {
            url: config
                .token_url
                .clone()
                .unwrap_or_else(|| format!("{base}/identity/v1/oauth2/token")),
            client_id: config.client_id.clone(),
            client_secret: Some(config.client_secret.clone()),
            refresh_token: Some(config.refresh_token.clone()),
            scope: Some(config.scope.clone()),
            client_auth: ClientAuth::Basic,
            headers: Vec::new(),
            query: false,
        };
        Self {
            auth: Bearer::new(grant, client.http().clone(), TokenHeader::Bearer),
            client,
            base,
            page_size: config.page_size.clamp(1, 200),
        }
    }
}

/// An unknown order id is 400 with error 32100 ("Invalid order ID").
fn classify(status: u16, body: &[u8]) -> Option<Verdict> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Error>,
    }
    #[derive(Deserialize)]
    struct Error {
        #[serde(rename = "errorId")]
        error_id: Option<i64>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    (status == 400 && errors.errors.iter().any(|e| e.error_id == Some(32100)))
        .then_some(Verdict::Refused(Refusal::NotFound))
}

/// The fields of an order a record's key and a poll's mark need.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    order_id: Option<String>,
    last_modified_date: Option<String>,
}

fn document(raw: &RawValue) -> Result<Document, ApiError> {
    let keys: Keys = serde_json::from_str(raw.get())
        .map_err(|err| ApiError::transient(format!("an order eBay sent is unreadable: {err}")))?;
    let order_id = keys
        .order_id
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::permanent(Refusal::Rejected, "eBay sent an order without an orderId")
        })?;
    Ok(Document {
        order_id,
        kind: ORDER_DOCUMENT.into(),
        body: raw.get().as_bytes().to_vec(),
        updated_at: keys
            .last_modified_date
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    })
}

#[derive(Deserialize)]
struct OrderPage<'a> {
    #[serde(borrow, default)]
    orders: Vec<&'a RawValue>,
    next: Option<String>,
    total: Option<u64>,
}

#[async_trait]
impl OrderApi for EbayApi {
    fn source(&self) -> Source {
        Source::Ebay
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        let url = format!(
            "{}/sell/fulfillment/v1/order/{}",
            self.base,
            crate::sumeru::urlencode(&order.order_id)
        );
        let reply = self
            .client
            .call(
                Operation::named("getOrder").classifying(classify),
                &self.auth,
                |http| {
                    http.get(&url)
                        .header(reqwest::header::ACCEPT, "application/json")
                },
            )
            .await?;
        let raw: &RawValue = reply.json("getOrder")?;
        document(raw)
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let field = match query.field {
            TimeField::Created => "creationdate",
            TimeField::Updated => "lastmodifieddate",
        };
        let filter = format!(
            "{field}:[{}..{}]",
            at(query.from),
            query.to.map(at).unwrap_or_default()
        );
        let offset: u64 = match cursor {
            None => 0,
            Some(cursor) => cursor.parse().map_err(|_| {
                ApiError::permanent(
                    Refusal::Rejected,
                    format!("{cursor:?} is not an eBay offset"),
                )
            })?,
        };
        let url = format!("{}/sell/fulfillment/v1/order", self.base);
        let params = [
            ("filter", filter),
            ("limit", self.page_size.to_string()),
            ("offset", offset.to_string()),
        ];
        let reply = self
            .client
            .call(Operation::named("getOrders"), &self.auth, |http| {
                http.get(&url)
                    .query(&params)
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        let page: OrderPage<'_> = reply.json("getOrders")?;
        let documents = page
            .orders
            .into_iter()
            .map(document)
            .collect::<Result<Vec<_>, _>>()?;
        let read = u64::try_from(documents.len()).unwrap_or(u64::MAX);
        // `next` is present while more pages follow; the offset is ours to count.
        let next =
            (page.next.is_some() && read > 0).then(|| offset.saturating_add(read).to_string());
        Ok(Page {
            documents,
            next,
            total: page.total,
        })
    }
}

/// What an eBay notification needs: `ORDER_CONFIRMATION` names an order to fetch.
pub fn completion(order_id: Option<&str>, body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    struct Notification {
        metadata: Option<Metadata>,
        notification: Option<Body>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        topic: Option<String>,
    }
    #[derive(Deserialize)]
    struct Body {
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        order_id: Option<crate::Id>,
        order: Option<OrderData>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OrderData {
        order_id: Option<crate::Id>,
    }
    let Ok(parsed) = serde_json::from_slice::<Notification>(body) else {
        return Completion::Complete;
    };
    if parsed.metadata.and_then(|m| m.topic).as_deref() != Some("ORDER_CONFIRMATION") {
        return Completion::Complete;
    }
    let named = parsed
        .notification
        .and_then(|n| n.data)
        .and_then(|d| d.order.and_then(|o| o.order_id).or(d.order_id))
        .map(|id| id.to_string())
        .or_else(|| order_id.map(str::to_owned));
    match named.filter(|id| !id.is_empty()) {
        Some(order_id) => Completion::Fetch(OrderRef {
            order_id,
            lookup: None,
        }),
        None => Completion::Complete,
    }
}

/// The scope a user token needs to subscribe to the seller's notifications.
const NOTIFICATION_SCOPE: &str =
    "https://api.ebay.com/oauth/api_scope/commerce.notification.subscription";
/// The scope of an application token (destinations, config).
const APPLICATION_SCOPE: &str = "https://api.ebay.com/oauth/api_scope";

/// eBay's 409s that mean "already there" (a destination for this endpoint, a subscription
/// for this topic): read, not refused; the caller looks the existing one up.
fn classify_exists(status: u16, body: &[u8]) -> Option<Verdict> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Error>,
    }
    #[derive(Deserialize)]
    struct Error {
        #[serde(rename = "errorId")]
        error_id: Option<i64>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    (status == 409
        && errors
            .errors
            .iter()
            .any(|e| matches!(e.error_id, Some(195_021 | 195_012))))
    .then_some(Verdict::Success)
}

/// The id at the end of a `Location` header.
fn location_id(reply: &crate::client::Reply) -> Option<String> {
    let location = reply
        .headers
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

impl EbayApi {
    /// A token from this app's credentials: a refresh grant for `scope` when `user`, else
    /// client credentials.
    fn notification_auth(&self, config: &EbayApiConfig, user: bool) -> Bearer<Grant> {
        let grant = Grant {
            url: config
                .token_url
                .clone()
                .unwrap_or_else(|| format!("{}/identity/v1/oauth2/token", self.base)),
            client_id: config.client_id.clone(),
            client_secret: Some(config.client_secret.clone()),
            refresh_token: user.then(|| config.refresh_token.clone()),
            scope: Some(
                if user {
                    NOTIFICATION_SCOPE
                } else {
                    APPLICATION_SCOPE
                }
                .into(),
            ),
            client_auth: ClientAuth::Basic,
            headers: Vec::new(),
            query: false,
        };
        Bearer::new(grant, self.client.http().clone(), TokenHeader::Bearer)
    }

    /// Registers `request.url` as a Notification API destination (eBay checks it with its
    /// challenge at once) and subscribes it to `ORDER_CONFIRMATION`; with `request.test`,
    /// asks for eBay's test notification.
    ///
    /// # Errors
    /// What the API answered; a missing verification token.
    pub(crate) async fn subscribe_with(
        &self,
        config: &EbayApiConfig,
        request: &crate::subscribe::Request,
    ) -> Result<crate::subscribe::Subscribed, crate::subscribe::SubscribeError> {
        use crate::subscribe::{SubscribeError, Subscribed, TestOutcome};
        let token = request.verification_token.as_ref().ok_or_else(|| {
            SubscribeError::Missing(
                "ingest.sources.ebay has no verification_token for eBay's endpoint challenge"
                    .into(),
            )
        })?;
        let app = self.notification_auth(config, false);
        let user = self.notification_auth(config, true);
        let api = format!("{}/commerce/notification/v1", self.base);
        if let Some(email) = &request.alert_email {
            let url = format!("{api}/config");
            let body = serde_json::json!({"alertEmail": email});
            self.client
                .call(Operation::named("updateConfig"), &app, |http| {
                    http.put(&url).json(&body)
                })
                .await?;
        }
        // The destination: made, or found when eBay has one for this endpoint already.
        let url = format!("{api}/destination");
        let body = serde_json::json!({
            "name": "OrderBridge",
            "status": "ENABLED",
            "deliveryConfig": {"endpoint": request.url, "verificationToken": token.expose()},
        });
        let reply = self
            .client
            .call(
                Operation::named("createDestination").classifying(classify_exists),
                &app,
                |http| http.post(&url).json(&body),
            )
            .await?;
        let destination = if reply.status.as_u16() == 409 {
            self.find(
                &app,
                &format!("{api}/destination?limit=100"),
                "destinations",
                |d| {
                    d.pointer("/deliveryConfig/endpoint")
                        .and_then(|e| e.as_str())
                        == Some(request.url.as_str())
                },
                "destinationId",
            )
            .await?
        } else {
            location_id(&reply)
        }
        .ok_or_else(|| {
            SubscribeError::Missing("eBay made a destination but did not say its id".into())
        })?;
        // The subscription, likewise.
        let url = format!("{api}/subscription");
        let body = serde_json::json!({
            "topicId": "ORDER_CONFIRMATION",
            "status": "ENABLED",
            "destinationId": destination,
            "payload": {"format": "JSON", "schemaVersion": "1.0", "deliveryProtocol": "HTTPS"},
        });
        let reply = self
            .client
            .call(
                Operation::named("createSubscription").classifying(classify_exists),
                &user,
                |http| http.post(&url).json(&body),
            )
            .await?;
        let existing = reply.status.as_u16() == 409;
        let id = if existing {
            self.find(
                &user,
                &format!("{api}/subscription?limit=100"),
                "subscriptions",
                |s| {
                    s.get("topicId").and_then(|t| t.as_str()) == Some("ORDER_CONFIRMATION")
                        && s.get("destinationId").and_then(|d| d.as_str())
                            == Some(destination.as_str())
                },
                "subscriptionId",
            )
            .await?
        } else {
            location_id(&reply)
        }
        .ok_or_else(|| {
            SubscribeError::Missing("eBay made a subscription but did not say its id".into())
        })?;
        let test = if request.test {
            let url = format!("{api}/subscription/{}/test", urlencode_path(&id));
            self.client
                .call(Operation::named("testSubscription"), &user, |http| {
                    http.post(&url)
                })
                .await?;
            Some(TestOutcome::Requested)
        } else {
            None
        };
        Ok(Subscribed {
            id,
            secret: None,
            existing,
            test,
        })
    }

    /// The `field` of the first of the listing's `collection` entries that `matches`.
    async fn find(
        &self,
        auth: &Bearer<Grant>,
        url: &str,
        collection: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
        field: &str,
    ) -> Result<Option<String>, ApiError> {
        let reply = self
            .client
            .call(Operation::named("list"), auth, |http| http.get(url))
            .await?;
        let listing: serde_json::Value = reply.json("list")?;
        Ok(listing
            .get(collection)
            .and_then(|c| c.as_array())
            .and_then(|entries| entries.iter().find(|e| matches(e)))
            .and_then(|e| e.get(field))
            .and_then(|id| id.as_str())
            .map(str::to_owned))
    }
}

fn urlencode_path(segment: &str) -> String {
    crate::sumeru::urlencode(segment)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_order_confirmation_names_its_order_either_way() {
        let delivered = br#"{"metadata":{"topic":"ORDER_CONFIRMATION"},"notification":{"notificationId":"n1","data":{"user":{"userId":"u"},"order":{"orderId":"19-14819-32278","orderLineItems":[]}}}}"#;
        let documented = br#"{"metadata":{"topic":"ORDER_CONFIRMATION"},"notification":{"data":{"orderId":"12-34567-89012"}}}"#;
        let other =
            br#"{"metadata":{"topic":"MARKETPLACE_ACCOUNT_DELETION"},"notification":{"data":{}}}"#;
        let fetch = |id: &str| {
            Completion::Fetch(OrderRef {
                order_id: id.into(),
                lookup: None,
            })
        };
        assert_eq!(completion(None, delivered), fetch("19-14819-32278"));
        assert_eq!(completion(None, documented), fetch("12-34567-89012"));
        assert_eq!(completion(None, other), Completion::Complete);
        assert_eq!(completion(None, b"not json"), Completion::Complete);
    }

    #[test]
    fn an_invalid_order_id_is_no_such_order() {
        let body = br#"{"errors":[{"errorId":32100,"domain":"API_FULFILLMENT","category":"REQUEST","message":"Invalid order ID: 1"}]}"#;
        assert_eq!(
            classify(400, body),
            Some(Verdict::Refused(Refusal::NotFound))
        );
        assert_eq!(classify(400, br#"{"errors":[{"errorId":30700}]}"#), None);
    }
}
