//! Etsy Open API v3 webhooks, signed the Standard Webhooks way: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64>` (possibly several, space
//! separated), the HMAC-SHA256 of `id.timestamp.body` keyed with the base64-decoded part of
//! the `whsec_…` endpoint secret. The timestamp is checked against a replay window
//! (default 5 minutes).
//!
//! Seed 002 describes a challenge plus bearer token instead; Etsy's published contract is
//! the one above, so that is what is built (a `scheme` change in configuration can follow
//! another contract). Payloads are thin (`{event_type, resource_url, shop_id}`): the order
//! (receipt) id is the last segment of `resource_url`.

use std::sync::Arc;

use orderbridge_schemas::Source;

use super::extract::{Body, Extraction, Field};
use super::scheme::Preset;
use super::{hmac_source, Accepted, SharedVerifier, Verifier, VerifyError, WebhookRequest};
use crate::config::HmacConfig;

/// Header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The Etsy verifier for `config`.
///
/// # Errors
/// When no secret is configured or a secret is not `whsec_` + base64.
pub fn verifier(config: &HmacConfig) -> Result<SharedVerifier, String> {
    let inner = hmac_source(
        Source::Etsy,
        Preset::Etsy,
        config,
        Extraction {
            event_id: vec![Field::header("webhook-id")],
            event_type: vec![Field::json("/event_type"), Field::json("/type")],
            order_id: vec![Field::json("/receipt_id"), Field::json("/data/receipt_id")],
            account: vec![Field::json("/shop_id")],
        },
    )?;
    Ok(Arc::new(Etsy { inner }))
}

/// Adds the receipt id from `resource_url` when the body names no receipt directly.
struct Etsy {
    inner: SharedVerifier,
}

#[async_trait::async_trait]
impl Verifier for Etsy {
    fn source(&self) -> Source {
        Source::Etsy
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let mut accepted = self.inner.verify(request).await?;
        if let Accepted::Publish(verified) = &mut accepted {
            if verified.order_id.is_none() {
                verified.order_id = receipt_id(request.body);
            }
        }
        Ok(accepted)
    }
}

/// `…/shops/{shop_id}/receipts/{receipt_id}` → `receipt_id`.
pub(super) fn receipt_id(body: &[u8]) -> Option<String> {
    let body = Body::new(body);
    let url = body.json()?.get("resource_url")?.as_str()?;
    let (before, id) = url.trim_end_matches('/').rsplit_once('/')?;
    before
        .ends_with("/receipts")
        .then(|| super::identifier(Some(id)))
        .flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::NamedSecret;
    use crate::verify::scheme::Inputs;
    use crate::verify::testing::{headers, negative_suite, publish, secret, sign};

    const BODY: &str = r#"{"event_type":"order.paid","resource_url":"https://openapi.etsy.com/v3/application/shops/12345/receipts/54321","shop_id":12345}"#;
    const AT: i64 = 1_746_180_000;
    const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";

    fn build(secrets: &[NamedSecret]) -> SharedVerifier {
        verifier(&HmacConfig {
            secrets: secrets.to_vec(),
            ..HmacConfig::default()
        })
        .unwrap()
    }

    fn b64(text: &str) -> String {
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn known_answer_from_the_standard_webhooks_spec() {
        // The Standard Webhooks reference vector (which Etsy follows): secret
        // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
        // timestamp 1614265330, body {"test": 2432232314}; checked with openssl.
        let body = r#"{"test": 2432232314}"#;
        let h = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let v = build(&[secret("etsy-1", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);
        let verified = publish(v.as_ref(), "/webhooks/etsy", &h, body, 1_614_265_330).unwrap();
        assert_eq!(verified.event_id(), "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(
            publish(v.as_ref(), "/webhooks/etsy", &h, body, 1_614_265_330 + 301).unwrap_err(),
            VerifyError::Expired { skew_secs: 301 }
        );
    }

    #[test]
    fn a_thin_receipt_event_is_keyed_by_its_receipt_and_shop() {
        let id_only = headers(&[("webhook-id", ID), ("webhook-timestamp", "1746180000")]);
        let value = sign(
            Preset::Etsy.scheme(),
            Inputs::default(),
            &b64("etsy-key"),
            &id_only,
            "/",
            BODY,
            Some(AT),
        );
        let h = headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", "1746180000"),
            (SIGNATURE_HEADER, &value),
        ]);
        let v = build(&[secret("k", &b64("etsy-key"))]);
        let verified = publish(v.as_ref(), "/webhooks/etsy", &h, BODY, AT).unwrap();
        assert_eq!(verified.record_key(), "etsy:12345:54321");
        assert_eq!(verified.event_type(), "order.paid");
    }

    #[test]
    fn negative_cases() {
        let build_b64 = |secrets: &[NamedSecret]| {
            let encoded: Vec<NamedSecret> = secrets
                .iter()
                .map(|s| secret(&s.id, &b64(s.secret.expose())))
                .collect();
            build(&encoded)
        };
        let signed = |secret_value: &str, body: &str| {
            let id_only = headers(&[("webhook-id", ID), ("webhook-timestamp", "1746180000")]);
            let value = sign(
                Preset::Etsy.scheme(),
                Inputs::default(),
                &b64(secret_value),
                &id_only,
                "/",
                body,
                Some(AT),
            );
            headers(&[
                ("webhook-id", ID),
                ("webhook-timestamp", "1746180000"),
                (SIGNATURE_HEADER, &value),
            ])
        };
        negative_suite(
            &build_b64,
            &signed,
            SIGNATURE_HEADER,
            "/webhooks/etsy",
            BODY,
            AT,
        );
        let v = build(&[secret("k", &b64("secret-new"))]);
        let mut no_time = signed("secret-new", BODY);
        no_time.remove("webhook-timestamp");
        assert_eq!(
            publish(v.as_ref(), "/", &no_time, BODY, AT).unwrap_err(),
            VerifyError::Missing
        );
    }
}
