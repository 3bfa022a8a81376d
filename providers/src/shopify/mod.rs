//! Shopify: a shop's Admin GraphQL API, with the app's access token for that shop.
//!
//! - Auth: `X-Shopify-Access-Token: <token>` (an offline token of the app's installation on
//!   the shop). `POST https://<shop>.myshopify.com/admin/api/<version>/graphql.json` with
//!   `{"query", "variables"}`.
//! - Rate: calculated query cost, per app and shop. Every answer reports it in
//!   `extensions.cost`: `requestedQueryCost` (reserved before the query runs),
//!   `actualQueryCost` (charged; the difference is refunded) and `throttleStatus`
//!   (`maximumAvailable`, the bucket; `currentlyAvailable`; `restoreRate`, points a second:
//!   100 on Standard plans, 200 Advanced, 1,000 Plus). A query the bucket cannot cover is
//!   answered `THROTTLED` (HTTP 200 with `errors`, or 429) and costs nothing. One query may
//!   not ask for more than 1,000 points (`MAX_COST_EXCEEDED`).
//! - The client keeps the same bucket on its side: each query reserves its expected cost
//!   (the last `requestedQueryCost` of its kind) in the account's limiter and goes once the
//!   bucket holds it; the unused part is handed back when the answer says what it cost (all
//!   of it for a throttled query), the limiter takes the shop's restore rate and bucket from
//!   the answers (within `points_per_sec` and `bucket_points` when they are set), and ours
//!   is never fuller than the shop's `currentlyAvailable` (another process may spend it
//!   too). So a `THROTTLED` answer's retry waits exactly for the points it lacked.
//! - A query that would cost more than one may (`MAX_COST_EXCEEDED`) is asked again with half
//!   as many orders a page, then half as many lines an order.
//! - `orders(query: "created_at:>='…'")` lists by time (`updated_at` for polling), oldest
//!   first, cursor-paged. Without the `read_all_orders` scope Shopify shows only the last 60
//!   days of orders.
//!
//! Webhooks carry the whole order, so nothing is completed here; the API serves backfill,
//! polling and subscriptions (`webhookSubscriptionCreate` for `orders/create`,
//! `orders/updated`, `orders/cancelled` and `refunds/create`; Shopify signs deliveries with
//! the app's client secret, so there is no secret to hand back). The document (`api:order`)
//! is `{"order": <Order node>, "lineItems": [<further lineItems pages>…]}`, each part byte for
//! byte as Shopify answered it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField};
use crate::client::{ApiClient, ApiError, Limiter, Operation, Refusal, StaticHeader, Verdict};
use crate::Shared;

/// The document kind of a Shopify order.
pub const ORDER_DOCUMENT: &str = "api:order";

/// The most points one query may ask for.
const MAX_QUERY_COST: u32 = 1_000;

/// The webhook topics a subscription registers.
pub const TOPICS: [&str; 4] = [
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_CANCELLED",
    "REFUNDS_CREATE",
];

/// `[api.shopify]`: one shop's API settings. The account is the shop's `myshopify.com`
/// domain, as ingest reads it from `X-Shopify-Shop-Domain`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyApiConfig {
    /// The shop's `myshopify.com` domain; the account's name when not given.
    #[serde(default)]
    pub shop: Option<String>,
    /// Where the API is; `https://<shop>` when not given.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The Admin API version asked for.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// The app's access token for the shop.
    pub access_token: Secret,
    /// Points a second this process may spend. Unset: the shop's restore rate, learnt from
    /// its answers (100 until the first). Set: at most this, and less if the shop says so;
    /// give two processes on one shop half each.
    #[serde(default)]
    pub points_per_sec: Option<f64>,
    /// Points this process may spend at once; unset: the shop's bucket, learnt from its
    /// answers (1,000 until the first). Set: at most this.
    #[serde(default)]
    pub bucket_points: Option<u32>,
    /// Orders a page asks for (halved by itself if a page would cost too much).
    #[serde(default)]
    pub orders_per_page: Option<u32>,
    /// Line items asked for with each order; an order with more is completed with further
    /// queries.
    #[serde(default)]
    pub lines_per_page: Option<u32>,
}

