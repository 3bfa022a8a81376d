//! Webhook verification: one [`Verifier`] per source, and the [`Verified`] wrapper that only a
//! verifier can build, so that nothing unverified can reach the publisher.
//!
//! Most providers sign "an HMAC over some bytes, encoded somehow, in some header, maybe with a
//! timestamp". That is said once, as data, in [`scheme`]; each provider's way of doing it is a
//! named preset there, and a new provider that signs the same way is configuration, not code
//! (a [`Source::Custom`] account). Schemes that are not HMAC have their own verifier:
//! `amazon_sns.rs` (RSA over a canonical string, certificate fetched and cached), `ebay.rs`
//! (ECDSA with a key fetched by id), `standard_webhooks.rs` (adds Ed25519), `flipkart.rs`
//! (a SHA-1 login header), and `credentials.rs` for senders that present a password or token
//! rather than a signature (Walmart, Ordermentum).
//!
//! Layout:
//! - `scheme.rs` — the HMAC engine and its presets.
//! - `extract.rs` — event id, event type, order id and account, from headers or JSON fields.
//! - `credentials.rs` — basic-auth and static-token checks, in constant time.
//! - `registry.rs` — builds the verifier of every configured route.
//! - one file per source: `shopify.rs`, `sumeru.rs`, …
//!
//! Adding a source: a file here implementing [`Verifier`] (known-answer, tampered,
//! wrong-secret, rotated-secret, expired and missing-header tests beside it), its arm in
//! [`orderbridge_schemas::Source`], its config in `config.rs`, its construction in `registry.rs`,
//! a normalizer in `processor/src/sources/`, and fixtures under `tests/fixtures/<source>/`.

pub mod amazon_sns;
pub mod bigcommerce;
pub mod credentials;
pub mod custom;
pub mod easypost;
pub mod ebay;
pub mod etsy;
pub mod extract;
pub mod flipkart;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod key_cache;
pub mod ordermentum;
pub mod registry;
pub mod scheme;
pub mod shopify;
pub mod sign;
pub mod standard_webhooks;
pub mod sumeru;
#[cfg(test)]
pub(crate) mod testing;
pub mod tiktok_shop;
pub mod walmart;
pub mod zephyrcart;

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use orderbridge_schemas::Source;
use sha2::{Digest, Sha256};

pub use extract::Extraction;

/// What a verifier sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The request method (`POST` for deliveries).
    pub method: &'a Method,
    /// The path and query exactly as received (some schemes sign it).
    pub path_and_query: &'a str,
    /// Request headers (names are case-insensitive).
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as received.
    pub body: &'a Bytes,
    /// The `{account}` path segment, when the route has one.
    pub account: Option<&'a str>,
    /// Now, in unix seconds; injected so that replay windows are testable.
    pub now: i64,
}

/// Why a webhook was refused. Every variant but [`VerifyError::Unavailable`] is a 401 (the
/// reason is a metric label and a log field, never part of the response body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature (or credential) header is absent.
    #[error("signature header missing")]
    Missing,
    /// The signature header is not in the scheme's form.
    #[error("signature header malformed")]
    Malformed,
    /// No active secret or key produces this signature.
    #[error("signature does not match")]
    Mismatch,
    /// The signature holds but its signed timestamp is outside the replay window.
    #[error("signed timestamp outside the replay window ({skew_secs} s skew)")]
    Expired {
        /// Now minus the signed timestamp, in seconds (negative: from the future).
        skew_secs: i64,
    },
    /// The key material would come from a place we do not trust (an SNS certificate URL on
    /// another host, say); nothing was fetched.
    #[error("untrusted key location")]
    Untrusted,
    /// The sender is verified but not one we accept (an SNS topic not on the allow-list).
    #[error("sender not allowed")]
    NotAllowed,
    /// The key material could not be fetched or read right now; the sender should retry
    /// (503 with `Retry-After`). The reason is for the log.
    #[error("key unavailable: {0}")]
    Unavailable(String),
}

impl VerifyError {
    /// The metric label for this reason.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Missing => "missing",
            VerifyError::Malformed => "malformed",
            VerifyError::Mismatch => "mismatch",
            VerifyError::Expired { .. } => "expired",
            VerifyError::Untrusted => "untrusted-key-url",
            VerifyError::NotAllowed => "not-allowed",
            VerifyError::Unavailable(_) => "key-unavailable",
        }
    }

    /// The status to answer with: 503 when a retry may succeed, 401 otherwise. SNS counts
    /// any 4xx as delivered, so "try again" must be a 5xx.
    pub fn status(&self) -> StatusCode {
        match self {
            VerifyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            VerifyError::Missing
            | VerifyError::Malformed
            | VerifyError::Mismatch
            | VerifyError::Expired { .. }
            | VerifyError::Untrusted
            | VerifyError::NotAllowed => StatusCode::UNAUTHORIZED,
        }
    }
}

/// What to do with a request whose signature held.
#[derive(Debug)]
pub enum Accepted {
    /// Publish it to the raw topic, then answer 200.
    Publish(Verified),
    /// A handshake or control message: answer this, publish nothing.
    Reply(Reply),
}

/// A verifier's own answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// `Content-Type` of `body`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Reply {
    /// A `200 text/plain` reply.
    pub fn ok(body: impl Into<String>) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Verifies one source's webhooks (for one account).
