//! An SAP Business One Service Layer simulator (`/b1s/v2`) that follows the documented
//! contract (`shared/reference/erp-targets.md` §2), not a 200-for-everything stub:
//!
//! - `POST /b1s/v2/Login` with `CompanyDB`, `UserName`, `Password`: `SessionId` and
//!   `SessionTimeout` (minutes) in the body, `B1SESSION` and `ROUTEID` cookies. A wrong
//!   password is 401 with SAP's error body (`100000027`, "Login failed").
//! - Every other call needs both cookies and a session that has not timed out (the timeout
//!   slides with use); otherwise 401 "Invalid session or session already timeout." Sessions
//!   can be expired on demand.
//! - `GET /b1s/v2/Orders?$filter=NumAtCard eq '…'` and the same on `CreditNotes`.
//! - `POST /b1s/v2/Orders`, `POST /b1s/v2/CreditNotes`: 201 with the document and its
//!   `DocEntry`; 400 with SAP's error body for an unknown business partner or item, a missing
//!   `DocDueDate`, or a `NumAtCard` over 100 characters. Like SAP, it does **not** reject a
//!   duplicate `NumAtCard`: only the client's lookup prevents doubles.
//! - `POST /b1s/v2/Orders({DocEntry})/Cancel`: 204; 400 when the order is already cancelled.
//! - `PATCH /b1s/v2/Orders({DocEntry})`: 204. Header fields and user-defined fields (`U_…`,
//!   only those defined: `U_OBVersion`, alphanumeric 20, and `U_OBFirstTouch`,
//!   `U_OBLastTouch`, `U_OBTouchpoints`, alphanumeric 254; an undefined one, or a value
//!   longer than its field, is SAP's 400, on create too) are set; `DocumentLines` are merged by `LineNum` and
//!   appended otherwise, unless `B1S-ReplaceCollectionsOnPatch: true` asks to replace them,
//!   as the Service Layer does. A cancelled document cannot be changed (400).
//! - Every call is logged with when it started and ended, and a latency can be set, so that
//!   tests see what ran in parallel and in which order.
//! - Faults on demand: 429 with `Retry-After` (a proxy in front of the Service Layer), a
//!   maintenance window (the load balancer's 503 page), a create that lands and then answers
//!   502.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orderbridge_runtime::Secret;
use orderbridge_sink::erp::sap_business_one::SapBusinessOneConfig;
use serde_json::{json, Value};

pub const COMPANY_DB: &str = "SBODEMOUS";
pub const USER: &str = "manager";
pub const PASSWORD: &str = "B1pass!word";
pub const CARD_CODE: &str = "C20000";
const ROUTE: &str = ".node1";
/// The user-defined fields this company database has on its documents, with their sizes
/// (alphanumeric, in characters).
const UDFS: &[(&str, usize)] = &[
    ("U_OBVersion", 20),
    ("U_OBFirstTouch", 254),
    ("U_OBLastTouch", 254),
    ("U_OBTouchpoints", 254),
];

/// A fault applied to the next matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next document call gets 429 with this `Retry-After` (seconds).
    Throttle(u64),
    /// The next create stores the document, then answers 502 (the proxy lost the answer).
    CreateLandsThen502,
}

/// A stored marketing document (an order or a credit note).
#[derive(Debug, Clone)]
pub struct Document {
    pub doc_entry: u32,
    pub num_at_card: String,
    pub card_code: String,
    pub currency: String,
    pub cancelled: bool,
    pub lines: Vec<Value>,
    /// User-defined fields.
    pub udfs: HashMap<String, Value>,
    /// How many times it was changed after its creation.
    pub patches: u32,
    /// Every version stamped on it, in the order the writes arrived.
    pub history: Vec<i64>,
}

impl Document {
    /// The canonical version the sink stamped on it.
    pub fn version(&self) -> Option<i64> {
        stamped(&self.udfs)
    }
}

