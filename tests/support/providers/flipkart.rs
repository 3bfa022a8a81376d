//! A Flipkart Marketplace Seller API v3 simulator: the self-access OAuth token and the
//! shipment (order) APIs, following Flipkart's documented contract.
//!
//! - `GET /oauth-service/oauth/token?grant_type=client_credentials&scope=Seller_Api` with
//!   `Authorization: Basic base64(app id:app secret)` → `{access_token, token_type: "bearer",
//!   expires_in, scope: "Seller_Api"}`. Bad credentials: 401 `{"error":"unauthorized",
//!   "error_description":"Bad credentials"}`; another grant type: 400
//!   `unsupported_grant_type`; a scope without `Seller_Api`: 400 `invalid_scope`.
//! - The API lives under `/sellers`, with `Authorization: Bearer <token>`; a missing, unknown
//!   or expired token is 401 `{"error":"invalid_token","error_description":"Invalid access
//!   token"}`. Other errors are `{"errors":[{"severity":"ERROR","code":<status>,
//!   "description":…}]}`.
//! - `GET /sellers/v3/shipments?shipmentIds=a,b` (or `orderIds=` or `orderItemIds=`; exactly
//!   one kind, at most 100 ids, else 400) → `{"shipments":[Shipment…]}`; unknown ids are simply
//!   absent (200 with fewer shipments).
//! - `GET /sellers/v3/shipments/{shipmentIds}` (comma separated, at most 100) →
//!   `{"shipments":[{orderId, shipmentId, deliveryAddress, billingAddress, buyerDetails,
//!   sellerAddress, returnAddress, orderItems:[{id,…}], subShipments}]}`; unknown ids absent.
//!   Flipkart's documented buyer details carry names and a phone, no email.
//! - `POST /sellers/v3/shipments/filter` `{"filter":{"type":"preDispatch"|"postDispatch"|
//!   "cancelled", "states":[…], "orderDate":{from,to}, "modifiedDate":{…},
//!   "dispatchByDate":{…}}, "pagination":{"pageSize":N}, "sort":{field, order}}` →
//!   `{"hasMore", "nextPageUrl"?, "shipments"}`; then `GET
//!   /sellers/v3/shipments/filter?next_token=<opaque>` (the `nextPageUrl`, relative to
//!   `/sellers`). `filter.type` missing: 400 `filter.type is required`; `states` must belong
//!   to the type (all of its states when absent); `cancelled` needs `cancellationType`. Order
//!   date bounds are inclusive; shipments come oldest `orderDate` first unless `sort` says
//!   otherwise. `pageSize` defaults to 20 and is capped at 100 (Flipkart documents no
//!   maximum); `nextPageUrl` is given only while `hasMore`. An unknown `next_token` is 400.
//! - `orderItems[].priceComponents` are JSON numbers (INR, GST included, so no tax field):
//!   `sellingPrice` is the price of the line's units together (unit price × `quantity`),
//!   `customerPrice` = `sellingPrice − flipkartDiscount`, `totalPrice` the line total
//!   (`customerPrice + shippingCharge`), as the contract OrderBridge follows says.
//! - Rate: the core's token bucket; past it 429 `{"errors":[{"severity":"ERROR","code":429,
//!   "description":"Too Many Requests"}]}` with `Retry-After` (seconds). Maintenance (503) and
//!   injected 500s from the core.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::core::{bearer, retry_after_secs, Core};

pub const APP_ID: &str = "flipkart-sim-app";
pub const APP_SECRET: &str = "flipkart-sim-secret";
pub const SELLER_ID: &str = "sim-seller-01";

const MAX_IDS: usize = 100;
const PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

const PRE_DISPATCH: &[&str] = &[
    "APPROVED",
    "PACKING_IN_PROGRESS",
    "PACKED",
    "FORM_FAILED",
    "READY_TO_DISPATCH",
];
const POST_DISPATCH: &[&str] = &["SHIPPED", "DELIVERED", "PICKUP_COMPLETE"];
const CANCELLED: &[&str] = &["CANCELLED"];

