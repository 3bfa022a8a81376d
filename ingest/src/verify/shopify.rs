//! Shopify: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body, keyed with the
//! app's client secret (UTF-8). No timestamp is signed, so there is no replay window; the
//! processor suppresses duplicates by `X-Shopify-Webhook-Id`.
//!
//! After a secret rotation Shopify may keep signing with the old secret for up to an hour, so
//! every active secret is tried. Each comparison is constant-time (`subtle`), and
//! every secret is always tried, so the time taken does not tell which one matched.
//!
//! <https://shopify.dev/docs/apps/build/webhooks/verify-deliveries>

use orderbridge_schemas::{headers as ob, Source};
use serde::Deserialize;

use super::extract::{Extraction, Field};
use super::scheme::{HmacCheck, Inputs, Preset};
use super::{
    header, identifier, verified, Accepted, VerifiedParts, Verifier, VerifyError, WebhookRequest,
};
use crate::config::HmacConfig;

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
    check: HmacCheck,
    extraction: Extraction,
    /// Allowed shop domains, lower-cased; empty: any.
    shops: Vec<String>,
}

impl ShopifyVerifier {
    /// A verifier for `config` (several secrets: several apps, or a rotation).
    ///
    /// # Errors
    /// When no secret is configured or one is empty.
    pub fn new(config: &HmacConfig) -> Result<Self, String> {
        let scheme = Preset::Shopify.scheme().patched(&config.scheme);
        Ok(Self {
            check: HmacCheck::new(scheme, Inputs::default(), &config.secrets)?,
            extraction: Extraction {
                event_id: vec![Field::header(WEBHOOK_ID_HEADER)],
                event_type: vec![Field::header(TOPIC_HEADER)],
                order_id: Vec::new(),
                account: vec![Field::header(SHOP_DOMAIN_HEADER)],
            }
            .overridden_by(&config.extract),
            shops: config
                .shops
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
        })
    }
}

/// Base64 HMAC-SHA256 of `body` keyed with `secret`, as Shopify computes it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new(); // HMAC takes any key length
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[async_trait::async_trait]
impl Verifier for ShopifyVerifier {
    fn source(&self) -> Source {
        Source::Shopify
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let matched = self.check.verify(request)?;
        let headers = request.headers;
        // The shop header is not signed: only a listed shop's deliveries are taken.
        if !self.shops.is_empty() {
            let shop = header(headers, SHOP_DOMAIN_HEADER)
                .map(|s| s.trim().to_ascii_lowercase())
                .unwrap_or_default();
            if !self.shops.contains(&shop) {
                tracing::warn!(shop = %shop, "Shopify delivery from a shop not on the account's list");
                return Err(VerifyError::NotAllowed);
            }
        }
        let mut parts: VerifiedParts = self.extraction.extract(request);
        let topic = parts.event_type.clone().unwrap_or_default();
        if parts.order_id.is_none() {
            parts.order_id = order_id(&topic, request.body);
        }
        parts.secret_id = matched.secret_id;
        if let Some(at) = identifier(header(headers, TRIGGERED_AT_HEADER)) {
            parts.extra_headers.push((ob::TRIGGERED_AT, at));
        }
        if let Some(id) = identifier(header(headers, EVENT_ID_HEADER)) {
            parts.extra_headers.push((ob::SHOPIFY_EVENT_ID, id));
        }
        if let Some(version) = identifier(header(headers, API_VERSION_HEADER)) {
            parts.extra_headers.push((ob::SHOPIFY_API_VERSION, version));
        }
        Ok(Accepted::Publish(verified(Source::Shopify, request, parts)))
    }
}

