//! The schema registry, seen from a client: register a schema under a subject and get its id;
//! fetch a schema by id. Two implementations:
//!
//! - [`ConfluentRegistry`] talks the Confluent REST API (`POST /subjects/{s}/versions`,
//!   `GET /schemas/ids/{id}`); use it with any Confluent-compatible registry. Its answers are
//!   classified by status code and the registry's `error_code`, never by message text: only
//!   `40403` ("schema not found"), `409` (incompatible) and `422` (invalid schema) are the
//!   registry's definite word; everything else (5xx, 429, 401/403 after rotated
//!   credentials, a 404 that is not the registry's, a body that is not its JSON, no
//!   connection) is trouble that passes.
//! - [`EmbeddedRegistry`] keeps schemas in process memory. It is the `dev` default and what
//!   unit tests use. It pre-registers the compiled-in `OrderEvent` schema as id 1, so separate
//!   processes of one build agree on that id without sharing anything; any other schema gets an
//!   id only this process knows, so deployments with more than one process use a real registry.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use async_trait::async_trait;

use crate::avro::ORDER_EVENT_SCHEMA;

/// Why the registry could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// No schema has this id.
    #[error("no schema with id {0}")]
    NotFound(u32),
    /// The registry refused the schema as incompatible with the subject's history.
    #[error("schema incompatible with subject {subject}: {reason}")]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's reason.
        reason: String,
    },
    /// The schema text is not a valid Avro schema.
    #[error("invalid schema: {0}")]
    Invalid(String),
    /// The registry could not be reached or failed; `retryable` says whether to try again.
    #[error("registry unavailable: {message}")]
    Unavailable {
        /// What the client reported.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
}

impl RegistryError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Unavailable { retryable, .. } => *retryable,
            RegistryError::NotFound(_)
            | RegistryError::Incompatible { .. }
            | RegistryError::Invalid(_) => false,
        }
    }
}

/// A schema registry client.
#[async_trait]
pub trait SchemaRegistry: Send + Sync + fmt::Debug {
    /// Registers `schema` under `subject` (idempotent: the same schema gets the same id).
    ///
    /// # Errors
    /// When the schema is invalid or incompatible, or the registry cannot be reached.
    async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError>;

    /// Returns the schema text for `id`.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] for an unknown id, or the registry cannot be reached.
    async fn schema(&self, id: u32) -> Result<String, RegistryError>;
}

/// An in-process registry; see the module docs for when it is enough.
#[derive(Debug)]
pub struct EmbeddedRegistry {
    state: Mutex<EmbeddedState>,
}

#[derive(Debug, Default)]
struct EmbeddedState {
    /// Schema text by id; id = index + 1.
    schemas: Vec<(String, Schema)>,
    /// Ids registered under each subject, oldest first.
    subjects: HashMap<String, Vec<u32>>,
}

impl Default for EmbeddedRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedRegistry {
    /// Every subject with a registered schema, sorted.
    pub fn subjects(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut subjects: Vec<String> = state.subjects.keys().cloned().collect();
        subjects.sort();
        subjects
    }

    /// The schema ids of `subject`'s versions, oldest (version 1) first; `None` for an
    /// unknown subject.
    pub fn versions(&self, subject: &str) -> Option<Vec<u32>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.subjects.get(subject).cloned()
    }

    /// An embedded registry holding the compiled-in `OrderEvent` schema as id 1.
    pub fn new() -> Self {
        let mut state = EmbeddedState::default();
        if let Ok(schema) = Schema::parse_str(ORDER_EVENT_SCHEMA) {
            state.schemas.push((ORDER_EVENT_SCHEMA.to_owned(), schema));
        }
        Self {
            state: Mutex::new(state),
        }
    }
}

#[async_trait]
impl SchemaRegistry for EmbeddedRegistry {
    async fn register(&self, subject: &str, text: &str) -> Result<u32, RegistryError> {
        let schema =
            Schema::parse_str(text).map_err(|err| RegistryError::Invalid(err.to_string()))?;
        let canonical = schema.canonical_form();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let existing = state
            .schemas
            .iter()
            .position(|(_, known)| known.canonical_form() == canonical)
            .map(|index| index as u32 + 1);
        let versions = state.subjects.get(subject).cloned().unwrap_or_default();
        if let Some(id) = existing {
            if versions.contains(&id) {
                return Ok(id);
            }
        }
        // Backward compatibility, the Confluent default: the new schema must read what the
        // subject's latest version wrote.
        if let Some(latest) = versions.last() {
            let (_, previous) = &state.schemas[*latest as usize - 1];
            SchemaCompatibility::can_read(previous, &schema).map_err(|err| {
                RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    reason: err.to_string(),
                }
            })?;
        }
        let id = match existing {
            Some(id) => id,
            None => {
                state.schemas.push((text.to_owned(), schema));
                state.schemas.len() as u32
            }
        };
        state
            .subjects
            .entry(subject.to_owned())
            .or_default()
            .push(id);
        Ok(id)
    }

    async fn schema(&self, id: u32) -> Result<String, RegistryError> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        id.checked_sub(1)
            .and_then(|index| state.schemas.get(index as usize))
            .map(|(text, _)| text.clone())
            .ok_or(RegistryError::NotFound(id))
    }
}

