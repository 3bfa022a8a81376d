//! What every provider simulator enforces the same way, as providers do: a token bucket per
//! app (429 with `Retry-After` when it is empty), maintenance windows and injected 5xx
//! (503 with `Retry-After`), access tokens that expire, and counts of what happened, so a
//! test can say how often the client was throttled, not only that it got through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The provider's rate: `rate` requests a second, bursts of `burst`.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes one token, or says how long until there is one.
    pub fn take(&mut self) -> Result<(), Duration> {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// Tokens left (whole).
    pub fn remaining(&mut self) -> u32 {
        self.refill();
        self.tokens.floor() as u32
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// What a test makes the provider do.
#[derive(Debug, Default)]
pub struct Faults {
    /// Answer the next N requests with 500.
    pub fail_next: u32,
    /// Answer everything with 503 and `Retry-After` until then (a maintenance window).
    pub down_until: Option<Instant>,
}

/// The counts a test reads.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub served: AtomicU64,
    pub throttled: AtomicU64,
    pub failed: AtomicU64,
    pub unauthorized: AtomicU64,
    pub tokens_issued: AtomicU64,
}

/// One simulated provider's shared machinery.
#[derive(Debug)]
pub struct Core {
    pub bucket: Mutex<Bucket>,
    pub faults: Mutex<Faults>,
    pub counts: Counts,
    tokens: Mutex<HashMap<String, Instant>>,
    pub token_lifetime: Mutex<Duration>,
}

/// Why the gate refused a request: the answer to send.
pub type Refused = Response;

impl Core {
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            bucket: Mutex::new(Bucket::new(rate, burst)),
            faults: Mutex::new(Faults::default()),
            counts: Counts::default(),
            tokens: Mutex::new(HashMap::new()),
            token_lifetime: Mutex::new(Duration::from_secs(3600)),
        }
    }

    /// What every request meets first: the maintenance window, injected failures, the rate.
    /// `throttled` builds the provider's own 429 answer for a wait.
    pub fn gate(&self, throttled: impl FnOnce(Duration) -> Response) -> Result<(), Refused> {
        self.counts.requests.fetch_add(1, Ordering::SeqCst);
        {
            let mut faults = self.faults.lock().unwrap();
            if let Some(until) = faults.down_until {
                let now = Instant::now();
                if now < until {
                    self.counts.failed.fetch_add(1, Ordering::SeqCst);
                    let secs = until.duration_since(now).as_secs().max(1);
                    return Err(unavailable(secs));
                }
                faults.down_until = None;
            }
            if faults.fail_next > 0 {
                faults.fail_next -= 1;
                self.counts.failed.fetch_add(1, Ordering::SeqCst);
                return Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response());
            }
        }
        if let Err(wait) = self.bucket.lock().unwrap().take() {
            self.counts.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(throttled(wait));
        }
        Ok(())
    }

    /// A request got its answer.
    pub fn served(&self) {
        self.counts.served.fetch_add(1, Ordering::SeqCst);
    }

    /// Issues an access token good for the current lifetime.
    pub fn issue_token(&self, prefix: &str) -> (String, Duration) {
        let n = self.counts.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{prefix}{n}-{}", std::process::id());
        let lifetime = *self.token_lifetime.lock().unwrap();
        self.tokens
            .lock()
            .unwrap()
            .insert(token.clone(), Instant::now() + lifetime);
        (token, lifetime)
    }

    /// Whether `token` was issued and has not expired.
    pub fn token_valid(&self, token: &str) -> bool {
        let valid = self
            .tokens
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires);
        if !valid {
            self.counts.unauthorized.fetch_add(1, Ordering::SeqCst);
        }
        valid
    }

    /// Every issued token expires now.
    pub fn expire_tokens(&self) {
        self.tokens.lock().unwrap().clear();
    }

    pub fn set_rate(&self, rate: f64, burst: u32) {
        *self.bucket.lock().unwrap() = Bucket::new(rate, burst);
    }

    /// A maintenance window of `duration` from now.
    pub fn down_for(&self, duration: Duration) {
        self.faults.lock().unwrap().down_until = Some(Instant::now() + duration);
    }

    /// Answers the next `n` requests with 500.
    pub fn fail_next(&self, n: u32) {
        self.faults.lock().unwrap().fail_next = n;
    }

    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// 503 with `Retry-After`.
pub fn unavailable(retry_after_secs: u64) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// `Retry-After` in whole seconds, rounded up (at least 1), as most providers send it.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The bearer token of a request.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
