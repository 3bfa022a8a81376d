//! Helpers the verifier tests share.
#![allow(clippy::unwrap_used)]

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use bytes::Bytes;
use orderbridge_runtime::Secret;

use super::{Accepted, Verified, Verifier, VerifyError, WebhookRequest};
use crate::config::NamedSecret;

/// A named secret.
pub fn secret(id: &str, value: &str) -> NamedSecret {
    NamedSecret {
        id: id.into(),
        secret: Secret::new(value),
    }
}

/// Headers from pairs.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Runs `verifier` on a POST to `path` at time `now`.
pub fn run(
    verifier: &dyn Verifier,
    path: &str,
    headers: &HeaderMap,
    body: &str,
    now: i64,
) -> Result<Accepted, VerifyError> {
    let body = Bytes::from(body.to_owned());
    let request = WebhookRequest {
        method: &Method::POST,
        path_and_query: path,
        headers,
        body: &body,
        account: None,
        now,
    };
    futures::executor::block_on(verifier.verify(&request))
}

/// The header value a sender using `scheme` would send for `body` (POST to `path`), signed
/// with `secret_value`; `headers` supplies what the scheme reads besides (id header).
pub fn sign(
    scheme: super::scheme::Scheme,
    inputs: super::scheme::Inputs,
    secret_value: &str,
    headers: &HeaderMap,
    path: &str,
    body: &str,
    timestamp: Option<i64>,
) -> String {
    let check =
        super::scheme::HmacCheck::new(scheme, inputs, &[secret("k", secret_value)]).unwrap();
    let body = Bytes::from(body.to_owned());
    check.sign(
        &WebhookRequest {
            method: &Method::POST,
            path_and_query: path,
            headers,
            body: &body,
            account: None,
            now: 0,
        },
        timestamp,
    )
}

/// The negative cases every verifier must pass: a rotated secret is accepted and named;
/// a tampered body, a wrong secret and a missing signature header are refused.
///
/// `build` makes a verifier from secrets; `signed` returns the headers of a request
/// whose body is signed with `secret`; `signature_header` is the header to drop.
pub fn negative_suite(
    build: &dyn Fn(&[NamedSecret]) -> super::SharedVerifier,
    signed: &dyn Fn(&str, &str) -> HeaderMap,
    signature_header: &str,
    path: &str,
    body: &str,
    now: i64,
) {
    let rotating = build(&[secret("new", "secret-new"), secret("old", "secret-old")]);
    for id in ["new", "old"] {
        let h = signed(&format!("secret-{id}"), body);
        let verified = publish(rotating.as_ref(), path, &h, body, now)
            .unwrap_or_else(|err| panic!("signed with {id}: {err}"));
        assert_eq!(verified.secret_id(), id);
    }
    let h = signed("secret-new", body);
    let tampered = format!("{body} ");
    assert_eq!(
        run(rotating.as_ref(), path, &h, &tampered, now).unwrap_err(),
        VerifyError::Mismatch,
        "tampered body"
    );
    let retired = build(&[secret("new", "secret-new")]);
    assert_eq!(
        run(
            retired.as_ref(),
            path,
            &signed("secret-old", body),
            body,
            now
        )
        .unwrap_err(),
        VerifyError::Mismatch,
        "a retired secret"
    );
    assert_eq!(
        run(retired.as_ref(), path, &signed("attacker", body), body, now).unwrap_err(),
        VerifyError::Mismatch,
        "wrong secret"
    );
    let mut stripped = signed("secret-new", body);
    stripped.remove(signature_header);
    assert_eq!(
        run(retired.as_ref(), path, &stripped, body, now).unwrap_err(),
        VerifyError::Missing,
        "missing header"
    );
}

/// Like [`run`], expecting a record to publish.
pub fn publish(
    verifier: &dyn Verifier,
    path: &str,
    headers: &HeaderMap,
    body: &str,
    now: i64,
) -> Result<Verified, VerifyError> {
    match run(verifier, path, headers, body, now)? {
        Accepted::Publish(verified) => Ok(verified),
        Accepted::Reply(reply) => panic!("expected a record, got a reply {reply:?}"),
    }
}
