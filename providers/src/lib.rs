//! Providers' APIs: OrderBridge's clients for the commerce platforms and marketplaces it
//! reads orders from, and the stages built on them.
//!
//! Most marketplaces send a webhook that names an order and little else; history has to be
//! read page by page; some partners push nothing at all. All of that is one thing done well:
//! calling a provider's API at the rate it allows, with its own authentication, and telling
//! "try later" from "never" in its answers.
//!
//! Layout:
//! - `client/` — what every provider client shares: [`client::ApiClient`] (one request, its
//!   retries and its classification), the rate limiter, the token cache.
//! - `api.rs` — [`OrderApi`], what OrderBridge asks of any provider: one order in full, a
//!   page of orders.
//! - `config.rs` — `[api.<source>]`, per account.
//! - `completion.rs` — which raw records are thin notifications to complete, and what to
//!   fetch for each (asked by the enrich stage and the processor alike).
//! - one folder per provider: `sumeru/`, `ebay/`, `amazon/`, `shopify/`, …
//! - `metrics.rs` — every metric name of this crate.

pub mod amazon;
pub mod api;
pub mod backfill;
pub mod bigcommerce;
pub mod checkpoint;
pub mod client;
pub mod completion;
pub mod config;
pub mod ebay;
pub mod edi;
pub mod enrich;
pub mod etsy;
pub mod flipkart;
pub mod metrics;
pub mod ordermentum;
pub mod poll;
pub mod progress;
pub mod publish;
pub mod shopify;
pub mod subscribe;
pub mod sumeru;
pub mod tiktok_shop;
pub mod walmart;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use orderbridge_schemas::Source;
use serde::Deserialize;

pub use api::{Document, ListQuery, OrderApi, OrderRef, Page, TimeField, DOCUMENT_PREFIX};
pub use client::{ApiClient, ApiError, Limiter, Limiters, Refusal, RetryPolicy};
pub use config::{ApiConfig, PerAccount};
pub use metrics::ApiMetrics;

/// What every client of one process shares: the HTTP connection pool, the rate limiters of
/// each app and account, the retry policy and the request metrics.
pub struct Shared {
    http: reqwest::Client,
    limiters: Limiters,
    retry: RetryPolicy,
    metrics: Option<ApiMetrics>,
}

impl Shared {
    /// Clients with requests bounded by `config.request_timeout_ms`, counted into `metrics`.
    ///
    /// # Errors
    /// When the TLS backend cannot be set up.
    pub fn new(config: &ApiConfig, metrics: Option<ApiMetrics>) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_millis(config.request_timeout_ms.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("OrderBridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            limiters: Limiters::default(),
            retry: RetryPolicy::default(),
            metrics,
        })
    }

    /// With another retry policy for every client made from here on (tests shorten it).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The limiter of `name` (an app and account), made with this rate the first time.
    pub fn limiter(&self, name: &str, rate_per_sec: f64, burst: u32) -> Arc<Limiter> {
        self.limiters.get(name, rate_per_sec, burst)
    }

    /// A client for `provider` at the rate of `limiter`.
    pub fn client(&self, provider: &'static str, limiter: Arc<Limiter>) -> ApiClient {
        ApiClient::new(provider, self.http.clone(), limiter)
            .with_retry(self.retry)
            .with_metrics(self.metrics.clone())
    }
}

/// Every configured provider API of this process, each account's client built once, on
/// first use.
pub struct Apis {
    shared: Shared,
    config: ApiConfig,
    clients: Mutex<HashMap<(Source, String), Arc<dyn OrderApi>>>,
}

impl Apis {
    /// The APIs `config` names.
    ///
    /// # Errors
    /// When the HTTP client cannot be set up.
    pub fn new(config: ApiConfig, metrics: Option<ApiMetrics>) -> Result<Self, reqwest::Error> {
        Ok(Self::with_shared(Shared::new(&config, metrics)?, config))
    }

