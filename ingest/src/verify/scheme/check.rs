//! Verifying a request against a [`Scheme`] and its keys.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{Algorithm, Inputs, Part, Scheme, SignatureFormat, Template};
use crate::config::NamedSecret;
use crate::verify::{header, Check, VerifyError, WebhookRequest};

/// At most this many signatures are read from one header: a rotation sends two or three, and
/// a header with thousands must not buy thousands of HMACs.
const MAX_SIGNATURES: usize = 8;

/// A key derived from a named secret.
#[derive(Clone)]
struct Key {
    id: String,
    bytes: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

/// A scheme with its keys: verifies a request's signature.
#[derive(Debug, Clone)]
pub struct HmacCheck {
    scheme: Scheme,
    inputs: Inputs,
    keys: Vec<Key>,
}

/// What a successful check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The id of the secret whose key matched.
    pub secret_id: String,
    /// The signed timestamp (unix seconds), when the scheme has one.
    pub timestamp: Option<i64>,
}

impl HmacCheck {
    /// Derives the keys of `secrets` for `scheme`.
    ///
    /// # Errors
    /// When the scheme cannot be evaluated with `inputs`, there is no secret, or a secret is
    /// empty or not in the scheme's key form.
    pub fn new(scheme: Scheme, inputs: Inputs, secrets: &[NamedSecret]) -> Result<Self, String> {
        scheme.validate(&inputs)?;
        if secrets.is_empty() {
            return Err("no secret is configured".into());
        }
        let keys = secrets
            .iter()
            .map(|named| {
                let bytes = scheme
                    .key
                    .derive(named.secret.expose())
                    .map_err(|err| format!("secret {}: {err}", named.id))?;
                if bytes.is_empty() {
                    return Err(format!("secret {} is empty", named.id));
                }
                Ok(Key {
                    id: named.id.clone(),
                    bytes,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            scheme,
            inputs,
            keys,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Verifies `request`: some signature in the header is the MAC of the signed content
    /// under some active key, and the signed timestamp (if any) is within the window.
    ///
    /// # Errors
    /// [`VerifyError::Missing`] without the header (or timestamp), `Malformed` when nothing
    /// in it decodes, `Mismatch` when no key matches, `Expired` when a match is stale.
    pub fn verify(&self, request: &WebhookRequest<'_>) -> Result<Matched, VerifyError> {
        let scheme = &self.scheme;
        let value = header(request.headers, &scheme.header).ok_or(VerifyError::Missing)?;
        let (candidates, field_timestamp) = parse_signatures(&scheme.format, value);
        let len = scheme.algorithm.output_len();
        let signatures: Vec<Vec<u8>> = candidates
            .iter()
            .take(MAX_SIGNATURES)
            .filter_map(|candidate| scheme.encoding.decode(candidate, len))
            .collect();
        if signatures.is_empty() {
            return Err(VerifyError::Malformed);
        }
        let timestamp_text = match &scheme.timestamp {
            None => None,
            Some(rule) => Some(
                match &rule.header {
                    Some(name) => header(request.headers, name),
                    None => field_timestamp,
                }
                .ok_or(VerifyError::Missing)?,
            ),
        };
        let id = match &scheme.id_header {
            Some(name) if scheme.signed.uses(&Part::Id) => {
                Some(header(request.headers, name).ok_or(VerifyError::Missing)?)
            }
            Some(_) | None => None,
        };
        let values = Values {
            request,
            timestamp: timestamp_text.unwrap_or(""),
            id: id.unwrap_or(""),
            inputs: &self.inputs,
        };

        // Every key against every signature, all the way through: constant time per
        // comparison, and no early exit that would time which key came close.
        let mut matched: Option<&str> = None;
        for key in &self.keys {
            let mac = values.mac(scheme, &key.bytes);
            let mut hit = subtle::Choice::from(0);
            for signature in &signatures {
                hit |= mac.ct_eq(signature.as_slice());
            }
            if bool::from(hit) && matched.is_none() {
                matched = Some(&key.id);
            }
        }
        let secret_id = matched.ok_or(VerifyError::Mismatch)?.to_owned();

        let timestamp = match (&scheme.timestamp, timestamp_text) {
            (Some(rule), Some(text)) => {
                let at: i64 = text.parse().map_err(|_| VerifyError::Malformed)?;
                check_window(request.now, at, rule.tolerance_secs)?;
                Some(at)
            }
            (Some(_), None) | (None, _) => None,
        };
        Ok(Matched {
            secret_id,
            timestamp,
        })
    }

    /// Signs `body` as the provider would, with the first key, for tests, the `dev` banner
    /// and the benchmark's load generator: the header value to send.
    pub fn sign(&self, request: &WebhookRequest<'_>, timestamp: Option<i64>) -> String {
        let scheme = &self.scheme;
        let timestamp_text = timestamp.map(|t| t.to_string()).unwrap_or_default();
        let id = scheme
            .id_header
            .as_deref()
            .and_then(|name| header(request.headers, name))
            .unwrap_or("");
        let values = Values {
            request,
            timestamp: &timestamp_text,
            id,
            inputs: &self.inputs,
        };
        let key = self.keys.first().map(|k| k.bytes.as_slice()).unwrap_or(&[]);
        let encoded = scheme.encoding.encode(&values.mac(scheme, key));
        match &scheme.format {
            SignatureFormat::Single { prefix } => {
                format!("{}{encoded}", prefix.as_deref().unwrap_or(""))
            }
            SignatureFormat::List { version, .. } => format!("{version},{encoded}"),
            SignatureFormat::Fields {
                separator,
                signature,
                timestamp: field,
            } => match field {
                Some(field) => format!("{field}={timestamp_text}{separator}{signature}={encoded}"),
                None => format!("{signature}={encoded}"),
            },
        }
    }
}

impl Check for HmacCheck {
    fn check(&self, request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
        self.verify(request).map(|matched| matched.secret_id)
    }
}

/// Refuses a signed time more than `tolerance` seconds away from now, either way, and logs
/// the skew so that a drifting clock shows before it refuses deliveries.
pub(crate) fn check_window(now: i64, at: i64, tolerance: u64) -> Result<(), VerifyError> {
    let skew = now.saturating_sub(at);
    if skew.unsigned_abs() > tolerance {
        tracing::warn!(
            skew_secs = skew,
            tolerance_secs = tolerance,
            "signed timestamp outside the replay window"
        );
        return Err(VerifyError::Expired { skew_secs: skew });
    }
    if skew.unsigned_abs() > tolerance / 2 {
        tracing::info!(
            skew_secs = skew,
            "signed timestamp far from our clock; check clock sync"
        );
    }
    Ok(())
}

/// Splits a header value into candidate signatures and, for field lists, the timestamp.
fn parse_signatures<'a>(
    format: &SignatureFormat,
    value: &'a str,
) -> (Vec<&'a str>, Option<&'a str>) {
    match format {
        SignatureFormat::Single { prefix } => match prefix {
            Some(prefix) => (
                value.strip_prefix(prefix.as_str()).into_iter().collect(),
                None,
            ),
            None => (vec![value], None),
        },
        SignatureFormat::List { separator, version } => (
            value
                .split(separator.as_str())
                .filter_map(|item| item.trim().split_once(','))
                .filter(|(v, _)| *v == version)
                .map(|(_, signature)| signature)
                .collect(),
            None,
        ),
        SignatureFormat::Fields {
            separator,
            signature,
            timestamp,
        } => {
            let mut signatures = Vec::new();
            let mut at = None;
            for field in value.split(separator.as_str()) {
                let Some((name, field_value)) = field.trim().split_once('=') else {
                    continue;
                };
                if name == signature {
                    signatures.push(field_value);
                } else if timestamp.as_deref() == Some(name) && at.is_none() {
                    at = Some(field_value);
                }
            }
            (signatures, at)
        }
    }
}

/// Everything a template can refer to, for one request.
struct Values<'a> {
    request: &'a WebhookRequest<'a>,
    timestamp: &'a str,
    id: &'a str,
    inputs: &'a Inputs,
}

impl Values<'_> {
    /// The MAC of the signed content under `key`, fed piece by piece (the body is not copied).
    fn mac(&self, scheme: &Scheme, key: &[u8]) -> Vec<u8> {
        match scheme.algorithm {
            Algorithm::Sha256 => self.mac_with::<Hmac<Sha256>>(&scheme.signed, key),
            Algorithm::Sha1 => self.mac_with::<Hmac<Sha1>>(&scheme.signed, key),
            Algorithm::Sha512 => self.mac_with::<Hmac<Sha512>>(&scheme.signed, key),
        }
    }

    fn mac_with<M: Mac + hmac::digest::KeyInit>(&self, template: &Template, key: &[u8]) -> Vec<u8> {
        let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            // HMAC takes keys of any length; this arm is never taken.
            return Vec::new();
        };
        for part in &template.0 {
            match part {
                Part::Text(text) => mac.update(text.as_bytes()),
                Part::Body => mac.update(self.request.body),
                Part::Timestamp => mac.update(self.timestamp.as_bytes()),
                Part::Id => mac.update(self.id.as_bytes()),
                Part::Method => mac.update(self.request.method.as_str().as_bytes()),
                Part::PathAndQuery => mac.update(self.request.path_and_query.as_bytes()),
                Part::Url => mac.update(self.inputs.url.as_deref().unwrap_or("").as_bytes()),
                Part::AppKey => mac.update(self.inputs.app_key.as_deref().unwrap_or("").as_bytes()),
                Part::BodySha256Hex => {
                    mac.update(hex::encode(Sha256::digest(self.request.body)).as_bytes())
                }
            }
        }
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::scheme::Preset;
    use crate::verify::testing::{headers, secret};
    use axum::http::Method;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    use bytes::Bytes;

    fn request<'a>(
        headers: &'a axum::http::HeaderMap,
        body: &'a Bytes,
        now: i64,
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            method: &Method::POST,
            path_and_query: "/webhooks/x",
            headers,
            body,
            account: None,
            now,
        }
    }

