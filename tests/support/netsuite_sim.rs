//! A NetSuite SuiteTalk REST simulator that follows the documented contract
//! (`shared/reference/erp-targets.md` §3), not a 200-for-everything stub:
//!
//! - `POST /services/rest/auth/oauth2/v1/token`: OAuth 2.0 client credentials with a JWT
//!   client assertion, whose ES256 signature is checked against the mapped certificate's
//!   public key, as are its `kid`, `iss`, `aud` and `exp`. Tokens expire (and can be expired
//!   on demand); a refused token is 401 `INVALID_LOGIN`.
//! - `GET|PUT|PATCH /services/rest/record/v1/salesOrder/eid:{id}` and the same for
//!   `creditMemo`: PUT creates or updates by external id (204); the item sublist is replaced
//!   with `?replace=item` and merged by `line` otherwise; PATCH sets the fields it carries.
//!   GET of an unknown external id is 404. External ids outside letters, digits, `_` and `-`,
//!   an unknown customer, item (`eid:<sku>`) or custom field, or a value longer than its
//!   Free-Form Text field (300 bytes), are 400 with NetSuite's `o:errorDetails`. The
//!   account's custom body fields: [`VERSION_FIELD`] and [`ATTRIBUTION_FIELDS`].
//! - A concurrency limit per account, as NetSuite's governance: a request over the limit is
//!   refused with 429 at once. A latency per request can be set so calls overlap.
//! - Faults on demand: the scheduled-maintenance answer (503), the RESTlet-style 400
//!   `SSS_REQUEST_LIMIT_EXCEEDED`.
//! - Every record write is counted per external id.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use orderbridge_runtime::Secret;
use orderbridge_sink::erp::netsuite::NetSuiteConfig;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

pub const ACCOUNT: &str = "1234567_SB1";
pub const CLIENT_ID: &str = "7c2f1d0e9a8b4c6d5e4f3a2b1c0d9e8f";
pub const CERTIFICATE_ID: &str = "kA3nB4mP9qR2sT5uV8wX1yZ";
pub const CUSTOMER_ID: &str = "614";
pub const VERSION_FIELD: &str = "custbody_orderbridge_version";
/// The account's custom body fields for attribution: first touch, last touch, touchpoints.
pub const ATTRIBUTION_FIELDS: [&str; 3] = [
    "custbody_ob_first_touch",
    "custbody_ob_last_touch",
    "custbody_ob_touchpoints",
];
/// A Free-Form Text field's limit (300 characters of English text: bytes).
const FREE_FORM_TEXT_MAX: usize = 300;

/// The certificate's private key (a fixed test key).
fn signing_key() -> SigningKey {
    SigningKey::from_slice(&[7u8; 32]).unwrap()
}

/// A stored transaction record.
#[derive(Debug, Clone)]
pub struct Record {
    pub internal_id: u64,
    pub external_id: String,
    pub fields: serde_json::Map<String, Value>,
    pub lines: Vec<Value>,
    pub writes: u32,
}

impl Record {
    pub fn version(&self) -> Option<i64> {
        self.fields.get(VERSION_FIELD)?.as_str()?.parse().ok()
    }

    fn json(&self) -> Value {
        let mut json = Value::Object(self.fields.clone());
        json["id"] = json!(self.internal_id.to_string());
        json["externalId"] = json!(self.external_id);
        json["item"] = json!({ "items": self.lines });
        json
    }
}

#[derive(Default)]
struct Sim {
    tokens: HashMap<String, Instant>,
    /// Record type (`salesOrder`, `creditMemo`) → external id → record.
    records: HashMap<String, HashMap<String, Record>>,
    items: HashSet<String>,
    next_id: u64,
    maintenance: bool,
    request_limit_faults: u32,
    latency: Duration,
    token_requests: u32,
    refused_for_concurrency: u32,
}

/// A running simulator.
#[derive(Clone)]
pub struct NetSuiteSim {
    pub addr: SocketAddr,
    state: Arc<Mutex<Sim>>,
    in_flight: Arc<AtomicUsize>,
    limit: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl NetSuiteSim {
    /// Starts a simulator on 127.0.0.1 with customer 614, an item per SKU (external id) and
    /// a concurrency limit of 5 (a developer account's).
    pub async fn start(skus: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(Sim {
            items: skus.iter().map(|s| (*s).to_owned()).collect(),
            next_id: 1000,
            ..Sim::default()
        }));
        let sim = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            state,
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit: Arc::new(AtomicUsize::new(5)),
            most_at_once: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/services/rest/auth/oauth2/v1/token", post(token))
            .route("/services/rest/record/v1/{kind}/{id}", any(record))
            .with_state(sim.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, ..sim }
    }