/// The order id a Shopify body is about: `order_id` on refunds and fulfillments, `id` on
/// orders. `None` when the body is not JSON or names no order; the record is then keyed by
/// its event id and the processor decides what to do with it.
pub(super) fn order_id(topic: &str, body: &[u8]) -> Option<String> {
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
    super::extract::scalar(&id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::testing::{headers, publish, secret};
    use crate::verify::Verified;
    use axum::http::HeaderMap;

    const BODY: &str = r#"{"id":450789469,"email":"bob@example.com","total_price":"409.94"}"#;

    fn verifier(secrets: &[(&str, &str)]) -> ShopifyVerifier {
        ShopifyVerifier::new(&HmacConfig {
            secrets: secrets.iter().map(|(id, s)| secret(id, s)).collect(),
            ..HmacConfig::default()
        })
        .unwrap()
    }

    fn request_headers(signature: Option<&str>) -> HeaderMap {
        let mut pairs = vec![
            (TOPIC_HEADER, "orders/create"),
            (SHOP_DOMAIN_HEADER, "example-store.myshopify.com"),
            (WEBHOOK_ID_HEADER, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            (EVENT_ID_HEADER, "7b8c9d0a-1234-5678-90ab-cdef12345678"),
            (TRIGGERED_AT_HEADER, "2025-04-22T19:30:01.123Z"),
        ];
        if let Some(signature) = signature {
            pairs.push((HMAC_HEADER, signature));
        }
        headers(&pairs)
    }

    fn verify(
        v: &ShopifyVerifier,
        headers: &HeaderMap,
        body: &str,
    ) -> Result<Verified, VerifyError> {
        publish(v, "/webhooks/shopify", headers, body, 0)
    }

    #[test]
    fn known_answer_vector() {
        // HMAC-SHA256("hush", "{\"id\":1}") in base64, computed independently with
        // `printf '{"id":1}' | openssl dgst -sha256 -hmac hush -binary | base64`.
        assert_eq!(
            sign("hush", br#"{"id":1}"#),
            "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
        );
        let v = verifier(&[("k", "hush")]);
        let h = request_headers(Some("VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="));
        assert_eq!(
            verify(&v, &h, r#"{"id":1}"#).unwrap().record_key(),
            "shopify:example-store.myshopify.com:1"
        );
    }

    #[test]
    fn accepts_a_correct_signature_and_extracts_the_key_and_headers() {
        let v = verifier(&[("current", "shpss_current")]);
        let h = request_headers(Some(&sign("shpss_current", BODY.as_bytes())));
        let verified = verify(&v, &h, BODY).unwrap();
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
            verified.extra_headers(),
            &[
                (ob::TRIGGERED_AT, "2025-04-22T19:30:01.123Z".to_owned()),
                (
                    ob::SHOPIFY_EVENT_ID,
                    "7b8c9d0a-1234-5678-90ab-cdef12345678".to_owned()
                ),
            ]
        );
        assert_eq!(
            verified.content_type(),
            "application/octet-stream",
            "absent, so not assumed"
        );
        let mut json = h.clone();
        json.insert("content-type", "application/json".parse().unwrap());
        assert_eq!(
            verify(&v, &json, BODY).unwrap().content_type(),
            "application/json"
        );
    }

    #[test]
    fn only_the_listed_shops_deliveries_are_taken() {
        let v = ShopifyVerifier::new(&HmacConfig {
            secrets: vec![secret("app", "shpss_app")],
            shops: vec!["Example-Store.myshopify.com".into()],
            ..HmacConfig::default()
        })
        .unwrap();
        let h = request_headers(Some(&sign("shpss_app", BODY.as_bytes())));
        assert!(verify(&v, &h, BODY).is_ok(), "a listed shop, in any case");
        // The same signed body with another shop's header: the signature does not cover it.
        let mut other = h.clone();
        other.insert(
            SHOP_DOMAIN_HEADER,
            "attacker.myshopify.com".parse().unwrap(),
        );
        assert_eq!(
            verify(&v, &other, BODY).unwrap_err(),
            VerifyError::NotAllowed
        );
        let mut none = h.clone();
        none.remove(SHOP_DOMAIN_HEADER);
        assert_eq!(
            verify(&v, &none, BODY).unwrap_err(),
            VerifyError::NotAllowed
        );
    }

    #[test]
    fn rejects_a_tampered_body() {
        let v = verifier(&[("current", "shpss_current")]);
        let h = request_headers(Some(&sign("shpss_current", BODY.as_bytes())));
        let tampered = BODY.replace("409.94", "409.95");
        assert_eq!(
            verify(&v, &h, &tampered).unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn rejects_a_wrong_secret() {
        let v = verifier(&[("current", "shpss_current")]);
        let h = request_headers(Some(&sign("shpss_attacker", BODY.as_bytes())));
        assert_eq!(verify(&v, &h, BODY).unwrap_err(), VerifyError::Mismatch);
    }

    #[test]
    fn accepts_either_secret_during_a_rotation() {
        let v = verifier(&[("new", "shpss_new"), ("old", "shpss_old")]);
        let by_old = verify(
            &v,
            &request_headers(Some(&sign("shpss_old", BODY.as_bytes()))),
            BODY,
        );
        assert_eq!(by_old.unwrap().secret_id(), "old");
        let by_new = verify(
            &v,
            &request_headers(Some(&sign("shpss_new", BODY.as_bytes()))),
            BODY,
        );
        assert_eq!(by_new.unwrap().secret_id(), "new");
        let retired = verifier(&[("new", "shpss_new")]);
        let after = verify(
            &retired,
            &request_headers(Some(&sign("shpss_old", BODY.as_bytes()))),
            BODY,
        );
        assert_eq!(after.unwrap_err(), VerifyError::Mismatch);
    }

    #[test]
    fn rejects_a_missing_or_malformed_header() {
        let v = verifier(&[("current", "shpss_current")]);
        assert_eq!(
            verify(&v, &request_headers(None), BODY).unwrap_err(),
            VerifyError::Missing
        );
        assert_eq!(
            verify(&v, &request_headers(Some("not base64!")), BODY).unwrap_err(),
            VerifyError::Malformed
        );
        assert_eq!(
            verify(&v, &request_headers(Some("c2hvcnQ=")), BODY).unwrap_err(),
            VerifyError::Malformed
        );
    }

    #[test]
    fn a_body_without_an_order_id_is_keyed_by_its_event() {
        let v = verifier(&[("current", "s")]);
        let body = "not json";
        let verified = verify(
            &v,
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