fn default_api_version() -> String {
    "2025-10".into()
}

const MONEY: &str = "shopMoney { amount currencyCode }";

fn address_fields() -> String {
    "name firstName lastName company address1 address2 city province provinceCode zip \
     countryCodeV2 phone"
        .to_owned()
}

fn line_fields() -> String {
    format!(
        "nodes {{ id sku title name quantity originalUnitPriceSet {{ {MONEY} }} \
         totalDiscountSet {{ {MONEY} }} discountAllocations {{ allocatedAmountSet {{ {MONEY} }} }} \
         taxLines {{ priceSet {{ {MONEY} }} }} }} pageInfo {{ hasNextPage endCursor }}"
    )
}

/// What OrderBridge reads of an order.
fn order_fields() -> String {
    let address = address_fields();
    format!(
        "id legacyResourceId name email createdAt updatedAt cancelledAt cancelReason closedAt \
         currencyCode displayFinancialStatus displayFulfillmentStatus \
         totalPriceSet {{ {MONEY} }} currentTotalPriceSet {{ {MONEY} }} \
         currentSubtotalPriceSet {{ {MONEY} }} currentTotalTaxSet {{ {MONEY} }} \
         currentTotalDiscountsSet {{ {MONEY} }} totalShippingPriceSet {{ {MONEY} }} \
         customer {{ legacyResourceId email firstName lastName }} \
         shippingAddress {{ {address} }} billingAddress {{ {address} }} \
         lineItems(first: $linesFirst) {{ {} }}",
        line_fields()
    )
}

fn orders_query() -> String {
    format!(
        "query OrderBridgeOrders($first: Int!, $after: String, $query: String, \
         $sortKey: OrderSortKeys, $linesFirst: Int!) {{ orders(first: $first, after: $after, \
         query: $query, sortKey: $sortKey) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} \
         }} }}",
        order_fields()
    )
}

fn order_query() -> String {
    format!(
        "query OrderBridgeOrder($id: ID!, $linesFirst: Int!) {{ order(id: $id) {{ {} }} }}",
        order_fields()
    )
}

fn order_lines_query() -> String {
    format!(
        "query OrderBridgeOrderLines($id: ID!, $first: Int!, $after: String) {{ order(id: $id) \
         {{ lineItems(first: $first, after: $after) {{ {} }} }} }}",
        line_fields()
    )
}

const SUBSCRIPTIONS_QUERY: &str = "query OrderBridgeWebhookSubscriptions(\
     $topics: [WebhookSubscriptionTopic!]) { webhookSubscriptions(first: 100, topics: $topics) \
     { nodes { id topic uri } } }";

const SUBSCRIBE_MUTATION: &str = "mutation OrderBridgeWebhookSubscriptionCreate(\
     $topic: WebhookSubscriptionTopic!, $uri: String!) { webhookSubscriptionCreate(\
     topic: $topic, webhookSubscription: { uri: $uri, format: JSON }) { webhookSubscription \
     { id topic uri } userErrors { field message } } }";

/// `extensions.cost` of an answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    requested_query_cost: Option<f64>,
    actual_query_cost: Option<f64>,
    throttle_status: Option<ThrottleStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThrottleStatus {
    maximum_available: Option<f64>,
    currently_available: Option<f64>,
    restore_rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Debug, Deserialize)]
struct GraphqlError {
    message: Option<String>,
    extensions: Option<ErrorExtensions>,
}

#[derive(Debug, Deserialize)]
struct ErrorExtensions {
    code: Option<String>,
}

/// `errors` as Shopify sends them: GraphQL errors, or (a 401's) one message.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Errors {
    List(Vec<GraphqlError>),
    Other(serde::de::IgnoredAny),
}

