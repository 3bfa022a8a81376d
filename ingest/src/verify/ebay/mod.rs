//! eBay Notification API.
//!
//! Handshake: when an endpoint is saved, eBay sends `GET <endpoint>?challenge_code=<code>`
//! and expects `200 application/json {"challengeResponse": hex(SHA-256(code + verification
//! token + endpoint URL))}`, the URL exactly as registered.
//!
//! Deliveries: `X-EBAY-SIGNATURE` is base64 of a JSON object `{alg, kid, signature, digest}`.
//! `signature` is a base64 DER ECDSA signature (digest SHA-1 unless `digest` says SHA-256)
//! made with the key `kid` names. Keys come from configuration (pinned) or from
//! `GET /commerce/notification/v1/public_key/{kid}` with an application token
//! (client-credentials grant), cached for `key_cache_secs` (eBay recommends about an hour).
//! eBay's SDK verifies the re-serialized JSON (`JSON.stringify(JSON.parse(body))`); the raw body
//! is tried first, then the body with the whitespace between JSON tokens removed, which is
//! that re-serialization for compact-printable bodies, without reordering anything.
//!
//! Keyed by `notification.data.orderId`; the event id is `notification.notificationId`.
//!
//! Seed 002 describes an HMAC-SHA1 of the body keyed with a dev id; eBay's published
//! contract is the ECDSA one above, so that is what is built.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::extract::{Extraction, Field};
use super::key_cache::{Fetched, KeyCache, Miss};
use super::{
    header, verified, Accepted, Reply, SharedVerifier, Verifier, VerifyError, WebhookRequest,
};
use crate::config::EbayConfig;

/// Header carrying the signature object.
pub const SIGNATURE_HEADER: &str = "x-ebay-signature";
/// The scope of the application token that may read public keys.
const API_SCOPE: &str = "https://api.ebay.com/oauth/api_scope";
/// Largest signature header read.
const MAX_HEADER_BYTES: usize = 4096;

/// The eBay verifier for `config`, fetching keys with `http`.
///
/// # Errors
/// When the endpoint URL or token is missing, a pinned key is not a P-256 public key, the API
/// root is not https (except on loopback, for simulators), or keys can be neither pinned nor
/// fetched.
pub fn verifier(
    config: &EbayConfig,
    http: reqwest::Client,
    fetch_timeout: Duration,
) -> Result<SharedVerifier, String> {
    let token = config.verification_token.expose();
    if !(32..=80).contains(&token.len())
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("ebay.verification_token must be 32 to 80 of [A-Za-z0-9_-]".into());
    }
    if config.endpoint_url.is_empty() {
        return Err("ebay.endpoint_url must be the URL registered with eBay".into());
    }
    let api = Url::parse(&config.api_base).map_err(|err| format!("ebay.api_base: {err}"))?;
    let loopback = matches!(api.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if api.scheme() != "https" && !loopback {
        return Err("ebay.api_base must be https".into());
    }
    let client = match (&config.client_id, &config.client_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (None, None) => None,
        _ => return Err("ebay: give both client_id and client_secret, or neither".into()),
    };
    if client.is_none() && config.public_keys.is_empty() {
        return Err(
            "ebay: give client_id and client_secret to fetch keys, or pin public_keys".into(),
        );
    }
    let pinned = config
        .public_keys
        .iter()
        .map(|(kid, pem)| {
            Ok((
                kid.clone(),
                parse_key(pem).map_err(|e| format!("ebay key {kid}: {e}"))?,
            ))
        })
        .collect::<Result<_, String>>()?;
    Ok(Arc::new(EbayVerifier {
        verification_token: config.verification_token.clone(),
        endpoint_url: config.endpoint_url.clone(),
        api_base: config.api_base.trim_end_matches('/').to_owned(),
        client,
        pinned,
        cache_for: Duration::from_secs(config.key_cache_secs),
        keys: KeyCache::default(),
        app_token: Mutex::new(None),
        http,
        fetch_timeout,
        extraction: Extraction {
            event_id: vec![Field::json("/notification/notificationId")],
            event_type: vec![Field::json("/metadata/topic")],
            // As delivered (`data.order.orderId`), and as eBay's AsyncAPI page shows it.
            order_id: vec![
                Field::json("/notification/data/order/orderId"),
                Field::json("/notification/data/orderId"),
            ],
            account: Vec::new(),
        },
    }))
}

