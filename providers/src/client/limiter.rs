//! The rate a provider allows, kept on our side: a token bucket per app and account (GCRA, the
//! "generic cell rate algorithm"), so a backfill or an enrichment burst runs at the allowed
//! rate instead of bouncing off it with 429s.
//!
//! Each [`Limiter::acquire`] reserves the next free slot and sleeps until it: callers queue in
//! the order they asked, `burst` of them may go at once after a quiet spell, and after that
//! one goes every `1 / rate` seconds. A provider's word overrides ours: a 429's `Retry-After`
//! (or a rate-limit header saying the window is spent) pushes every later slot behind it
//! ([`Limiter::hold_until`]); a header naming the rate (Amazon's `x-amzn-RateLimit-Limit`)
//! changes it ([`Limiter::set_rate`]). Cost-based APIs (Shopify's GraphQL) reserve several
//! units at once.
//!
//! The bucket lives in this process: two processes calling one account share its rate, so
//! each should be given its share (`rate_per_sec` in the account's `[api.…]` table).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// One app-and-account's allowed rate.
#[derive(Debug)]
pub struct Limiter {
    name: String,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Time one unit costs (`1 / rate`).
    interval: Duration,
    /// How many units may go at once after a quiet spell.
    burst: u32,
    /// The theoretical arrival time of the next unit: slots before it are taken.
    tat: Instant,
    /// The slowest interval and largest burst the provider's word may set (this process's
    /// configured share), if any.
    ceiling: Option<(Duration, u32)>,
}

impl Limiter {
    /// A limiter allowing `rate_per_sec` units a second with bursts of `burst`; `name` says
    /// whose rate it is in logs (`etsy/12345`).
    pub fn new(name: impl Into<String>, rate_per_sec: f64, burst: u32) -> Self {
        Self {
            name: name.into(),
            state: Mutex::new(State {
                interval: interval_of(rate_per_sec),
                burst: burst.max(1),
                tat: Instant::now(),
                ceiling: None,
            }),
        }
    }

    /// Whose rate this is.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rate, in units a second.
    pub fn rate_per_sec(&self) -> f64 {
        let state = self.lock();
        1.0 / state.interval.as_secs_f64()
    }

    /// Waits for `units` of the rate (1 for a plain request), then returns: the caller may
    /// send its request now.
    pub async fn acquire(&self, units: u32) {
        let at = self.reserve(units);
        tokio::time::sleep_until(at).await;
    }

    /// Reserves `units` and says when they may be used: when the bucket holds them (all of
    /// it, for more units than it can hold).
    fn reserve(&self, units: u32) -> Instant {
        let now = Instant::now();
        let mut state = self.lock();
        let units = units.max(1);
        let cost = state.interval.saturating_mul(units);
        // The bucket may run up to `burst` units ahead of now; these units fit once the
        // reservations before them are no more than `burst - units` ahead.
        let room = state
            .interval
            .saturating_mul(state.burst.saturating_sub(units.min(state.burst)));
        let tat = state.tat.max(now);
        let allowed_at = tat.checked_sub(room).unwrap_or(now).max(now);
        state.tat = tat + cost;
        allowed_at
    }

    /// The provider says its bucket holds `available` units now (Shopify's
    /// `currentlyAvailable`): ours holds no more than that. Never gives back what ours
    /// already holds less of (requests of ours in flight the provider has not seen yet).
    pub fn observe_level(&self, available: f64) {
        if !available.is_finite() {
            return;
        }
        let now = Instant::now();
        let mut state = self.lock();
        let burst = f64::from(state.burst);
        let missing = (burst - available.clamp(0.0, burst)).floor();
        // `missing` is within 0..=burst, a u32.
        let level = now + state.interval.saturating_mul(missing as u32);
        if level > state.tat {
            state.tat = level;
        }
    }

    /// Caps what the provider may tell ([`Limiter::set_rate`], [`Limiter::set_burst`]): this
    /// process's share of an account it shares with others.
    pub fn set_ceiling(&self, rate_per_sec: f64, burst: u32) {
        let mut state = self.lock();
        state.ceiling = Some((interval_of(rate_per_sec), burst.max(1)));
        let (interval, burst) = (state.interval, state.burst);
        Self::apply(&mut state, interval, burst);
    }

    /// Sets the rate and burst, within the ceiling; what is reserved keeps its share of the
    /// bucket at the new rate.
    fn apply(state: &mut State, interval: Duration, burst: u32) {
        let (interval, burst) = match state.ceiling {
            Some((slowest, most)) => (interval.max(slowest), burst.min(most)),
            None => (interval, burst),
        };
        if interval != state.interval {
            let now = Instant::now();
            if state.tat > now {
                let ahead = (state.tat - now).as_secs_f64();
                let scaled = ahead * interval.as_secs_f64() / state.interval.as_secs_f64();
                state.tat = now + Duration::from_secs_f64(scaled.min(86_400.0));
            }
            state.interval = interval;
        }
        state.burst = burst.max(1);
    }

    /// Hands back `units` reserved but not used (a cost-based API charged less than asked).
    pub fn refund(&self, units: u32) {
        let mut state = self.lock();
        let refund = state.interval.saturating_mul(units);
        let floor = Instant::now();
        state.tat = state.tat.checked_sub(refund).unwrap_or(floor).max(floor);
    }

