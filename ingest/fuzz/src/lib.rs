//! What the fuzz targets share: a request read from the fuzzer's bytes, every source's
//! verifiers built with a secret chosen at random when the process starts (so the fuzzer
//! cannot know it), and the properties checked on every input.
//!
//! The bytes are read like an HTTP request without its method: the path on the first line,
//! then `name: value` header lines, a blank line, and the body. The seeds in `seeds/<target>/`
//! are real deliveries in that form (the fixtures, with signatures of the right shape and
//! wrong value), so mutation starts from requests that reach deep into each verifier.
//!
//! - `verify`: no panic, and never [`Accepted::Publish`] — with a secret nobody knows and
//!   key material nobody can forge (a fresh eBay key; SNS certificates cannot be fetched), an
//!   accepted request means verification was bypassed.
//!   The only request answered without a signature is WooCommerce's documented creation ping,
//!   and it is never published.
//! - `extract`: no panic, and the record key is non-empty, short and free of control
//!   characters.
//!
//! Key material is never fetched: the HTTP client goes through a proxy that refuses every
//! connection, so SNS and eBay paths end in "unavailable" instead of touching a network.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use bytes::Bytes;
use orderbridge_ingest::config::IngestConfig;
use orderbridge_ingest::verify::{registry, Accepted, SharedVerifier, WebhookRequest};
use orderbridge_schemas::Source;

/// A request read from the fuzzer's bytes.
#[derive(Debug)]
pub struct Input {
    /// Path and query, e.g. `/webhooks/walmart?x=1`.
    pub path: String,
    /// Headers; lines that are not a valid `name: value` are dropped.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Input {
    /// Reads `path\nname: value\n…\n\nbody`; anything goes, nothing fails.
    pub fn parse(data: &[u8]) -> Self {
        let split = data.windows(2).position(|w| w == b"\n\n");
        let (head, body) = match split {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (data, &[][..]),
        };
        let mut lines = head.split(|&b| b == b'\n');
        let path = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
        let mut headers = HeaderMap::new();
        for line in lines.take(64) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = line[colon + 1..]
                .strip_prefix(b" ")
                .unwrap_or(&line[colon + 1..]);
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        Self {
            path,
            headers,
            body: Bytes::copy_from_slice(body),
        }
    }
}

/// Around 2026-01-01.
const NOW: i64 = 1_767_225_600;

struct World {
    runtime: tokio::runtime::Runtime,
    verifiers: HashMap<Source, Vec<SharedVerifier>>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let secret: String = (0..32)
        .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
        .collect();
    let mut config = IngestConfig {
        sources: orderbridge_ingest::development::sources_with("https://fuzz.invalid", &secret),
        ..IngestConfig::default()
    };
    // The development eBay key is public and its private half is a test key in the repo:
    // pin a key nobody holds instead (the seeds carry real signatures by the test key).
    let unknown = p256::ecdsa::SigningKey::from_bytes(&rand::random::<[u8; 32]>().into())
        .expect("a random scalar is a key");
    let pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(
        unknown.verifying_key(),
        p256::pkcs8::LineEnding::LF,
    )
    .expect("PEM");
    if let Some(ebay) = config.sources.ebay.as_mut() {
        for settings in ebay.default.iter_mut().chain(ebay.accounts.values_mut()) {
            for key in settings.public_keys.values_mut() {
                key.clone_from(&pem);
            }
        }
    }
    let http = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all("http://127.0.0.1:9").expect("proxy url"))
        .build()
        .expect("http client");
    let mut verifiers: HashMap<Source, Vec<SharedVerifier>> = HashMap::new();
    let built = registry::build(&config, &http).expect("development sources build");
    let mut routes: Vec<_> = built.into_iter().collect();
    routes.sort_by(|a, b| a.0 .1.cmp(&b.0 .1));
    for ((source, _), verifier) in routes {
        verifiers
            .entry(source)
            .or_default()
            .push(Arc::clone(&verifier));
    }
    World {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        verifiers,
    }
});

/// The `verify` property for `source`, on the fuzzer's bytes.
pub fn verify(source: Source, data: &[u8]) {
    let input = Input::parse(data);
    let world = &*WORLD;
    let Some(verifiers) = world.verifiers.get(&source) else {
        return;
    };
    // Sources with several routes (custom providers): the path's length picks one.
    let verifier = &verifiers[input.path.len() % verifiers.len()];
    let (headers, body) = (&input.headers, &input.body);
    let request = WebhookRequest {
        method: &Method::POST,
        path_and_query: &input.path,
        headers,
        body,
        account: None,
        now: NOW,
    };
    match world.runtime.block_on(verifier.verify(&request)) {
        Err(_) => {}
        Ok(Accepted::Publish(verified)) => {
            panic!("{source}: accepted without a valid signature: {verified:?}")
        }
        Ok(Accepted::Reply(reply)) => {
            let ping =
                body.starts_with(b"webhook_id=") && headers.get("x-wc-webhook-signature").is_none();
            assert!(
                source == Source::Custom && ping,
                "{source}: answered {reply:?} without a signature"
            );
        }
    }
}

/// The `extract` property, on the fuzzer's bytes.
pub fn extract(data: &[u8]) {
    let input = Input::parse(data);
    let request = WebhookRequest {
        method: &Method::POST,
        path_and_query: &input.path,
        headers: &input.headers,
        body: &input.body,
        account: Some("fuzz-account"),
        now: NOW,
    };
    for verified in orderbridge_ingest::verify::fuzzing::extract_unverified(&request) {
        let key = verified.record_key();
        assert!(!key.is_empty() && key.len() <= 1024, "key {key:?}");
        assert!(!key.chars().any(char::is_control), "key {key:?}");
        assert!(!verified.event_id().is_empty());
    }
}
