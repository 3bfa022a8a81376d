//! The read side of Confluent's Schema Registry REST API over the embedded registry, so that
//! stock Confluent clients (confluent-kafka's `AvroDeserializer`, `kcat -s value=avro -r …`)
//! can read the canonical topic of a `dev` stack:
//!
//! - `GET /schemas/ids/{id}` → `{"schema": "…"}`; `GET /schemas/ids/{id}/schema` → the text
//! - `GET /subjects` → `["orders.canonical.v1-value"]`
//! - `GET /subjects/{subject}/versions` → `[1, 2, …]`
//! - `GET /subjects/{subject}/versions/{version|latest}` → `{subject, version, id, schema}`
//! - `GET /subjects/{subject}/versions/{version|latest}/schema` → the text
//!
//! Errors are Confluent's: 404 with `{"error_code": 40401|40402|40403, "message": …}`.
//! Registering goes through OrderBridge's own processes, not this API.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use orderbridge_schemas::{EmbeddedRegistry, SchemaRegistry};
use serde_json::{json, Value};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The router serving `registry`.
pub fn router(registry: Arc<EmbeddedRegistry>) -> Router {
    Router::new()
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_text_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}/versions", get(versions))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(version_schema),
        )
        .with_state(registry)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn not_found(code: u32, message: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "error_code": code, "message": message }),
    )
}

async fn text(registry: &EmbeddedRegistry, id: u32) -> Option<String> {
    registry.schema(id).await.ok()
}

async fn schema_by_id(
    State(registry): State<Arc<EmbeddedRegistry>>,
    Path(id): Path<u32>,
) -> Response {
    match text(&registry, id).await {
        Some(schema) => json_response(StatusCode::OK, &json!({ "schema": schema })),
        None => not_found(40403, "Schema not found"),
    }
}

async fn schema_text_by_id(
    State(registry): State<Arc<EmbeddedRegistry>>,
    Path(id): Path<u32>,
) -> Response {
    match text(&registry, id).await {
        Some(schema) => json_response(
            StatusCode::OK,
            &serde_json::from_str(&schema).unwrap_or(Value::String(schema)),
        ),
        None => not_found(40403, "Schema not found"),
    }
}

async fn subjects(State(registry): State<Arc<EmbeddedRegistry>>) -> Response {
    json_response(StatusCode::OK, &json!(registry.subjects()))
}

async fn versions(
    State(registry): State<Arc<EmbeddedRegistry>>,
    Path(subject): Path<String>,
) -> Response {
    match registry.versions(&subject) {
        Some(ids) => json_response(StatusCode::OK, &json!((1..=ids.len()).collect::<Vec<_>>())),
        None => not_found(40401, "Subject not found."),
    }
}

/// A Confluent error: its code and message.
type ApiError = (u32, &'static str);

/// `(version number, schema id)` of `version` (a number or `latest`) under `subject`.
fn resolve(
    registry: &EmbeddedRegistry,
    subject: &str,
    version: &str,
) -> Result<(usize, u32), ApiError> {
    let ids = registry
        .versions(subject)
        .ok_or((40401, "Subject not found."))?;
    let number = match version {
        "latest" | "-1" => ids.len(),
        n => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=ids.len()).contains(n))
            .ok_or((40402, "Version not found."))?,
    };
    ids.get(number - 1)
        .map(|id| (number, *id))
        .ok_or((40402, "Version not found."))
}

async fn version(
    State(registry): State<Arc<EmbeddedRegistry>>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    let (number, id) = match resolve(&registry, &subject, &version) {
        Ok(found) => found,
        Err((code, message)) => return not_found(code, message),
    };
    match text(&registry, id).await {
        Some(schema) => json_response(
            StatusCode::OK,
            &json!({ "subject": subject, "version": number, "id": id, "schema": schema }),
        ),
        None => not_found(40403, "Schema not found"),
    }
}

async fn version_schema(
    State(registry): State<Arc<EmbeddedRegistry>>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    let (_, id) = match resolve(&registry, &subject, &version) {
        Ok(found) => found,
        Err((code, message)) => return not_found(code, message),
    };
    match text(&registry, id).await {
        Some(schema) => json_response(
            StatusCode::OK,
            &serde_json::from_str(&schema).unwrap_or(Value::String(schema)),
        ),
        None => not_found(40403, "Schema not found"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use orderbridge_schemas::{OrderEventCodec, ORDER_EVENT_SCHEMA};
    use tower::ServiceExt;

    async fn get_json(app: &Router, path: &str) -> (StatusCode, Value) {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn answers_the_read_side_as_confluent_does() {
        let registry = Arc::new(EmbeddedRegistry::new());
        let codec = OrderEventCodec::new(registry.clone(), "orders.canonical.v1").unwrap();
        let id = codec.schema_id().await.unwrap();
        let app = router(registry);

        let (status, body) = get_json(&app, &format!("/schemas/ids/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["schema"], ORDER_EVENT_SCHEMA);
        let (_, subjects) = get_json(&app, "/subjects").await;
        assert_eq!(subjects, json!(["orders.canonical.v1-value"]));
        let (_, versions) = get_json(&app, "/subjects/orders.canonical.v1-value/versions").await;
        assert_eq!(versions, json!([1]));
        let (_, latest) =
            get_json(&app, "/subjects/orders.canonical.v1-value/versions/latest").await;
        assert_eq!(latest["id"], id);
        assert_eq!(latest["version"], 1);
        assert_eq!(latest["subject"], "orders.canonical.v1-value");
        let (_, raw) = get_json(
            &app,
            "/subjects/orders.canonical.v1-value/versions/1/schema",
        )
        .await;
        assert_eq!(raw["name"], "OrderEvent");

        let (status, body) = get_json(&app, "/schemas/ids/999").await;
        assert_eq!(
            (status, body["error_code"].clone()),
            (StatusCode::NOT_FOUND, json!(40403))
        );
        let (status, body) = get_json(&app, "/subjects/nope/versions").await;
        assert_eq!(
            (status, body["error_code"].clone()),
            (StatusCode::NOT_FOUND, json!(40401))
        );
        let (status, body) = get_json(&app, "/subjects/orders.canonical.v1-value/versions/7").await;
        assert_eq!(
            (status, body["error_code"].clone()),
            (StatusCode::NOT_FOUND, json!(40402))
        );
    }
}
