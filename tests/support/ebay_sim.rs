//! An eBay API simulator for what ingest calls: the client-credentials token and the
//! Notification API's `getPublicKey`, following eBay's documented contract:
//!
//! - `POST /identity/v1/oauth2/token`: HTTP basic client credentials, form
//!   `grant_type=client_credentials&scope=https://api.ebay.com/oauth/api_scope`; answers
//!   `{access_token, expires_in, token_type}`, or 401 `{"error":"invalid_client"}`.
//! - `GET /commerce/notification/v1/public_key/{kid}` with `Authorization: Bearer`: 200
//!   `{algorithm: "ECDSA", digest: "SHA1", key}` (the PEM without line breaks, as eBay sends
//!   it); 401 for a missing or expired token; 404 with eBay's error body for an unknown kid.
//!
//! [`sign`] signs a body as eBay does with the test key in `tests/support/keys/`, and builds
//! the `X-EBAY-SIGNATURE` header.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;
use sha1::Digest;

pub const CLIENT_ID: &str = "OrderBri-dge-PRD-0123456789-abcdef01";
pub const CLIENT_SECRET: &str = "PRD-0123456789ab-cdef-0123-4567-89ab";
pub const KID: &str = "99345d4b-4fd3-4e2a-8e4b-0123456789ab";
const PUBLIC_KEY: &str = include_str!("keys/ebay-signing.pub");
const PRIVATE_KEY: &str = include_str!("keys/ebay-signing.key");

#[derive(Default)]
struct Inner {
    tokens: Vec<String>,
    token_calls: usize,
    key_calls: usize,
}

#[derive(Clone)]
pub struct EbaySim {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl EbaySim {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/identity/v1/oauth2/token", post(token))
            .route(
                "/commerce/notification/v1/public_key/{kid}",
                get(public_key),
            )
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, inner }
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (token requests, public-key requests) so far.
    pub fn calls(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.token_calls, inner.key_calls)
    }

    /// Invalidates every issued token, as their expiry would.
    pub fn expire_tokens(&self) {
        self.inner.lock().unwrap().tokens.clear();
    }
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.token_calls += 1;
    let expected = format!(
        "Basic {}",
        BASE64.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "client authentication failed"})),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("scope").map(String::as_str) != Some("https://api.ebay.com/oauth/api_scope")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    let token = format!("v^1.1#i^1#test-token-{}", inner.token_calls);
    inner.tokens.push(token.clone());
    Json(json!({"access_token": token, "expires_in": 7200, "token_type": "Application Access Token"}))
        .into_response()
}

async fn public_key(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(kid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.key_calls += 1;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if !bearer.is_some_and(|t| inner.tokens.contains(&t)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"errors": [{"errorId": 1001, "domain": "OAuth", "category": "REQUEST",
                "message": "Invalid access token"}]}),
            ),
        )
            .into_response();
    }
    if kid != KID {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({"errors": [{"errorId": 195001, "domain": "API_NOTIFICATION",
                "category": "REQUEST", "message": "The specified key id is invalid."}]}),
            ),
        )
            .into_response();
    }
    // eBay sends the PEM on one line.
    let one_line = PUBLIC_KEY.replace('\n', "");
    Json(json!({"algorithm": "ECDSA", "digest": "SHA1", "key": one_line})).into_response()
}

/// `X-EBAY-SIGNATURE` for `body`, signed with the key of `kid` (ECDSA, SHA-1 digest, DER).
pub fn sign(kid: &str, body: &[u8]) -> String {
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(PRIVATE_KEY).unwrap();
    let digest = sha1::Sha1::digest(body);
    let signature: p256::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
    let der = signature.to_der();
    BASE64.encode(
        json!({"alg": "ecdsa", "kid": kid, "signature": BASE64.encode(der.as_bytes()), "digest": "SHA1"})
            .to_string(),
    )
}
