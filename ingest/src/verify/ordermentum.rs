//! Ordermentum, the wholesale platform. Deliveries carry no signature: Ordermentum sends the
//! credentials chosen when the webhook was registered (seed 004): `authentication.basicAuth`
//! (HTTP basic auth) or custom `headers` (e.g. `Authorization: Bearer <token>`). Both are
//! compared in constant time; several may be active for a rotation. Serve this source over
//! HTTPS only: a credential does not protect the body.
//!
//! Bodies are `{event, timestamp, data: {id, …}}`; order events are keyed by `data.id`,
//! invoice and credit-note events by the order they name (`data.orderId`), and otherwise by
//! event. Ordermentum gives no event id, so the body's hash is the event id.

use std::sync::Arc;

use orderbridge_schemas::Source;

use super::credentials::CredentialCheck;
use super::extract::{Body, Extraction, Field};
use super::{verified, Accepted, Check, SharedVerifier, Verifier, VerifyError, WebhookRequest};
use crate::config::OrdermentumConfig;

/// The Ordermentum verifier for `config`.
///
/// # Errors
/// When no credential is configured or one is empty.
pub fn verifier(config: &OrdermentumConfig) -> Result<SharedVerifier, String> {
    Ok(Arc::new(Ordermentum {
        check: CredentialCheck::new(config.credentials.clone())?,
        extraction: Extraction {
            event_id: vec![Field::json("/eventId")],
            event_type: vec![Field::json("/event")],
            order_id: Vec::new(),
            account: vec![Field::json("/entityId")],
        },
    }))
}

struct Ordermentum {
    check: CredentialCheck,
    extraction: Extraction,
}

#[async_trait::async_trait]
impl Verifier for Ordermentum {
    fn source(&self) -> Source {
        Source::Ordermentum
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let secret_id = self.check.check(request)?;
        let mut parts = self.extraction.extract(request);
        parts.secret_id = secret_id;
        parts.order_id = order_id(parts.event_type.as_deref(), request.body);
        Ok(Accepted::Publish(verified(
            Source::Ordermentum,
            request,
            parts,
        )))
    }
}

/// The order an event is about: the subject itself for `order_*`, the order it names for
/// invoices and credit notes; a flat body (`{event, id, …}`) is read the same way.
pub(super) fn order_id(event: Option<&str>, body: &[u8]) -> Option<String> {
    let body = Body::new(body);
    let pointers: &[&str] = if event.is_some_and(|e| e.starts_with("order_")) {
        &["/data/id", "/id"]
    } else {
        &["/data/orderId", "/data/order_id", "/orderId"]
    };
    pointers.iter().find_map(|p| body.pointer(p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::credentials::Credential;
    use crate::verify::testing::{headers, publish};
    use orderbridge_runtime::Secret;

    const BODY: &str = r#"{"event":"order_created","timestamp":"2023-07-26T12:34:56Z","data":{"id":"17a36ca1-8835-4cf6-a95c-e42bb16d0ca9","createdAt":"2023-07-26T07:59:36.912Z","updatedAt":"2023-07-26T07:59:36.912Z","total":150.25}}"#;

    fn build() -> SharedVerifier {
        verifier(&OrdermentumConfig {
            credentials: vec![
                Credential::Basic {
                    id: "basic-2026".into(),
                    header: "authorization".into(),
                    username: "your-username".into(),
                    password: Secret::new("your-password"),
                },
                Credential::Header {
                    id: "token".into(),
                    header: "x-ordermentum-token".into(),
                    value: Secret::new("Bearer YOUR_CUSTOM_TOKEN"),
                },
            ],
        })
        .unwrap()
    }

    #[test]
    fn known_answer_with_the_seeds_credentials() {
        // printf 'your-username:your-password' | base64
        let h = headers(&[(
            "authorization",
            "Basic eW91ci11c2VybmFtZTp5b3VyLXBhc3N3b3Jk",
        )]);
        let verified = publish(build().as_ref(), "/webhooks/ordermentum", &h, BODY, 0).unwrap();
        assert_eq!(verified.secret_id(), "basic-2026");
        assert_eq!(
            verified.record_key(),
            "ordermentum:-:17a36ca1-8835-4cf6-a95c-e42bb16d0ca9"
        );
        assert_eq!(verified.event_type(), "order_created");
        assert!(
            verified.event_id().starts_with("sha256:"),
            "no event id is sent"
        );
        let h = headers(&[("x-ordermentum-token", "Bearer YOUR_CUSTOM_TOKEN")]);
        let verified = publish(build().as_ref(), "/", &h, BODY, 0).unwrap();
        assert_eq!(verified.secret_id(), "token");
    }

    #[test]
    fn wrong_or_missing_credentials_are_refused() {
        let wrong = headers(&[("authorization", "Basic eW91ci11c2VybmFtZTp3cm9uZw==")]);
        assert_eq!(
            publish(build().as_ref(), "/", &wrong, BODY, 0).unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(
            publish(build().as_ref(), "/", &headers(&[]), BODY, 0).unwrap_err(),
            VerifyError::Missing
        );
    }

    #[test]
    fn invoices_are_keyed_by_their_order() {
        assert_eq!(
            order_id(
                Some("invoice_created"),
                br#"{"event":"invoice_created","data":{"id":"inv-1","orderId":"ord-9"}}"#
            )
            .as_deref(),
            Some("ord-9")
        );
        assert_eq!(
            order_id(Some("purchaser_created"), br#"{"data":{"id":"p-1"}}"#),
            None
        );
    }
}
