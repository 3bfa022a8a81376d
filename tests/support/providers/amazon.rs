//! An Amazon Selling Partner API simulator: Login with Amazon's refresh grant, the Tokens
//! API's restricted data tokens and the Orders API v0, following Amazon's documented contract.
//!
//! - `POST /auth/o2/token` (a form or a JSON body, as the official SDKs send either):
//!   `grant_type=refresh_token&refresh_token&client_id&client_secret` → `{access_token:
//!   "Atza|…", token_type: "bearer", expires_in, refresh_token}` (the refresh token echoed, not
//!   rotated). Wrong client credentials: 401 `invalid_client`; a wrong refresh token: 400
//!   `invalid_grant`; another grant type: 400 `unsupported_grant_type`.
//! - Every SP-API call carries its token in `x-amz-access-token` (no `Authorization`, no
//!   SigV4). A missing, unknown or expired token is **403** `Unauthorized` (Amazon's status for
//!   it), with `{"errors":[{code, message, details}]}`.
//! - `POST /tokens/2021-03-01/restrictedDataToken` `{"restrictedResources":[{method, path,
//!   dataElements}]}` with the LWA token → `{restrictedDataToken: "Atz.sprdt|…", expiresIn}`; a
//!   malformed body is 400 `InvalidInput`. The RDT is good only for the resources it names
//!   (a path segment `{orderId}` matches any id); on another path it is 403.
//! - `GET /orders/v0/orders/{orderId}` → `{"payload": Order}`, or 404 `NotFound`. The buyer's
//!   `BuyerInfo` (email, name) and the street part of `ShippingAddress` (`Name`,
//!   `AddressLine1`, `Phone`, …) come only with an RDT for that path with the `buyerInfo` /
//!   `shippingAddress` data elements; with the LWA token `BuyerInfo` is `{}` and the address
//!   keeps only `City`, `StateOrRegion`, `PostalCode` and `CountryCode`.
//! - `GET /orders/v0/orders/{orderId}/orderItems[?NextToken=]` → `{"payload":{AmazonOrderId,
//!   OrderItems, NextToken?}}`, one item a page so that paging is always exercised. `ItemPrice`
//!   is the line total (unit price × `QuantityOrdered`), as Amazon documents.
//! - `GET /orders/v0/orders?MarketplaceIds=…&CreatedAfter=…[&CreatedBefore=…]` (or
//!   `LastUpdatedAfter[&LastUpdatedBefore]`, never both kinds) `&MaxResultsPerPage=1..100
//!   [&OrderStatuses=…][&NextToken=…]` → `{"payload":{"Orders":[…],"NextToken"?}}`, oldest
//!   first, bounds inclusive. `MarketplaceIds` missing, neither `CreatedAfter` nor
//!   `LastUpdatedAfter`, a `*Before` later than two minutes ago or an unknown `NextToken` is
//!   400 `InvalidInput`. With a `NextToken` the listing goes on with the query that made it.
//! - Usage plans: a token bucket **per operation** (getOrder, getOrderItems, getOrders,
//!   createRestrictedDataToken), each with the `(rate, burst)` given to `start`. Past it, 429
//!   `QuotaExceeded` and **no `Retry-After`** (Amazon documents none). 200, 400 and 404 answers
//!   carry `x-amzn-RateLimit-Limit` (the operation's rate); every SP-API answer carries
//!   `x-amzn-RequestId`. Maintenance windows (503) and injected 500s come from the core, whose
//!   own bucket is made unlimited; a 429 still counts in `core.counts.throttled`.
//! - Checks in order: maintenance and faults, the token (403), the operation's bucket (429).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use super::core::{Bucket, Core};

pub const CLIENT_ID: &str = "amzn1.application-oa2-client.0123456789abcdef";
pub const CLIENT_SECRET: &str = "amzn1.oa2-cs.v1.sim0123456789";
pub const REFRESH_TOKEN: &str = "Atzr|IwEBIsim-refresh-token";
pub const SELLER_ID: &str = "A3TH9S8BH6GOGM";
pub const MARKETPLACE_ID: &str = "ATVPDKIKX0DER";

