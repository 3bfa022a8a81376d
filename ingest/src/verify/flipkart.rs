//! Flipkart Marketplace order-management notifications, in one of two modes.
//!
//! `fklogin` (the documented scheme): `X_Date: <HTTP-date>` and
//! `X_Authorization: FKLOGIN base64(<app id>:<fk_signature>)`, where `fk_signature` is the
//! plain SHA-1 (not an HMAC) of `X_Date + notification URL + method + app secret`. Flipkart
//! does not say whether the digest is hex or base64, so either is accepted. The body is not
//! covered, so a captured header pair could carry any body until its date is too old: the
//! `X_Date` window (default 5 minutes) is the only defence, and the processor deduplicates.
//! The header names have underscores, which nginx drops unless `underscores_in_headers on`.
//!
//! `seed` (seed 002's variant): `Authorization: Bearer <static token>` and
//! `X-Flipkart-Signature: <hex HMAC-SHA256 of the raw body>`; both must hold.
//!
//! Bodies are `{shipmentId, eventType, timestamp, attributes: {orderItems: [{orderId, …}]}}`;
//! keyed by the first order item's `orderId`. Flipkart gives no event id.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use orderbridge_schemas::Source;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::credentials::CredentialCheck;
use super::extract::{Extraction, Field};
use super::scheme::{check_window, HmacCheck, Inputs, Preset, SchemePatch, DEFAULT_TOLERANCE_SECS};
use super::{header, Check, Checked, SharedVerifier, VerifyError, WebhookRequest};
use crate::config::{FlipkartConfig, NamedSecret};

/// Header carrying the request date (signed).
pub const DATE_HEADER: &str = "x_date";
/// Header carrying `FKLOGIN base64(app_id:signature)`.
pub const AUTHORIZATION_HEADER: &str = "x_authorization";
/// Seed mode's body signature header.
pub const SEED_SIGNATURE_HEADER: &str = "x-flipkart-signature";

/// The Flipkart verifier for `config`.
///
/// # Errors
/// When a secret, token or app id is missing or empty.
pub fn verifier(config: &FlipkartConfig) -> Result<SharedVerifier, String> {
    let extraction = Extraction {
        event_id: Vec::new(),
        event_type: vec![Field::json("/eventType")],
        order_id: vec![Field::json("/attributes/orderItems/0/orderId")],
        account: vec![Field::json("/sellerId")],
    };
    let check: Box<dyn Check> = match config {
        FlipkartConfig::Fklogin {
            app_id,
            secrets,
            url,
            tolerance_secs,
        } => {
            if app_id.is_empty() || url.is_empty() {
                return Err("flipkart: app_id and url must be set".into());
            }
            if secrets.is_empty() || secrets.iter().any(|s| s.secret.expose().is_empty()) {
                return Err("flipkart: give at least one non-empty app secret".into());
            }
            Box::new(FkLogin {
                app_id: app_id.clone(),
                secrets: secrets.clone(),
                url: url.clone(),
                tolerance: tolerance_secs.unwrap_or(DEFAULT_TOLERANCE_SECS),
            })
        }
        FlipkartConfig::Seed { tokens, secrets } => {
            let scheme = Preset::Github.scheme().patched(&SchemePatch {
                header: Some(SEED_SIGNATURE_HEADER.into()),
                format: Some(super::scheme::SignatureFormat::Single { prefix: None }),
                ..SchemePatch::default()
            });
            Box::new(Seed {
                token: CredentialCheck::new(tokens.clone())?,
                signature: HmacCheck::new(scheme, Inputs::default(), secrets)?,
            })
        }
    };
    Ok(Arc::new(Checked {
        source: Source::Flipkart,
        check,
        extraction,
    }))
}

struct FkLogin {
    app_id: String,
    secrets: Vec<NamedSecret>,
    url: String,
    tolerance: u64,
}

