//! A Walmart Marketplace (US) API simulator: the client-credentials token and the Orders API,
//! following Walmart's documented contract and what its gateway is observed to answer.
//!
//! - `POST /v3/token`: `Authorization: Basic base64(client id:client secret)`, form
//!   `grant_type=client_credentials`, headers `WM_SVC.NAME` and `WM_QOS.CORRELATION_ID` (either
//!   missing: 400 `MISSING_REQUEST_HEADER.GMP_GATEWAY_API`) → `{access_token: "eyJ…",
//!   token_type: "Bearer", expires_in}`. Wrong credentials: 401 with the gateway's body under
//!   the key **`error`** (singular, as observed), `UNAUTHORIZED.GMP_GATEWAY_API`.
//! - API calls carry `WM_SEC.ACCESS_TOKEN: <token>` (no `Bearer`), `WM_SVC.NAME`,
//!   `WM_QOS.CORRELATION_ID` (400 when missing) and `Accept: application/json` (or `*/*`;
//!   without it Walmart answers XML, here 406 `INVALID_ACCEPT_TYPE.GMP_GATEWAY_API`). A
//!   missing, unknown or expired token is 401 `{"errors":[UNAUTHORIZED.GMP_GATEWAY_API]}`.
//! - `GET /v3/orders/{purchaseOrderId}` → `{"order": {…}}` (wrapped, as the official examples
//!   show); unknown: 404 `CONTENT_NOT_FOUND.GMP_ORDER_API`.
//! - `GET /v3/orders?createdStartDate&createdEndDate&lastModifiedStartDate&lastModifiedEndDate
//!   &status&sku&purchaseOrderId&customerOrderId&limit=1..200` (default 100; dates
//!   `yyyy-MM-dd` or ISO 8601; bounds inclusive) → `{"list":{"meta":{totalCount, limit,
//!   nextCursor?},"elements":{"order":[…]}}}`, oldest `orderDate` first, the orders not
//!   wrapped. Without `createdStartDate`, `lastModifiedStartDate` or an id filter the window
//!   starts 7 days ago (Walmart's default). `nextCursor` is a ready query string starting with
//!   `?` (`limit, hasMoreElements=true, soIndex` = total, `poIndex` = offset of the next page,
//!   `partnerId, sellerId` and the filters); the next page is `GET /v3/orders<nextCursor>`; the
//!   last page has no `nextCursor` key. A cursor of another partner or without a numeric
//!   `poIndex` is 400. When nothing matches: 404 `CONTENT_NOT_FOUND.GMP_ORDER_API` (as
//!   Walmart does, not an empty list). Orders carry no modification date, so
//!   `lastModified*` filter on the latest `statusDate` of their lines.
//! - Money: `chargeAmount.amount` and `taxAmount.amount` are JSON numbers. The `PRODUCT`
//!   charge's `chargeAmount` is the **unit price** (per unit; the quantity is
//!   `orderLineQuantity.amount`, a string), as Walmart's docs describe; its `tax.taxAmount` is
//!   the tax of the line's units together. The `SHIPPING` charge and its tax are for the line.
//! - Rate: the core's token bucket. Every answer carries `X-Current-Token-Count` (whole tokens
//!   left) and `X-Next-Replenishment-Time` (epoch ms when the next token arrives: exact on a
//!   429, otherwise now + 1/rate, as the bucket refills continuously). Past it, 429
//!   `REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API` with those two headers and no `Retry-After`
//!   (Walmart documents none). Maintenance (503) and injected 500s from the core.
//! - Checks in order: maintenance and faults, the rate, the `WM_*` headers, the token, `Accept`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Form, Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use super::core::Core;

pub const CLIENT_ID: &str = "walmart-sim-client-id";
pub const CLIENT_SECRET: &str = "walmart-sim-client-secret";
pub const PARTNER_ID: &str = "10001234567";
/// The seller index Walmart puts in its cursors.
const SELLER_ID: &str = "8";

