//! A Sumeru API simulator (seed 000), following the contract the guide and SDK show:
//!
//! - Every call needs `Authorization: Bearer <api key>`; else 401
//!   `{"error":{"code":"unauthorized","message":…}}`.
//! - `GET /api/v1/orders?filter[date_from]=…&filter[date_to]=…&filter[updated_from]=…&filter[updated_to]=…&include=attribution&limit=…&cursor=…`:
//!   `{"data":[order…],"pagination":{"has_next","next_cursor","total"}}`, oldest first;
//!   `limit` above 100 is 400; a cursor it did not hand out is 400. Orders carry their
//!   attribution only with `include=attribution`.
//! - `GET /api/v1/orders/{id}`: `{"data": order}`, or 404.
//! - `POST /api/v1/webhook-subscriptions` `{url, events, secret: "auto"}`: 201
//!   `{"data":{"id":"whk_…","secret":"wsec_…"}}`, the secret shown once; `GET` lists them
//!   (without their secrets).
//! - `POST /api/v1/webhook-subscriptions/{id}/test` `{"event_type":"order.attributed"}`: posts
//!   a sample `order.attributed` event, signed `X-Sumeru-Signature: sha256=<hex>` with the
//!   subscription's secret, to its URL (retrying 5xx up to 5 times), and answers 202 with
//!   what the URL answered.
//! - A token bucket per API key (429 with `Retry-After` and the error body), `RateLimit-*`
//!   headers on every answer, maintenance windows (503 with `Retry-After`), injected 500s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::core::{bearer, retry_after_secs, Core};

pub const API_KEY: &str = "copt_live_sim_0123456789abcdef";

/// A subscription made through the API.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
}

#[derive(Default)]
struct Books {
    /// Orders by id, and their ids oldest first.
    orders: BTreeMap<String, Value>,
    order: Vec<(DateTime<Utc>, String)>,
    subscriptions: Vec<Subscription>,
    /// Pages served: cursor handed out → offset.
    cursors: BTreeMap<String, usize>,
    test_deliveries: Vec<(u16, String)>,
}

#[derive(Clone)]
pub struct SumeruSim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    books: Arc<Mutex<Books>>,
}

type Shared = (Arc<Core>, Arc<Mutex<Books>>);

