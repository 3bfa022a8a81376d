//! An eBay seller-API simulator: the OAuth token endpoint's refresh grant and the Sell
//! Fulfillment API's orders, following eBay's documented contract.
//!
//! - `POST /identity/v1/oauth2/token`: HTTP basic app credentials, form
//!   `grant_type=refresh_token&refresh_token=…&scope=…`: `{access_token, expires_in,
//!   token_type: "User Access Token"}`; a wrong refresh token is 400 `invalid_grant`, wrong
//!   app credentials 401 `invalid_client`. eBay does not rotate refresh tokens.
//! - `GET /sell/fulfillment/v1/order/{orderId}` with the user token: the `Order`; an unknown
//!   well-formed id is 404, a malformed one 400 with error 32100; a missing or expired token
//!   401 with error 1001.
//! - `GET /sell/fulfillment/v1/order?filter=creationdate:[a..b]|lastmodifieddate:[a..b]&limit&offset`:
//!   `{href, total, limit, offset, next?, orders}`, oldest first; `limit` above 200 is 400
//!   error 31100.
//! - The app's rate: a token bucket; past it, 429 with error 2001 and no `Retry-After`
//!   (eBay documents none). Maintenance (503) and injected 500s from the core.
//! - The Notification API (`/commerce/notification/v1`): `PUT /config {alertEmail}` (204);
//!   `POST /destination` with an **application** token (client-credentials grant; a user
//!   token is 403 error 1100): 409 195003 before a config exists, 400 195019 for a
//!   verification token outside 32–80 of `[A-Za-z0-9_-]`, 409 195021 when the endpoint has a
//!   destination already; otherwise eBay's challenge is run at once
//!   (`GET <endpoint>?challenge_code=…` must answer
//!   `{"challengeResponse": hex(sha256(code + token + endpoint))}`, else 409 195020) and the
//!   answer is 201 with `Location`. `POST /subscription` (409 195012 when the topic has one for the destination, 400 195007 for an
//!   unknown destination) is 201 with `Location`; `GET /destination` and `GET /subscription`
//!   list them; `POST /subscription/{id}/test` is 202 and then posts a mocked
//!   `ORDER_CONFIRMATION`, signed with the test key (`ebay_sim::KID`), to the destination.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::core::{bearer, Core};

pub const CLIENT_ID: &str = "OrderBri-dge-PRD-0123456789-abcdef01";
pub const CLIENT_SECRET: &str = "PRD-0123456789ab-cdef-0123-4567-89ab";
pub const REFRESH_TOKEN: &str = "v^1.1#i^1#r^1#p^3#I^3#f^0#t^Ul4xMF8yOjNEQjE4QTk2";

#[derive(Default)]
struct Books {
    orders: BTreeMap<String, Value>,
    /// Application (client-credentials) tokens, apart from users'.
    app_tokens: std::collections::BTreeSet<String>,
    alert_email: Option<String>,
    destinations: Vec<Value>,
    subscriptions: Vec<Value>,
    /// Statuses the destination answered to test notifications.
    test_deliveries: Vec<u16>,
}

#[derive(Clone)]
pub struct EbayApiSim {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    books: Arc<Mutex<Books>>,
}

type Shared = (Arc<Core>, Arc<Mutex<Books>>);

