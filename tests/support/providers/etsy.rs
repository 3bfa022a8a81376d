//! An Etsy Open API v3 simulator: the OAuth token endpoint's refresh grant and the shop
//! receipts, following Etsy's documented contract.
//!
//! - `POST /v3/public/oauth/token`, form `grant_type=refresh_token&client_id=<keystring>&refresh_token=…`
//!   (no client secret, no Basic auth): `{access_token: "<user_id>.<token>", token_type:
//!   "Bearer", expires_in, refresh_token}`. Etsy rotates refresh tokens: every refresh issues a
//!   new one, and the one it replaced stays good only until a newer one has been used once.
//!   An unknown or retired refresh token is 400 `invalid_grant`, a wrong `client_id` 401
//!   `invalid_client`, another grant 400 `unsupported_grant_type`.
//! - Every API call needs `x-api-key: <keystring>:<shared secret>`: a bare keystring is 403
//!   `{"error":"Shared secret is required in x-api-key header."}`, anything else wrong 403
//!   `{"error":"Invalid API key: should be in the format 'keystring:shared_secret'"}`; and
//!   `Authorization: Bearer <user_id>.<token>`: missing, unknown or expired is 401
//!   `{"error":"invalid_token","error_description":…}`.
//! - `GET /v3/application/shops/{shop_id}/receipts/{receipt_id}`: the `ShopReceipt`; an unknown
//!   receipt, or one of another shop, is 404 `{"error":"Receipt not found"}`; a receipt id
//!   that is not a number 400.
//! - `GET /v3/application/shops/{shop_id}/receipts?min_created&max_created&min_last_modified&max_last_modified&limit&offset`
//!   (Unix seconds, bounds inclusive, at least 946684800; `limit` 1..=100, default 25;
//!   `offset` default 0): `{count: <total matching>, results}`, oldest first (the simulator
//!   always sorts by creation ascending, then receipt id; `sort_on`/`sort_order` are not
//!   modelled). A bad `limit` is 400 `{"error":"limit must be between 1 and 100"}`.
//! - Money is `{amount, divisor: 100, currency_code: "USD"}`; `price` on a transaction is the
//!   unit price; `grandtotal = subtotal + shipping + tax`.
//! - The app's rate: a token bucket; `x-limit-per-second`, `x-remaining-this-second`,
//!   `x-limit-per-day`, `x-remaining-today` on answers; past it 429
//!   `{"error":"Rate limit exceeded"}` with `retry-after` seconds and none of the limit
//!   headers. Maintenance (503) and injected 500s from the core. The token endpoint is not
//!   rate limited (as the eBay simulator's).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::core::{bearer, retry_after_secs, Core};

pub const KEYSTRING: &str = "1aa2bb33c44d55eeeeee6fff";
pub const SHARED_SECRET: &str = "etsy-sim-shared-secret";
pub const REFRESH_TOKEN: &str = "12345678.sim-refresh-0";
pub const SHOP_ID: &str = "12345";
/// The seller's Etsy user id: the prefix of every token.
pub const USER_ID: u64 = 12_345_678;
/// The daily quota announced in `x-limit-per-day`.
pub const LIMIT_PER_DAY: u64 = 100_000;
/// The lowest timestamp Etsy accepts in a filter.
const MIN_TIMESTAMP: i64 = 946_684_800;

/// Refresh tokens: the ones issued and not yet used, and the one last used, which stays
/// good until one of the newer ones is used.
struct Refresh {
    fresh: Vec<String>,
    previous: Option<String>,
    issued: u64,
}

struct Books {
    /// Receipts of `SHOP_ID` by id.
    receipts: BTreeMap<u64, Value>,
    refresh: Refresh,
}

#[derive(Clone)]
pub struct EtsySim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    books: Arc<Mutex<Books>>,
}

type Shared = (Arc<Core>, Arc<Mutex<Books>>);

