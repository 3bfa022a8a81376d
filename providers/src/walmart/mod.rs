//! Walmart Marketplace: the Orders API (`/v3/orders`) with a client-credentials token.
//!
//! - Token: `POST /v3/token`, HTTP basic (client id : client secret), form
//!   `grant_type=client_credentials`, with the `WM_SVC.NAME` and `WM_QOS.CORRELATION_ID`
//!   headers Walmart wants on every call: a token for fifteen minutes.
//! - Calls carry `WM_SEC.ACCESS_TOKEN`, `WM_SVC.NAME`, a fresh `WM_QOS.CORRELATION_ID` and
//!   `Accept: application/json`.
//! - `getAnOrder`: `GET /v3/orders/{purchaseOrderId}` → `{"order": {…}}`; unknown → 404
//!   `CONTENT_NOT_FOUND.GMP_ORDER_API`.
//! - `getAllOrders`: `GET /v3/orders?createdStartDate&createdEndDate&limit` (or
//!   `lastModifiedStartDate`) → `{"list": {"meta": {totalCount, nextCursor}, "elements":
//!   {"order": […]}}}`; the next page is `GET /v3/orders` + `nextCursor` (a query string
//!   beginning with `?`); no match at all is a 404, read as an empty page.
//! - Rate: every answer says `X-Current-Token-Count` (requests left in the window) and
//!   `X-Next-Replenishment-Time` (epoch ms when it refills); a spent window holds the rest
//!   until then.
//!
//! Notifications (`PO_CREATED`, `ORDER_UPDATES`, …) name the order as
//! `payload.purchaseOrderId`; completed as `api:getAnOrder`, the order object's bytes as
//! they stood in the answer.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::oauth::{Bearer, ClientAuth, Grant, TokenHeader};
use crate::client::{ApiClient, ApiError, Authorize, Limiter, Operation, Refusal, Verdict};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of a Walmart order.
pub const ORDER_DOCUMENT: &str = "api:getAnOrder";

/// `[api.walmart]`: one seller's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalmartApiConfig {
    /// Where the API is.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: Secret,
    /// `WM_SVC.NAME`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Requests a second this process sends for the seller.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_base_url() -> String {
    "https://marketplace.walmartapis.com".into()
}

fn default_service_name() -> String {
    "Walmart Marketplace".into()
}

/// A fresh `WM_QOS.CORRELATION_ID`.
fn correlation_id() -> String {
    use rand::Rng;
    format!("{:032x}", rand::rng().random::<u128>())
}

/// The token and Walmart's service headers, on every call.
struct WalmartAuth {
    bearer: Bearer<Grant>,
    service_name: HeaderValue,
}

#[async_trait]
impl Authorize for WalmartAuth {
    async fn authorize(
        &self,
        request: &mut reqwest::Request,
    ) -> Result<Option<Arc<str>>, ApiError> {
        let used = self.bearer.authorize(request).await?;
        let headers = request.headers_mut();
        headers.insert("wm_svc.name", self.service_name.clone());
        if let Ok(id) = HeaderValue::from_str(&correlation_id()) {
            headers.insert("wm_qos.correlation_id", id);
        }
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        Ok(used)
    }

    async fn refused(&self, used: Option<&str>) {
        self.bearer.refused(used).await;
    }
}

/// A spent window (`X-Current-Token-Count: 0`) holds until `X-Next-Replenishment-Time`.
fn observe_rate(headers: &HeaderMap, limiter: &Limiter) {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if number("x-current-token-count") == Some(0) {
        if let Some(at) = number("x-next-replenishment-time") {
            let wait = at
                .saturating_sub(Utc::now().timestamp_millis())
                .clamp(0, 60_000);
            limiter.hold_until(
                tokio::time::Instant::now()
                    + std::time::Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
            );
        }
    }
}

/// One seller's orders.
pub struct WalmartApi {
    client: ApiClient,
    auth: WalmartAuth,
    base: String,
}

