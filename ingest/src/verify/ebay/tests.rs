//! Tests of the eBay verifier: known answers signed by openssl, and every way a message
//! must be refused.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::verify::testing::{headers, publish};
use std::collections::BTreeMap;

const PUBLIC: &str = include_str!("../../../../tests/support/keys/ebay-signing.pub");
const BODY: &str = r#"{"metadata":{"topic":"ORDER_CONFIRMATION","schemaVersion":"1.0","deprecated":false},"notification":{"notificationId":"49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d","eventDate":"2025-03-01T18:20:51.233Z","publishDate":"2025-03-01T18:20:52.101Z","publishAttemptCount":1,"data":{"orderId":"12-34567-89012"}}}"#;
/// `openssl dgst -sha1 -sign ebay-signing.key` over BODY.
const SIGNATURE: &str = "MEUCIQDhRm0mf1DfWgTc1tqbdSC5fsUvYuWcSUCiJuv5D7ocXAIgEYVn814S2Xg29jiqFfuTSeHaZxTxFdYWsBlZFtD0G2U=";
const TOKEN: &str = "71745723-d031-455c-bfa5-f90d11b4f20a_aZ";
const ENDPOINT: &str = "https://orders.example.com/webhooks/ebay";

fn config() -> EbayConfig {
    EbayConfig {
        verification_token: Secret::new(TOKEN),
        endpoint_url: ENDPOINT.into(),
        client_id: None,
        client_secret: None,
        api_base: "https://api.ebay.com".into(),
        public_keys: BTreeMap::from([("kid-1".to_owned(), PUBLIC.to_owned())]),
        key_cache_secs: 3600,
    }
}

fn build() -> SharedVerifier {
    verifier(&config(), reqwest::Client::new(), Duration::from_secs(1)).unwrap()
}

pub(crate) fn signature_header(kid: &str, signature: &str) -> String {
    BASE64.encode(
        serde_json::json!({"alg": "ecdsa", "kid": kid, "signature": signature, "digest": "SHA1"})
            .to_string(),
    )
}

