//! Every source, end to end through ingest: a request signed the way the provider signs it
//! (built here from the provider's documentation, independently of ingest's own code) becomes
//! one raw-topic record with the right key, headers and untouched body. SNS and eBay fetch
//! their key material from local simulators; the SNS handshake confirms against its
//! simulator, and a certificate URL on any other host is refused without a request.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use orderbridge_ingest::config::{
    Accounts, EbayConfig, FlipkartConfig, HmacConfig, IngestConfig, NamedSecret, OrdermentumConfig,
    SnsConfig, SourcesConfig, StandardWebhooksConfig, WalmartConfig, WalmartWmSec,
};
use orderbridge_ingest::verify::credentials::Credential;
use orderbridge_ingest::verify::scheme::Preset;
use orderbridge_ingest::IngestState;
use orderbridge_runtime::{Health, Secret};
use rdkafka::message::{Headers as _, Message};
use sha2::{Digest, Sha256};
use support::ebay_sim::{self, EbaySim};
use support::pipeline::Env;
use support::sns_sim::{self, SnsSim};
use tower::ServiceExt;

const HMAC_SECRET: &str = "test-hmac-secret";
const WHSEC: &str = "whsec_dGVzdC1zdGFuZGFyZC13ZWJob29rcy1rZXk=";
const APP_KEY: &str = "test-app-key";
const EBAY_TOKEN: &str = "orderbridge_test_verification_token_0123456789";
const FLIPKART_URL: &str = "https://orders.example.com/webhooks/flipkart";

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
fn config(ebay: &EbaySim) -> IngestConfig {
    let sources = SourcesConfig {
        shopify: Some(Accounts::single(hmac_config(HMAC_SECRET))),
        sumeru: Some(Accounts::single(hmac_config(HMAC_SECRET))),
        zephyrcart: Some(Accounts::single(hmac_config(HMAC_SECRET))),
        amazon_sns: Some(Accounts::single(SnsConfig {
            topic_arns: vec![sns_sim::TOPIC.into()],
            regions: Vec::new(),
            confirm_subscriptions: true,
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

fn router(env: &Env, config: &IngestConfig, http: &reqwest::Client) -> axum::Router {
    let registry = prometheus::Registry::new();
    let state = IngestState::with_http(config, &env.kafka, &env.topics, &registry, http).unwrap();
    orderbridge_ingest::router(state, registry, Health::new())
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Request headers, as (name, value).
type Headers = Vec<(String, String)>;

/// One signed delivery and what its raw record must look like.
struct Case {
    source: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    key: &'static str,
    account: &'static str,
    event_type: &'static str,
    event_id: Option<&'static str>,
}

/// Builds each source's delivery from its fixture, signed as its provider documents.
fn cases() -> Vec<Case> {
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
        let (mut headers, body) = support::fixture(source, case);
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
            "easypost:-:event:evt_4a1b2c3d",
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
    let (headers, body) = support::fixture("amazon-sns", "order-change-notification");
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

async fn post(
    router: &axum::Router,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (StatusCode, String) {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn header<'a>(message: &'a rdkafka::message::OwnedMessage, name: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

async fn every_source_on(env: &Env) {
    let (sns, ebay) = (SnsSim::start().await, EbaySim::start().await);
    let ingest = router(env, &config(&ebay), &sns.client());
    let cases = cases();
    let served: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.source).collect();
    assert_eq!(
        served.len(),
        orderbridge_schemas::Source::ALL.len(),
        "a case for every source"
    );
    for case in &cases {
        let (status, text) = post(&ingest, &case.path, &case.headers, &case.body).await;
        assert_eq!(status, StatusCode::OK, "{}: {text}", case.source);
    }

    let records = env
        .read(&env.topics.raw, cases.len(), Duration::from_secs(30))
        .await;
    let by_key: BTreeMap<String, &rdkafka::message::OwnedMessage> = records
        .iter()
        .map(|m| (String::from_utf8(m.key().unwrap().to_vec()).unwrap(), m))
        .collect();
    for case in &cases {
        let record = by_key.get(case.key).unwrap_or_else(|| {
            panic!(
                "{}: no record keyed {} in {:?}",
                case.source,
                case.key,
                by_key.keys()
            )
        });
        assert_eq!(
            record.payload().unwrap(),
            case.body.as_slice(),
            "{}: body untouched",
            case.source
        );
        assert_eq!(header(record, "ob-source"), Some(case.source));
        assert_eq!(
            header(record, "ob-account"),
            Some(case.account),
            "{}",
            case.source
        );
        assert_eq!(
            header(record, "ob-event-type"),
            Some(case.event_type),
            "{}",
            case.source
        );
        assert_eq!(header(record, "ob-origin"), Some("webhook"));
        let event_id = header(record, "ob-event-id").unwrap();
        match case.event_id {
            Some(expected) => assert_eq!(event_id, expected, "{}", case.source),
            None => assert_eq!(
                event_id,
                format!("sha256:{}", hex::encode(Sha256::digest(&case.body))),
                "{}: no event id, so the body's hash",
                case.source
            ),
        }
        let secret_id = header(record, "ob-secret-id").unwrap();
        let expected_secret = match case.source {
            "amazon-sns" => "SimpleNotificationService-orderbridge-test.pem",
            "ebay" => ebay_sim::KID,
            _ => "test",
        };
        assert_eq!(secret_id, expected_secret, "{}", case.source);
        let received: i64 = header(record, "ob-received-at").unwrap().parse().unwrap();
        assert!((received / 1000 - now()).abs() < 120, "{}", case.source);
        let content_type = case
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map_or("application/octet-stream", |(_, v)| v.as_str());
        assert_eq!(
            header(record, "content-type"),
            Some(content_type),
            "{}",
            case.source
        );
    }
    assert_eq!(ebay.calls(), (1, 1), "one token and one key fetched");
    assert_eq!(
        sns.requests(),
        vec![(
            "sns.us-east-1.amazonaws.com".to_owned(),
            "/SimpleNotificationService-orderbridge-test.pem".to_owned()
        )],
        "the certificate, fetched once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_becomes_a_raw_record_with_its_key_and_headers() {
    every_source_on(&Env::mock()).await;
    if let Some(env) = Env::external().await {
        every_source_on(&env).await;
        eprintln!("every source passed on {}", env.kafka.bootstrap_servers);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_subscriptions_are_confirmed_and_not_published() {
    let env = Env::mock();
    let (sns, ebay) = (SnsSim::start().await, EbaySim::start().await);
    let ingest = router(&env, &config(&ebay), &sns.client());
    let headers = vec![
        (
            "x-amz-sns-message-type".to_owned(),
            "SubscriptionConfirmation".to_owned(),
        ),
        (
            "content-type".to_owned(),
            "text/plain; charset=UTF-8".to_owned(),
        ),
    ];

    let confirmation = sns.subscription_confirmation(sns_sim::TOPIC, "token-allowed");
    let (status, _) = post(
        &ingest,
        "/webhooks/amazon-sns",
        &headers,
        confirmation.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sns.confirmed(), vec!["token-allowed".to_owned()]);

    // A topic not on the allow-list: refused before anything is fetched or confirmed.
    let before = sns.requests().len();
    let other =
        sns.subscription_confirmation("arn:aws:sns:us-east-1:999999999999:not-ours", "token-other");
    let (status, _) = post(
        &ingest,
        "/webhooks/amazon-sns",
        &headers,
        other.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sns.requests().len(), before);
    assert_eq!(sns.confirmed().len(), 1);

    // Nothing was published: the first raw record is the notification sent next.
    let case = cases()
        .into_iter()
        .find(|c| c.source == "amazon-sns")
        .unwrap();
    let (status, _) = post(&ingest, &case.path, &case.headers, &case.body).await;
    assert_eq!(status, StatusCode::OK);
    let records = env.read(&env.topics.raw, 1, Duration::from_secs(30)).await;
    assert_eq!(records[0].key().unwrap(), case.key.as_bytes());
    let metrics = support::pipeline::get_text(&ingest, "/metrics").await;
    assert!(
        metrics.contains("orderbridge_ingest_handshakes_total{source=\"amazon-sns\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_certificates_elsewhere_are_refused_without_a_request() {
    let env = Env::mock();
    let (sns, ebay) = (SnsSim::start().await, EbaySim::start().await);
    let ingest = router(&env, &config(&ebay), &sns.client());
    let case = cases()
        .into_iter()
        .find(|c| c.source == "amazon-sns")
        .unwrap();
    for url in [
        "https://evil.example.com/SimpleNotificationService-orderbridge-test.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-orderbridge-test.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-orderbridge-test.crt",
        "https://sns.us-east-1.amazonaws.com.evil.example.com/x.pem",
    ] {
        let mut envelope: serde_json::Value = serde_json::from_slice(&case.body).unwrap();
        envelope["SigningCertURL"] = url.into();
        sns_sim::sign(&mut envelope);
        let body = serde_json::to_vec(&envelope).unwrap();
        let (status, text) = post(&ingest, &case.path, &case.headers, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(text, "invalid signature\n", "nothing said of why");
    }
    assert!(
        sns.requests().is_empty(),
        "no request left: {:?}",
        sns.requests()
    );

    // The simulator does answer for evil.example.com: the refusal is ours, not the network's.
    let reachable = sns
        .client()
        .get("https://evil.example.com/x.pem")
        .send()
        .await
        .unwrap();
    assert_eq!(reachable.status(), StatusCode::OK);

    // A certificate that cannot be fetched now is a 503 (SNS retries 5xx, not 4xx).
    sns.fail_certificates(true);
    let (status, _) = post(&ingest, &case.path, &case.headers, &case.body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    sns.fail_certificates(false);
    let (status, _) = post(&ingest, &case.path, &case.headers, &case.body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebay_challenge_and_keys_against_the_simulator() {
    let env = Env::mock();
    let (sns, ebay) = (SnsSim::start().await, EbaySim::start().await);
    let ingest = router(&env, &config(&ebay), &sns.client());

    // The handshake: hex SHA-256 of code + token + endpoint, as JSON.
    let code = "a8628072-3d33-45ee-9004-bee86830a22d";
    let response = ingest
        .clone()
        .oneshot(
            Request::get(format!("/webhooks/ebay?challenge_code={code}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let expected = hex::encode(Sha256::digest(
        format!("{code}{EBAY_TOKEN}https://orders.example.com/webhooks/ebay").as_bytes(),
    ));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({ "challengeResponse": expected })
    );

    // Deliveries: the key is fetched once with a token, then cached.
    let case = cases().into_iter().find(|c| c.source == "ebay").unwrap();
    for _ in 0..2 {
        let (status, _) = post(&ingest, &case.path, &case.headers, &case.body).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(ebay.calls(), (1, 1));

    // An unknown key id is refused (eBay's 404), a tampered body too.
    let (headers, body) = support::fixture("ebay", "order-confirmation");
    let mut unknown = headers.clone();
    unknown.push((
        "X-EBAY-SIGNATURE".into(),
        ebay_sim::sign("not-a-known-kid", &body),
    ));
    assert_eq!(
        post(&ingest, &case.path, &unknown, &body).await.0,
        StatusCode::UNAUTHORIZED
    );
    let tampered = String::from_utf8(case.body.clone())
        .unwrap()
        .replace("89012", "89013");
    assert_eq!(
        post(&ingest, &case.path, &case.headers, tampered.as_bytes())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // GET on a source without a handshake is 405; an unconfigured account is 404.
    let response = ingest
        .clone()
        .oneshot(
            Request::get("/webhooks/shopify")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        post(&ingest, "/webhooks/shopify/not-configured", &[], b"{}")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
