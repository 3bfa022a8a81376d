//! Amazon SNS HTTPS subscriptions (how SP-API order notifications reach an HTTP endpoint).
//!
//! SNS signs a canonical string, not the body: for each field of a fixed list, in order and
//! only if present, `<Name>\n<Value>\n` with the *decoded* JSON values. Notifications sign
//! `Message, MessageId, Subject, Timestamp, TopicArn, Type`; subscription and unsubscription
//! confirmations sign `Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type`.
//! `SignatureVersion` 1 is SHA1withRSA, 2 is SHA256withRSA, with the key of the X.509
//! certificate at `SigningCertURL`.
//!
//! That URL comes from the message, so it is checked before anything is fetched: `https`,
//! host `sns.<region>.amazonaws.com` or `.amazonaws.com.cn` (optionally only the configured
//! regions), path ending in `.pem`, no user info or port. The certificate is then fetched over
//! TLS (the trust anchor: only AWS serves those hosts), with redirects off, and cached by URL
//! until it expires. Messages from a topic not on the allow-list are refused before any fetch,
//! as AWS advises.
//!
//! A `SubscriptionConfirmation` from an allowed topic is confirmed by fetching its
//! `SubscribeURL` (same host rule) and is not published; an `UnsubscribeConfirmation` is
//! logged. SNS counts any 4xx as delivered, so everything that should be retried (the
//! certificate or the confirmation could not be fetched) answers 503. Raw message delivery
//! carries no signature and is refused: do not enable it on an internet-facing endpoint.
//!
//! <https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use orderbridge_schemas::Source;
use reqwest::Url;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier as _;
use rsa::RsaPublicKey;
use serde::Deserialize;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

use super::extract::{scalar, Body};
use super::key_cache::{Fetched, KeyCache, Miss};
use super::{
    identifier, verified, Accepted, Reply, SharedVerifier, VerifiedParts, Verifier, VerifyError,
    WebhookRequest,
};
use crate::config::SnsConfig;

/// Set when raw message delivery is on: such messages carry no signature.
pub const RAW_DELIVERY_HEADER: &str = "x-amz-sns-rawdelivery";
/// How long a downloaded certificate is kept; AWS rotates by publishing under a new URL.
const CERT_CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Largest certificate read.
const MAX_CERT_BYTES: usize = 16 * 1024;

/// The SNS verifier for `config`, fetching with `http` (which must not follow redirects).
///
/// # Errors
/// When the topic allow-list is empty.
pub fn verifier(
    config: &SnsConfig,
    http: reqwest::Client,
    fetch_timeout: Duration,
) -> Result<SharedVerifier, String> {
    if config.topic_arns.is_empty() {
        return Err("amazon_sns.topic_arns must list the topics to accept".into());
    }
    Ok(Arc::new(SnsVerifier {
        topic_arns: config.topic_arns.iter().cloned().collect(),
        regions: config.regions.clone(),
        confirm: config.confirm_subscriptions,
        tolerance_secs: config.tolerance_secs,
        http,
        fetch_timeout,
        certs: KeyCache::default(),
    }))
}

/// Verifies SNS messages.
pub struct SnsVerifier {
    topic_arns: HashSet<String>,
    regions: Vec<String>,
    confirm: bool,
    /// Largest distance of a message's `Timestamp` from now; 0: not checked.
    tolerance_secs: u64,
    http: reqwest::Client,
    fetch_timeout: Duration,
    certs: KeyCache<String, CachedCert>,
}

#[derive(Clone)]
struct CachedCert {
    key: RsaPublicKey,
    not_before: i64,
    not_after: i64,
}

/// An SNS message; field names as SNS writes them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    message: String,
    timestamp: String,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    subject: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    token: Option<String>,
}

/// Message types SNS sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl Message {
    fn kind(&self) -> Option<Kind> {
        match self.kind.as_str() {
            "Notification" => Some(Kind::Notification),
            "SubscriptionConfirmation" => Some(Kind::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Some(Kind::UnsubscribeConfirmation),
            _ => None,
        }
    }

    /// The string SNS signed, or `None` when a field the type requires is absent.
    fn string_to_sign(&self, kind: Kind) -> Option<String> {
        let mut out = String::with_capacity(self.message.len() + 512);
        let mut push = |name: &str, value: &str| {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        };
        push("Message", &self.message);
        push("MessageId", &self.message_id);
        match kind {
            Kind::Notification => {
                if let Some(subject) = &self.subject {
                    push("Subject", subject);
                }
                push("Timestamp", &self.timestamp);
            }
            Kind::SubscriptionConfirmation | Kind::UnsubscribeConfirmation => {
                push("SubscribeURL", self.subscribe_url.as_deref()?);
                push("Timestamp", &self.timestamp);
                push("Token", self.token.as_deref()?);
            }
        }
        push("TopicArn", &self.topic_arn);
        push("Type", &self.kind);
        Some(out)
    }
}