impl EtsySim {
    pub async fn start(rate: f64, burst: u32) -> Self {
        let core = Arc::new(Core::new(rate, burst));
        let books = Arc::new(Mutex::new(Books {
            receipts: BTreeMap::new(),
            refresh: Refresh {
                fresh: vec![REFRESH_TOKEN.to_owned()],
                previous: None,
                issued: 0,
            },
        }));
        let app = Router::new()
            .route("/v3/public/oauth/token", post(token))
            .route("/v3/application/shops/{shop_id}/receipts", get(list))
            .route(
                "/v3/application/shops/{shop_id}/receipts/{receipt_id}",
                get(one),
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

    /// Holds `receipt` (a `ShopReceipt`) in shop `SHOP_ID`, replacing one of its id.
    pub fn put(&self, receipt: Value) {
        let id = receipt["receipt_id"].as_u64().unwrap();
        self.books.lock().unwrap().receipts.insert(id, receipt);
    }

    /// The refresh tokens the token endpoint accepts now.
    pub fn refresh_tokens(&self) -> Vec<String> {
        let books = self.books.lock().unwrap();
        let mut tokens = books.refresh.fresh.clone();
        tokens.extend(books.refresh.previous.clone());
        tokens
    }
}

/// `cents` as Etsy's `Money`.
fn money(cents: i64) -> Value {
    json!({"amount": cents, "divisor": 100, "currency_code": "USD"})
}

/// An Etsy receipt: `n` units of one listing, shipping, 8 % sales tax, a buyer and an address.
pub fn receipt(receipt_id: u64, n: u32, created: DateTime<Utc>) -> Value {
    let unit = 1250 + 100 * i64::from(n % 7);
    let total_price = unit * i64::from(n);
    let shipping = 499;
    let discount = 0;
    let tax = (total_price * 8 + 50) / 100;
    let subtotal = total_price - discount;
    let grandtotal = subtotal + shipping + tax;
    let created_ts = created.timestamp();
    let updated_ts = created_ts + 90;
    let buyer_user_id = 87_650_000 + u64::from(n);
    let sku = n % 40;
    let transaction = json!({
        "transaction_id": 4_000_000_000u64 + receipt_id % 1_000_000_000, "receipt_id": receipt_id,
        "title": format!("Handmade Ceramic Mug {sku}"), "description": "Stoneware mug, 12 oz",
        "seller_user_id": USER_ID, "buyer_user_id": buyer_user_id,
        "create_timestamp": created_ts, "created_timestamp": created_ts,
        "paid_timestamp": created_ts + 5, "shipped_timestamp": null,
        "quantity": n, "listing_image_id": 5_678_900_000u64 + u64::from(sku),
        "is_digital": false, "file_data": "", "transaction_type": "listing",
        "listing_id": 1_234_560_000u64 + u64::from(sku), "product_id": 9_876_540_000u64 + u64::from(sku),
        "sku": format!("SKU-{sku}"),
        "price": money(unit), "shipping_cost": money(shipping),
        "variations": [], "product_data": [],
        "shipping_profile_id": 222_333_444, "min_processing_days": 1, "max_processing_days": 3,
        "shipping_method": null, "shipping_upgrade": null, "expected_ship_date": created_ts + 3 * 86_400,
        "buyer_coupon": 0, "shop_coupon": 0
    });
    let mut receipt = json!({
        "receipt_id": receipt_id, "receipt_type": 0,
        "seller_user_id": USER_ID, "seller_email": "seller@example.com",
        "buyer_user_id": buyer_user_id, "buyer_email": format!("buyer{n}@example.com"),
        "name": format!("Buyer {n}"), "first_line": "200 Oak Ave", "second_line": format!("Apt {}", n % 20 + 1),
        "city": "Springfield", "state": "IL", "zip": "62704", "country_iso": "US",
        "formatted_address": format!("Buyer {n}\n200 Oak Ave\nApt {}\nSPRINGFIELD, IL 62704\nUnited States", n % 20 + 1),
        "status": "paid", "payment_method": "cc", "payment_email": null,
        "message_from_seller": null, "message_from_buyer": null, "message_from_payment": null,
        "is_paid": true, "is_shipped": false,
        "create_timestamp": created_ts, "created_timestamp": created_ts,
        "update_timestamp": updated_ts, "updated_timestamp": updated_ts,
        "is_gift": false, "gift_message": "", "gift_sender": "",
        "shipments": [], "transactions": [transaction], "refunds": []
    });
    for (field, cents) in [
        ("grandtotal", grandtotal),
        ("subtotal", subtotal),
        ("total_price", total_price),
        ("total_shipping_cost", shipping),
        ("total_tax_cost", tax),
        ("total_vat_cost", 0),
        ("discount_amt", discount),
        ("gift_wrap_price", 0),
    ] {
        receipt[field] = money(cents);
    }
    receipt
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn throttled(wait: Duration) -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(retry_after_secs(wait)));
    response
}

/// The gate every API call passes: the rate, faults, the API key, the token.
fn admit(core: &Core, headers: &HeaderMap) -> Result<(), Response> {
    core.gate(throttled)?;
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if key != format!("{KEYSTRING}:{SHARED_SECRET}") {
        core.counts
            .unauthorized
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let message = if key == KEYSTRING {
            "Shared secret is required in x-api-key header."
        } else {
            "Invalid API key: should be in the format 'keystring:shared_secret'"
        };
        return Err(with_rate_headers(
            core,
            error(StatusCode::FORBIDDEN, message),
        ));
    }
    match bearer(headers) {
        Some(token) if core.token_valid(token) => Ok(()),
        Some(_) => Err(with_rate_headers(
            core,
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "access token is expired",
            ),
        )),
        None => {
            core.counts
                .unauthorized
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(with_rate_headers(
                core,
                oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "access token is missing",
                ),
            ))
        }
    }
}