fn stamped(udfs: &HashMap<String, Value>) -> Option<i64> {
    udfs.get("U_OBVersion")?.as_str()?.parse().ok()
}

/// One call as the simulator saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub started: Instant,
    pub ended: Instant,
}

#[derive(Default)]
struct Sim {
    /// Session id → when it times out.
    sessions: HashMap<String, Instant>,
    session_timeout: Duration,
    orders: Vec<Document>,
    credit_notes: Vec<Document>,
    items: HashSet<String>,
    faults: VecDeque<Fault>,
    maintenance: bool,
    /// Every session is refused (401), even right after a login: a user without the
    /// licence the Service Layer needs.
    sessions_refused: bool,
    latency: Duration,
    calls: Vec<Call>,
    logins: u32,
    lookups: u32,
    creates: u32,
    next_entry: u32,
}

/// A running simulator.
#[derive(Clone)]
pub struct SapSim {
    pub addr: SocketAddr,
    state: Arc<Mutex<Sim>>,
}

impl SapSim {
    /// Starts a simulator on 127.0.0.1 that knows business partner C20000 and `items`.
    pub async fn start(items: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(Sim {
            session_timeout: Duration::from_secs(30 * 60),
            items: items.iter().map(|s| (*s).to_owned()).collect(),
            next_entry: 1,
            ..Sim::default()
        }));
        let app = Router::new()
            .route("/b1s/v2/Login", post(login))
            .route("/b1s/v2/Logout", post(logout))
            .route("/b1s/v2/{entity}", get(lookup).post(create).patch(update))
            .route("/b1s/v2/{document}/Cancel", post(cancel))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                log_and_delay,
            ))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// Adapter settings pointing at this simulator.
    pub fn config(&self, request_timeout_ms: u64) -> SapBusinessOneConfig {
        SapBusinessOneConfig {
            service_layer_url: format!("http://{}/b1s/v2", self.addr),
            company_db: COMPANY_DB.into(),
            username: USER.into(),
            password: Secret::new(PASSWORD),
            default_card_code: CARD_CODE.into(),
            due_days: 7,
            refund_item_code: None,
            version_field: "U_OBVersion".into(),
            attribution_fields: Default::default(),
            request_timeout_ms,
        }
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    pub fn set_maintenance(&self, on: bool) {
        self.state.lock().unwrap().maintenance = on;
    }

    /// While set, logins succeed and every call with their session is refused (401).
    pub fn refuse_sessions(&self, refused: bool) {
        self.state.lock().unwrap().sessions_refused = refused;
    }

    /// Every session times out now, as after `SessionTimeout` idle minutes.
    pub fn expire_sessions(&self) {
        let mut state = self.state.lock().unwrap();
        for until in state.sessions.values_mut() {
            *until = Instant::now() - Duration::from_secs(1);
        }
    }

    pub fn orders(&self) -> Vec<Document> {
        self.state.lock().unwrap().orders.clone()
    }

    /// Every call answers after `latency` (a loaded Service Layer).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Every call so far, in the order they ended.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn credit_notes(&self) -> Vec<Document> {
        self.state.lock().unwrap().credit_notes.clone()
    }

    pub fn orders_with_reference(&self, reference: &str) -> usize {
        self.orders()
            .iter()
            .filter(|o| o.num_at_card == reference)
            .count()
    }

    /// (logins, lookups, creates)
    pub fn counts(&self) -> (u32, u32, u32) {
        let state = self.state.lock().unwrap();
        (state.logins, state.lookups, state.creates)
    }
}

type Shared = State<Arc<Mutex<Sim>>>;

async fn log_and_delay(State(state): Shared, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let latency = state.lock().unwrap().latency;
    super::answer_after(latency).await;
    let response = next.run(request).await;
    state.lock().unwrap().calls.push(Call {
        method,
        path,
        started,
        ended: Instant::now(),
    });
    response
}

