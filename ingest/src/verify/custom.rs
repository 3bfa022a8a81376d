//! Providers declared in configuration: a preset (`stripe`, `woocommerce`, `square`,
//! `github`, or any built-in source's scheme) or a scheme written out in full, served at
//! `POST /webhooks/custom/<name>`. The name is the record's account, so the order key is
//! `custom:<name>:<order id>`; where ids are found is configuration (`extract`), with
//! defaults per preset.
//!
//! ```toml
//! [ingest.sources.custom.accounts.stripe-eu]
//! preset = "stripe"
//! secrets = [{ id = "we_1", secret = { env = "STRIPE_EU_WHSEC" } }]
//! ```
//!
//! WooCommerce pings a new webhook with a form-encoded `webhook_id=<n>` and no signature,
//! and disables the webhook unless it gets a 200: that ping is answered 200 and not
//! published.

use std::sync::Arc;

use orderbridge_schemas::Source;

use super::extract::{Extraction, Field};
use super::scheme::{HmacCheck, Inputs, Preset, Scheme};
use super::{
    Accepted, Check, Checked, Reply, SharedVerifier, Verifier, VerifyError, WebhookRequest,
};
use crate::config::HmacConfig;

/// The verifier of the custom provider `name`.
///
/// # Errors
/// When neither a preset nor a complete scheme is given, or the scheme cannot be evaluated.
pub fn verifier(name: &str, config: &HmacConfig) -> Result<SharedVerifier, String> {
    let scheme = match config.preset {
        Some(preset) => preset.scheme(),
        None => Scheme {
            header: config
                .scheme
                .header
                .clone()
                .ok_or("set `preset`, or at least `scheme.header` and `scheme.encoding`")?,
            encoding: config
                .scheme
                .encoding
                .ok_or("set `preset`, or at least `scheme.header` and `scheme.encoding`")?,
            format: Default::default(),
            algorithm: Default::default(),
            signed: Default::default(),
            key: Default::default(),
            id_header: None,
            timestamp: None,
        },
    }
    .patched(&config.scheme)
    .with_tolerance(config.tolerance_secs);
    let inputs = Inputs {
        app_key: config.app_key.clone(),
        url: config.url.clone(),
    };
    let check = HmacCheck::new(scheme, inputs, &config.secrets)
        .map_err(|err| format!("custom source {name}: {err}"))?;
    let extraction = defaults(config.preset).overridden_by(&config.extract);
    let checked = Checked {
        source: Source::Custom,
        check,
        extraction,
    };
    Ok(if config.preset == Some(Preset::Woocommerce) {
        Arc::new(WooCommerce(checked))
    } else {
        Arc::new(checked)
    })
}

/// Where a preset's providers put their ids.
fn defaults(preset: Option<Preset>) -> Extraction {
    let fields = |event_id: &[Field], event_type: &[Field], order_id: &[Field]| Extraction {
        event_id: event_id.to_vec(),
        event_type: event_type.to_vec(),
        order_id: order_id.to_vec(),
        account: Vec::new(),
    };
    let (header, json) = (Field::header, Field::json);
    match preset {
        Some(Preset::Stripe) => fields(
            &[json("/id")],
            &[json("/type")],
            &[
                json("/data/object/metadata/order_id"),
                json("/data/object/id"),
            ],
        ),
        Some(Preset::Woocommerce) => fields(
            &[header("x-wc-webhook-delivery-id")],
            &[header("x-wc-webhook-topic")],
            &[json("/id")],
        ),
        Some(Preset::Square) => fields(&[json("/event_id")], &[json("/type")], &[json("/data/id")]),
        Some(Preset::Github) => fields(
            &[header("x-github-delivery")],
            &[header("x-github-event")],
            &[],
        ),
        Some(
            Preset::Shopify
            | Preset::Sumeru
            | Preset::Zephyrcart
            | Preset::StandardWebhooks
            | Preset::Etsy
            | Preset::Bigcommerce
            | Preset::TiktokShop
            | Preset::Easypost
            | Preset::WalmartWmSec,
        )
        // A Standard Webhooks style `webhook-id` when the sender has one. Not the body's
        // `/id`: for a sender whose body is the order it is the order's id, the same in all
        // its events, and would make every later event a "duplicate". Without a delivery id
        // the body's hash is the event id (a retry repeats the body, a new event does not);
        // set `extract.event_id` when the provider's body does carry one.
        | None => fields(
            &[header("webhook-id")],
            &[json("/type"), json("/event")],
            &[],
        ),
    }
}

