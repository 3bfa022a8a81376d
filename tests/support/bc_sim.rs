//! A Business Central API v2.0 simulator that follows the documented contract
//! (`shared/reference/erp-targets.md` §1), not a 200-for-everything stub:
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials (form), checks the client id and
//!   secret and the `.default` scope; tokens expire (and can be expired on demand).
//! - `GET …/companies({id})/salesOrders|salesInvoices|salesCreditMemos?$filter=externalDocumentNumber eq '…'`
//! - `POST …/salesOrders` with nested `salesOrderLines` and `POST …/salesCreditMemos` with
//!   nested `salesCreditMemoLines` (deep insert): 201; 400 with BC's error body for an unknown
//!   customer, item or G/L account, or an `externalDocumentNumber` over 35 characters. Like
//!   BC, it does **not** reject a duplicate external document number.
//! - `GET|POST …/salesOrders({id})/salesOrderLines`, `PATCH …/salesOrderLines({id})`,
//!   `DELETE …/salesOrders({id})` and `DELETE …/salesOrderLines({id})`. PATCH and DELETE
//!   require `If-Match` (BC's 400 otherwise); a missing entity is 404
//!   `Internal_RecordNotFound`. Lines are `Item`, `Account` or `Comment`; a `description`
//!   takes at most 100 characters, on a create and on a change.
//! - `POST /v2.0/{tenant}/{env}/api/v2.0/$batch` (JSON batch): with `Isolation: snapshot` the
//!   requests run in one transaction, rolled back when one fails, as BC does.
//! - Shipping and invoicing an order on demand: it leaves `salesOrders` and becomes a posted
//!   `salesInvoices` entry with the same external document number.
//! - 401 `Authentication_InvalidCredentials` for a missing, unknown or expired token.
//! - Faults on demand: 429 with `Retry-After`, a maintenance window (503), a create that lands
//!   and then answers 503, a create that lands and then answers too late, creates held for a
//!   while before they land.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orderbridge_runtime::Secret;
use orderbridge_sink::erp::business_central::BusinessCentralConfig;
use serde_json::{json, Value};

pub const TENANT: &str = "contoso-tenant";
pub const ENVIRONMENT: &str = "production";
pub const COMPANY: &str = "f03f6225-081c-ec11-bb77-000d3abcd123";
pub const CLIENT_ID: &str = "orderbridge-app";
pub const CLIENT_SECRET: &str = "s3cr3t~value";
pub const CUSTOMER: &str = "10000";
/// The G/L account the simulator knows (sales returns and allowances).
pub const REFUND_ACCOUNT: &str = "40400";

/// A fault applied to the next matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next API call gets 429 with this `Retry-After` (seconds).
    Throttle(u64),
    /// The next create stores the order, then answers 503.
    CreateLandsThen503,
    /// The next create stores the order, then answers after this delay.
    CreateLandsThenStall(Duration),
}

/// A sales document: an order, a posted invoice or a credit memo.
#[derive(Debug, Clone)]
pub struct SalesOrder {
    pub id: String,
    pub number: String,
    pub external_document_number: String,
    pub customer_number: String,
    pub currency_code: String,
    pub lines: Vec<Value>,
}

