//! ZephyrCart, the commerce platform. Seed 001 names only the header,
//! `x-zephyrcart-signature`, and says to investigate clock skew first when verification fails,
//! which means a signed timestamp. The preset is therefore the common timestamped form
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with a replay window
//! (`tolerance_secs`, default 300). Where the real contract differs, `scheme` in the
//! configuration changes header, format, encoding or signed content without code.
//!
//! Events are `{id, type, data: {id, …}}`; keyed by `data.id`, the ZephyrCart order id.

use orderbridge_schemas::Source;

use super::extract::{Extraction, Field};
use super::scheme::Preset;
use super::{hmac_source, SharedVerifier};
use crate::config::HmacConfig;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-zephyrcart-signature";

/// The ZephyrCart verifier for `config`.
///
/// # Errors
/// When no secret is configured or the scheme changes cannot be evaluated.
pub fn verifier(config: &HmacConfig) -> Result<SharedVerifier, String> {
    hmac_source(
        Source::Zephyrcart,
        Preset::Zephyrcart,
        config,
        Extraction {
            event_id: vec![Field::json("/id")],
            event_type: vec![Field::json("/type")],
            order_id: vec![Field::json("/data/id"), Field::json("/data/order_id")],
            account: Vec::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::NamedSecret;
    use crate::verify::scheme::{Encoding, Inputs, SchemePatch, SignatureFormat};
    use crate::verify::testing::{headers, negative_suite, publish, secret, sign};
    use crate::verify::VerifyError;

    const BODY: &str =
        r#"{"id":"evt_zc_1","type":"order.created","data":{"id":"zc_ord_1001","currency":"EUR"}}"#;
    const AT: i64 = 1_746_180_000;

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
            Preset::Zephyrcart.scheme(),
            Inputs::default(),
            secret_value,
            &none,
            "/",
            body,
            Some(AT),
        );
        headers(&[(SIGNATURE_HEADER, &value)])
    }

    #[test]
    fn known_answer() {
        // printf '%s' "1746180000.$BODY" | openssl dgst -sha256 -hmac zc_secret
        let h = headers(&[(
            SIGNATURE_HEADER,
            "t=1746180000,v1=bd478358f45c695fbfe871f00c3462ef0187c52fce1e563d975007628fabdfb9",
        )]);
        let v = build(&[secret("zc-1", "zc_secret")]);
        let verified = publish(v.as_ref(), "/webhooks/zephyrcart", &h, BODY, AT + 10).unwrap();
        assert_eq!(verified.record_key(), "zephyrcart:-:zc_ord_1001");
        assert_eq!(verified.event_type(), "order.created");
        assert_eq!(verified.event_id(), "evt_zc_1");
    }

    #[test]
    fn negative_cases_and_the_replay_window() {
        negative_suite(
            &build,
            &signed,
            SIGNATURE_HEADER,
            "/webhooks/zephyrcart",
            BODY,
            AT,
        );
        let v = build(&[secret("new", "secret-new")]);
        let h = signed("secret-new", BODY);
        assert_eq!(
            publish(v.as_ref(), "/", &h, BODY, AT + 301).unwrap_err(),
            VerifyError::Expired { skew_secs: 301 }
        );
        assert_eq!(
            publish(v.as_ref(), "/", &h, BODY, AT - 301).unwrap_err(),
            VerifyError::Expired { skew_secs: -301 },
            "from the future too"
        );
        let lenient = verifier(&HmacConfig {
            secrets: vec![secret("new", "secret-new")],
            tolerance_secs: Some(900),
            ..HmacConfig::default()
        })
        .unwrap();
        assert!(publish(lenient.as_ref(), "/", &h, BODY, AT + 600).is_ok());
    }

    #[test]
    fn configuration_can_match_another_contract() {
        // Say the real contract turns out to be a bare base64 MAC of the body.
        let patch = SchemePatch {
            format: Some(SignatureFormat::Single { prefix: None }),
            encoding: Some(Encoding::Base64),
            signed: Some("{body}".parse().unwrap()),
            no_timestamp: true,
            ..SchemePatch::default()
        };
        let v = verifier(&HmacConfig {
            secrets: vec![secret("k", "zc_secret")],
            scheme: patch.clone(),
            ..HmacConfig::default()
        })
        .unwrap();
        let none = headers(&[]);
        let value = sign(
            Preset::Zephyrcart.scheme().patched(&patch),
            Inputs::default(),
            "zc_secret",
            &none,
            "/",
            BODY,
            None,
        );
        let h = headers(&[(SIGNATURE_HEADER, &value)]);
        assert!(publish(v.as_ref(), "/", &h, BODY, 0).is_ok());
    }
}