type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A shipment search, kept with the `next_token`s it hands out.
#[derive(Debug, Clone)]
struct Search {
    states: Vec<String>,
    order_date: Range,
    modified_date: Range,
    dispatch_by_date: Range,
    sort_field: &'static str,
    descending: bool,
    page_size: usize,
}

#[derive(Default)]
struct Books {
    /// Shipments by id: (Shipment, its shipping and buyer details).
    shipments: BTreeMap<String, (Value, Value)>,
    cursors: HashMap<String, (Search, usize)>,
    minted: u64,
}

#[derive(Clone)]
pub struct FlipkartSim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    books: Arc<Mutex<Books>>,
}

type Shared = (Arc<Core>, Arc<Mutex<Books>>);

impl FlipkartSim {
    /// A simulator allowing `rate` requests a second in bursts of `burst`.
    pub async fn start(rate: f64, burst: u32) -> Self {
        let core = Arc::new(Core::new(rate, burst));
        let books = Arc::new(Mutex::new(Books::default()));
        let app = Router::new()
            .route("/oauth-service/oauth/token", get(token))
            .route("/sellers/v3/shipments", get(by_ids))
            .route("/sellers/v3/shipments/filter", get(next_page).post(search))
            .route("/sellers/v3/shipments/{ids}", get(details))
            .with_state((Arc::clone(&core), Arc::clone(&books)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, core, books }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds `shipment` (a `Shipment`) and `details` (its entry of `GET
    /// /v3/shipments/{ids}`), replacing a shipment of the same `shipmentId`.
    pub fn put(&self, shipment: Value, details: Value) {
        let id = shipment["shipmentId"].as_str().unwrap().to_owned();
        self.books
            .lock()
            .unwrap()
            .shipments
            .insert(id, (shipment, details));
    }
}

/// Paise as Flipkart's JSON number of rupees.
fn rupees(paise: u64) -> Value {
    json!(paise as f64 / 100.0)
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

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A Flipkart shipment of one order item: `n` units of `SKU-<n % 40>` at a unit price that
/// varies with `n`, a shipping charge on two orders in three, a Flipkart discount on every
/// fourth; and its details: delivery and billing address, buyer, seller and return address.
pub fn shipment(
    shipment_id: &str,
    order_id: &str,
    n: u32,
    created: DateTime<Utc>,
) -> (Value, Value) {
    let ist = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    let unit = 49_900 + u64::from(n % 9) * 5_000;
    let selling = unit * u64::from(n);
    let shipping = if n % 3 == 0 { 0 } else { 4_000 };
    let discount = if n % 4 == 0 { selling.min(2_500) } else { 0 };
    let customer = selling - discount;
    let total = customer + shipping;
    let item_id = digits(&format!("{shipment_id}/{order_id}/1"), 15);
    let package_id = format!("PKG{}", digits(&format!("{shipment_id}/package"), 12));
    let sub_shipment_id = format!("{shipment_id}-1");
    let sku = format!("SKU-{}", n % 40);
    let title = format!("Blue Widget, model {}", n % 40);
    let shipment = json!({
        "shipmentId": shipment_id,
        "dispatchByDate": utc(created + chrono::Duration::days(2)),
        "dispatchAfterDate": utc(created),
        "updatedAt": utc(created + chrono::Duration::minutes(2)),
        "locationId": "LOC6a1b2c3d4e5f4a0b9c8d7e6f5a4b3c2d",
        "hold": false,
        "mps": false,
        "packagingPolicy": "DEFAULT",
        "shipmentType": "NORMAL",
        "subShipments": [{
            "subShipmentId": sub_shipment_id,
            "packages": [{
                "id": package_id, "name": "Box 1",
                "dimensions": {"length": 20, "breadth": 15, "height": 10},
                "weight": 0.5,
                "notional_value": {"amount": rupees(total), "unit": "INR"},
                "description": title,
                "handling": {"fragile": false}
            }]
        }],
        "orderItems": [{
            "orderItemId": item_id,
            "orderId": order_id,
            "cancellationGroupId": format!("grp{item_id}"),
            "orderDate": created.with_timezone(&ist).to_rfc3339_opts(SecondsFormat::Secs, false),
            "cancellationDate": null,
            "paymentType": if n % 2 == 0 { "PREPAID" } else { "COD" },
            "status": "APPROVED",
            "cancellationReason": null,
            "cancellationSubReason": null,
            "courierReturn": false,
            "quantity": n,
            "fsn": format!("WDGFSN{:010}", n % 40),
            "sku": sku,
            "listingId": format!("LSTWDGFSN{:010}SIM", n % 40),
            "hsn": "39269099",
            "title": title,
            "packageIds": [package_id],
            "priceComponents": {
                "sellingPrice": rupees(selling),
                "totalPrice": rupees(total),
                "shippingCharge": rupees(shipping),
                "customerPrice": rupees(customer),
                "flipkartDiscount": rupees(discount)
            },
            "serviceProfile": "NON_FBF",
            "is_replacement": false
        }],
        "forms": []
    });
    let address = json!({
        "firstName": format!("Buyer{n}"),
        "lastName": "Sharma",
        "pinCode": format!("5600{:02}", 1 + n % 99),
        "city": "Bengaluru",
        "state": "Karnataka",
        "stateCode": "KA",
        "addressLine1": format!("{}, 2nd Cross, Indiranagar", 1 + n % 500),
        "addressLine2": "HAL 2nd Stage",
        "landmark": "Near Metro Station",
        "contactNumber": format!("98450{:05}", n % 100_000)
    });
    let details = json!({
        "orderId": order_id,
        "shipmentId": shipment_id,
        "deliveryAddress": address,
        "billingAddress": address,
        "buyerDetails": {"firstName": format!("Buyer{n}"), "lastName": "Sharma"},
        "sellerAddress": {
            "sellerName": "OrderBridge Sim Traders", "pinCode": "560103", "city": "Bengaluru",
            "state": "Karnataka", "stateCode": "KA", "addressLine1": "Plot 12, Outer Ring Road",
            "addressLine2": "Bellandur", "landmark": "Opposite Tech Park"
        },
        "returnAddress": {
            "firstName": "OrderBridge", "lastName": "Returns", "pinCode": "560103",
            "city": "Bengaluru", "state": "Karnataka", "stateCode": "KA",
            "addressLine1": "Plot 12, Outer Ring Road", "addressLine2": "Bellandur",
            "landmark": "Opposite Tech Park", "contactNumber": "8045550100"
        },
        "orderItems": [{"id": item_id, "fragile": false, "large": false, "dangerous": false, "add_ons": []}],
        "subShipments": [{
            "subShipmentId": sub_shipment_id,
            "courierDetails": {
                "pickupDetails": {"trackingId": null, "vendorName": "Ekart Logistics"},
                "deliveryDetails": {"trackingId": null, "vendorName": "Ekart Logistics"}
            },
            "shipmentDimensions": {"length": 20, "breadth": 15, "height": 10, "weight": 0.5}
        }]
    });
    (shipment, details)
}

fn error(status: StatusCode, description: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"severity": "ERROR", "code": status.as_u16(), "description": description}]})),
    )
        .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
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