/// SAP's error body (v2: the message is a string).
fn sap_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

async fn login(State(state): Shared, Json(body): Json<Value>) -> Response {
    let mut state = state.lock().unwrap();
    state.logins += 1;
    if state.maintenance {
        return maintenance_page();
    }
    let field = |name: &str| body[name].as_str().unwrap_or_default();
    if field("CompanyDB") != COMPANY_DB
        || field("UserName") != USER
        || field("Password") != PASSWORD
    {
        return sap_error(StatusCode::UNAUTHORIZED, 100_000_027, "Login failed");
    }
    let session = format!("8c5f2a4e-{:04}-11ef-8000-0242ac120002", state.logins);
    let timeout = state.session_timeout;
    state
        .sessions
        .insert(session.clone(), Instant::now() + timeout);
    let mut response = Json(json!({
        "@odata.context": "$metadata#B1Sessions/$entity",
        "SessionId": session,
        "Version": "1000190",
        "SessionTimeout": timeout.as_secs() / 60,
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        format!("B1SESSION={session}; path=/b1s; HttpOnly")
            .parse()
            .unwrap(),
    );
    headers.append(
        header::SET_COOKIE,
        format!("ROUTEID={ROUTE}; path=/b1s").parse().unwrap(),
    );
    response
}

async fn logout(State(state): Shared, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(session) = cookie(&headers, "B1SESSION") {
        state.sessions.remove(&session);
    }
    StatusCode::NO_CONTENT.into_response()
}

fn maintenance_page() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>Service Unavailable</h1>The server is temporarily unable to service your request due to maintenance downtime.</body></html>",
    )
        .into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Maintenance, session and throttling, in the order the Service Layer (and the proxy in
/// front of it) applies them.
#[allow(clippy::result_large_err)] // the refusal is the HTTP response itself
fn gate(state: &mut Sim, headers: &HeaderMap) -> Result<(), Response> {
    if state.maintenance {
        return Err(maintenance_page());
    }
    let session = cookie(headers, "B1SESSION");
    let routed = cookie(headers, "ROUTEID").as_deref() == Some(ROUTE);
    let alive = session
        .as_ref()
        .and_then(|s| state.sessions.get(s))
        .is_some_and(|until| Instant::now() < *until);
    // Without ROUTEID the balancer may send the call to a node that never saw the session.
    if !alive || !routed || state.sessions_refused {
        return Err(sap_error(
            StatusCode::UNAUTHORIZED,
            301,
            "Invalid session or session already timeout.",
        ));
    }
    let timeout = state.session_timeout;
    if let Some(until) = session.and_then(|s| state.sessions.get_mut(&s)) {
        *until = Instant::now() + timeout; // the timeout slides with use
    }
    if matches!(state.faults.front(), Some(Fault::Throttle(_))) {
        if let Some(Fault::Throttle(seconds)) = state.faults.pop_front() {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
            return Err(response);
        }
    }
    Ok(())
}

fn document_json(document: &Document) -> Value {
    let mut json = json!({
        "DocEntry": document.doc_entry,
        "DocNum": 1000 + document.doc_entry,
        "NumAtCard": document.num_at_card,
        "CardCode": document.card_code,
        "DocCurrency": document.currency,
        "DocumentStatus": if document.cancelled { "bost_Close" } else { "bost_Open" },
        "Cancelled": if document.cancelled { "tYES" } else { "tNO" },
        "DocumentLines": document.lines,
    });
    for (name, value) in &document.udfs {
        json[name] = value.clone();
    }
    json
}

/// The user-defined fields of a body; an undefined one is SAP's 400.
#[allow(clippy::result_large_err)] // the refusal is the HTTP response itself
fn udfs(body: &Value) -> Result<HashMap<String, Value>, Response> {
    let mut found = HashMap::new();
    for (name, value) in body.as_object().into_iter().flatten() {
        if !name.starts_with("U_") {
            continue;
        }
        let Some((_, size)) = UDFS.iter().find(|(udf, _)| udf == name) else {
            return Err(sap_error(
                StatusCode::BAD_REQUEST,
                -1000,
                &format!("Property '{name}' of 'Document' is invalid"),
            ));
        };
        if value
            .as_str()
            .is_some_and(|text| text.chars().count() > *size)
        {
            return Err(sap_error(
                StatusCode::BAD_REQUEST,
                -5002,
                &format!("Value too long in property '{name}' of 'Document'"),
            ));
        }
        found.insert(name.clone(), value.clone());
    }
    Ok(found)
}

/// Numbers document lines from 0, as SAP's `LineNum`.
fn numbered(lines: Vec<Value>) -> Vec<Value> {
    lines
        .into_iter()
        .enumerate()
        .map(|(n, mut line)| {
            line["LineNum"] = json!(n);
            line
        })
        .collect()
}

fn known_items(state: &Sim, lines: &[Value]) -> Result<(), String> {
    for line in lines {
        let item = line["ItemCode"].as_str().unwrap_or_default();
        if !state.items.contains(item) {
            return Err(format!("Item code '{item}' is invalid"));
        }
    }
    Ok(())
}

/// The open order `Orders(<n>)` names: 404 when there is none, 400 with `refusal` when it
/// is cancelled (SAP changes nothing on a closed document).
#[allow(clippy::result_large_err)] // the refusal is the HTTP response itself
fn open_order<'a>(
    state: &'a mut Sim,
    document: &str,
    refusal: &str,
) -> Result<&'a mut Document, Response> {
    let Some(entry) = order_entry(document) else {
        return Err(sap_error(
            StatusCode::NOT_FOUND,
            -1,
            "Resource not found for the segment",
        ));
    };
    let Some(order) = state.orders.iter_mut().find(|o| o.doc_entry == entry) else {
        return Err(sap_error(
            StatusCode::NOT_FOUND,
            -2028,
            "No matching records found (ODBC -2028)",
        ));
    };
    if order.cancelled {
        return Err(sap_error(StatusCode::BAD_REQUEST, -5006, refusal));
    }
    Ok(order)
}

