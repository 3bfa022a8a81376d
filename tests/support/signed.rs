//! Signed deliveries for every source, built from each source's fixture the way its provider
//! signs (from the provider's documentation, independently of ingest's code), and the ingest
//! configuration that accepts them.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use orderbridge_ingest::config::{
    Accounts, EbayConfig, FlipkartConfig, HmacConfig, IngestConfig, NamedSecret, OrdermentumConfig,
    SnsConfig, SourcesConfig, StandardWebhooksConfig, WalmartConfig, WalmartWmSec,
};
use orderbridge_ingest::verify::credentials::Credential;
use orderbridge_ingest::verify::scheme::Preset;
use orderbridge_runtime::Secret;
use sha2::{Digest, Sha256};

use super::ebay_sim::{self, EbaySim};
use super::sns_sim;

pub const HMAC_SECRET: &str = "test-hmac-secret";
pub const WHSEC: &str = "whsec_dGVzdC1zdGFuZGFyZC13ZWJob29rcy1rZXk=";
pub const APP_KEY: &str = "test-app-key";
pub const EBAY_TOKEN: &str = "orderbridge_test_verification_token_0123456789";
pub const FLIPKART_URL: &str = "https://orders.example.com/webhooks/flipkart";
/// The BigCommerce app's client secret: it keys the webhooks' HMAC as it is.
pub const BIGCOMMERCE_CLIENT_SECRET: &str = "bc-client-secret-test";

fn secrets(value: &str) -> Vec<NamedSecret> {
    vec![NamedSecret {
        id: "test".into(),
        secret: Secret::new(value),
    }]
}

fn hmac_config(value: &str) -> HmacConfig {
    HmacConfig {
        secrets: secrets(value),
        ..HmacConfig::default()
    }
}

/// Ingest with every source configured with this file's test secrets.
pub fn config(ebay: &EbaySim) -> IngestConfig {
    let sources = SourcesConfig {
        shopify: Some(Accounts::single(hmac_config(HMAC_SECRET))),
        sumeru: Some(Accounts::single(hmac_config(HMAC_SECRET))),
        zephyrcart: Some(Accounts::single(hmac_config(HMAC_SECRET))),
        amazon_sns: Some(Accounts::single(SnsConfig {
            topic_arns: vec![sns_sim::TOPIC.into()],
            regions: Vec::new(),
            confirm_subscriptions: true,
            tolerance_secs: 3600,
        })),
        ebay: Some(Accounts::single(EbayConfig {
            verification_token: Secret::new(EBAY_TOKEN),
            endpoint_url: "https://orders.example.com/webhooks/ebay".into(),
            client_id: Some(ebay_sim::CLIENT_ID.into()),
            client_secret: Some(Secret::new(ebay_sim::CLIENT_SECRET)),
            api_base: ebay.api_base(),
            public_keys: BTreeMap::new(),
            key_cache_secs: 3600,
        })),
        etsy: Some(Accounts::single(hmac_config(WHSEC))),
        tiktok_shop: Some(Accounts::single(HmacConfig {
            app_key: Some(APP_KEY.into()),
            ..hmac_config(HMAC_SECRET)
        })),
        walmart: Some(Accounts::single(WalmartConfig {
            wm_sec: Some(WalmartWmSec {
                secrets: secrets(HMAC_SECRET),
                tolerance_secs: None,
            }),
            ..WalmartConfig::default()
        })),
        flipkart: Some(Accounts::single(FlipkartConfig::Fklogin {
            app_id: "fk-app".into(),
            secrets: secrets(HMAC_SECRET),
            url: FLIPKART_URL.into(),
            tolerance_secs: None,
        })),
        easypost: Some(Accounts::single(hmac_config(HMAC_SECRET))),
        ordermentum: Some(Accounts::single(OrdermentumConfig {
            credentials: vec![Credential::Basic {
                id: "test".into(),
                header: "authorization".into(),
                username: "om".into(),
                password: Secret::new(HMAC_SECRET),
            }],
        })),
        bigcommerce: Some(Accounts::single(hmac_config(BIGCOMMERCE_CLIENT_SECRET))),
        standard_webhooks: Some(Accounts {
            default: None,
            accounts: BTreeMap::from([(
                "bigcommerce".to_owned(),
                StandardWebhooksConfig {
                    secrets: secrets(WHSEC),
                    ..StandardWebhooksConfig::default()
                },
            )]),
        }),
        custom: Some(Accounts {
            default: None,
            accounts: BTreeMap::from([(
                "stripe".to_owned(),
                HmacConfig {
                    preset: Some(Preset::Stripe),
                    ..hmac_config(HMAC_SECRET)
                },
            )]),
        }),
    };
    IngestConfig {
        sources,
        ..IngestConfig::default()
    }
}

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Request headers, as (name, value).
pub type Headers = Vec<(String, String)>;