impl SalesOrder {
    /// The lines that are not comments.
    pub fn item_lines(&self) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["lineType"] != "Comment")
            .collect()
    }

    /// The comment lines' descriptions.
    pub fn comments(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l["lineType"] == "Comment")
            .filter_map(|l| l["description"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The company's documents. Each is shared, so that a `$batch` snapshot (a copy of the books
/// taken before a changeset, put back if it fails) costs a pointer per document (and per
/// entry of `created`), and a document is copied only when a batch changes it: a long run
/// keeps tens of thousands.
#[derive(Default, Clone)]
struct Books {
    orders: Vec<Arc<SalesOrder>>,
    invoices: Vec<Arc<SalesOrder>>,
    credit_memos: Vec<Arc<SalesOrder>>,
    /// The external document numbers of the sales orders created, oldest first (a created
    /// order that is later deleted or invoiced stays here).
    created: Vec<Arc<str>>,
    next_id: u64,
}

#[derive(Default)]
struct State_ {
    tokens: HashMap<String, Instant>,
    token_lifetime: Duration,
    books: Books,
    items: HashSet<String>,
    faults: VecDeque<Fault>,
    maintenance: bool,
    token_requests: u32,
    lookups: u32,
    creates: u32,
    batches: u32,
    /// Creates received and being held ([`BcSim::hold_creates`]).
    holding: u32,
    hold_creates: Option<Duration>,
}

/// A running simulator.
#[derive(Clone)]
pub struct BcSim {
    pub addr: SocketAddr,
    state: Arc<Mutex<State_>>,
}

const API: &str = "/v2.0/{tenant}/{env}/api/v2.0";

impl BcSim {
    /// Starts a simulator on 127.0.0.1 that knows customer 10000 and the given item numbers.
    pub async fn start(items: &[&str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, items)
    }

    /// Serves the simulator on `listener` (the standalone `erp-simulator` binds its own).
    pub fn serve(listener: tokio::net::TcpListener, items: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(State_ {
            token_lifetime: Duration::from_secs(3599),
            items: items.iter().map(|s| (*s).to_owned()).collect(),
            ..State_::default()
        }));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route(&format!("{API}/$batch"), post(batch))
            .route(
                &format!("{API}/{{company}}/{{a}}"),
                get(api).post(api).patch(api).delete(api),
            )
            .route(
                &format!("{API}/{{company}}/{{a}}/{{b}}"),
                get(api).post(api).patch(api).delete(api),
            )
            .with_state(Arc::clone(&state));
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// Adapter settings pointing at this simulator.
    pub fn config(&self, request_timeout_ms: u64) -> BusinessCentralConfig {
        BusinessCentralConfig {
            tenant_id: TENANT.into(),
            environment: ENVIRONMENT.into(),
            company_id: COMPANY.into(),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            default_customer_number: CUSTOMER.into(),
            api_url: format!("http://{}/v2.0", self.addr),
            token_url: format!("http://{}/{{tenant}}/oauth2/v2.0/token", self.addr),
            scope: "https://api.businesscentral.dynamics.com/.default".into(),
            refund_account_number: None,
            attribution_comment: true,
            request_timeout_ms,
        }
    }

    /// The Business Central adapter on this simulator with `[sink.mapping] items` (SKU → item
    /// number) of `items`.
    pub fn client_with_items(
        &self,
        items: &[(&str, &str)],
    ) -> Arc<orderbridge_sink::erp::business_central::BusinessCentral> {
        use orderbridge_sink::mapping::{Mapping, MappingConfig};
        let mapping = MappingConfig {
            items: items
                .iter()
                .map(|(sku, item)| ((*sku).to_owned(), (*item).to_owned()))
                .collect(),
            ..MappingConfig::default()
        };
        Arc::new(
            orderbridge_sink::erp::business_central::BusinessCentral::new(self.config(5_000))
                .unwrap()
                .with_mapping(Arc::new(Mapping::new(mapping).unwrap())),
        )
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// Holds every create (a sales order or a credit memo) for `hold` before storing and
    /// answering it: a slow ERP, during which the caller cannot know whether it will land
    /// (`None`: no more holding).
    pub fn hold_creates(&self, hold: Option<Duration>) {
        self.state.lock().unwrap().hold_creates = hold;
    }

    /// Creates being held right now.
    pub fn holding(&self) -> u32 {
        self.state.lock().unwrap().holding
    }

    pub fn set_maintenance(&self, on: bool) {
        self.state.lock().unwrap().maintenance = on;
    }

    pub fn expire_tokens(&self) {
        let mut state = self.state.lock().unwrap();
        for expiry in state.tokens.values_mut() {
            *expiry = Instant::now() - Duration::from_secs(1);
        }
    }

    pub fn orders(&self) -> Vec<SalesOrder> {
        unshared(&self.state.lock().unwrap().books.orders)
    }

    pub fn invoices(&self) -> Vec<SalesOrder> {
        unshared(&self.state.lock().unwrap().books.invoices)
    }

    pub fn credit_memos(&self) -> Vec<SalesOrder> {
        unshared(&self.state.lock().unwrap().books.credit_memos)
    }

    /// The external document numbers of the sales orders created after the first `from`, in
    /// the order they were created: how a watcher follows a long run without copying the
    /// books on every look.
    pub fn created_since(&self, from: usize) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let new = state.books.created.get(from..).unwrap_or_default();
        new.iter().map(|reference| reference.to_string()).collect()
    }

    pub fn orders_with_reference(&self, reference: &str) -> usize {
        self.orders()
            .iter()
            .filter(|o| o.external_document_number == reference)
            .count()
    }

    /// Ships and invoices the order with `reference` in BC: the order becomes a posted
    /// invoice and is gone from `salesOrders`.
    pub fn ship_and_invoice(&self, reference: &str) {
        let mut state = self.state.lock().unwrap();
        let books = &mut state.books;
        if let Some(at) = books
            .orders
            .iter()
            .position(|o| o.external_document_number == reference)
        {
            let mut invoice = books.orders.remove(at);
            let posted = Arc::make_mut(&mut invoice);
            posted.number = posted.number.replace("S-ORD", "PS-INV");
            books.invoices.push(invoice);
        }
    }

    /// (token requests, lookups, creates)
    pub fn counts(&self) -> (u32, u32, u32) {
        let state = self.state.lock().unwrap();
        (state.token_requests, state.lookups, state.creates)
    }

    /// `$batch` requests received.
    pub fn batches(&self) -> u32 {
        self.state.lock().unwrap().batches
    }
}

type Shared = State<Arc<Mutex<State_>>>;

fn bc_error_body(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": format!("{message}  CorrelationId:  8c5f2a4e-0000-4000-8000-000000000000.") } })
}

fn bc_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(bc_error_body(code, message))).into_response()
}