const TOKEN_COUNT: &str = "x-current-token-count";
const REPLENISHMENT: &str = "x-next-replenishment-time";

#[derive(Default)]
struct Books {
    orders: BTreeMap<String, Value>,
}

#[derive(Clone)]
pub struct WalmartSim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    books: Arc<Mutex<Books>>,
}

type Shared = (Arc<Core>, Arc<Mutex<Books>>);

impl WalmartSim {
    /// A simulator allowing `rate` requests a second in bursts of `burst`.
    pub async fn start(rate: f64, burst: u32) -> Self {
        let core = Arc::new(Core::new(rate, burst));
        let books = Arc::new(Mutex::new(Books::default()));
        let app = Router::new()
            .route("/v3/token", post(token))
            .route("/v3/orders", get(list))
            .route("/v3/orders/{id}", get(one))
            .layer(middleware::map_response_with_state(
                Arc::clone(&core),
                rate_headers,
            ))
            .with_state((Arc::clone(&core), Arc::clone(&books)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, core, books }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds `order` (the inner order object, not `{"order": …}`), replacing one of its
    /// `purchaseOrderId`.
    pub fn put(&self, order: Value) {
        let id = order["purchaseOrderId"].as_str().unwrap().to_owned();
        self.books.lock().unwrap().orders.insert(id, order);
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Cents as Walmart's JSON number.
fn number(cents: u64) -> Value {
    json!(cents as f64 / 100.0)
}

fn usd(cents: u64) -> Value {
    json!({"currency": "USD", "amount": number(cents)})
}

/// Sales tax of 7.25%, rounded half up to the cent.
fn tax(cents: u64) -> u64 {
    (cents * 725 + 5_000) / 10_000
}

/// A Walmart order (the `getAnOrder` record, unwrapped): one line of `n` units of
/// `SKU-<n % 40>` at a unit price that varies with `n` (the `PRODUCT` charge is per unit), tax
/// on the line, a shipping charge with its tax, a relay email and a postal address.
pub fn order(id: &str, n: u32, created: DateTime<Utc>) -> Value {
    let unit = 899 + u64::from(n % 11) * 150;
    let line_tax = tax(unit * u64::from(n));
    let shipping = 599;
    let shipping_tax = tax(shipping);
    let quantity = json!({"unitOfMeasurement": "EACH", "amount": n.to_string()});
    let status_date = ms(created + chrono::Duration::seconds(60));
    json!({
        "purchaseOrderId": id,
        "customerOrderId": format!("{}", 5_000_000_000_000u64 + u64::from(n)),
        "customerEmailId": format!("buyer{n}@relay.walmart.com"),
        "orderDate": ms(created),
        "shippingInfo": {
            "phone": format!("314555{:04}", n % 10_000),
            "estimatedDeliveryDate": ms(created + chrono::Duration::days(5)),
            "estimatedShipDate": ms(created + chrono::Duration::days(1)),
            "methodCode": "Standard",
            "postalAddress": {
                "name": format!("Buyer {n}"),
                "address1": format!("{} Gazebo Drive", 100 + n),
                "address2": format!("Apt {}", 1 + n % 20),
                "city": "Cedar Hill",
                "state": "MO",
                "postalCode": "63016",
                "country": "USA",
                "addressType": "RESIDENTIAL"
            }
        },
        "orderLines": {"orderLine": [{
            "lineNumber": "1",
            "item": {"productName": format!("Blue Widget, model {}", n % 40), "sku": format!("SKU-{}", n % 40)},
            "charges": {"charge": [
                {"chargeType": "PRODUCT", "chargeName": "ItemPrice", "chargeAmount": usd(unit),
                 "tax": {"taxName": "Tax1", "taxAmount": usd(line_tax)}},
                {"chargeType": "SHIPPING", "chargeName": "Shipping", "chargeAmount": usd(shipping),
                 "tax": {"taxName": "Tax1", "taxAmount": usd(shipping_tax)}}
            ]},
            "orderLineQuantity": quantity,
            "statusDate": status_date,
            "orderLineStatuses": {"orderLineStatus": [
                {"status": "Created", "statusQuantity": quantity}
            ]},
            "fulfillment": {"fulfillmentOption": "S2H", "shipMethod": "STANDARD",
                            "pickUpDateTime": ms(created + chrono::Duration::days(5))}
        }]},
        "shipNode": {"type": "SellerFulfilled"}
    })
}

/// One gateway error.
fn entry(code: &str, field: &str, description: &str, info: &str, severity: &str) -> Value {
    let category = if severity == "INFO" {
        "APPLICATION"
    } else {
        "DATA"
    };
    json!({"code": code, "field": field, "description": description, "info": info,
           "severity": severity, "category": category})
}

/// An error answer; `key` is `errors`, or `error` where the gateway is observed to use it.
fn reply(status: StatusCode, key: &str, entry: Value) -> Response {
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), json!([entry]));
    (status, Json(Value::Object(body))).into_response()
}

fn bad_param(field: &str, info: &str) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        "errors",
        entry(
            "INVALID_REQUEST_PARAM.GMP_ORDER_API",
            field,
            "Invalid request parameter",
            info,
            "ERROR",
        ),
    )
}

