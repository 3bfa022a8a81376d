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

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use super::{header, Check, VerifyError, WebhookRequest};
use crate::config::NamedSecret;

/// At most this many signatures are read from one header: a rotation sends two or three, and
/// a header with thousands must not buy thousands of HMACs.
const MAX_SIGNATURES: usize = 8;

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

/// A named preset: how a provider signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body.
    Shopify,
    /// `X-Sumeru-Signature: sha256=<hex>` of the body (seed 000).
    Sumeru,
    /// `x-zephyrcart-signature: t=<unix>,v1=<hex>` of `t.body`, with a replay window.
    Zephyrcart,
    /// Standard Webhooks `v1`: `webhook-signature: v1,<base64>` of `id.timestamp.body`,
    /// key base64 after `whsec_`.
    StandardWebhooks,
    /// Etsy: Standard Webhooks headers and key form.
    Etsy,
    /// TikTok Shop: `Authorization: <hex>` of `app_key + body`.
    TiktokShop,
    /// EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<hex>` of the body, secret NFKD.
    Easypost,
    /// Walmart performance webhooks: `WM_SEC.SIGNATURE`, base64 HMAC-SHA256 of
    /// `METHOD\nPATH\nTIMESTAMP\nsha256hex(body)`, with `WM_SEC.TIMESTAMP`.
    WalmartWmSec,
    /// Stripe: `Stripe-Signature: t=…,v1=…`, hex HMAC-SHA256 of `t.body`, the whole `whsec_…`
    /// string as key, 5-minute tolerance.
    Stripe,
    /// WooCommerce: `X-WC-Webhook-Signature`, base64 of the body, secret HTML-entity decoded.
    Woocommerce,
    /// Square: `x-square-hmacsha256-signature`, base64 of notification URL + body.
    Square,
    /// GitHub-style `X-Hub-Signature-256: sha256=<hex>` of the body; the default for small
    /// platforms that copy it.
    Github,
}

impl Preset {
    /// The preset's scheme.
    pub fn scheme(self) -> Scheme {
        let single = |header: &str, prefix: Option<&str>, encoding, signed: &str| Scheme {
            header: header.to_owned(),
            format: SignatureFormat::Single {
                prefix: prefix.map(str::to_owned),
            },
            algorithm: Algorithm::Sha256,
            encoding,
            signed: template(signed),
            key: KeyForm::Utf8,
            id_header: None,
            timestamp: None,
        };
        let standard_webhooks = || Scheme {
            header: "webhook-signature".into(),
            format: SignatureFormat::List {
                separator: " ".into(),
                version: "v1".into(),
            },
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Base64,
            signed: template("{id}.{timestamp}.{body}"),
            key: KeyForm::WhsecBase64,
            id_header: Some("webhook-id".into()),
            timestamp: Some(TimestampRule {
                header: Some("webhook-timestamp".into()),
                tolerance_secs: DEFAULT_TOLERANCE_SECS,
            }),
        };
        let stripe_like = |header: &str| Scheme {
            header: header.to_owned(),
            format: SignatureFormat::Fields {
                separator: ",".into(),
                signature: "v1".into(),
                timestamp: Some("t".into()),
            },
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            signed: template("{timestamp}.{body}"),
            key: KeyForm::Utf8,
            id_header: None,
            timestamp: Some(TimestampRule {
                header: None,
                tolerance_secs: DEFAULT_TOLERANCE_SECS,
            }),
        };
        match self {
            Preset::Shopify => single("x-shopify-hmac-sha256", None, Encoding::Base64, "{body}"),
            Preset::Sumeru => single(
                "x-sumeru-signature",
                Some("sha256="),
                Encoding::Hex,
                "{body}",
            ),
            Preset::Zephyrcart => stripe_like("x-zephyrcart-signature"),
            Preset::StandardWebhooks | Preset::Etsy => standard_webhooks(),
            Preset::TiktokShop => single("authorization", None, Encoding::Hex, "{app_key}{body}"),
            Preset::Easypost => Scheme {
                key: KeyForm::Nfkd,
                ..single(
                    "x-hmac-signature",
                    Some("hmac-sha256-hex="),
                    Encoding::Hex,
                    "{body}",
                )
            },
            Preset::WalmartWmSec => Scheme {
                timestamp: Some(TimestampRule {
                    header: Some("wm_sec.timestamp".into()),
                    tolerance_secs: DEFAULT_TOLERANCE_SECS,
                }),
                ..single(
                    "wm_sec.signature",
                    None,
                    Encoding::Base64,
                    "{method}\n{path_and_query}\n{timestamp}\n{body_sha256_hex}",
                )
            },
            Preset::Stripe => stripe_like("stripe-signature"),
            Preset::Woocommerce => Scheme {
                key: KeyForm::HtmlEntitiesDecoded,
                ..single("x-wc-webhook-signature", None, Encoding::Base64, "{body}")
            },
            Preset::Square => single(
                "x-square-hmacsha256-signature",
                None,
                Encoding::Base64,
                "{url}{body}",
            ),
            Preset::Github => single(
                "x-hub-signature-256",
                Some("sha256="),
                Encoding::Hex,
                "{body}",
            ),
        }
    }
}

fn template(text: &str) -> Template {
    // Presets are literals of this file; a bad one fails every test.
    text.parse().unwrap_or_else(|err| panic!("preset: {err}"))
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
    use crate::verify::testing::{headers, secret};
    use axum::http::Method;
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