/// Maintenance and faults, the rate, the token.
fn admit(core: &Core, headers: &HeaderMap) -> Result<(), Response> {
    core.gate(throttled)?;
    if core.token_valid(bearer(headers).unwrap_or_default()) {
        Ok(())
    } else {
        Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Invalid access token",
        ))
    }
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
            .is_ok_and(|decoded| decoded == format!("{APP_ID}:{APP_SECRET}").as_bytes())
}

async fn token(
    State((core, _)): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if !basic_ok(&headers) {
        core.counts
            .unauthorized
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
    }
    let grant = params.get("grant_type").map(String::as_str);
    if grant != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {}", grant.unwrap_or_default()),
        );
    }
    let scope = params.get("scope").map(String::as_str).unwrap_or_default();
    if !scope.split([' ', ',']).any(|s| s == "Seller_Api") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("Invalid scope: {scope}"),
        );
    }
    let (token, lifetime) = core.issue_token("fk-sim-");
    Json(json!({"access_token": token, "token_type": "bearer",
                "expires_in": lifetime.as_secs(), "scope": "Seller_Api"}))
    .into_response()
}

fn split_ids(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty() && seen.insert(id.to_owned()))
        .map(str::to_owned)
        .collect()
}

async fn by_ids(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let kinds: Vec<(&str, Vec<String>)> = ["shipmentIds", "orderIds", "orderItemIds"]
        .into_iter()
        .filter_map(|kind| {
            let ids = split_ids(params.get(kind)?);
            (!ids.is_empty()).then_some((kind, ids))
        })
        .collect();
    let (kind, ids) = match kinds.as_slice() {
        [one] => one,
        [] => {
            return error(
                StatusCode::BAD_REQUEST,
                "One of shipmentIds, orderIds or orderItemIds is required",
            )
        }
        [..] => {
            return error(
                StatusCode::BAD_REQUEST,
                "Only one of shipmentIds, orderIds or orderItemIds may be given",
            )
        }
    };
    if ids.len() > MAX_IDS {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("At most {MAX_IDS} ids may be given, not {}", ids.len()),
        );
    }
    let books = books.lock().unwrap();
    let item_has = |shipment: &Value, key: &str, id: &str| {
        shipment["orderItems"]
            .as_array()
            .is_some_and(|items| items.iter().any(|item| item[key] == id))
    };
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for id in ids {
        for (shipment_id, (shipment, _)) in &books.shipments {
            let hit = match *kind {
                "shipmentIds" => shipment_id == id,
                "orderIds" => item_has(shipment, "orderId", id),
                _ => item_has(shipment, "orderItemId", id),
            };
            if hit && seen.insert(shipment_id.clone()) {
                found.push(shipment.clone());
            }
        }
    }
    drop(books);
    core.served();
    Json(json!({"shipments": found})).into_response()
}

