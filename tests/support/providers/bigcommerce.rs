//! A BigCommerce REST simulator: Orders V2 and Webhooks V3, following BigCommerce's documented
//! contract.
//!
//! - Everything lives under `/stores/{store_hash}/…`; another store hash is 404. Auth is
//!   `X-Auth-Token: <access token>` (`X-Auth-Client` is neither needed nor checked); a missing
//!   or wrong one is 401, in the version's error shape.
//! - V2 errors are arrays `[{"status", "message"}]`; V3 errors objects `{"status", "title",
//!   "type"}` (with `errors` on 422).
//! - `GET /v2/orders/{id}`: the order object (money as strings with 4 decimals, dates RFC 2822
//!   in UTC, `status_id` 11 "Awaiting Fulfillment", `products` and `shipping_addresses` as
//!   `{url, resource}` pointing at this server). Unknown is 404
//!   `[{"status":404,"message":"The requested resource was not found."}]`.
//! - `GET /v2/orders/{id}/products?page&limit` and `GET /v2/orders/{id}/shipping_addresses?page&limit`:
//!   bare arrays (`limit` default 50, at most 250, else 413); an empty page is
//!   **204 No Content**, as V2 answers.
//! - `GET /v2/orders?min_date_created&max_date_created&min_date_modified&max_date_modified&page&limit&sort`:
//!   dates RFC 2822 or ISO 8601 (bounds inclusive); `sort` `id|date_created|date_modified`
//!   with `:asc`/`:desc` (default `id:asc`); a bare array; a page past the end, or no match,
//!   is 204.
//! - `POST /v3/hooks` `{scope, destination, is_active?, headers?}`: 200 `{"data": {id,
//!   client_id, store_hash, scope, destination, headers, is_active, created_at, updated_at},
//!   "meta": {}}`; a scope not under `store/`, a destination not `https` on port 443, or
//!   headers not an object of strings is 422. `GET /v3/hooks` lists, `DELETE /v3/hooks/{id}`
//!   answers the deleted hook.
//! - The store's rate: a token bucket; `X-Rate-Limit-Requests-Left`, `-Requests-Quota` (the
//!   burst), `-Time-Window-Ms` (the time to refill the whole burst) and `-Time-Reset-Ms`
//!   (the time to refill what was used, or to the next request when none is left) on every
//!   answer; past it 429 with `Requests-Left: 0`, `Reset-Ms` = the bucket's wait, the
//!   version's error body, and no `Retry-After`. Maintenance (503) and injected 500s from
//!   the core. Change the rate with [`BigCommerceSim::set_rate`] so the quota header follows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::map_response_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use super::core::Core;

pub const STORE_HASH: &str = "abcde";
pub const ACCESS_TOKEN: &str = "bc-sim-access-token";
/// The app's client id, as hooks show it.
pub const CLIENT_ID: &str = "m9r6keqmo7h7f23btnpwernbez1kglkl";
const REQUESTS_LEFT: &str = "x-rate-limit-requests-left";
const RESET_MS: &str = "x-rate-limit-time-reset-ms";
const STATUS_TYPE: &str =
    "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes";

#[derive(Default)]
struct Books {
    orders: BTreeMap<u64, Value>,
    products: BTreeMap<u64, Vec<Value>>,
    shipping_addresses: BTreeMap<u64, Vec<Value>>,
    hooks: Vec<Value>,
    hooks_made: u64,
}

/// The rate headers' inputs: the core and the quota (the bucket's burst).
#[derive(Clone)]
struct Rates {
    core: Arc<Core>,
    quota: Arc<AtomicU32>,
}

#[derive(Clone)]
pub struct BigCommerceSim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    books: Arc<Mutex<Books>>,
    quota: Arc<AtomicU32>,
}

type Shared = (Arc<Core>, Arc<Mutex<Books>>);

