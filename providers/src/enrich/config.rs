//! `[enrich]`: the enrich stage's settings; defaults live here.

use std::net::SocketAddr;

use serde::Deserialize;

/// Enrich stage settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// Consumer group of the raw-topic reader.
    pub group_id: String,
    /// Consumer group of the retry-topic reader.
    pub retry_group_id: String,
    /// This member's stable name (`group.instance.id`, static membership): a restarted
    /// stage takes its partitions back at once. The pod name of a StatefulSet. Unset:
    /// dynamic membership.
    pub instance_id: Option<String>,
    /// Most records open at once per reader (fetched, not yet finished); past it fetching
    /// pauses.
    pub max_open_records: usize,
    /// Most fetches running at once for one account of one provider. Its rate limiter paces
    /// them; this bounds what waits in it.
    pub max_in_flight_per_account: usize,
    /// How many of one account's records may wait for a fetch before further ones are sent
    /// to the retry topic at once, so a slow or throttled provider holds neither memory nor
    /// the other providers' orders.
    pub account_backlog: usize,
    /// How long to wait before trying a failed completion again, in seconds, attempt by
    /// attempt; the last repeats.
    pub retry_delays_secs: Vec<u64>,
    /// How long a completion may keep failing before its notification is dead-lettered
    /// (`provider-unavailable`, replayable), in seconds.
    pub retry_max_age_secs: u64,
    /// `fetch.wait.max.ms` of the readers (see the processor's setting of that name).
    pub fetch_wait_max_ms: u64,
    /// At a rebalance, how long fetches running for revoked partitions get to finish, in ms.
    pub revoke_grace_ms: u64,
    /// At shutdown, how long running fetches get to finish, in ms.
    pub shutdown_grace_ms: u64,
    /// Address for `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        Self {
            group_id: "orderbridge-enrich".into(),
            retry_group_id: "orderbridge-enrich-retry".into(),
            instance_id: None,
            max_open_records: 2000,
            max_in_flight_per_account: 8,
            account_backlog: 500,
            retry_delays_secs: vec![10, 30, 60, 120, 300, 600, 1800, 3600],
            retry_max_age_secs: 24 * 3600,
            fetch_wait_max_ms: 500,
            revoke_grace_ms: 30_000,
            shutdown_grace_ms: 10_000,
            listen: SocketAddr::from(([0, 0, 0, 0], 9093)),
        }
    }
}

impl EnrichConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A description of the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.group_id.trim().is_empty() || self.retry_group_id.trim().is_empty() {
            return Err("enrich.group_id and enrich.retry_group_id must not be empty".into());
        }
        if self.group_id == self.retry_group_id {
            return Err("enrich.group_id and enrich.retry_group_id must differ".into());
        }
        if self.max_open_records == 0
            || self.max_in_flight_per_account == 0
            || self.account_backlog == 0
        {
            return Err(
                "enrich.max_open_records, max_in_flight_per_account and account_backlog must be positive".into(),
            );
        }
        if self.retry_delays_secs.is_empty() || self.retry_delays_secs.contains(&0) {
            return Err(
                "enrich.retry_delays_secs must name at least one delay, none of them 0".into(),
            );
        }
        if self
            .instance_id
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            return Err("enrich.instance_id must not be empty when set".into());
        }
        Ok(())
    }

    /// The delay before attempt `attempt` (1-based: the delay after the first failure is
    /// attempt 1's).
    pub fn retry_delay(&self, attempt: u32) -> std::time::Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        let secs = self
            .retry_delays_secs
            .get(index)
            .or(self.retry_delays_secs.last())
            .copied()
            .unwrap_or(60);
        std::time::Duration::from_secs(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn delays_go_attempt_by_attempt_and_the_last_repeats() {
        let config = EnrichConfig {
            retry_delays_secs: vec![5, 30],
            ..EnrichConfig::default()
        };
        assert_eq!(config.retry_delay(1), Duration::from_secs(5));
        assert_eq!(config.retry_delay(2), Duration::from_secs(30));
        assert_eq!(config.retry_delay(9), Duration::from_secs(30));
        assert!(config.validate().is_ok());
        let none = EnrichConfig {
            retry_delays_secs: vec![],
            ..EnrichConfig::default()
        };
        assert!(none.validate().is_err());
    }
}
