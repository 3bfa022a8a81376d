//! Shopify: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body, keyed with the
//! app's client secret (UTF-8). No timestamp is signed, so there is no replay window; the
//! processor suppresses duplicates by `X-Shopify-Webhook-Id`.
//!
//! After a secret rotation Shopify may keep signing with the old secret for up to an hour, so
//! every active secret is tried. Each comparison is constant-time (`subtle`), and
//! every secret is always tried, so the time taken does not tell which one matched.
//!
//! <https://shopify.dev/docs/apps/build/webhooks/verify-deliveries>

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use orderbridge_schemas::{headers as ob, Source};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{
    header, identifier, verified, Verified, VerifiedParts, Verifier, VerifyError, WebhookRequest,
};
use crate::config::NamedSecret;

/// Header carrying the signature.
pub const HMAC_HEADER: &str = "x-shopify-hmac-sha256";
/// Header carrying the topic, e.g. `orders/create`.
pub const TOPIC_HEADER: &str = "x-shopify-topic";
/// Header carrying the shop's `myshopify.com` domain.
pub const SHOP_DOMAIN_HEADER: &str = "x-shopify-shop-domain";
/// Header carrying the delivery id (unique per delivery and subscription).
pub const WEBHOOK_ID_HEADER: &str = "x-shopify-webhook-id";
/// Header carrying the id shared by deliveries of one merchant action.
pub const EVENT_ID_HEADER: &str = "x-shopify-event-id";
/// Header carrying when the event fired.
pub const TRIGGERED_AT_HEADER: &str = "x-shopify-triggered-at";
/// Header carrying the API version that serialized the payload.
pub const API_VERSION_HEADER: &str = "x-shopify-api-version";

/// Verifies Shopify webhooks against every active secret.
pub struct ShopifyVerifier {
    secrets: Vec<NamedSecret>,
}

impl ShopifyVerifier {
    /// A verifier trying `secrets` in order.
    pub fn new(secrets: Vec<NamedSecret>) -> Self {
        Self { secrets }
    }
}

/// Base64 HMAC-SHA256 of `body` keyed with `secret`, as Shopify computes it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    BASE64.encode(hmac_sha256(secret, body))
}