pub const GET_ORDER: &str = "getOrder";
pub const GET_ORDER_ITEMS: &str = "getOrderItems";
pub const GET_ORDERS: &str = "getOrders";
pub const CREATE_RESTRICTED_DATA_TOKEN: &str = "createRestrictedDataToken";
/// The operations with a usage plan (a token bucket) of their own.
pub const OPERATIONS: [&str; 4] = [
    GET_ORDER,
    GET_ORDER_ITEMS,
    GET_ORDERS,
    CREATE_RESTRICTED_DATA_TOKEN,
];

const LWA_PREFIX: &str = "Atza|IwEBIsim-";
const RDT_PREFIX: &str = "Atz.sprdt|";
const ITEMS_PER_PAGE: usize = 1;

/// A resource an RDT opens, with the data elements it shows.
#[derive(Debug, Clone)]
struct Resource {
    method: String,
    path: String,
    elements: Vec<String>,
}

struct Rdt {
    expires: Instant,
    resources: Vec<Resource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Created,
    Updated,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Created => "PurchaseDate",
            Field::Updated => "LastUpdateDate",
        }
    }
}

/// A getOrders query, kept with the `NextToken`s it hands out.
#[derive(Debug, Clone)]
struct ListQuery {
    marketplaces: Vec<String>,
    field: Field,
    after: DateTime<Utc>,
    before: Option<DateTime<Utc>>,
    statuses: Vec<String>,
    limit: usize,
}

enum Cursor {
    Items { order_id: String, offset: usize },
    Orders { query: ListQuery, offset: usize },
}

#[derive(Default)]
struct Books {
    /// Orders by `AmazonOrderId`, unredacted, with their items.
    orders: BTreeMap<String, (Value, Vec<Value>)>,
    cursors: HashMap<String, Cursor>,
    minted: u64,
    rdts: HashMap<String, Rdt>,
    rdt_issued: u64,
}

struct Inner {
    core: Arc<Core>,
    books: Mutex<Books>,
    buckets: Mutex<BTreeMap<&'static str, Bucket>>,
}

type Shared = Arc<Inner>;

#[derive(Clone)]
pub struct AmazonSim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    inner: Shared,
}

impl AmazonSim {
    /// A simulator whose every operation allows `rate` requests a second in bursts of `burst`.
    pub async fn start(rate: f64, burst: u32) -> Self {
        // The core keeps maintenance, faults, tokens and counts; the rate is per operation.
        let core = Arc::new(Core::new(1e9, u32::MAX));
        let inner = Arc::new(Inner {
            core: Arc::clone(&core),
            books: Mutex::new(Books::default()),
            buckets: Mutex::new(buckets(rate, burst)),
        });
        let app = Router::new()
            .route("/auth/o2/token", post(lwa_token))
            .route(
                "/tokens/2021-03-01/restrictedDataToken",
                post(restricted_data_token),
            )
            .route("/orders/v0/orders", get(get_orders))
            .route("/orders/v0/orders/{id}", get(get_order))
            .route("/orders/v0/orders/{id}/orderItems", get(get_order_items))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, core, inner }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds `order` (an `Order`, with its buyer's details) and its `OrderItem`s, replacing an
    /// order of the same `AmazonOrderId`. Redaction happens when answering.
    pub fn put(&self, order: Value, items: Vec<Value>) {
        let id = order["AmazonOrderId"].as_str().unwrap().to_owned();
        self.inner
            .books
            .lock()
            .unwrap()
            .orders
            .insert(id, (order, items));
    }

    /// Restricted data tokens issued so far.
    pub fn rdt_issued(&self) -> u64 {
        self.inner.books.lock().unwrap().rdt_issued
    }

    /// Every operation's usage plan becomes `rate` a second in bursts of `burst` (full now).
    pub fn set_rate(&self, rate: f64, burst: u32) {
        *self.inner.buckets.lock().unwrap() = buckets(rate, burst);
    }

    /// One operation's usage plan (one of [`OPERATIONS`]).
    pub fn set_operation_rate(&self, operation: &'static str, rate: f64, burst: u32) {
        assert!(OPERATIONS.contains(&operation), "no operation {operation}");
        self.inner
            .buckets
            .lock()
            .unwrap()
            .insert(operation, Bucket::new(rate, burst));
    }

    /// Every LWA access token and restricted data token expires now.
    pub fn expire_tokens(&self) {
        self.core.expire_tokens();
        self.inner.books.lock().unwrap().rdts.clear();
    }
}

fn buckets(rate: f64, burst: u32) -> BTreeMap<&'static str, Bucket> {
    OPERATIONS
        .iter()
        .map(|op| (*op, Bucket::new(rate, burst)))
        .collect()
}