impl BigCommerceSim {
    pub async fn start(rate: f64, burst: u32) -> Self {
        let core = Arc::new(Core::new(rate, burst));
        let books = Arc::new(Mutex::new(Books::default()));
        let quota = Arc::new(AtomicU32::new(burst));
        let rates = Rates {
            core: Arc::clone(&core),
            quota: Arc::clone(&quota),
        };
        let app = Router::new()
            .route("/stores/{hash}/v2/orders", get(list))
            .route("/stores/{hash}/v2/orders/{id}", get(one))
            .route("/stores/{hash}/v2/orders/{id}/products", get(products))
            .route(
                "/stores/{hash}/v2/orders/{id}/shipping_addresses",
                get(shipping_addresses),
            )
            .route("/stores/{hash}/v3/hooks", get(hook_list).post(hook_create))
            .route(
                "/stores/{hash}/v3/hooks/{id}",
                axum::routing::delete(hook_delete),
            )
            .layer(map_response_with_state(rates, rate_headers))
            .with_state((Arc::clone(&core), Arc::clone(&books)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            core,
            books,
            quota,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds `order` (a V2 order) and its `products`, replacing an order of its id; its
    /// sub-resource URLs point at this server, and its shipping address is its billing one.
    pub fn put(&self, mut order: Value, products: Vec<Value>) {
        let id = order["id"].as_u64().unwrap();
        let base = format!("{}/stores/{STORE_HASH}/v2", self.base_url());
        for resource in ["products", "shipping_addresses"] {
            order[resource] = json!({
                "url": format!("{base}/orders/{id}/{resource}"),
                "resource": format!("/orders/{id}/{resource}"),
            });
        }
        let mut shipping = json!({
            "id": id * 10, "order_id": id,
            "items_total": order["items_total"], "items_shipped": 0,
            "shipping_method": "Flat Rate",
            "base_cost": order["base_shipping_cost"], "cost_ex_tax": order["shipping_cost_ex_tax"],
            "cost_inc_tax": order["shipping_cost_inc_tax"], "cost_tax": order["shipping_cost_tax"],
            "cost_tax_class_id": 2, "base_handling_cost": "0.0000", "handling_cost_ex_tax": "0.0000",
            "handling_cost_inc_tax": "0.0000", "handling_cost_tax": "0.0000", "handling_cost_tax_class_id": 2,
            "shipping_zone_id": 1, "shipping_zone_name": "United States", "form_fields": []
        });
        for field in [
            "first_name",
            "last_name",
            "company",
            "street_1",
            "street_2",
            "city",
            "state",
            "zip",
            "country",
            "country_iso2",
            "email",
            "phone",
        ] {
            shipping[field] = order["billing_address"][field].clone();
        }
        let mut books = self.books.lock().unwrap();
        books.shipping_addresses.insert(id, vec![shipping]);
        books.products.insert(id, products);
        books.orders.insert(id, order);
    }

    /// The hooks created through the API and not deleted.
    pub fn hooks(&self) -> Vec<Value> {
        self.books.lock().unwrap().hooks.clone()
    }

    /// A new rate for the store, its quota header following.
    pub fn set_rate(&self, rate: f64, burst: u32) {
        self.core.set_rate(rate, burst);
        self.quota.store(burst, Ordering::SeqCst);
    }
}

/// The objects `parts` as one (a single `json!` this big recurses too deep).
fn merged<const N: usize>(parts: [Value; N]) -> Value {
    let mut all = serde_json::Map::new();
    for part in parts {
        if let Value::Object(map) = part {
            all.extend(map);
        }
    }
    Value::Object(all)
}

/// Cents as BigCommerce's 4-decimal string.
fn dec(cents: i64) -> String {
    format!("{}.{:02}00", cents / 100, cents % 100)
}

fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// One order product: `quantity` units at `unit` cents before 8 % tax.
fn product(
    order_id: u64,
    line: u64,
    product_id: u64,
    name: &str,
    sku: &str,
    unit: i64,
    quantity: u32,
) -> Value {
    let tax = (unit * 8 + 50) / 100;
    let units = i64::from(quantity);
    let mut product = merged([
        json!({
            "id": order_id * 10 + line, "order_id": order_id, "product_id": product_id,
            "variant_id": product_id * 10, "order_address_id": order_id * 10,
            "name": name, "name_customer": name, "name_merchant": name,
            "sku": sku, "upc": "", "type": "physical",
            "base_price": dec(unit), "price_ex_tax": dec(unit), "price_inc_tax": dec(unit + tax), "price_tax": dec(tax),
            "base_total": dec(unit * units), "total_ex_tax": dec(unit * units),
            "total_inc_tax": dec((unit + tax) * units), "total_tax": dec(tax * units),
            "quantity": quantity,
            "discounted_total_inc_tax": dec((unit + tax) * units)
        }),
        json!({
            "weight": "1.0000", "width": "1.0000", "height": "1.0000", "depth": "1.0000",
            "is_refunded": false, "quantity_refunded": 0, "return_id": 0,
            "wrapping_id": 0, "wrapping_name": "", "wrapping_message": "", "quantity_shipped": 0,
            "ebay_item_id": "", "ebay_transaction_id": "", "option_set_id": null,
            "parent_order_product_id": null, "is_bundled_product": false, "bin_picking_number": "",
            "external_id": null, "brand": "OrderBridge Goods",
            "applied_discounts": [], "product_options": [], "configurable_fields": [],
            "gift_certificate_id": null
        }),
    ]);
    for field in [
        "base_cost_price",
        "cost_price_inc_tax",
        "cost_price_ex_tax",
        "cost_price_tax",
        "refund_amount",
        "base_wrapping_cost",
        "wrapping_cost_ex_tax",
        "wrapping_cost_inc_tax",
        "wrapping_cost_tax",
        "fixed_shipping_cost",
    ] {
        product[field] = json!(dec(0));
    }
    product
}

/// A BigCommerce order awaiting fulfillment, and its products: `n` units of `SKU-<n % 40>`
/// and one `SKU-GIFT`, flat-rate shipping, 8 % tax on goods and shipping.
pub fn order(id: u64, n: u32, created: DateTime<Utc>) -> (Value, Vec<Value>) {
    let sku = n % 40;
    let unit = 1999 + 100 * i64::from(n % 7);
    let gift_unit = 500;
    let products = vec![
        product(
            id,
            1,
            100 + u64::from(sku),
            &format!("Blue Widget {sku}"),
            &format!("SKU-{sku}"),
            unit,
            n,
        ),
        product(id, 2, 900, "Gift Wrap Card", "SKU-GIFT", gift_unit, 1),
    ];
    let tax = |cents: i64| (cents * 8 + 50) / 100;
    let subtotal_ex = unit * i64::from(n) + gift_unit;
    let subtotal_tax = tax(unit) * i64::from(n) + tax(gift_unit);
    let shipping_ex = 1000;
    let shipping_tax = tax(shipping_ex);
    let total_ex = subtotal_ex + shipping_ex;
    let total_tax = subtotal_tax + shipping_tax;
    let mut order = merged([
        json!({
            "id": id, "customer_id": u64::from(n % 50) + 1,
            "date_created": rfc2822(created),
            "date_modified": rfc2822(created + chrono::Duration::seconds(90)),
            "date_shipped": "",
            "status_id": 11, "status": "Awaiting Fulfillment", "custom_status": "Awaiting Fulfillment",
            "subtotal_ex_tax": dec(subtotal_ex), "subtotal_inc_tax": dec(subtotal_ex + subtotal_tax),
            "subtotal_tax": dec(subtotal_tax),
            "base_shipping_cost": dec(shipping_ex), "shipping_cost_ex_tax": dec(shipping_ex),
            "shipping_cost_inc_tax": dec(shipping_ex + shipping_tax), "shipping_cost_tax": dec(shipping_tax),
            "total_ex_tax": dec(total_ex), "total_inc_tax": dec(total_ex + total_tax), "total_tax": dec(total_tax),
            "items_total": n + 1, "items_shipped": 0,
            "currency_id": 1, "currency_code": "USD", "currency_exchange_rate": "1.0000000000"
        }),
        json!({
            "shipping_cost_tax_class_id": 2, "handling_cost_tax_class_id": 2, "wrapping_cost_tax_class_id": 3,
            "is_tax_inclusive_pricing": false,
            "payment_method": "Credit Card", "payment_provider_id": format!("ch_sim_{id}"),
            "payment_status": "captured", "order_is_digital": false,
            "ip_address": "203.0.113.7", "ip_address_v6": "", "geoip_country": "United States",
            "geoip_country_iso2": "US",
            "default_currency_id": 1, "default_currency_code": "USD", "store_default_currency_code": "USD",
            "store_default_to_transactional_exchange_rate": "1.0000000000",
            "staff_notes": "", "customer_message": ""
        }),
        json!({
            "shipping_address_count": 1, "is_deleted": false, "ebay_order_id": "0",
            "cart_id": format!("7e48f7ef-2e88-4817-aea4-{id:012}"),
            "billing_address": {
                "first_name": "Buyer", "last_name": format!("{n}"), "company": "",
                "street_1": format!("{} East Street", 500 + n % 100), "street_2": "", "city": "Austin",
                "state": "Texas", "zip": "78701", "country": "United States", "country_iso2": "US",
                "phone": "5125550100", "email": format!("buyer{n}@example.com"), "form_fields": []
            },
            "is_email_opt_in": false, "credit_card_type": null,
            "order_source": "www", "channel_id": 1, "external_source": null,
            "external_id": null, "external_merchant_id": null, "tax_provider_id": "BasicTaxProvider",
            "customer_locale": "en", "external_order_id": ""
        }),
    ]);
    for field in [
        "base_handling_cost",
        "handling_cost_ex_tax",
        "handling_cost_inc_tax",
        "handling_cost_tax",
        "base_wrapping_cost",
        "wrapping_cost_ex_tax",
        "wrapping_cost_inc_tax",
        "wrapping_cost_tax",
        "refunded_amount",
        "store_credit_amount",
        "gift_certificate_amount",
        "discount_amount",
        "coupon_discount",
    ] {
        order[field] = json!(dec(0));
    }
    for resource in ["products", "shipping_addresses"] {
        order[resource] = json!({
            "url": format!("https://api.bigcommerce.com/stores/{STORE_HASH}/v2/orders/{id}/{resource}"),
            "resource": format!("/orders/{id}/{resource}"),
        });
    }
    (order, products)
}

/// The API generation a path belongs to: they answer errors differently.
#[derive(Clone, Copy)]
enum Version {
    V2,
    V3,
}

fn error(version: Version, status: StatusCode, message: &str) -> Response {
    let body = match version {
        Version::V2 => json!([{"status": status.as_u16(), "message": message}]),
        Version::V3 => json!({"status": status.as_u16(), "title": message, "type": STATUS_TYPE}),
    };
    (status, Json(body)).into_response()
}

fn not_found(version: Version) -> Response {
    error(
        version,
        StatusCode::NOT_FOUND,
        "The requested resource was not found.",
    )
}

fn ms(d: Duration) -> u64 {
    (d.as_secs_f64() * 1000.0).ceil() as u64
}

/// Every answer carries the four rate headers; a 429 has set its own `Requests-Left` (0) and
/// `Time-Reset-Ms` (the bucket's wait).
async fn rate_headers(State(rates): State<Rates>, mut response: Response) -> Response {
    let (rate, left) = {
        let mut bucket = rates.core.bucket.lock().unwrap();
        (bucket.rate(), bucket.remaining())
    };
    let quota = rates.quota.load(Ordering::SeqCst).max(left);
    let window_ms = ms(Duration::from_secs_f64(f64::from(quota) / rate));
    let reset_ms = if left == 0 {
        ms(Duration::from_secs_f64(1.0 / rate))
    } else {
        ms(Duration::from_secs_f64(f64::from(quota - left) / rate))
    };
    let headers = response.headers_mut();
    if !headers.contains_key(REQUESTS_LEFT) {
        headers.insert(REQUESTS_LEFT, HeaderValue::from(left));
        headers.insert(RESET_MS, HeaderValue::from(reset_ms));
    }
    headers.insert(
        "x-rate-limit-requests-quota",
        HeaderValue::from(quota.max(1)),
    );
    headers.insert("x-rate-limit-time-window-ms", HeaderValue::from(window_ms));
    response
}

/// The gate every call passes: the rate, faults, the store, the token.
fn admit(core: &Core, headers: &HeaderMap, hash: &str, version: Version) -> Result<(), Response> {
    core.gate(|wait| {
        let mut response = error(version, StatusCode::TOO_MANY_REQUESTS, "Too many requests");
        let headers = response.headers_mut();
        headers.insert(REQUESTS_LEFT, HeaderValue::from(0u32));
        headers.insert(RESET_MS, HeaderValue::from(ms(wait)));
        response
    })?;
    if hash != STORE_HASH {
        return Err(not_found(version));
    }
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    if token != Some(ACCESS_TOKEN) {
        core.counts.unauthorized.fetch_add(1, Ordering::SeqCst);
        return Err(error(
            version,
            StatusCode::UNAUTHORIZED,
            "You must be authorized to access this resource.",
        ));
    }
    core.served();
    Ok(())
}

async fn one(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path((hash, id)): Path<(String, String)>,
) -> Response {
    if let Err(refused) = admit(&core, &headers, &hash, Version::V2) {
        return refused;
    }
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| books.lock().unwrap().orders.get(&id).cloned());
    match found {
        Some(order) => Json(order).into_response(),
        None => not_found(Version::V2),
    }
}

/// `page` and `limit` of a V2 list.
fn paging(params: &BTreeMap<String, String>) -> Result<(usize, usize), Response> {
    let page = match params.get("page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => {
            return Err(error(
                Version::V2,
                StatusCode::BAD_REQUEST,
                "The field 'page' is invalid.",
            ))
        }
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(l)) if (1..=250).contains(&l) => l,
        Some(Ok(l)) if l > 250 => {
            return Err(error(
                Version::V2,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The limit parameter exceeded the maximum of 250.",
            ))
        }
        Some(_) => {
            return Err(error(
                Version::V2,
                StatusCode::BAD_REQUEST,
                "The field 'limit' is invalid.",
            ))
        }
    };
    Ok((page, limit))
}