impl FkLogin {
    fn digest(&self, date: &str, method: &str, secret: &str) -> [u8; 20] {
        let mut sha = Sha1::new();
        sha.update(date.as_bytes());
        sha.update(self.url.as_bytes());
        sha.update(method.as_bytes());
        sha.update(secret.as_bytes());
        sha.finalize().into()
    }

    /// The `X_Authorization` value a sender with `secret` would send.
    #[cfg(test)]
    fn authorization(&self, date: &str, method: &str, secret: &str) -> String {
        let signature = hex::encode(self.digest(date, method, secret));
        format!(
            "FKLOGIN {}",
            BASE64.encode(format!("{}:{signature}", self.app_id))
        )
    }
}

impl Check for FkLogin {
    fn check(&self, request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
        let authorization =
            header(request.headers, AUTHORIZATION_HEADER).ok_or(VerifyError::Missing)?;
        let date = header(request.headers, DATE_HEADER).ok_or(VerifyError::Missing)?;
        let encoded = authorization
            .strip_prefix("FKLOGIN ")
            .ok_or(VerifyError::Malformed)?;
        let decoded = BASE64
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(VerifyError::Malformed)?;
        let (app_id, signature) = decoded.split_once(':').ok_or(VerifyError::Malformed)?;
        let presented = hex::decode(signature)
            .ok()
            .or_else(|| BASE64.decode(signature).ok())
            .filter(|bytes| bytes.len() == 20)
            .ok_or(VerifyError::Malformed)?;
        let app_matches = app_id.as_bytes().ct_eq(self.app_id.as_bytes());
        let mut matched = None;
        for secret in &self.secrets {
            let expected = self.digest(date, request.method.as_str(), secret.secret.expose());
            if bool::from(expected.ct_eq(presented.as_slice()) & app_matches) && matched.is_none() {
                matched = Some(secret.id.clone());
            }
        }
        let matched = matched.ok_or(VerifyError::Mismatch)?;
        let at = chrono::DateTime::parse_from_rfc2822(date)
            .map_err(|_| VerifyError::Malformed)?
            .timestamp();
        check_window(request.now, at, self.tolerance)?;
        Ok(matched)
    }
}

struct Seed {
    token: CredentialCheck,
    signature: HmacCheck,
}