/// Whether `url` is an SNS endpoint we may fetch: https, `sns.<region>.amazonaws.com[.cn]`
/// (a region from `regions` when that is not empty), no user info, no explicit port.
pub fn is_sns_url(url: &str, regions: &[String]) -> bool {
    let Ok(url) = Url::parse(url) else {
        return false;
    };
    if url.scheme() != "https"
        || url.port().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return false;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let Some(region) = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    // ^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$, as AWS's own validator has it.
    region.len() >= 3
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && (regions.is_empty() || regions.iter().any(|r| r == region))
}

/// Whether `url` may be a signing certificate: an SNS URL whose path ends in `.pem`.
pub fn is_certificate_url(url: &str, regions: &[String]) -> bool {
    is_sns_url(url, regions)
        && Url::parse(url).is_ok_and(|u| u.path().ends_with(".pem") && u.query().is_none())
}

impl SnsVerifier {
    /// The public key of the certificate at `url` (already checked), from the cache or
    /// fetched. The URL comes from an unverified message: see `key_cache` for what bounds the
    /// downloads. A certificate AWS does not have (403, 404) is no SNS message's; anything
    /// else that fails may pass, and is a 503 for SNS to retry.
    async fn certificate(&self, url: &str) -> Result<CachedCert, VerifyError> {
        let fetch = || async {
            let response = match self.http.get(url).timeout(self.fetch_timeout).send().await {
                Ok(response) => response,
                Err(err) => return Fetched::Failed(format!("fetching the certificate: {err}")),
            };
            match response.status() {
                status if status.is_success() => {}
                reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::FORBIDDEN => {
                    return Fetched::Missing
                }
                status => return Fetched::Failed(format!("the certificate answered {status}")),
            }
            let pem = match response.bytes().await {
                Ok(pem) if pem.len() <= MAX_CERT_BYTES => pem,
                Ok(_) => return Fetched::Failed("certificate too large".into()),
                Err(err) => return Fetched::Failed(format!("reading the certificate: {err}")),
            };
            match parse_certificate(&pem) {
                // Validity is checked against the message's time at each use.
                Ok(cert) => Fetched::Key(cert, std::time::Instant::now() + CERT_CACHE_FOR),
                Err(err) => Fetched::Failed(format!("certificate: {err}")),
            }
        };
        self.certs
            .get(&url.to_owned(), fetch)
            .await
            .map_err(|miss| match miss {
                Miss::Missing => VerifyError::Untrusted,
                Miss::Unavailable(reason) => VerifyError::Unavailable(reason),
            })
    }

    /// Puts a certificate in the cache, as if fetched from `url`.
    ///
    /// # Errors
    /// When `pem` is not an RSA certificate.
    pub fn preload(&self, url: &str, pem: &[u8]) -> Result<(), String> {
        let cert = parse_certificate(pem)?;
        self.certs.insert(
            url.to_owned(),
            cert,
            std::time::Instant::now() + CERT_CACHE_FOR,
        );
        Ok(())
    }

    /// Fetches a `SubscribeURL` (already checked) to confirm a subscription.
    async fn confirm(&self, url: &str) -> Result<(), VerifyError> {
        self.get(url, "the confirmation").await.map(drop)
    }

    /// GETs an already checked SNS URL; anything but a 2xx is worth a retry (a 503 to SNS).
    async fn get(&self, url: &str, what: &str) -> Result<reqwest::Response, VerifyError> {
        let response = self
            .http
            .get(url)
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|err| VerifyError::Unavailable(format!("fetching {what}: {err}")))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(VerifyError::Unavailable(format!(
                "{what} answered {}",
                response.status()
            )))
        }
    }
}

fn parse_certificate(pem: &[u8]) -> Result<CachedCert, String> {
    let cert = Certificate::from_pem(pem).map_err(|err| format!("not a PEM certificate: {err}"))?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|err| err.to_string())?;
    let key = RsaPublicKey::from_public_key_der(&spki).map_err(|err| format!("not RSA: {err}"))?;
    let seconds = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    Ok(CachedCert {
        key,
        not_before: seconds(tbs.validity.not_before),
        not_after: seconds(tbs.validity.not_after),
    })
}