impl EbayApiSim {
    pub async fn start(rate: f64, burst: u32) -> Self {
        let core = Arc::new(Core::new(rate, burst));
        let books = Arc::new(Mutex::new(Books::default()));
        let app = Router::new()
            .route("/identity/v1/oauth2/token", post(token))
            .route("/sell/fulfillment/v1/order", get(list))
            .route("/sell/fulfillment/v1/order/{id}", get(one))
            .route(
                "/commerce/notification/v1/config",
                axum::routing::put(put_config),
            )
            .route(
                "/commerce/notification/v1/destination",
                post(create_destination).get(list_destinations),
            )
            .route(
                "/commerce/notification/v1/subscription",
                post(create_subscription).get(list_subscriptions),
            )
            .route(
                "/commerce/notification/v1/subscription/{id}/test",
                post(test_subscription),
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

    /// Destinations and subscriptions made so far.
    pub fn notifications(&self) -> (Vec<Value>, Vec<Value>) {
        let books = self.books.lock().unwrap();
        (books.destinations.clone(), books.subscriptions.clone())
    }

    /// What the destination answered to each test notification.
    pub fn test_deliveries(&self) -> Vec<u16> {
        self.books.lock().unwrap().test_deliveries.clone()
    }

    /// Holds `order` (an eBay `Order`), replacing one of its id.
    pub fn put(&self, order: Value) {
        let id = order["orderId"].as_str().unwrap().to_owned();
        self.books.lock().unwrap().orders.insert(id, order);
    }
}

/// An eBay order: `n` units of a line, shipping, tax, a buyer and an address.
pub fn order(id: &str, n: u32, created: DateTime<Utc>) -> Value {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let unit = 12.5 + f64::from(n % 7);
    let cost = unit * f64::from(n);
    let tax = (cost * 0.08 * 100.0).round() / 100.0;
    let total = cost + 4.99 + tax;
    let money = |v: f64| json!({"value": format!("{v:.2}"), "currency": "USD"});
    json!({
        "orderId": id, "legacyOrderId": id,
        "creationDate": at(created), "lastModifiedDate": at(created + chrono::Duration::seconds(90)),
        "orderFulfillmentStatus": "NOT_STARTED", "orderPaymentStatus": "PAID", "sellerId": "example_seller",
        "buyer": {"username": format!("buyer_{n}"),
                  "buyerRegistrationAddress": {"fullName": format!("Buyer {n}"),
                      "contactAddress": {"addressLine1": "100 Main St", "city": "Springfield", "stateOrProvince": "IL", "postalCode": "62701", "countryCode": "US"},
                      "primaryPhone": {"phoneNumber": "2175550100"}, "email": format!("buyer{n}@members.ebay.com")}},
        "pricingSummary": {"priceSubtotal": money(cost), "deliveryCost": money(4.99), "tax": money(tax), "total": money(total)},
        "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
        "fulfillmentStartInstructions": [{"fulfillmentInstructionsType": "SHIP_TO", "shippingStep": {"shipTo": {"fullName": format!("Buyer {n}"),
            "contactAddress": {"addressLine1": "200 Oak Ave", "city": "Springfield", "stateOrProvince": "IL", "postalCode": "62704", "countryCode": "US"}}}}],
        "lineItems": [{"lineItemId": format!("1008404{n:07}"), "legacyItemId": "287403994390", "sku": format!("SKU-{}", n % 40),
                       "title": "Blue Widget", "lineItemCost": money(cost), "quantity": n, "total": money(cost + tax),
                       "taxes": [{"amount": money(tax), "taxType": "STATE_SALES_TAX"}], "appliedPromotions": [], "refunds": []}],
        "salesRecordReference": format!("{}", 17000 + n)
    })
}

fn error(status: StatusCode, id: u32, domain: &str, category: &str, message: &str) -> Response {
    (status, Json(json!({"errors": [{"errorId": id, "domain": domain, "category": category, "message": message, "longMessage": message}]})))
        .into_response()
}

fn throttled(_: Duration) -> Response {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        2001,
        "ACCESS",
        "REQUEST",
        "Too many requests. The request limit has been reached for the resource.",
    )
}

fn admit(core: &Core, headers: &HeaderMap) -> Result<(), Response> {
    core.gate(throttled)?;
    match bearer(headers) {
        Some(token) if core.token_valid(token) => Ok(()),
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            1001,
            "OAuth",
            "REQUEST",
            "Invalid access token",
        )),
    }
}

async fn token(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let expected = format!(
        "Basic {}",
        BASE64.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": "client authentication failed"}))).into_response();
    }
    if form.get("grant_type").map(String::as_str) == Some("client_credentials") {
        let (token, lifetime) = core.issue_token("v^1.1#i^1#p^1#r^0#app-");
        books.lock().unwrap().app_tokens.insert(token.clone());
        return Json(json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Application Access Token"})).into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
        || form.get("refresh_token").map(String::as_str) != Some(REFRESH_TOKEN)
    {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": "the provided authorization refresh token is invalid or was issued to another client"}))).into_response();
    }
    let (token, lifetime) = core.issue_token("v^1.1#i^1#p^3#r^1#user-");
    Json(json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "User Access Token"})).into_response()
}

async fn one(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let well_formed =
        id.split('-').count() == 3 && id.chars().all(|c| c.is_ascii_digit() || c == '-');
    if !well_formed {
        return error(
            StatusCode::BAD_REQUEST,
            32100,
            "API_FULFILLMENT",
            "REQUEST",
            &format!("Invalid order ID: {id}"),
        );
    }
    let found = books.lock().unwrap().orders.get(&id).cloned();
    core.served();
    match found {
        Some(order) => Json(order).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"errors": [{"errorId": 11001, "domain": "ACCESS", "category": "APPLICATION", "message": "Resource not found"}]}))).into_response(),
    }
}