    /// Adapter settings pointing at this simulator.
    pub fn config(&self) -> NetSuiteConfig {
        NetSuiteConfig {
            account_id: ACCOUNT.into(),
            base_url: Some(format!("http://{}", self.addr)),
            client_id: CLIENT_ID.into(),
            certificate_id: CERTIFICATE_ID.into(),
            private_key: Secret::new(
                signing_key()
                    .to_pkcs8_pem(LineEnding::LF)
                    .unwrap()
                    .to_string(),
            ),
            default_customer_id: CUSTOMER_ID.into(),
            version_field: VERSION_FIELD.into(),
            attribution_fields: Default::default(),
            refund_item_id: None,
            request_timeout_ms: 5_000,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sim> {
        self.state.lock().unwrap()
    }

    pub fn set_concurrency_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn set_maintenance(&self, on: bool) {
        self.lock().maintenance = on;
    }

    /// The next `count` record requests get the RESTlet-style `SSS_REQUEST_LIMIT_EXCEEDED`.
    pub fn refuse_with_request_limit(&self, count: u32) {
        self.lock().request_limit_faults = count;
    }

    pub fn expire_tokens(&self) {
        for expiry in self.lock().tokens.values_mut() {
            *expiry = Instant::now() - Duration::from_secs(1);
        }
    }

    pub fn orders(&self) -> Vec<Record> {
        self.records("salesOrder")
    }

    pub fn credit_memos(&self) -> Vec<Record> {
        self.records("creditMemo")
    }

    fn records(&self, kind: &str) -> Vec<Record> {
        self.lock()
            .records
            .get(kind)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// (token requests, requests refused for concurrency, most requests at once)
    pub fn counts(&self) -> (u32, u32, usize) {
        let state = self.lock();
        (
            state.token_requests,
            state.refused_for_concurrency,
            self.most_at_once.load(Ordering::SeqCst),
        )
    }
}

/// NetSuite's error body.
fn ns_error(status: StatusCode, code: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({
            "type": "https://www.rfc-editor.org/rfc/rfc9110.html",
            "title": status.canonical_reason().unwrap_or_default(),
            "status": status.as_u16(),
            "o:errorDetails": [{ "detail": detail, "o:errorCode": code }],
        })),
    )
        .into_response()
}

fn claims_ok(assertion: &str, audience: &str) -> bool {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return false;
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let (Some(header_json), Some(claims_json)) = (decode(header), decode(claims)) else {
        return false;
    };
    let Some(signature) = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
    else {
        return false;
    };
    let key = VerifyingKey::from(&signing_key());
    key.verify(format!("{header}.{claims}").as_bytes(), &signature)
        .is_ok()
        && header_json["alg"] == "ES256"
        && header_json["kid"] == CERTIFICATE_ID
        && claims_json["iss"] == CLIENT_ID
        && claims_json["aud"] == audience
        && claims_json["exp"].as_i64().unwrap_or_default() > chrono::Utc::now().timestamp()
}

async fn token(
    State(sim): State<NetSuiteSim>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut state = sim.lock();
    state.token_requests += 1;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let audience = format!("http://{host}/services/rest/auth/oauth2/v1/token");
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials"
        || field("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        || !claims_ok(field("client_assertion"), &audience)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    let token = format!("eyJraWQiOi.ns.{}", state.token_requests);
    state
        .tokens
        .insert(token.clone(), Instant::now() + Duration::from_secs(3600));
    Json(json!({ "access_token": token, "token_type": "bearer", "expires_in": 3600 }))
        .into_response()
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn record(
    State(sim): State<NetSuiteSim>,
    method: Method,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = sim.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(Arc::clone(&sim.in_flight));
    sim.most_at_once.fetch_max(now, Ordering::SeqCst);
    let latency = {
        let mut state = sim.lock();
        if state.maintenance {
            return ns_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNEXPECTED_ERROR",
                "The account you are trying to access is currently unavailable while we undergo our regularly scheduled maintenance.",
            );
        }
        let valid = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| state.tokens.get(t))
            .is_some_and(|expiry| Instant::now() < *expiry);
        if !valid {
            return ns_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_LOGIN",
                "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.",
            );
        }
        if now > sim.limit.load(Ordering::SeqCst) {
            state.refused_for_concurrency += 1;
            return ns_error(
                StatusCode::TOO_MANY_REQUESTS,
                "CONCURRENCY_LIMIT_EXCEEDED",
                "Concurrent request limit exceeded. Request blocked.",
            );
        }
        if state.request_limit_faults > 0 {
            state.request_limit_faults -= 1;
            return ns_error(
                StatusCode::BAD_REQUEST,
                "SSS_REQUEST_LIMIT_EXCEEDED",
                "Request limit exceeded.",
            );
        }
        state.latency
    };
    super::answer_after(latency).await;
    let mut state = sim.lock();
    let Some(external_id) = id.strip_prefix("eid:").map(str::to_owned) else {
        return ns_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ID",
            "This sample works with external ids only.",
        );
    };
    if !external_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return ns_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ID",
            &format!("Invalid external id {external_id}."),
        );
    }
    if kind != "salesOrder" && kind != "creditMemo" {
        return ns_error(
            StatusCode::NOT_FOUND,
            "INVALID_RCRD_TYPE",
            &format!("Record type '{kind}' does not exist."),
        );
    }
    let existing = state
        .records
        .get(&kind)
        .and_then(|r| r.get(&external_id))
        .cloned();
    match method {
        Method::GET => match existing {
            Some(record) => Json(record.json()).into_response(),
            None => ns_error(
                StatusCode::NOT_FOUND,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            ),
        },
        Method::PUT | Method::PATCH => {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if method == Method::PATCH && existing.is_none() {
                return ns_error(
                    StatusCode::NOT_FOUND,
                    "NONEXISTENT_ID",
                    "The record instance does not exist. Provide a valid record instance ID.",
                );
            }
            if let Err(response) = validate(&state, &body, method == Method::PUT) {
                return response;
            }
            let replace = query.get("replace").map(String::as_str) == Some("item");
            let next_id = state.next_id + 1;
            let records = state.records.entry(kind).or_default();
            let created = existing.is_none();
            let record = records
                .entry(external_id.clone())
                .or_insert_with(|| Record {
                    internal_id: next_id,
                    external_id,
                    fields: serde_json::Map::new(),
                    lines: Vec::new(),
                    writes: 0,
                });
            for (field, value) in body.as_object().into_iter().flatten() {
                if field != "item" && field != "externalId" {
                    record.fields.insert(field.clone(), value.clone());
                }
            }
            if let Some(lines) = body.pointer("/item/items").and_then(Value::as_array) {
                if replace || created {
                    record.lines.clear();
                }
                for line in lines {
                    let at = line["line"]
                        .as_u64()
                        .and_then(|n| record.lines.iter().position(|l| l["line"] == n));
                    match at {
                        // Merged by line number.
                        Some(at) => {
                            for (field, value) in line.as_object().into_iter().flatten() {
                                record.lines[at][field] = value.clone();
                            }
                        }
                        None => {
                            let mut line = line.clone();
                            line["line"] = json!(record.lines.len() + 1);
                            record.lines.push(line);
                        }
                    }
                }
            }
            record.writes += 1;
            if created {
                state.next_id = next_id;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => ns_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "INVALID_REQUEST",
            "Method not allowed.",
        ),
    }
}

