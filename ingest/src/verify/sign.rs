//! Signing as a provider would, with a source's configured secret: what `orderbridge
//! send-test` posts to a running ingest to prove a deploy end to end. The verifier and the
//! signer are one scheme, so a sample signed here is checked exactly as a delivery is.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use bytes::Bytes;

use super::scheme::{HmacCheck, Inputs, Preset};
use super::WebhookRequest;
use crate::config::HmacConfig;

/// The headers a provider signing with `preset` (adjusted by `config.scheme`) sends with
/// `body` posted to `path` at `now` (unix seconds): the signature, and the timestamp and
/// message id where the scheme has them in headers of their own. Signed with the first of
/// `config.secrets`, the one a provider rotating secrets signs with.
///
/// # Errors
/// When no usable secret is configured.
pub fn signed_headers(
    preset: Preset,
    config: &HmacConfig,
    path: &str,
    body: &[u8],
    message_id: &str,
    now: i64,
) -> Result<Vec<(String, String)>, String> {
    let scheme = preset
        .scheme()
        .patched(&config.scheme)
        .with_tolerance(config.tolerance_secs);
    let mut sent: Vec<(String, String)> = Vec::new();
    if let Some(name) = &scheme.id_header {
        sent.push((name.clone(), message_id.to_owned()));
    }
    let timestamp = scheme.timestamp.as_ref().map(|rule| {
        if let Some(name) = &rule.header {
            sent.push((name.clone(), now.to_string()));
        }
        now
    });
    let header = scheme.header.clone();
    let inputs = Inputs {
        app_key: config.app_key.clone(),
        url: config.url.clone(),
    };
    let check = HmacCheck::new(scheme, inputs, &config.secrets)?;
    let mut headers = HeaderMap::new();
    for (name, value) in &sent {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name}: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("header value: {e}"))?;
        headers.insert(name, value);
    }
    let body = Bytes::copy_from_slice(body);
    let signature = check.sign(
        &WebhookRequest {
            method: &Method::POST,
            path_and_query: path,
            headers: &headers,
            body: &body,
            account: None,
            now,
        },
        timestamp,
    );
    sent.push((header, signature));
    Ok(sent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::testing::{headers, run, secret};
    use crate::verify::Verifier;

    fn config(value: &str) -> HmacConfig {
        HmacConfig {
            secrets: vec![secret("new", value), secret("old", "previous")],
            ..HmacConfig::default()
        }
    }

    fn verifies(verifier: &dyn Verifier, preset: Preset, now: i64) {
        let body = r#"{"id":"evt_1","type":"order.created","data":{"id":"o1","order_id":"o1"}}"#;
        let signed = signed_headers(
            preset,
            &config("s3cret"),
            "/webhooks/x",
            body.as_bytes(),
            "msg_1",
            now,
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = signed
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let accepted = run(verifier, "/webhooks/x", &headers(&pairs), body, now);
        assert!(accepted.is_ok(), "{preset:?}: {accepted:?}");
        // The same sample with another secret is refused: the signature is the secret's.
        let other = signed_headers(
            preset,
            &config("other"),
            "/webhooks/x",
            body.as_bytes(),
            "msg_1",
            now,
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = other
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert!(
            run(verifier, "/webhooks/x", &headers(&pairs), body, now).is_err(),
            "{preset:?}"
        );
    }

    #[test]
    fn what_is_signed_here_the_verifier_accepts() {
        let now = 1_764_700_000;
        let shopify = crate::verify::shopify::ShopifyVerifier::new(&config("s3cret")).unwrap();
        verifies(&shopify, Preset::Shopify, now);
        let sumeru = crate::verify::sumeru::verifier(&config("s3cret")).unwrap();
        verifies(sumeru.as_ref(), Preset::Sumeru, now);
        let zephyrcart = crate::verify::zephyrcart::verifier(&config("s3cret")).unwrap();
        verifies(zephyrcart.as_ref(), Preset::Zephyrcart, now);
    }
}