/// Cents as Amazon's decimal string.
fn amount(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn money(cents: u64) -> Value {
    json!({"CurrencyCode": "USD", "Amount": amount(cents)})
}

/// Sales tax of 8.25%, rounded half up to the cent.
fn tax(cents: u64) -> u64 {
    (cents * 825 + 5_000) / 10_000
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stable number of `len` digits from `seed`.
fn digits(seed: &str, len: usize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let text = format!("{hash:020}");
    text[text.len() - len..].to_owned()
}

/// An Amazon order (`Order`, `OrderItem`s): `n` units of `SKU-<n % 40>` at a unit price that
/// varies with `n`, shipping, 8.25% tax, a promotion on every fifth order, plus a gift-wrap
/// line of one unit, so that the items come in two pages. `OrderTotal` is the sum over the
/// items of `ItemPrice + ItemTax + ShippingPrice − PromotionDiscount`.
pub fn order(id: &str, n: u32, created: DateTime<Utc>) -> (Value, Vec<Value>) {
    let quantity = u64::from(n);
    let unit = 999 + u64::from(n % 13) * 125;
    let line = unit * quantity;
    let line_tax = tax(line);
    let shipping = 499;
    let promotion = if n % 5 == 0 { 100 } else { 0 };
    let wrap = 399;
    let wrap_tax = tax(wrap);
    let total = line + line_tax + shipping - promotion + wrap + wrap_tax;
    let sku = format!("SKU-{}", n % 40);
    let product = json!({
        "ASIN": format!("B0{:08}", 10_000_000 + n % 40),
        "SellerSKU": sku,
        "OrderItemId": digits(&format!("{id}/1"), 14),
        "Title": format!("Blue Widget, model {}", n % 40),
        "QuantityOrdered": n,
        "QuantityShipped": 0,
        "ProductInfo": {"NumberOfItems": "1"},
        "ItemPrice": money(line),
        "ItemTax": money(line_tax),
        "ShippingPrice": money(shipping),
        "ShippingTax": money(0),
        "ShippingDiscount": money(0),
        "PromotionDiscount": money(promotion),
        "PromotionDiscountTax": money(0),
        "PromotionIds": if promotion > 0 { json!(["SIM-PROMO-1USD"]) } else { json!([]) },
        "IsGift": "false",
        "ConditionId": "New",
        "ConditionSubtypeId": "New",
        "IsTransparency": false,
        "SerialNumberRequired": false
    });
    let gift_wrap = json!({
        "ASIN": "B000GIFTWR",
        "SellerSKU": "GIFT-WRAP",
        "OrderItemId": digits(&format!("{id}/2"), 14),
        "Title": "Gift wrap",
        "QuantityOrdered": 1,
        "QuantityShipped": 0,
        "ProductInfo": {"NumberOfItems": "1"},
        "ItemPrice": money(wrap),
        "ItemTax": money(wrap_tax),
        "ShippingPrice": money(0),
        "ShippingTax": money(0),
        "ShippingDiscount": money(0),
        "PromotionDiscount": money(0),
        "PromotionDiscountTax": money(0),
        "PromotionIds": [],
        "IsGift": "true",
        "ConditionId": "New",
        "ConditionSubtypeId": "New",
        "IsTransparency": false,
        "SerialNumberRequired": false
    });
    let order = json!({
        "AmazonOrderId": id,
        "SellerOrderId": format!("SO-{n:06}"),
        "PurchaseDate": iso(created),
        "LastUpdateDate": iso(created + chrono::Duration::seconds(90)),
        "OrderStatus": "Unshipped",
        "FulfillmentChannel": "MFN",
        "SalesChannel": "Amazon.com",
        "ShipServiceLevel": "Std US D2D Dom",
        "OrderTotal": money(total),
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": n + 1,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "IsReplacementOrder": false,
        "MarketplaceId": MARKETPLACE_ID,
        "ShipmentServiceLevelCategory": "Standard",
        "OrderType": "StandardOrder",
        "EarliestShipDate": iso(created + chrono::Duration::days(1)),
        "LatestShipDate": iso(created + chrono::Duration::days(3)),
        "EarliestDeliveryDate": iso(created + chrono::Duration::days(4)),
        "LatestDeliveryDate": iso(created + chrono::Duration::days(8)),
        "IsBusinessOrder": false,
        "IsPrime": false,
        "IsPremiumOrder": false,
        "IsGlobalExpressEnabled": false,
        "IsSoldByAB": false,
        "IsIBA": false,
        "IsISPU": false,
        "IsAccessPointOrder": false,
        "HasRegulatedItems": false,
        "DefaultShipFromLocationAddress": {
            "Name": "OrderBridge Sim Warehouse", "AddressLine1": "2201 Westlake Ave",
            "City": "Seattle", "StateOrRegion": "WA", "PostalCode": "98121-2778",
            "CountryCode": "US", "AddressType": "Commercial"
        },
        "ShippingAddress": {
            "Name": format!("Buyer {n}"),
            "AddressLine1": format!("{} Cross St.", 100 + n),
            "City": "Canton",
            "StateOrRegion": "MI",
            "PostalCode": "48187",
            "CountryCode": "US",
            "Phone": format!("+1 734-555-{:04}", n % 10_000),
            "AddressType": "Residential"
        },
        "BuyerInfo": {
            "BuyerEmail": format!("buyer{n}@marketplace.amazon.com"),
            "BuyerName": format!("Buyer {n}")
        },
        "AutomatedShippingSettings": {"HasAutomatedShippingSettings": false}
    });
    (order, vec![product, gift_wrap])
}

/// `order` as an answer shows it: without the buyer's details the token does not open.
fn redact(order: &Value, elements: &[String]) -> Value {
    let mut order = order.clone();
    let Some(map) = order.as_object_mut() else {
        return order;
    };
    if !elements.iter().any(|e| e == "buyerInfo") && map.contains_key("BuyerInfo") {
        map.insert("BuyerInfo".into(), json!({}));
    }
    if !elements.iter().any(|e| e == "shippingAddress") {
        if let Some(Value::Object(address)) = map.get_mut("ShippingAddress") {
            address.retain(|key, _| {
                ["City", "StateOrRegion", "PostalCode", "CountryCode"].contains(&key.as_str())
            });
        }
    }
    order
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(0);

fn request_id() -> String {
    let n = REQUEST_IDS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id())
}

fn with_request_id(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&request_id()).unwrap(),
    );
    response
}

