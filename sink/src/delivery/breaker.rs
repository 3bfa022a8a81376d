//! The breaker: when the ERP as a whole is unavailable (a maintenance window, an outage,
//! refused credentials), stop calling it, probe now and then, and resume when a probe gets an
//! answer.
//!
//! - Closed: calls pass. `threshold` ERP-wide failures in a row open it.
//! - Open: no call passes until the probe time; the engine pauses its partitions and reports
//!   not ready meanwhile.
//! - Probing: one call (the probe) passes. An answer, any answer that is not ERP-wide trouble
//!   (a rejection is an answer), closes the breaker; another failure opens it again for twice
//!   as long, up to `max_open`.
//!
//! Records wait while the breaker is open; their waiting is not counted against them.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// What a call came back with, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The ERP answered (success, rejection, throttling, one request's failure).
    Answered,
    /// ERP-wide trouble.
    Unavailable,
}

/// How a call was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The breaker is closed.
    Normal,
    /// The one probe of an open breaker; its verdict decides.
    Probe,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, open_for: Duration },
    Probing { open_for: Duration },
}

/// The breaker of one ERP.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    first_open: Duration,
    max_open: Duration,
    state: Mutex<State>,
    /// `true` while open or probing; sent at every verdict that moves the state.
    open: watch::Sender<bool>,
}

impl Breaker {
    /// Opens after `threshold` ERP-wide failures in a row; probes first after `first_open`,
    /// then after doubling waits up to `max_open`.
    pub fn new(threshold: u32, first_open: Duration, max_open: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            first_open,
            max_open: max_open.max(first_open),
            state: Mutex::new(State::Closed { failures: 0 }),
            open: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Follows whether the breaker is open.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }

    /// Whether the breaker is open (or probing).
    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Waits until a call may go to the ERP.
    pub async fn pass(&self) -> Pass {
        let mut changes = self.open.subscribe();
        loop {
            let wait_until = {
                let mut state = self.lock();
                match *state {
                    State::Closed { .. } => return Pass::Normal,
                    State::Open { until, open_for } if Instant::now() >= until => {
                        *state = State::Probing { open_for };
                        return Pass::Probe;
                    }
                    State::Open { until, .. } => Some(until),
                    State::Probing { .. } => None,
                }
            };
            changes.mark_unchanged();
            match wait_until {
                Some(until) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        _ = changes.changed() => {}
                    }
                }
                // Wait for the probe's verdict.
                None => {
                    let _ = changes.changed().await;
                }
            }
        }
    }

    /// Takes a call's verdict.
    pub fn record(&self, pass: Pass, verdict: Verdict) {
        let mut state = self.lock();
        let was_open = !matches!(*state, State::Closed { .. });
        let next = match (*state, pass, verdict) {
            (State::Closed { .. }, _, Verdict::Answered) => State::Closed { failures: 0 },
            (State::Closed { failures }, _, Verdict::Unavailable) => {
                if failures + 1 >= self.threshold {
                    State::Open {
                        until: Instant::now() + self.first_open,
                        open_for: self.first_open,
                    }
                } else {
                    State::Closed {
                        failures: failures + 1,
                    }
                }
            }
            (State::Probing { .. }, Pass::Probe, Verdict::Answered) => {
                State::Closed { failures: 0 }
            }
            (State::Probing { open_for }, Pass::Probe, Verdict::Unavailable) => {
                let open_for = (open_for * 2).min(self.max_open);
                State::Open {
                    until: Instant::now() + open_for,
                    open_for,
                }
            }
            // A call that was already running when the breaker opened: its verdict is old news.
            (current, _, _) => current,
        };
        *state = next;
        let open = !matches!(next, State::Closed { .. });
        drop(state);
        // A probe's verdict is always sent, even open → open (it failed): the callers waiting
        // for it must look again.
        if open != was_open || pass == Pass::Probe {
            self.open.send_replace(open);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_probes_and_closes_on_an_answer() {
        let breaker = Arc::new(Breaker::new(
            3,
            Duration::from_secs(1),
            Duration::from_secs(8),
        ));
        let open = breaker.subscribe();
        for _ in 0..2 {
            assert_eq!(breaker.pass().await, Pass::Normal);
            breaker.record(Pass::Normal, Verdict::Unavailable);
        }
        assert!(!breaker.is_open(), "two failures are not yet a window");
        breaker.record(Pass::Normal, Verdict::Unavailable);
        assert!(breaker.is_open());
        assert!(open.has_changed().unwrap_or(false));

        // Two callers wait; after the open time one of them probes, the other keeps waiting.
        let started = Instant::now();
        let first = tokio::spawn({
            let breaker = Arc::clone(&breaker);
            async move { breaker.pass().await }
        });
        let second = tokio::spawn({
            let breaker = Arc::clone(&breaker);
            async move { breaker.pass().await }
        });
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let (probe, waiting) = if first.is_finished() {
            (first, second)
        } else {
            (second, first)
        };
        assert_eq!(probe.await.unwrap_or(Pass::Normal), Pass::Probe);
        assert!(!waiting.is_finished(), "only one probe at a time");

        // The probe fails: open again, for twice as long.
        breaker.record(Pass::Probe, Verdict::Unavailable);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(!waiting.is_finished(), "the second wait is two seconds");
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(waiting.await.unwrap_or(Pass::Normal), Pass::Probe);
        assert!(started.elapsed() >= Duration::from_secs(3));

        // The probe gets an answer: closed, everyone passes.
        breaker.record(Pass::Probe, Verdict::Answered);
        assert!(!breaker.is_open());
        assert_eq!(breaker.pass().await, Pass::Normal);
    }

    #[tokio::test(start_paused = true)]
    async fn late_verdicts_of_calls_from_before_the_window_change_nothing() {
        let breaker = Breaker::new(1, Duration::from_secs(1), Duration::from_secs(1));
        breaker.record(Pass::Normal, Verdict::Unavailable);
        assert!(breaker.is_open());
        breaker.record(Pass::Normal, Verdict::Answered);
        assert!(breaker.is_open(), "only the probe closes it");
    }
}
