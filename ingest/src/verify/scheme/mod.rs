//! The HMAC engine: one description of "an HMAC over some bytes, encoded somehow, in some
//! header, maybe with a timestamp", and named presets for the providers that sign that way.
//!
//! A [`Scheme`] is data. It says which header holds the signature and in what form (a single
//! value with an optional prefix such as `sha256=`; a Standard-Webhooks list `v1,<sig> v1,<sig>`;
//! Stripe-style fields `t=…,v1=…`), the hash, the encoding, the signed content as a template
//! (`{body}`, `{timestamp}.{body}`, `{id}.{timestamp}.{body}`, `{app_key}{body}`,
//! `{url}{body}`, `{method}\n{path_and_query}\n{timestamp}\n{body_sha256_hex}`), how a secret
//! becomes a key, and where a signed timestamp comes from and how far it may drift.
//!
//! An [`HmacCheck`] is a scheme with its keys derived once, at start-up. Verifying tries every
//! active key against every signature in the header, each comparison in constant time, and
//! always all of them, so the time taken does not say which key came close.

//!
//! Layout: this file holds the description and its parts; `presets.rs` the named presets;
//! `check.rs` the verification itself.

mod check;
mod presets;

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Deserializer};
use unicode_normalization::UnicodeNormalization;

pub(crate) use check::check_window;
pub use check::{HmacCheck, Matched};
pub use presets::Preset;

/// Default replay window where a scheme signs a timestamp: what Stripe's and the Standard
/// Webhooks reference libraries use.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// How a provider signs its webhooks with a shared secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// Header carrying the signature(s); case-insensitive.
    pub header: String,
    /// How the header's value holds the signature(s).
    #[serde(default)]
    pub format: SignatureFormat,
    /// The HMAC's hash function.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// How the MAC is written.
    pub encoding: Encoding,
    /// What is signed (see [`Template`]).
    #[serde(default)]
    pub signed: Template,
    /// How a configured secret becomes the HMAC key.
    #[serde(default)]
    pub key: KeyForm,
    /// Header whose value `{id}` stands for.
    #[serde(default)]
    pub id_header: Option<String>,
    /// Where the signed timestamp comes from and how far it may drift; absent when the scheme
    /// signs none.
    #[serde(default)]
    pub timestamp: Option<TimestampRule>,
}

/// How a header's value holds signatures.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SignatureFormat {
    /// The whole value is one signature, after an optional prefix (`sha256=`,
    /// `hmac-sha256-hex=`), which must be present when configured.
    Single {
        /// Prefix before the encoded MAC.
        #[serde(default)]
        prefix: Option<String>,
    },
    /// A list of `<version>,<signature>` items (Standard Webhooks: space-separated `v1,…`);
    /// items of other versions are ignored.
    List {
        /// Separator between items.
        separator: String,
        /// The version whose items are HMAC signatures.
        version: String,
    },
    /// `key=value` fields (Stripe: `t=…,v1=…,v1=…`); every field named `signature` is a
    /// candidate, and the one named `timestamp` (if any) is the signed time.
    Fields {
        /// Separator between fields.
        separator: String,
        /// Name of the signature fields.
        signature: String,
        /// Name of the timestamp field.
        #[serde(default)]
        timestamp: Option<String>,
    },
}

impl Default for SignatureFormat {
    fn default() -> Self {
        SignatureFormat::Single { prefix: None }
    }
}

/// The HMAC's hash function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// HMAC-SHA256: every current provider.
    #[default]
    Sha256,
    /// HMAC-SHA1: legacy headers (GitHub `X-Hub-Signature`, Square `x-square-signature`).
    Sha1,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    fn output_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
            Algorithm::Sha512 => 64,
        }
    }
}

/// How a MAC is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Hexadecimal (either case).
    Hex,
    /// Standard base64 with padding.
    Base64,
    /// Hex when the value is hex of the MAC's length, base64 otherwise: for contracts that do
    /// not say (Walmart's notification HMAC). Both decodings are compared to the same MAC, so
    /// accepting either admits nothing a single encoding would refuse.
    HexOrBase64,
}

impl Encoding {
    fn decode(self, text: &str, len: usize) -> Option<Vec<u8>> {
        let hex = || hex::decode(text).ok().filter(|bytes| bytes.len() == len);
        let base64 = || BASE64.decode(text).ok().filter(|bytes| bytes.len() == len);
        match self {
            Encoding::Hex => hex(),
            Encoding::Base64 => base64(),
            Encoding::HexOrBase64 => hex().or_else(base64),
        }
    }