impl SumeruSim {
    /// A simulator allowing `rate` requests a second in bursts of `burst`.
    pub async fn start(rate: f64, burst: u32) -> Self {
        let core = Arc::new(Core::new(rate, burst));
        let books = Arc::new(Mutex::new(Books::default()));
        let app = Router::new()
            .route("/api/v1/orders", get(list))
            .route("/api/v1/orders/{id}", get(one))
            .route(
                "/api/v1/webhook-subscriptions",
                post(subscribe).get(subscriptions),
            )
            .route(
                "/api/v1/webhook-subscriptions/{id}/test",
                post(test_delivery),
            )
            .with_state((Arc::clone(&core), Arc::clone(&books)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, core, books }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds `count` orders created from `from`, one every `step`, ids `ord_<first + i>`, each
    /// with lines, a customer and attribution. Returns their ids.
    pub fn seed(
        &self,
        first: usize,
        count: usize,
        from: DateTime<Utc>,
        step: Duration,
    ) -> Vec<String> {
        let mut books = self.books.lock().unwrap();
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let n = first + i;
            let created = from + chrono::Duration::from_std(step * i as u32).unwrap();
            let order = order(n, created);
            let id = order["order_id"].as_str().unwrap().to_owned();
            books.orders.insert(id.clone(), order);
            books.order.push((created, id.clone()));
            ids.push(id);
        }
        books.order.sort();
        ids
    }

    /// The order `id` as the API holds it.
    pub fn order(&self, id: &str) -> Option<Value> {
        self.books.lock().unwrap().orders.get(id).cloned()
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.books.lock().unwrap().subscriptions.clone()
    }

    /// (status, event id) of every test delivery made.
    pub fn test_deliveries(&self) -> Vec<(u16, String)> {
        self.books.lock().unwrap().test_deliveries.clone()
    }
}

/// A Sumeru order with attribution: two lines, a customer, three touchpoints.
pub fn order(n: usize, created: DateTime<Utc>) -> Value {
    let quantity = 1 + n % 3;
    let price = format!("{}.{:02}", 10 + n % 90, n % 100);
    let unit: f64 = price.parse().unwrap();
    let total = format!("{:.2}", unit * quantity as f64 + 4.5);
    let channels = ["paid_search", "social", "email", "referral"];
    let first = channels[n % 4];
    let last = channels[(n + 2) % 4];
    json!({
        "order_id": format!("ord_{n}"),
        "shopify_order_id": format!("{}", 5_100_000_000u64 + n as u64),
        "order_number": format!("#{}", 1000 + n),
        "customer": {"id": format!("cus_{}", n % 500), "email": format!("buyer{n}@example.com"), "name": format!("Buyer {n}")},
        "total": total,
        "currency": "USD",
        "created_at": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "updated_at": (created + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "line_items": [
            {"sku": format!("SKU-{}", n % 50), "title": "Widget", "quantity": quantity, "price": price},
            {"sku": "SHIP-STD", "title": "Standard shipping", "quantity": 1, "price": "4.50"}
        ],
        "attribution": {
            "first_touch": {"channel": first, "campaign": "spring", "source": "google", "medium": "cpc",
                            "occurred_at": (created - chrono::Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "credit_pct": 40},
            "last_touch": {"channel": last, "source": "newsletter", "medium": "email",
                           "occurred_at": (created - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "credit_pct": 35},
            "touchpoints": [
                {"channel": first, "campaign": "spring", "source": "google", "medium": "cpc", "credit_pct": 40},
                {"channel": "direct", "credit_pct": 25},
                {"channel": last, "source": "newsletter", "medium": "email", "credit_pct": 35}
            ]
        }
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn throttled(wait: Duration) -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests; slow down",
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(retry_after_secs(wait)));
    response
}

/// The gate every call passes: the rate, faults, the key.
fn admit(core: &Core, headers: &HeaderMap) -> Result<(), Response> {
    core.gate(throttled)?;
    if bearer(headers) != Some(API_KEY) {
        core.counts
            .unauthorized
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid or missing API key",
        ));
    }
    Ok(())
}

/// `RateLimit-*` on an answer.
fn with_rate_headers(core: &Core, mut response: Response) -> Response {
    let (limit, remaining) = {
        let mut bucket = core.bucket.lock().unwrap();
        (bucket.rate().ceil() as u64, bucket.remaining())
    };
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(1u64));
    core.served();
    response
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0)?));
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn time_of(order: &Value, field: &str) -> Option<DateTime<Utc>> {
    parse_time(order.get(field)?.as_str()?)
}

async fn list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let bound = |key: &str| -> Result<Option<DateTime<Utc>>, Response> {
        match params.get(key) {
            None => Ok(None),
            Some(text) => parse_time(text).map(Some).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_filter",
                    &format!("{key} is not a date"),
                )
            }),
        }
    };
    let (from, to, updated_from, updated_to) = match (
        bound("filter[date_from]"),
        bound("filter[date_to]"),
        bound("filter[updated_from]"),
        bound("filter[updated_to]"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => return e,
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 25,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_limit",
                "limit must be 1 to 100",
            )
        }
    };
    let attribution = params
        .get("include")
        .is_some_and(|i| i.split(',').any(|p| p == "attribution"));
    let mut books = books.lock().unwrap();
    let offset = match params.get("cursor") {
        None => 0,
        Some(cursor) => match books.cursors.get(cursor) {
            Some(offset) => *offset,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_cursor",
                    "cursor is not valid",
                )
            }
        },
    };
    // Only the page is copied: a listing costs the simulator what it costs a database, not
    // a copy of every order, so a benchmark measures the client and not the simulator.
    let matching: Vec<&Value> = books
        .order
        .iter()
        .filter_map(|(_, id)| books.orders.get(id))
        .filter(|o| {
            let created = time_of(o, "created_at");
            let updated = time_of(o, "updated_at");
            from.is_none_or(|f| created.is_some_and(|c| c >= f))
                && to.is_none_or(|t| created.is_some_and(|c| c < t))
                && updated_from.is_none_or(|u| updated.is_some_and(|d| d >= u))
                && updated_to.is_none_or(|u| updated.is_some_and(|d| d < u))
        })
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .map(|mut o| {
            if !attribution {
                if let Some(map) = o.as_object_mut() {
                    map.remove("attribution");
                }
            }
            o
        })
        .collect();
    let end = offset + page.len();
    let has_next = end < total;
    let next_cursor = has_next.then(|| {
        let cursor = format!("c{}", books.cursors.len() + 1);
        books.cursors.insert(cursor.clone(), end);
        cursor
    });
    drop(books);
    with_rate_headers(
        &core,
        Json(json!({"data": page, "pagination": {"has_next": has_next, "next_cursor": next_cursor, "total": total}}))
            .into_response(),
    )
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
        Some(order) => with_rate_headers(&core, Json(json!({"data": order})).into_response()),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Order {id} not found"),
        ),
    }
}

