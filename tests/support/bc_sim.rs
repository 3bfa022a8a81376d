//! A Business Central API v2.0 simulator that follows the documented contract
//! (`shared/reference/erp-targets.md` §1), not a 200-for-everything stub:
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials (form), checks the client id and
//!   secret and the `.default` scope; tokens expire (and can be expired on demand).
//! - `GET  /v2.0/{tenant}/{env}/api/v2.0/companies({id})/salesOrders?$filter=externalDocumentNumber eq '…'`
//! - `POST /v2.0/{tenant}/{env}/api/v2.0/companies({id})/salesOrders` with nested
//!   `salesOrderLines` (deep insert): 201 with the order; 400 with BC's error body for an
//!   unknown customer or item or an `externalDocumentNumber` over 35 characters. Like BC, it
//!   does **not** reject a duplicate external document number.
//! - 401 `Authentication_InvalidCredentials` for a missing, unknown or expired token.
//! - Faults on demand: 429 with `Retry-After`, a maintenance window (503), a create that lands
//!   and then answers 503, a create that lands and then answers too late.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
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

#[derive(Debug, Clone)]
pub struct SalesOrder {
    pub id: String,
    pub number: String,
    pub external_document_number: String,
    pub customer_number: String,
    pub currency_code: String,
    pub lines: Vec<Value>,
}

#[derive(Default)]
struct State_ {
    tokens: HashMap<String, Instant>,
    token_lifetime: Duration,
    orders: Vec<SalesOrder>,
    items: HashSet<String>,
    faults: VecDeque<Fault>,
    maintenance: bool,
    token_requests: u32,
    lookups: u32,
    creates: u32,
}

/// A running simulator.
#[derive(Clone)]
pub struct BcSim {
    pub addr: SocketAddr,
    state: Arc<Mutex<State_>>,
}

impl BcSim {
    /// Starts a simulator on 127.0.0.1 that knows customer 10000 and the given item numbers.
    pub async fn start(items: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(State_ {
            token_lifetime: Duration::from_secs(3599),
            items: items.iter().map(|s| (*s).to_owned()).collect(),
            ..State_::default()
        }));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route(
                "/v2.0/{tenant}/{env}/api/v2.0/{company}/salesOrders",
                get(lookup).post(create),
            )
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
            request_timeout_ms,
        }
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
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
        self.state.lock().unwrap().orders.clone()
    }

    pub fn orders_with_reference(&self, reference: &str) -> usize {
        self.orders()
            .iter()
            .filter(|o| o.external_document_number == reference)
            .count()
    }

    /// (token requests, lookups, creates)
    pub fn counts(&self) -> (u32, u32, u32) {
        let state = self.state.lock().unwrap();
        (state.token_requests, state.lookups, state.creates)
    }
}

type Shared = State<Arc<Mutex<State_>>>;

fn bc_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": format!("{message}  CorrelationId:  8c5f2a4e-0000-4000-8000-000000000000.") } });
    (status, Json(body)).into_response()
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
fn gate(
    state: &mut State_,
    headers: &HeaderMap,
    path: &(String, String, String),
) -> Result<(), Response> {
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
    let (tenant, env, company) = path;
    if tenant != TENANT || env != ENVIRONMENT || *company != format!("companies({COMPANY})") {
        return Err(bc_error(
            StatusCode::NOT_FOUND,
            "BadRequest_NotFound",
            "The requested company was not found.",
        ));
    }
    Ok(())
}

async fn lookup(
    State(state): Shared,
    Path(path): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(response) = gate(&mut state, &headers, &path) {
        return response;
    }
    state.lookups += 1;
    let filter = query.get("$filter").cloned().unwrap_or_default();
    let Some(wanted) = filter
        .strip_prefix("externalDocumentNumber eq '")
        .and_then(|rest| rest.strip_suffix('\''))
        .map(|v| v.replace("''", "'"))
    else {
        return bc_error(
            StatusCode::BAD_REQUEST,
            "BadRequest_InvalidFilter",
            "The $filter expression is not supported.",
        );
    };
    let found: Vec<Value> = state
        .orders
        .iter()
        // Code fields compare upper-cased.
        .filter(|o| o.external_document_number == wanted.to_uppercase())
        .map(order_json)
        .collect();
    Json(json!({ "@odata.context": "salesOrders", "value": found })).into_response()
}

fn order_json(order: &SalesOrder) -> Value {
    json!({
        "@odata.etag": format!("W/\"JzQ0O{}\"", order.number),
        "id": order.id,
        "number": order.number,
        "externalDocumentNumber": order.external_document_number,
        "customerNumber": order.customer_number,
        "currencyCode": order.currency_code,
        "status": "Draft",
    })
}

async fn create(
    State(shared): Shared,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (order, stall) = {
        let mut state = shared.lock().unwrap();
        if let Err(response) = gate(&mut state, &headers, &path) {
            return response;
        }
        state.creates += 1;
        let external = body["externalDocumentNumber"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_uppercase();
        if external.len() > 35 {
            return bc_error(StatusCode::BAD_REQUEST, "Application_StringExceededLength", "The length of the string is 36, but it must be less than or equal to 35 characters.");
        }
        let customer = body["customerNumber"].as_str().unwrap_or_default();
        if customer.is_empty() {
            return bc_error(
                StatusCode::BAD_REQUEST,
                "Application_DialogException",
                "A customerNumber or a customerID must be provided.",
            );
        }
        if customer != CUSTOMER {
            return bc_error(StatusCode::BAD_REQUEST, "Internal_RecordNotFound", &format!("The Customer does not exist. Identification fields and values: No.='{customer}'"));
        }
        let lines = body["salesOrderLines"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for line in &lines {
            let item = line["lineObjectNumber"].as_str().unwrap_or_default();
            if !state.items.contains(item) {
                return bc_error(
                    StatusCode::BAD_REQUEST,
                    "Internal_RecordNotFound",
                    &format!(
                        "The Item does not exist. Identification fields and values: No.='{item}'"
                    ),
                );
            }
        }
        let number = format!("S-ORD{}", 101_001 + state.orders.len());
        let order = SalesOrder {
            id: format!("5d115c9c-44e3-ea11-bb43-{:012}", state.orders.len()),
            number,
            external_document_number: external,
            customer_number: customer.to_owned(),
            currency_code: body["currencyCode"].as_str().unwrap_or_default().to_owned(),
            lines,
        };
        // The order is stored before any fault: the point of these faults is that the client
        // cannot tell a create that failed from one that landed.
        state.orders.push(order.clone());
        let stall = match state.faults.front() {
            Some(Fault::CreateLandsThen503) => {
                state.faults.pop_front();
                return bc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Internal_ServerError",
                    "The service is temporarily unavailable.",
                );
            }
            Some(Fault::CreateLandsThenStall(delay)) => {
                let delay = *delay;
                state.faults.pop_front();
                Some(delay)
            }
            _ => None,
        };
        (order, stall)
    };
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await; // the slow ERP: stalls past the client deadline
    }
    (StatusCode::CREATED, Json(order_json(&order))).into_response()
}