    /// Writes `mac` in this encoding (hex is lowercase), for senders and tests.
    pub fn encode(self, mac: &[u8]) -> String {
        match self {
            Encoding::Hex | Encoding::HexOrBase64 => hex::encode(mac),
            Encoding::Base64 => BASE64.encode(mac),
        }
    }
}

/// How a configured secret becomes the HMAC key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyForm {
    /// The secret's UTF-8 bytes as they are (Shopify, Stripe's whole `whsec_…` string).
    #[default]
    Utf8,
    /// Base64-decoded, after dropping a `whsec_` prefix (Standard Webhooks, Etsy).
    WhsecBase64,
    /// NFKD-normalized, then UTF-8 (EasyPost).
    Nfkd,
    /// With the HTML entities `wp_specialchars_decode(…, ENT_QUOTES)` decodes replaced
    /// (WooCommerce signs with `&` where the stored secret says `&amp;`).
    HtmlEntitiesDecoded,
}

impl KeyForm {
    /// The key bytes for `secret`.
    ///
    /// # Errors
    /// When the secret is not in the form (not base64 after `whsec_`).
    pub fn derive(self, secret: &str) -> Result<Vec<u8>, String> {
        match self {
            KeyForm::Utf8 => Ok(secret.as_bytes().to_vec()),
            KeyForm::WhsecBase64 => BASE64
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .map_err(|_| "not base64 after the whsec_ prefix".to_owned()),
            KeyForm::Nfkd => Ok(secret.nfkd().collect::<String>().into_bytes()),
            KeyForm::HtmlEntitiesDecoded => Ok(wp_specialchars_decode(secret).into_bytes()),
        }
    }
}