/// A filter's field and bounds.
type Window = (&'static str, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn window(filter: &str) -> Option<Window> {
    let (field, range) = filter.split_once(':')?;
    let field = match field {
        "creationdate" => "creationDate",
        "lastmodifieddate" => "lastModifiedDate",
        _ => return None,
    };
    let range = range.strip_prefix('[')?.strip_suffix(']')?;
    let (from, to) = range.split_once("..")?;
    let parse = |t: &str| {
        (!t.is_empty())
            .then(|| {
                DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            })
            .flatten()
    };
    Some((field, parse(from), parse(to)))
}

async fn list(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&core, &headers) {
        return refused;
    }
    let limit: usize = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(l)) if (1..=200).contains(&l) => l,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                31100,
                "API_FULFILLMENT",
                "REQUEST",
                "Invalid limit",
            )
        }
    };
    let offset: usize = match params.get("offset").map(|o| o.parse::<usize>()) {
        None => 0,
        Some(Ok(o)) => o,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                31000,
                "API_FULFILLMENT",
                "REQUEST",
                "Invalid offset",
            )
        }
    };
    let (field, from, to) = match params.get("filter").map(|f| window(f)) {
        None => ("creationDate", None, None),
        Some(Some(w)) => w,
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                30800,
                "API_FULFILLMENT",
                "REQUEST",
                "Invalid filter value",
            )
        }
    };
    let books = books.lock().unwrap();
    let mut matching: Vec<&Value> = books
        .orders
        .values()
        .filter(|o| {
            let at = o[field]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            at.is_some_and(|at| from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t))
        })
        .collect();
    matching.sort_by_key(|o| o["creationDate"].as_str().unwrap_or_default().to_owned());
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    let mut body =
        json!({"href": "…", "total": total, "limit": limit, "offset": offset, "orders": page});
    if offset + limit < total {
        body["next"] = json!(format!(
            "/sell/fulfillment/v1/order?limit={limit}&offset={}",
            offset + limit
        ));
    }
    drop(books);
    core.served();
    Json(body).into_response()
}

/// The token of a request, checked, and whether it is an application token.
fn admit_any(core: &Core, books: &Mutex<Books>, headers: &HeaderMap) -> Result<bool, Response> {
    core.gate(throttled)?;
    match bearer(headers) {
        Some(token) if core.token_valid(token) => {
            Ok(books.lock().unwrap().app_tokens.contains(token))
        }
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            1001,
            "OAuth",
            "REQUEST",
            "Invalid access token",
        )),
    }
}

fn created(location: String) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, location.parse().unwrap());
    response
}

async fn put_config(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit_any(&core, &books, &headers) {
        return refused;
    }
    books.lock().unwrap().alert_email = body["alertEmail"].as_str().map(str::to_owned);
    core.served();
    StatusCode::NO_CONTENT.into_response()
}

async fn create_destination(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    match admit_any(&core, &books, &headers) {
        Err(refused) => return refused,
        Ok(false) => {
            return error(
                StatusCode::FORBIDDEN,
                1100,
                "ACCESS",
                "REQUEST",
                "Insufficient permissions to fulfill the request.",
            )
        }
        Ok(true) => {}
    }
    let endpoint = body["deliveryConfig"]["endpoint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = body["deliveryConfig"]["verificationToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    {
        let books = books.lock().unwrap();
        if books.alert_email.is_none() {
            return error(
                StatusCode::CONFLICT,
                195003,
                "API_NOTIFICATION",
                "REQUEST",
                "Please provide configurations required for notifications. Refer to /config",
            );
        }
        if books
            .destinations
            .iter()
            .any(|d| d["deliveryConfig"]["endpoint"] == endpoint.as_str())
        {
            return error(
                StatusCode::CONFLICT,
                195021,
                "API_NOTIFICATION",
                "REQUEST",
                "Destination exists for this endpoint",
            );
        }
    }
    let valid_token = (32..=80).contains(&token.len())
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_token {
        return error(
            StatusCode::BAD_REQUEST,
            195019,
            "API_NOTIFICATION",
            "REQUEST",
            "Invalid or missing verification token",
        );
    }
    // eBay's challenge, at once.
    let code = format!(
        "{:032x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let expected = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            format!("{code}{token}{endpoint}").as_bytes(),
        ))
    };
    let answered = reqwest::Client::new()
        .get(&endpoint)
        .query(&[("challenge_code", code.as_str())])
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let verified = match answered {
        Ok(response) if response.status().is_success() => response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["challengeResponse"].as_str().map(|r| r == expected))
            .unwrap_or(false),
        _ => false,
    };
    if !verified {
        return error(
            StatusCode::CONFLICT,
            195020,
            "API_NOTIFICATION",
            "REQUEST",
            "Challenge verification failed for requested endpoint",
        );
    }
    let mut books = books.lock().unwrap();
    let id = format!("dst-{}", books.destinations.len() + 1);
    books.destinations.push(
        json!({"destinationId": id, "name": body["name"], "status": "ENABLED",
        "deliveryConfig": {"endpoint": endpoint, "verificationToken": token}}),
    );
    core.served();
    created(format!(
        "https://api.ebay.com/commerce/notification/v1/destination/{id}"
    ))
}

