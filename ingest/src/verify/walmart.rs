//! Walmart Marketplace. A notification subscription authenticates the way the seller chose
//! when creating it, and this account must be configured with exactly that one:
//! - `BASIC_AUTH`: the header named at subscription carries `base64(user:password)`
//!   (`credentials`, kind `basic`);
//! - a static header token (`credentials`, kind `header`);
//! - `HMAC`: that header carries an HMAC-SHA256 of the body keyed with the client secret;
//!   Walmart does not say hex or base64, so either is accepted (`hmac`);
//! - performance webhooks sign `METHOD\nPATH_AND_QUERY\nWM_SEC.TIMESTAMP\nsha256hex(body)`
//!   into `WM_SEC.SIGNATURE` (base64), with a replay window on `WM_SEC.TIMESTAMP`; the optional
//!   `WM_SEC.KEY_ID` is recorded, every active secret is tried (`wm_sec`).
//!
//! Seed 002's `WM_SEC.AUTH_SIGNATURE` is the signature sellers send on their own API calls,
//! not a webhook verification, so it is not accepted here. Header names contain dots; read
//! case-insensitively, they survive most proxies, but check yours passes them.
//!
//! Bodies are `{source: {eventType, eventTime, eventId}, payload: {purchaseOrderId, …}}`.

use std::sync::Arc;

use orderbridge_schemas::Source;

use super::credentials::CredentialCheck;
use super::extract::{Extraction, Field};
use super::scheme::{HmacCheck, Inputs, Preset, SchemePatch};
use super::{Check, Checked, SharedVerifier};
use crate::config::WalmartConfig;

/// Header carrying the performance-webhook signature.
pub const WM_SEC_SIGNATURE: &str = "wm_sec.signature";
/// Header carrying its unix time.
pub const WM_SEC_TIMESTAMP: &str = "wm_sec.timestamp";