#[test]
fn challenge_known_answer() {
    // printf '%s' "a8628072-3d33-45ee-9004-bee86830a22d${TOKEN}${ENDPOINT}" | sha256sum
    let reply = build()
        .challenge(Some("challenge_code=a8628072-3d33-45ee-9004-bee86830a22d"))
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(
        reply.body,
        r#"{"challengeResponse":"0e96daf93fd16529c4d627a83737aa7ff54e4c0b263398e5a3e723b8d09868cb"}"#
    );
    assert_eq!(
        build().challenge(None).unwrap().status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn known_answer_signed_by_openssl() {
    let h = headers(&[(SIGNATURE_HEADER, &signature_header("kid-1", SIGNATURE))]);
    let verified = publish(build().as_ref(), "/webhooks/ebay", &h, BODY, 0).unwrap();
    assert_eq!(verified.record_key(), "ebay:-:12-34567-89012");
    assert_eq!(verified.secret_id(), "kid-1");
    assert_eq!(verified.event_type(), "ORDER_CONFIRMATION");
    // Spaced out, the SDK's re-serialization (the compact form) still matches.
    let pretty_body = pretty_keep_order(BODY);
    assert!(publish(build().as_ref(), "/", &h, &pretty_body, 0).is_ok());
}

#[test]
fn an_order_confirmation_as_delivered_is_keyed_by_its_order() {
    // Deliveries carry the order under `data.order`, not `data.orderId` as the AsyncAPI page
    // shows; keyed by the notification instead, the record would miss its order's partition.
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::pkcs8::DecodePrivateKey;
    use sha1::Digest;
    let body = r#"{"metadata":{"topic":"ORDER_CONFIRMATION","schemaVersion":"1.0","deprecated":false},"notification":{"notificationId":"e9569bb0_64aa8d87","eventDate":"2026-06-19T14:15:23.110Z","publishAttemptCount":1,"data":{"user":{"userId":"AbCdEf12345"},"order":{"orderId":"19-14819-32278","orderLineItems":[{"orderLineItemId":"10082935197219","quantity":1}]}}}}"#;
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(include_str!(
        "../../../../tests/support/keys/ebay-signing.key"
    ))
    .unwrap();
    let signature: p256::ecdsa::Signature = key.sign_prehash(&sha1::Sha1::digest(body)).unwrap();
    let signature = BASE64.encode(signature.to_der().as_bytes());
    let h = headers(&[(SIGNATURE_HEADER, &signature_header("kid-1", &signature))]);
    let verified = publish(build().as_ref(), "/webhooks/ebay", &h, body, 0).unwrap();
    assert_eq!(verified.record_key(), "ebay:-:19-14819-32278");
}

/// BODY with spaces after every `:` and `,` outside strings (order kept).
fn pretty_keep_order(body: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in body.chars() {
        out.push(c);
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ':' || c == ',' {
            out.push(' ');
        }
    }
    out
}

#[test]
fn tampered_unknown_key_and_malformed_headers_are_refused() {
    let h = headers(&[(SIGNATURE_HEADER, &signature_header("kid-1", SIGNATURE))]);
    let tampered = BODY.replace("12-34567-89012", "12-34567-89013");
    assert_eq!(
        publish(build().as_ref(), "/", &h, &tampered, 0).unwrap_err(),
        VerifyError::Mismatch
    );
    let other_kid = headers(&[(SIGNATURE_HEADER, &signature_header("kid-2", SIGNATURE))]);
    assert_eq!(
        publish(build().as_ref(), "/", &other_kid, BODY, 0).unwrap_err(),
        VerifyError::Mismatch,
        "only pinned keys and no way to fetch"
    );
    for bad in [
        "not base64",
        &BASE64.encode("{}"),
        &signature_header("../../x", SIGNATURE),
    ] {
        let h = headers(&[(SIGNATURE_HEADER, bad)]);
        assert_eq!(
            publish(build().as_ref(), "/", &h, BODY, 0).unwrap_err(),
            VerifyError::Malformed,
            "{bad}"
        );
    }
    assert_eq!(
        publish(build().as_ref(), "/", &headers(&[]), BODY, 0).unwrap_err(),
        VerifyError::Missing
    );
}

#[test]
fn another_key_is_refused_and_pinned_keys_rotate() {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let other = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let digest = Sha1::digest(BODY.as_bytes());
    let forged: Signature = other.sign_prehash(&digest).unwrap();
    let forged = BASE64.encode(forged.to_der().as_bytes());
    let h = headers(&[(SIGNATURE_HEADER, &signature_header("kid-1", &forged))]);
    assert_eq!(
        publish(build().as_ref(), "/", &h, BODY, 0).unwrap_err(),
        VerifyError::Mismatch
    );
    // Two pinned keys during a rotation: each verifies what it signed.
    let other_pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(
        other.verifying_key(),
        p256::pkcs8::LineEnding::LF,
    )
    .unwrap();
    let mut two = config();
    two.public_keys.insert("kid-2".into(), other_pem);
    let v = verifier(&two, reqwest::Client::new(), Duration::from_secs(1)).unwrap();
    let by_new = headers(&[(SIGNATURE_HEADER, &signature_header("kid-2", &forged))]);
    assert_eq!(
        publish(v.as_ref(), "/", &by_new, BODY, 0)
            .unwrap()
            .secret_id(),
        "kid-2"
    );
    let by_old = headers(&[(SIGNATURE_HEADER, &signature_header("kid-1", SIGNATURE))]);
    assert_eq!(
        publish(v.as_ref(), "/", &by_old, BODY, 0)
            .unwrap()
            .secret_id(),
        "kid-1"
    );
}

#[test]
fn configuration_is_checked() {
    let mut short = config();
    short.verification_token = Secret::new("short");
    assert!(verifier(&short, reqwest::Client::new(), Duration::from_secs(1)).is_err());
    let mut no_keys = config();
    no_keys.public_keys.clear();
    assert!(verifier(&no_keys, reqwest::Client::new(), Duration::from_secs(1)).is_err());
    let mut plain = config();
    plain.api_base = "http://api.ebay.com".into();
    assert!(verifier(&plain, reqwest::Client::new(), Duration::from_secs(1)).is_err());
}