/// An answer's envelope: `data` as text, `errors`, `extensions`.
#[derive(Debug, Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    errors: Option<Errors>,
    extensions: Option<Extensions>,
}

impl Answer<'_> {
    /// The GraphQL errors (none for an error that is not a list of them).
    fn errors(&self) -> &[GraphqlError] {
        match &self.errors {
            Some(Errors::List(errors)) => errors,
            Some(Errors::Other(_)) | None => &[],
        }
    }

    /// Whether it has errors of any shape.
    fn has_errors(&self) -> bool {
        match &self.errors {
            Some(Errors::List(errors)) => !errors.is_empty(),
            Some(Errors::Other(_)) => true,
            None => false,
        }
    }

    fn has_code(&self, code: &str) -> bool {
        self.errors().iter().any(|e| {
            e.extensions.as_ref().and_then(|x| x.code.as_deref()) == Some(code)
                || (code == "THROTTLED" && e.message.as_deref() == Some("Throttled"))
        })
    }

    fn cost(&self) -> Option<&Cost> {
        self.extensions.as_ref().and_then(|e| e.cost.as_ref())
    }
}

/// Points as whole units of the limiter (at least one).
fn points(value: f64) -> u32 {
    if value.is_finite() && value >= 1.0 {
        value.min(f64::from(u32::MAX)).ceil() as u32
    } else {
        1
    }
}

/// Reads `extensions.cost` into the limiter, for a query that reserved `reserved` points:
/// hands back what was not charged (all of it when the query was throttled or refused),
/// adopts the shop's restore rate and bucket, and makes ours hold no more than the shop's
/// `currentlyAvailable` (another process may spend it too). The limiter then holds the next
/// query until the bucket has its cost. Returns, for a throttled query, that wait.
fn observe_cost(body: &[u8], reserved: u32, limiter: &Limiter) -> Option<Duration> {
    let answer: Answer<'_> = serde_json::from_slice(body).ok()?;
    let cost = answer.cost()?;
    let charged = cost
        .actual_query_cost
        .filter(|c| c.is_finite() && *c > 0.0)
        .map_or(0, points);
    if charged < reserved {
        limiter.refund(reserved - charged);
    }
    let status = cost.throttle_status.as_ref()?;
    if let Some(rate) = status.restore_rate.filter(|r| r.is_finite() && *r > 0.0) {
        limiter.set_rate(rate);
    }
    if let Some(maximum) = status.maximum_available {
        limiter.set_burst(points(maximum));
    }
    let available = status.currently_available?;
    limiter.observe_level(available);
    if !answer.has_code("THROTTLED") {
        return None;
    }
    let deficit = (cost.requested_query_cost.unwrap_or(0.0) - available).max(0.0);
    let wait = deficit / limiter.rate_per_sec();
    Some(Duration::from_secs_f64(if wait.is_finite() {
        wait.min(3_600.0)
    } else {
        60.0
    }))
}

/// What an answer with status 200 means when it carries GraphQL errors.
fn classify(status: u16, body: &[u8]) -> Option<Verdict> {
    let answer: Answer<'_> = serde_json::from_slice(body).ok()?;
    if answer.has_code("THROTTLED") {
        return Some(Verdict::Throttled);
    }
    if status != 200 {
        return None;
    }
    if answer.has_code("ACCESS_DENIED") {
        return Some(Verdict::Refused(Refusal::Forbidden));
    }
    if answer.has_code("INTERNAL_SERVER_ERROR") {
        return Some(Verdict::Transient);
    }
    None
}

/// The numeric id of a Shopify GID (`gid://shopify/Order/450789469` → `450789469`).
fn gid_tail(gid: &str) -> &str {
    gid.rsplit('/').next().unwrap_or(gid)
}

/// One query's expected cost, learnt from its last answer.
#[derive(Debug)]
struct Estimate(AtomicU32);

