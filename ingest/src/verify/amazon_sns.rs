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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
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
use super::{
    identifier, verified, Accepted, Reply, SharedVerifier, VerifiedParts, Verifier, VerifyError,
    WebhookRequest,
};
use crate::config::SnsConfig;

/// Set when raw message delivery is on: such messages carry no signature.
pub const RAW_DELIVERY_HEADER: &str = "x-amz-sns-rawdelivery";
/// Certificates kept at most; SNS uses a handful per region.
const MAX_CACHED_CERTS: usize = 64;
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
        http,
        fetch_timeout,
        certs: Mutex::new(HashMap::new()),
    }))
}

/// Verifies SNS messages.
pub struct SnsVerifier {
    topic_arns: HashSet<String>,
    regions: Vec<String>,
    confirm: bool,
    http: reqwest::Client,
    fetch_timeout: Duration,
    certs: Mutex<HashMap<String, CachedCert>>,
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
    /// fetched.
    async fn certificate(&self, url: &str, now: i64) -> Result<CachedCert, VerifyError> {
        if let Some(cert) = self.cached(url) {
            if now <= cert.not_after {
                return Ok(cert);
            }
        }
        let response = self
            .http
            .get(url)
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|err| VerifyError::Unavailable(format!("fetching the certificate: {err}")))?;
        if !response.status().is_success() {
            return Err(VerifyError::Unavailable(format!(
                "certificate fetch answered {}",
                response.status()
            )));
        }
        let pem = response
            .bytes()
            .await
            .map_err(|err| VerifyError::Unavailable(format!("reading the certificate: {err}")))?;
        if pem.len() > MAX_CERT_BYTES {
            return Err(VerifyError::Unavailable("certificate too large".into()));
        }
        let cert = parse_certificate(&pem)
            .map_err(|err| VerifyError::Unavailable(format!("certificate: {err}")))?;
        let mut certs = self.certs.lock().unwrap_or_else(|p| p.into_inner());
        if certs.len() >= MAX_CACHED_CERTS {
            certs.clear();
        }
        certs.insert(url.to_owned(), cert.clone());
        Ok(cert)
    }

    fn cached(&self, url: &str) -> Option<CachedCert> {
        self.certs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned()
    }

    /// Puts a certificate in the cache, as if fetched from `url`.
    ///
    /// # Errors
    /// When `pem` is not an RSA certificate.
    pub fn preload(&self, url: &str, pem: &[u8]) -> Result<(), String> {
        let cert = parse_certificate(pem)?;
        self.certs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_owned(), cert);
        Ok(())
    }

    /// Fetches a `SubscribeURL` (already checked) to confirm a subscription.
    async fn confirm(&self, url: &str) -> Result<(), VerifyError> {
        let response = self
            .http
            .get(url)
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|err| VerifyError::Unavailable(format!("confirming: {err}")))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(VerifyError::Unavailable(format!(
                "confirmation answered {}",
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
        let cert = self
            .certificate(&message.signing_cert_url, request.now)
            .await?;
        if request.now < cert.not_before || request.now > cert.not_after {
            return Err(VerifyError::Untrusted);
        }
        verify_signature(&cert, &message.signature_version, &signed, &signature)?;

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
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::testing::headers;
    use axum::http::Method;
    use bytes::Bytes;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};

    const CERT: &str = include_str!("../../../tests/support/keys/sns-signing.pem");
    const KEY: &str = include_str!("../../../tests/support/keys/sns-signing.key");
    const CERT_URL: &str = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem";
    const TOPIC: &str = "arn:aws:sns:us-west-2:123456789012:orders";
    const INNER: &str = r#"{"NotificationType":"ORDER_CHANGE","Payload":{"OrderChangeNotification":{"SellerId":"A3TH9S8BH6GOGM","AmazonOrderId":"903-8868176-2219830"}}}"#;
    /// 2027-01-15, inside the test certificate's validity.
    const NOW: i64 = 1_800_000_000;

    // `openssl dgst -sha1 -sign sns-signing.key` (and -sha256) over the string to sign of
    // `notification("1"/"2", …)`, written out by hand in that test.
    const V1: &str = "on5jXurvCIWCEutkVBgEJ/4Nu4fzX/udTW1qpfaOm4NCuG+uM4Ni0BtUEQ6lqOx61DuXuGJa9+1BuMrKA5pSwJtxFUQWv3rdpM6tV1zgxr+XL1pmu+JScOE7qvZcdjYDfBcuK55DGWA+MMiaD2kW6sTmHVxrgTQew8oU7ZV2Bt0UzEJFjs4N8kbyxomwS/az5ZMjYNWbWy49JdgFMIdrXPX3UCFkBtB2A6WpQDeL/TT8J9KbcgnFEJKhjKkELTSxE+s8Nqg1U4kPbnSgtba0Tev7g5ahYHZu14gI2jbsVDoxzQecC93y/09B5BT8sbNoWi/E7xfMwlrdT4Iv1LnDhA==";
    const V2: &str = "ex7qEflTCgrqmphowLTXLFVYThwVikDtgS8jCQCz76LLREj2otiMODxXmwLUlXwDb3fynORKoFYKRsNiU9SkwMc77Op+FgEU5NsYB9jJkXyS0fRGk2kLWhKEOSswbryEk7iG+/xBgDJ5Prs+h1n6FuWK3e0B6WUA3j8jCraRuRgsaEhj4DG7M0hmeVSGYZI+Dfp6T/UnFFN4TqqQmGs9wMG0NZlr265Z99He5xtr7o0jHQzkcn2GowMucsZKGm9Qj+Fuop6QX7Jb1kYbBv3Muk8yX+0aEJv7byvK2MkthuP/f3D+rMx2prHCpxWT24g2Vkx5io1H1YRowWY6As0Mmg==";

    fn notification(version: &str, signature: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC,
            "Subject": "order",
            "Message": INNER,
            "Timestamp": "2025-05-02T00:54:06.655Z",
            "SignatureVersion": version,
            "Signature": signature,
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
        })
        .to_string()
    }

    fn sns(topics: &[&str]) -> SnsVerifier {
        let config = SnsConfig {
            topic_arns: topics.iter().map(|t| (*t).to_owned()).collect(),
            regions: Vec::new(),
            confirm_subscriptions: true,
        };
        let verifier = SnsVerifier {
            topic_arns: config.topic_arns.iter().cloned().collect(),
            regions: Vec::new(),
            confirm: true,
            // No server answers here: a fetch would fail the test with Unavailable.
            http: reqwest::Client::builder().build().unwrap(),
            fetch_timeout: Duration::from_millis(200),
            certs: Mutex::new(HashMap::new()),
        };
        verifier.preload(CERT_URL, CERT.as_bytes()).unwrap();
        verifier
    }

    fn run(verifier: &SnsVerifier, body: &str, now: i64) -> Result<Accepted, VerifyError> {
        let h = headers(&[("x-amz-sns-message-type", "Notification")]);
        let body = Bytes::from(body.to_owned());
        let request = WebhookRequest {
            method: &Method::POST,
            path_and_query: "/webhooks/amazon-sns",
            headers: &h,
            body: &body,
            account: None,
            now,
        };
        futures::executor::block_on(verifier.verify(&request))
    }

    #[test]
    fn the_string_to_sign_is_the_documented_one() {
        let message: Message = serde_json::from_str(&notification("1", V1)).unwrap();
        assert_eq!(
            message.string_to_sign(Kind::Notification).unwrap(),
            format!(
                "Message\n{INNER}\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\norder\n\
                 Timestamp\n2025-05-02T00:54:06.655Z\nTopicArn\n{TOPIC}\nType\nNotification\n"
            )
        );
    }

    #[test]
    fn known_answers_for_both_signature_versions() {
        for (version, signature) in [("1", V1), ("2", V2)] {
            match run(&sns(&[TOPIC]), &notification(version, signature), NOW).unwrap() {
                Accepted::Publish(verified) => {
                    assert_eq!(
                        verified.record_key(),
                        "amazon-sns:A3TH9S8BH6GOGM:903-8868176-2219830"
                    );
                    assert_eq!(verified.event_id(), "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324");
                    assert_eq!(verified.event_type(), "ORDER_CHANGE");
                }
                Accepted::Reply(reply) => panic!("unexpected {reply:?}"),
            }
        }
        // A v1 signature claimed as v2 does not verify.
        assert_eq!(
            run(&sns(&[TOPIC]), &notification("2", V1), NOW).unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn tampering_topics_hosts_and_raw_delivery_are_refused() {
        let tampered = notification("1", V1).replace("903-8868176", "903-0000000");
        assert_eq!(
            run(&sns(&[TOPIC]), &tampered, NOW).unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(
            run(
                &sns(&["arn:aws:sns:us-west-2:123456789012:other"]),
                &notification("1", V1),
                NOW
            )
            .unwrap_err(),
            VerifyError::NotAllowed
        );
        let elsewhere = notification("1", V1).replace(
            "https://sns.us-west-2.amazonaws.com/",
            "https://sns.us-west-2.amazonaws.com.evil.example/",
        );
        assert_eq!(
            run(&sns(&[TOPIC]), &elsewhere, NOW).unwrap_err(),
            VerifyError::Untrusted
        );
        let unsigned = notification("1", "");
        assert!(run(&sns(&[TOPIC]), &unsigned, NOW).is_err());
        assert_eq!(
            run(&sns(&[TOPIC]), "not json", NOW).unwrap_err(),
            VerifyError::Malformed
        );
        let v = sns(&[TOPIC]);
        let h = headers(&[(RAW_DELIVERY_HEADER, "true")]);
        let body = Bytes::from(notification("1", V1));
        let request = WebhookRequest {
            method: &Method::POST,
            path_and_query: "/",
            headers: &h,
            body: &body,
            account: None,
            now: NOW,
        };
        assert_eq!(
            futures::executor::block_on(v.verify(&request)).unwrap_err(),
            VerifyError::Missing
        );
    }

    #[test]
    fn a_certificate_outside_its_validity_is_not_trusted() {
        // Before the test certificate's notBefore. (After notAfter, the cached copy is not
        // used and the certificate is fetched again: see the integration tests.)
        assert_eq!(
            run(&sns(&[TOPIC]), &notification("1", V1), 1_000_000_000).unwrap_err(),
            VerifyError::Untrusted
        );
    }

    #[test]
    fn certificate_urls_follow_awss_rule() {
        let none: &[String] = &[];
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
            "https://sns.us-gov-west-1.amazonaws.com/x.pem",
        ] {
            assert!(is_certificate_url(good, none), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.crt",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.a.amazonaws.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sqs.us-east-1.amazonaws.com/x.pem",
            "https://sns.us_east.amazonaws.com/x.pem",
            "not a url",
        ] {
            assert!(!is_certificate_url(bad, none), "{bad}");
        }
        let only = ["eu-west-1".to_owned()];
        assert!(!is_certificate_url(
            "https://sns.us-east-1.amazonaws.com/x.pem",
            &only
        ));
        assert!(is_certificate_url(
            "https://sns.eu-west-1.amazonaws.com/x.pem",
            &only
        ));
    }

    #[test]
    fn a_signature_by_another_key_or_a_rotated_certificate() {
        // Signed with another RSA key (the test TLS key) under the same certificate URL.
        let other = include_str!("../../../tests/support/keys/tls-sim.key");
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(other).unwrap();
        let message: Message = serde_json::from_str(&notification("1", V1)).unwrap();
        let signed = message.string_to_sign(Kind::Notification).unwrap();
        let forged = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key).sign(signed.as_bytes());
        let body = notification("1", &BASE64.encode(forged.to_bytes()));
        assert_eq!(
            run(&sns(&[TOPIC]), &body, NOW).unwrap_err(),
            VerifyError::Mismatch
        );
        // AWS rotates signing certificates by URL: a message naming another certificate is
        // verified with that one.
        let rotated_url = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-new.pem";
        let verifier = sns(&[TOPIC]);
        verifier.preload(rotated_url, CERT.as_bytes()).unwrap();
        let body = notification("1", V1).replace(CERT_URL, rotated_url);
        match run(&verifier, &body, NOW).unwrap() {
            Accepted::Publish(verified) => {
                assert_eq!(verified.secret_id(), "SimpleNotificationService-new.pem")
            }
            Accepted::Reply(reply) => panic!("unexpected {reply:?}"),
        }
    }

    #[test]
    fn our_signer_agrees_with_openssl() {
        // The integration tests sign with the rsa crate; check it matches openssl's output.
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(KEY).unwrap();
        let message: Message = serde_json::from_str(&notification("1", V1)).unwrap();
        let signed = message.string_to_sign(Kind::Notification).unwrap();
        let ours = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key).sign(signed.as_bytes());
        assert_eq!(BASE64.encode(ours.to_bytes()), V1);
    }
}