    #[test]
    fn a_template_needing_an_input_without_it_is_a_config_error() {
        let err = HmacCheck::new(
            Preset::TiktokShop.scheme(),
            Inputs::default(),
            &[secret("a", "s")],
        )
        .unwrap_err();
        assert!(err.contains("app_key"), "{err}");
        let err = HmacCheck::new(
            Preset::Square.scheme(),
            Inputs::default(),
            &[secret("a", "s")],
        )
        .unwrap_err();
        assert!(err.contains("url"), "{err}");
        assert!(HmacCheck::new(Preset::Github.scheme(), Inputs::default(), &[]).is_err());
    }

    #[test]
    fn stripe_signs_t_dot_body_with_the_whole_whsec_string() {
        // `printf '1746180000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret`
        const KNOWN: &str = "29dd869e8af1ecc37d8adcdbf0861270c6fbd4a5943e4f02160cb76f4efb04d1";
        let check = HmacCheck::new(
            Preset::Stripe.scheme(),
            Inputs::default(),
            &[secret("k1", "whsec_test_secret")],
        )
        .unwrap();
        let body = Bytes::from_static(br#"{"id":"evt_1"}"#);
        let header_value =
            "t=1746180000,v1=8d36d26c4c15fb5c3a5bb0f38a3d6a5f0f4fdb4a2b7b5e8f0f4b0c9d4a3e2f1b,v0=00";
        let h = headers(&[("stripe-signature", header_value)]);
        // The v1 above is not the real MAC: proves a wrong v1 beside a decoy v0 is refused.
        assert_eq!(
            check
                .verify(&request(&h, &body, 1_746_180_000))
                .unwrap_err(),
            VerifyError::Mismatch
        );
        let good = check.sign(&request(&h, &body, 0), Some(1_746_180_000));
        assert_eq!(good, format!("t=1746180000,v1={KNOWN}"));
        let h = headers(&[("stripe-signature", &format!("{good},v0=deadbeef"))]);
        let matched = check.verify(&request(&h, &body, 1_746_180_100)).unwrap();
        assert_eq!(matched.secret_id, "k1");
        assert_eq!(matched.timestamp, Some(1_746_180_000));
        assert_eq!(
            check
                .verify(&request(&h, &body, 1_746_180_301))
                .unwrap_err(),
            VerifyError::Expired { skew_secs: 301 }
        );
    }

    #[test]
    fn several_signatures_in_one_header_any_may_match() {
        let check = HmacCheck::new(
            Preset::StandardWebhooks.scheme(),
            Inputs::default(),
            &[secret("new", "whsec_bmV3LXNlY3JldA==")],
        )
        .unwrap();
        let body = Bytes::from_static(b"{}");
        let h = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "1000")]);
        let good = check.sign(&request(&h, &body, 1000), Some(1000));
        let list = format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1a,xyz {good}");
        let h = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1000"),
            ("webhook-signature", &list),
        ]);
        assert_eq!(
            check.verify(&request(&h, &body, 1000)).unwrap().secret_id,
            "new"
        );
    }

    #[test]
    fn a_missing_timestamp_or_id_is_missing_and_a_bad_one_malformed() {
        let check = HmacCheck::new(
            Preset::StandardWebhooks.scheme(),
            Inputs::default(),
            &[secret("k", "whsec_a2V5")],
        )
        .unwrap();
        let body = Bytes::from_static(b"{}");
        let h = headers(&[("webhook-signature", "v1,AAAA")]);
        assert_eq!(
            check.verify(&request(&h, &body, 0)).unwrap_err(),
            VerifyError::Malformed,
            "wrong length is malformed"
        );
        let sig = format!("v1,{}", BASE64.encode([0u8; 32]));
        let h = headers(&[("webhook-signature", sig.as_str()), ("webhook-id", "m")]);
        assert_eq!(
            check.verify(&request(&h, &body, 0)).unwrap_err(),
            VerifyError::Missing
        );
    }

    #[test]
    fn walmart_canonical_string_signs_method_path_time_and_body_hash() {
        let check = HmacCheck::new(
            Preset::WalmartWmSec.scheme(),
            Inputs::default(),
            &[secret("k", "walmart-secret")],
        )
        .unwrap();
        let body = Bytes::from_static(br#"{"a":1}"#);
        let h = headers(&[("wm_sec.timestamp", "1700000000")]);
        let r = request(&h, &body, 1_700_000_000);
        // Computed independently:
        // printf 'POST\n/webhooks/x\n1700000000\n%s' "$(printf '{"a":1}' | sha256sum | cut -c1-64)" \
        //   | openssl dgst -sha256 -hmac walmart-secret -binary | base64
        assert_eq!(
            check.sign(&r, Some(1_700_000_000)),
            "Yk+vf5BPYpJpWXqUhiWAlims6JyDwNoHqVA3KO/sQaQ="
        );
    }
}
