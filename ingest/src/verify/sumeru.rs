//! Sumeru, the attribution platform: `X-Sumeru-Signature: sha256=<hex>`, the lowercase hex
//! HMAC-SHA256 of the raw body keyed with the subscription's secret (`wsec_…`), as seed 000's
//! receiver computes it. No timestamp is signed; the event `id` deduplicates downstream.
//!
//! Keyed by the order the event is about (`data.order_id`, else `data.shopify_order_id`, else
//! `data.id`).

use orderbridge_schemas::Source;

use super::extract::{Extraction, Field};
use super::scheme::Preset;
use super::{hmac_source, SharedVerifier};
use crate::config::HmacConfig;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-sumeru-signature";

/// The Sumeru verifier for `config`.
///
/// # Errors
/// When no secret is configured or the scheme changes cannot be evaluated.
pub fn verifier(config: &HmacConfig) -> Result<SharedVerifier, String> {
    hmac_source(
        Source::Sumeru,
        Preset::Sumeru,
        config,
        Extraction {
            event_id: vec![Field::json("/id")],
            event_type: vec![Field::json("/type"), Field::json("/event")],
            order_id: vec![
                Field::json("/data/order_id"),
                Field::json("/data/shopify_order_id"),
                Field::json("/data/id"),
            ],
            account: Vec::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::NamedSecret;
    use crate::verify::scheme::Inputs;
    use crate::verify::testing::{headers, negative_suite, publish, secret, sign};

    const BODY: &str = r#"{"id":"evt_01J","type":"order.attributed","data":{"order_id":"5001","shopify_order_id":"450789469","total":"409.94","currency":"USD"}}"#;

    fn build(secrets: &[NamedSecret]) -> SharedVerifier {
        verifier(&HmacConfig {
            secrets: secrets.to_vec(),
            ..HmacConfig::default()
        })
        .unwrap()
    }

    fn signed(secret_value: &str, body: &str) -> axum::http::HeaderMap {
        let none = headers(&[]);
        let value = sign(
            Preset::Sumeru.scheme(),
            Inputs::default(),
            secret_value,
            &none,
            "/",
            body,
            None,
        );
        headers(&[(SIGNATURE_HEADER, &value)])
    }

    #[test]
    fn known_answer() {
        // printf '%s' "$BODY" | openssl dgst -sha256 -hmac 'wsec_xY7aB3cKz9'
        let h = headers(&[(
            SIGNATURE_HEADER,
            "sha256=34330d87bee85c73a1353281f340d7ad1d392ba3ed5f31cb889a39024416efa6",
        )]);
        let v = build(&[secret("whk_abc123", "wsec_xY7aB3cKz9")]);
        let verified = publish(v.as_ref(), "/webhooks/sumeru", &h, BODY, 0).unwrap();
        assert_eq!(verified.secret_id(), "whk_abc123");
        assert_eq!(verified.event_id(), "evt_01J");
        assert_eq!(verified.event_type(), "order.attributed");
        assert_eq!(verified.record_key(), "sumeru:-:5001");
    }

    #[test]
    fn negative_cases() {
        negative_suite(
            &build,
            &signed,
            SIGNATURE_HEADER,
            "/webhooks/sumeru",
            BODY,
            0,
        );
        // The seed's format has the prefix; a bare hex MAC is not the contract.
        let bare = signed("secret-new", BODY);
        let bare_value = bare.get(SIGNATURE_HEADER).unwrap().to_str().unwrap();
        let bare = headers(&[(SIGNATURE_HEADER, bare_value.trim_start_matches("sha256="))]);
        let v = build(&[secret("new", "secret-new")]);
        assert_eq!(
            publish(v.as_ref(), "/webhooks/sumeru", &bare, BODY, 0).unwrap_err(),
            crate::verify::VerifyError::Malformed
        );
    }
}
