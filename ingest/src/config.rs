//! Ingest configuration. Every field has a default in code; secrets come only from the
//! environment or mounted files (see [`orderbridge_runtime::Secret`]).
//!
//! Each source is a table under `ingest.sources`; a source without one is not served (404).
//! The table's own settings serve `POST /webhooks/<source>`; each entry of its `accounts`
//! table serves `POST /webhooks/<source>/<account>` with settings of the same shape (another
//! shop's app, another seller, another tenant):
//!
//! ```toml
//! [ingest.sources.shopify]
//! secrets = [{ id = "app-2026-11", secret = { env = "SHOPIFY_SECRET" } }]
//!
//! [ingest.sources.shopify.accounts.wholesale-app]
//! secrets = [{ id = "w-1", secret = { file = "/run/secrets/shopify-wholesale" } }]
//! ```
//!
//! `orderbridge config example` prints every source with every option.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::verify::credentials::Credential;
use crate::verify::extract::Extraction;
use crate::verify::scheme::{Encoding, KeyForm, Preset, SchemePatch};

/// Ingest settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest accepted body in bytes; larger gets 413. Shopify order bodies are rarely over
    /// 100 KiB even with hundreds of lines.
    pub body_limit_bytes: usize,
    /// How long to wait for the broker's acknowledgement before answering 503. Shopify gives
    /// up after 5 s, so the default stays under that.
    pub publish_timeout_ms: u64,
    /// `Retry-After` seconds sent with a 503.
    pub retry_after_secs: u32,
    /// How long a fetch of key material (SNS certificates, eBay public keys) or an SNS
    /// subscription confirmation may take.
    pub fetch_timeout_ms: u64,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle; then it is closed. Slow clients cannot hold sockets.
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request's whole body once its headers are in;
    /// then it gets 408. Providers send a webhook in one go; a body that trickles in is not
    /// one.
    pub body_read_timeout_ms: u64,
    /// Most connections open at once. Past it, new connections wait in the listen backlog
    /// until one closes. Each may hold up to `body_limit_bytes` of body in memory.
    pub max_connections: usize,
    /// At shutdown, how long requests in progress get to finish (their webhooks published
    /// and answered) before the rest are closed.
    pub shutdown_grace_ms: u64,
    /// Per-source settings; a source without settings is not served (404).
    pub sources: SourcesConfig,
    /// Record "received" on the status topic for every stored webhook (never waited for;
    /// see `orderbridge trace`).
    pub status_updates: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit_bytes: 1024 * 1024,
            publish_timeout_ms: 4000,
            retry_after_secs: 5,
            fetch_timeout_ms: 5000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_connections: 1024,
            shutdown_grace_ms: 10_000,
            sources: SourcesConfig::default(),
            status_updates: true,
        }
    }
}

/// Settings per source, named as in the routes (with `_` for `-`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// Shopify (`X-Shopify-Hmac-Sha256`).
    pub shopify: Option<Accounts<HmacConfig>>,
    /// Sumeru (`X-Sumeru-Signature: sha256=<hex>`).
    pub sumeru: Option<Accounts<HmacConfig>>,
    /// ZephyrCart (`x-zephyrcart-signature`, timestamped).
    pub zephyrcart: Option<Accounts<HmacConfig>>,
    /// Amazon SNS HTTPS subscriptions.
    pub amazon_sns: Option<Accounts<SnsConfig>>,
    /// eBay Notification API.
    pub ebay: Option<Accounts<EbayConfig>>,
    /// Etsy (Standard Webhooks headers).
    pub etsy: Option<Accounts<HmacConfig>>,
    /// TikTok Shop (`Authorization`: hex HMAC of app key + body).
    pub tiktok_shop: Option<Accounts<HmacConfig>>,
    /// Walmart Marketplace.
    pub walmart: Option<Accounts<WalmartConfig>>,
    /// Flipkart Marketplace.
    pub flipkart: Option<Accounts<FlipkartConfig>>,
    /// EasyPost (`X-Hmac-Signature: hmac-sha256-hex=<hex>`).
    pub easypost: Option<Accounts<HmacConfig>>,
    /// Ordermentum (basic auth or a custom header).
    pub ordermentum: Option<Accounts<OrdermentumConfig>>,
    /// BigCommerce (Standard Webhooks signed with the app's client secret).
    pub bigcommerce: Option<Accounts<HmacConfig>>,
    /// Any Standard Webhooks sender.
    pub standard_webhooks: Option<Accounts<StandardWebhooksConfig>>,
    /// Providers declared here, one account each (`/webhooks/custom/<name>`).
    pub custom: Option<Accounts<HmacConfig>>,
}

