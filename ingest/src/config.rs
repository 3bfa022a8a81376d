//! Ingest configuration. Every field has a default in code; secrets come only from the
//! environment or mounted files (see [`orderbridge_runtime::Secret`]).

use std::net::SocketAddr;

use orderbridge_runtime::Secret;
use serde::Deserialize;

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
    /// Per-source settings; a source without settings is not served (404).
    pub sources: SourcesConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit_bytes: 1024 * 1024,
            publish_timeout_ms: 4000,
            retry_after_secs: 5,
            sources: SourcesConfig::default(),
        }
    }
}

/// Settings per source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// Shopify.
    pub shopify: Option<ShopifyConfig>,
}

/// Shopify: webhooks are signed with the app's client secret; during a rotation both the old
/// and the new secret sign for up to an hour, so several can be active.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyConfig {
    /// Active secrets, tried in order; the matching one's id goes into `ob-secret-id`.
    pub secrets: Vec<NamedSecret>,
}

/// A secret with a name that may be logged and put in a header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSecret {
    /// Stable, non-secret name, e.g. `app-2026-11`.
    pub id: String,
    /// The secret itself (`{ env = "…" }` or `{ file = "…" }`).
    pub secret: Secret,
}

impl IngestConfig {
    /// Checks what serde cannot.
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
        if let Some(shopify) = &self.sources.shopify {
            if shopify.secrets.is_empty() {
                return Err("ingest.sources.shopify.secrets must name at least one secret".into());
            }
            if shopify.secrets.iter().any(|s| s.secret.expose().is_empty()) {
                return Err("ingest.sources.shopify.secrets: a secret is empty".into());
            }
        }
        Ok(())
    }
}