async fn subscriptions(State((core, books)): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let listed: Vec<Value> = books
        .lock()
        .unwrap()
        .subscriptions
        .iter()
        .map(|s| json!({"id": s.id, "url": s.url, "events": s.events}))
        .collect();
    with_rate_headers(&core, Json(json!({"data": listed})).into_response())
}

async fn subscribe(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let url = body.get("url").and_then(Value::as_str).unwrap_or_default();
    let events: Vec<String> = body
        .get("events")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !(url.starts_with("https://") || url.starts_with("http://127.0.0.1")) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_url",
            "url must be https",
        );
    }
    if events.is_empty()
        || events
            .iter()
            .any(|e| !["order.created", "order.attributed"].contains(&e.as_str()))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_events",
            "unknown event type",
        );
    }
    if body.get("secret").and_then(Value::as_str) != Some("auto") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_secret",
            "secret must be \"auto\"",
        );
    }
    let mut books = books.lock().unwrap();
    let n = books.subscriptions.len() + 1;
    let subscription = Subscription {
        id: format!("whk_sim{n:04}"),
        url: url.to_owned(),
        events,
        secret: format!("wsec_sim{n:04}{}", "xY7aB3cKz9"),
    };
    books.subscriptions.push(subscription.clone());
    drop(books);
    let mut response = with_rate_headers(
        &core,
        Json(json!({"data": {"id": subscription.id, "url": subscription.url, "events": subscription.events, "secret": subscription.secret}}))
            .into_response(),
    );
    *response.status_mut() = StatusCode::CREATED;
    response
}

/// Signs `body` as Sumeru does.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn test_delivery(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let subscription = books
        .lock()
        .unwrap()
        .subscriptions
        .iter()
        .find(|s| s.id == id)
        .cloned();
    let Some(subscription) = subscription else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Subscription {id} not found"),
        );
    };
    let event_type = body
        .get("event_type")
        .and_then(Value::as_str)
        .unwrap_or("order.attributed");
    let n = books.lock().unwrap().test_deliveries.len() + 1;
    let event_id = format!("evt_test_{id}_{n}");
    let now = Utc::now();
    let event = json!({"id": event_id, "type": event_type,
        "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": order(900_000 + n, now)});
    let payload = serde_json::to_vec(&event).unwrap();
    let client = reqwest::Client::new();
    let mut status = 0;
    for _ in 0..5 {
        let sent = client
            .post(&subscription.url)
            .header("content-type", "application/json")
            .header("x-sumeru-signature", sign(&subscription.secret, &payload))
            .body(payload.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        status = sent.map(|r| r.status().as_u16()).unwrap_or(0);
        if (200..300).contains(&status) || (400..500).contains(&status) {
            break;
        }
    }
    books
        .lock()
        .unwrap()
        .test_deliveries
        .push((status, event_id.clone()));
    let mut response = with_rate_headers(
        &core,
        Json(json!({"data": {"event_id": event_id, "delivered": (200..300).contains(&status), "response_status": status}})).into_response(),
    );
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}