async fn token(
    State(state): Shared,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.token_requests += 1;
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if tenant != TENANT {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}))).into_response();
    }
    if field("grant_type") != "client_credentials" || !field("scope").ends_with("/.default") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "AADSTS900144: grant_type or scope invalid."}))).into_response();
    }
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}))).into_response();
    }
    let token = format!("eyJ0eXAi.sim.{}", state.token_requests);
    let lifetime = state.token_lifetime;
    state
        .tokens
        .insert(token.clone(), Instant::now() + lifetime);
    Json(json!({ "token_type": "Bearer", "expires_in": lifetime.as_secs(), "access_token": token }))
        .into_response()
}

/// Auth, maintenance and throttling, in the order BC applies them to an API call.
#[allow(clippy::result_large_err)] // the refusal is the HTTP response itself
fn gate(state: &mut State_, headers: &HeaderMap, tenant: &str, env: &str) -> Result<(), Response> {
    if state.maintenance {
        return Err(bc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Internal_TenantUnavailable",
            "The environment is being updated. Try again later.",
        ));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = bearer
        .and_then(|t| state.tokens.get(t))
        .is_some_and(|expiry| Instant::now() < *expiry);
    if !valid {
        return Err(bc_error(
            StatusCode::UNAUTHORIZED,
            "Authentication_InvalidCredentials",
            "The server has rejected the client credentials.",
        ));
    }
    if matches!(state.faults.front(), Some(Fault::Throttle(_))) {
        if let Some(Fault::Throttle(seconds)) = state.faults.pop_front() {
            let mut response = bc_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Application_TooManyRequests",
                "Too many requests reached.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
            return Err(response);
        }
    }
    if tenant != TENANT || env != ENVIRONMENT {
        return Err(bc_error(
            StatusCode::NOT_FOUND,
            "BadRequest_NotFound",
            "The requested environment was not found.",
        ));
    }
    Ok(())
}

/// One API operation's answer.
type Answer = (StatusCode, Value);

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    (status, bc_error_body(code, message))
}

fn not_found(what: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "Internal_RecordNotFound",
        &format!("The {what} does not exist."),
    )
}