    /// The provider said to wait until `until` (a 429's `Retry-After`, a spent window): no
    /// slot is handed out before it, and what was queued moves behind it.
    pub fn hold_until(&self, until: Instant) {
        let mut state = self.lock();
        // Slots after `until` start at most `burst` units ahead of it, never a burst at once:
        // a provider that just refused us gets our requests spread out again.
        let tolerance = state.interval.saturating_mul(state.burst.saturating_sub(1));
        let resume = until + tolerance;
        if resume > state.tat {
            tracing::info!(
                limiter = %self.name,
                wait_ms = until.saturating_duration_since(Instant::now()).as_millis() as u64,
                "provider asked us to wait; holding its requests"
            );
            state.tat = resume;
        }
    }

    /// The provider told its rate (`x-amzn-RateLimit-Limit: 0.5`): use it from now on.
    pub fn set_rate(&self, rate_per_sec: f64) {
        let interval = interval_of(rate_per_sec);
        let mut state = self.lock();
        let before = state.interval;
        let burst = state.burst;
        Self::apply(&mut state, interval, burst);
        if state.interval != before {
            tracing::info!(limiter = %self.name, rate_per_sec, "provider told its rate; adopting it");
        }
    }

    /// The provider told how many units it lets go at once (Shopify's `maximumAvailable`):
    /// use it from now on.
    pub fn set_burst(&self, burst: u32) {
        let mut state = self.lock();
        let before = state.burst;
        let interval = state.interval;
        Self::apply(&mut state, interval, burst);
        if state.burst != before {
            tracing::info!(limiter = %self.name, burst = state.burst, "provider told its burst; adopting it");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `1 / rate`, for a rate that makes sense (a rate of 0, negative or not a number is taken as
/// one request a minute rather than a division by zero).
fn interval_of(rate_per_sec: f64) -> Duration {
    if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
        Duration::from_secs_f64((1.0 / rate_per_sec).min(3600.0))
    } else {
        Duration::from_secs(60)
    }
}

/// A `Retry-After` as a provider sends it: delay seconds (`"5"`, sometimes `"2.5"`), or an
/// HTTP date; at most `max`.
pub fn retry_after(value: &str, max: Duration) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds.min(max.as_secs_f64())));
        }
        return None;
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now()).to_std().ok()?;
    Some(wait.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_requests_go_at_the_rate() {
        let limiter = Limiter::new("test", 10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire(1).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..10 {
            limiter.acquire(1).await;
        }
        // Ten more at 10/s after the burst: one second.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(999) && elapsed <= Duration::from_millis(1001),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_spell_refills_only_up_to_the_burst() {
        let limiter = Limiter::new("test", 2.0, 2);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire(1).await;
        }
        // Two at once, then two more at 2/s.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_holds_every_later_request() {
        let limiter = Limiter::new("test", 100.0, 1);
        limiter.acquire(1).await;
        let start = Instant::now();
        limiter.hold_until(start + Duration::from_secs(5));
        limiter.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        // An earlier hold than what is queued changes nothing.
        limiter.hold_until(Instant::now());
        limiter.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_millis(5010));
    }

    #[tokio::test(start_paused = true)]
    async fn costs_and_refunds_move_the_slots() {
        let limiter = Limiter::new("test", 50.0, 1);
        let start = Instant::now();
        limiter.acquire(100).await; // two seconds of rate, reserved at once
        limiter.refund(50);
        limiter.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_the_provider_tells_is_adopted() {
        let limiter = Limiter::new("test", 10.0, 1);
        limiter.set_rate(0.5);
        let start = Instant::now();
        limiter.acquire(1).await;
        limiter.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!((limiter.rate_per_sec() - 0.5).abs() < 1e-9);
        // Nonsense from outside is not a division by zero.
        limiter.set_rate(0.0);
        limiter.set_rate(f64::NAN);
    }

    #[tokio::test(start_paused = true)]
    async fn a_costly_request_waits_until_the_bucket_holds_its_cost() {
        // Shopify-like: 1,000 points, 100 a second.
        let limiter = Limiter::new("test", 100.0, 1_000);
        let start = Instant::now();
        limiter.acquire(600).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // 400 left: another 600 needs two more seconds of refill.
        limiter.acquire(600).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_providers_level_lowers_ours_and_a_ceiling_caps_its_word() {
        let limiter = Limiter::new("test", 100.0, 1_000);
        // Another process spent most of the bucket: 100 left, so 600 wait five seconds.
        limiter.observe_level(100.0);
        let start = Instant::now();
        limiter.acquire(600).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        // A level above ours gives nothing back.
        limiter.observe_level(1_000.0);
        limiter.acquire(1_000).await;
        // Only what was reserved before: 900 missing, then 600 more, at 100 a second.
        assert_eq!(start.elapsed(), Duration::from_secs(15));

        let shared = Limiter::new("shared", 50.0, 500);
        shared.set_ceiling(50.0, 500);
        shared.set_rate(100.0);
        shared.set_burst(1_000);
        assert!((shared.rate_per_sec() - 50.0).abs() < 1e-9);
        shared.set_rate(20.0);
        assert!((shared.rate_per_sec() - 20.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_rate_rescales_what_is_reserved() {
        let limiter = Limiter::new("test", 100.0, 1);
        let start = Instant::now();
        limiter.acquire(400).await; // four seconds of the old rate ahead
        limiter.set_rate(400.0);
        limiter.acquire(1).await;
        // One second at the new rate.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_within_a_bound() {
        let max = Duration::from_secs(120);
        assert_eq!(retry_after("5", max), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(" 2.5 ", max), Some(Duration::from_millis(2500)));
        assert_eq!(retry_after("86400", max), Some(max));
        assert_eq!(retry_after("-1", max), None);
        assert_eq!(retry_after("soon", max), None);
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = retry_after(&later, max).unwrap_or_default();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }
}
