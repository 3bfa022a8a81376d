//! BigCommerce webhooks, signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64>` of `id.timestamp.body`) keyed with the app's **client
//! secret** as it is; the timestamp is checked against a replay window (default 5 minutes).
//!
//! Payloads are thin: `{producer: "stores/<hash>", scope: "store/order/created", created_at,
//! data: {type: "order", id}}`. The order is `data.id`; the account is the store's hash from
//! `producer` (the route's account when the body names none).

use std::sync::Arc;

use orderbridge_schemas::Source;

use super::extract::{Extraction, Field};
use super::scheme::Preset;
use super::{hmac_source, Accepted, SharedVerifier, Verifier, VerifyError, WebhookRequest};
use crate::config::HmacConfig;

/// The BigCommerce verifier for `config`.
///
/// # Errors
/// When no secret is configured.
pub fn verifier(config: &HmacConfig) -> Result<SharedVerifier, String> {
    let inner = hmac_source(
        Source::Bigcommerce,
        Preset::Bigcommerce,
        config,
        Extraction {
            event_id: vec![Field::header("webhook-id")],
            event_type: vec![Field::json("/scope")],
            order_id: vec![Field::json("/data/id")],
            account: Vec::new(),
        },
    )?;
    Ok(Arc::new(Bigcommerce { inner }))
}

/// Takes the account from `producer` (`stores/<hash>`).
struct Bigcommerce {
    inner: SharedVerifier,
}

#[async_trait::async_trait]
impl Verifier for Bigcommerce {
    fn source(&self) -> Source {
        Source::Bigcommerce
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let mut accepted = self.inner.verify(request).await?;
        if let Accepted::Publish(verified) = &mut accepted {
            if let Some(store) = store_hash(request.body) {
                verified.account = store;
            }
        }
        Ok(accepted)
    }
}

/// `producer: "stores/<hash>"` → `<hash>`.
pub(super) fn store_hash(body: &[u8]) -> Option<String> {
    let body = super::extract::Body::new(body);
    let producer = body.json()?.get("producer")?.as_str()?;
    super::identifier(producer.strip_prefix("stores/"))
        .filter(|hash| hash.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::NamedSecret;
    use crate::verify::testing::{headers, publish};
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use orderbridge_runtime::Secret;

    const SECRET: &str = "bc-client-secret-0123456789";
    const BODY: &str = r#"{"producer":"stores/abcde","hash":"0f1b","created_at":1688588419,"store_id":"1001197568","scope":"store/order/created","data":{"type":"order","id":272}}"#;

    fn config(secrets: &[(&str, &str)]) -> HmacConfig {
        HmacConfig {
            secrets: secrets
                .iter()
                .map(|(id, s)| NamedSecret {
                    id: (*id).into(),
                    secret: Secret::new(*s),
                })
                .collect(),
            ..HmacConfig::default()
        }
    }

    fn signature(secret: &str, id: &str, ts: i64, body: &str) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{id}.{ts}.{body}").as_bytes());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    fn deliver(
        verifier: &SharedVerifier,
        secret: &str,
        ts: i64,
        now: i64,
    ) -> Result<crate::verify::Verified, VerifyError> {
        let sig = signature(secret, "msg_1", ts, BODY);
        let h = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &ts.to_string()),
            ("webhook-signature", &sig),
        ]);
        publish(verifier.as_ref(), "/webhooks/bigcommerce", &h, BODY, now)
    }

    #[test]
    fn signed_with_the_client_secret_as_it_is_and_keyed_by_store() {
        let verifier = verifier(&config(&[("old", "previous-secret"), ("new", SECRET)])).unwrap();
        let now = 1_688_588_419;
        let verified = deliver(&verifier, SECRET, now, now).unwrap();
        assert_eq!(verified.record_key(), "bigcommerce:abcde:272");
        assert_eq!(verified.secret_id(), "new");
        assert_eq!(verified.event_type(), "store/order/created");
        // Rotated: the old secret still verifies while it is listed.
        assert_eq!(
            deliver(&verifier, "previous-secret", now, now)
                .unwrap()
                .secret_id(),
            "old"
        );
        // Wrong secret, stale timestamp.
        assert!(matches!(
            deliver(&verifier, "other", now, now),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            deliver(&verifier, SECRET, now - 3600, now),
            Err(VerifyError::Expired { .. })
        ));
        // A tampered body fails.
        let sig = signature(SECRET, "msg_1", now, BODY);
        let h = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &now.to_string()),
            ("webhook-signature", &sig),
        ]);
        let tampered = BODY.replace("272", "273");
        assert!(publish(verifier.as_ref(), "/", &h, &tampered, now).is_err());
        // No signature at all.
        let bare = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &now.to_string()),
        ]);
        assert!(matches!(
            publish(verifier.as_ref(), "/", &bare, BODY, now),
            Err(VerifyError::Missing)
        ));
    }
}