/// `name(<key>)` → `(name, key)`; a plain name → `(name, None)`.
fn segment(text: &str) -> (&str, Option<&str>) {
    match text.split_once('(') {
        Some((name, rest)) => (name, rest.strip_suffix(')')),
        None => (text, None),
    }
}

/// One API operation on the company's books: `path` is what follows `companies(<id>)/`.
fn operate(
    state: &mut State_,
    method: &Method,
    path: &[&str],
    query: &HashMap<String, String>,
    if_match: bool,
    body: &Value,
) -> Answer {
    if (*method == Method::PATCH || *method == Method::DELETE) && !if_match {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest_MethodNotAllowed",
            "Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.",
        );
    }
    match (method.clone(), path) {
        (Method::GET, [collection]) => lookup(state, collection, query),
        (Method::POST, ["salesOrders"]) => create(state, body, "salesOrderLines", false),
        (Method::POST, ["salesCreditMemos"]) => create(state, body, "salesCreditMemoLines", true),
        (Method::DELETE, [order]) => match segment(order) {
            ("salesOrders", Some(id)) => {
                let orders = &mut state.books.orders;
                match orders.iter().position(|o| o.id == id) {
                    Some(at) => {
                        orders.remove(at);
                        (StatusCode::NO_CONTENT, Value::Null)
                    }
                    None => not_found("Sales Header"),
                }
            }
            _ => not_found("resource"),
        },
        (method, [order, lines]) => {
            let ("salesOrders", Some(order_id)) = segment(order) else {
                return not_found("resource");
            };
            let items = state.items.clone();
            let Some(order) = state
                .books
                .orders
                .iter_mut()
                .find(|o| o.id == order_id)
                .map(Arc::make_mut)
            else {
                return not_found("Sales Header");
            };
            let next_id = &mut state.books.next_id;
            match (method, segment(lines)) {
                (Method::GET, ("salesOrderLines", None)) => {
                    (StatusCode::OK, json!({ "value": order.lines }))
                }
                (Method::POST, ("salesOrderLines", None)) => match line(body, &items, next_id) {
                    Ok(line) => {
                        order.lines.push(line.clone());
                        (StatusCode::CREATED, line)
                    }
                    Err(answer) => answer,
                },
                (Method::PATCH, ("salesOrderLines", Some(line_id))) => {
                    let Some(line) = order.lines.iter_mut().find(|l| l["id"] == line_id) else {
                        return not_found("Sales Line");
                    };
                    if let Err(answer) = description_fits(body) {
                        return answer;
                    }
                    for (field, value) in body.as_object().into_iter().flatten() {
                        line[field] = value.clone();
                    }
                    (StatusCode::OK, line.clone())
                }
                (Method::DELETE, ("salesOrderLines", Some(line_id))) => {
                    match order.lines.iter().position(|l| l["id"] == line_id) {
                        Some(at) => {
                            order.lines.remove(at);
                            (StatusCode::NO_CONTENT, Value::Null)
                        }
                        None => not_found("Sales Line"),
                    }
                }
                _ => not_found("resource"),
            }
        }
        _ => not_found("resource"),
    }
}

fn lookup(state: &mut State_, collection: &str, query: &HashMap<String, String>) -> Answer {
    state.lookups += 1;
    let documents = match collection {
        "salesOrders" => &state.books.orders,
        "salesInvoices" => &state.books.invoices,
        "salesCreditMemos" => &state.books.credit_memos,
        _ => return not_found("resource"),
    };
    let filter = query.get("$filter").cloned().unwrap_or_default();
    let Some(wanted) = filter
        .strip_prefix("externalDocumentNumber eq '")
        .and_then(|rest| rest.strip_suffix('\''))
        .map(|v| v.replace("''", "'"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest_InvalidFilter",
            "The $filter expression is not supported.",
        );
    };
    // Code fields compare upper-cased.
    let wanted = wanted.to_uppercase();
    let found: Vec<Value> = documents
        .iter()
        .filter(|o| o.external_document_number == wanted)
        .map(|o| document_json(o))
        .collect();
    (StatusCode::OK, json!({ "value": found }))
}