fn verify_signature(
    cert: &CachedCert,
    version: &str,
    signed: &str,
    signature: &[u8],
) -> Result<(), VerifyError> {
    let signature = Signature::try_from(signature).map_err(|_| VerifyError::Malformed)?;
    let holds = match version {
        "1" => VerifyingKey::<sha1::Sha1>::new(cert.key.clone())
            .verify(signed.as_bytes(), &signature)
            .is_ok(),
        "2" => VerifyingKey::<sha2::Sha256>::new(cert.key.clone())
            .verify(signed.as_bytes(), &signature)
            .is_ok(),
        _ => return Err(VerifyError::Malformed),
    };
    if holds {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[async_trait::async_trait]
impl Verifier for SnsVerifier {
    fn source(&self) -> Source {
        Source::AmazonSns
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        if request
            .headers
            .get(RAW_DELIVERY_HEADER)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        {
            tracing::warn!("SNS raw message delivery carries no signature; turn it off");
            return Err(VerifyError::Missing);
        }
        let message: Message =
            serde_json::from_slice(request.body).map_err(|_| VerifyError::Malformed)?;
        let kind = message.kind().ok_or(VerifyError::Malformed)?;
        // Checked before any fetch: an unknown topic costs us nothing.
        if !self.topic_arns.contains(&message.topic_arn) {
            tracing::warn!(topic_arn = %message.topic_arn, "SNS message from a topic not on the allow-list");
            return Err(VerifyError::NotAllowed);
        }
        if !is_certificate_url(&message.signing_cert_url, &self.regions) {
            tracing::warn!(url = %message.signing_cert_url, "SNS certificate URL refused");
            return Err(VerifyError::Untrusted);
        }
        let signed = message.string_to_sign(kind).ok_or(VerifyError::Malformed)?;
        let signature = BASE64
            .decode(message.signature.trim())
            .map_err(|_| VerifyError::Malformed)?;
        let cert = self.certificate(&message.signing_cert_url).await?;
        if request.now < cert.not_before || request.now > cert.not_after {
            return Err(VerifyError::Untrusted);
        }
        verify_signature(&cert, &message.signature_version, &signed, &signature)?;
        // The signature covers the Timestamp: a message from outside the window is a replay
        // (or a clock far off), not a delivery.
        if self.tolerance_secs > 0 {
            let at = chrono::DateTime::parse_from_rfc3339(message.timestamp.trim())
                .map_err(|_| VerifyError::Malformed)?
                .timestamp();
            let skew = request.now.saturating_sub(at);
            if skew.unsigned_abs() > self.tolerance_secs {
                return Err(VerifyError::Expired { skew_secs: skew });
            }
        }

        match kind {
            Kind::Notification => {
                let mut parts = notification_parts(&message, request.account);
                // The certificate is the key: its file name shows AWS's key rotation.
                parts.secret_id = certificate_name(&message.signing_cert_url);
                Ok(Accepted::Publish(verified(
                    Source::AmazonSns,
                    request,
                    parts,
                )))
            }
            Kind::SubscriptionConfirmation => {
                let url = message.subscribe_url.as_deref().unwrap_or_default();
                if !self.confirm {
                    tracing::info!(topic_arn = %message.topic_arn, "SNS subscription awaits manual confirmation");
                    return Ok(Accepted::Reply(Reply::ok("not confirmed automatically\n")));
                }
                if !is_sns_url(url, &self.regions) {
                    tracing::warn!(topic_arn = %message.topic_arn, "SNS SubscribeURL refused");
                    return Err(VerifyError::Untrusted);
                }
                self.confirm(url).await?;
                tracing::info!(topic_arn = %message.topic_arn, "SNS subscription confirmed");
                Ok(Accepted::Reply(Reply::ok("subscription confirmed\n")))
            }
            Kind::UnsubscribeConfirmation => {
                tracing::warn!(topic_arn = %message.topic_arn, "SNS subscription removed");
                Ok(Accepted::Reply(Reply::ok("ok\n")))
            }
        }
    }
}

/// [`notification_parts`] of a body that parses as an SNS message, for the fuzzers.
#[cfg(fuzzing)]
pub(super) fn fuzz_notification_parts(body: &[u8], account: Option<&str>) -> VerifiedParts {
    serde_json::from_slice::<Message>(body)
        .map(|message| notification_parts(&message, account))
        .unwrap_or_default()
}

/// The last path segment of a (checked) certificate URL.
fn certificate_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Ids of a notification: the SNS message id, and from the inner message (a JSON string)
/// the SP-API notification type, order and seller when it has them.
fn notification_parts(message: &Message, account: Option<&str>) -> VerifiedParts {
    let inner = Body::new(message.message.as_bytes());
    let first = |pointers: &[&str]| pointers.iter().find_map(|p| inner.pointer(p));
    VerifiedParts {
        account: first(&["/Payload/OrderChangeNotification/SellerId", "/sellerId"])
            .or_else(|| identifier(account)),
        event_type: first(&["/NotificationType", "/event_type", "/eventType"])
            .or_else(|| Some(message.kind.clone())),
        event_id: identifier(Some(&message.message_id)),
        order_id: first(&[
            "/Payload/OrderChangeNotification/AmazonOrderId",
            "/AmazonOrderId",
            "/orderId",
        ])
        .or_else(|| {
            inner
                .json()
                .and_then(|v| v.get("order_id"))
                .and_then(scalar)
        }),
        ..VerifiedParts::default()
    }
}

#[cfg(test)]
mod tests;
