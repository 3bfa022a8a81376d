//! Who may use the console: operators named in `[console] users`, each with a password from a
//! secret. A sign-in gets a session cookie `<user>|<expires at, unix s>|<signature>`, signed
//! with a key derived from that user's password, so any replica of the console checks it
//! without shared state, and changing a password ends that user's sessions.

use hmac::{Hmac, Mac};
use orderbridge_runtime::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "ob_console";

/// One operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The name they sign in with (and the audit log shows).
    pub name: String,
    /// Their password: `{ env = "…" }` or `{ file = "…" }`.
    pub password: Secret,
}

/// The operators, the server's session key and how long a session lasts.
#[derive(Clone)]
pub struct Operators {
    users: Vec<User>,
    session_secs: i64,
    key: Vec<u8>,
}

impl std::fmt::Debug for Operators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operators")
            .field(
                "users",
                &self.users.iter().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .field("session_secs", &self.session_secs)
            .finish_non_exhaustive()
    }
}

impl Operators {
    /// Checks the users: at least one, names plain and unique, passwords not empty.
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn new(users: Vec<User>, session_minutes: u64, key: &[u8]) -> Result<Self, String> {
        if users.is_empty() {
            return Err(
                "console.users is empty: name at least one operator with a password \
                        secret (the console serves nothing without sign-in)"
                    .into(),
            );
        }
        for (i, user) in users.iter().enumerate() {
            let plain = !user.name.is_empty()
                && user.name.len() <= 64
                && user
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
            if !plain {
                return Err(format!(
                    "console.users[{i}].name must be 1 to 64 letters, digits, '.', '_', '@' or '-'"
                ));
            }
            if user.password.expose().len() < 8 {
                return Err(format!(
                    "console.users[{i}] ({}): the password must have at least 8 characters",
                    user.name
                ));
            }
            if users[..i].iter().any(|other| other.name == user.name) {
                return Err(format!("console.users: {} is named twice", user.name));
            }
        }
        Ok(Self {
            users,
            session_secs: i64::try_from(session_minutes.max(1).saturating_mul(60))
                .unwrap_or(i64::MAX),
            key: key.to_vec(),
        })
    }

    /// Whether `password` is `name`'s, compared in constant time (and the same work for a
    /// name that does not exist).
    pub fn check(&self, name: &str, password: &str) -> bool {
        let given = Sha256::digest(password.as_bytes());
        let mut found = false;
        for user in &self.users {
            let expected = Sha256::digest(user.password.expose().as_bytes());
            let same = bool::from(expected.ct_eq(&given));
            found |= same && user.name == name;
        }
        found
    }

    /// A session cookie's value for `name`, valid from `now` (unix s) for the session length.
    pub fn session(&self, name: &str, now: i64) -> Option<String> {
        let user = self.users.iter().find(|u| u.name == name)?;
        let expires = now.saturating_add(self.session_secs);
        let payload = format!("{name}|{expires}");
        Some(format!("{payload}|{}", sign(&self.key, user, &payload)))
    }

    /// The operator a session cookie's value names, if it is signed and not expired at `now`.
    pub fn verify(&self, value: &str, now: i64) -> Option<String> {
        let (payload, signature) = value.rsplit_once('|')?;
        let (name, expires) = payload.split_once('|')?;
        let user = self.users.iter().find(|u| u.name == name)?;
        let expected = sign(&self.key, user, payload);
        let valid = bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
        let fresh = expires.parse::<i64>().ok()? > now;
        (valid && fresh).then(|| name.to_owned())
    }

    /// Seconds a session lasts.
    pub fn session_secs(&self) -> i64 {
        self.session_secs
    }
}

/// The hex HMAC-SHA256 of `payload`, keyed with the server's key and `user`'s password:
/// without the server's key a cookie tells nothing of the password, and a new password ends
/// the user's sessions.
fn sign(server_key: &[u8], user: &User, payload: &str) -> String {
    let mut key = Sha256::new();
    key.update(b"orderbridge console session v2\n");
    key.update(Sha256::digest(server_key));
    key.update(Sha256::digest(user.password.expose().as_bytes()));
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.finalize()) else {
        return String::new();
    };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn operators() -> Operators {
        Operators::new(
            vec![
                User {
                    name: "ana".into(),
                    password: Secret::new("correct horse"),
                },
                User {
                    name: "bo".into(),
                    password: Secret::new("battery staple"),
                },
            ],
            60,
            b"server key",
        )
        .unwrap()
    }

    #[test]
    fn only_a_users_own_password_signs_them_in() {
        let ops = operators();
        assert!(ops.check("ana", "correct horse"));
        assert!(
            !ops.check("ana", "battery staple"),
            "another user's password"
        );
        assert!(!ops.check("ana", "correct hors"));
        assert!(!ops.check("nobody", "correct horse"));
    }

    #[test]
    fn a_session_is_the_users_until_it_expires_and_cannot_be_forged() {
        let ops = operators();
        let session = ops.session("ana", 1_000).unwrap();
        assert_eq!(ops.verify(&session, 1_001).as_deref(), Some("ana"));
        assert_eq!(ops.verify(&session, 1_000 + 3_600), None, "expired");
        let forged = session.replacen("ana", "bo", 1);
        assert_eq!(ops.verify(&forged, 1_001), None, "renamed");
        let extended = session.replace("|4600|", "|99999|");
        assert_eq!(ops.verify(&extended, 1_001), None, "extended");
        assert_eq!(ops.verify("ana|9999999999|00", 1_001), None);
        assert_eq!(ops.verify("garbage", 1_001), None);
        let other_server = Operators::new(ops.users.clone(), 60, b"another key").unwrap();
        assert_eq!(
            other_server.verify(&session, 1_001),
            None,
            "signed with another server's key"
        );
    }

    #[test]
    fn bad_user_lists_are_refused() {
        let user = |name: &str, password: &str| User {
            name: name.into(),
            password: Secret::new(password),
        };
        let new = |users| Operators::new(users, 60, b"k");
        assert!(new(vec![]).is_err());
        assert!(new(vec![user("a|b", "long enough")]).is_err());
        assert!(new(vec![user("a", "short")]).is_err());
        assert!(new(vec![user("a", "long enough"), user("a", "long enough")]).is_err());
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie("a=1; ob_console=x|y|z; b=2", COOKIE), Some("x|y|z"));
        assert_eq!(cookie("a=1", COOKIE), None);
    }
}
