//! A Shopify Admin GraphQL simulator for the operations OrderBridge sends, following Shopify's
//! documented contract.
//!
//! - `POST /admin/api/{version}/graphql.json` with `{"query", "variables"}`; auth is
//!   `X-Shopify-Access-Token`; a missing or wrong one is 401
//!   `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`.
//! - The operation is recognised by its name in the query (`OrderBridgeOrders`,
//!   `OrderBridgeOrder`, `OrderBridgeOrderLines`, `OrderBridgeWebhookSubscriptions`,
//!   `OrderBridgeWebhookSubscriptionCreate`); anything else is a GraphQL error, as a query
//!   Shopify cannot parse is.
//! - Calculated query cost, as Shopify charges it: a connection costs 2 plus `first` times
//!   its node, an object 1, a mutation 10. The requested cost is reserved from the bucket
//!   before the query runs; what the answer really held (the actual cost) is charged and the
//!   rest refunded. A request over 1,000 points is `MAX_COST_EXCEEDED`; one the bucket cannot
//!   cover is `THROTTLED` (HTTP 200, `errors`, `actualQueryCost: null`) and costs nothing.
//!   Every answer carries `extensions.cost` with `throttleStatus`.
//! - `orders(first, after, query, sortKey)`: `query` in Shopify's search syntax for
//!   `created_at` / `updated_at` with `>=`, `>`, `<`, `<=` and quoted times, joined by `AND`;
//!   `sortKey` `CREATED_AT` or `UPDATED_AT` (ties by id); opaque cursors. `order(id)` is
//!   `null` for an order the shop does not have.
//! - `webhookSubscriptionCreate(topic, webhookSubscription: {uri, format})`: the same topic and
//!   address twice is a user error ("Address for this topic has already been taken"), as is
//!   an address that is not https.
//! - Maintenance (503) and injected 500s from the core.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::core::Core;

pub const ACCESS_TOKEN: &str = "shpat_sim_0123456789abcdef";
pub const SHOP: &str = "example-store.myshopify.com";
const MAX_COST: f64 = 1_000.0;

/// One line of an order.
#[derive(Debug, Clone)]
pub struct Line {
    pub id: u64,
    pub sku: String,
    pub title: String,
    pub quantity: i64,
    pub price: String,
}

/// One order of the shop.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub total: String,
    pub lines: Vec<Line>,
}

/// The shop's points bucket.
#[derive(Debug)]
struct Points {
    maximum: f64,
    available: f64,
    restore: f64,
    last: Instant,
}

impl Points {
    fn refill(&mut self) {
        let now = Instant::now();
        self.available = (self.available
            + now.duration_since(self.last).as_secs_f64() * self.restore)
            .min(self.maximum);
        self.last = now;
    }

    fn status(&self) -> Value {
        json!({
            "maximumAvailable": self.maximum,
            "currentlyAvailable": self.available.floor(),
            "restoreRate": self.restore,
        })
    }
}

/// What a test reads: points charged and throttles, besides the core's counts.
#[derive(Debug, Default)]
pub struct Spent {
    pub points: AtomicU64,
    pub throttled: AtomicU64,
    pub too_costly: AtomicU64,
    pub queries: AtomicU64,
}

struct Shop {
    orders: Vec<Order>,
    subscriptions: Vec<Value>,
    made: u64,
}

#[derive(Clone)]
pub struct ShopifySim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    pub spent: Arc<Spent>,
    shop: Arc<Mutex<Shop>>,
    points: Arc<Mutex<Points>>,
}

type Shared = (Arc<Core>, Arc<Mutex<Shop>>, Arc<Mutex<Points>>, Arc<Spent>);