/// Page `page` of `rows` as V2 answers it: a bare array, or 204 when empty.
fn v2_page(rows: Vec<Value>, (page, limit): (usize, usize)) -> Response {
    let rows: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    if rows.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Json(rows).into_response()
    }
}

/// Rows of an order's sub-resource.
async fn sub_resource(
    core: &Core,
    books: &Mutex<Books>,
    headers: &HeaderMap,
    (hash, id): (String, String),
    params: &BTreeMap<String, String>,
    pick: fn(&Books, u64) -> Option<Vec<Value>>,
) -> Response {
    if let Err(refused) = admit(core, headers, &hash, Version::V2) {
        return refused;
    }
    let paging = match paging(params) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let rows = id.parse::<u64>().ok().and_then(|id| {
        let books = books.lock().unwrap();
        if books.orders.contains_key(&id) {
            Some(pick(&books, id).unwrap_or_default())
        } else {
            None
        }
    });
    match rows {
        Some(rows) => v2_page(rows, paging),
        None => not_found(Version::V2),
    }
}

async fn products(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    sub_resource(&core, &books, &headers, path, &params, |b, id| {
        b.products.get(&id).cloned()
    })
    .await
}

async fn shipping_addresses(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    sub_resource(&core, &books, &headers, path, &params, |b, id| {
        b.shipping_addresses.get(&id).cloned()
    })
    .await
}