/// The `DocEntry` in `Orders(<n>)`.
fn order_entry(segment: &str) -> Option<u32> {
    segment
        .strip_prefix("Orders(")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse::<u32>().ok())
}

async fn lookup(
    State(state): Shared,
    Path(entity): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(response) = gate(&mut state, &headers) {
        return response;
    }
    state.lookups += 1;
    let filter = query.get("$filter").cloned().unwrap_or_default();
    let Some(wanted) = filter
        .strip_prefix("NumAtCard eq '")
        .and_then(|rest| rest.strip_suffix('\''))
        .map(|v| v.replace("''", "'"))
    else {
        return sap_error(StatusCode::BAD_REQUEST, -1000, "Invalid $filter expression");
    };
    let documents = match entity.as_str() {
        "Orders" => &state.orders,
        "CreditNotes" => &state.credit_notes,
        _ => {
            return sap_error(
                StatusCode::NOT_FOUND,
                -1,
                "Resource not found for the segment",
            )
        }
    };
    let found: Vec<Value> = documents
        .iter()
        .filter(|d| d.num_at_card == wanted)
        .map(document_json)
        .collect();
    Json(json!({ "value": found })).into_response()
}

async fn create(
    State(state): Shared,
    Path(entity): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(response) = gate(&mut state, &headers) {
        return response;
    }
    if entity != "Orders" && entity != "CreditNotes" {
        return sap_error(
            StatusCode::NOT_FOUND,
            -1,
            "Resource not found for the segment",
        );
    }
    state.creates += 1;
    let card = body["CardCode"].as_str().unwrap_or_default();
    if card != CARD_CODE {
        return sap_error(
            StatusCode::BAD_REQUEST,
            -10,
            &format!("Invalid BP code '{card}'"),
        );
    }
    if entity == "Orders" && body["DocDueDate"].as_str().is_none() {
        return sap_error(
            StatusCode::BAD_REQUEST,
            -5002,
            "Update the exchange rate  [ORDR.DocDueDate]",
        );
    }
    let num_at_card = body["NumAtCard"].as_str().unwrap_or_default().to_owned();
    if num_at_card.chars().count() > 100 {
        return sap_error(
            StatusCode::BAD_REQUEST,
            -5002,
            "Value too long in property 'NumAtCard' of 'Document'",
        );
    }
    let lines = body["DocumentLines"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if lines.is_empty() {
        return sap_error(
            StatusCode::BAD_REQUEST,
            -5002,
            "To generate this document, first define the numbering series in the Administration module",
        );
    }
    if let Err(message) = known_items(&state, &lines) {
        return sap_error(StatusCode::BAD_REQUEST, -10, &message);
    }
    let udfs = match udfs(&body) {
        Ok(udfs) => udfs,
        Err(response) => return response,
    };
    let history = stamped(&udfs).into_iter().collect();
    let document = Document {
        history,
        doc_entry: state.next_entry,
        num_at_card,
        card_code: card.to_owned(),
        currency: body["DocCurrency"].as_str().unwrap_or_default().to_owned(),
        cancelled: false,
        lines: numbered(lines),
        udfs,
        patches: 0,
    };
    state.next_entry += 1;
    // Stored before any fault: the client cannot tell a create that failed from one that
    // landed, which is the point.
    match entity.as_str() {
        "Orders" => state.orders.push(document.clone()),
        _ => state.credit_notes.push(document.clone()),
    }
    if matches!(state.faults.front(), Some(Fault::CreateLandsThen502)) {
        state.faults.pop_front();
        return (StatusCode::BAD_GATEWAY, "Proxy Error").into_response();
    }
    (StatusCode::CREATED, Json(document_json(&document))).into_response()
}

async fn cancel(
    State(state): Shared,
    Path(document): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(response) = gate(&mut state, &headers) {
        return response;
    }
    let order = match open_order(
        &mut state,
        &document,
        "Document is already closed or cancelled",
    ) {
        Ok(order) => order,
        Err(response) => return response,
    };
    order.cancelled = true;
    StatusCode::NO_CONTENT.into_response()
}

async fn update(
    State(state): Shared,
    Path(document): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(response) = gate(&mut state, &headers) {
        return response;
    }
    let udfs = match udfs(&body) {
        Ok(udfs) => udfs,
        Err(response) => return response,
    };
    let lines = body["DocumentLines"].as_array().cloned();
    if let Some(lines) = &lines {
        if let Err(message) = known_items(&state, lines) {
            return sap_error(StatusCode::BAD_REQUEST, -10, &message);
        }
    }
    let replace = headers
        .get("B1S-ReplaceCollectionsOnPatch")
        .and_then(|v| v.to_str().ok())
        == Some("true");
    let order = match open_order(
        &mut state,
        &document,
        "Cannot update a document that is closed or cancelled",
    ) {
        Ok(order) => order,
        Err(response) => return response,
    };
    if let Some(currency) = body["DocCurrency"].as_str() {
        order.currency = currency.to_owned();
    }
    order.history.extend(stamped(&udfs));
    order.udfs.extend(udfs);
    if let Some(lines) = lines {
        if replace {
            order.lines = numbered(lines);
        } else {
            // Without the header, lines are merged by LineNum and the rest appended.
            for line in lines {
                match line["LineNum"].as_u64() {
                    Some(n) if (n as usize) < order.lines.len() => order.lines[n as usize] = line,
                    _ => order.lines.push(line),
                }
            }
            order.lines = numbered(std::mem::take(&mut order.lines));
        }
    }
    order.patches += 1;
    StatusCode::NO_CONTENT.into_response()
}
