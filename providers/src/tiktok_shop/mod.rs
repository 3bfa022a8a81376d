//! TikTok Shop: the Open API (version 202309), every request signed.
//!
//! - Token: `GET <auth host>/api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token`
//!   → `{code, message, data: {access_token, access_token_expire_in, refresh_token, …}}`; the
//!   expiries are **absolute** unix times. Sent as `x-tts-access-token`.
//! - Signing: every request carries `app_key`, `timestamp` (unix seconds, within five
//!   minutes), `shop_cipher` and `sign` = lowercase hex HMAC-SHA256, keyed with the app
//!   secret, of `secret + path + (each query parameter but sign and access_token, sorted by
//!   name, as name + value) + body + secret` (no body for a GET). See [`sign`].
//! - `Get Order Detail`: `GET /order/202309/orders?ids=…` → `{code, data: {orders: […]}}`; an
//!   unknown id is simply absent. `Search Orders`: `POST /order/202309/orders/search?page_size&page_token`
//!   with `{create_time_ge, create_time_lt}` (or `update_time_…`) → `{orders,
//!   next_page_token, total_count}`.
//! - Errors come with HTTP 200 and a `code`: 105002 is an expired token (fresh credentials,
//!   once), 36009002 with HTTP 429 is the rate limit, 36009003 and 36009007 are worth trying
//!   again; others refuse the request (the message is TikTok's).
//!
//! An order is published as its own object, the bytes as they stood in the answer
//! (`api:orderDetail`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::oauth::{token_refused, without_url, Bearer, TokenHeader, TokenSource};
use crate::client::{ApiClient, ApiError, Authorize, Operation, Refusal, Token, Verdict};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of a TikTok Shop order.
pub const ORDER_DOCUMENT: &str = "api:orderDetail";

/// `[api.tiktok_shop]`: one shop's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiktokShopApiConfig {
    /// Where the API is.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Where tokens are refreshed.
    #[serde(default = "default_auth_url")]
    pub auth_url: String,
    /// The app's key.
    pub app_key: String,
    /// The app's secret (signs every request).
    pub app_secret: Secret,
    /// The shop's refresh token.
    pub refresh_token: Secret,
    /// The shop's cipher (from `GET /authorization/202309/shops`).
    pub shop_cipher: String,
    /// Requests a second this process sends for the shop.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_base_url() -> String {
    "https://open-api.tiktokglobalshop.com".into()
}

fn default_auth_url() -> String {
    "https://auth.tiktok-shops.com".into()
}

/// TikTok Shop's request signature (see the module docs): `query` as sent, decoded.
pub fn sign(path: &str, query: &[(String, String)], body: &[u8], secret: &str) -> String {
    let mut params: Vec<&(String, String)> = query
        .iter()
        .filter(|(name, _)| name != "sign" && name != "access_token")
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    // HMAC takes a key of any length; the error arm cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(secret.as_bytes());
    mac.update(path.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.update(body);
    mac.update(secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Refreshes the shop's token at the auth host.
struct Refresh {
    url: String,
    app_key: String,
    app_secret: Secret,
    refresh_token: Secret,
}

#[async_trait]
impl TokenSource for Refresh {
    async fn fetch(
        &self,
        http: &reqwest::Client,
        rotated: Option<Arc<str>>,
    ) -> Result<Token, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            code: Option<i64>,
            data: Option<Data>,
        }
        #[derive(Deserialize)]
        struct Data {
            access_token: String,
            access_token_expire_in: Option<i64>,
            refresh_token: Option<String>,
        }
        let refresh =
            rotated.map_or_else(|| self.refresh_token.expose().to_owned(), |r| r.to_string());
        let response = http
            .get(&self.url)
            .query(&[
                ("app_key", self.app_key.as_str()),
                ("app_secret", self.app_secret.expose()),
                ("refresh_token", refresh.as_str()),
                ("grant_type", "refresh_token"),
            ])
            .send()
            .await
            .map_err(|err| ApiError::transient(format!("token endpoint: {}", without_url(&err))))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| ApiError::transient(format!("token endpoint: {}", without_url(&err))))?;
        let answer: Option<Answer> = serde_json::from_slice(&body).ok();
        match answer {
            Some(Answer {
                code: Some(0),
                data: Some(data),
            }) if status.is_success() => {
                let now = Utc::now().timestamp();
                let left = data
                    .access_token_expire_in
                    .map_or(3600, |at| at.saturating_sub(now))
                    .max(1);
                Ok(Token {
                    access: data.access_token,
                    expires_in: std::time::Duration::from_secs(u64::try_from(left).unwrap_or(3600)),
                    refresh: data.refresh_token.filter(|r| !r.is_empty()),
                })
            }
            _ => Err(token_refused("token refresh", status, &body)),
        }
    }
}