impl Estimate {
    fn new(points: u32) -> Self {
        Self(AtomicU32::new(points))
    }

    fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, points: u32) {
        self.0.store(points, Ordering::Relaxed);
    }
}

/// One shop's orders.
pub struct ShopifyApi {
    client: ApiClient,
    auth: StaticHeader,
    endpoint: String,
    orders_per_page: AtomicU32,
    lines_per_page: AtomicU32,
    orders_cost: Estimate,
    order_cost: Estimate,
    lines_cost: Estimate,
    other_cost: Estimate,
}

/// Why a query gave no data.
enum QueryError {
    /// The query would cost more than one query may.
    TooCostly(String),
    /// Anything else.
    Api(ApiError),
}

impl From<ApiError> for QueryError {
    fn from(err: ApiError) -> Self {
        QueryError::Api(err)
    }
}

impl QueryError {
    fn into_api(self) -> ApiError {
        match self {
            QueryError::TooCostly(message) => ApiError::permanent(Refusal::Rejected, message),
            QueryError::Api(err) => err,
        }
    }
}

impl ShopifyApi {
    /// The client for shop `account`.
    ///
    /// # Errors
    /// When the token cannot be sent as a header.
    pub fn new(
        shared: &Shared,
        account: &str,
        config: &ShopifyApiConfig,
    ) -> Result<Self, ApiError> {
        let shop = config.shop.clone().unwrap_or_else(|| account.to_owned());
        let base = config
            .base_url
            .clone()
            .unwrap_or_else(|| format!("https://{shop}"));
        let rate = config.points_per_sec.unwrap_or(100.0);
        let bucket = config.bucket_points.unwrap_or(1_000);
        let limiter = shared.limiter(&format!("shopify/{shop}"), rate, bucket);
        if config.points_per_sec.is_some() || config.bucket_points.is_some() {
            // This process's share: the shop's word may lower it, never raise it.
            limiter.set_ceiling(rate, bucket);
        }
        let client = shared.client("shopify", limiter);
        let orders_per_page = config.orders_per_page.unwrap_or(25).clamp(1, 250);
        let lines_per_page = config.lines_per_page.unwrap_or(10).clamp(1, 250);
        // A first guess of what the queries cost, until the first answer says.
        let order_guess = 20 + 6 * lines_per_page;
        Ok(Self {
            client,
            auth: StaticHeader::new("x-shopify-access-token", config.access_token.expose())?,
            endpoint: format!(
                "{}/admin/api/{}/graphql.json",
                base.trim_end_matches('/'),
                crate::sumeru::urlencode(&config.api_version)
            ),
            orders_per_page: AtomicU32::new(orders_per_page),
            lines_per_page: AtomicU32::new(lines_per_page),
            orders_cost: Estimate::new((2 + orders_per_page * order_guess).min(MAX_QUERY_COST)),
            order_cost: Estimate::new(order_guess.min(MAX_QUERY_COST)),
            lines_cost: Estimate::new((3 + 6 * lines_per_page).min(MAX_QUERY_COST)),
            other_cost: Estimate::new(10),
        })
    }

    /// Line items asked for with each order.
    fn lines(&self) -> u32 {
        self.lines_per_page.load(Ordering::Relaxed)
    }

    /// A page cost more than a query may: half as many orders a page from now on; `false`
    /// when a page is one order already.
    fn fewer_orders(&self, message: &str) -> bool {
        let first = self.orders_per_page.load(Ordering::Relaxed);
        if first <= 1 {
            return false;
        }
        let fewer = (first / 2).max(1);
        tracing::warn!(first, fewer, %message, "a page of Shopify orders costs too much; asking for fewer");
        self.orders_per_page.store(fewer, Ordering::Relaxed);
        self.orders_cost.set(self.orders_cost.get().div_ceil(2));
        true
    }