    /// The APIs `config` names, sharing `shared`.
    pub fn with_shared(shared: Shared, config: ApiConfig) -> Self {
        Self {
            shared,
            config,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The settings these APIs were built from.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// What every client shares.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Whether `source`'s API is configured for `account`.
    pub fn is_configured(&self, source: Source, account: &str) -> bool {
        configured(&self.config, source, account)
    }

    /// `account`'s client of `source`'s API; `None` when none is configured.
    ///
    /// # Errors
    /// When the account's settings cannot make a client (a credential that cannot be sent).
    pub fn order_api(
        &self,
        source: Source,
        account: &str,
    ) -> Result<Option<Arc<dyn OrderApi>>, ApiError> {
        let key = (source, account.to_owned());
        if let Some(client) = self.lock().get(&key) {
            return Ok(Some(Arc::clone(client)));
        }
        let Some(client) = build(&self.shared, &self.config, source, account)? else {
            return Ok(None);
        };
        Ok(Some(Arc::clone(self.lock().entry(key).or_insert(client))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Source, String), Arc<dyn OrderApi>>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `config` has `source`'s API for `account`.
pub fn configured(config: &ApiConfig, source: Source, account: &str) -> bool {
    fn has<T>(per: Option<&PerAccount<T>>, account: &str) -> bool {
        per.and_then(|p| p.for_account(account)).is_some()
    }
    match source {
        Source::Sumeru => has(config.sumeru.as_ref(), account),
        Source::Ebay => has(config.ebay.as_ref(), account),
        Source::AmazonSns => has(config.amazon_sns.as_ref(), account),
        Source::Etsy => has(config.etsy.as_ref(), account),
        Source::TiktokShop => has(config.tiktok_shop.as_ref(), account),
        Source::Walmart => has(config.walmart.as_ref(), account),
        Source::Flipkart => has(config.flipkart.as_ref(), account),
        Source::Ordermentum => has(config.ordermentum.as_ref(), account),
        Source::Bigcommerce => has(config.bigcommerce.as_ref(), account),
        Source::Shopify => has(config.shopify.as_ref(), account),
        Source::Zephyrcart
        | Source::Easypost
        | Source::StandardWebhooks
        | Source::Custom
        | Source::Edi => false,
    }
}

fn build(
    shared: &Shared,
    config: &ApiConfig,
    source: Source,
    account: &str,
) -> Result<Option<Arc<dyn OrderApi>>, ApiError> {
    /// `account`'s client made by `make` from its settings in `per`, when it has any.
    fn of<T>(
        per: Option<&PerAccount<T>>,
        account: &str,
        make: impl FnOnce(&T) -> Result<Arc<dyn OrderApi>, ApiError>,
    ) -> Result<Option<Arc<dyn OrderApi>>, ApiError> {
        per.and_then(|p| p.for_account(account))
            .map(make)
            .transpose()
    }
    match source {
        Source::Sumeru => of(config.sumeru.as_ref(), account, |c| {
            Ok(Arc::new(sumeru::SumeruApi::new(shared, account, c)?))
        }),
        Source::Ebay => of(config.ebay.as_ref(), account, |c| {
            Ok(Arc::new(ebay::EbayApi::new(shared, account, c)))
        }),
        Source::AmazonSns => of(config.amazon_sns.as_ref(), account, |c| {
            Ok(Arc::new(amazon::AmazonApi::new(shared, account, c)))
        }),
        Source::Etsy => of(config.etsy.as_ref(), account, |c| {
            Ok(Arc::new(etsy::EtsyApi::new(shared, account, c)?))
        }),
        Source::TiktokShop => of(config.tiktok_shop.as_ref(), account, |c| {
            Ok(Arc::new(tiktok_shop::TiktokShopApi::new(
                shared, account, c,
            )))
        }),
        Source::Walmart => of(config.walmart.as_ref(), account, |c| {
            Ok(Arc::new(walmart::WalmartApi::new(shared, account, c)?))
        }),
        Source::Flipkart => of(config.flipkart.as_ref(), account, |c| {
            Ok(Arc::new(flipkart::FlipkartApi::new(shared, account, c)))
        }),
        Source::Ordermentum => of(config.ordermentum.as_ref(), account, |c| {
            Ok(Arc::new(ordermentum::OrdermentumApi::new(
                shared, account, c,
            )?))
        }),
        Source::Bigcommerce => of(config.bigcommerce.as_ref(), account, |c| {
            Ok(Arc::new(bigcommerce::BigcommerceApi::new(
                shared, account, c,
            )?))
        }),
        Source::Shopify => of(config.shopify.as_ref(), account, |c| {
            Ok(Arc::new(shopify::ShopifyApi::new(shared, account, c)?))
        }),
        Source::Zephyrcart
        | Source::Easypost
        | Source::StandardWebhooks
        | Source::Custom
        | Source::Edi => Ok(None),
    }
}

/// An id a provider sends as a number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// `450789469`.
    Number(u64),
    /// `"A-1001"`.
    Text(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Text(s) => f.write_str(s.trim()),
        }
    }
}