/// Copies of shared documents, for a test to look at.
fn unshared(documents: &[Arc<SalesOrder>]) -> Vec<SalesOrder> {
    documents.iter().map(|d| SalesOrder::clone(d)).collect()
}

fn document_json(document: &SalesOrder) -> Value {
    json!({
        "@odata.etag": format!("W/\"JzQ0O{}\"", document.number),
        "id": document.id,
        "number": document.number,
        "externalDocumentNumber": document.external_document_number,
        "customerNumber": document.customer_number,
        "currencyCode": document.currency_code,
        "status": "Draft",
    })
}

/// BC's refusal of a line `description` over its 100 characters (`Text[100]`), on a
/// create and on a change alike.
fn description_fits(body: &Value) -> Result<(), Answer> {
    if body["description"]
        .as_str()
        .map_or(0, |d| d.chars().count())
        > 100
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Application_StringExceededLength",
            "The length of the string is more than 100 characters.",
        ));
    }
    Ok(())
}

/// A line as BC stores it, or BC's refusal.
fn line(body: &Value, items: &HashSet<String>, next_id: &mut u64) -> Result<Value, Answer> {
    let kind = body["lineType"].as_str().unwrap_or("Item");
    let number = body["lineObjectNumber"].as_str().unwrap_or_default();
    match kind {
        "Item" if !items.contains(number) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "Internal_RecordNotFound",
                &format!(
                    "The Item does not exist. Identification fields and values: No.='{number}'"
                ),
            ))
        }
        "Account" if number != REFUND_ACCOUNT => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "Internal_RecordNotFound",
                &format!(
                "The G/L Account does not exist. Identification fields and values: No.='{number}'"
            ),
            ))
        }
        "Item" | "Account" | "Comment" => {}
        other => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequest_InvalidToken",
                &format!("Cannot convert the literal '{other}' to the expected type 'lineType'."),
            ))
        }
    }
    description_fits(body)?;
    *next_id += 1;
    let mut line = body.clone();
    line["id"] = json!(format!("7c3a1e20-0000-4000-8000-{:012}", *next_id));
    line["lineType"] = json!(kind);
    Ok(line)
}

fn create(state: &mut State_, body: &Value, lines_field: &str, credit_memo: bool) -> Answer {
    state.creates += 1;
    let external = body["externalDocumentNumber"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_uppercase();
    if external.len() > 35 {
        return error(
            StatusCode::BAD_REQUEST,
            "Application_StringExceededLength",
            "The length of the string is 36, but it must be less than or equal to 35 characters.",
        );
    }
    let customer = body["customerNumber"].as_str().unwrap_or_default();
    if customer.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "Application_DialogException",
            "A customerNumber or a customerID must be provided.",
        );
    }
    if customer != CUSTOMER {
        return error(
            StatusCode::BAD_REQUEST,
            "Internal_RecordNotFound",
            &format!(
                "The Customer does not exist. Identification fields and values: No.='{customer}'"
            ),
        );
    }
    let mut lines = Vec::new();
    for body in body[lines_field].as_array().into_iter().flatten() {
        match line(body, &state.items, &mut state.books.next_id) {
            Ok(line) => lines.push(line),
            Err(answer) => return answer,
        }
    }
    let books = &mut state.books;
    books.next_id += 1;
    let document = SalesOrder {
        id: format!("5d115c9c-44e3-ea11-bb43-{:012}", books.next_id),
        number: if credit_memo {
            format!("S-CR{}", 104_001 + books.credit_memos.len())
        } else {
            format!(
                "S-ORD{}",
                101_001 + books.orders.len() + books.invoices.len()
            )
        },
        external_document_number: external,
        customer_number: customer.to_owned(),
        currency_code: body["currencyCode"].as_str().unwrap_or_default().to_owned(),
        lines,
    };
    let answer = document_json(&document);
    if credit_memo {
        books.credit_memos.push(Arc::new(document));
    } else {
        books
            .created
            .push(Arc::from(document.external_document_number.as_str()));
        books.orders.push(Arc::new(document));
    }
    (StatusCode::CREATED, answer)
}