/// The Walmart verifier for `config`.
///
/// # Errors
/// When not exactly one way is configured, or it has no secret.
pub fn verifier(config: &WalmartConfig) -> Result<SharedVerifier, String> {
    let ways = usize::from(!config.credentials.is_empty())
        + usize::from(config.hmac.is_some())
        + usize::from(config.wm_sec.is_some());
    if ways != 1 {
        return Err(
            "configure exactly one of `credentials`, `hmac` or `wm_sec`, as the subscription does"
                .into(),
        );
    }
    let check: Box<dyn Check> = if let Some(hmac) = &config.hmac {
        let scheme = Preset::Github.scheme().patched(&SchemePatch {
            header: Some(hmac.header.clone()),
            format: Some(super::scheme::SignatureFormat::Single { prefix: None }),
            encoding: Some(hmac.encoding),
            ..SchemePatch::default()
        });
        Box::new(HmacCheck::new(scheme, Inputs::default(), &hmac.secrets)?)
    } else if let Some(wm_sec) = &config.wm_sec {
        let scheme = Preset::WalmartWmSec
            .scheme()
            .with_tolerance(wm_sec.tolerance_secs);
        Box::new(HmacCheck::new(scheme, Inputs::default(), &wm_sec.secrets)?)
    } else {
        Box::new(CredentialCheck::new(config.credentials.clone())?)
    };
    Ok(Arc::new(Checked {
        source: Source::Walmart,
        check,
        extraction: Extraction {
            event_id: vec![Field::json("/source/eventId")],
            event_type: vec![Field::json("/source/eventType")],
            order_id: vec![Field::json("/payload/purchaseOrderId")],
            account: vec![Field::json("/payload/partnerId")],
        },
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::{NamedSecret, WalmartHmac, WalmartWmSec};
    use crate::verify::credentials::Credential;
    use crate::verify::scheme::Encoding;
    use crate::verify::testing::{headers, negative_suite, publish, secret, sign};
    use crate::verify::VerifyError;
    use orderbridge_runtime::Secret;

    const BODY: &str = r#"{"source":{"eventType":"PO_CREATED","eventTime":"2025-05-04T13:25:28.591Z","eventId":"9b1f2c3d-0001"},"payload":{"partnerId":"10001234567","purchaseOrderId":"1796277083022","customerOrderId":"5281956426648"}}"#;
    const PATH: &str = "/webhooks/walmart?seller=1";
    const AT: i64 = 1_700_000_000;

    fn wm_sec(secrets: &[NamedSecret]) -> SharedVerifier {
        verifier(&WalmartConfig {
            wm_sec: Some(WalmartWmSec {
                secrets: secrets.to_vec(),
                tolerance_secs: None,
            }),
            ..WalmartConfig::default()
        })
        .unwrap()
    }

    fn wm_sec_signed(secret_value: &str, body: &str) -> axum::http::HeaderMap {
        let h = headers(&[(WM_SEC_TIMESTAMP, "1700000000")]);
        let value = sign(
            Preset::WalmartWmSec.scheme(),
            Inputs::default(),
            secret_value,
            &h,
            PATH,
            body,
            Some(AT),
        );
        headers(&[
            (WM_SEC_TIMESTAMP, "1700000000"),
            (WM_SEC_SIGNATURE, &value),
            ("WM_SEC.KEY_ID", "k1"),
        ])
    }

    #[test]
    fn wm_sec_known_answer_and_window() {
        // printf 'POST\n/webhooks/x\n1700000000\n%s' "$(printf '{"a":1}' | sha256sum | cut -c1-64)" \
        //   | openssl dgst -sha256 -hmac walmart-secret -binary | base64
        let h = headers(&[
            ("WM_SEC.TIMESTAMP", "1700000000"),
            (
                "WM_SEC.SIGNATURE",
                "Yk+vf5BPYpJpWXqUhiWAlims6JyDwNoHqVA3KO/sQaQ=",
            ),
        ]);
        let v = wm_sec(&[secret("k1", "walmart-secret")]);
        assert!(publish(v.as_ref(), "/webhooks/x", &h, r#"{"a":1}"#, AT).is_ok());
        assert_eq!(
            publish(v.as_ref(), "/webhooks/y", &h, r#"{"a":1}"#, AT).unwrap_err(),
            VerifyError::Mismatch,
            "the path is signed"
        );
        assert_eq!(
            publish(v.as_ref(), "/webhooks/x", &h, r#"{"a":1}"#, AT + 301).unwrap_err(),
            VerifyError::Expired { skew_secs: 301 }
        );
    }

    #[test]
    fn wm_sec_negative_cases_and_keys() {
        negative_suite(&wm_sec, &wm_sec_signed, WM_SEC_SIGNATURE, PATH, BODY, AT);
        let v = wm_sec(&[secret("k", "s")]);
        let verified = publish(v.as_ref(), PATH, &wm_sec_signed("s", BODY), BODY, AT).unwrap();
        assert_eq!(verified.record_key(), "walmart:10001234567:1796277083022");
        assert_eq!(verified.event_id(), "9b1f2c3d-0001");
        assert_eq!(verified.event_type(), "PO_CREATED");
    }

    #[test]
    fn subscription_hmac_in_either_encoding() {
        let build = |secrets: &[NamedSecret]| {
            verifier(&WalmartConfig {
                hmac: Some(WalmartHmac {
                    header: "x-walmart-auth".into(),
                    secrets: secrets.to_vec(),
                    encoding: Encoding::HexOrBase64,
                }),
                ..WalmartConfig::default()
            })
            .unwrap()
        };
        let signed_as = |encoding: Encoding| {
            move |secret_value: &str, body: &str| {
                let mut scheme = Preset::Shopify.scheme();
                scheme.encoding = encoding;
                let value = sign(
                    scheme,
                    Inputs::default(),
                    secret_value,
                    &headers(&[]),
                    "/",
                    body,
                    None,
                );
                headers(&[("x-walmart-auth", &value)])
            }
        };
        negative_suite(
            &build,
            &signed_as(Encoding::Hex),
            "x-walmart-auth",
            PATH,
            BODY,
            0,
        );
        negative_suite(
            &build,
            &signed_as(Encoding::Base64),
            "x-walmart-auth",
            PATH,
            BODY,
            0,
        );
    }

    #[test]
    fn basic_auth_subscription() {
        let v = verifier(&WalmartConfig {
            credentials: vec![Credential::Basic {
                id: "sub-1".into(),
                header: "x-wm-auth".into(),
                username: "walmart".into(),
                password: Secret::new("pw"),
            }],
            ..WalmartConfig::default()
        })
        .unwrap();
        // printf 'walmart:pw' | base64
        let h = headers(&[("x-wm-auth", "d2FsbWFydDpwdw==")]);
        assert_eq!(
            publish(v.as_ref(), PATH, &h, BODY, 0).unwrap().secret_id(),
            "sub-1"
        );
        let h = headers(&[("x-wm-auth", "d2FsbWFydDp4eA==")]);
        assert_eq!(
            publish(v.as_ref(), PATH, &h, BODY, 0).unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn exactly_one_way_must_be_configured() {
        assert!(verifier(&WalmartConfig::default()).is_err());
    }
}
