//! The development secrets `dev` serves every source with, unless given `--config`. They
//! are public on purpose: `dev` is for a laptop, never for a port the internet can reach.

use std::collections::BTreeMap;

use orderbridge_ingest::config::{
    Accounts, EbayConfig, FlipkartConfig, HmacConfig, NamedSecret, OrdermentumConfig, SnsConfig,
    SourcesConfig, StandardWebhooksConfig, WalmartConfig, WalmartWmSec,
};
use orderbridge_ingest::verify::credentials::Credential;
use orderbridge_ingest::verify::scheme::Preset;
use orderbridge_runtime::Secret;

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
/// Basic-auth user and password for Ordermentum and Walmart in `dev`.
pub const DEV_USER: (&str, &str) = ("orderbridge", DEV_SECRET);
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

fn hmac(value: &str) -> HmacConfig {
    HmacConfig {
        secrets: secrets(value),
        ..HmacConfig::default()
    }
}

/// Every source, with development secrets; `base` is ingest's own URL.
pub fn dev_sources(base: &str) -> SourcesConfig {
    let basic = || Credential::Basic {
        id: "dev".into(),
        header: "authorization".into(),
        username: DEV_USER.0.into(),
        password: Secret::new(DEV_USER.1),
    };
    SourcesConfig {
        shopify: Some(Accounts::single(hmac(DEV_SECRET))),
        sumeru: Some(Accounts::single(hmac(DEV_SECRET))),
        zephyrcart: Some(Accounts::single(hmac(DEV_SECRET))),
        amazon_sns: Some(Accounts::single(SnsConfig {
            topic_arns: vec![DEV_SNS_TOPIC.into()],
            regions: Vec::new(),
            confirm_subscriptions: true,
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
        etsy: Some(Accounts::single(hmac(DEV_WHSEC))),
        tiktok_shop: Some(Accounts::single(HmacConfig {
            app_key: Some(DEV_APP_KEY.into()),
            ..hmac(DEV_SECRET)
        })),
        walmart: Some(Accounts::single(WalmartConfig {
            wm_sec: Some(WalmartWmSec {
                secrets: secrets(DEV_SECRET),
                tolerance_secs: None,
            }),
            ..WalmartConfig::default()
        })),
        flipkart: Some(Accounts::single(FlipkartConfig::Fklogin {
            app_id: "orderbridge-dev".into(),
            secrets: secrets(DEV_SECRET),
            url: format!("{base}/webhooks/flipkart"),
            tolerance_secs: None,
        })),
        easypost: Some(Accounts::single(hmac(DEV_SECRET))),
        ordermentum: Some(Accounts::single(OrdermentumConfig {
            credentials: vec![basic()],
        })),
        standard_webhooks: Some(Accounts::single(StandardWebhooksConfig {
            secrets: secrets(DEV_WHSEC),
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
                        ..hmac(DEV_SECRET)
                    },
                )
            })
            .collect(),
        }),
    }
}

/// How to sign for a route in `dev`, for the banner.
pub fn how_to_sign(source: &str) -> String {
    match source {
        "etsy" | "standard-webhooks" => format!("secret {DEV_WHSEC}"),
        "tiktok-shop" => format!("app secret {DEV_SECRET}, app key {DEV_APP_KEY}"),
        "amazon-sns" => format!("signed by AWS; topic {DEV_SNS_TOPIC}"),
        "ebay" => format!("verification token {DEV_EBAY_TOKEN}; key id `dev`"),
        "ordermentum" => format!("basic auth {}:{}", DEV_USER.0, DEV_USER.1),
        "flipkart" => format!("FKLOGIN app orderbridge-dev, secret {DEV_SECRET}"),
        _ => format!("secret {DEV_SECRET}"),
    }
}
