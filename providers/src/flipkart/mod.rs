//! Flipkart: the Marketplace Seller API v3, with a client-credentials token.
//!
//! - Token: `GET /oauth-service/oauth/token?grant_type=client_credentials&scope=Seller_Api`,
//!   HTTP basic (app id : app secret) → `{access_token, token_type, expires_in, scope}`; sent
//!   as a bearer token. A refused token is 401.
//! - A shipment: `GET /sellers/v3/shipments?shipmentIds=…` → `{shipments: [{orderItems:
//!   [{orderId, sku, quantity, priceComponents, …}], …}]}`, and its addresses and buyer
//!   `GET /sellers/v3/shipments/{shipmentId}` → `{shipments: [{deliveryAddress,
//!   billingAddress, buyerDetails, …}]}`; an unknown id is simply absent.
//! - Listing: `POST /sellers/v3/shipments/filter` with `{filter: {type, states, orderDate},
//!   pagination}` → `{hasMore, nextPageUrl, shipments}`, then `GET` the next page's URL
//!   (relative to `/sellers`). Pre-dispatch, post-dispatch and cancelled shipments are
//!   listed one type after the other.
//!
//! Flipkart's notifications after `shipment_created` name only the shipment (`shipmentId`),
//! so they are keyed by their event id; the completed document (`api:shipment`:
//! `{"shipments": <first answer>, "details": <second answer>}`, each answer byte for byte) is
//! keyed by the order its items belong to.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page};
use crate::client::oauth::{Bearer, ClientAuth, Grant, TokenHeader};
use crate::client::{ApiClient, ApiError, Operation, Refusal};
use crate::completion::Completion;
use crate::Shared;

/// The document kind of a Flipkart shipment with its details.
pub const SHIPMENT_DOCUMENT: &str = "api:shipment";

/// The shipment types a listing goes through, in order.
const TYPES: [&str; 3] = ["preDispatch", "postDispatch", "cancelled"];

/// `[api.flipkart]`: one seller's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlipkartApiConfig {
    /// Where the API is (`…/sellers`).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The token endpoint.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// The app id.
    pub app_id: String,
    /// The app secret.
    pub app_secret: Secret,
    /// Requests a second this process sends for the seller.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_base_url() -> String {
    "https://api.flipkart.net/sellers".into()
}

fn default_token_url() -> String {
    "https://api.flipkart.net/oauth-service/oauth/token".into()
}

/// One seller's shipments.
pub struct FlipkartApi {
    client: ApiClient,
    auth: Bearer<Grant>,
    base: String,
}

