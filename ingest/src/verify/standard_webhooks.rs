//! The generic receiver for any Standard Webhooks sender (BigCommerce, Svix-based platforms):
//! `webhook-id`, `webhook-timestamp` (unix seconds, checked against a replay window) and
//! `webhook-signature`, a space-separated list of `<version>,<base64>`. `v1` is HMAC-SHA256
//! of `id.timestamp.body` keyed with the base64 after `whsec_`; `v1a` is an Ed25519 signature
//! of the same content, verified with a `whpk_` public key. A delivery verifies when any
//! listed signature verifies under any active secret or key (rotation sends several).
//!
//! BigCommerce keys the HMAC with its raw client secret rather than base64: set
//! `key = "utf8"`. The payload shape is the sender's; `extract` says where the ids are
//! (defaults: `/type` or `/scope`, `/data/order_id`, `/data/id`).
//!
//! <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use orderbridge_schemas::Source;

use super::extract::{Extraction, Field};
use super::scheme::{check_window, HmacCheck, Inputs, Preset, DEFAULT_TOLERANCE_SECS};
use super::{header, verified, Accepted, SharedVerifier, Verifier, VerifyError, WebhookRequest};
use crate::config::{NamedSecret, StandardWebhooksConfig};

/// Header carrying the delivery id (stable across retries).
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the attempt's unix time.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Prefix of an Ed25519 public key.
const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// At most this many `v1a` signatures are tried.
const MAX_SIGNATURES: usize = 8;

/// The Standard Webhooks verifier for `config`.
///
/// # Errors
/// When there is no secret or key, or one is not in its form.
pub fn verifier(config: &StandardWebhooksConfig) -> Result<SharedVerifier, String> {
    let (public, symmetric): (Vec<&NamedSecret>, Vec<&NamedSecret>) = config
        .secrets
        .iter()
        .partition(|s| s.secret.expose().starts_with(PUBLIC_KEY_PREFIX));
    if public.is_empty() && symmetric.is_empty() {
        return Err("no secret is configured".into());
    }
    let mut scheme = Preset::StandardWebhooks
        .scheme()
        .with_tolerance(config.tolerance_secs);
    if let Some(key) = config.key {
        scheme.key = key;
    }
    let tolerance = scheme
        .timestamp
        .as_ref()
        .map_or(DEFAULT_TOLERANCE_SECS, |rule| rule.tolerance_secs);
    let hmac = if symmetric.is_empty() {
        None
    } else {
        let owned: Vec<NamedSecret> = symmetric.into_iter().cloned().collect();
        Some(HmacCheck::new(scheme, Inputs::default(), &owned)?)
    };
    let keys = public
        .into_iter()
        .map(|named| {
            let encoded = named.secret.expose().trim_start_matches(PUBLIC_KEY_PREFIX);
            let bytes: [u8; 32] = BASE64
                .decode(encoded)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("key {}: not base64 of 32 bytes after whpk_", named.id))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| format!("key {}: not an Ed25519 public key", named.id))?;
            Ok((named.id.clone(), key))
        })
        .collect::<Result<_, String>>()?;
    Ok(Arc::new(StandardWebhooks {
        hmac,
        keys,
        tolerance,
        extraction: Extraction {
            event_id: vec![Field::header(ID_HEADER)],
            // `type` is the spec's recommendation; BigCommerce sends `scope`.
            event_type: vec![Field::json("/type"), Field::json("/scope")],
            order_id: vec![Field::json("/data/order_id"), Field::json("/data/id")],
            account: Vec::new(),
        }
        .overridden_by(&config.extract),
    }))
}

struct StandardWebhooks {
    hmac: Option<HmacCheck>,
    keys: Vec<(String, VerifyingKey)>,
    tolerance: u64,
    extraction: Extraction,
}

