//! How many ERP calls may run at once: a bound that adapts (additive increase, multiplicative
//! decrease), as TCP's congestion window and Netflix's concurrency-limits do.
//!
//! - It starts at the configured maximum and never leaves `[1, max]`.
//! - A 429 halves it.
//! - Latency growth shrinks it by a tenth: when the smoothed latency of successful calls is
//!   more than [`LATENCY_TOLERANCE`] times the ERP's unloaded latency. The unloaded latency is
//!   the lowest seen, drifting slowly upwards so that an ERP that became slower for good is
//!   not punished forever.
//! - Healthy calls grow it back by one per full window of successes (`limit` of them).
//! - At most one decrease per window, so one burst of slow answers does not collapse it.
//! - For an ERP whose latency says nothing about its load ([`ErpClient::latency_signals_load`]:
//!   SQLite, whose one writer the sink's own calls queue for), latency is not watched: only
//!   429s move the limit.
//!
//! [`ErpClient::latency_signals_load`]: crate::erp::ErpClient::latency_signals_load

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How much slower than unloaded the ERP may answer before the limit shrinks.
pub(crate) const LATENCY_TOLERANCE: f64 = 2.0;
/// Weight of a new sample in the smoothed latency.
const SMOOTHING: f64 = 0.2;
/// Per-sample upward drift of the unloaded latency.
const BASELINE_DRIFT: f64 = 1.0001;

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    /// Successes since the limit last changed.
    window: usize,
    /// Lowest latency seen (drifting), in seconds.
    unloaded: Option<f64>,
    /// Smoothed latency, in seconds.
    smoothed: Option<f64>,
}

/// The adaptive bound on concurrent ERP calls.
#[derive(Debug)]
pub(crate) struct Limiter {
    max: usize,
    adaptive: bool,
    /// Whether growing latency shrinks the limit (see the module docs).
    watch_latency: bool,
    state: Mutex<State>,
    released: Notify,
}

/// One ERP call's place under the limit; given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.lock().in_flight -= 1;
        self.limiter.released.notify_one();
    }
}

impl Limiter {
    /// A limiter allowing up to `max` calls (at least one); fixed at `max` unless `adaptive`,
    /// and shrunk by growing latency only when `watch_latency`.
    pub fn new(max: usize, adaptive: bool, watch_latency: bool) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self {
            max,
            adaptive,
            watch_latency,
            state: Mutex::new(State {
                limit: max as f64,
                in_flight: 0,
                window: 0,
                unloaded: None,
                smoothed: None,
            }),
            released: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current limit, rounded down.
    pub fn limit(&self) -> usize {
        self.lock().limit as usize
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Waits for a place under the limit.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut state = self.lock();
                if state.in_flight < (state.limit as usize).max(1) {
                    state.in_flight += 1;
                    return Permit {
                        limiter: Arc::clone(self),
                    };
                }
            }
            released.await;
        }
    }

    /// A call answered normally after `latency`.
    pub fn succeeded(&self, latency: Duration) {
        if !self.adaptive {
            return;
        }
        let sample = latency.as_secs_f64();
        let grew = {
            let mut state = self.lock();
            let unloaded = state
                .unloaded
                .map_or(sample, |u| (u * BASELINE_DRIFT).min(sample));
            let smoothed = state
                .smoothed
                .map_or(sample, |s| s + SMOOTHING * (sample - s));
            state.unloaded = Some(unloaded);
            state.smoothed = Some(smoothed);
            state.window += 1;
            let full_window = state.window >= state.limit as usize;
            if self.watch_latency && smoothed > LATENCY_TOLERANCE * unloaded && unloaded > 0.0 {
                if full_window {
                    state.limit = (state.limit * 0.9).max(1.0);
                    state.window = 0;
                }
                false
            } else if full_window && (state.limit as usize) < self.max {
                state.limit = (state.limit + 1.0).min(self.max as f64);
                state.window = 0;
                true
            } else {
                false
            }
        };
        if grew {
            self.released.notify_one();
        }
    }

    /// The ERP answered 429: halve the limit.
    pub fn throttled(&self) {
        if !self.adaptive {
            return;
        }
        let mut state = self.lock();
        state.limit = (state.limit / 2.0).max(1.0);
        state.window = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_halves_the_limit_and_health_grows_it_back_to_the_maximum() {
        let limiter = Limiter::new(32, true, true);
        assert_eq!(limiter.limit(), 32);
        limiter.throttled();
        limiter.throttled();
        assert_eq!(limiter.limit(), 8);
        for _ in 0..10_000 {
            limiter.succeeded(Duration::from_millis(50));
        }
        assert_eq!(limiter.limit(), 32, "grows back, and not past the maximum");
        for _ in 0..10 {
            limiter.throttled();
        }
        assert_eq!(limiter.limit(), 1, "never below one");
    }

    #[test]
    fn latency_growth_shrinks_the_limit() {
        let limiter = Limiter::new(64, true, true);
        for _ in 0..200 {
            limiter.succeeded(Duration::from_millis(50));
        }
        assert_eq!(limiter.limit(), 64);
        for _ in 0..800 {
            limiter.succeeded(Duration::from_millis(400));
        }
        let shrunk = limiter.limit();
        assert!(shrunk < 16, "the ERP answers 8× slower: limit {shrunk}");
        // Back to normal speed: it grows again.
        for _ in 0..20_000 {
            limiter.succeeded(Duration::from_millis(50));
        }
        assert!(limiter.limit() > shrunk);
    }

    #[test]
    fn without_watching_latency_only_throttling_moves_the_limit() {
        let limiter = Limiter::new(16, true, false);
        for _ in 0..200 {
            limiter.succeeded(Duration::from_micros(500));
        }
        for _ in 0..800 {
            limiter.succeeded(Duration::from_millis(8));
        }
        assert_eq!(limiter.limit(), 16, "16× slower, and the limit stays");
        limiter.throttled();
        assert_eq!(limiter.limit(), 8);
        for _ in 0..10_000 {
            limiter.succeeded(Duration::from_millis(8));
        }
        assert_eq!(limiter.limit(), 16, "and grows back after a 429");
    }

    #[test]
    fn a_fixed_limiter_does_not_move() {
        let limiter = Limiter::new(4, false, true);
        limiter.throttled();
        limiter.succeeded(Duration::from_secs(5));
        assert_eq!(limiter.limit(), 4);
    }

    #[tokio::test]
    async fn callers_wait_for_a_place_and_get_it_when_one_is_released() {
        let limiter = Limiter::new(2, false, true);
        let first = limiter.acquire().await;
        let _second = limiter.acquire().await;
        assert_eq!(limiter.in_flight(), 2);
        let waiting = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a third call waits");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released in time")
            .expect("task");
        assert_eq!(limiter.in_flight(), 2);
        drop(third);
        assert_eq!(limiter.in_flight(), 1);
    }
}
