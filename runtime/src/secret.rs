//! Secrets: read from the environment or a mounted file, never from the config text itself,
//! and never printed (`Debug` and `Display` say `[redacted]`).
//!
//! In TOML a secret is a table naming where it lives:
//!
//! ```toml
//! secret = { env = "SHOPIFY_APP_SECRET" }
//! secret = { file = "/run/secrets/shopify-app-secret" }
//! ```
//!
//! It is resolved while the configuration is read, so a missing variable or file fails at
//! start-up with its name, not at the first webhook.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// A secret value. Compare it only in constant time (the verifiers do).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value obtained elsewhere (tests, `dev`).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes, for keying a MAC or building a credential.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRef {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let reference = SecretRef::deserialize(deserializer)?;
        match (reference.env, reference.file) {
            (Some(name), None) => std::env::var(&name).map(Secret).map_err(|_| {
                D::Error::custom(format!("secret: environment variable {name} is not set"))
            }),
            (None, Some(path)) => std::fs::read_to_string(&path)
                // Mounted secret files usually end in a newline that is not part of the secret.
                .map(|text| Secret(text.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|err| {
                    D::Error::custom(format!("secret: cannot read {}: {err}", path.display()))
                }),
            _ => Err(D::Error::custom(
                "secret: give exactly one of `env` or `file`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        secret: Secret,
    }

    #[test]
    fn reads_from_a_file_and_never_prints_itself() {
        let dir = std::env::temp_dir().join(format!("ob-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        std::fs::write(&path, "hunter2\n").unwrap();
        let json = serde_json::json!({ "secret": { "file": path } });
        let holder: Holder = serde_json::from_value(json).unwrap();
        assert_eq!(holder.secret.expose(), "hunter2");
        assert_eq!(format!("{holder:?}"), "Holder { secret: [redacted] }");
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let err = serde_json::from_str::<Holder>(r#"{"secret":{"env":"OB_TEST_SURELY_UNSET"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("OB_TEST_SURELY_UNSET"), "{err}");
        let err = serde_json::from_str::<Holder>(r#"{"secret":{}}"#).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }
}
