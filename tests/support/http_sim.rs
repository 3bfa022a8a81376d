//! A receiver for the generic HTTP adapter that keeps the contract in
//! `sink/src/erp/http.rs`, as a careful middleware would:
//!
//! - `PUT /orders/{reference}` with a bearer token (401 without it) and a JSON `OrderEvent`
//!   (422 with a message when the body is not one).
//! - It remembers `Idempotency-Key`s: a key seen before gets the first answer again and
//!   changes nothing.
//! - 201 for a new order, 200 for a newer version, 409 when it holds a newer version.
//! - A partial event (`partial: true`: a status, a late attribution) is applied in place to
//!   the order held: the statuses it states (`UNKNOWN` keeps), its attribution when it has
//!   one, its version; lines and totals stay. A partial event for an order it does not hold
//!   is 404. An event whose `attribution` is null keeps the attribution held.
//! - Faults on demand: 429 with `Retry-After`, a maintenance window (503), a write that lands
//!   and then answers 500, a validation refusal (422).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use orderbridge_runtime::Secret;
use orderbridge_schemas::OrderEvent;
use orderbridge_sink::erp::http::HttpConfig;
use serde_json::json;

pub const TOKEN: &str = "receiver-token-1";

#[derive(Debug, Clone)]
pub enum Fault {
    Throttle(u64),
    LandsThen500,
    /// The receiver's validation refuses the next order with this message (422).
    Invalid(&'static str),
}

/// An order the receiver holds.
struct Held {
    /// How often it was written.
    writes: u32,
    /// The order as it stands, every event applied.
    order: OrderEvent,
}

#[derive(Default)]
struct Sim {
    /// Reference → the order held.
    orders: HashMap<String, Held>,
    /// Idempotency key → the status first answered.
    keys: HashMap<String, StatusCode>,
    faults: VecDeque<Fault>,
    maintenance: bool,
}

#[derive(Clone)]
pub struct HttpSim {
    pub addr: SocketAddr,
    state: Arc<Mutex<Sim>>,
}

impl HttpSim {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Sim::default()));
        let app = Router::new()
            .route("/orders/{reference}", put(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn config(&self) -> HttpConfig {
        HttpConfig {
            url: format!("http://{}/orders/{{reference}}", self.addr),
            bearer_token: Some(Secret::new(TOKEN)),
            request_timeout_ms: 5_000,
        }
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    pub fn set_maintenance(&self, on: bool) {
        self.state.lock().unwrap().maintenance = on;
    }

    /// (version held, times written) for `reference`.
    pub fn order(&self, reference: &str) -> Option<(i64, u32)> {
        self.state
            .lock()
            .unwrap()
            .orders
            .get(reference)
            .map(|held| (held.order.version, held.writes))
    }

    /// The order held for `reference`, every event applied.
    pub fn held(&self, reference: &str) -> Option<OrderEvent> {
        self.state
            .lock()
            .unwrap()
            .orders
            .get(reference)
            .map(|held| held.order.clone())
    }
}

async fn receive(
    State(state): State<Arc<Mutex<Sim>>>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if state.maintenance {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "invalid token"})),
        )
            .into_response();
    }
    if let Some(Fault::Throttle(seconds)) = state.faults.front().cloned() {
        state.faults.pop_front();
        let mut response = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
        return response;
    }
    if let Some(Fault::Invalid(message)) = state.faults.front().cloned() {
        state.faults.pop_front();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "message": message })),
        )
            .into_response();
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Idempotency-Key is required"})),
        )
            .into_response();
    };
    if let Some(first) = state.keys.get(&key) {
        return first.into_response();
    }
    let event: OrderEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"message": format!("not an order event: {err}")})),
            )
                .into_response()
        }
    };
    let status = match state.orders.get_mut(&reference) {
        Some(held) if held.order.version > event.version => StatusCode::CONFLICT,
        Some(held) => {
            apply(&mut held.order, event);
            held.writes += 1;
            StatusCode::OK
        }
        None if event.partial => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "message": format!("no order {reference} to apply this to") })),
            )
                .into_response();
        }
        None => {
            state.orders.insert(
                reference,
                Held {
                    writes: 1,
                    order: event,
                },
            );
            StatusCode::CREATED
        }
    };
    state.keys.insert(key, status);
    if matches!(state.faults.front(), Some(Fault::LandsThen500)) {
        state.faults.pop_front();
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream timeout").into_response();
    }
    status.into_response()
}

/// `event` applied to the order `held`: a whole order replaces it, a partial one changes
/// what it states; either keeps the attribution held when it carries none.
fn apply(held: &mut OrderEvent, event: OrderEvent) {
    use orderbridge_schemas::{OrderStatus, PaymentStatus};
    let attribution = event
        .attribution
        .clone()
        .or_else(|| held.attribution.take());
    if event.partial {
        if event.status != OrderStatus::Unknown {
            held.status = event.status;
        }
        if event.payment_status != PaymentStatus::Unknown {
            held.payment_status = event.payment_status;
        }
        held.event_type = event.event_type;
        held.version = event.version;
        held.lineage = event.lineage;
    } else {
        *held = event;
    }
    held.attribution = attribution;
}