async fn api(
    State(shared): Shared,
    method: Method,
    Path(params): Path<Vec<(String, String)>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_default()
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let creates = method == Method::POST
        && matches!(param("b"), "")
        && matches!(param("a"), "salesOrders" | "salesCreditMemos");
    let hold = shared.lock().unwrap().hold_creates.filter(|_| creates);
    if let Some(hold) = hold {
        shared.lock().unwrap().holding += 1;
        super::answer_after(hold).await; // the slow ERP: the create lands only after this
        shared.lock().unwrap().holding -= 1;
    }
    let (answer, stall) = {
        let mut state = shared.lock().unwrap();
        if let Err(response) = gate(&mut state, &headers, param("tenant"), param("env")) {
            return response;
        }
        if param("company") != format!("companies({COMPANY})") {
            return bc_error(
                StatusCode::NOT_FOUND,
                "BadRequest_NotFound",
                "The requested company was not found.",
            );
        }
        let path: Vec<&str> = [param("a"), param("b")]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let if_match = headers.contains_key(header::IF_MATCH);
        let answer = operate(&mut state, &method, &path, &query, if_match, &body);
        // A create is stored before any fault: the point of these faults is that the client
        // cannot tell a create that failed from one that landed.
        let created = method == Method::POST && path == ["salesOrders"];
        let stall = match state.faults.front() {
            Some(Fault::CreateLandsThen503) if created && answer.0 == StatusCode::CREATED => {
                state.faults.pop_front();
                return bc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Internal_ServerError",
                    "The service is temporarily unavailable.",
                );
            }
            Some(Fault::CreateLandsThenStall(delay)) if created => {
                let delay = *delay;
                state.faults.pop_front();
                Some(delay)
            }
            _ => None,
        };
        (answer, stall)
    };
    if let Some(delay) = stall {
        super::answer_after(delay).await; // the slow ERP: stalls past the client deadline
    }
    match answer {
        (status, Value::Null) => status.into_response(),
        (status, body) => (status, Json(body)).into_response(),
    }
}

/// `$batch` with JSON bodies: `{"requests": [{id, method, url, headers, body}]}`. With
/// `Isolation: snapshot` one failure rolls back the whole batch.
async fn batch(
    State(shared): Shared,
    Path((tenant, env)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = shared.lock().unwrap();
    if let Err(response) = gate(&mut state, &headers, &tenant, &env) {
        return response;
    }
    state.batches += 1;
    let snapshot = headers
        .get("Isolation")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("snapshot"));
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    if requests.len() > 100 {
        return bc_error(
            StatusCode::BAD_REQUEST,
            "BadRequest_BatchTooLarge",
            "The maximum number of operations in a batch is 100.",
        );
    }
    let before = state.books.clone();
    let mut responses = Vec::new();
    let mut failed = false;
    for request in &requests {
        let method = request["method"]
            .as_str()
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .unwrap_or(Method::GET);
        let url = request["url"].as_str().unwrap_or_default();
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let mut segments = path.split('/');
        let company = segments.next().unwrap_or_default();
        let rest: Vec<&str> = segments.collect();
        let query: HashMap<String, String> = reqwest::Url::parse(&format!("http://batch/?{query}"))
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        let if_match = request["headers"].get("If-Match").is_some();
        let (status, body) = if company != format!("companies({COMPANY})") {
            error(
                StatusCode::NOT_FOUND,
                "BadRequest_NotFound",
                "The requested company was not found.",
            )
        } else {
            operate(
                &mut state,
                &method,
                &rest,
                &query,
                if_match,
                &request["body"],
            )
        };
        failed |= !status.is_success();
        responses.push(json!({ "id": request["id"], "status": status.as_u16(), "body": body }));
        if failed && snapshot {
            break;
        }
    }
    if failed && snapshot {
        state.books = before;
    }
    Json(json!({ "responses": responses })).into_response()
}