/// The token header, and the signature over the request as it will be sent.
struct TiktokAuth {
    bearer: Bearer<Refresh>,
    app_key: String,
    app_secret: Secret,
    shop_cipher: String,
}

#[async_trait]
impl Authorize for TiktokAuth {
    async fn authorize(
        &self,
        request: &mut reqwest::Request,
    ) -> Result<Option<Arc<str>>, ApiError> {
        let used = self.bearer.authorize(request).await?;
        let timestamp = Utc::now().timestamp().to_string();
        let url = request.url_mut();
        // What the caller set, then ours (a retry signs afresh, with a new timestamp).
        let mut query: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| {
                !matches!(
                    name.as_ref(),
                    "app_key" | "timestamp" | "shop_cipher" | "sign"
                )
            })
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        query.push(("app_key".into(), self.app_key.clone()));
        query.push(("timestamp".into(), timestamp));
        query.push(("shop_cipher".into(), self.shop_cipher.clone()));
        let path = url.path().to_owned();
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .unwrap_or_default()
            .to_vec();
        let signature = sign(&path, &query, &body, self.app_secret.expose());
        let url = request.url_mut();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(&query)
            .append_pair("sign", &signature);
        Ok(used)
    }

    async fn refused(&self, used: Option<&str>) {
        self.bearer.refused(used).await;
    }
}

/// TikTok's `code` in a 2xx answer (see the module docs).
fn classify(status: u16, body: &[u8]) -> Option<Verdict> {
    #[derive(Deserialize)]
    struct Answer {
        code: Option<i64>,
    }
    let code = serde_json::from_slice::<Answer>(body).ok()?.code?;
    match code {
        0 => None,
        105_001 | 105_002 | 101_000 => Some(Verdict::Unauthorized),
        36_009_002 => Some(Verdict::Throttled),
        36_009_003 | 36_009_007 | 10_002_014 | 10_002_015 | 10_037_002..=10_037_004 => {
            Some(Verdict::Transient)
        }
        21_008_111 => Some(Verdict::Refused(Refusal::NotFound)),
        105_005 | 36_009_033 => Some(Verdict::Refused(Refusal::Forbidden)),
        _ if (200..300).contains(&status) => Some(Verdict::Refused(Refusal::Rejected)),
        _ => None,
    }
}

/// One shop's orders.
pub struct TiktokShopApi {
    client: ApiClient,
    auth: TiktokAuth,
    base: String,
}

impl TiktokShopApi {
    /// The client for shop `account`.
    pub fn new(shared: &Shared, account: &str, config: &TiktokShopApiConfig) -> Self {
        let client = shared.client(
            "tiktok-shop",
            shared.limiter(
                &format!("tiktok-shop/{account}"),
                config.rate_per_sec.unwrap_or(20.0),
                config.burst.unwrap_or(20),
            ),
        );
        let refresh = Refresh {
            url: format!(
                "{}/api/v2/token/refresh",
                config.auth_url.trim_end_matches('/')
            ),
            app_key: config.app_key.clone(),
            app_secret: config.app_secret.clone(),
            refresh_token: config.refresh_token.clone(),
        };
        Self {
            auth: TiktokAuth {
                bearer: Bearer::new(
                    refresh,
                    client.http().clone(),
                    TokenHeader::Named("x-tts-access-token"),
                ),
                app_key: config.app_key.clone(),
                app_secret: config.app_secret.clone(),
                shop_cipher: config.shop_cipher.clone(),
            },
            client,
            base: config.base_url.trim_end_matches('/').to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct Orders<'a> {
    #[serde(borrow)]
    data: Option<OrdersData<'a>>,
}

#[derive(Deserialize)]
struct OrdersData<'a> {
    #[serde(borrow, default)]
    orders: Vec<&'a RawValue>,
    next_page_token: Option<String>,
    total_count: Option<u64>,
}

fn document(raw: &RawValue) -> Result<Document, ApiError> {
    #[derive(Deserialize)]
    struct Keys {
        id: Option<crate::Id>,
        update_time: Option<i64>,
    }
    let keys: Keys = serde_json::from_str(raw.get()).map_err(|err| {
        ApiError::transient(format!("an order TikTok Shop sent is unreadable: {err}"))
    })?;
    let order_id = keys
        .id
        .map(|id| id.to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::permanent(Refusal::Rejected, "TikTok Shop sent an order without an id")
        })?;
    Ok(Document {
        order_id,
        kind: ORDER_DOCUMENT.into(),
        body: raw.get().as_bytes().to_vec(),
        updated_at: keys
            .update_time
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
    })
}

