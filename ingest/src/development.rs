//! Every source configured at once with one secret: what `orderbridge dev` serves (with the
//! public development secret below, unless given `--config`), and what the fuzzers and the
//! benchmark build their verifiers from (with secrets of their own).
//!
//! The development secret is public on purpose: `dev` is for a laptop, never for a port the
//! internet can reach.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use orderbridge_runtime::Secret;

use crate::config::{
    Accounts, EbayConfig, FlipkartConfig, HmacConfig, NamedSecret, OrdermentumConfig, SnsConfig,
    SourcesConfig, StandardWebhooksConfig, WalmartConfig, WalmartWmSec,
};
use crate::verify::credentials::Credential;
use crate::verify::scheme::Preset;

/// The HMAC secret of every HMAC source in `dev`.
pub const DEV_SECRET: &str = "orderbridge-dev-secret";
/// The Standard Webhooks / Etsy secret (`whsec_` + base64 of [`DEV_SECRET`]).
pub const DEV_WHSEC: &str = "whsec_b3JkZXJicmlkZ2UtZGV2LXNlY3JldA==";
/// TikTok Shop's app key in `dev`.
pub const DEV_APP_KEY: &str = "orderbridge-dev-app-key";
/// The eBay verification token in `dev` (32–80 of `[A-Za-z0-9_-]`).
pub const DEV_EBAY_TOKEN: &str = "orderbridge-dev-ebay-verification-token";
/// The SNS topic `dev` accepts.
pub const DEV_SNS_TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:orderbridge-dev";
/// The basic-auth user of Ordermentum (its password is the secret).
pub const DEV_USER: &str = "orderbridge";
/// The public half of the P-256 key `dev` accepts eBay signatures from (the test key in
/// `tests/support/keys/ebay-signing.key`).
const DEV_EBAY_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWO3hFBOthCeU9zwvmC6iZeSOBxjb
t1sP2QTlViEvnsBo02ZBXMKofTMrPDIiOAFHotuBb+MS/ROqi+panaB04g==
-----END PUBLIC KEY-----";

fn secrets(value: &str) -> Vec<NamedSecret> {
    vec![NamedSecret {
        id: "dev".into(),
        secret: Secret::new(value),
    }]
}

/// Every source, with the development secrets; `base` is ingest's own URL.
pub fn sources(base: &str) -> SourcesConfig {
    sources_with(base, DEV_SECRET)
}

/// Every source, with `secret` wherever a source takes a shared secret (as `whsec_` +
/// base64 of it for Etsy and Standard Webhooks); `base` is ingest's own URL.
pub fn sources_with(base: &str, secret: &str) -> SourcesConfig {
    let whsec = format!("whsec_{}", BASE64.encode(secret));
    let hmac = |value: &str| HmacConfig {
        secrets: secrets(value),
        ..HmacConfig::default()
    };
    let basic = || Credential::Basic {
        id: "dev".into(),
        header: "authorization".into(),
        username: DEV_USER.into(),
        password: Secret::new(secret),
    };
    SourcesConfig {
        shopify: Some(Accounts::single(hmac(secret))),
        sumeru: Some(Accounts::single(hmac(secret))),
        zephyrcart: Some(Accounts::single(hmac(secret))),
        amazon_sns: Some(Accounts::single(SnsConfig {
            topic_arns: vec![DEV_SNS_TOPIC.into()],
            regions: Vec::new(),
            confirm_subscriptions: true,
            tolerance_secs: 3600,
        })),
        ebay: Some(Accounts::single(EbayConfig {
            verification_token: Secret::new(DEV_EBAY_TOKEN),
            endpoint_url: format!("{base}/webhooks/ebay"),
            client_id: None,
            client_secret: None,
            api_base: "https://api.ebay.com".into(),
            public_keys: BTreeMap::from([("dev".to_owned(), DEV_EBAY_KEY.to_owned())]),
            key_cache_secs: 3600,
        })),
        etsy: Some(Accounts::single(hmac(&whsec))),
        tiktok_shop: Some(Accounts::single(HmacConfig {
            app_key: Some(DEV_APP_KEY.into()),
            ..hmac(secret)
        })),
        walmart: Some(Accounts::single(WalmartConfig {
            wm_sec: Some(WalmartWmSec {
                secrets: secrets(secret),
                tolerance_secs: None,
            }),
            ..WalmartConfig::default()
        })),
        flipkart: Some(Accounts::single(FlipkartConfig::Fklogin {
            app_id: "orderbridge-dev".into(),
            secrets: secrets(secret),
            url: format!("{base}/webhooks/flipkart"),
            tolerance_secs: None,
        })),
        easypost: Some(Accounts::single(hmac(secret))),
        ordermentum: Some(Accounts::single(OrdermentumConfig {
            credentials: vec![basic()],
        })),
        bigcommerce: Some(Accounts::single(hmac(secret))),
        standard_webhooks: Some(Accounts::single(StandardWebhooksConfig {
            secrets: secrets(&whsec),
            ..StandardWebhooksConfig::default()
        })),
        custom: Some(Accounts {
            default: None,
            accounts: [
                ("stripe", Preset::Stripe),
                ("woocommerce", Preset::Woocommerce),
                ("github", Preset::Github),
            ]
            .into_iter()
            .map(|(name, preset)| {
                (
                    name.to_owned(),
                    HmacConfig {
                        preset: Some(preset),
                        ..hmac(secret)
                    },
                )
            })
            .collect(),
        }),
    }
}

/// How to sign for `source` with the development secrets, for the `dev` banner.
pub fn how_to_sign(source: &str) -> String {
    match source {
        "etsy" | "standard-webhooks" => format!("secret {DEV_WHSEC}"),
        "bigcommerce" => format!("Standard Webhooks, client secret {DEV_SECRET}"),
        "tiktok-shop" => format!("app secret {DEV_SECRET}, app key {DEV_APP_KEY}"),
        "amazon-sns" => format!("signed by AWS; topic {DEV_SNS_TOPIC}"),
        "ebay" => format!("verification token {DEV_EBAY_TOKEN}; key id `dev`"),
        "ordermentum" => format!("basic auth {DEV_USER}:{DEV_SECRET}"),
        "flipkart" => format!("FKLOGIN app orderbridge-dev, secret {DEV_SECRET}"),
        _ => format!("secret {DEV_SECRET}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::IngestConfig;
    use orderbridge_schemas::Source;

    #[test]
    fn every_source_is_served_and_builds() {
        let config = IngestConfig {
            sources: sources("http://127.0.0.1:8080"),
            ..IngestConfig::default()
        };
        let built = crate::verify::registry::build(&config, &reqwest::Client::new()).unwrap();
        let served: std::collections::BTreeSet<Source> = built.keys().map(|(s, _)| *s).collect();
        let webhooks = Source::ALL.iter().filter(|s| s.sends_webhooks()).count();
        assert_eq!(served.len(), webhooks);
        assert_eq!(DEV_WHSEC, format!("whsec_{}", BASE64.encode(DEV_SECRET)));
    }
}