fn hmac_sha256(secret: &str, body: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

impl Verifier for ShopifyVerifier {
    fn source(&self) -> Source {
        Source::Shopify
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<Verified, VerifyError> {
        let signature = header(request.headers, HMAC_HEADER).ok_or(VerifyError::Missing)?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| VerifyError::Malformed)?;
        if signature.len() != 32 {
            return Err(VerifyError::Malformed);
        }
        // Every secret is tried, and each comparison is constant-time, so neither the
        // answer's timing nor its content says which secret (if any) came close.
        let mut matched = None;
        for secret in &self.secrets {
            let expected = hmac_sha256(secret.secret.expose(), request.body);
            if bool::from(expected.ct_eq(signature.as_slice())) && matched.is_none() {
                matched = Some(secret.id.clone());
            }
        }
        let secret_id = matched.ok_or(VerifyError::Mismatch)?;

        let headers = request.headers;
        let event_type =
            identifier(header(headers, TOPIC_HEADER)).unwrap_or_else(|| "unknown".into());
        let mut extra_headers = Vec::new();
        if let Some(at) = identifier(header(headers, TRIGGERED_AT_HEADER)) {
            extra_headers.push((ob::TRIGGERED_AT, at));
        }
        if let Some(id) = identifier(header(headers, EVENT_ID_HEADER)) {
            extra_headers.push(("ob-shopify-event-id", id));
        }
        if let Some(version) = identifier(header(headers, API_VERSION_HEADER)) {
            extra_headers.push(("ob-shopify-api-version", version));
        }
        Ok(verified(
            Source::Shopify,
            request,
            VerifiedParts {
                account: identifier(header(headers, SHOP_DOMAIN_HEADER))
                    .or_else(|| identifier(request.account)),
                order_id: order_id(&event_type, request.body),
                event_type,
                event_id: identifier(header(headers, WEBHOOK_ID_HEADER)),
                secret_id,
                extra_headers,
            },
        ))
    }
}

/// The order id a Shopify body is about: `order_id` on refunds and fulfillments, `id` on
/// orders. `None` when the body is not JSON or names no order; the record is then keyed by
/// its event id and the processor decides what to do with it.
fn order_id(topic: &str, body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Ids {
        id: Option<serde_json::Value>,
        order_id: Option<serde_json::Value>,
    }
    let ids: Ids = serde_json::from_slice(body).ok()?;
    let id = if topic.starts_with("orders/") {
        ids.id
    } else {
        ids.order_id.or(ids.id)
    }?;
    if let Some(number) = id.as_u64() {
        return Some(number.to_string());
    }
    identifier(id.as_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::http::{HeaderMap, HeaderValue};
    use bytes::Bytes;
    use orderbridge_runtime::Secret;

    const BODY: &str = r#"{"id":450789469,"email":"bob@example.com","total_price":"409.94"}"#;

    fn secret(id: &str, value: &str) -> NamedSecret {
        NamedSecret {
            id: id.into(),
            secret: Secret::new(value),
        }
    }

    fn request_headers(signature: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(signature) = signature {
            headers.insert(HMAC_HEADER, HeaderValue::from_str(signature).unwrap());
        }
        headers.insert(TOPIC_HEADER, HeaderValue::from_static("orders/create"));
        headers.insert(
            SHOP_DOMAIN_HEADER,
            HeaderValue::from_static("example-store.myshopify.com"),
        );
        headers.insert(
            WEBHOOK_ID_HEADER,
            HeaderValue::from_static("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        );
        headers
    }

    fn verify(
        verifier: &ShopifyVerifier,
        headers: &HeaderMap,
        body: &str,
    ) -> Result<Verified, VerifyError> {
        let body = Bytes::from(body.to_owned());
        verifier.verify(&WebhookRequest {
            headers,
            body: &body,
            account: None,
        })
    }

    #[test]
    fn known_answer_vector() {
        // HMAC-SHA256("hush", "{\"id\":1}") in base64, computed independently with
        // `printf '{"id":1}' | openssl dgst -sha256 -hmac hush -binary | base64`.
        assert_eq!(
            sign("hush", br#"{"id":1}"#),
            "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
        );
    }

    #[test]
    fn accepts_a_correct_signature_and_extracts_the_key() {
        let verifier = ShopifyVerifier::new(vec![secret("current", "shpss_current")]);
        let headers = request_headers(Some(&sign("shpss_current", BODY.as_bytes())));
        let verified = verify(&verifier, &headers, BODY).unwrap();
        assert_eq!(verified.secret_id(), "current");
        assert_eq!(verified.account(), "example-store.myshopify.com");
        assert_eq!(verified.event_type(), "orders/create");
        assert_eq!(verified.event_id(), "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        assert_eq!(
            verified.record_key(),
            "shopify:example-store.myshopify.com:450789469"
        );
        assert_eq!(verified.body().as_ref(), BODY.as_bytes());
        assert_eq!(
            verified.content_type(),
            "application/octet-stream",
            "absent, so not assumed"
        );
        let mut json = headers.clone();
        json.insert("content-type", HeaderValue::from_static("application/json"));
        assert_eq!(
            verify(&verifier, &json, BODY).unwrap().content_type(),
            "application/json"
        );
    }

    #[test]
    fn rejects_a_tampered_body() {
        let verifier = ShopifyVerifier::new(vec![secret("current", "shpss_current")]);
        let headers = request_headers(Some(&sign("shpss_current", BODY.as_bytes())));
        let tampered = BODY.replace("409.94", "409.95");
        assert_eq!(
            verify(&verifier, &headers, &tampered).unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn rejects_a_wrong_secret() {
        let verifier = ShopifyVerifier::new(vec![secret("current", "shpss_current")]);
        let headers = request_headers(Some(&sign("shpss_attacker", BODY.as_bytes())));
        assert_eq!(
            verify(&verifier, &headers, BODY).unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn accepts_either_secret_during_a_rotation() {
        let verifier =
            ShopifyVerifier::new(vec![secret("new", "shpss_new"), secret("old", "shpss_old")]);
        let by_old = verify(
            &verifier,
            &request_headers(Some(&sign("shpss_old", BODY.as_bytes()))),
            BODY,
        );
        assert_eq!(by_old.unwrap().secret_id(), "old");
        let by_new = verify(
            &verifier,
            &request_headers(Some(&sign("shpss_new", BODY.as_bytes()))),
            BODY,
        );
        assert_eq!(by_new.unwrap().secret_id(), "new");
        let retired = ShopifyVerifier::new(vec![secret("new", "shpss_new")]);
        let after = verify(
            &retired,
            &request_headers(Some(&sign("shpss_old", BODY.as_bytes()))),
            BODY,
        );
        assert_eq!(after.unwrap_err(), VerifyError::Mismatch);
    }

    #[test]
    fn rejects_a_missing_or_malformed_header() {
        let verifier = ShopifyVerifier::new(vec![secret("current", "shpss_current")]);
        assert_eq!(
            verify(&verifier, &request_headers(None), BODY).unwrap_err(),
            VerifyError::Missing
        );
        let not_base64 = request_headers(Some("not base64!"));
        assert_eq!(
            verify(&verifier, &not_base64, BODY).unwrap_err(),
            VerifyError::Malformed
        );
        let too_short = request_headers(Some("c2hvcnQ="));
        assert_eq!(
            verify(&verifier, &too_short, BODY).unwrap_err(),
            VerifyError::Malformed
        );
    }

    #[test]
    fn a_body_without_an_order_id_is_keyed_by_its_event() {
        let verifier = ShopifyVerifier::new(vec![secret("current", "s")]);
        let body = "not json";
        let verified = verify(
            &verifier,
            &request_headers(Some(&sign("s", body.as_bytes()))),
            body,
        )
        .unwrap();
        assert_eq!(
            verified.record_key(),
            "shopify:example-store.myshopify.com:event:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
        );
    }

    #[test]
    fn refunds_are_keyed_by_their_order() {
        assert_eq!(
            order_id("refunds/create", br#"{"id":9,"order_id":450789469}"#).as_deref(),
            Some("450789469")
        );
        assert_eq!(
            order_id("orders/updated", br#"{"id":450789469}"#).as_deref(),
            Some("450789469")
        );
    }
}