/// SP-API's error answer.
fn sp_error(status: StatusCode, code: &str, message: &str, details: Option<&str>) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(details) = details {
        error["details"] = json!(details);
    }
    with_request_id((status, Json(json!({"errors": [error]}))).into_response())
}

fn quota_exceeded() -> Response {
    sp_error(
        StatusCode::TOO_MANY_REQUESTS,
        "QuotaExceeded",
        "You exceeded your quota for the requested resource.",
        Some(""),
    )
}

fn denied() -> Response {
    sp_error(
        StatusCode::FORBIDDEN,
        "Unauthorized",
        "Access to requested resource is denied.",
        Some("The access token you provided has expired."),
    )
}

fn invalid(message: &str) -> Response {
    sp_error(StatusCode::BAD_REQUEST, "InvalidInput", message, None)
}

/// An answer that carries the operation's rate: 200, 400 and 404. 200 and 404 count as served.
fn answer(inner: &Inner, operation: &'static str, mut response: Response) -> Response {
    let rate = inner
        .buckets
        .lock()
        .unwrap()
        .get(operation)
        .map(Bucket::rate);
    if let Some(rate) = rate {
        response.headers_mut().insert(
            "x-amzn-ratelimit-limit",
            HeaderValue::from_str(&format!("{rate}")).unwrap(),
        );
    }
    let status = response.status();
    if status == StatusCode::OK || status == StatusCode::NOT_FOUND {
        inner.core.served();
    }
    if response.headers().contains_key("x-amzn-requestid") {
        response
    } else {
        with_request_id(response)
    }
}

/// What the token of a request opens.
enum Access {
    /// An LWA access token: every operation, no restricted data.
    Lwa,
    /// A restricted data token: its resources only.
    Rdt(Vec<Resource>),
}

fn unauthorized(core: &Core) -> Response {
    core.counts.unauthorized.fetch_add(1, Ordering::SeqCst);
    denied()
}

