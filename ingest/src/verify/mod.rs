//! Webhook verification: one [`Verifier`] per source, and the [`Verified`] wrapper that only a
//! verifier can build, so that nothing unverified can reach the publisher.
//!
//! Adding a source: a file here implementing [`Verifier`] (known-answer, tampered,
//! wrong-secret, rotated-secret and missing-header tests beside it), its arm in
//! [`orderbridge_schemas::Source`], its config in `config.rs`, its construction in
//! `router.rs`, a normalizer in `processor/src/sources/`, and fixtures under
//! `tests/fixtures/<source>/`.

pub mod shopify;

use axum::http::HeaderMap;
use bytes::Bytes;
use orderbridge_schemas::Source;
use sha2::{Digest, Sha256};

/// What a verifier sees of a request.
#[derive(Debug)]
pub struct WebhookRequest<'a> {
    /// Request headers (names are case-insensitive).
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as received.
    pub body: &'a Bytes,
    /// The `{account}` path segment, when the route has one.
    pub account: Option<&'a str>,
}

/// Why a webhook was refused. Every variant is a 401; the reason is a metric label and a log
/// field, never part of the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature header is absent.
    #[error("signature header missing")]
    Missing,
    /// The signature header is not in the scheme's encoding.
    #[error("signature header malformed")]
    Malformed,
    /// No active secret produces this signature.
    #[error("signature does not match")]
    Mismatch,
}

impl VerifyError {
    /// The metric label for this reason.
    pub fn reason(self) -> &'static str {
        match self {
            VerifyError::Missing => "missing",
            VerifyError::Malformed => "malformed",
            VerifyError::Mismatch => "mismatch",
        }
    }
}

/// Verifies one source's webhooks.
pub trait Verifier: Send + Sync {
    /// The source this verifier serves.
    fn source(&self) -> Source;

    /// Checks the request's signature over its raw body and, when it holds, returns the body
    /// with what the raw record's key and headers need.
    ///
    /// # Errors
    /// [`VerifyError`] when the signature is missing, malformed, or matches no active secret.
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<Verified, VerifyError>;
}

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
struct VerifiedParts {
    account: Option<String>,
    event_type: String,
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
    let event_id = parts
        .event_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))));
    Verified {
        source,
        account,
        event_type: parts.event_type,
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

/// A header's value as text, if present and visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Keeps a header value only when it is safe to use in a key or a log line: short, and made
/// of characters identifiers and domains use. Anything else is treated as absent.
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