fn throttled(wait: Duration) -> Response {
    let mut response = reply(
        StatusCode::TOO_MANY_REQUESTS,
        "errors",
        json!({"code": "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", "field": "",
               "description": "Too many requests",
               "info": "Request threshold violated. Please retry after the next replenishment time.",
               "severity": "ERROR", "category": "REQUEST"}),
    );
    // The gate holds the bucket while building this: no tokens, the next one after `wait`.
    let next = ms(Utc::now()) + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
    let headers = response.headers_mut();
    headers.insert(TOKEN_COUNT, HeaderValue::from(0u32));
    headers.insert(REPLENISHMENT, HeaderValue::from(next));
    response
}

/// `X-Current-Token-Count` and `X-Next-Replenishment-Time` on every answer.
async fn rate_headers(State(core): State<Arc<Core>>, mut response: Response) -> Response {
    if !response.headers().contains_key(TOKEN_COUNT) {
        let (remaining, rate) = {
            let mut bucket = core.bucket.lock().unwrap();
            (bucket.remaining(), bucket.rate())
        };
        let next = ms(Utc::now()) + (1000.0 / rate).ceil().min(1e12) as i64;
        let headers = response.headers_mut();
        headers.insert(TOKEN_COUNT, HeaderValue::from(remaining));
        headers.insert(REPLENISHMENT, HeaderValue::from(next));
    }
    response
}

/// The first of `WM_SVC.NAME` and `WM_QOS.CORRELATION_ID` a request lacks.
fn missing_header(headers: &HeaderMap) -> Option<&'static str> {
    ["WM_SVC.NAME", "WM_QOS.CORRELATION_ID"]
        .into_iter()
        .find(|name| {
            headers
                .get(name.to_ascii_lowercase())
                .and_then(|v| v.to_str().ok())
                .is_none_or(|v| v.trim().is_empty())
        })
}

fn missing_header_error(name: &str) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        "errors",
        entry(
            "MISSING_REQUEST_HEADER.GMP_GATEWAY_API",
            name,
            &format!("Missing request header {name}"),
            &format!("The request header {name} is required"),
            "ERROR",
        ),
    )
}

fn unauthorized(key: &str, info: &str) -> Response {
    reply(
        StatusCode::UNAUTHORIZED,
        key,
        entry(
            "UNAUTHORIZED.GMP_GATEWAY_API",
            "UNAUTHORIZED",
            "Unauthorized",
            info,
            "ERROR",
        ),
    )
}