impl FlipkartApi {
    /// The client for seller `account`.
    pub fn new(shared: &Shared, account: &str, config: &FlipkartApiConfig) -> Self {
        let client = shared.client(
            "flipkart",
            shared.limiter(
                &format!("flipkart/{account}"),
                config.rate_per_sec.unwrap_or(5.0),
                config.burst.unwrap_or(10),
            ),
        );
        let grant = Grant {
            url: config.token_url.clone(),
            client_id: config.app_id.clone(),
            client_secret: Some(config.app_secret.clone()),
            refresh_token: None,
            scope: Some("Seller_Api".into()),
            client_auth: ClientAuth::Basic,
            headers: Vec::new(),
            query: true,
        };
        Self {
            auth: Bearer::new(grant, client.http().clone(), TokenHeader::Bearer),
            client,
            base: config.base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The document of shipment `id`, whose first answer is `shipments` (text of
    /// `{"shipments": […]}`).
    async fn document(&self, id: &str, shipments: String) -> Result<Document, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            shipments: Vec<Shipment>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Shipment {
            updated_at: Option<String>,
            #[serde(default)]
            order_items: Vec<Item>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Item {
            order_id: Option<crate::Id>,
        }
        let answer: Answer = serde_json::from_str(&shipments).map_err(|err| {
            ApiError::transient(format!("a shipment Flipkart sent is unreadable: {err}"))
        })?;
        let shipment = answer.shipments.into_iter().next().ok_or_else(|| {
            ApiError::permanent(Refusal::NotFound, format!("Flipkart has no shipment {id}"))
        })?;
        let order_id = shipment
            .order_items
            .first()
            .and_then(|item| item.order_id.as_ref())
            .map(ToString::to_string)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ApiError::permanent(Refusal::Rejected, format!("shipment {id} names no order"))
            })?;
        let url = format!(
            "{}/v3/shipments/{}",
            self.base,
            crate::sumeru::urlencode(id)
        );
        let reply = self
            .client
            .call(Operation::named("getShipmentDetails"), &self.auth, |http| {
                http.get(&url)
            })
            .await?;
        let details = text(&reply.body, "getShipmentDetails")?;
        Ok(Document {
            order_id,
            kind: SHIPMENT_DOCUMENT.into(),
            body: format!(r#"{{"shipments":{shipments},"details":{details}}}"#).into_bytes(),
            updated_at: shipment
                .updated_at
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }
}

/// A JSON answer as text.
fn text(body: &[u8], what: &str) -> Result<String, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::transient(format!("{what}: not UTF-8")))?;
    serde_json::from_str::<&RawValue>(text)
        .map_err(|err| ApiError::transient(format!("{what}: unreadable answer: {err}")))?;
    Ok(text.trim().to_owned())
}

#[async_trait]
impl OrderApi for FlipkartApi {
    fn source(&self) -> Source {
        Source::Flipkart
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        let id = order.lookup.as_deref().unwrap_or(&order.order_id);
        let url = format!("{}/v3/shipments", self.base);
        let reply = self
            .client
            .call(Operation::named("getShipments"), &self.auth, |http| {
                http.get(&url).query(&[("shipmentIds", id)])
            })
            .await?;
        let shipments = text(&reply.body, "getShipments")?;
        self.document(id, shipments).await
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Search<'a> {
            #[serde(default)]
            has_more: bool,
            next_page_url: Option<String>,
            #[serde(borrow, default)]
            shipments: Vec<&'a RawValue>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Id {
            shipment_id: Option<String>,
        }
        // The cursor is `<type index>|<next page URL, or empty for the type's first page>`.
        let (index, next_url) = match cursor {
            None => (0usize, String::new()),
            Some(c) => {
                let (i, url) = c.split_once('|').unwrap_or((c, ""));
                let i: usize = i.parse().ok().filter(|i| *i < TYPES.len()).ok_or_else(|| {
                    ApiError::permanent(
                        Refusal::Rejected,
                        format!("{c:?} is not a Flipkart cursor"),
                    )
                })?;
                (i, url.to_owned())
            }
        };
        let reply = if next_url.is_empty() {
            let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
            let mut filter =
                serde_json::json!({"type": TYPES[index], "orderDate": {"from": at(query.from)}});
            if let Some(to) = query.to {
                filter["orderDate"]["to"] = at(to).into();
            }
            if TYPES[index] == "preDispatch" {
                filter["states"] = serde_json::json!([
                    "APPROVED",
                    "PACKING_IN_PROGRESS",
                    "PACKED",
                    "FORM_FAILED",
                    "READY_TO_DISPATCH"
                ]);
            } else if TYPES[index] == "postDispatch" {
                filter["states"] = serde_json::json!(["SHIPPED", "DELIVERED", "PICKUP_COMPLETE"]);
            }
            let body = serde_json::json!({"filter": filter, "pagination": {"pageSize": 20}, "sort": {"field": "orderDate", "order": "asc"}});
            let url = format!("{}/v3/shipments/filter", self.base);
            self.client
                .call(Operation::named("searchShipments"), &self.auth, |http| {
                    http.post(&url).json(&body)
                })
                .await?
        } else {
            let url = format!("{}{}", self.base, next_url.trim_start_matches("/sellers"));
            self.client
                .call(Operation::named("searchShipments"), &self.auth, |http| {
                    http.get(&url)
                })
                .await?
        };
        let search: Search<'_> = reply.json("searchShipments")?;
        let mut documents = Vec::with_capacity(search.shipments.len());
        for shipment in &search.shipments {
            let id: Id = serde_json::from_str(shipment.get()).map_err(|err| {
                ApiError::transient(format!("searchShipments: an unreadable shipment: {err}"))
            })?;
            let id = id.shipment_id.ok_or_else(|| {
                ApiError::permanent(
                    Refusal::Rejected,
                    "searchShipments listed a shipment without its id",
                )
            })?;
            documents.push(
                self.document(&id, format!(r#"{{"shipments":[{}]}}"#, shipment.get()))
                    .await?,
            );
        }
        let next = match (
            search.has_more,
            search.next_page_url.filter(|u| !u.is_empty()),
        ) {
            (true, Some(url)) => Some(format!("{index}|{url}")),
            _ if index + 1 < TYPES.len() => Some(format!("{}|", index + 1)),
            _ => None,
        };
        Ok(Page {
            documents,
            next,
            total: None,
        })
    }
}

/// What a Flipkart notification needs: every event but a `shipment_created` that carries
/// its order items with prices names only its shipment, to fetch.
pub fn completion(body: &[u8]) -> Completion {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Notification {
        shipment_id: Option<String>,
        event_type: Option<String>,
        attributes: Option<Attributes>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Attributes {
        #[serde(default)]
        order_items: Vec<serde_json::Value>,
    }
    let Ok(notification) = serde_json::from_slice::<Notification>(body) else {
        return Completion::Complete;
    };
    let whole = notification.event_type.as_deref() == Some("shipment_created")
        && notification.attributes.is_some_and(|a| {
            !a.order_items.is_empty()
                && a.order_items
                    .iter()
                    .all(|i| i.get("priceComponents").is_some())
        });
    match notification.shipment_id.filter(|id| !id.trim().is_empty()) {
        Some(id)
            if !whole
                && notification
                    .event_type
                    .as_deref()
                    .is_some_and(|e| e.starts_with("shipment_")) =>
        {
            Completion::Fetch(OrderRef {
                order_id: id.clone(),
                lookup: Some(id),
            })
        }
        _ => Completion::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_events_name_their_shipment_and_a_full_creation_needs_nothing() {
        let thin = br#"{"shipmentId":"d133588f","eventType":"shipment_packed","timestamp":"2025-03-28T18:03:01+05:30","attributes":{"status":"PACKED"}}"#;
        assert_eq!(
            completion(thin),
            Completion::Fetch(OrderRef {
                order_id: "d133588f".into(),
                lookup: Some("d133588f".into())
            })
        );
        let full = br#"{"shipmentId":"d1","eventType":"shipment_created","attributes":{"orderItems":[{"orderId":"OD1","priceComponents":{"sellingPrice":499}}]}}"#;
        assert_eq!(completion(full), Completion::Complete);
    }
}