async fn details(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(ids): Path<String>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let ids = split_ids(&ids);
    if ids.is_empty() || ids.len() > MAX_IDS {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Between 1 and {MAX_IDS} shipment ids must be given"),
        );
    }
    let found: Vec<Value> = {
        let books = books.lock().unwrap();
        ids.iter()
            .filter_map(|id| books.shipments.get(id).map(|(_, details)| details.clone()))
            .collect()
    };
    core.served();
    Json(json!({"shipments": found})).into_response()
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A `{from, to}` date range of the filter, each end optional.
fn range(filter: &Value, key: &str) -> Result<Range, String> {
    let Some(range) = filter.get(key).filter(|r| !r.is_null()) else {
        return Ok((None, None));
    };
    let end = |end: &str| -> Result<Option<DateTime<Utc>>, String> {
        match range.get(end) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_str()
                .and_then(parse_time)
                .map(Some)
                .ok_or_else(|| format!("filter.{key}.{end} is not a valid ISO-8601 date")),
        }
    };
    Ok((end("from")?, end("to")?))
}

/// The search a filter body asks for, or what is wrong with it.
fn parse_search(body: &Value) -> Result<Search, String> {
    let filter = body.get("filter").filter(|f| f.is_object());
    let kind = filter
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .ok_or("filter.type is required")?;
    let filter = filter.ok_or("filter is required")?;
    let allowed = match kind {
        "preDispatch" => PRE_DISPATCH,
        "postDispatch" => POST_DISPATCH,
        "cancelled" => CANCELLED,
        other => {
            return Err(format!(
                "filter.type {other} is not one of preDispatch, postDispatch, cancelled"
            ))
        }
    };
    if kind == "cancelled"
        && filter
            .get("cancellationType")
            .and_then(Value::as_str)
            .is_none()
    {
        return Err("filter.cancellationType is required for cancelled shipments".into());
    }
    let states: Vec<String> = match filter.get("states") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(states)) => states
            .iter()
            .map(|s| {
                s.as_str()
                    .filter(|s| allowed.contains(s))
                    .map(str::to_owned)
                    .ok_or_else(|| format!("filter.states: {s} is not a {kind} state"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("filter.states must be an array, not {other}")),
    };
    let states = if states.is_empty() {
        allowed.iter().map(|s| (*s).to_owned()).collect()
    } else {
        states
    };
    let page_size = match body.get("pagination").and_then(|p| p.get("pageSize")) {
        None | Some(Value::Null) => PAGE_SIZE,
        Some(size) => match size.as_u64() {
            Some(size) if size >= 1 => usize::try_from(size)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
            Some(_) | None => return Err("pagination.pageSize must be a positive number".into()),
        },
    };
    let sort = body.get("sort");
    let sort_field = match sort.and_then(|s| s.get("field")).and_then(Value::as_str) {
        None | Some("orderDate") => "orderDate",
        Some("modifiedDate") => "modifiedDate",
        Some("dispatchByDate") => "dispatchByDate",
        Some("dispatchAfterDate") => "dispatchAfterDate",
        Some(other) => return Err(format!("sort.field {other} is not supported")),
    };
    let descending = match sort.and_then(|s| s.get("order")).and_then(Value::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(format!("sort.order {other} must be asc or desc")),
    };
    Ok(Search {
        states,
        order_date: range(filter, "orderDate")?,
        modified_date: range(filter, "modifiedDate")?,
        dispatch_by_date: range(filter, "dispatchByDate")?,
        sort_field,
        descending,
        page_size,
    })
}

/// A shipment's date by a filter or sort field: its earliest item's `orderDate`, `updatedAt`,
/// `dispatchByDate` or `dispatchAfterDate`.
fn date_of(shipment: &Value, field: &str) -> Option<DateTime<Utc>> {
    let text = |v: &Value| v.as_str().and_then(parse_time);
    match field {
        "orderDate" => shipment["orderItems"]
            .as_array()?
            .iter()
            .filter_map(|item| text(&item["orderDate"]))
            .min(),
        "modifiedDate" => text(&shipment["updatedAt"]),
        "dispatchByDate" => text(&shipment["dispatchByDate"]),
        _ => text(&shipment["dispatchAfterDate"]),
    }
}

fn in_range(at: Option<DateTime<Utc>>, (from, to): Range) -> bool {
    if from.is_none() && to.is_none() {
        return true;
    }
    at.is_some_and(|at| from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t))
}