    /// A query cost more than a query may with this many lines an order: half as many from
    /// now on; `false` when it asks for one already.
    fn fewer_lines(&self, message: &str) -> bool {
        let lines = self.lines();
        if lines <= 1 {
            return false;
        }
        let fewer = (lines / 2).max(1);
        tracing::warn!(lines, fewer, %message, "Shopify line items cost too much a query; asking for fewer");
        self.lines_per_page.store(fewer, Ordering::Relaxed);
        for estimate in [&self.orders_cost, &self.order_cost, &self.lines_cost] {
            estimate.set(estimate.get().div_ceil(2));
        }
        true
    }

    /// Runs `query` with `variables`; the answer, whose `data` is there and error-free.
    async fn query(
        &self,
        name: &'static str,
        estimate: &Estimate,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<crate::client::Reply, QueryError> {
        let units = estimate.get().clamp(1, MAX_QUERY_COST);
        let body = serde_json::json!({ "query": query, "variables": variables });
        let reply = self
            .client
            .call(
                Operation::named(name)
                    .costing(units)
                    .observing_body(observe_cost)
                    .classifying(classify),
                &self.auth,
                |http| {
                    http.post(&self.endpoint)
                        .header(reqwest::header::ACCEPT, "application/json")
                        .json(&body)
                },
            )
            .await?;
        let answer: Answer<'_> = reply.json(name)?;
        // The next query of this kind reserves what this one asked for (what was not
        // charged went back to the bucket as the answer came in: `observe_cost`).
        if let Some(requested) = answer.cost().and_then(|c| c.requested_query_cost) {
            estimate.set(points(requested));
        }
        if answer.has_code("MAX_COST_EXCEEDED") {
            return Err(QueryError::TooCostly(format!(
                "{name}: {}",
                crate::client::provider_message(&reply.body)
            )));
        }
        if answer.data.is_none_or(|d| d.get() == "null") || answer.has_errors() {
            let message = crate::client::provider_message(&reply.body);
            return Err(QueryError::Api(ApiError::permanent(
                Refusal::Rejected,
                format!("{name}: {message}"),
            )));
        }
        Ok(reply)
    }

    /// The document of one order node (its text), with every further page of its lines.
    async fn document(&self, node: &str) -> Result<Document, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Keys {
            id: Option<String>,
            legacy_resource_id: Option<crate::Id>,
            updated_at: Option<String>,
            line_items: Option<Lines>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Lines {
            page_info: Option<PageInfo>,
        }
        let keys: Keys = serde_json::from_str(node).map_err(|err| {
            ApiError::transient(format!("an order Shopify sent is unreadable: {err}"))
        })?;
        let order_id = keys
            .legacy_resource_id
            .map(|id| id.to_string())
            .or_else(|| keys.id.as_deref().map(|gid| gid_tail(gid).to_owned()))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ApiError::permanent(Refusal::Rejected, "Shopify sent an order without an id")
            })?;
        let gid = keys
            .id
            .clone()
            .unwrap_or_else(|| format!("gid://shopify/Order/{order_id}"));
        let mut pages = Vec::new();
        let mut next = keys
            .line_items
            .and_then(|l| l.page_info)
            .filter(|p| p.has_next_page)
            .and_then(|p| p.end_cursor);
        while let Some(after) = next.take() {
            let (page, info) = self.line_page(&gid, &after).await?;
            pages.push(page);
            next = info.filter(|p| p.has_next_page).and_then(|p| p.end_cursor);
            if pages.len() > 1_000 {
                return Err(ApiError::permanent(
                    Refusal::Rejected,
                    format!("order {order_id}: more than 1,000 pages of line items"),
                ));
            }
        }
        Ok(Document {
            order_id,
            kind: ORDER_DOCUMENT.into(),
            body: format!(r#"{{"order":{node},"lineItems":[{}]}}"#, pages.join(",")).into_bytes(),
            updated_at: keys
                .updated_at
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }

    /// One further page of an order's lines: the connection's text and where the next starts.
    async fn line_page(
        &self,
        gid: &str,
        after: &str,
    ) -> Result<(String, Option<PageInfo>), ApiError> {
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(borrow)]
            order: Option<OrderLines<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct OrderLines<'a> {
            #[serde(borrow)]
            line_items: &'a RawValue,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Connection {
            page_info: Option<PageInfo>,
        }
        let text = order_lines_query();
        let reply = loop {
            let first = self.lines();
            let variables = serde_json::json!({ "id": gid, "first": first, "after": after });
            match self
                .query("orderLineItems", &self.lines_cost, &text, variables)
                .await
            {
                Ok(reply) => break reply,
                Err(QueryError::TooCostly(message)) if self.fewer_lines(&message) => {}
                Err(err) => return Err(err.into_api()),
            }
        };
        let answer: Answer<'_> = reply.json("orderLineItems")?;
        let data: Data<'_> = parse_data(&answer, "orderLineItems")?;
        let lines = data
            .order
            .ok_or_else(|| ApiError::permanent(Refusal::NotFound, format!("order {gid} is gone")))?
            .line_items;
        let connection: Connection = serde_json::from_str(lines.get())
            .map_err(|err| ApiError::transient(format!("orderLineItems: {err}")))?;
        Ok((lines.get().to_owned(), connection.page_info))
    }