impl SourcesConfig {
    /// Every configured route: the source and the account (`None` for `/webhooks/<source>`).
    pub fn routes(&self) -> Vec<(Source, Option<String>)> {
        fn of<T>(source: Source, accounts: &Option<Accounts<T>>) -> Vec<(Source, Option<String>)> {
            accounts
                .iter()
                .flat_map(Accounts::routes)
                .map(|(account, _)| (source, account.map(str::to_owned)))
                .collect()
        }
        let Self {
            shopify,
            sumeru,
            zephyrcart,
            amazon_sns,
            ebay,
            etsy,
            tiktok_shop,
            walmart,
            flipkart,
            easypost,
            ordermentum,
            bigcommerce,
            standard_webhooks,
            custom,
        } = self;
        [
            of(Source::Shopify, shopify),
            of(Source::Sumeru, sumeru),
            of(Source::Zephyrcart, zephyrcart),
            of(Source::AmazonSns, amazon_sns),
            of(Source::Ebay, ebay),
            of(Source::Etsy, etsy),
            of(Source::TiktokShop, tiktok_shop),
            of(Source::Walmart, walmart),
            of(Source::Flipkart, flipkart),
            of(Source::Easypost, easypost),
            of(Source::Ordermentum, ordermentum),
            of(Source::Bigcommerce, bigcommerce),
            of(Source::StandardWebhooks, standard_webhooks),
            of(Source::Custom, custom),
        ]
        .concat()
    }
}

/// A source's settings: its own (for `/webhooks/<source>`) and per account (for
/// `/webhooks/<source>/<account>`), each of the same shape.
#[derive(Debug, Clone)]
pub struct Accounts<T> {
    /// Settings for the route without an account; `None` when the table has only `accounts`.
    pub default: Option<T>,
    /// Settings per account name.
    pub accounts: BTreeMap<String, T>,
}

impl<T> Accounts<T> {
    /// Only the route without an account.
    pub fn single(settings: T) -> Self {
        Self {
            default: Some(settings),
            accounts: BTreeMap::new(),
        }
    }

    /// The settings serving `account`'s route: the source's own for `-`
    /// (`/webhooks/<source>`), else the account's (`/webhooks/<source>/<account>`).
    pub fn route(&self, account: &str) -> Option<&T> {
        match account {
            "-" => self.default.as_ref(),
            name => self.accounts.get(name),
        }
    }

    /// Every configured route: `None` for the source's own, then each account.
    pub fn routes(&self) -> impl Iterator<Item = (Option<&str>, &T)> {
        self.default.iter().map(|settings| (None, settings)).chain(
            self.accounts
                .iter()
                .map(|(name, settings)| (Some(name.as_str()), settings)),
        )
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Accounts<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        let mut accounts = BTreeMap::new();
        if let Some(value) = table.remove("accounts") {
            let entries = toml::Table::deserialize(value).map_err(D::Error::custom)?;
            for (name, value) in entries {
                let settings = T::deserialize(value)
                    .map_err(|err| D::Error::custom(format!("accounts.{name}: {err}")))?;
                accounts.insert(name, settings);
            }
        }
        let default = if table.is_empty() {
            None
        } else {
            Some(T::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?)
        };
        Ok(Self { default, accounts })
    }
}