/// Maintenance and faults, the rate, the `WM_*` headers, the token, `Accept`.
fn admit(core: &Core, headers: &HeaderMap) -> Result<(), Response> {
    core.gate(throttled)?;
    if let Some(name) = missing_header(headers) {
        return Err(missing_header_error(name));
    }
    let token = headers
        .get("wm_sec.access_token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !core.token_valid(token) {
        return Err(unauthorized(
            "errors",
            "Unauthorized token or invalid client id/secret",
        ));
    }
    let accepts_json = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json") || v.contains("*/*"));
    if !accepts_json {
        return Err(reply(
            StatusCode::NOT_ACCEPTABLE,
            "errors",
            entry(
                "INVALID_ACCEPT_TYPE.GMP_GATEWAY_API",
                "Accept",
                "Invalid accept type",
                "This simulator answers application/json only",
                "ERROR",
            ),
        ));
    }
    Ok(())
}

fn basic_ok(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic")
        && BASE64
            .decode(encoded.trim())
            .is_ok_and(|decoded| decoded == format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes())
}

async fn token(State((core, _)): State<Shared>, request: Request) -> Response {
    if let Some(name) = missing_header(request.headers()) {
        return missing_header_error(name);
    }
    if !basic_ok(request.headers()) {
        core.counts
            .unauthorized
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return unauthorized("error", "Unauthorized token or invalid client id/secret");
    }
    let form = match Form::<BTreeMap<String, String>>::from_request(request, &()).await {
        Ok(Form(form)) => form,
        Err(_) => {
            return reply(
                StatusCode::BAD_REQUEST,
                "errors",
                entry(
                    "INVALID_REQUEST_CONTENT.GMP_GATEWAY_API",
                    "body",
                    "Invalid request content",
                    "The body must be application/x-www-form-urlencoded",
                    "ERROR",
                ),
            )
        }
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return reply(
            StatusCode::BAD_REQUEST,
            "errors",
            entry(
                "INVALID_REQUEST_PARAM.GMP_GATEWAY_API",
                "grant_type",
                "Invalid request parameter",
                "grant_type must be client_credentials",
                "ERROR",
            ),
        );
    }
    let (token, lifetime) = core.issue_token("eyJraWQiOiJ3YWxtYXJ0LXNpbSIsImFsZyI6IkhTMjU2In0.");
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime.as_secs()}))
        .into_response()
}

async fn one(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let found = books.lock().unwrap().orders.get(&id).cloned();
    core.served();
    match found {
        Some(order) => Json(json!({"order": order})).into_response(),
        None => reply(
            StatusCode::NOT_FOUND,
            "errors",
            entry(
                "CONTENT_NOT_FOUND.GMP_ORDER_API",
                "purchaseOrderId",
                "Order not found",
                &format!("No order found for purchaseOrderId {id}"),
                "ERROR",
            ),
        ),
    }
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

fn from_ms(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(value.as_i64()?)
}

/// An order's last modification: its lines' latest `statusDate`.
fn modified(order: &Value) -> Option<DateTime<Utc>> {
    order["orderLines"]["orderLine"]
        .as_array()?
        .iter()
        .filter_map(|line| from_ms(&line["statusDate"]))
        .max()
}

fn within(
    at: Option<DateTime<Utc>>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> bool {
    if from.is_none() && to.is_none() {
        return true;
    }
    at.is_some_and(|at| from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t))
}

/// Percent-encodes a query value (keeping `:` readable, as Walmart's cursors do).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const DATE_FILTERS: [&str; 4] = [
    "createdStartDate",
    "createdEndDate",
    "lastModifiedStartDate",
    "lastModifiedEndDate",
];
const VALUE_FILTERS: [&str; 4] = ["status", "sku", "purchaseOrderId", "customerOrderId"];

async fn list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let params: BTreeMap<String, String> = pairs.into_iter().collect();
    let get = |key: &str| params.get(key).map(String::as_str);
    let limit = match get("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(limit)) if (1..=200).contains(&limit) => limit,
        Some(_) => return bad_param("limit", "limit must be between 1 and 200"),
    };
    let offset = if get("hasMoreElements").is_some() || get("poIndex").is_some() {
        if get("partnerId") != Some(PARTNER_ID) {
            return bad_param("partnerId", "The cursor belongs to another partner");
        }
        match get("poIndex").map(str::parse::<usize>) {
            Some(Ok(offset)) => offset,
            Some(Err(_)) | None => return bad_param("poIndex", "The cursor is not valid"),
        }
    } else {
        0
    };
    // The filters, parsed, and as they go back into the cursor.
    let mut dates: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    let mut carried: Vec<(&str, String)> = Vec::new();
    for key in DATE_FILTERS {
        if let Some(text) = get(key) {
            match parse_time(text) {
                Some(t) => {
                    dates.insert(key, t);
                    carried.push((key, text.to_owned()));
                }
                None => return bad_param(key, &format!("{key} must be yyyy-MM-dd or ISO 8601")),
            }
        }
    }
    for key in VALUE_FILTERS {
        if let Some(value) = get(key) {
            carried.push((key, value.to_owned()));
        }
    }
    let by_id = get("purchaseOrderId").is_some() || get("customerOrderId").is_some();
    if !dates.contains_key("createdStartDate")
        && !dates.contains_key("lastModifiedStartDate")
        && !by_id
    {
        let start = Utc::now() - chrono::Duration::days(7);
        dates.insert("createdStartDate", start);
        carried.insert(
            0,
            (
                "createdStartDate",
                start.to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
        );
    }
    let date = |key: &str| dates.get(key).copied();
    let line_has = |order: &Value, f: &dyn Fn(&Value) -> bool| {
        order["orderLines"]["orderLine"]
            .as_array()
            .is_some_and(|lines| lines.iter().any(f))
    };
    let books = books.lock().unwrap();
    let mut matching: Vec<&Value> = books
        .orders
        .values()
        .filter(|o| {
            within(
                from_ms(&o["orderDate"]),
                date("createdStartDate"),
                date("createdEndDate"),
            ) && within(
                modified(o),
                date("lastModifiedStartDate"),
                date("lastModifiedEndDate"),
            ) && get("purchaseOrderId").is_none_or(|id| o["purchaseOrderId"] == id)
                && get("customerOrderId").is_none_or(|id| o["customerOrderId"] == id)
                && get("sku").is_none_or(|sku| line_has(o, &|line| line["item"]["sku"] == sku))
                && get("status").is_none_or(|status| {
                    line_has(o, &|line| {
                        line["orderLineStatuses"]["orderLineStatus"]
                            .as_array()
                            .is_some_and(|s| s.iter().any(|s| s["status"] == status))
                    })
                })
        })
        .collect();
    matching.sort_by_key(|o| {
        (
            o["orderDate"].as_i64().unwrap_or_default(),
            o["purchaseOrderId"].as_str().unwrap_or_default().to_owned(),
        )
    });
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    drop(books);
    core.served();
    if page.is_empty() {
        return reply(
            StatusCode::NOT_FOUND,
            "errors",
            entry(
                "CONTENT_NOT_FOUND.GMP_ORDER_API",
                "",
                "Failed when called getAllOrders. Orders not found for given search parameters",
                "Requested content could not be found.",
                "INFO",
            ),
        );
    }
    let end = offset + page.len();
    let mut meta = json!({"totalCount": total, "limit": limit});
    if end < total {
        let mut cursor = format!(
            "?limit={limit}&hasMoreElements=true&soIndex={total}&poIndex={end}&partnerId={PARTNER_ID}&sellerId={SELLER_ID}"
        );
        for (key, value) in &carried {
            cursor.push_str(&format!("&{key}={}", encode(value)));
        }
        meta["nextCursor"] = json!(cursor);
    }
    Json(json!({"list": {"meta": meta, "elements": {"order": page}}})).into_response()
}
