//! An Ordermentum API simulator: orders and webhook registrations, following Ordermentum's
//! documented contract.
//!
//! - Every call needs the supplier's API key, as `x-api-key: <key>` (current) or
//!   `Authorization: Bearer <key>` (legacy); neither is 401
//!   `{"message":"Unauthorized","statusCode":401}`. `Accept` must allow `application/json`
//!   (an `Accept` that does not is 406; a missing one is let through).
//! - `GET /v1/orders/{id}`: the order, bare: totals (`freight`, `totalFreight`, `subtotal`,
//!   `totalGst`, `total`) as JSON numbers, line `price` (unit) and `subtotal` as decimal
//!   strings, `SKU` upper case, no currency (AUD). `total = subtotal + freight + totalGst`
//!   (GST 10 % of goods and freight). Unknown is 404 `{"message":"Not Found","statusCode":404}`.
//! - `GET /v1/orders?supplierId&createdAt[gte|gt|lte|lt]=ISO&updatedAt[gte|gt|lte|lt]=ISO&pageNo=1..&pageSize=1..=100[&sort=-createdAt]`:
//!   `{meta: {totalResults, totalPages, pageSize, pageNo}, links: {self, first, last, prev?,
//!   next?}, data: [full orders]}`, oldest first (`sort=-createdAt`: newest first); the links
//!   are absolute URLs of this server, `next` only when there is a next page. Another
//!   `supplierId` matches nothing. Defaults: `pageNo` 1, `pageSize` 25.
//! - `POST /v1/webhooks` `{url, name, events, entityId, entityType: "supplier", authentication?:
//!   {basicAuth: {username, password}}, headers?: {…}}`: 201 `{id, name, url, events,
//!   supplierId, entityId, entityType, createdAt, updatedAt}`; a missing `url`, `events` or
//!   `entityId` is 400 `{"message","statusCode":400}`. `GET /v1/webhooks` lists them in the
//!   list envelope, `GET /v1/webhooks/{id}` shows one, `DELETE /v1/webhooks/{id}` is 204.
//! - The rate: a token bucket over all calls (the real API allows 24 order fetches per 60 s
//!   and answers 429 with `Retry-After: 60`); past it 429
//!   `{"message":"Too Many Requests","statusCode":429}` with `Retry-After` = the bucket's real
//!   wait rounded up to seconds, so tests stay fast. Maintenance (503) and injected 500s from
//!   the core.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::core::{bearer, retry_after_secs, Core};

pub const API_KEY: &str = "om_api_sim_0123456789";
pub const SUPPLIER_ID: &str = "503be8e5-5b8b-4a4a-8b56-1d2a3c4e5f60";

#[derive(Default)]
struct Books {
    orders: BTreeMap<String, Value>,
    /// Registrations as made, in order.
    webhooks: Vec<Value>,
}

#[derive(Clone)]
pub struct OrdermentumSim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    books: Arc<Mutex<Books>>,
}

type Shared = (Arc<Core>, Arc<Mutex<Books>>);

