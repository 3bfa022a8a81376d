//! What the fuzz targets share: an arbitrary request, every source's verifiers built with a
//! secret chosen at random when the process starts (so the fuzzer cannot know it), and the
//! properties checked on every input.
//!
//! - `verify`: no panic, and never [`Accepted::Publish`] — with a secret nobody knows and
//!   key material nobody can forge, an accepted request means verification was bypassed.
//!   The only request answered without a signature is WooCommerce's documented creation ping,
//!   and it is never published.
//! - `extract`: no panic, and the record key is non-empty, short and free of control
//!   characters.
//!
//! Key material is never fetched: the HTTP client goes through a proxy that refuses every
//! connection, so SNS and eBay paths end in "unavailable" instead of touching a network.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use bytes::Bytes;
use orderbridge_ingest::config::IngestConfig;
use orderbridge_ingest::verify::{registry, Accepted, SharedVerifier, WebhookRequest};
use orderbridge_schemas::Source;

/// A request as the fuzzer makes it.
#[derive(Debug, Arbitrary)]
pub struct Input {
    /// Path and query, e.g. `/webhooks/walmart?x=1`.
    pub path: String,
    /// Header names and values; invalid ones are dropped.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// Seconds from a fixed clock, so timestamps can fall inside or outside windows.
    pub now_offset: i32,
    /// Which of the source's routes to use.
    pub route: u8,
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
    let config = IngestConfig {
        sources: orderbridge_ingest::development::sources_with("https://fuzz.invalid", &secret),
        ..IngestConfig::default()
    };
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

fn header_map(input: &Input) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in input.headers.iter().take(32) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// The `verify` property for `source`.
pub fn verify(source: Source, input: &Input) {
    let world = &*WORLD;
    let Some(verifiers) = world.verifiers.get(&source) else {
        return;
    };
    let verifier = &verifiers[usize::from(input.route) % verifiers.len()];
    let headers = header_map(input);
    let body = Bytes::from(input.body.clone());
    let request = WebhookRequest {
        method: &Method::POST,
        path_and_query: &input.path,
        headers: &headers,
        body: &body,
        account: None,
        now: NOW + i64::from(input.now_offset),
    };
    match world.runtime.block_on(verifier.verify(&request)) {
        Err(_) => {}
        Ok(Accepted::Publish(verified)) => {
            panic!("{source}: accepted without a valid signature: {verified:?}")
        }
        Ok(Accepted::Reply(reply)) => {
            let ping = input.body.starts_with(b"webhook_id=")
                && headers.get("x-wc-webhook-signature").is_none();
            assert!(
                source == Source::Custom && ping,
                "{source}: answered {reply:?} without a signature"
            );
        }
    }
}

/// The `extract` property.
pub fn extract(input: &Input) {
    let headers = header_map(input);
    let body = Bytes::from(input.body.clone());
    let request = WebhookRequest {
        method: &Method::POST,
        path_and_query: &input.path,
        headers: &headers,
        body: &body,
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
