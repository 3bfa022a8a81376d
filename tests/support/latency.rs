//! The simulators' slowness, in one place (shared with the `erp-simulator` example).

use std::time::Duration;

/// A simulated ERP taking `latency` to answer a call (nothing when zero): the one place the
/// simulators' slowness lives. It is the behaviour under test (a loaded or stalled ERP), an
/// answer given at its deadline, not a test waiting for something: tests wait for conditions
/// with `support::wait_for`.
pub async fn answer_after(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep_until(tokio::time::Instant::now() + latency).await;
    }
}