impl OrdermentumSim {
    pub async fn start(rate: f64, burst: u32) -> Self {
        let core = Arc::new(Core::new(rate, burst));
        let books = Arc::new(Mutex::new(Books::default()));
        let app = Router::new()
            .route("/v1/orders", get(list))
            .route("/v1/orders/{id}", get(one))
            .route("/v1/webhooks", get(webhook_list).post(webhook_create))
            .route("/v1/webhooks/{id}", get(webhook_one).delete(webhook_delete))
            .with_state((Arc::clone(&core), Arc::clone(&books)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, core, books }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds `order` (an Ordermentum order), replacing one of its id.
    pub fn put(&self, order: Value) {
        let id = order["id"].as_str().unwrap().to_owned();
        self.books.lock().unwrap().orders.insert(id, order);
    }

    /// The webhooks registered and not deleted, as registered: with `entityId`,
    /// `entityType`, and `authentication` and `headers` when given.
    pub fn webhooks(&self) -> Vec<Value> {
        self.books.lock().unwrap().webhooks.clone()
    }
}

/// A UUID (version 4 layout) made from `kind` and `n`, so ids are stable.
fn uuid(kind: u32, n: u64) -> String {
    format!(
        "{kind:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 48) & 0xffff,
        (n >> 36) & 0xfff,
        (n >> 24) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// Cents as a decimal string.
fn dec(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Cents as a JSON number, as Ordermentum sends order totals.
fn number(cents: i64) -> Value {
    json!(cents as f64 / 100.0)
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An Ordermentum order placed by a café: `n` units of one product, freight, 10 % GST.
pub fn order(id: &str, n: u32, created: DateTime<Utc>) -> Value {
    let sku = n % 40;
    let unit = 2500 + 50 * i64::from(n % 7);
    let subtotal = unit * i64::from(n);
    let freight = 1000;
    let gst = (subtotal + 5) / 10 + (freight + 5) / 10;
    let total = subtotal + freight + gst;
    let created_at = iso(created);
    let updated_at = iso(created + chrono::Duration::seconds(90));
    let retailer_id = uuid(0x7492_729e, u64::from(n));
    let retailer_name = format!("Cafe {n}");
    let email = format!("buyer{n}@example.com");
    let number_ = format!("OM{}", 1000 + n);
    json!({
        "id": id,
        "name": format!("Order - #{number_}"),
        "orderNumber": number_,
        "number": number_,
        "supplierId": SUPPLIER_ID,
        "retailerId": retailer_id,
        "retailerName": retailer_name,
        "retailer": {
            "id": retailer_id, "name": retailer_name, "legalName": format!("Cafe {n} Pty Ltd"),
            "tradingName": retailer_name, "email": email, "phone": "+61438888888", "abn": "51600457412"
        },
        "purchaser": {
            "id": uuid(0x863f_0000, u64::from(n)), "name": retailer_name, "reference": format!("CAFE{n}"),
            "retailerId": retailer_id, "supplierId": SUPPLIER_ID,
            "retailerEmail": email, "retailerPhone": "0488888888",
            "retailerAddressLine": format!("{} Fake St, Faketown, NSW, 2086", 100 + n % 50),
            "paymentMethodType": "card", "paymentTerms": "Statement 14 days"
        },
        "status": "Placed",
        "type": "auto",
        "paymentMethodType": "card",
        "freight": number(freight),
        "totalFreight": number(freight),
        "subtotal": number(subtotal),
        "totalGst": number(gst),
        "total": number(total),
        "isOutstanding": true,
        "lineItems": [{
            "id": uuid(0x4bd1_0000, u64::from(n)),
            "createdAt": created_at, "updatedAt": created_at,
            "name": format!("1kg Sourdough {sku}"),
            "SKU": format!("SKU-{sku}"),
            "orderId": id,
            "productId": uuid(0x9333_0000, u64::from(sku)),
            "price": dec(unit),
            "quantity": n,
            "subtotal": dec(subtotal),
            "taxable": true
        }],
        "lineCount": 1,
        "productCount": n,
        "comment": null,
        "reference": format!("PO-{n}"),
        "deliveryDate": iso(created + chrono::Duration::days(2)),
        "placedOn": created_at,
        "cancelledAt": null,
        "createdAt": created_at,
        "updatedAt": updated_at,
        "deletedAt": null
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "statusCode": status.as_u16()})),
    )
        .into_response()
}

fn throttled(wait: Duration) -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(wait)),
    );
    response
}

/// The gate every call passes: the rate, faults, the key, `Accept`.
fn admit(core: &Core, headers: &HeaderMap) -> Result<(), Response> {
    core.gate(throttled)?;
    let by_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|key| key == API_KEY);
    if !(by_key || bearer(headers) == Some(API_KEY)) {
        core.counts.unauthorized.fetch_add(1, Ordering::SeqCst);
        return Err(error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if accept.is_some_and(|a| {
        !(a.contains("application/json") || a.contains("*/*") || a.contains("application/*"))
    }) {
        return Err(error(StatusCode::NOT_ACCEPTABLE, "Not Acceptable"));
    }
    core.served();
    Ok(())
}

/// `pageNo` and `pageSize` of a list.
fn paging(params: &BTreeMap<String, String>) -> Result<(usize, usize), Response> {
    let page_no = match params.get("pageNo").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "\"pageNo\" must be an integer greater than or equal to 1",
            ))
        }
    };
    let page_size = match params.get("pageSize").map(|p| p.parse::<usize>()) {
        None => 25,
        Some(Ok(s)) if (1..=100).contains(&s) => s,
        Some(_) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "\"pageSize\" must be an integer from 1 to 100",
            ))
        }
    };
    Ok((page_no, page_size))
}