/// One signed delivery and what its raw record must look like.
pub struct Case {
    pub source: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub key: &'static str,
    pub account: &'static str,
    pub event_type: &'static str,
    pub event_id: Option<&'static str>,
}

/// Builds each source's delivery from its fixture, signed as its provider documents.
pub fn cases() -> Vec<Case> {
    let now = now();
    let ts = now.to_string();
    let whsec_key = BASE64.decode(WHSEC.trim_start_matches("whsec_")).unwrap();
    let hex_mac = |parts: &[&[u8]]| hex::encode(hmac_sha256(HMAC_SECRET.as_bytes(), parts));
    let with = |source: &'static str,
                case: &str,
                key: &'static str,
                account: &'static str,
                event_type: &'static str,
                event_id: Option<&'static str>,
                sign: &dyn Fn(&[u8]) -> Headers| {
        let (mut headers, body) = super::fixture(source, case);
        headers.extend(sign(&body));
        Case {
            source,
            path: format!("/webhooks/{source}"),
            headers,
            body,
            key,
            account,
            event_type,
            event_id,
        }
    };
    let pair = |name: &str, value: String| vec![(name.to_owned(), value)];
    let mut cases = vec![
        with(
            "shopify",
            "orders-create-basic",
            "shopify:example-store.myshopify.com:450789469",
            "example-store.myshopify.com",
            "orders/create",
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            &|body| {
                let mac = hmac_sha256(HMAC_SECRET.as_bytes(), &[body]);
                pair("X-Shopify-Hmac-Sha256", BASE64.encode(mac))
            },
        ),
        with(
            "sumeru",
            "order-attributed",
            "sumeru:-:ord_5001",
            "-",
            "order.attributed",
            Some("evt_01J9Z3"),
            &|body| pair("X-Sumeru-Signature", format!("sha256={}", hex_mac(&[body]))),
        ),
        with(
            "zephyrcart",
            "order-created",
            "zephyrcart:-:zc_ord_1001",
            "-",
            "order.created",
            Some("evt_zc_1"),
            &|body| {
                let v1 = hex_mac(&[ts.as_bytes(), b".", body]);
                pair("x-zephyrcart-signature", format!("t={ts},v1={v1}"))
            },
        ),
        with(
            "etsy",
            "order-paid",
            "etsy:12345:54321",
            "12345",
            "order.paid",
            Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            &|body| {
                let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
                let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
                let sig = BASE64.encode(hmac_sha256(&whsec_key, &parts));
                vec![
                    ("webhook-timestamp".into(), ts.clone()),
                    ("webhook-signature".into(), format!("v1,{sig}")),
                ]
            },
        ),
        with(
            "tiktok-shop",
            "order-status-change",
            "tiktok-shop:7493999789368181917:577042645727872816",
            "7493999789368181917",
            "1",
            Some("7392922053974394642"),
            &|body| pair("Authorization", hex_mac(&[APP_KEY.as_bytes(), body])),
        ),
        with(
            "walmart",
            "po-created",
            "walmart:10001234567:1796277083022",
            "10001234567",
            "PO_CREATED",
            Some("9b1f2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"),
            &|body| {
                let hash = hex::encode(Sha256::digest(body));
                let signed = format!("POST\n/webhooks/walmart\n{ts}\n{hash}");
                let sig = BASE64.encode(hmac_sha256(HMAC_SECRET.as_bytes(), &[signed.as_bytes()]));
                vec![
                    ("WM_SEC.TIMESTAMP".into(), ts.clone()),
                    ("WM_SEC.SIGNATURE".into(), sig),
                    ("WM_SEC.KEY_ID".into(), "test".into()),
                ]
            },
        ),
        with(
            "flipkart",
            "shipment-created",
            "flipkart:-:OD108833803073636000",
            "-",
            "shipment_created",
            None,
            &|_body| {
                let date = chrono::DateTime::from_timestamp(now, 0)
                    .unwrap()
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string();
                let digest =
                    sha1::Sha1::digest(format!("{date}{FLIPKART_URL}POST{HMAC_SECRET}").as_bytes());
                let login = BASE64.encode(format!("fk-app:{}", hex::encode(digest)));
                vec![
                    ("X_Date".into(), date),
                    ("X_Authorization".into(), format!("FKLOGIN {login}")),
                ]
            },
        ),
        with(
            "easypost",
            "tracker-updated",
            "easypost:-:shp_123",
            "-",
            "tracker.updated",
            Some("evt_4a1b2c3d"),
            &|body| {
                pair(
                    "X-Hmac-Signature",
                    format!("hmac-sha256-hex={}", hex_mac(&[body])),
                )
            },
        ),
        with(
            "ordermentum",
            "order-created",
            "ordermentum:-:17a36ca1-8835-4cf6-a95c-e42bb16d0ca9",
            "-",
            "order_created",
            None,
            &|_body| {
                let basic = BASE64.encode(format!("om:{HMAC_SECRET}"));
                pair("Authorization", format!("Basic {basic}"))
            },
        ),
        with(
            "ebay",
            "order-confirmation",
            "ebay:-:12-34567-89012",
            "-",
            "ORDER_CONFIRMATION",
            Some("49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d"),
            &|body| pair("X-EBAY-SIGNATURE", ebay_sim::sign(ebay_sim::KID, body)),
        ),
    ];

    cases.push(with(
        "bigcommerce",
        "order-created",
        "bigcommerce:abcde:218",
        "abcde",
        "store/order/created",
        Some("msg_2f4c7d1e"),
        &|body| {
            let parts: [&[u8]; 5] = [b"msg_2f4c7d1e", b".", ts.as_bytes(), b".", body];
            let sig = BASE64.encode(hmac_sha256(BIGCOMMERCE_CLIENT_SECRET.as_bytes(), &parts));
            vec![
                ("webhook-timestamp".into(), ts.clone()),
                ("webhook-signature".into(), format!("v1,{sig}")),
            ]
        },
    ));

    // Standard Webhooks and custom providers are served per account.
    let mut bigcommerce = with(
        "standard-webhooks",
        "bigcommerce-order-created",
        "standard-webhooks:bigcommerce:272",
        "bigcommerce",
        "store/order/created",
        Some("msg_2f4c7d1e"),
        &|body| {
            let parts: [&[u8]; 5] = [b"msg_2f4c7d1e", b".", ts.as_bytes(), b".", body];
            let sig = BASE64.encode(hmac_sha256(&whsec_key, &parts));
            vec![
                ("webhook-timestamp".into(), ts.clone()),
                ("webhook-signature".into(), format!("v1,{sig}")),
            ]
        },
    );
    bigcommerce.path = "/webhooks/standard-webhooks/bigcommerce".into();
    cases.push(bigcommerce);
    let mut stripe = with(
        "custom",
        "stripe-checkout-session-completed",
        "custom:stripe:cs_live_a1",
        "stripe",
        "checkout.session.completed",
        Some("evt_1Q"),
        &|body| {
            let v1 = hex_mac(&[ts.as_bytes(), b".", body]);
            pair("Stripe-Signature", format!("t={ts},v1={v1}"))
        },
    );
    stripe.path = "/webhooks/custom/stripe".into();
    cases.push(stripe);

    // SNS signs fields of the envelope, not bytes: sign the fixture's envelope.
    let (headers, body) = super::fixture("amazon-sns", "order-change-notification");
    let mut envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
    sns_sim::sign(&mut envelope);
    cases.push(Case {
        source: "amazon-sns",
        path: "/webhooks/amazon-sns".into(),
        headers,
        body: serde_json::to_vec(&envelope).unwrap(),
        key: "amazon-sns:A3TH9S8BH6GOGM:903-8868176-2219830",
        account: "A3TH9S8BH6GOGM",
        event_type: "ORDER_CHANGE",
        event_id: Some("22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"),
    });
    cases
}