    /// Registers `request.url` for the order topics ([`TOPICS`]); topics already sent there
    /// are left as they are.
    ///
    /// # Errors
    /// What the API answered, with Shopify's `userErrors`.
    pub(crate) async fn subscribe(
        &self,
        request: &crate::subscribe::Request,
    ) -> Result<crate::subscribe::Subscribed, crate::subscribe::SubscribeError> {
        use crate::subscribe::{Subscribed, TestOutcome};
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Listed {
            webhook_subscriptions: Nodes,
        }
        #[derive(Deserialize)]
        struct Nodes {
            nodes: Vec<Subscription>,
        }
        #[derive(Deserialize)]
        struct Subscription {
            id: String,
            topic: String,
            uri: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            webhook_subscription_create: Payload,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Payload {
            webhook_subscription: Option<Subscription>,
            #[serde(default)]
            user_errors: Vec<UserError>,
        }
        #[derive(Deserialize)]
        struct UserError {
            message: String,
        }
        let reply = self
            .query(
                "webhookSubscriptions",
                &self.other_cost,
                SUBSCRIPTIONS_QUERY,
                serde_json::json!({ "topics": TOPICS }),
            )
            .await
            .map_err(QueryError::into_api)?;
        let answer: Answer<'_> = reply.json("webhookSubscriptions")?;
        let listed: Listed = parse_data(&answer, "webhookSubscriptions")?;
        let mut ids = Vec::new();
        let mut made = 0;
        for topic in TOPICS {
            let found = listed
                .webhook_subscriptions
                .nodes
                .iter()
                .find(|s| s.topic == topic && s.uri.as_deref() == Some(request.url.as_str()));
            if let Some(found) = found {
                ids.push(found.id.clone());
                continue;
            }
            let reply = self
                .query(
                    "webhookSubscriptionCreate",
                    &self.other_cost,
                    SUBSCRIBE_MUTATION,
                    serde_json::json!({ "topic": topic, "uri": request.url }),
                )
                .await
                .map_err(QueryError::into_api)?;
            let answer: Answer<'_> = reply.json("webhookSubscriptionCreate")?;
            let created: Created = parse_data(&answer, "webhookSubscriptionCreate")?;
            let payload = created.webhook_subscription_create;
            match payload.webhook_subscription {
                Some(subscription) if payload.user_errors.is_empty() => {
                    ids.push(subscription.id);
                    made += 1;
                }
                Some(_) | None => {
                    let messages: Vec<String> =
                        payload.user_errors.into_iter().map(|e| e.message).collect();
                    return Err(ApiError::permanent(
                        Refusal::Rejected,
                        format!(
                            "webhookSubscriptionCreate {topic}: {}",
                            if messages.is_empty() {
                                "no subscription came back".to_owned()
                            } else {
                                messages.join("; ")
                            }
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(Subscribed {
            id: ids.join(", "),
            secret: None,
            existing: made == 0,
            test: request.test.then(|| {
                TestOutcome::Unavailable(
                    "Shopify's API has no test delivery: `shopify app webhook trigger --topic \
                     orders/create --address <url>` (Shopify CLI) sends one, or place a test \
                     order in the shop"
                        .into(),
                )
            }),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    #[serde(default)]
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// `data` of an answer as `T`.
fn parse_data<'a, T: Deserialize<'a>>(answer: &Answer<'a>, name: &str) -> Result<T, ApiError> {
    let data = answer
        .data
        .ok_or_else(|| ApiError::transient(format!("{name}: an answer without data")))?;
    serde_json::from_str(data.get())
        .map_err(|err| ApiError::transient(format!("{name}: unreadable answer: {err}")))
}

/// Shopify's search syntax for a time window of `field`.
fn search(query: &ListQuery) -> String {
    let field = match query.field {
        TimeField::Created => "created_at",
        TimeField::Updated => "updated_at",
    };
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut search = format!("{field}:>='{}'", at(query.from));
    if let Some(to) = query.to {
        search.push_str(&format!(" AND {field}:<'{}'", at(to)));
    }
    search
}

#[async_trait]
impl OrderApi for ShopifyApi {
    fn source(&self) -> Source {
        Source::Shopify
    }

    async fn fetch_order(&self, order: &OrderRef) -> Result<Document, ApiError> {
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(borrow)]
            order: Option<&'a RawValue>,
        }
        let id = order.lookup.as_deref().unwrap_or(&order.order_id);
        let gid = if id.starts_with("gid://") {
            id.to_owned()
        } else {
            format!("gid://shopify/Order/{id}")
        };
        let text = order_query();
        let reply = loop {
            let variables = serde_json::json!({ "id": gid, "linesFirst": self.lines() });
            match self
                .query("order", &self.order_cost, &text, variables)
                .await
            {
                Ok(reply) => break reply,
                Err(QueryError::TooCostly(message)) if self.fewer_lines(&message) => {}
                Err(err) => return Err(err.into_api()),
            }
        };
        let answer: Answer<'_> = reply.json("order")?;
        let data: Data<'_> = parse_data(&answer, "order")?;
        let node = data.order.filter(|n| n.get() != "null").ok_or_else(|| {
            ApiError::permanent(
                Refusal::NotFound,
                format!("order {id}: Shopify has no such order in this shop"),
            )
        })?;
        self.document(node.get()).await
    }

    async fn list_orders(&self, query: &ListQuery, cursor: Option<&str>) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(borrow)]
            orders: Connection<'a>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Connection<'a> {
            #[serde(borrow)]
            nodes: Vec<&'a RawValue>,
            page_info: Option<PageInfo>,
        }
        let sort = match query.field {
            TimeField::Created => "CREATED_AT",
            TimeField::Updated => "UPDATED_AT",
        };
        if cursor.is_none() && query.from < Utc::now() - chrono::Duration::days(60) {
            tracing::warn!(
                from = %query.from,
                "Shopify shows orders older than 60 days only to apps with the read_all_orders \
                 scope; without it this listing ends at 60 days ago"
            );
        }
        let text = orders_query();
        let reply = loop {
            let variables = serde_json::json!({
                "first": self.orders_per_page.load(Ordering::Relaxed),
                "after": cursor,
                "query": search(query),
                "sortKey": sort,
                "linesFirst": self.lines(),
            });
            match self
                .query("orders", &self.orders_cost, &text, variables)
                .await
            {
                Ok(reply) => break reply,
                // Fewer orders a page, then fewer lines an order: the cursor stays good.
                Err(QueryError::TooCostly(message))
                    if self.fewer_orders(&message) || self.fewer_lines(&message) => {}
                Err(err) => return Err(err.into_api()),
            }
        };
        let answer: Answer<'_> = reply.json("orders")?;
        let data: Data<'_> = parse_data(&answer, "orders")?;
        let mut documents = Vec::with_capacity(data.orders.nodes.len());
        for node in data.orders.nodes {
            documents.push(self.document(node.get()).await?);
        }
        let next = data
            .orders
            .page_info
            .filter(|p| p.has_next_page)
            .and_then(|p| p.end_cursor);
        Ok(Page {
            documents,
            next,
            total: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn throttled(requested: f64, available: f64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available,
                    "restoreRate": 100.0}}}
        }))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_query_is_retried_exactly_when_the_bucket_holds_its_cost() {
        let limiter = Limiter::new("shopify/test", 50.0, 1_000);
        let start = tokio::time::Instant::now();
        // As the client does: reserve, send, read the answer into the limiter.
        limiter.acquire(500).await;
        let wait = observe_cost(&throttled(500.0, 300.0), 500, &limiter);
        assert_eq!(
            classify(200, &throttled(500.0, 300.0)),
            Some(Verdict::Throttled)
        );
        // 200 points short at the shop's 100 a second (adopted from the answer).
        assert_eq!(wait, Some(Duration::from_secs(2)));
        assert!((limiter.rate_per_sec() - 100.0).abs() < 1e-9);
        limiter.acquire(500).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_showing_a_low_bucket_holds_the_next_query_until_it_refills() {
        let limiter = Limiter::new("shopify/test", 100.0, 1_000);
        let body = serde_json::to_vec(&serde_json::json!({
            "data": {"orders": {"nodes": []}},
            "extensions": {"cost": {"requestedQueryCost": 400.0, "actualQueryCost": 10.0,
                "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 100.0,
                    "restoreRate": 100.0}}}
        }))
        .unwrap();
        let start = tokio::time::Instant::now();
        limiter.acquire(400).await;
        // Charged 10 of 400, yet the shop has only 100 left: someone else spends it too.
        assert_eq!(observe_cost(&body, 400, &limiter), None);
        limiter.acquire(400).await;
        // 300 points short at 100 a second; the refund did not undo it.
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn errors_are_read_as_shopify_means_them() {
        let denied = br#"{"errors":[{"message":"Access denied for orders field.","extensions":{"code":"ACCESS_DENIED"}}]}"#;
        assert_eq!(
            classify(200, denied),
            Some(Verdict::Refused(Refusal::Forbidden))
        );
        let plain = br#"{"data":{"order":null},"extensions":{}}"#;
        assert_eq!(classify(200, plain), None);
        assert_eq!(classify(200, b"not json"), None);
        assert_eq!(gid_tail("gid://shopify/Order/450789469"), "450789469");
        assert_eq!(gid_tail("450789469"), "450789469");
    }

    #[test]
    fn a_window_is_shopifys_search_syntax() {
        let from = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let to = DateTime::parse_from_rfc3339("2025-02-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let query = ListQuery {
            field: TimeField::Created,
            from,
            to: Some(to),
        };
        assert_eq!(
            search(&query),
            "created_at:>='2025-01-01T00:00:00Z' AND created_at:<'2025-02-01T00:00:00Z'"
        );
        let query = ListQuery {
            field: TimeField::Updated,
            from,
            to: None,
        };
        assert_eq!(search(&query), "updated_at:>='2025-01-01T00:00:00Z'");
    }

    #[test]
    fn points_are_whole_and_never_zero() {
        assert_eq!(points(0.0), 1);
        assert_eq!(points(f64::NAN), 1);
        assert_eq!(points(12.2), 13);
        assert_eq!(points(1e12), u32::MAX);
    }
}
