//! Builds every configured verifier, one per route: `(source, None)` serves
//! `/webhooks/<source>`, `(source, Some(account))` serves `/webhooks/<source>/<account>`.

use std::collections::HashMap;
use std::time::Duration;

use orderbridge_schemas::Source;

use super::{
    amazon_sns, bigcommerce, custom, easypost, ebay, etsy, flipkart, ordermentum, shopify,
    standard_webhooks, sumeru, tiktok_shop, walmart, zephyrcart, SharedVerifier,
};
use crate::config::{Accounts, IngestConfig};

/// The verifier of each route.
pub type Verifiers = HashMap<(Source, Option<String>), SharedVerifier>;

/// Builds the verifiers of every configured source and account; `http` fetches key material
/// (it must not follow redirects).
///
/// # Errors
/// The first invalid setting, named by source and account.
pub fn build(config: &IngestConfig, http: &reqwest::Client) -> Result<Verifiers, String> {
    let sources = &config.sources;
    let timeout = Duration::from_millis(config.fetch_timeout_ms);
    let mut verifiers = Verifiers::new();
    let mut add = |source: Source,
                   account: Option<&str>,
                   built: Result<SharedVerifier, String>|
     -> Result<(), String> {
        let route = match account {
            Some(name) => format!("{source} account {name}"),
            None => source.to_string(),
        };
        if let Some(name) = account {
            if !is_account_name(name) {
                return Err(format!(
                    "ingest.sources: {route}: account names are 1-64 of [A-Za-z0-9._-]"
                ));
            }
        }
        let verifier = built.map_err(|err| format!("ingest.sources: {route}: {err}"))?;
        verifiers.insert((source, account.map(str::to_owned)), verifier);
        Ok(())
    };

    fn each<T>(
        accounts: &Option<Accounts<T>>,
        mut f: impl FnMut(Option<&str>, &T) -> Result<(), String>,
    ) -> Result<(), String> {
        for (account, settings) in accounts.iter().flat_map(Accounts::routes) {
            f(account, settings)?;
        }
        Ok(())
    }

    each(&sources.shopify, |a, c| {
        add(
            Source::Shopify,
            a,
            shopify::ShopifyVerifier::new(c).map(|v| std::sync::Arc::new(v) as SharedVerifier),
        )
    })?;
    each(&sources.sumeru, |a, c| {
        add(Source::Sumeru, a, sumeru::verifier(c))
    })?;
    each(&sources.zephyrcart, |a, c| {
        add(Source::Zephyrcart, a, zephyrcart::verifier(c))
    })?;
    each(&sources.amazon_sns, |a, c| {
        add(
            Source::AmazonSns,
            a,
            amazon_sns::verifier(c, http.clone(), timeout),
        )
    })?;
    each(&sources.ebay, |a, c| {
        add(Source::Ebay, a, ebay::verifier(c, http.clone(), timeout))
    })?;
    each(&sources.etsy, |a, c| {
        add(Source::Etsy, a, etsy::verifier(c))
    })?;
    each(&sources.tiktok_shop, |a, c| {
        add(Source::TiktokShop, a, tiktok_shop::verifier(c))
    })?;
    each(&sources.walmart, |a, c| {
        add(Source::Walmart, a, walmart::verifier(c))
    })?;
    each(&sources.flipkart, |a, c| {
        add(Source::Flipkart, a, flipkart::verifier(c))
    })?;
    each(&sources.easypost, |a, c| {
        add(Source::Easypost, a, easypost::verifier(c))
    })?;
    each(&sources.ordermentum, |a, c| {
        add(Source::Ordermentum, a, ordermentum::verifier(c))
    })?;
    each(&sources.bigcommerce, |a, c| {
        add(Source::Bigcommerce, a, bigcommerce::verifier(c))
    })?;
    each(&sources.standard_webhooks, |a, c| {
        add(Source::StandardWebhooks, a, standard_webhooks::verifier(c))
    })?;
    if let Some(custom) = &sources.custom {
        if custom.default.is_some() {
            return Err(
                "ingest.sources.custom: declare each provider under accounts.<name>".into(),
            );
        }
    }
    each(&sources.custom, |a, c| {
        let name = a.unwrap_or_default();
        add(Source::Custom, a, custom::verifier(name, c))
    })?;
    Ok(verifiers)
}

fn is_account_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