/// The four limit headers on an answer.
fn with_rate_headers(core: &Core, mut response: Response) -> Response {
    let (per_second, remaining) = {
        let mut bucket = core.bucket.lock().unwrap();
        (bucket.rate().ceil() as u64, bucket.remaining())
    };
    let used = Core::count(&core.counts.requests);
    let headers = response.headers_mut();
    headers.insert("x-limit-per-second", HeaderValue::from(per_second));
    headers.insert("x-remaining-this-second", HeaderValue::from(remaining));
    headers.insert("x-limit-per-day", HeaderValue::from(LIMIT_PER_DAY));
    headers.insert(
        "x-remaining-today",
        HeaderValue::from(LIMIT_PER_DAY.saturating_sub(used)),
    );
    response
}

/// A served answer: counted, with the limit headers.
fn served(core: &Core, response: Response) -> Response {
    core.served();
    with_rate_headers(core, response)
}

async fn token(
    State((core, books)): State<Shared>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if form.get("client_id").map(String::as_str) != Some(KEYSTRING) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is not a known API keystring",
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
    }
    let Some(presented) = form.get("refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token is required",
        );
    };
    let new_refresh = {
        let mut books = books.lock().unwrap();
        let refresh = &mut books.refresh;
        let is_fresh = refresh.fresh.iter().any(|t| t == presented);
        let is_previous = refresh.previous.as_deref() == Some(presented.as_str());
        if !is_fresh && !is_previous {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid refresh token",
            );
        }
        refresh.issued += 1;
        let new = format!("{USER_ID}.sim-refresh-{}", refresh.issued);
        if is_fresh {
            // A newer token used: the one it replaced is retired, and so are its siblings.
            refresh.previous = Some(presented.clone());
            refresh.fresh = vec![new.clone()];
        } else {
            refresh.fresh.push(new.clone());
        }
        new
    };
    let (access, lifetime) = core.issue_token(&format!("{USER_ID}.sim-access-"));
    Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "refresh_token": new_refresh
    }))
    .into_response()
}

async fn one(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path((shop_id, receipt_id)): Path<(String, String)>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let Ok(receipt_id) = receipt_id.parse::<u64>() else {
        return served(
            &core,
            error(
                StatusCode::BAD_REQUEST,
                "Expected int value for 'receipt_id'",
            ),
        );
    };
    let found = (shop_id == SHOP_ID)
        .then(|| books.lock().unwrap().receipts.get(&receipt_id).cloned())
        .flatten();
    match found {
        Some(receipt) => served(&core, Json(receipt).into_response()),
        None => served(&core, error(StatusCode::NOT_FOUND, "Receipt not found")),
    }
}

async fn list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(shop_id): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let bad = |message: &str| served(&core, error(StatusCode::BAD_REQUEST, message));
    let mut bounds = [None; 4];
    let names = [
        "min_created",
        "max_created",
        "min_last_modified",
        "max_last_modified",
    ];
    for (bound, name) in bounds.iter_mut().zip(names) {
        if let Some(text) = params.get(name) {
            match text.parse::<i64>() {
                Ok(t) if t >= MIN_TIMESTAMP => *bound = Some(t),
                Ok(_) => {
                    return bad(&format!(
                        "{name} must be greater than or equal to {MIN_TIMESTAMP}"
                    ))
                }
                Err(_) => return bad(&format!("Expected int value for '{name}'")),
            }
        }
    }
    let [min_created, max_created, min_modified, max_modified] = bounds;
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 25,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return bad("limit must be between 1 and 100"),
    };
    let offset = match params.get("offset").map(|o| o.parse::<usize>()) {
        None => 0,
        Some(Ok(o)) => o,
        Some(Err(_)) => return bad("offset must be an integer greater than or equal to 0"),
    };
    let books = books.lock().unwrap();
    let within = |t: i64, min: Option<i64>, max: Option<i64>| {
        min.is_none_or(|m| t >= m) && max.is_none_or(|m| t <= m)
    };
    let mut matching: Vec<&Value> = if shop_id == SHOP_ID {
        books
            .receipts
            .values()
            .filter(|r| {
                let created = r["created_timestamp"].as_i64().unwrap_or_default();
                let updated = r["updated_timestamp"].as_i64().unwrap_or_default();
                within(created, min_created, max_created)
                    && within(updated, min_modified, max_modified)
            })
            .collect()
    } else {
        Vec::new()
    };
    matching.sort_by_key(|r| {
        (
            r["created_timestamp"].as_i64().unwrap_or_default(),
            r["receipt_id"].as_u64().unwrap_or_default(),
        )
    });
    let count = matching.len();
    let results: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    drop(books);
    served(
        &core,
        Json(json!({"count": count, "results": results})).into_response(),
    )
}