/// One page of `search` from `offset`, with the token of the next.
fn page(core: &Core, books: &Mutex<Books>, search: Search, offset: usize) -> Response {
    let mut books = books.lock().unwrap();
    let mut matching: Vec<(Option<DateTime<Utc>>, &String, &Value)> = books
        .shipments
        .iter()
        .filter(|(_, (shipment, _))| {
            let state_ok = shipment["orderItems"].as_array().is_some_and(|items| {
                items.iter().any(|item| {
                    item["status"]
                        .as_str()
                        .is_some_and(|s| search.states.iter().any(|want| want == s))
                })
            });
            state_ok
                && in_range(date_of(shipment, "orderDate"), search.order_date)
                && in_range(date_of(shipment, "modifiedDate"), search.modified_date)
                && in_range(date_of(shipment, "dispatchByDate"), search.dispatch_by_date)
        })
        .map(|(id, (shipment, _))| (date_of(shipment, search.sort_field), id, shipment))
        .collect();
    matching.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    if search.descending {
        matching.reverse();
    }
    let total = matching.len();
    let shipments: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(search.page_size)
        .map(|(_, _, shipment)| (*shipment).clone())
        .collect();
    let end = offset + shipments.len();
    let has_more = end < total;
    let mut body = json!({"hasMore": has_more, "shipments": shipments});
    if has_more {
        books.minted += 1;
        let token = URL_SAFE_NO_PAD.encode(format!(
            "{{\"filterType\":\"search\",\"seller\":\"{SELLER_ID}\",\"page\":{}}}",
            books.minted
        ));
        books.cursors.insert(token.clone(), (search, end));
        body["nextPageUrl"] = json!(format!("/v3/shipments/filter?next_token={token}"));
    }
    drop(books);
    core.served();
    Json(body).into_response()
}

async fn search(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Malformed request body: {err}"),
            )
        }
    };
    match parse_search(&body) {
        Ok(search) => page(&core, &books, search, 0),
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    }
}

async fn next_page(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let Some(token) = params.get("next_token").filter(|t| !t.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "next_token is required");
    };
    let cursor = books.lock().unwrap().cursors.get(token).cloned();
    match cursor {
        Some((search, offset)) => page(&core, &books, search, offset),
        None => error(StatusCode::BAD_REQUEST, "next_token is invalid or expired"),
    }
}