/// `hex(SHA-256(code + token + endpoint))`, the handshake's answer.
pub fn challenge_response(code: &str, token: &str, endpoint: &str) -> String {
    let mut sha = Sha256::new();
    sha.update(code.as_bytes());
    sha.update(token.as_bytes());
    sha.update(endpoint.as_bytes());
    hex::encode(sha.finalize())
}

/// A P-256 public key from PEM; eBay's API returns the PEM without line breaks, so the base64
/// between the markers is read whatever its layout.
fn parse_key(pem: &str) -> Result<VerifyingKey, String> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or("not a PEM public key")?;
    let der = BASE64
        .decode(body.split_whitespace().collect::<String>())
        .map_err(|_| "PEM body is not base64")?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| "not a P-256 public key".to_owned())
}

struct EbayVerifier {
    verification_token: Secret,
    endpoint_url: String,
    api_base: String,
    client: Option<(String, Secret)>,
    pinned: HashMap<String, VerifyingKey>,
    cache_for: Duration,
    keys: KeyCache<String, VerifyingKey>,
    app_token: Mutex<Option<(String, Instant)>>,
    http: reqwest::Client,
    fetch_timeout: Duration,
    extraction: Extraction,
}

/// The decoded `X-EBAY-SIGNATURE` object.
#[derive(Debug, Deserialize)]
struct SignatureHeader {
    #[serde(default)]
    alg: Option<String>,
    kid: String,
    signature: String,
    #[serde(default)]
    digest: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PublicKeyResponse {
    key: String,
    #[serde(default)]
    algorithm: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl EbayVerifier {
    async fn key(&self, kid: &str) -> Result<VerifyingKey, VerifyError> {
        if let Some(key) = self.pinned.get(kid) {
            return Ok(*key);
        }
        let Some(client) = &self.client else {
            // Only pinned keys, and this is not one: no sender we know.
            return Err(VerifyError::Mismatch);
        };
        // The kid comes from an unverified header: see `key_cache` for what bounds the calls.
        let fetch = || async {
            let key = match self.fetch_key(client, kid, false).await {
                Err(FetchError::Unauthorized) => self.fetch_key(client, kid, true).await,
                other => other,
            };
            match key {
                Ok(key) => Fetched::Key(key, Instant::now() + self.cache_for),
                Err(FetchError::UnknownKey) => Fetched::Missing,
                Err(FetchError::Unauthorized) => {
                    Fetched::Failed("eBay refused the application token".into())
                }
                Err(FetchError::Other(reason)) => Fetched::Failed(reason),
            }
        };
        self.keys
            .get(&kid.to_owned(), fetch)
            .await
            .map_err(|miss| match miss {
                Miss::Missing => VerifyError::Mismatch,
                Miss::Unavailable(reason) => VerifyError::Unavailable(reason),
            })
    }

    async fn fetch_key(
        &self,
        client: &(String, Secret),
        kid: &str,
        fresh_token: bool,
    ) -> Result<VerifyingKey, FetchError> {
        let token = self.app_token(client, fresh_token).await?;
        let url = format!(
            "{}/commerce/notification/v1/public_key/{kid}",
            self.api_base
        );
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|err| FetchError::Other(format!("fetching key: {err}")))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(FetchError::Unauthorized),
            StatusCode::NOT_FOUND => return Err(FetchError::UnknownKey),
            status => return Err(FetchError::Other(format!("key fetch answered {status}"))),
        }
        let body: PublicKeyResponse = response
            .json()
            .await
            .map_err(|err| FetchError::Other(format!("key response: {err}")))?;
        if body
            .algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("ecdsa"))
        {
            return Err(FetchError::Other("key is not ECDSA".into()));
        }
        parse_key(&body.key).map_err(FetchError::Other)
    }

    async fn app_token(
        &self,
        client: &(String, Secret),
        fresh: bool,
    ) -> Result<String, FetchError> {
        if !fresh {
            if let Some((token, until)) = self
                .app_token
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                if Instant::now() < *until {
                    return Ok(token.clone());
                }
            }
        }
        let (id, secret) = client;
        let response = self
            .http
            .post(format!("{}/identity/v1/oauth2/token", self.api_base))
            .basic_auth(id, Some(secret.expose()))
            .form(&[("grant_type", "client_credentials"), ("scope", API_SCOPE)])
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|err| FetchError::Other(format!("token request: {err}")))?;
        if !response.status().is_success() {
            return Err(FetchError::Other(format!(
                "token request answered {}",
                response.status()
            )));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|err| FetchError::Other(format!("token response: {err}")))?;
        // Renew a minute early so a token never expires in flight.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(7200).saturating_sub(60));
        *self.app_token.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((body.access_token.clone(), Instant::now() + lifetime));
        Ok(body.access_token)
    }
}