#[async_trait]
impl OrderApi for TiktokShopApi {
    fn source(&self) -> Source {
        Source::TiktokShop
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        let url = format!("{}/order/202309/orders", self.base);
        let reply = self
            .client
            .call(
                Operation::named("getOrderDetail").classifying(classify),
                &self.auth,
                |http| http.get(&url).query(&[("ids", order.order_id.as_str())]),
            )
            .await?;
        let orders: Orders<'_> = reply.json("getOrderDetail")?;
        let found = orders
            .data
            .and_then(|d| d.orders.into_iter().next())
            .ok_or_else(|| {
                ApiError::permanent(
                    Refusal::NotFound,
                    format!("TikTok Shop has no order {}", order.order_id),
                )
            })?;
        document(found)
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        let (ge, lt) = match query.field {
            TimeField::Created => ("create_time_ge", "create_time_lt"),
            TimeField::Updated => ("update_time_ge", "update_time_lt"),
        };
        let mut filter = serde_json::Map::new();
        filter.insert(ge.into(), query.from.timestamp().into());
        if let Some(to) = query.to {
            filter.insert(lt.into(), to.timestamp().into());
        }
        // Serialized once: the signature covers exactly these bytes.
        let body = serde_json::Value::Object(filter).to_string();
        let mut params = vec![("page_size", "100".to_owned())];
        if let Some(token) = cursor {
            params.push(("page_token", token.to_owned()));
        }
        let url = format!("{}/order/202309/orders/search", self.base);
        let reply = self
            .client
            .call(
                Operation::named("searchOrders").classifying(classify),
                &self.auth,
                |http| {
                    http.post(&url)
                        .query(&params)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                },
            )
            .await?;
        let orders: Orders<'_> = reply.json("searchOrders")?;
        let data = orders
            .data
            .ok_or_else(|| ApiError::transient("searchOrders answered without data"))?;
        let documents = data
            .orders
            .into_iter()
            .map(document)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            next: data.next_page_token.filter(|t| !t.is_empty()),
            total: data.total_count,
            documents,
        })
    }
}

/// What a TikTok Shop webhook needs: an order status change (type 1) names its order.
pub fn completion(order_id: Option<&str>, body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    struct Webhook {
        #[serde(rename = "type")]
        kind: Option<i64>,
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    struct Data {
        order_id: Option<crate::Id>,
    }
    let Ok(webhook) = serde_json::from_slice::<Webhook>(body) else {
        return Completion::Complete;
    };
    if webhook.kind != Some(1) {
        return Completion::Complete;
    }
    let named = webhook
        .data
        .and_then(|d| d.order_id)
        .map(|id| id.to_string())
        .or_else(|| order_id.map(str::to_owned))
        .filter(|id| !id.is_empty());
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

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn requests_are_signed_as_the_official_example() {
        // TikTok's "sign your API request" example.
        assert_eq!(
            sign(
                "/authorization/202309/shops",
                &pairs(&[("app_key", "29a39d"), ("timestamp", "1623812664")]),
                b"",
                "e59af819cc"
            ),
            "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"
        );
        // A body is signed after the sorted parameters; sign and access_token are not.
        assert_eq!(
            sign(
                "/order/202309/orders/search",
                &pairs(&[
                    ("timestamp", "1700000000"),
                    ("shop_cipher", "C1"),
                    ("sign", "ignored"),
                    ("app_key", "abc"),
                    ("page_size", "10"),
                    ("access_token", "ignored"),
                ]),
                br#"{"order_status":"AWAITING_SHIPMENT"}"#,
                "secret"
            ),
            "02096a31d213dd7cc767f780c72b90429793ab43a66ad5004be425c40fed684a"
        );
    }

    #[test]
    fn codes_in_a_200_say_what_happened() {
        assert_eq!(classify(200, br#"{"code":0,"data":{}}"#), None);
        assert_eq!(
            classify(200, br#"{"code":105002,"message":"Expired credentials."}"#),
            Some(Verdict::Unauthorized)
        );
        assert_eq!(
            classify(429, br#"{"code":36009002}"#),
            Some(Verdict::Throttled)
        );
        assert_eq!(
            classify(200, br#"{"code":36009003}"#),
            Some(Verdict::Transient)
        );
        assert_eq!(
            classify(200, br#"{"code":106001}"#),
            Some(Verdict::Refused(Refusal::Rejected))
        );
    }

    #[test]
    fn a_status_change_names_its_order() {
        let body = br#"{"type":1,"tts_notification_id":"7392922053974394642","shop_id":"7493999789368181917","timestamp":1721298801,"data":{"order_id":"577042645727872816","order_status":"AWAITING_SHIPMENT"}}"#;
        assert_eq!(
            completion(None, body),
            Completion::Fetch(OrderRef {
                order_id: "577042645727872816".into(),
                lookup: None
            })
        );
        assert_eq!(
            completion(None, br#"{"type":5,"data":{}}"#),
            Completion::Complete
        );
    }
}
