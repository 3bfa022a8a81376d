//! EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<lowercase hex>`, the HMAC-SHA256 of the raw
//! body keyed with the webhook secret after NFKD normalization (as the official
//! `validate_webhook` does). No timestamp is signed; the event `id` deduplicates downstream.
//!
//! A tracker event is about a parcel, not an order: it is keyed by the tracker's `reference`
//! (the merchant's, set when the label was bought) or else its `shipment_id`, as the
//! processor keys its canonical event, so both land in the same partition; an event with
//! neither is keyed by its event id.

use orderbridge_schemas::Source;

use super::extract::{Extraction, Field};
use super::scheme::Preset;
use super::{hmac_source, SharedVerifier};
use crate::config::HmacConfig;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-hmac-signature";

/// The EasyPost verifier for `config`.
///
/// # Errors
/// When no secret is configured.
pub fn verifier(config: &HmacConfig) -> Result<SharedVerifier, String> {
    hmac_source(
        Source::Easypost,
        Preset::Easypost,
        config,
        Extraction {
            event_id: vec![Field::json("/id")],
            event_type: vec![Field::json("/description")],
            order_id: vec![
                Field::json("/result/reference"),
                Field::json("/result/shipment_id"),
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

    const BODY: &str = r#"{"id":"evt_4a1b2c3d","object":"Event","description":"tracker.updated","result":{"id":"trk_9f8e7d","object":"Tracker","status":"delivered","shipment_id":"shp_123"}}"#;

    fn build(secrets: &[NamedSecret]) -> SharedVerifier {
        verifier(&HmacConfig {
            secrets: secrets.to_vec(),
            ..HmacConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn known_answer_with_a_secret_that_nfkd_changes() {
        // The secret "sécret" typed with a precomposed é (U+00E9) signs as its NFKD form
        // "se\u{301}cret": printf '%s' "$BODY" | openssl dgst -sha256 -mac HMAC \
        //   -macopt hexkey:$(printf 'se\xcc\x81cret' | xxd -p)
        let h = headers(&[(
            SIGNATURE_HEADER,
            "hmac-sha256-hex=6f78a9c5b35fe289a3b063e562db624a89dc351174cdcfebc2fece64a125ac7a",
        )]);
        let v = build(&[secret("ep", "s\u{e9}cret")]);
        let verified = publish(v.as_ref(), "/webhooks/easypost", &h, BODY, 0).unwrap();
        assert_eq!(verified.event_id(), "evt_4a1b2c3d");
        assert_eq!(verified.event_type(), "tracker.updated");
        assert_eq!(verified.record_key(), "easypost:-:shp_123");
    }

    #[test]
    fn negative_cases() {
        let signed = |secret_value: &str, body: &str| {
            let value = sign(
                Preset::Easypost.scheme(),
                Inputs::default(),
                secret_value,
                &headers(&[]),
                "/",
                body,
                None,
            );
            headers(&[(SIGNATURE_HEADER, &value)])
        };
        negative_suite(
            &build,
            &signed,
            SIGNATURE_HEADER,
            "/webhooks/easypost",
            BODY,
            0,
        );
    }
}