enum FetchError {
    Unauthorized,
    UnknownKey,
    Other(String),
}

/// The body with whitespace between JSON tokens removed; strings are kept byte for byte.
fn compact(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
            out.push(byte);
        } else if !byte.is_ascii_whitespace() {
            out.push(byte);
        }
    }
    out
}

fn verify_with(
    key: &VerifyingKey,
    digest: EcdsaDigest,
    message: &[u8],
    signature: &Signature,
) -> bool {
    let prehash: Vec<u8> = match digest {
        EcdsaDigest::Sha1 => Sha1::digest(message).to_vec(),
        EcdsaDigest::Sha256 => Sha256::digest(message).to_vec(),
    };
    key.verify_prehash(&prehash, signature).is_ok()
}

#[derive(Clone, Copy)]
enum EcdsaDigest {
    Sha1,
    Sha256,
}

#[async_trait::async_trait]
impl Verifier for EbayVerifier {
    fn source(&self) -> Source {
        Source::Ebay
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let value = header(request.headers, SIGNATURE_HEADER).ok_or(VerifyError::Missing)?;
        if value.len() > MAX_HEADER_BYTES {
            return Err(VerifyError::Malformed);
        }
        let decoded = BASE64.decode(value).map_err(|_| VerifyError::Malformed)?;
        let object: SignatureHeader =
            serde_json::from_slice(&decoded).map_err(|_| VerifyError::Malformed)?;
        if object
            .alg
            .as_deref()
            .is_some_and(|alg| !alg.eq_ignore_ascii_case("ecdsa"))
        {
            return Err(VerifyError::Malformed);
        }
        let digest = match object
            .digest
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("SHA1" | "SHA-1") => EcdsaDigest::Sha1,
            Some("SHA256" | "SHA-256") => EcdsaDigest::Sha256,
            Some(_) => return Err(VerifyError::Malformed),
        };
        // The kid goes into a URL path: only what key ids are made of.
        if object.kid.is_empty()
            || object.kid.len() > 128
            || !object
                .kid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(VerifyError::Malformed);
        }
        let der = BASE64
            .decode(object.signature.trim())
            .map_err(|_| VerifyError::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| VerifyError::Malformed)?;
        // (r, n - s) verifies the same message; OpenSSL accepts both, so do we.
        let signature = signature.normalize_s().unwrap_or(signature);
        let key = self.key(&object.kid).await?;
        let holds = verify_with(&key, digest, request.body, &signature)
            || verify_with(&key, digest, &compact(request.body), &signature);
        if !holds {
            return Err(VerifyError::Mismatch);
        }
        let mut parts = self.extraction.extract(request);
        parts.secret_id = object.kid;
        Ok(Accepted::Publish(verified(Source::Ebay, request, parts)))
    }

    fn challenge(&self, query: Option<&str>) -> Option<Reply> {
        let code = query.and_then(|q| {
            Url::parse(&format!("http://q/?{q}"))
                .ok()?
                .query_pairs()
                .find(|(name, _)| name == "challenge_code")
                .map(|(_, value)| value.into_owned())
        });
        let Some(code) = code.filter(|c| !c.is_empty() && c.len() <= 256) else {
            return Some(Reply {
                status: StatusCode::BAD_REQUEST,
                content_type: "text/plain; charset=utf-8",
                body: "challenge_code missing\n".into(),
            });
        };
        let answer =
            challenge_response(&code, self.verification_token.expose(), &self.endpoint_url);
        Some(Reply {
            status: StatusCode::OK,
            content_type: "application/json",
            body: serde_json::json!({ "challengeResponse": answer }).to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