/// Maintenance and faults, then the token, then the operation's usage plan.
fn admit(inner: &Inner, headers: &HeaderMap, operation: &'static str) -> Result<Access, Response> {
    inner.core.gate(|_| quota_exceeded())?;
    let token = headers
        .get("x-amz-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let access = if token.starts_with(RDT_PREFIX) {
        let resources = inner
            .books
            .lock()
            .unwrap()
            .rdts
            .get(token)
            .filter(|rdt| Instant::now() < rdt.expires)
            .map(|rdt| rdt.resources.clone());
        match resources {
            Some(resources) => Access::Rdt(resources),
            None => return Err(unauthorized(&inner.core)),
        }
    } else if inner.core.token_valid(token) {
        Access::Lwa
    } else {
        return Err(denied());
    };
    let taken = inner
        .buckets
        .lock()
        .unwrap()
        .get_mut(operation)
        .map(Bucket::take);
    if let Some(Err(_)) = taken {
        inner.core.counts.throttled.fetch_add(1, Ordering::SeqCst);
        return Err(quota_exceeded());
    }
    Ok(access)
}

/// Whether an RDT resource path (`{orderId}` matching any segment) names `path`.
fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    pattern.len() == path.len()
        && pattern.iter().zip(&path).all(|(want, got)| {
            want == got || (want.starts_with('{') && want.ends_with('}') && !got.is_empty())
        })
}

/// The data elements `access` shows on `paths` (the path as sent and as decoded), or 403 for
/// an RDT that does not open them.
fn elements(core: &Core, access: &Access, paths: &[&str]) -> Result<Vec<String>, Response> {
    match access {
        Access::Lwa => Ok(Vec::new()),
        Access::Rdt(resources) => resources
            .iter()
            .find(|r| {
                r.method.eq_ignore_ascii_case("GET")
                    && paths.iter().any(|p| path_matches(&r.path, p))
            })
            .map(|r| r.elements.clone())
            .ok_or_else(|| unauthorized(core)),
    }
}

fn lwa_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The fields of a form or JSON body.
async fn fields(request: Request) -> Option<BTreeMap<String, String>> {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if json {
        let Json(body) = Json::<Value>::from_request(request, &()).await.ok()?;
        let Value::Object(map) = body else {
            return None;
        };
        Some(
            map.into_iter()
                .filter_map(|(key, value)| value.as_str().map(|v| (key, v.to_owned())))
                .collect(),
        )
    } else {
        let Form(form) = Form::<BTreeMap<String, String>>::from_request(request, &())
            .await
            .ok()?;
        Some(form)
    }
}

async fn lwa_token(State(inner): State<Shared>, request: Request) -> Response {
    let Some(fields) = fields(request).await else {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body is not a form or a JSON object",
        );
    };
    let field = |key: &str| fields.get(key).map(String::as_str);
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        return lwa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    if field("grant_type") != Some("refresh_token") {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        );
    }
    match field("refresh_token") {
        None | Some("") => {
            return lwa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing a required parameter : refresh_token",
            )
        }
        Some(REFRESH_TOKEN) => {}
        Some(_) => {
            return lwa_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The request has an invalid grant parameter : refresh_token",
            )
        }
    }
    let (token, lifetime) = inner.core.issue_token(LWA_PREFIX);
    let mut response = Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "refresh_token": REFRESH_TOKEN
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The restricted resources of a `createRestrictedDataToken` body, or what is wrong with it.
fn resources(body: &[u8]) -> Result<Vec<Resource>, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|err| format!("Malformed request body: {err}"))?;
    let list = body
        .get("restrictedResources")
        .and_then(Value::as_array)
        .filter(|list| !list.is_empty())
        .ok_or("restrictedResources is required and must not be empty")?;
    list.iter()
        .map(|resource| {
            let method = resource
                .get("method")
                .and_then(Value::as_str)
                .filter(|m| ["GET", "PUT", "POST", "DELETE"].contains(m))
                .ok_or("restrictedResources.method must be GET, PUT, POST or DELETE")?;
            let path = resource
                .get("path")
                .and_then(Value::as_str)
                .filter(|p| p.starts_with('/'))
                .ok_or("restrictedResources.path is required")?;
            let elements = match resource.get("dataElements") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(elements)) => elements
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .filter(|e| {
                                ["buyerInfo", "shippingAddress", "buyerTaxInformation"].contains(e)
                            })
                            .map(str::to_owned)
                            .ok_or_else(|| format!("Invalid dataElements value: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(format!("dataElements must be an array, not {other}")),
            };
            Ok(Resource {
                method: method.to_owned(),
                path: path.to_owned(),
                elements,
            })
        })
        .collect()
}

