//! Senders that present a credential instead of signing: basic auth or a static header, as
//! chosen when the webhook was registered (Walmart's `BASIC_AUTH`, Ordermentum's
//! `authentication.basicAuth` or custom `headers`, the bearer token of Flipkart's seed mode).
//!
//! A credential proves only that the sender knows it, not that the body is untouched, so such
//! sources must be served over HTTPS. Comparison is in constant time over SHA-256 digests, so
//! neither content nor length of the expected value leaks; every credential is tried.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use orderbridge_runtime::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{header, Check, VerifyError, WebhookRequest};

/// One accepted credential; several may be active during a rotation.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Credential {
    /// HTTP basic auth: `<header>: Basic base64(username:password)`; the `Basic ` scheme word
    /// may be absent (Walmart sends the bare base64 in the header you name).
    Basic {
        /// Name for `ob-secret-id` and logs.
        id: String,
        /// Header carrying it.
        #[serde(default = "authorization")]
        header: String,
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// A header whose whole value must equal `value` (e.g. `Authorization: Bearer <token>`).
    Header {
        /// Name for `ob-secret-id` and logs.
        id: String,
        /// Header carrying it.
        header: String,
        /// The exact value, scheme word included.
        value: Secret,
    },
}

fn authorization() -> String {
    "authorization".to_owned()
}

impl Credential {
    fn id(&self) -> &str {
        match self {
            Credential::Basic { id, .. } | Credential::Header { id, .. } => id,
        }
    }

    fn header(&self) -> &str {
        match self {
            Credential::Basic { header, .. } | Credential::Header { header, .. } => header,
        }
    }

    /// The digest of what a request must present, in the form it is compared.
    fn expected(&self) -> [u8; 32] {
        match self {
            Credential::Basic {
                username, password, ..
            } => digest(format!("{username}:{}", password.expose()).as_bytes()),
            Credential::Header { value, .. } => digest(value.expose().as_bytes()),
        }
    }

    /// The digest of what `presented` carries, in the same form.
    fn presented(&self, presented: &str) -> [u8; 32] {
        match self {
            Credential::Basic { .. } => {
                let encoded = presented
                    .get(..6)
                    .filter(|word| word.eq_ignore_ascii_case("basic "))
                    .map_or(presented, |_| &presented[6..])
                    .trim();
                // Undecodable counts as wrong, compared all the same so it takes as long.
                digest(&BASE64.decode(encoded).unwrap_or_default())
            }
            Credential::Header { .. } => digest(presented.as_bytes()),
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks that a request presents one of the active credentials.
#[derive(Debug, Clone)]
pub struct CredentialCheck {
    credentials: Vec<(Credential, [u8; 32])>,
}

impl CredentialCheck {
    /// A check accepting any of `credentials`.
    ///
    /// # Errors
    /// When there is none, or one is empty.
    pub fn new(credentials: Vec<Credential>) -> Result<Self, String> {
        if credentials.is_empty() {
            return Err("no credential is configured".into());
        }
        for credential in &credentials {
            let empty = match credential {
                Credential::Basic {
                    username, password, ..
                } => username.is_empty() || password.expose().is_empty(),
                Credential::Header { value, .. } => value.expose().is_empty(),
            };
            if empty {
                return Err(format!("credential {} is empty", credential.id()));
            }
        }
        Ok(Self {
            credentials: credentials
                .into_iter()
                .map(|c| {
                    let expected = c.expected();
                    (c, expected)
                })
                .collect(),
        })
    }
}

impl Check for CredentialCheck {
    fn check(&self, request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
        let mut seen_header = false;
        let mut matched: Option<&str> = None;
        for (credential, expected) in &self.credentials {
            let Some(presented) = header(request.headers, credential.header()) else {
                continue;
            };
            seen_header = true;
            let hit = credential.presented(presented).ct_eq(expected);
            if bool::from(hit) && matched.is_none() {
                matched = Some(credential.id());
            }
        }
        match matched {
            Some(id) => Ok(id.to_owned()),
            None if seen_header => Err(VerifyError::Mismatch),
            None => Err(VerifyError::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::testing::headers;
    use axum::http::Method;
    use bytes::Bytes;

    fn check_with(check: &CredentialCheck, pairs: &[(&str, &str)]) -> Result<String, VerifyError> {
        let h = headers(pairs);
        let body = Bytes::new();
        check.check(&WebhookRequest {
            method: &Method::POST,
            path_and_query: "/",
            headers: &h,
            body: &body,
            account: None,
            now: 0,
        })
    }

    fn basic(id: &str, password: &str) -> Credential {
        Credential::Basic {
            id: id.into(),
            header: "authorization".into(),
            username: "orders".into(),
            password: Secret::new(password),
        }
    }

    #[test]
    fn basic_auth_with_or_without_the_scheme_word() {
        let check =
            CredentialCheck::new(vec![basic("2026", "pw-new"), basic("2025", "pw-old")]).unwrap();
        // printf 'orders:pw-old' | base64
        assert_eq!(
            check_with(&check, &[("authorization", "Basic b3JkZXJzOnB3LW9sZA==")]).unwrap(),
            "2025"
        );
        assert_eq!(
            check_with(&check, &[("authorization", "b3JkZXJzOnB3LW9sZA==")]).unwrap(),
            "2025"
        );
        assert_eq!(
            check_with(&check, &[("authorization", "Basic b3JkZXJzOndyb25n")]).unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(
            check_with(&check, &[("authorization", "Basic !!!")]).unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(check_with(&check, &[]).unwrap_err(), VerifyError::Missing);
    }

    #[test]
    fn a_static_header_must_match_exactly() {
        let check = CredentialCheck::new(vec![Credential::Header {
            id: "token".into(),
            header: "x-om-token".into(),
            value: Secret::new("Bearer s3cr3t"),
        }])
        .unwrap();
        assert_eq!(
            check_with(&check, &[("x-om-token", "Bearer s3cr3t")]).unwrap(),
            "token"
        );
        assert_eq!(
            check_with(&check, &[("x-om-token", "Bearer s3cr3t2")]).unwrap_err(),
            VerifyError::Mismatch
        );
        assert!(CredentialCheck::new(vec![]).is_err());
    }
}
