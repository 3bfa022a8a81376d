//! TikTok Shop: the `Authorization` header (no scheme word) is the lowercase hex
//! HMAC-SHA256, keyed with the app secret, of the app key followed by the raw body. No
//! timestamp is signed; `tts_notification_id` deduplicates downstream.
//!
//! Seed 002 describes an `x-tts-signature` HMAC of the body with a shop secret; the published
//! client libraries (EcomPHP `Webhook::verify`) follow the form above, so that is the preset,
//! and a `scheme` change in configuration gives the seed's variant
//! (`header = "x-tts-signature"`, `signed = "{body}"`).
//!
//! Not to be confused with TikTok for Developers (`TikTok-Signature: t=…,s=…`), another
//! product.

use orderbridge_schemas::Source;

use super::extract::{Extraction, Field};
use super::scheme::Preset;
use super::{hmac_source, SharedVerifier};
use crate::config::HmacConfig;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "authorization";

/// The TikTok Shop verifier for `config` (`app_key` is required).
///
/// # Errors
/// When no secret or no app key is configured.
pub fn verifier(config: &HmacConfig) -> Result<SharedVerifier, String> {
    hmac_source(
        Source::TiktokShop,
        Preset::TiktokShop,
        config,
        Extraction {
            event_id: vec![Field::json("/tts_notification_id")],
            event_type: vec![Field::json("/type")],
            order_id: vec![Field::json("/data/order_id")],
            account: vec![Field::json("/shop_id")],
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::NamedSecret;
    use crate::verify::scheme::{Inputs, SchemePatch};
    use crate::verify::testing::{headers, negative_suite, publish, secret, sign};

    const BODY: &str = r#"{"type":1,"tts_notification_id":"7392922053974394642","shop_id":"7493999789368181917","timestamp":1721298801,"data":{"is_on_hold_order":false,"order_id":"577042645727872816","order_status":"AWAITING_SHIPMENT","update_time":1721298799}}"#;
    const APP_KEY: &str = "6abc123def";

    fn config(secrets: &[NamedSecret]) -> HmacConfig {
        HmacConfig {
            secrets: secrets.to_vec(),
            app_key: Some(APP_KEY.into()),
            ..HmacConfig::default()
        }
    }

    fn build(secrets: &[NamedSecret]) -> SharedVerifier {
        verifier(&config(secrets)).unwrap()
    }

    #[test]
    fn known_answer() {
        // printf '%s' "6abc123def$BODY" | openssl dgst -sha256 -hmac tts_app_secret
        let h = headers(&[(
            SIGNATURE_HEADER,
            "4d02ac2f66b33534c9930221cfb94750cb76fad92cb1a3a0c48d38c79fc8b568",
        )]);
        let v = build(&[secret("app", "tts_app_secret")]);
        let verified = publish(v.as_ref(), "/webhooks/tiktok-shop", &h, BODY, 0).unwrap();
        assert_eq!(
            verified.record_key(),
            "tiktok-shop:7493999789368181917:577042645727872816"
        );
        assert_eq!(verified.event_id(), "7392922053974394642");
        assert_eq!(verified.event_type(), "1");
    }

    #[test]
    fn negative_cases() {
        let signed = |secret_value: &str, body: &str| {
            let inputs = Inputs {
                app_key: Some(APP_KEY.into()),
                url: None,
            };
            let value = sign(
                Preset::TiktokShop.scheme(),
                inputs,
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
            "/webhooks/tiktok-shop",
            BODY,
            0,
        );
        assert!(
            verifier(&HmacConfig {
                secrets: vec![secret("a", "s")],
                ..HmacConfig::default()
            })
            .is_err(),
            "the app key is part of the signed content"
        );
    }

    #[test]
    fn the_seeds_variant_is_configuration() {
        let patch = SchemePatch {
            header: Some("x-tts-signature".into()),
            signed: Some("{body}".parse().unwrap()),
            ..SchemePatch::default()
        };
        let v = verifier(&HmacConfig {
            scheme: patch.clone(),
            ..config(&[secret("shop", "shop-secret")])
        })
        .unwrap();
        let value = sign(
            Preset::TiktokShop.scheme().patched(&patch),
            Inputs::default(),
            "shop-secret",
            &headers(&[]),
            "/",
            BODY,
            None,
        );
        let h = headers(&[("x-tts-signature", &value)]);
        assert!(publish(v.as_ref(), "/", &h, BODY, 0).is_ok());
    }
}