async fn restricted_data_token(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    const OP: &str = CREATE_RESTRICTED_DATA_TOKEN;
    match admit(&inner, &headers, OP) {
        Ok(Access::Lwa) => {}
        // An RDT does not make RDTs.
        Ok(Access::Rdt(_)) => return unauthorized(&inner.core),
        Err(refused) => return refused,
    }
    let resources = match resources(&body) {
        Ok(resources) => resources,
        Err(message) => return answer(&inner, OP, invalid(&message)),
    };
    let lifetime = *inner.core.token_lifetime.lock().unwrap();
    let token = {
        let mut books = inner.books.lock().unwrap();
        books.rdt_issued += 1;
        let token = format!(
            "{RDT_PREFIX}IQEBLjAsAhRsim{}-{}",
            books.rdt_issued,
            std::process::id()
        );
        books.rdts.insert(
            token.clone(),
            Rdt {
                expires: Instant::now() + lifetime,
                resources,
            },
        );
        token
    };
    answer(
        &inner,
        OP,
        Json(json!({"restrictedDataToken": token, "expiresIn": lifetime.as_secs()}))
            .into_response(),
    )
}

async fn get_order(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let access = match admit(&inner, &headers, GET_ORDER) {
        Ok(access) => access,
        Err(refused) => return refused,
    };
    let path = format!("/orders/v0/orders/{id}");
    let elements = match elements(&inner.core, &access, &[uri.path(), &path]) {
        Ok(elements) => elements,
        Err(refused) => return refused,
    };
    let found = inner
        .books
        .lock()
        .unwrap()
        .orders
        .get(&id)
        .map(|(order, _)| redact(order, &elements));
    let response = match found {
        Some(order) => Json(json!({"payload": order})).into_response(),
        None => sp_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Order not found",
            Some(""),
        ),
    };
    answer(&inner, GET_ORDER, response)
}

/// A new `NextToken` for `cursor`: base64 with `+`, `/` and `=` in it, as Amazon's have, so a
/// client must encode it.
fn mint(books: &mut Books, cursor: Cursor) -> String {
    books.minted += 1;
    let token = BASE64.encode(format!(">>>???{:07}", books.minted));
    books.cursors.insert(token.clone(), cursor);
    token
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of a list parameter, sent comma separated or repeated.
fn list_param(pairs: &[(String, String)], key: &str) -> Vec<String> {
    let mut values: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    values.dedup();
    values
}

async fn get_order_items(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let access = match admit(&inner, &headers, GET_ORDER_ITEMS) {
        Ok(access) => access,
        Err(refused) => return refused,
    };
    let path = format!("/orders/v0/orders/{id}/orderItems");
    if let Err(refused) = elements(&inner.core, &access, &[uri.path(), &path]) {
        return refused;
    }
    let mut books = inner.books.lock().unwrap();
    let Some(items) = books.orders.get(&id).map(|(_, items)| items.clone()) else {
        drop(books);
        return answer(
            &inner,
            GET_ORDER_ITEMS,
            sp_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "Order not found",
                Some(""),
            ),
        );
    };
    let offset = match param(&pairs, "NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match books.cursors.get(token) {
            Some(Cursor::Items { order_id, offset }) if *order_id == id => *offset,
            Some(_) | None => {
                drop(books);
                return answer(&inner, GET_ORDER_ITEMS, invalid("Invalid NextToken"));
            }
        },
    };
    let end = (offset + ITEMS_PER_PAGE).min(items.len());
    let page: Vec<Value> = items
        .get(offset..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let mut payload = json!({"AmazonOrderId": id, "OrderItems": page});
    if end < items.len() {
        payload["NextToken"] = json!(mint(
            &mut books,
            Cursor::Items {
                order_id: id.clone(),
                offset: end
            }
        ));
    }
    drop(books);
    answer(
        &inner,
        GET_ORDER_ITEMS,
        Json(json!({"payload": payload})).into_response(),
    )
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    // A `+` sent unencoded arrives as a space.
    let text = text.trim().replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(Utc.from_utc_datetime(&t));
    }
    let day = NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()?;
    Some(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0)?))
}