async fn list_destinations(State((core, books)): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit_any(&core, &books, &headers) {
        return refused;
    }
    let destinations = books.lock().unwrap().destinations.clone();
    core.served();
    Json(json!({"total": destinations.len(), "destinations": destinations})).into_response()
}

async fn create_subscription(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) = admit_any(&core, &books, &headers) {
        return refused;
    }
    let mut books = books.lock().unwrap();
    let destination = body["destinationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !books
        .destinations
        .iter()
        .any(|d| d["destinationId"] == destination.as_str())
    {
        return error(
            StatusCode::BAD_REQUEST,
            195007,
            "API_NOTIFICATION",
            "REQUEST",
            "Invalid or missing destination id",
        );
    }
    if body["payload"]["schemaVersion"] != "1.0"
        || body["payload"]["format"] != "JSON"
        || body["payload"]["deliveryProtocol"] != "HTTPS"
    {
        return error(
            StatusCode::BAD_REQUEST,
            195008,
            "API_NOTIFICATION",
            "REQUEST",
            "Invalid or missing schema version, format or protocol",
        );
    }
    let topic = body["topicId"].as_str().unwrap_or_default().to_owned();
    if books
        .subscriptions
        .iter()
        .any(|s| s["topicId"] == topic.as_str() && s["destinationId"] == destination.as_str())
    {
        return error(
            StatusCode::CONFLICT,
            195012,
            "API_NOTIFICATION",
            "REQUEST",
            "Subscription already exists",
        );
    }
    let id = format!("sub-{}", books.subscriptions.len() + 1);
    books.subscriptions.push(
        json!({"subscriptionId": id, "topicId": topic, "status": body["status"],
        "destinationId": destination, "payload": body["payload"]}),
    );
    core.served();
    created(format!(
        "https://api.ebay.com/commerce/notification/v1/subscription/{id}"
    ))
}

async fn list_subscriptions(State((core, books)): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit_any(&core, &books, &headers) {
        return refused;
    }
    let subscriptions = books.lock().unwrap().subscriptions.clone();
    core.served();
    Json(json!({"total": subscriptions.len(), "subscriptions": subscriptions})).into_response()
}

async fn test_subscription(
    State((core, books)): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = admit_any(&core, &books, &headers) {
        return refused;
    }
    let endpoint = {
        let books = books.lock().unwrap();
        let Some(subscription) = books
            .subscriptions
            .iter()
            .find(|s| s["subscriptionId"] == id.as_str())
        else {
            return error(
                StatusCode::NOT_FOUND,
                195013,
                "API_NOTIFICATION",
                "REQUEST",
                "Invalid or missing subscription id",
            );
        };
        let destination = subscription["destinationId"].clone();
        books
            .destinations
            .iter()
            .find(|d| d["destinationId"] == destination)
            .and_then(|d| d["deliveryConfig"]["endpoint"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    core.served();
    tokio::spawn(async move {
        let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let body = json!({"metadata": {"topic": "ORDER_CONFIRMATION", "schemaVersion": "1.0", "deprecated": false},
            "notification": {"notificationId": format!("test-{id}-{now}"), "eventDate": now, "publishDate": now,
                "publishAttemptCount": 1, "data": {"order": {"orderId": "00-00000-00000", "orderLineItems": []}}}})
        .to_string();
        let status = reqwest::Client::new()
            .post(&endpoint)
            .header("content-type", "application/json")
            .header(
                "x-ebay-signature",
                crate::support::ebay_sim::sign(crate::support::ebay_sim::KID, body.as_bytes()),
            )
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        books.lock().unwrap().test_deliveries.push(status);
    });
    StatusCode::ACCEPTED.into_response()
}
