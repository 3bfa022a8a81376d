//! Exponential backoff with jitter, for every "try again later" in the pipeline.

use std::time::Duration;

use rand::Rng;

/// Doubles from `initial` up to `max`, each delay drawn from the upper half of the current
/// ceiling so that many clients retrying at once spread out but never retry immediately.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial`, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            attempt: 0,
        }
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// The next delay, but at least `hint` (a server's `Retry-After`), itself clamped to `max`.
    pub fn next_delay_at_least(&mut self, hint: Option<Duration>) -> Duration {
        let delay = self.next_delay();
        match hint {
            Some(hint) => delay.max(hint.min(self.max)),
            None => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = backoff.next_delay();
        assert!(
            first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
            "{first:?}"
        );
        for _ in 0..10 {
            assert!(backoff.next_delay() <= Duration::from_secs(1));
        }
        let late = backoff.next_delay();
        assert!(late >= Duration::from_millis(500), "{late:?}");
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn honours_a_retry_after_hint_within_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(60));
        assert!(
            backoff.next_delay_at_least(Some(Duration::from_secs(7))) >= Duration::from_secs(7)
        );
        assert!(
            backoff.next_delay_at_least(Some(Duration::from_secs(3600))) <= Duration::from_secs(60)
        );
    }
}