/// A date as the order filters take it: RFC 2822, ISO 8601, or a bare date.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0)?))
}

async fn list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers, &hash, Version::V2) {
        return refused;
    }
    let paging = match paging(&params) {
        Ok(p) => p,
        Err(e) => return e,
    };
    // (order field, at least?, bound) of every date filter.
    let mut filters = Vec::new();
    for (key, field, min) in [
        ("min_date_created", "date_created", true),
        ("max_date_created", "date_created", false),
        ("min_date_modified", "date_modified", true),
        ("max_date_modified", "date_modified", false),
    ] {
        if let Some(text) = params.get(key) {
            match parse_date(text) {
                Some(t) => filters.push((field, min, t)),
                None => {
                    return error(
                        Version::V2,
                        StatusCode::BAD_REQUEST,
                        &format!("The field '{key}' is invalid."),
                    )
                }
            }
        }
    }
    let (sort_field, descending) = match params.get("sort").map(|s| {
        let (field, direction) = s.split_once(':').unwrap_or((s.as_str(), "asc"));
        (field.to_owned(), direction.to_ascii_lowercase())
    }) {
        None => ("id".to_owned(), false),
        Some((field, direction))
            if ["id", "date_created", "date_modified"].contains(&field.as_str())
                && (direction == "asc" || direction == "desc") =>
        {
            (field, direction == "desc")
        }
        Some(_) => {
            return error(
                Version::V2,
                StatusCode::BAD_REQUEST,
                "The field 'sort' is invalid.",
            )
        }
    };
    let date = |o: &Value, field: &str| o[field].as_str().and_then(parse_date);
    let books = books.lock().unwrap();
    let mut rows: Vec<&Value> = books
        .orders
        .values()
        .filter(|o| {
            filters.iter().all(|(field, min, bound)| {
                date(o, field).is_some_and(|t| if *min { t >= *bound } else { t <= *bound })
            })
        })
        .collect();
    if sort_field != "id" {
        rows.sort_by_key(|o| date(o, &sort_field));
    }
    if descending {
        rows.reverse();
    }
    let rows: Vec<Value> = rows.into_iter().cloned().collect();
    drop(books);
    v2_page(rows, paging)
}