/// A secret with a name that may be logged and put in a header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSecret {
    /// Stable, non-secret name, e.g. `app-2026-11`; goes into `ob-secret-id` and the
    /// `orderbridge_ingest_secret_matches_total` metric, so an operator sees when the old
    /// secret of a rotation stopped being used.
    pub id: String,
    /// The secret itself (`{ env = "…" }` or `{ file = "…" }`).
    pub secret: Secret,
}

/// A source verified by the HMAC engine: its preset, or for `custom` a preset or scheme
/// named here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HmacConfig {
    /// Active secrets, all tried; the matching one's id goes into `ob-secret-id`.
    pub secrets: Vec<NamedSecret>,
    /// `custom` only: the preset to start from (`stripe`, `woocommerce`, `square`, `github`,
    /// or the HMAC scheme of `shopify`, `sumeru`, `zephyrcart`, `etsy`, `standard-webhooks`,
    /// `tiktok-shop`, `easypost`, `walmart-wm-sec`). Without one, `scheme` must name at
    /// least `header` and `encoding`.
    pub preset: Option<Preset>,
    /// Changes to the preset's scheme, for a provider whose real contract differs.
    pub scheme: SchemePatch,
    /// Replay window in seconds where the scheme signs a timestamp (default 300).
    pub tolerance_secs: Option<u64>,
    /// The app key, where the scheme signs it (TikTok Shop).
    pub app_key: Option<String>,
    /// This endpoint's public URL exactly as registered, where the scheme signs it (Square).
    pub url: Option<String>,
    /// Shopify only: the shops (`*.myshopify.com` domains) this account takes webhooks from.
    /// Shopify signs the body, not the `X-Shopify-Shop-Domain` header, and one app secret
    /// serves every shop that installed the app: with a list, a delivery naming another shop
    /// is refused (401) even when its signature holds. Empty: any shop.
    pub shops: Vec<String>,
    /// Where event id, type, order id and account are found, over the source's defaults.
    pub extract: Extraction,
}

/// Amazon SNS: messages are signed by AWS with a certificate fetched from the message's
/// `SigningCertURL`, which must be an `sns.<region>.amazonaws.com[.cn]` HTTPS URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// Topic ARNs we accept messages and subscriptions from; AWS says to reject any other.
    pub topic_arns: Vec<String>,
    /// Regions whose certificate hosts we fetch from; empty means any SNS region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Confirm a `SubscriptionConfirmation` for an allowed topic by fetching its
    /// `SubscribeURL` (default true).
    #[serde(default = "yes")]
    pub confirm_subscriptions: bool,
    /// How far a message's signed `Timestamp` may be from now, in seconds (default 3600:
    /// SNS retries an HTTPS delivery for up to an hour under a custom delivery policy).
    /// An older or later message is refused (401), so a captured message cannot be replayed
    /// for ever. `0` turns the check off.
    #[serde(default = "sns_tolerance")]
    pub tolerance_secs: u64,
}

fn yes() -> bool {
    true
}

fn sns_tolerance() -> u64 {
    3600
}

/// eBay Notification API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbayConfig {
    /// The verification token registered with the endpoint (32–80 of `[A-Za-z0-9_-]`), for
    /// the `challenge_code` handshake.
    pub verification_token: Secret,
    /// This endpoint's URL exactly as registered with eBay (the handshake hashes it).
    pub endpoint_url: String,
    /// Application keyset client id, to fetch public keys (client-credentials token).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Application keyset client secret.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// eBay's API root: `https://api.ebay.com`, or `https://api.sandbox.ebay.com`.
    #[serde(default = "ebay_api")]
    pub api_base: String,
    /// Public keys pinned by key id (PEM), used without fetching.
    #[serde(default)]
    pub public_keys: BTreeMap<String, String>,
    /// How long a fetched public key is kept; eBay recommends about an hour.
    #[serde(default = "ebay_key_cache")]
    pub key_cache_secs: u64,
}

fn ebay_api() -> String {
    "https://api.ebay.com".to_owned()
}

fn ebay_key_cache() -> u64 {
    3600
}