/// A Confluent-compatible registry over its REST API.
pub struct ConfluentRegistry {
    url: String,
    http: reqwest::Client,
    /// User and password; never printed (`Debug` leaves them out).
    credentials: Option<(String, String)>,
}

impl fmt::Debug for ConfluentRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfluentRegistry")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The registry's content type (its API accepts `application/json` too).
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// The registry's `error_code` for "schema not found".
const SCHEMA_NOT_FOUND: u32 = 40403;

/// The registry's error body: `{"error_code": 40403, "message": "Schema 7 not found"}`.
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    error_code: Option<u32>,
    message: Option<String>,
}

impl ConfluentRegistry {
    /// A client for the registry at `url`, with basic auth when `credentials` are given.
    /// Every call is bounded by 10 s.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(url: &str, credentials: Option<(&str, &str)>) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|err| RegistryError::Unavailable {
                message: format!("building the HTTP client: {err}"),
                retryable: false,
            })?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            http,
            credentials: credentials.map(|(user, password)| (user.to_owned(), password.to_owned())),
        })
    }

    /// Sends `request` and returns the status and body; a failure to get any answer is
    /// trouble that passes.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), RegistryError> {
        let request = match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let response = request
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .send()
            .await
            .map_err(|err| trouble(format!("no answer: {err}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| trouble(format!("reading the answer ({status}): {err}")))?;
        Ok((status, body.to_vec()))
    }
}

/// Registry trouble that passes: the stage waits for it, it is nothing the record did.
fn trouble(message: String) -> RegistryError {
    RegistryError::Unavailable {
        message,
        retryable: true,
    }
}

/// What a non-2xx answer means. Only the registry's definite word is permanent; any other
/// status, or an answer without the registry's error body, is trouble that passes.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> (Option<u32>, String) {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|b| b.error_code);
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason").to_owned());
    (code, format!("{status}: {message}"))
}

#[derive(serde::Deserialize)]
struct Registered {
    id: u32,
}

#[derive(serde::Deserialize)]
struct Fetched {
    schema: String,
}

#[async_trait]
impl SchemaRegistry for ConfluentRegistry {
    async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        // A subject name may hold any character: it is one path segment, escaped.
        let mut url = url::Url::parse(&self.url)
            .map_err(|err| trouble(format!("registry url {:?}: {err}", self.url)))?;
        url.path_segments_mut()
            .map_err(|()| trouble(format!("registry url {:?} cannot take a path", self.url)))?
            .extend(["subjects", subject, "versions"]);
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(serde_json::json!({ "schema": schema }).to_string());
        let (status, body) = self.send(request).await?;
        if status.is_success() {
            return serde_json::from_slice::<Registered>(&body)
                .map(|r| r.id)
                .map_err(|err| trouble(format!("{status} without a schema id: {err}")));
        }
        let (_, message) = refusal(status, &body);
        Err(match status.as_u16() {
            409 => RegistryError::Incompatible {
                subject: subject.to_owned(),
                reason: message,
            },
            422 => RegistryError::Invalid(message),
            _ => trouble(message),
        })
    }

    async fn schema(&self, id: u32) -> Result<String, RegistryError> {
        let request = self.http.get(format!("{}/schemas/ids/{id}", self.url));
        let (status, body) = self.send(request).await?;
        if status.is_success() {
            return serde_json::from_slice::<Fetched>(&body)
                .map(|f| f.schema)
                .map_err(|err| trouble(format!("{status} without a schema: {err}")));
        }
        match refusal(status, &body) {
            (Some(SCHEMA_NOT_FOUND), _) if status == reqwest::StatusCode::NOT_FOUND => {
                Err(RegistryError::NotFound(id))
            }
            (_, message) => Err(trouble(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn embedded_registry_knows_the_order_event_schema_as_id_1() {
        let registry = EmbeddedRegistry::new();
        assert_eq!(
            registry
                .register("orders.canonical.v1-value", ORDER_EVENT_SCHEMA)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            registry
                .register("other-value", ORDER_EVENT_SCHEMA)
                .await
                .unwrap(),
            1
        );
        assert_eq!(registry.schema(1).await.unwrap(), ORDER_EVENT_SCHEMA);
        assert!(matches!(
            registry.schema(2).await,
            Err(RegistryError::NotFound(2))
        ));
    }

    #[tokio::test]
    async fn embedded_registry_refuses_a_backward_incompatible_version() {
        let registry = EmbeddedRegistry::new();
        let v1 = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
        let v2_ok = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"long","default":0}]}"#;
        let v3_bad = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"c","type":"long"}]}"#;
        let id1 = registry.register("s", v1).await.unwrap();
        let id2 = registry.register("s", v2_ok).await.unwrap();
        assert_ne!(id1, id2);
        assert_eq!(
            registry.register("s", v1).await.unwrap(),
            id1,
            "re-registering is idempotent"
        );
        assert!(matches!(
            registry.register("s", v3_bad).await,
            Err(RegistryError::Incompatible { .. })
        ));
        assert!(matches!(
            registry.register("s", "{").await,
            Err(RegistryError::Invalid(_))
        ));
    }
}