impl WalmartApi {
    /// The client for seller `account`.
    ///
    /// # Errors
    /// When the service name cannot be a header value.
    pub fn new(
        shared: &Shared,
        account: &str,
        config: &WalmartApiConfig,
    ) -> Result<Self, ApiError> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let client = shared.client(
            "walmart",
            shared.limiter(
                &format!("walmart/{account}"),
                config.rate_per_sec.unwrap_or(10.0),
                config.burst.unwrap_or(20),
            ),
        );
        let grant = Grant {
            url: format!("{base}/v3/token"),
            client_id: config.client_id.clone(),
            client_secret: Some(config.client_secret.clone()),
            refresh_token: None,
            scope: None,
            client_auth: ClientAuth::Basic,
            headers: vec![
                ("wm_svc.name", config.service_name.clone()),
                ("wm_qos.correlation_id", correlation_id()),
            ],
            query: false,
        };
        let service_name = HeaderValue::from_str(&config.service_name).map_err(|_| {
            ApiError::permanent(
                Refusal::Rejected,
                "api.walmart.service_name is not a header value",
            )
        })?;
        Ok(Self {
            auth: WalmartAuth {
                bearer: Bearer::new(
                    grant,
                    client.http().clone(),
                    TokenHeader::Named("wm_sec.access_token"),
                ),
                service_name,
            },
            client,
            base,
        })
    }
}

fn document(raw: &RawValue) -> Result<Document, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Keys {
        purchase_order_id: Option<crate::Id>,
        order_lines: Option<Lines>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Lines {
        #[serde(default)]
        order_line: Vec<Line>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Line {
        status_date: Option<i64>,
    }
    let keys: Keys = serde_json::from_str(raw.get()).map_err(|err| {
        ApiError::transient(format!("an order Walmart sent is unreadable: {err}"))
    })?;
    let order_id = keys
        .purchase_order_id
        .map(|id| id.to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::permanent(
                Refusal::Rejected,
                "Walmart sent an order without a purchaseOrderId",
            )
        })?;
    // Walmart states no modification time; a line's status date is the latest change.
    let updated_at = keys
        .order_lines
        .into_iter()
        .flat_map(|l| l.order_line)
        .filter_map(|l| l.status_date)
        .max()
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    Ok(Document {
        order_id,
        kind: ORDER_DOCUMENT.into(),
        body: raw.get().as_bytes().to_vec(),
        updated_at,
    })
}

/// `getAllOrders` with nothing to list answers 404 `CONTENT_NOT_FOUND`: an empty page.
fn classify_list(status: u16, body: &[u8]) -> Option<Verdict> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Error>,
    }
    #[derive(Deserialize)]
    struct Error {
        code: Option<String>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    (status == 404
        && errors.errors.iter().any(|e| {
            e.code
                .as_deref()
                .is_some_and(|c| c.starts_with("CONTENT_NOT_FOUND"))
        }))
    .then_some(Verdict::Success)
}