impl ShopifySim {
    /// A shop whose bucket holds `maximum` points and refills `restore` a second.
    pub async fn start(restore: f64, maximum: f64) -> Self {
        // Shopify's GraphQL API limits by cost, not by requests: the core's request bucket
        // is never the limit here.
        let core = Arc::new(Core::new(1e9, u32::MAX));
        let shop = Arc::new(Mutex::new(Shop {
            orders: Vec::new(),
            subscriptions: Vec::new(),
            made: 0,
        }));
        let points = Arc::new(Mutex::new(Points {
            maximum,
            available: maximum,
            restore,
            last: Instant::now(),
        }));
        let spent = Arc::new(Spent::default());
        let app = Router::new()
            .route("/admin/api/{version}/graphql.json", post(graphql))
            .with_state((
                Arc::clone(&core),
                Arc::clone(&shop),
                Arc::clone(&points),
                Arc::clone(&spent),
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            core,
            spent,
            shop,
            points,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds `count` orders from id `first`, one every `step` from `from`; order `n` has
    /// `n % 3 + 1` lines.
    pub fn seed(&self, first: u64, count: usize, from: DateTime<Utc>, step: Duration) {
        let mut shop = self.shop.lock().unwrap();
        for i in 0..count {
            let id = first + i as u64;
            let at = from + chrono::Duration::from_std(step * i as u32).unwrap();
            let lines = (id % 3 + 1) as usize;
            shop.orders.push(order(id, at, lines));
        }
    }

    /// Adds one order with `lines` lines.
    pub fn put(&self, order: Order) {
        self.shop.lock().unwrap().orders.push(order);
    }

    /// The webhook subscriptions made.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.shop.lock().unwrap().subscriptions.clone()
    }

    /// The bucket's restore rate.
    pub fn restore_rate(&self) -> f64 {
        self.points.lock().unwrap().restore
    }

    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// Order `id`, placed at `at`, with `lines` lines of 12.50 each (quantity = line number).
pub fn order(id: u64, at: DateTime<Utc>, lines: usize) -> Order {
    let lines: Vec<Line> = (1..=lines)
        .map(|n| Line {
            id: id * 1000 + n as u64,
            sku: format!("SKU-{n}"),
            title: format!("Item {n}"),
            quantity: n as i64,
            price: "12.50".into(),
        })
        .collect();
    let units: i64 = lines.iter().map(|l| l.quantity).sum();
    Order {
        id,
        name: format!("#{}", 1000 + id),
        email: format!("buyer{id}@example.com"),
        created_at: at,
        updated_at: at,
        total: format!("{:.2}", units as f64 * 12.5),
        lines,
    }
}

fn money(amount: &str) -> Value {
    json!({"shopMoney": {"amount": amount, "currencyCode": "USD"}})
}

fn line_node(line: &Line) -> Value {
    json!({
        "id": format!("gid://shopify/LineItem/{}", line.id),
        "sku": line.sku,
        "title": line.title,
        "name": line.title,
        "quantity": line.quantity,
        "originalUnitPriceSet": money(&line.price),
        "totalDiscountSet": money("0.00"),
        "discountAllocations": [],
        "taxLines": [],
    })
}

/// A page of an order's lines: the connection and the lines it held.
fn line_page(order: &Order, first: usize, after: Option<usize>) -> (Value, usize) {
    let start = after.map_or(0, |a| a + 1);
    let page: Vec<&Line> = order.lines.iter().skip(start).take(first).collect();
    let end = start + page.len();
    let connection = json!({
        "nodes": page.iter().map(|l| line_node(l)).collect::<Vec<_>>(),
        "pageInfo": {
            "hasNextPage": end < order.lines.len(),
            "endCursor": (!page.is_empty()).then(|| cursor(end - 1)),
        },
    });
    (connection, page.len())
}

fn order_node(order: &Order, lines_first: usize) -> (Value, usize) {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (lines, held) = line_page(order, lines_first, None);
    let node = json!({
        "id": format!("gid://shopify/Order/{}", order.id),
        "legacyResourceId": order.id.to_string(),
        "name": order.name,
        "email": order.email,
        "createdAt": at(order.created_at),
        "updatedAt": at(order.updated_at),
        "cancelledAt": null,
        "cancelReason": null,
        "closedAt": null,
        "currencyCode": "USD",
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED",
        "totalPriceSet": money(&order.total),
        "currentTotalPriceSet": money(&order.total),
        "currentSubtotalPriceSet": money(&order.total),
        "currentTotalTaxSet": money("0.00"),
        "currentTotalDiscountsSet": money("0.00"),
        "totalShippingPriceSet": money("0.00"),
        "customer": {"legacyResourceId": (order.id + 500_000).to_string(), "email": order.email,
            "firstName": "Bob", "lastName": "Norman"},
        "shippingAddress": null,
        "billingAddress": null,
        "lineItems": lines,
    });
    (node, held)
}

fn cursor(position: usize) -> String {
    hex::encode(format!("position:{position}"))
}

fn position(cursor: &str) -> Option<usize> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    text.strip_prefix("position:")?.parse().ok()
}

/// What a node of an order costs: itself, six money bags, the customer, and its lines.
fn order_cost(lines: usize) -> f64 {
    10.0 + 2.0 + 4.0 * lines as f64
}

fn graphql_error(message: &str, code: &str) -> Value {
    json!({"errors": [{"message": message, "extensions": {"code": code}}]})
}

fn answer(mut body: Value, requested: f64, actual: Option<f64>, points: &Points) -> Response {
    body["extensions"] = json!({"cost": {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": points.status(),
    }});
    (StatusCode::OK, Json(body)).into_response()
}

async fn graphql(
    State((core, shop, points, spent)): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    if let Err(refused) = core.gate(|_| StatusCode::TOO_MANY_REQUESTS.into_response()) {
        return refused;
    }
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    if token != Some(ACCESS_TOKEN) {
        core.counts.unauthorized.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})),
        )
            .into_response();
    }
    let query = request["query"].as_str().unwrap_or_default().to_owned();
    let vars = request["variables"].clone();
    let operation = [
        "OrderBridgeOrders(",
        "OrderBridgeOrderLines(",
        "OrderBridgeOrder(",
        "OrderBridgeWebhookSubscriptions(",
        "OrderBridgeWebhookSubscriptionCreate(",
    ]
    .into_iter()
    .find(|name| query.contains(name));
    let int = |name: &str| vars[name].as_u64().unwrap_or(0) as usize;
    let requested = match operation {
        Some("OrderBridgeOrders(") => 2.0 + int("first") as f64 * order_cost(int("linesFirst")),
        Some("OrderBridgeOrder(") => order_cost(int("linesFirst")),
        Some("OrderBridgeOrderLines(") => 1.0 + 2.0 + 4.0 * int("first") as f64,
        Some("OrderBridgeWebhookSubscriptions(") => 2.0 + 100.0,
        Some(_) => 10.0,
        None => {
            core.served();
            return (
                StatusCode::OK,
                Json(graphql_error(
                    "Parse error: the simulator does not know this operation",
                    "undefinedOperation",
                )),
            )
                .into_response();
        }
    };
    spent.queries.fetch_add(1, Ordering::SeqCst);
    let mut points = points.lock().unwrap();
    points.refill();
    if requested > MAX_COST {
        spent.too_costly.fetch_add(1, Ordering::SeqCst);
        core.served();
        let body = json!({"errors": [{
            "message": format!("Query cost is {requested}, which exceeds the single query max cost limit ({MAX_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"),
            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_COST},
        }]});
        return answer(body, requested, None, &points);
    }
    if points.available < requested {
        spent.throttled.fetch_add(1, Ordering::SeqCst);
        core.counts.throttled.fetch_add(1, Ordering::SeqCst);
        let mut body = graphql_error("Throttled", "THROTTLED");
        body["errors"][0]["extensions"]["documentation"] =
            json!("https://shopify.dev/api/usage/rate-limits");
        return answer(body, requested, None, &points);
    }
    points.available -= requested;
    let mut shop = shop.lock().unwrap();
    let (body, actual) = match operation {
        Some("OrderBridgeOrders(") => orders(&shop, &vars),
        Some("OrderBridgeOrder(") => one(&shop, &vars),
        Some("OrderBridgeOrderLines(") => lines(&shop, &vars),
        Some("OrderBridgeWebhookSubscriptions(") => {
            let topics: Vec<String> = vars["topics"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let nodes: Vec<Value> = shop
                .subscriptions
                .iter()
                .filter(|s| {
                    topics.is_empty() || topics.iter().any(|t| s["topic"].as_str() == Some(t))
                })
                .cloned()
                .collect();
            let actual = 2.0 + nodes.len() as f64;
            (
                json!({"data": {"webhookSubscriptions": {"nodes": nodes}}}),
                actual,
            )
        }
        Some(_) => (create_subscription(&mut shop, &vars), 10.0),
        None => unreachable!(),
    };
    points.available = (points.available + requested - actual).min(points.maximum);
    spent.points.fetch_add(actual as u64, Ordering::SeqCst);
    core.served();
    answer(body, requested, Some(actual), &points)
}