impl Check for Seed {
    fn check(&self, request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
        // Both must hold; check both regardless, so timing does not tell which failed.
        let token = self.token.check(request);
        let signature = self.signature.verify(request);
        let _ = token?;
        Ok(signature?.secret_id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::credentials::Credential;
    use crate::verify::testing::{headers, negative_suite, publish, secret, sign};
    use orderbridge_runtime::Secret;

    const BODY: &str = r#"{"eventType":"shipment_created","source":"flipkart","version":"v3","locationId":"LOC1234","timestamp":"2025-03-28T18:03:01+05:30","shipmentId":"d133588f-b0ac-443b-99b4-7ac8648a0f89","attributes":{"orderItems":[{"orderItemId":"1883380307363600","orderId":"OD108833803073636000","quantity":1,"sku":"LKA041150"}]}}"#;
    const URL: &str = "https://orders.example.com/webhooks/flipkart";
    const DATE: &str = "Fri, 28 Mar 2025 12:33:01 GMT";
    const AT: i64 = 1_743_165_181;

    fn fklogin(secrets: &[NamedSecret]) -> SharedVerifier {
        verifier(&FlipkartConfig::Fklogin {
            app_id: "fk-app-1".into(),
            secrets: secrets.to_vec(),
            url: URL.into(),
            tolerance_secs: None,
        })
        .unwrap()
    }

    fn fk(secret_value: &str) -> String {
        FkLogin {
            app_id: "fk-app-1".into(),
            secrets: Vec::new(),
            url: URL.into(),
            tolerance: 300,
        }
        .authorization(DATE, "POST", secret_value)
    }

    #[test]
    fn fklogin_known_answer() {
        // d=$(printf '%s' "${DATE}${URL}POSTfk-secret" | sha1sum | cut -c1-40)
        //   = 742600d4d1bcadfd9df27bd678e707b1ef2806e9; printf 'fk-app-1:%s' "$d" | base64
        let expected =
            "FKLOGIN ZmstYXBwLTE6NzQyNjAwZDRkMWJjYWRmZDlkZjI3YmQ2NzhlNzA3YjFlZjI4MDZlOQ==";
        assert_eq!(fk("fk-secret"), expected);
        let h = headers(&[("X_Date", DATE), ("X_Authorization", expected)]);
        let v = fklogin(&[secret("fk", "fk-secret")]);
        let verified = publish(v.as_ref(), "/webhooks/flipkart", &h, BODY, AT + 60).unwrap();
        assert_eq!(verified.record_key(), "flipkart:-:OD108833803073636000");
        assert_eq!(verified.event_type(), "shipment_created");
        assert_eq!(
            publish(v.as_ref(), "/", &h, BODY, AT + 301).unwrap_err(),
            VerifyError::Expired { skew_secs: 301 }
        );
    }

    #[test]
    fn fklogin_negative_cases() {
        let signed =
            |s: &str, _body: &str| headers(&[("X_Date", DATE), ("X_Authorization", &fk(s))]);
        // The body is not signed, so "tampered body" cannot be detected: the suite's
        // tampered case is expected to pass here, which is why the window matters.
        let v = fklogin(&[secret("fk", "fk-secret")]);
        assert!(publish(v.as_ref(), "/", &signed("fk-secret", BODY), "{}", AT).is_ok());
        for (name, h) in [
            ("wrong secret", signed("other", BODY)),
            ("no date", headers(&[("X_Authorization", &fk("fk-secret"))])),
            (
                "other date",
                headers(&[
                    ("X_Date", "Fri, 28 Mar 2025 12:33:02 GMT"),
                    ("X_Authorization", &fk("fk-secret")),
                ]),
            ),
        ] {
            assert!(publish(v.as_ref(), "/", &h, BODY, AT).is_err(), "{name}");
        }
        let rotating = fklogin(&[secret("new", "n"), secret("old", "fk-secret")]);
        assert_eq!(
            publish(rotating.as_ref(), "/", &signed("fk-secret", BODY), BODY, AT)
                .unwrap()
                .secret_id(),
            "old"
        );
        assert_eq!(
            publish(v.as_ref(), "/", &headers(&[("X_Date", DATE)]), BODY, AT).unwrap_err(),
            VerifyError::Missing
        );
    }

    #[test]
    fn seed_mode_needs_token_and_body_signature() {
        let build = |secrets: &[NamedSecret]| {
            verifier(&FlipkartConfig::Seed {
                tokens: vec![Credential::Header {
                    id: "token".into(),
                    header: "authorization".into(),
                    value: Secret::new("Bearer static-token"),
                }],
                secrets: secrets.to_vec(),
            })
            .unwrap()
        };
        let signed = |s: &str, body: &str| {
            let mut scheme = Preset::Github.scheme();
            scheme.format = crate::verify::scheme::SignatureFormat::Single { prefix: None };
            let value = sign(scheme, Inputs::default(), s, &headers(&[]), "/", body, None);
            headers(&[
                ("authorization", "Bearer static-token"),
                (SEED_SIGNATURE_HEADER, &value),
            ])
        };
        negative_suite(
            &build,
            &signed,
            SEED_SIGNATURE_HEADER,
            "/webhooks/flipkart",
            BODY,
            0,
        );
        let mut no_token = signed("secret-new", BODY);
        no_token.insert("authorization", "Bearer wrong".parse().unwrap());
        assert_eq!(
            publish(
                build(&[secret("new", "secret-new")]).as_ref(),
                "/",
                &no_token,
                BODY,
                0
            )
            .unwrap_err(),
            VerifyError::Mismatch
        );
    }
}