#[async_trait::async_trait]
pub trait Verifier: Send + Sync {
    /// The source this verifier serves.
    fn source(&self) -> Source;

    /// Checks the request's signature and, when it holds, says what to do with it: publish
    /// the body with what the raw record's key and headers need, or answer a handshake.
    ///
    /// # Errors
    /// [`VerifyError`] when the request is not proven to come from the provider.
    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError>;

    /// Answers a `GET` handshake (eBay's `challenge_code`); `None` when the source has none,
    /// which the router turns into 405.
    fn challenge(&self, _query: Option<&str>) -> Option<Reply> {
        None
    }
}

/// A shared verifier.
pub type SharedVerifier = Arc<dyn Verifier>;

/// A webhook whose signature held. Only code in this module can build one.
#[derive(Debug, Clone)]
pub struct Verified {
    source: Source,
    account: String,
    event_type: String,
    event_id: String,
    order_id: Option<String>,
    secret_id: String,
    content_type: String,
    extra_headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Verified {
    /// The source.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Shop domain, seller id or tenant; `-` if none.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The provider's event type, e.g. `orders/create`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The provider's delivery id, or a hash of the body when it gives none.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// The order id, when the body names one.
    pub fn order_id(&self) -> Option<&str> {
        self.order_id.as_deref()
    }

    /// Which active secret matched.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The request's `Content-Type`, as the provider sent it.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Source-specific headers to keep on the raw record (name, value).
    pub fn extra_headers(&self) -> &[(&'static str, String)] {
        &self.extra_headers
    }

    /// The body, byte for byte as received.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The raw record's key: the order key, or the event id when the body names no order
    /// (so that a body we cannot read still lands, and the processor dead-letters it).
    pub fn record_key(&self) -> String {
        match &self.order_id {
            Some(order_id) => orderbridge_schemas::order_key(self.source, &self.account, order_id),
            None => format!("{}:{}:event:{}", self.source, self.account, self.event_id),
        }
    }
}

/// The parts a verifier fills in after the signature held.
#[derive(Debug, Default)]
struct VerifiedParts {
    account: Option<String>,
    event_type: Option<String>,
    event_id: Option<String>,
    order_id: Option<String>,
    secret_id: String,
    extra_headers: Vec<(&'static str, String)>,
}

fn verified(source: Source, request: &WebhookRequest<'_>, parts: VerifiedParts) -> Verified {
    let body = request.body;
    let account = parts
        .account
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "-".to_owned());
    // When the provider names no event, equal bodies are the same event: hash the body.
    let event_id = parts
        .event_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))));
    Verified {
        source,
        account,
        event_type: parts.event_type.unwrap_or_else(|| "unknown".to_owned()),
        event_id,
        order_id: parts.order_id,
        secret_id: parts.secret_id,
        // Kept as sent, not assumed: a verified body need not be what it claims to be.
        content_type: header(request.headers, "content-type")
            .filter(|v| !v.is_empty())
            .unwrap_or("application/octet-stream")
            .to_owned(),
        extra_headers: parts.extra_headers,
        body: body.clone(),
    }
}

/// A verifier that is "check the signature with `check`, then extract with `extraction`": the
/// shape of every source whose signature says nothing about what the body is.
struct Checked<C> {
    source: Source,
    check: C,
    extraction: Extraction,
}

/// Checks a request's signature or credential and says which secret matched.
trait Check: Send + Sync {
    fn check(&self, request: &WebhookRequest<'_>) -> Result<String, VerifyError>;
}

/// A check chosen by configuration (Walmart's and Flipkart's modes).
impl Check for Box<dyn Check> {
    fn check(&self, request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
        self.as_ref().check(request)
    }
}

#[async_trait::async_trait]
impl<C: Check> Verifier for Checked<C> {
    fn source(&self) -> Source {
        self.source
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let secret_id = self.check.check(request)?;
        let mut parts = self.extraction.extract(request);
        parts.secret_id = secret_id;
        Ok(Accepted::Publish(verified(self.source, request, parts)))
    }
}

/// A verifier for a source that is an HMAC preset plus where its ids are: the shape of most
/// sources. `config.scheme` and `config.extract` adjust the preset and the defaults.
fn hmac_source(
    source: Source,
    preset: scheme::Preset,
    config: &crate::config::HmacConfig,
    defaults: Extraction,
) -> Result<SharedVerifier, String> {
    if config.preset.is_some() {
        return Err("`preset` is for custom sources; adjust a built-in one with `scheme`".into());
    }
    let scheme = preset
        .scheme()
        .patched(&config.scheme)
        .with_tolerance(config.tolerance_secs);
    let inputs = scheme::Inputs {
        app_key: config.app_key.clone(),
        url: config.url.clone(),
    };
    Ok(Arc::new(Checked {
        source,
        check: scheme::HmacCheck::new(scheme, inputs, &config.secrets)?,
        extraction: defaults.overridden_by(&config.extract),
    }))
}

/// A header's value as text, if present and visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Keeps a value only when it is safe to use in a key or a log line: short, and made of
/// characters identifiers and domains use. Anything else is treated as absent.
fn identifier(value: Option<&str>) -> Option<String> {
    value
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 255
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._/@+:".contains(c))
        })
        .map(str::to_owned)
}