/// A search term: `field:>='time'`.
fn matches(order: &Order, search: &str) -> bool {
    search.split(" AND ").all(|term| {
        let term = term.trim();
        let Some((field, rest)) = term.split_once(':') else {
            return true;
        };
        let value = match field {
            "created_at" => order.created_at,
            "updated_at" => order.updated_at,
            _ => return true, // Shopify ignores what it cannot search by
        };
        let (op, time) = [">=", "<=", ">", "<"]
            .into_iter()
            .find_map(|op| rest.strip_prefix(op).map(|t| (op, t)))
            .unwrap_or(("=", rest));
        let Ok(time) = DateTime::parse_from_rfc3339(time.trim_matches('\'')) else {
            return true;
        };
        let time = time.with_timezone(&Utc);
        match op {
            ">=" => value >= time,
            "<=" => value <= time,
            ">" => value > time,
            "<" => value < time,
            _ => value == time,
        }
    })
}

fn orders(shop: &Shop, vars: &Value) -> (Value, f64) {
    let first = vars["first"].as_u64().unwrap_or(0) as usize;
    let lines_first = vars["linesFirst"].as_u64().unwrap_or(0) as usize;
    let search = vars["query"].as_str().unwrap_or_default();
    let mut found: Vec<&Order> = shop.orders.iter().filter(|o| matches(o, search)).collect();
    match vars["sortKey"].as_str() {
        Some("UPDATED_AT") => found.sort_by_key(|o| (o.updated_at, o.id)),
        _ => found.sort_by_key(|o| (o.created_at, o.id)),
    }
    let start = vars["after"]
        .as_str()
        .and_then(position)
        .map_or(0, |p| p + 1);
    let page: Vec<&Order> = found.iter().skip(start).take(first).copied().collect();
    let end = start + page.len();
    let mut actual = 2.0;
    let nodes: Vec<Value> = page
        .iter()
        .map(|o| {
            let (node, held) = order_node(o, lines_first);
            actual += order_cost(held);
            node
        })
        .collect();
    (
        json!({"data": {"orders": {
            "nodes": nodes,
            "pageInfo": {"hasNextPage": end < found.len(), "endCursor": (!page.is_empty()).then(|| cursor(end - 1))},
        }}}),
        actual,
    )
}

