//! `[api.<source>]`: how OrderBridge reaches each provider's API, per account.
//!
//! A source's table holds the settings used for any account without its own; each entry of
//! its `accounts` table holds one account's (the account as it appears in order keys and the
//! `ob-account` header: Etsy's shop id, Amazon's seller id, …):
//!
//! ```toml
//! [api.etsy]
//! keystring = "1aa2bb33c44d55eeeeee6fff"
//! shared_secret = { env = "ETSY_SHARED_SECRET" }
//! refresh_token = { env = "ETSY_REFRESH_TOKEN" }
//!
//! [api.etsy.accounts.12345]
//! refresh_token = { env = "ETSY_SHOP_12345_REFRESH_TOKEN" }
//! # … every field again: an account's table is whole, not a patch.
//! ```
//!
//! Secrets come only from the environment or mounted files (`{ env = … }`, `{ file = … }`).

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::amazon::AmazonApiConfig;
use crate::bigcommerce::BigcommerceApiConfig;
use crate::ebay::EbayApiConfig;
use crate::etsy::EtsyApiConfig;
use crate::flipkart::FlipkartApiConfig;
use crate::ordermentum::OrdermentumApiConfig;
use crate::shopify::ShopifyApiConfig;
use crate::sumeru::SumeruApiConfig;
use crate::tiktok_shop::TiktokShopApiConfig;
use crate::walmart::WalmartApiConfig;

/// Every provider's API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// How long one request to a provider may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// Sumeru, the attribution platform.
    pub sumeru: Option<PerAccount<SumeruApiConfig>>,
    /// eBay's Sell Fulfillment API, per seller.
    pub ebay: Option<PerAccount<EbayApiConfig>>,
    /// Amazon's Selling Partner API, for the `amazon-sns` source, per seller id.
    pub amazon_sns: Option<PerAccount<AmazonApiConfig>>,
    /// Etsy's Open API v3, per shop id.
    pub etsy: Option<PerAccount<EtsyApiConfig>>,
    /// TikTok Shop's Open API, per shop id.
    pub tiktok_shop: Option<PerAccount<TiktokShopApiConfig>>,
    /// Walmart Marketplace's API, per partner id.
    pub walmart: Option<PerAccount<WalmartApiConfig>>,
    /// Flipkart's Seller API, per seller id.
    pub flipkart: Option<PerAccount<FlipkartApiConfig>>,
    /// Ordermentum's API, per supplier (`entityId`).
    pub ordermentum: Option<PerAccount<OrdermentumApiConfig>>,
    /// BigCommerce's Orders API, per store hash.
    pub bigcommerce: Option<PerAccount<BigcommerceApiConfig>>,
    /// Shopify's Admin GraphQL API, per shop (`<shop>.myshopify.com`).
    pub shopify: Option<PerAccount<ShopifyApiConfig>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 30_000,
            sumeru: None,
            ebay: None,
            amazon_sns: None,
            etsy: None,
            tiktok_shop: None,
            walmart: None,
            flipkart: None,
            ordermentum: None,
            bigcommerce: None,
            shopify: None,
        }
    }
}

/// A source's API settings: its own, for any account without a table, and per account.
#[derive(Debug, Clone)]
pub struct PerAccount<T> {
    /// For accounts without their own.
    pub default: Option<T>,
    /// Per account.
    pub accounts: BTreeMap<String, T>,
}

impl<T> PerAccount<T> {
    /// The settings of `account`: its own, else the source's.
    pub fn for_account(&self, account: &str) -> Option<&T> {
        self.accounts.get(account).or(self.default.as_ref())
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for PerAccount<T> {
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