/// NetSuite's checks of a record body: the customer, the items, the fields.
#[allow(clippy::result_large_err)] // the refusal is the HTTP response itself
fn validate(state: &Sim, body: &Value, whole: bool) -> Result<(), Response> {
    if whole && body.pointer("/entity/id").and_then(Value::as_str) != Some(CUSTOMER_ID) {
        return Err(ns_error(
            StatusCode::BAD_REQUEST,
            "USER_ERROR",
            "Error while accessing a resource. Please enter value(s) for: Customer.",
        ));
    }
    for line in body
        .pointer("/item/items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(item) = line.pointer("/item/id").and_then(Value::as_str) else {
            continue; // a line change by `line` number
        };
        let known = item
            .strip_prefix("eid:")
            .is_some_and(|sku| state.items.contains(sku))
            || item == "900";
        if !known {
            return Err(ns_error(
                StatusCode::BAD_REQUEST,
                "INVALID_KEY_OR_REF",
                &format!("Invalid item reference key {item}."),
            ));
        }
    }
    for (field, value) in body.as_object().into_iter().flatten() {
        if !field.starts_with("custbody") {
            continue;
        }
        if field != VERSION_FIELD && !ATTRIBUTION_FIELDS.contains(&field.as_str()) {
            return Err(ns_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FLD",
                &format!("Invalid field {field}."),
            ));
        }
        if value
            .as_str()
            .is_some_and(|text| text.len() > FREE_FORM_TEXT_MAX)
        {
            return Err(ns_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FLD_VALUE",
                &format!(
                    "The field {field} contained more than the maximum number ( {FREE_FORM_TEXT_MAX} ) of characters allowed."
                ),
            ));
        }
    }
    Ok(())
}