/// A getOrders query from its parameters, or the 400 message.
fn list_query(pairs: &[(String, String)], marketplaces: Vec<String>) -> Result<ListQuery, String> {
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
        match param(pairs, key) {
            None => Ok(None),
            Some(text) => parse_time(text)
                .map(Some)
                .ok_or_else(|| format!("Invalid {key}: {text} is not an ISO 8601 date-time")),
        }
    };
    let created = (time("CreatedAfter")?, time("CreatedBefore")?);
    let updated = (time("LastUpdatedAfter")?, time("LastUpdatedBefore")?);
    let (field, after, before) =
        match (created, updated) {
            ((Some(after), before), (None, None)) => (Field::Created, after, before),
            ((None, None), (Some(after), before)) => (Field::Updated, after, before),
            ((Some(_), _), (Some(_), _)) | ((Some(_), _), (None, Some(_))) => return Err(
                "CreatedAfter cannot be set together with LastUpdatedAfter or LastUpdatedBefore"
                    .into(),
            ),
            ((None, Some(_)), (Some(_), _)) => {
                return Err("CreatedBefore cannot be set together with LastUpdatedAfter".into())
            }
            ((None, _), (None, _)) => {
                return Err("Either CreatedAfter or LastUpdatedAfter must be specified".into())
            }
        };
    if let Some(before) = before {
        if before < after {
            return Err("The Before date must be later than the After date".into());
        }
        if before > Utc::now() - chrono::Duration::minutes(2) {
            return Err(
                "The Before date must be no later than two minutes before the request".into(),
            );
        }
    }
    Ok(ListQuery {
        marketplaces,
        field,
        after,
        before,
        statuses: list_param(pairs, "OrderStatuses"),
        limit: 100,
    })
}

async fn get_orders(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let access = match admit(&inner, &headers, GET_ORDERS) {
        Ok(access) => access,
        Err(refused) => return refused,
    };
    let elements = match elements(&inner.core, &access, &["/orders/v0/orders"]) {
        Ok(elements) => elements,
        Err(refused) => return refused,
    };
    let marketplaces = list_param(&pairs, "MarketplaceIds");
    if marketplaces.is_empty() {
        return answer(
            &inner,
            GET_ORDERS,
            invalid("MarketplaceIds is a required parameter"),
        );
    }
    let limit = match param(&pairs, "MaxResultsPerPage").map(str::parse::<usize>) {
        None => None,
        Some(Ok(limit)) if (1..=100).contains(&limit) => Some(limit),
        Some(_) => {
            return answer(
                &inner,
                GET_ORDERS,
                invalid("MaxResultsPerPage must be between 1 and 100"),
            )
        }
    };
    let mut books = inner.books.lock().unwrap();
    let (mut query, offset) = match param(&pairs, "NextToken").filter(|t| !t.is_empty()) {
        Some(token) => match books.cursors.get(token) {
            Some(Cursor::Orders { query, offset }) => (query.clone(), *offset),
            Some(Cursor::Items { .. }) | None => {
                drop(books);
                return answer(&inner, GET_ORDERS, invalid("Invalid NextToken"));
            }
        },
        None => match list_query(&pairs, marketplaces) {
            Ok(query) => (query, 0),
            Err(message) => {
                drop(books);
                return answer(&inner, GET_ORDERS, invalid(&message));
            }
        },
    };
    if let Some(limit) = limit {
        query.limit = limit;
    }
    let key = query.field.key();
    let mut matching: Vec<(DateTime<Utc>, &String, &Value)> = books
        .orders
        .iter()
        .filter_map(|(id, (order, _))| {
            let at = order[key].as_str().and_then(parse_time)?;
            let marketplace = order["MarketplaceId"].as_str().unwrap_or_default();
            let status = order["OrderStatus"].as_str().unwrap_or_default();
            (at >= query.after
                && query.before.is_none_or(|b| at <= b)
                && query.marketplaces.iter().any(|m| m == marketplace)
                && (query.statuses.is_empty() || query.statuses.iter().any(|s| s == status)))
            .then_some((at, id, order))
        })
        .collect();
    matching.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(query.limit)
        .map(|(_, _, order)| redact(order, &elements))
        .collect();
    let end = offset + page.len();
    let mut payload = json!({"Orders": page});
    if end < total {
        payload["NextToken"] = json!(mint(&mut books, Cursor::Orders { query, offset: end }));
    }
    drop(books);
    answer(
        &inner,
        GET_ORDERS,
        Json(json!({"payload": payload})).into_response(),
    )
}