#[async_trait]
impl OrderApi for WalmartApi {
    fn source(&self) -> Source {
        Source::Walmart
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        #[derive(Deserialize)]
        struct One<'a> {
            #[serde(borrow)]
            order: Option<&'a RawValue>,
        }
        let url = format!(
            "{}/v3/orders/{}",
            self.base,
            crate::sumeru::urlencode(&order.order_id)
        );
        let reply = self
            .client
            .call(
                Operation::named("getAnOrder").observing(observe_rate),
                &self.auth,
                |http| http.get(&url),
            )
            .await?;
        let one: One<'_> = reply.json("getAnOrder")?;
        document(
            one.order
                .ok_or_else(|| ApiError::transient("getAnOrder answered without the order"))?,
        )
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        struct List<'a> {
            #[serde(borrow)]
            list: Option<Inner<'a>>,
        }
        #[derive(Deserialize)]
        struct Inner<'a> {
            meta: Option<Meta>,
            #[serde(borrow)]
            elements: Option<Elements<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            total_count: Option<u64>,
            next_cursor: Option<String>,
        }
        #[derive(Deserialize)]
        struct Elements<'a> {
            #[serde(borrow, default)]
            order: Vec<&'a RawValue>,
        }
        let url = match cursor {
            // Walmart's cursor is the next page's whole query string.
            Some(next) if next.starts_with('?') => format!("{}/v3/orders{next}", self.base),
            Some(other) => {
                return Err(ApiError::permanent(
                    Refusal::Rejected,
                    format!("{other:?} is not a Walmart cursor"),
                ))
            }
            None => {
                let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
                let mut params = vec![("limit", "100".to_owned())];
                match query.field {
                    TimeField::Created => {
                        params.push(("createdStartDate", at(query.from)));
                        if let Some(to) = query.to {
                            params.push(("createdEndDate", at(to)));
                        }
                    }
                    TimeField::Updated => params.push(("lastModifiedStartDate", at(query.from))),
                }
                let encoded = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&params)
                    .finish();
                format!("{}/v3/orders?{encoded}", self.base)
            }
        };
        let reply = self
            .client
            .call(
                Operation::named("getAllOrders")
                    .observing(observe_rate)
                    .classifying(classify_list),
                &self.auth,
                |http| http.get(&url),
            )
            .await?;
        if reply.status.as_u16() == 404 {
            return Ok(Page {
                documents: Vec::new(),
                next: None,
                total: Some(0),
            });
        }
        let list: List<'_> = reply.json("getAllOrders")?;
        let inner = list
            .list
            .ok_or_else(|| ApiError::transient("getAllOrders answered without a list"))?;
        let documents = inner
            .elements
            .map(|e| e.order)
            .unwrap_or_default()
            .into_iter()
            .map(document)
            .collect::<Result<Vec<_>, _>>()?;
        let meta = inner.meta;
        Ok(Page {
            total: meta.as_ref().and_then(|m| m.total_count),
            next: meta
                .and_then(|m| m.next_cursor)
                .filter(|c| c.starts_with('?') && c.len() > 1),
            documents,
        })
    }
}

/// What a Walmart notification needs: an order event names its purchase order.
pub fn completion(order_id: Option<&str>, body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    struct Notification {
        source: Option<SourceInfo>,
        payload: Option<Payload>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SourceInfo {
        event_type: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        purchase_order_id: Option<crate::Id>,
    }
    let Ok(notification) = serde_json::from_slice::<Notification>(body) else {
        return Completion::Complete;
    };
    let order_event = notification
        .source
        .and_then(|s| s.event_type)
        .is_some_and(|kind| {
            matches!(
                kind.as_str(),
                "PO_CREATED"
                    | "PO_LINE_AUTOCANCELLED"
                    | "ORDER_UPDATES"
                    | "INTENT_TO_CANCEL"
                    | "FRAUD_CANCEL"
            )
        });
    if !order_event {
        return Completion::Complete;
    }
    let named = notification
        .payload
        .and_then(|p| p.purchase_order_id)
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

    #[test]
    fn an_order_event_names_its_purchase_order_and_no_match_is_an_empty_list() {
        let body = br#"{"source":{"eventType":"PO_CREATED","eventId":"e"},"payload":{"purchaseOrderId":"1796277083022","orderLines":[]}}"#;
        assert_eq!(
            completion(None, body),
            Completion::Fetch(OrderRef {
                order_id: "1796277083022".into(),
                lookup: None
            })
        );
        assert_eq!(
            completion(None, br#"{"source":{"eventType":"ITEM_UNPUBLISHED"}}"#),
            Completion::Complete
        );
        let none = br#"{"errors":[{"code":"CONTENT_NOT_FOUND.GMP_ORDER_API","severity":"INFO"}]}"#;
        assert_eq!(classify_list(404, none), Some(Verdict::Success));
        assert_eq!(
            classify_list(404, br#"{"errors":[{"code":"OTHER"}]}"#),
            None
        );
    }
}