impl StandardWebhooks {
    /// `v1a`: Ed25519 over `id.timestamp.body`.
    fn verify_ed25519(&self, request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
        let value = header(request.headers, SIGNATURE_HEADER).ok_or(VerifyError::Missing)?;
        let signatures: Vec<Signature> = value
            .split(' ')
            .filter_map(|item| item.split_once(','))
            .filter(|(version, _)| *version == "v1a")
            .take(MAX_SIGNATURES)
            .filter_map(|(_, sig)| BASE64.decode(sig).ok())
            .filter_map(|bytes| Signature::from_slice(&bytes).ok())
            .collect();
        if signatures.is_empty() {
            return Err(VerifyError::Malformed);
        }
        let id = header(request.headers, ID_HEADER).ok_or(VerifyError::Missing)?;
        let at = header(request.headers, TIMESTAMP_HEADER).ok_or(VerifyError::Missing)?;
        let mut content = Vec::with_capacity(id.len() + at.len() + request.body.len() + 2);
        content.extend_from_slice(id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(at.as_bytes());
        content.push(b'.');
        content.extend_from_slice(request.body);
        // Public-key verification leaks nothing secret, so stopping at the first hit is fine.
        let matched = self
            .keys
            .iter()
            .find(|(_, key)| {
                signatures
                    .iter()
                    .any(|sig| key.verify_strict(&content, sig).is_ok())
            })
            .map(|(id, _)| id.clone())
            .ok_or(VerifyError::Mismatch)?;
        let at: i64 = at.parse().map_err(|_| VerifyError::Malformed)?;
        check_window(request.now, at, self.tolerance)?;
        Ok(matched)
    }
}

#[async_trait::async_trait]
impl Verifier for StandardWebhooks {
    fn source(&self) -> Source {
        Source::StandardWebhooks
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let by_hmac = match &self.hmac {
            Some(hmac) => hmac.verify(request).map(|m| m.secret_id),
            None => Err(VerifyError::Malformed),
        };
        let secret_id = match by_hmac {
            Ok(id) => id,
            // A genuine but stale delivery, or no header at all: nothing more to try.
            Err(err @ (VerifyError::Expired { .. } | VerifyError::Missing)) => return Err(err),
            Err(hmac_err) if !self.keys.is_empty() => match self.verify_ed25519(request) {
                Ok(id) => id,
                // Report the more telling of the two failures.
                Err(VerifyError::Malformed) => return Err(hmac_err),
                Err(err) => return Err(err),
            },
            Err(err) => return Err(err),
        };
        let mut parts = self.extraction.extract(request);
        parts.secret_id = secret_id;
        Ok(Accepted::Publish(verified(
            Source::StandardWebhooks,
            request,
            parts,
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::scheme::KeyForm;
    use crate::verify::testing::{headers, negative_suite, publish, secret, sign};
    use ed25519_dalek::{Signer, SigningKey};

    const BODY: &str = r#"{"type":"order.created","data":{"id":272}}"#;
    const AT: i64 = 1_688_588_419;
    const ID: &str = "msg_2f4c";

    fn whsec(text: &str) -> String {
        format!("whsec_{}", BASE64.encode(text))
    }

    fn build(secrets: &[NamedSecret]) -> SharedVerifier {
        verifier(&StandardWebhooksConfig {
            secrets: secrets.to_vec(),
            ..StandardWebhooksConfig::default()
        })
        .unwrap()
    }

    fn v1(secret_value: &str, body: &str) -> String {
        let h = headers(&[(ID_HEADER, ID), (TIMESTAMP_HEADER, "1688588419")]);
        sign(
            Preset::StandardWebhooks.scheme(),
            Inputs::default(),
            secret_value,
            &h,
            "/",
            body,
            Some(AT),
        )
    }

    fn request_with(signature: &str) -> axum::http::HeaderMap {
        headers(&[
            (ID_HEADER, ID),
            (TIMESTAMP_HEADER, "1688588419"),
            (SIGNATURE_HEADER, signature),
        ])
    }

    #[test]
    fn known_answer_from_the_spec_vector() {
        let h = headers(&[
            (ID_HEADER, "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            (TIMESTAMP_HEADER, "1614265330"),
            (
                SIGNATURE_HEADER,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let v = build(&[secret("s", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);
        let verified = publish(
            v.as_ref(),
            "/webhooks/standard-webhooks",
            &h,
            r#"{"test": 2432232314}"#,
            1_614_265_330,
        )
        .unwrap();
        assert_eq!(verified.event_id(), "msg_p5jXN8AQM9LWM0D4loKWxJek");
    }

    #[test]
    fn negative_cases_and_replay_window() {
        let build_b64 = |secrets: &[NamedSecret]| {
            let encoded: Vec<NamedSecret> = secrets
                .iter()
                .map(|s| secret(&s.id, &whsec(s.secret.expose())))
                .collect();
            build(&encoded)
        };
        let signed = |s: &str, body: &str| request_with(&v1(&whsec(s), body));
        negative_suite(
            &build_b64,
            &signed,
            SIGNATURE_HEADER,
            "/webhooks/standard-webhooks",
            BODY,
            AT,
        );
        let v = build(&[secret("k", &whsec("k"))]);
        let h = request_with(&v1(&whsec("k"), BODY));
        let verified = publish(v.as_ref(), "/", &h, BODY, AT).unwrap();
        assert_eq!(verified.record_key(), "standard-webhooks:-:272");
        assert_eq!(
            publish(v.as_ref(), "/", &h, BODY, AT + 400).unwrap_err(),
            VerifyError::Expired { skew_secs: 400 }
        );
    }

    #[test]
    fn ed25519_v1a_beside_v1_during_a_rotation() {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let public = format!("whpk_{}", BASE64.encode(signing.verifying_key().as_bytes()));
        let content = format!("{ID}.1688588419.{BODY}");
        let v1a = BASE64.encode(signing.sign(content.as_bytes()).to_bytes());
        let v = build(&[secret("hmac", &whsec("old")), secret("ed", &public)]);
        // A list with a stale v1 (from another secret) and a good v1a.
        let list = format!("{} v1a,{v1a}", v1(&whsec("other"), BODY));
        let verified = publish(v.as_ref(), "/", &request_with(&list), BODY, AT).unwrap();
        assert_eq!(verified.secret_id(), "ed");
        assert_eq!(
            publish(
                v.as_ref(),
                "/",
                &request_with(&list),
                &format!("{BODY} "),
                AT
            )
            .unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(
            publish(v.as_ref(), "/", &request_with(&list), BODY, AT + 301).unwrap_err(),
            VerifyError::Expired { skew_secs: 301 }
        );
        let only_public = build(&[secret("ed", &public)]);
        assert!(publish(
            only_public.as_ref(),
            "/",
            &request_with(&format!("v1a,{v1a}")),
            BODY,
            AT
        )
        .is_ok());
    }

    #[test]
    fn bigcommerce_signs_with_the_raw_client_secret() {
        let v = verifier(&StandardWebhooksConfig {
            secrets: vec![secret("bc", "client-secret-raw")],
            key: Some(KeyForm::Utf8),
            ..StandardWebhooksConfig::default()
        })
        .unwrap();
        let mut scheme = Preset::StandardWebhooks.scheme();
        scheme.key = KeyForm::Utf8;
        let h = headers(&[(ID_HEADER, ID), (TIMESTAMP_HEADER, "1688588419")]);
        let value = sign(
            scheme,
            Inputs::default(),
            "client-secret-raw",
            &h,
            "/",
            BODY,
            Some(AT),
        );
        assert!(publish(v.as_ref(), "/", &request_with(&value), BODY, AT).is_ok());
    }
}
