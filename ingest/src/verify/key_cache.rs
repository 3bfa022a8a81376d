//! Key material fetched on behalf of unauthenticated requests (eBay public keys by `kid`,
//! SNS certificates by URL), and what keeps a flood of such requests from becoming a flood of
//! calls to the provider:
//!
//! - **Single flight.** Requests that need the same key while it is being fetched wait for
//!   that one fetch and share its result.
//! - **Negative cache.** A key the provider says does not exist (eBay's 404 for a `kid`, a
//!   certificate AWS does not have) is remembered as missing for [`MISSING_FOR`]; requests
//!   naming it are refused without a call.
//! - **Budget.** Each verifier fetches at most [`FETCHES_PER_MINUTE`] keys a minute (a token
//!   bucket, refilled continuously). Past it, a request for an unknown key is answered as
//!   "unavailable" (503, the provider retries) without a call. Cached keys are unaffected, so
//!   real deliveries go on during a flood of made-up key ids.
//!
//! A failure that passes (timeout, 5xx) is shared by the requests waiting for it but not
//! remembered: the next request may try again, within the budget.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many keys one verifier may fetch a minute.
pub const FETCHES_PER_MINUTE: u32 = 20;
/// How long a key the provider said does not exist is remembered as missing.
pub const MISSING_FOR: Duration = Duration::from_secs(300);
/// Most keys (present or missing) remembered; the cache starts over beyond it.
const MAX_ENTRIES: usize = 1024;

/// What fetching a key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched<V> {
    /// The key, good until the instant given.
    Key(V, Instant),
    /// The provider says there is no such key.
    Missing,
    /// No answer worth keeping (a timeout, a 5xx): try again later.
    Failed(String),
}

/// Why a key cannot be had now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The provider says there is no such key (now, or within [`MISSING_FOR`]).
    Missing,
    /// It could not be fetched, or the budget is spent: try again later.
    Unavailable(String),
}

#[derive(Debug, Clone)]
enum Entry<V> {
    Key(V, Instant),
    Missing(Instant),
}

struct Budget {
    tokens: f64,
    at: Instant,
}

/// One verifier's keys by id.
pub struct KeyCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    flights: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
    budget: Mutex<Budget>,
    per_minute: u32,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for KeyCache<K, V> {
    fn default() -> Self {
        Self::new(FETCHES_PER_MINUTE)
    }
}

impl<K: Eq + Hash + Clone, V: Clone> KeyCache<K, V> {
    /// An empty cache fetching at most `per_minute` keys a minute.
    pub fn new(per_minute: u32) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            budget: Mutex::new(Budget {
                tokens: f64::from(per_minute),
                at: Instant::now(),
            }),
            per_minute,
        }
    }

    /// Puts a key in, as if fetched.
    pub fn insert(&self, id: K, key: V, until: Instant) {
        self.store(id, Entry::Key(key, until));
    }

    /// The key `id`: from the cache, or from `fetch` (once for all who ask meanwhile, and
    /// only within the budget).
    ///
    /// # Errors
    /// [`Miss`] when the provider has no such key or it cannot be had now.
    pub async fn get<F, Fut>(&self, id: &K, fetch: F) -> Result<V, Miss>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Fetched<V>>,
    {
        if let Some(known) = self.known(id) {
            return known;
        }
        let flight = {
            let mut flights = lock(&self.flights);
            if flights.len() >= MAX_ENTRIES {
                // Only entries nobody waits on can go; the others are held by their waiters.
                flights.retain(|_, flight| Arc::strong_count(flight) > 1);
            }
            Arc::clone(flights.entry(id.clone()).or_default())
        };
        let _flying = flight.lock().await;
        // Whoever held the flight before us may have settled it.
        if let Some(known) = self.known(id) {
            return known;
        }
        if !self.spend() {
            return Err(Miss::Unavailable(format!(
                "more than {} key fetches a minute; not fetching another now",
                self.per_minute
            )));
        }
        let result = match fetch().await {
            Fetched::Key(key, until) => {
                self.store(id.clone(), Entry::Key(key.clone(), until));
                Ok(key)
            }
            Fetched::Missing => {
                self.store(id.clone(), Entry::Missing(Instant::now() + MISSING_FOR));
                Err(Miss::Missing)
            }
            Fetched::Failed(reason) => Err(Miss::Unavailable(reason)),
        };
        lock(&self.flights).remove(id);
        result
    }

    /// What the cache knows of `id` now, if anything.
    fn known(&self, id: &K) -> Option<Result<V, Miss>> {
        let now = Instant::now();
        match lock(&self.entries).get(id)? {
            Entry::Key(key, until) if now < *until => Some(Ok(key.clone())),
            Entry::Missing(until) if now < *until => Some(Err(Miss::Missing)),
            Entry::Key(..) | Entry::Missing(_) => None,
        }
    }

    fn store(&self, id: K, entry: Entry<V>) {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, entry| match entry {
                Entry::Key(_, until) | Entry::Missing(until) => now < *until,
            });
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(id, entry);
    }

    /// Takes one fetch from the budget, if there is one.
    fn spend(&self) -> bool {
        let mut budget = lock(&self.budget);
        let now = Instant::now();
        let capacity = f64::from(self.per_minute);
        let refill = now.duration_since(budget.at).as_secs_f64() * capacity / 60.0;
        budget.tokens = (budget.tokens + refill).min(capacity);
        budget.at = now;
        if budget.tokens >= 1.0 {
            budget.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch_and_a_missing_key_is_remembered() {
        let cache: Arc<KeyCache<String, u32>> = Arc::new(KeyCache::new(5));
        let calls = Arc::new(AtomicU32::new(0));
        let fetch = |calls: Arc<AtomicU32>, found: bool| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if found {
                Fetched::Key(7, Instant::now() + Duration::from_secs(60))
            } else {
                Fetched::Missing
            }
        };
        let asks = (0..20).map(|_| {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
            tokio::spawn(async move { cache.get(&"k".to_owned(), || fetch(calls, true)).await })
        });
        for ask in futures::future::join_all(asks).await {
            assert_eq!(ask.ok(), Some(Ok(7)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        for _ in 0..3 {
            let missing = cache
                .get(&"nope".to_owned(), || fetch(Arc::clone(&calls), false))
                .await;
            assert_eq!(missing, Err(Miss::Missing));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "a missing key is asked once"
        );
    }

    #[tokio::test]
    async fn the_budget_caps_fetches_but_not_cached_keys() {
        let cache: KeyCache<u32, u32> = KeyCache::new(3);
        cache.insert(0, 42, Instant::now() + Duration::from_secs(60));
        let mut fetched = 0;
        for id in 1..10 {
            let result = cache
                .get(&id, || async {
                    fetched += 1;
                    Fetched::Failed("503".into())
                })
                .await;
            assert!(matches!(result, Err(Miss::Unavailable(_))));
        }
        assert_eq!(fetched, 3);
        assert_eq!(cache.get(&0, || async { Fetched::Missing }).await, Ok(42));
    }
}
