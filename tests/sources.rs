//! Every source, end to end through ingest: a request signed the way the provider signs it
//! (`support/signed.rs`) becomes one raw-topic record with the right key, headers and
//! untouched body. SNS and eBay fetch their key material from local simulators; the SNS
//! handshake confirms against its simulator, and a certificate URL on any other host is
//! refused without a request.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use orderbridge_processor::Guarantee;
use rdkafka::message::{Headers as _, Message};
use sha2::{Digest, Sha256};
use support::ebay_sim::{self, EbaySim};
use support::pipeline::{post, router, Env};
use support::signed::{cases, config, hmac_sha256, now, EBAY_TOKEN, HMAC_SECRET};
use support::sns_sim::{self, SnsSim};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

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
        orderbridge_schemas::Source::ALL
            .iter()
            .filter(|s| s.sends_webhooks())
            .count(),
        "a case for every source that sends webhooks"
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

    // A replay of a genuine delivery signed ten minutes ago: refused, and counted as such.
    let zephyr = cases.iter().find(|c| c.source == "zephyrcart").unwrap();
    let old = now() - 600;
    let mac = hmac_sha256(
        HMAC_SECRET.as_bytes(),
        &[old.to_string().as_bytes(), b".", &zephyr.body],
    );
    let stale = vec![(
        "x-zephyrcart-signature".to_owned(),
        format!("t={old},v1={}", hex::encode(mac)),
    )];
    assert_eq!(
        post(&ingest, &zephyr.path, &stale, &zephyr.body).await.0,
        StatusCode::UNAUTHORIZED
    );
    let metrics = support::pipeline::get_text(&ingest, "/metrics").await;
    for line in [
        r#"orderbridge_ingest_secret_matches_total{secret_id="test",source="shopify"} 1"#,
        r#"orderbridge_ingest_secret_matches_total{secret_id="99345d4b-4fd3-4e2a-8e4b-0123456789ab",source="ebay"} 1"#,
        r#"orderbridge_ingest_signature_failures_total{reason="expired",source="zephyrcart"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
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
async fn every_source_reaches_the_canonical_topic() {
    let env = Env::mock();
    let (sns, ebay) = (SnsSim::start().await, EbaySim::start().await);
    let ingest = router(&env, &config(&ebay), &sns.client());
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::ExactlyOnce, &shutdown);
    let cases = cases();
    for case in &cases {
        let (status, text) = post(&ingest, &case.path, &case.headers, &case.body).await;
        assert_eq!(status, StatusCode::OK, "{}: {text}", case.source);
    }
    let canonical = env
        .read(&env.topics.canonical, cases.len(), Duration::from_secs(60))
        .await;
    let mut keys = std::collections::BTreeSet::new();
    for record in &canonical {
        let event = env.codec.decode(record.payload().unwrap()).await.unwrap();
        assert_eq!(record.key().unwrap(), event.order_key.as_bytes());
        keys.insert(event.order_key);
    }
    let wanted: std::collections::BTreeSet<String> =
        cases.iter().map(|c| c.key.to_owned()).collect();
    assert_eq!(
        keys, wanted,
        "one canonical event per source, under the key ingest gave its raw record"
    );
    shutdown.cancel();
    processor.await.unwrap();
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
        .get("https://evil.example.com/SimpleNotificationService-orderbridge-test.pem")
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

/// Unauthenticated requests decide what ingest fetches: a key id or a certificate URL in an
/// unverified message. A flood of them must not become a flood of calls to eBay's API (whose
/// quota the app shares) or to AWS: concurrent requests for one key share one fetch, a key
/// the provider says does not exist is remembered as missing, and each source fetches at most
/// a bounded number of new keys a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_fetches_are_shared_remembered_when_missing_and_capped() {
    let env = Env::mock();
    let (sns, ebay) = (SnsSim::start().await, EbaySim::start().await);
    let ingest = router(&env, &config(&ebay), &sns.client());
    let concurrently = |requests: Vec<(support::signed::Headers, Vec<u8>)>, path: String| {
        let ingest = ingest.clone();
        async move {
            let posts = requests
                .iter()
                .map(|(headers, body)| post(&ingest, &path, headers, body));
            futures::future::join_all(posts)
                .await
                .into_iter()
                .map(|(status, _)| status)
                .collect::<Vec<_>>()
        }
    };

    // eBay: the real key once, then a flood for one key id eBay does not know.
    let case = cases().into_iter().find(|c| c.source == "ebay").unwrap();
    assert_eq!(
        post(&ingest, &case.path, &case.headers, &case.body).await.0,
        StatusCode::OK
    );
    let (_, before) = ebay.calls();
    let (headers, body) = support::fixture("ebay", "order-confirmation");
    let with_kid = |kid: &str| {
        let mut signed = headers.clone();
        signed.push(("X-EBAY-SIGNATURE".into(), ebay_sim::sign(kid, &body)));
        (signed, body.clone())
    };
    let statuses = concurrently(vec![with_kid("not-a-known-kid"); 64], case.path.clone()).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        ebay.calls().1 - before,
        1,
        "64 requests for one unknown key: one fetch"
    );
    // Again later: remembered as missing, not fetched again.
    assert_eq!(
        post(&ingest, &case.path, &with_kid("not-a-known-kid").0, &body)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(ebay.calls().1 - before, 1);

    // A flood of distinct key ids: each would cost a call; the source's budget caps them.
    let flood = (0..64).map(|i| with_kid(&format!("flood-{i}"))).collect();
    let statuses = concurrently(flood, case.path.clone()).await;
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    let fetched = ebay.calls().1 - before - 1;
    assert!(
        fetched <= orderbridge_ingest::verify::key_cache::FETCHES_PER_MINUTE as usize,
        "{fetched} key fetches for 64 made-up key ids"
    );
    // The real key is cached: real deliveries go on during the flood.
    assert_eq!(
        post(&ingest, &case.path, &case.headers, &case.body).await.0,
        StatusCode::OK
    );

    // SNS: AWS rotated its certificate; the first deliveries signed with it arrive together.
    let sns_case = cases()
        .into_iter()
        .find(|c| c.source == "amazon-sns")
        .unwrap();
    let signed_with = |file: &str| {
        let mut envelope: serde_json::Value = serde_json::from_slice(&sns_case.body).unwrap();
        envelope["SigningCertURL"] = format!("https://sns.us-east-1.amazonaws.com/{file}").into();
        sns_sim::sign(&mut envelope);
        (
            sns_case.headers.clone(),
            serde_json::to_vec(&envelope).unwrap(),
        )
    };
    let fetches_of = |file: &str| {
        sns.requests()
            .iter()
            .filter(|(_, path)| path == &format!("/{file}"))
            .count()
    };
    let rotated = "SimpleNotificationService-rotated.pem";
    let statuses = concurrently(vec![signed_with(rotated); 32], sns_case.path.clone()).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        fetches_of(rotated),
        1,
        "32 deliveries, one certificate download"
    );
    // A certificate AWS does not have: the message is not SNS's (401), and it is asked once.
    let made_up = "SimpleNotificationService-made-up.pem";
    let statuses = concurrently(vec![signed_with(made_up); 32], sns_case.path.clone()).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(fetches_of(made_up), 1);
}

