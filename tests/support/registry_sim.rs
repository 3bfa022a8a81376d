//! A Confluent Schema Registry simulator: the two calls OrderBridge makes, with the
//! registry's documented answers (<https://docs.confluent.io/platform/current/schema-registry/develop/api.html>).
//!
//! - `POST /subjects/{subject}/versions` `{"schema": "…", "schemaType": "AVRO"}` → `{"id": n}`;
//!   the same schema gets the same id; 422 (`42201`) for an invalid schema; 409 for a schema
//!   the subject's latest version cannot be read by (BACKWARD, the default).
//! - `GET /schemas/ids/{id}` → `{"schema": "…"}`; 404 (`40403`) for an unknown id.
//!
//! And the registry's bad days, switched on by a test: a failover answering 500 or 503, a
//! gateway's 502 or 504 in front of it, 429 with `Retry-After` (Confluent Cloud's rate
//! limits), 401 after credentials were rotated, a 404 from something that is not the registry
//! (no `error_code`), or a 200 whose body is not the registry's JSON.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

#[derive(Default)]
struct Registry {
    schemas: Vec<String>,
    subjects: HashMap<String, Vec<u32>>,
    fetches: u32,
    /// Every call is answered with this trouble until then.
    trouble: Option<(Trouble, std::time::Instant)>,
    /// Calls answered with trouble.
    troubled: u32,
}

/// A way the registry fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// This status with the registry's error body (`{"error_code": <status>, "message": …}`);
    /// a 429 carries `Retry-After: 1`.
    Status(u16),
    /// A 404 with an HTML body: a proxy or a wrong base path, not the registry's "not found".
    ForeignNotFound,
    /// A 200 whose body is not JSON.
    Garbled,
}

fn troubled(trouble: Trouble) -> Response {
    match trouble {
        Trouble::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap();
            let mut response = answer(
                status,
                json!({"error_code": status.as_u16(), "message": status.canonical_reason()}),
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
        Trouble::ForeignNotFound => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>404 Not Found</body></html>",
        )
            .into_response(),
        Trouble::Garbled => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>maintenance</html>",
        )
            .into_response(),
    }
}

/// The trouble the registry is in now, if any (counting the call).
fn trouble_now(state: &mut Registry) -> Option<Trouble> {
    let (trouble, until) = state.trouble?;
    if std::time::Instant::now() >= until {
        state.trouble = None;
        return None;
    }
    state.troubled += 1;
    Some(trouble)
}

#[derive(Clone)]
pub struct RegistrySim {
    pub url: String,
    state: Arc<Mutex<Registry>>,
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            "application/vnd.schemaregistry.v1+json",
        )],
        body.to_string(),
    )
        .into_response()
}

impl RegistrySim {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Registry::default()));
        let app = Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/schemas/ids/{id}", get(by_id))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// How many schemas were fetched by id (readers should cache).
    pub fn fetches(&self) -> u32 {
        self.state.lock().unwrap().fetches
    }

    /// Answers every call with `trouble` for `period` from now.
    pub fn trouble_for(&self, trouble: Trouble, period: std::time::Duration) {
        self.state.lock().unwrap().trouble = Some((trouble, std::time::Instant::now() + period));
    }

    /// How many calls were answered with trouble.
    pub fn troubled(&self) -> u32 {
        self.state.lock().unwrap().troubled
    }
}

async fn register(
    State(state): State<Arc<Mutex<Registry>>>,
    Path(subject): Path<String>,
    body: String,
) -> Response {
    if let Some(trouble) = trouble_now(&mut state.lock().unwrap()) {
        return troubled(trouble);
    }
    let Some(text) = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["schema"].as_str().map(str::to_owned))
    else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error_code": 42201, "message": "Invalid schema"}),
        );
    };
    let Ok(schema) = Schema::parse_str(&text) else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error_code": 42201, "message": "Invalid schema"}),
        );
    };
    let mut state = state.lock().unwrap();
    let canonical = schema.canonical_form();
    let existing = state
        .schemas
        .iter()
        .position(|known| {
            Schema::parse_str(known)
                .map(|s| s.canonical_form() == canonical)
                .unwrap_or(false)
        })
        .map(|i| i as u32 + 1);
    let versions = state.subjects.get(&subject).cloned().unwrap_or_default();
    if let Some(id) = existing.filter(|id| versions.contains(id)) {
        return answer(StatusCode::OK, json!({ "id": id }));
    }
    if let Some(latest) = versions.last() {
        let previous = Schema::parse_str(&state.schemas[*latest as usize - 1]).unwrap();
        if SchemaCompatibility::can_read(&previous, &schema).is_err() {
            return answer(
                StatusCode::CONFLICT,
                json!({"error_code": 409, "message": "Schema being registered is incompatible with an earlier schema for subject"}),
            );
        }
    }
    let id = existing.unwrap_or_else(|| {
        state.schemas.push(text);
        state.schemas.len() as u32
    });
    state.subjects.entry(subject).or_default().push(id);
    answer(StatusCode::OK, json!({ "id": id }))
}

async fn by_id(State(state): State<Arc<Mutex<Registry>>>, Path(id): Path<u32>) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(trouble) = trouble_now(&mut state) {
        return troubled(trouble);
    }
    state.fetches += 1;
    match id
        .checked_sub(1)
        .and_then(|i| state.schemas.get(i as usize))
    {
        Some(schema) => answer(StatusCode::OK, json!({ "schema": schema })),
        None => answer(
            StatusCode::NOT_FOUND,
            json!({"error_code": 40403, "message": format!("Schema {id} not found")}),
        ),
    }
}