/// A 422 naming the field at fault, as V3 answers.
fn invalid(field: &str, problem: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "status": 422,
            "title": "JSON data is missing or invalid",
            "type": STATUS_TYPE,
            "errors": {field: problem}
        })),
    )
        .into_response()
}

async fn hook_create(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(refused) = admit(&core, &headers, &hash, Version::V3) {
        return refused;
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return invalid("body", "error.json.invalid");
    };
    let scope = match body.get("scope").and_then(Value::as_str) {
        Some(s) if s.starts_with("store/") && s.len() > "store/".len() => s,
        Some(_) => return invalid("scope", "error.scope.invalid"),
        None => return invalid("scope", "error.path.missing"),
    };
    let destination = match body.get("destination").and_then(Value::as_str) {
        Some(d) => d,
        None => return invalid("destination", "error.path.missing"),
    };
    let https_443 = reqwest::Url::parse(destination)
        .is_ok_and(|u| u.scheme() == "https" && u.port().is_none() && u.host().is_some());
    if !https_443 {
        return invalid(
            "destination",
            "error.destination.must be an https URL on port 443",
        );
    }
    let is_active = match body.get("is_active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return invalid("is_active", "error.expected.jsboolean"),
    };
    let hook_headers = match body.get("headers") {
        None | Some(Value::Null) => Value::Null,
        Some(h)
            if h.as_object()
                .is_some_and(|h| h.values().all(Value::is_string)) =>
        {
            h.clone()
        }
        Some(_) => return invalid("headers", "error.expected.jsobject of strings"),
    };
    let now = Utc::now().timestamp();
    let mut books = books.lock().unwrap();
    books.hooks_made += 1;
    let hook = json!({
        "id": 18_048_286 + books.hooks_made,
        "client_id": CLIENT_ID,
        "store_hash": STORE_HASH,
        "scope": scope,
        "destination": destination,
        "headers": hook_headers,
        "is_active": is_active,
        "events_history_enabled": false,
        "created_at": now,
        "updated_at": now
    });
    books.hooks.push(hook.clone());
    drop(books);
    Json(json!({"data": hook, "meta": {}})).into_response()
}

async fn hook_list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    if let Err(refused) = admit(&core, &headers, &hash, Version::V3) {
        return refused;
    }
    let hooks = books.lock().unwrap().hooks.clone();
    let total = hooks.len();
    Json(json!({
        "data": hooks,
        "meta": {"pagination": {"total": total, "count": total, "per_page": 50.max(total),
                                "current_page": 1, "total_pages": 1, "links": {"current": "?page=1&limit=50"}}}
    }))
    .into_response()
}

async fn hook_delete(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path((hash, id)): Path<(String, String)>,
) -> Response {
    if let Err(refused) = admit(&core, &headers, &hash, Version::V3) {
        return refused;
    }
    let id = id.parse::<u64>().ok();
    let mut books = books.lock().unwrap();
    let position = books
        .hooks
        .iter()
        .position(|h| id.is_some() && h["id"].as_u64() == id);
    match position {
        Some(i) => {
            let hook = books.hooks.remove(i);
            Json(json!({"data": hook, "meta": {}})).into_response()
        }
        None => not_found(Version::V3),
    }
}