/// A provider is pieces in several crates; this names any piece a source lacks that the
/// compiler cannot see: golden fixtures and a normalizer fuzz target with seeds for every
/// source, and a verifier fuzz target with seeds for every source that sends webhooks (its
/// signed case is checked above, its example configuration by `config example`'s test).
#[test]
fn every_source_has_its_fixtures_and_fuzz_targets() {
    use std::path::Path;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let has_entries = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false)
    };
    let mut missing = Vec::new();
    let mut fuzz_target = |krate: &str, target: String| {
        let fuzz = root.join(krate).join("fuzz");
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        if !fuzz.join(format!("fuzz_targets/{target}.rs")).exists()
            || !manifest.contains(&format!("name = \"{target}\""))
        {
            missing.push(format!(
                "{krate}/fuzz: the target {target} (fuzz_targets/{target}.rs and its [[bin]])"
            ));
        }
        if !has_entries(&fuzz.join("seeds").join(&target)) {
            missing.push(format!(
                "{krate}/fuzz/seeds/{target}/: seeds from the golden fixtures"
            ));
        }
    };
    for source in orderbridge_schemas::Source::ALL {
        let name = source.as_str().replace('-', "_");
        fuzz_target("processor", format!("normalize_{name}"));
        if source.sends_webhooks() {
            fuzz_target("ingest", format!("verify_{name}"));
        }
    }
    for source in orderbridge_schemas::Source::ALL {
        let fixtures = root.join("tests/fixtures").join(source.as_str());
        if !has_entries(&fixtures) {
            missing.push(format!("tests/fixtures/{source}/<case>/: golden fixtures"));
            continue;
        }
        // Each golden case seeds its normalizer's fuzzing, so mutation starts from it.
        let seeds = root
            .join("processor/fuzz/seeds")
            .join(format!("normalize_{}", source.as_str().replace('-', "_")));
        for case in std::fs::read_dir(&fixtures).unwrap() {
            let case = case.unwrap();
            if case.path().is_dir() && !seeds.join(case.file_name()).exists() {
                missing.push(format!(
                    "{}: the seed of tests/fixtures/{source}/{} (its record.json fields, a \
                     line each, then its body)",
                    seeds.display(),
                    case.file_name().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "pieces missing:\n{}",
        missing.join("\n")
    );
}