/// What `wp_specialchars_decode($s, ENT_QUOTES)` does: exactly these entities, nothing else.
fn wp_specialchars_decode(text: &str) -> String {
    const ENTITIES: [(&str, &str); 7] = [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#039;", "'"),
        ("&#x27;", "'"),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        if rest.starts_with('&') {
            for (entity, plain) in ENTITIES {
                if let Some(after) = rest.strip_prefix(entity) {
                    out.push_str(plain);
                    rest = after;
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Where a signed timestamp comes from and how far it may drift from now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampRule {
    /// Header holding it; absent when it is a field of the signature header
    /// ([`SignatureFormat::Fields`]).
    #[serde(default)]
    pub header: Option<String>,
    /// Seconds it may differ from now, in either direction.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_SECS
}

/// One piece of the signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// The raw body.
    Body,
    /// The signed timestamp, as sent.
    Timestamp,
    /// The value of the scheme's `id_header`.
    Id,
    /// The request method, upper case.
    Method,
    /// The path and query as received.
    PathAndQuery,
    /// The configured public URL of the endpoint (Square signs the notification URL).
    Url,
    /// The configured app key (TikTok Shop signs `app_key + body`).
    AppKey,
    /// Lowercase hex SHA-256 of the body (Walmart).
    BodySha256Hex,
}

/// The signed content as a template: literal text with `{body}`, `{timestamp}`, `{id}`,
/// `{method}`, `{path_and_query}`, `{url}`, `{app_key}` and `{body_sha256_hex}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl Default for Template {
    fn default() -> Self {
        Template(vec![Part::Body])
    }
}

impl Template {
    /// Whether the template uses `part`.
    pub fn uses(&self, part: &Part) -> bool {
        self.0.contains(part)
    }
}

impl FromStr for Template {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in signed template {text:?}"))?;
            parts.push(match &after[..close] {
                "body" => Part::Body,
                "timestamp" => Part::Timestamp,
                "id" => Part::Id,
                "method" => Part::Method,
                "path_and_query" => Part::PathAndQuery,
                "url" => Part::Url,
                "app_key" => Part::AppKey,
                "body_sha256_hex" => Part::BodySha256Hex,
                other => return Err(format!("unknown placeholder {{{other}}} in {text:?}")),
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template(parts))
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Fields of a [`Scheme`] that configuration may change on top of a preset, so that a
/// provider whose real contract differs from the preset is matched without code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemePatch {
    /// See [`Scheme::header`].
    pub header: Option<String>,
    /// See [`Scheme::format`].
    pub format: Option<SignatureFormat>,
    /// See [`Scheme::algorithm`].
    pub algorithm: Option<Algorithm>,
    /// See [`Scheme::encoding`].
    pub encoding: Option<Encoding>,
    /// See [`Scheme::signed`].
    pub signed: Option<Template>,
    /// See [`Scheme::key`].
    pub key: Option<KeyForm>,
    /// See [`Scheme::id_header`].
    pub id_header: Option<String>,
    /// See [`Scheme::timestamp`]; `{}` keeps defaults, and a scheme that signs none has none.
    pub timestamp: Option<TimestampRule>,
    /// Drops the preset's timestamp rule, for a contract that signs no time.
    #[serde(default)]
    pub no_timestamp: bool,
}

impl Scheme {
    /// This scheme with `patch` applied.
    pub fn patched(mut self, patch: &SchemePatch) -> Self {
        let SchemePatch {
            header,
            format,
            algorithm,
            encoding,
            signed,
            key,
            id_header,
            timestamp,
            no_timestamp,
        } = patch.clone();
        if let Some(header) = header {
            self.header = header;
        }
        if let Some(format) = format {
            self.format = format;
        }
        if let Some(algorithm) = algorithm {
            self.algorithm = algorithm;
        }
        if let Some(encoding) = encoding {
            self.encoding = encoding;
        }
        if let Some(signed) = signed {
            self.signed = signed;
        }
        if let Some(key) = key {
            self.key = key;
        }
        if id_header.is_some() {
            self.id_header = id_header;
        }
        if timestamp.is_some() {
            self.timestamp = timestamp;
        }
        if no_timestamp {
            self.timestamp = None;
        }
        self
    }

    /// Sets the replay window, where the scheme signs a timestamp.
    pub fn with_tolerance(mut self, tolerance_secs: Option<u64>) -> Self {
        if let (Some(rule), Some(secs)) = (self.timestamp.as_mut(), tolerance_secs) {
            rule.tolerance_secs = secs;
        }
        self
    }

    /// Checks that the scheme can be evaluated: every placeholder has a value source.
    ///
    /// # Errors
    /// A description of what is missing.
    pub fn validate(&self, inputs: &Inputs) -> Result<(), String> {
        if self.header.trim().is_empty() {
            return Err("the signature header name is empty".into());
        }
        if self.signed.uses(&Part::Timestamp) && self.timestamp.is_none() {
            return Err("the signed template uses {timestamp} but no timestamp is read".into());
        }
        if let Some(rule) = &self.timestamp {
            let from_fields = matches!(
                &self.format,
                SignatureFormat::Fields {
                    timestamp: Some(_),
                    ..
                }
            );
            if rule.header.is_none() && !from_fields {
                return Err("the timestamp has neither a header nor a signature field".into());
            }
        }
        if self.signed.uses(&Part::Id) && self.id_header.is_none() {
            return Err("the signed template uses {id} but id_header is not set".into());
        }
        if self.signed.uses(&Part::AppKey) && inputs.app_key.is_none() {
            return Err("the signed template uses {app_key}: set app_key".into());
        }
        if self.signed.uses(&Part::Url) && inputs.url.is_none() {
            return Err("the signed template uses {url}: set url".into());
        }
        Ok(())
    }
}

/// Values a template may need beyond the request: configuration, not secrets.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `{app_key}`.
    pub app_key: Option<String>,
    /// `{url}`: the endpoint's public URL exactly as registered with the provider.
    pub url: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn templates_parse_and_refuse_unknown_placeholders() {
        let t: Template = "{id}.{timestamp}.{body}".parse().unwrap();
        assert_eq!(
            t.0,
            vec![
                Part::Id,
                Part::Text(".".into()),
                Part::Timestamp,
                Part::Text(".".into()),
                Part::Body
            ]
        );
        assert!("{bogus}".parse::<Template>().is_err());
        assert!("{body".parse::<Template>().is_err());
    }

    #[test]
    fn key_forms() {
        assert_eq!(KeyForm::Utf8.derive("whsec_abc").unwrap(), b"whsec_abc");
        assert_eq!(
            KeyForm::WhsecBase64.derive("whsec_aGVsbG8=").unwrap(),
            b"hello"
        );
        assert!(KeyForm::WhsecBase64.derive("whsec_!!").is_err());
        // U+FB01 (the "fi" ligature) decomposes to "fi" under NFKD; so does the full-width A.
        assert_eq!(KeyForm::Nfkd.derive("\u{fb01}\u{ff21}").unwrap(), b"fiA");
        assert_eq!(
            KeyForm::HtmlEntitiesDecoded
                .derive("a&amp;b&lt;c&#039;d&eacute;")
                .unwrap(),
            "a&b<c'd&eacute;".as_bytes(),
            "only the entities WordPress decodes"
        );
    }

    #[test]
    fn patches_change_only_what_they_name() {
        let patched = Preset::Zephyrcart.scheme().patched(&SchemePatch {
            encoding: Some(Encoding::Base64),
            no_timestamp: true,
            signed: Some("{body}".parse().unwrap()),
            ..SchemePatch::default()
        });
        assert_eq!(patched.header, "x-zephyrcart-signature");
        assert_eq!(patched.encoding, Encoding::Base64);
        assert_eq!(patched.timestamp, None);
    }
}