/// Walmart Marketplace: exactly one of the ways a subscription can authenticate.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalmartConfig {
    /// `BASIC_AUTH` (kind `basic`, in the header named at subscription) or a static header
    /// (kind `header`).
    pub credentials: Vec<Credential>,
    /// `HMAC`: the header named at subscription carries an HMAC-SHA256 of the body keyed with
    /// the client secret.
    pub hmac: Option<WalmartHmac>,
    /// Performance webhooks: `WM_SEC.SIGNATURE` over method, path, `WM_SEC.TIMESTAMP` and
    /// the body's hash, with a replay window.
    pub wm_sec: Option<WalmartWmSec>,
}

/// Walmart's subscription HMAC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalmartHmac {
    /// The `authHeaderName` given at subscription.
    pub header: String,
    /// Client secrets.
    pub secrets: Vec<NamedSecret>,
    /// Walmart does not document the encoding: `hex-or-base64` (default) accepts either.
    #[serde(default = "hex_or_base64")]
    pub encoding: Encoding,
}

fn hex_or_base64() -> Encoding {
    Encoding::HexOrBase64
}

/// Walmart's `WM_SEC.*` signature.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalmartWmSec {
    /// Webhook secrets; `WM_SEC.KEY_ID` is recorded, every secret is tried.
    pub secrets: Vec<NamedSecret>,
    /// Replay window in seconds (default 300).
    #[serde(default)]
    pub tolerance_secs: Option<u64>,
}

/// Flipkart Marketplace: the documented `FKLOGIN` scheme, or the seed's bearer token plus
/// body HMAC.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FlipkartConfig {
    /// `X_Authorization: FKLOGIN base64(app_id:sha1(X_Date + url + method + app_secret))`.
    /// The body is not signed, so the `X_Date` window is all that stops a replay.
    Fklogin {
        /// The OAuth app id.
        app_id: String,
        /// App secrets.
        secrets: Vec<NamedSecret>,
        /// The notification URL exactly as registered with Flipkart.
        url: String,
        /// `X_Date` window in seconds (default 300).
        #[serde(default)]
        tolerance_secs: Option<u64>,
    },
    /// `Authorization: Bearer <token>` and `X-Flipkart-Signature: <hex HMAC-SHA256 of body>`.
    Seed {
        /// Accepted bearer tokens (kind `header`, header `authorization`, value
        /// `Bearer …`).
        tokens: Vec<Credential>,
        /// Body HMAC secrets.
        secrets: Vec<NamedSecret>,
    },
}

/// Ordermentum: the credentials chosen when the webhook was registered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdermentumConfig {
    /// `basic` (from `authentication.basicAuth`) or `header` (from `headers`).
    pub credentials: Vec<Credential>,
}

/// A Standard Webhooks sender.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StandardWebhooksConfig {
    /// `whsec_…` secrets (HMAC, `v1`) and `whpk_…` public keys (Ed25519, `v1a`).
    pub secrets: Vec<NamedSecret>,
    /// How a `whsec_` secret becomes the key: `whsec-base64` (the spec), or `utf8` for
    /// BigCommerce's raw client secret.
    pub key: Option<KeyForm>,
    /// Replay window in seconds (default 300).
    pub tolerance_secs: Option<u64>,
    /// Where event type, order id and account are found, over the defaults (`/type` or
    /// `/scope`, `/data/order_id`, `/data/id`).
    pub extract: Extraction,
}

impl IngestConfig {
    /// Checks what serde cannot; the verifiers check their own settings when built.
    ///
    /// # Errors
    /// A description of the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.body_limit_bytes == 0 {
            return Err("ingest.body_limit_bytes must be positive".into());
        }
        if self.publish_timeout_ms == 0 {
            return Err("ingest.publish_timeout_ms must be positive".into());
        }
        for (name, value) in [
            ("fetch_timeout_ms", self.fetch_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
        ] {
            if value == 0 {
                return Err(format!("ingest.{name} must be positive"));
            }
        }
        if self.max_connections == 0 {
            return Err("ingest.max_connections must be positive".into());
        }
        crate::verify::registry::build(self, &reqwest::Client::new()).map(|_| ())
    }
}