/// WooCommerce: answers the unsigned creation ping, verifies everything else.
struct WooCommerce<C>(Checked<C>);

#[async_trait::async_trait]
impl<C: Check> Verifier for WooCommerce<C> {
    fn source(&self) -> Source {
        Source::Custom
    }

    async fn verify(&self, request: &WebhookRequest<'_>) -> Result<Accepted, VerifyError> {
        let unsigned = request.headers.get("x-wc-webhook-signature").is_none();
        if unsigned && is_ping(request.body) {
            tracing::info!("WooCommerce webhook ping answered");
            return Ok(Accepted::Reply(Reply::ok("ok\n")));
        }
        self.0.verify(request).await
    }
}

/// `webhook_id=<digits>` and nothing else.
fn is_ping(body: &[u8]) -> bool {
    body.strip_prefix(b"webhook_id=")
        .is_some_and(|id| !id.is_empty() && id.len() <= 20 && id.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::NamedSecret;
    use crate::verify::scheme::{Encoding, SchemePatch};
    use crate::verify::testing::{headers, negative_suite, publish, run, secret, sign};

    fn config(preset: Preset, secrets: &[NamedSecret]) -> HmacConfig {
        HmacConfig {
            preset: Some(preset),
            secrets: secrets.to_vec(),
            ..HmacConfig::default()
        }
    }

    #[test]
    fn github_known_answer_from_githubs_docs() {
        // docs.github.com "Validating webhook deliveries": secret "It's a Secret to
        // Everybody", payload "Hello, World!".
        let v = verifier(
            "gh",
            &config(
                Preset::Github,
                &[secret("gh", "It's a Secret to Everybody")],
            ),
        )
        .unwrap();
        let h = headers(&[
            (
                "x-hub-signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ]);
        let verified = publish(v.as_ref(), "/webhooks/custom/gh", &h, "Hello, World!", 0).unwrap();
        assert_eq!(verified.event_id(), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    }

    #[test]
    fn square_known_answer_from_squares_docs() {
        // Square's published sample: key asdf1234, URL https://example.com/webhook,
        // body {"hello":"world"}.
        let v = verifier(
            "square",
            &HmacConfig {
                url: Some("https://example.com/webhook".into()),
                ..config(Preset::Square, &[secret("sq", "asdf1234")])
            },
        )
        .unwrap();
        let h = headers(&[(
            "x-square-hmacsha256-signature",
            "2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og=",
        )]);
        assert!(publish(v.as_ref(), "/", &h, r#"{"hello":"world"}"#, 0).is_ok());
        let other_url = verifier(
            "square",
            &HmacConfig {
                url: Some("https://example.com/webhook/".into()),
                ..config(Preset::Square, &[secret("sq", "asdf1234")])
            },
        )
        .unwrap();
        assert_eq!(
            publish(other_url.as_ref(), "/", &h, r#"{"hello":"world"}"#, 0).unwrap_err(),
            VerifyError::Mismatch,
            "the URL must match byte for byte"
        );
    }

    #[test]
    fn stripe_and_its_replay_window() {
        let body = r#"{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_live_a1"}}}"#;
        let build =
            |secrets: &[NamedSecret]| verifier("stripe", &config(Preset::Stripe, secrets)).unwrap();
        let signed = |s: &str, body: &str| {
            let value = sign(
                Preset::Stripe.scheme(),
                Inputs::default(),
                s,
                &headers(&[]),
                "/",
                body,
                Some(1_746_180_000),
            );
            headers(&[("stripe-signature", &value)])
        };
        negative_suite(
            &build,
            &signed,
            "stripe-signature",
            "/webhooks/custom/stripe",
            body,
            1_746_180_000,
        );
        let v = build(&[secret("we", "whsec_x")]);
        let h = signed("whsec_x", body);
        let verified = publish(v.as_ref(), "/", &h, body, 1_746_180_000).unwrap();
        assert_eq!(verified.record_key(), "custom:-:cs_live_a1");
        assert_eq!(
            publish(v.as_ref(), "/", &h, body, 1_746_180_301).unwrap_err(),
            VerifyError::Expired { skew_secs: 301 }
        );
    }

    #[test]
    fn woocommerce_decodes_entities_in_the_secret_and_answers_its_ping() {
        // The secret as WordPress stores it, `a&amp;b&quot;c`, signs as `a&b"c`:
        // printf '%s' "$BODY" | openssl dgst -sha256 -hmac 'a&b"c' -binary | base64
        let body = r#"{"id":727,"number":"727","status":"processing"}"#;
        let v = verifier(
            "woo",
            &config(Preset::Woocommerce, &[secret("woo", "a&amp;b&quot;c")]),
        )
        .unwrap();
        let h = headers(&[
            (
                "x-wc-webhook-signature",
                "06+IW+TkxwrAvYJA8pv+0Tgvle8YMpP/BAlk+BIi3IU=",
            ),
            ("x-wc-webhook-topic", "order.created"),
            (
                "x-wc-webhook-delivery-id",
                "4df0a951a314adc554e0f2016102e020",
            ),
        ]);
        let verified = publish(v.as_ref(), "/", &h, body, 0).unwrap();
        assert_eq!(verified.record_key(), "custom:-:727");
        assert_eq!(verified.event_type(), "order.created");
        match run(v.as_ref(), "/", &headers(&[]), "webhook_id=58", 0).unwrap() {
            Accepted::Reply(reply) => assert_eq!(reply.status, axum::http::StatusCode::OK),
            Accepted::Publish(_) => panic!("a ping is not an event"),
        }
        assert_eq!(
            run(v.as_ref(), "/", &headers(&[]), r#"{"id":1}"#, 0).unwrap_err(),
            VerifyError::Missing,
            "only the ping goes unsigned"
        );
    }

    #[test]
    fn a_scheme_written_out_in_full() {
        let cfg = HmacConfig {
            secrets: vec![secret("k", "s3")],
            scheme: SchemePatch {
                header: Some("x-acme-sig".into()),
                encoding: Some(Encoding::Base64),
                ..SchemePatch::default()
            },
            extract: Extraction {
                order_id: vec![Field::json("/order/number")],
                ..Extraction::default()
            },
            ..HmacConfig::default()
        };
        let v = verifier("acme", &cfg).unwrap();
        let body = r#"{"id":"e1","order":{"number":"A-17"}}"#;
        let value = sign(
            Preset::Shopify.scheme(),
            Inputs::default(),
            "s3",
            &headers(&[]),
            "/",
            body,
            None,
        );
        let verified = publish(
            v.as_ref(),
            "/",
            &headers(&[("x-acme-sig", &value)]),
            body,
            0,
        )
        .unwrap();
        assert_eq!(verified.record_key(), "custom:-:A-17");
        assert!(verifier("acme", &HmacConfig::default()).is_err());
    }

    #[test]
    fn without_a_delivery_id_two_events_of_one_order_are_two_deliveries() {
        // A sender whose body is the order: `/id` is the order's id, the same in every event
        // of it. Taken as the event id, every later event would look like a retry of the
        // first and be dropped as a duplicate. The body's hash tells retries apart instead.
        let cfg = HmacConfig {
            secrets: vec![secret("k", "s3")],
            scheme: SchemePatch {
                header: Some("x-acme-sig".into()),
                encoding: Some(Encoding::Base64),
                ..SchemePatch::default()
            },
            ..HmacConfig::default()
        };
        let v = verifier("acme", &cfg).unwrap();
        let deliver = |body: &str| {
            let value = sign(
                Preset::Shopify.scheme(),
                Inputs::default(),
                "s3",
                &headers(&[]),
                "/",
                body,
                None,
            );
            publish(
                v.as_ref(),
                "/",
                &headers(&[("x-acme-sig", &value)]),
                body,
                0,
            )
            .unwrap()
        };
        let paid = deliver(r#"{"id":17,"status":"paid"}"#);
        let shipped = deliver(r#"{"id":17,"status":"shipped"}"#);
        assert!(
            paid.event_id().starts_with("sha256:"),
            "{}",
            paid.event_id()
        );
        assert_ne!(paid.event_id(), shipped.event_id());
        assert_eq!(
            paid.event_id(),
            deliver(r#"{"id":17,"status":"paid"}"#).event_id(),
            "a retry is the same delivery"
        );
    }
}