fn find<'a>(shop: &'a Shop, vars: &Value) -> Option<&'a Order> {
    let id: u64 = vars["id"]
        .as_str()?
        .strip_prefix("gid://shopify/Order/")?
        .parse()
        .ok()?;
    shop.orders.iter().find(|o| o.id == id)
}

fn one(shop: &Shop, vars: &Value) -> (Value, f64) {
    match find(shop, vars) {
        Some(order) => {
            let (node, held) = order_node(order, vars["linesFirst"].as_u64().unwrap_or(0) as usize);
            (json!({"data": {"order": node}}), order_cost(held))
        }
        None => (json!({"data": {"order": null}}), 1.0),
    }
}

fn lines(shop: &Shop, vars: &Value) -> (Value, f64) {
    match find(shop, vars) {
        Some(order) => {
            let first = vars["first"].as_u64().unwrap_or(0) as usize;
            let after = vars["after"].as_str().and_then(position);
            let (connection, held) = line_page(order, first, after);
            (
                json!({"data": {"order": {"lineItems": connection}}}),
                3.0 + 4.0 * held as f64,
            )
        }
        None => (json!({"data": {"order": null}}), 1.0),
    }
}

fn create_subscription(shop: &mut Shop, vars: &Value) -> Value {
    const TOPICS: [&str; 6] = [
        "ORDERS_CREATE",
        "ORDERS_UPDATED",
        "ORDERS_CANCELLED",
        "ORDERS_FULFILLED",
        "ORDERS_PAID",
        "REFUNDS_CREATE",
    ];
    let topic = vars["topic"].as_str().unwrap_or_default();
    if !TOPICS.contains(&topic) {
        return json!({"errors": [{
            "message": "Variable $topic of type WebhookSubscriptionTopic! was provided invalid value",
            "extensions": {"value": topic, "problems": [{"path": [], "explanation": format!("Expected \"{topic}\" to be one of: {}", TOPICS.join(", "))}]},
        }]});
    }
    let uri = vars["uri"].as_str().unwrap_or_default();
    let user_error = |message: &str| {
        json!({"data": {"webhookSubscriptionCreate": {
            "webhookSubscription": null,
            "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": message}],
        }}})
    };
    if !uri.starts_with("https://") {
        return user_error("Address protocol http:// is not supported");
    }
    if shop
        .subscriptions
        .iter()
        .any(|s| s["topic"] == topic && s["uri"] == uri)
    {
        return user_error("Address for this topic has already been taken");
    }
    shop.made += 1;
    let subscription = json!({
        "id": format!("gid://shopify/WebhookSubscription/{}", 7000 + shop.made),
        "topic": topic,
        "uri": uri,
    });
    shop.subscriptions.push(subscription.clone());
    json!({"data": {"webhookSubscriptionCreate": {
        "webhookSubscription": subscription,
        "userErrors": [],
    }}})
}