/// The list envelope of page `page_no` of `rows`, its links built on the request's own URL.
fn envelope(
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
    (page_no, page_size): (usize, usize),
    rows: Vec<Value>,
) -> Value {
    let total = rows.len();
    let pages = total.div_ceil(page_size);
    let data: Vec<Value> = rows
        .into_iter()
        .skip((page_no - 1) * page_size)
        .take(page_size)
        .collect();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let kept: Vec<&str> = raw_query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("pageNo="))
        .collect();
    let link = |page: usize| {
        let mut query = kept.clone();
        let page = format!("pageNo={page}");
        query.push(&page);
        format!("http://{host}{path}?{}", query.join("&"))
    };
    let mut links = json!({"self": link(page_no), "first": link(1), "last": link(pages.max(1))});
    if page_no > 1 {
        links["prev"] = json!(link((page_no - 1).min(pages.max(1))));
    }
    if page_no < pages {
        links["next"] = json!(link(page_no + 1));
    }
    json!({
        "meta": {"totalResults": total, "totalPages": pages, "pageSize": page_size, "pageNo": page_no},
        "links": links,
        "data": data
    })
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
    match found {
        Some(order) => Json(order).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let paging = match paging(&params) {
        Ok(p) => p,
        Err(e) => return e,
    };
    // (field, operator, bound) of every date filter.
    let mut filters = Vec::new();
    for field in ["createdAt", "updatedAt"] {
        for op in ["gte", "gt", "lte", "lt"] {
            let key = format!("{field}[{op}]");
            if let Some(text) = params.get(&key) {
                match parse_time(text) {
                    Some(t) => filters.push((field, op, t)),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("\"{key}\" must be a valid ISO 8601 date"),
                        )
                    }
                }
            }
        }
    }
    let descending = match params.get("sort").map(String::as_str) {
        None | Some("createdAt") => false,
        Some("-createdAt") => true,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "\"sort\" must be createdAt or -createdAt",
            )
        }
    };
    let supplier_ok = params.get("supplierId").is_none_or(|s| s == SUPPLIER_ID);
    let books = books.lock().unwrap();
    let mut rows: Vec<&Value> = books
        .orders
        .values()
        .filter(|_| supplier_ok)
        .filter(|o| {
            filters.iter().all(|(field, op, bound)| {
                o[*field]
                    .as_str()
                    .and_then(parse_time)
                    .is_some_and(|t| match *op {
                        "gte" => t >= *bound,
                        "gt" => t > *bound,
                        "lte" => t <= *bound,
                        _ => t < *bound,
                    })
            })
        })
        .collect();
    rows.sort_by_key(|o| {
        (
            o["createdAt"].as_str().and_then(parse_time),
            o["id"].as_str().unwrap_or_default().to_owned(),
        )
    });
    if descending {
        rows.reverse();
    }
    let rows: Vec<Value> = rows.into_iter().cloned().collect();
    drop(books);
    Json(envelope(
        &headers,
        "/v1/orders",
        raw_query.as_deref(),
        paging,
        rows,
    ))
    .into_response()
}

/// What the API shows of a registration (not its credentials).
fn public(webhook: &Value) -> Value {
    let mut shown = webhook.clone();
    if let Some(map) = shown.as_object_mut() {
        map.remove("authentication");
        map.remove("headers");
    }
    shown
}

async fn webhook_create(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, message);
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return bad("Request body must be a JSON object");
    };
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let Some(url) = text("url") else {
        return bad("\"url\" is required");
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return bad("\"url\" must be a valid uri");
    }
    let events: Vec<Value> = match body.get("events").and_then(Value::as_array) {
        Some(events) if !events.is_empty() && events.iter().all(Value::is_string) => events.clone(),
        Some(_) => return bad("\"events\" must be a non-empty array of event names"),
        None => return bad("\"events\" is required"),
    };
    let Some(entity_id) = text("entityId") else {
        return bad("\"entityId\" is required");
    };
    let entity_type = match body.get("entityType") {
        None => "supplier",
        Some(Value::String(t)) if t == "supplier" || t == "retailer" => t.as_str(),
        Some(_) => return bad("\"entityType\" must be one of [supplier, retailer]"),
    };
    let authentication = body.get("authentication");
    if let Some(auth) = authentication {
        let basic = &auth["basicAuth"];
        if !(basic["username"].is_string() && basic["password"].is_string()) {
            return bad("\"authentication.basicAuth\" must have a username and a password");
        }
    }
    let extra_headers = body.get("headers");
    if let Some(h) = extra_headers {
        if !h
            .as_object()
            .is_some_and(|h| h.values().all(Value::is_string))
        {
            return bad("\"headers\" must be an object of strings");
        }
    }
    let now = iso(Utc::now());
    let mut books = books.lock().unwrap();
    let n = books.webhooks.len() as u64 + 1;
    let mut webhook = json!({
        "id": uuid(0xb1da_7ace, n + (u64::from(std::process::id()) << 20)),
        "name": text("name").unwrap_or("Webhook"),
        "url": url,
        "events": events,
        "supplierId": entity_id,
        "entityId": entity_id,
        "entityType": entity_type,
        "createdAt": now,
        "updatedAt": now,
        "createdBy": null,
        "updatedBy": null,
        "deletedAt": null
    });
    if let Some(auth) = authentication {
        webhook["authentication"] = auth.clone();
    }
    if let Some(h) = extra_headers {
        webhook["headers"] = h.clone();
    }
    books.webhooks.push(webhook.clone());
    drop(books);
    (StatusCode::CREATED, Json(public(&webhook))).into_response()
}

async fn webhook_list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let paging = match paging(&params) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let rows: Vec<Value> = books
        .lock()
        .unwrap()
        .webhooks
        .iter()
        .filter(|w| {
            params
                .get("supplierId")
                .is_none_or(|s| w["supplierId"].as_str() == Some(s))
        })
        .map(public)
        .collect();
    Json(envelope(
        &headers,
        "/v1/webhooks",
        raw_query.as_deref(),
        paging,
        rows,
    ))
    .into_response()
}

async fn webhook_one(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let found = books
        .lock()
        .unwrap()
        .webhooks
        .iter()
        .find(|w| w["id"] == id.as_str())
        .map(public);
    match found {
        Some(webhook) => Json(webhook).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn webhook_delete(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let mut books = books.lock().unwrap();
    let before = books.webhooks.len();
    books.webhooks.retain(|w| w["id"] != id.as_str());
    if books.webhooks.len() == before {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    StatusCode::NO_CONTENT.into_response()
}
