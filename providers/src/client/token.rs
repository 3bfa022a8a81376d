//! An access token per account, fetched when needed and refreshed before it expires, one
//! refresh at a time: callers that need it meanwhile wait for that refresh and get its token
//! instead of each asking the provider for one.
//!
//! Providers that rotate refresh tokens (eBay, Etsy, TikTok Shop hand back a new one with
//! every access token) have the newest kept here and used for the next refresh. It lives in
//! memory: a restarted process starts again from the configured one, which these providers
//! keep valid for months.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::ApiError;

/// What a token endpoint handed out.
#[derive(Clone)]
pub struct Token {
    /// The access token.
    pub access: String,
    /// How long it is good for.
    pub expires_in: Duration,
    /// A new refresh token, when the provider rotates them.
    pub refresh: Option<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("access", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

struct Cached {
    access: Arc<str>,
    refresh_at: Instant,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    rotated_refresh: Option<Arc<str>>,
}

/// One account's access token.
#[derive(Default)]
pub struct TokenCache {
    state: Mutex<State>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache([redacted])")
    }
}

impl TokenCache {
    /// A cache with no token yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current token, or a new one from `fetch`, which is given the newest refresh token
    /// the provider handed back (`None`: use the configured one). Only one `fetch` runs at a
    /// time; whoever waited for it gets its token.
    ///
    /// # Errors
    /// What `fetch` failed with.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<str>, ApiError>
    where
        F: FnOnce(Option<Arc<str>>) -> Fut,
        Fut: Future<Output = Result<Token, ApiError>>,
    {
        // Held across the fetch: that is what makes it one refresh at a time.
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current {
            if Instant::now() < current.refresh_at {
                return Ok(Arc::clone(&current.access));
            }
        }
        let token = fetch(state.rotated_refresh.clone()).await?;
        let access: Arc<str> = Arc::from(token.access);
        // Refreshed a while before it expires: a fifth of its life, at most a minute, so a
        // request never starts with a token about to lapse.
        let margin = (token.expires_in / 5).min(Duration::from_secs(60));
        state.current = Some(Cached {
            access: Arc::clone(&access),
            refresh_at: Instant::now() + token.expires_in.saturating_sub(margin),
        });
        if let Some(refresh) = token.refresh {
            state.rotated_refresh = Some(Arc::from(refresh));
        }
        Ok(access)
    }

    /// The provider refused `used`: forget it (unless a newer one replaced it already), so the
    /// next [`TokenCache::get`] fetches another.
    pub async fn forget(&self, used: &str) {
        let mut state = self.state.lock().await;
        if state
            .current
            .as_ref()
            .is_some_and(|current| &*current.access == used)
        {
            state.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn token(n: u32, secs: u64) -> Token {
        Token {
            access: format!("token-{n}"),
            expires_in: Duration::from_secs(secs),
            refresh: Some(format!("refresh-{n}")),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_refresh_serves_everyone_waiting_and_refreshes_before_expiry() {
        let cache = Arc::new(TokenCache::new());
        let fetches = Arc::new(AtomicU32::new(0));
        let get = |cache: Arc<TokenCache>, fetches: Arc<AtomicU32>| async move {
            cache
                .get(|_| async {
                    let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(token(n, 3600))
                })
                .await
                .unwrap()
        };
        let many: Vec<_> = (0..20)
            .map(|_| tokio::spawn(get(Arc::clone(&cache), Arc::clone(&fetches))))
            .collect();
        for handle in many {
            assert_eq!(&*handle.await.unwrap(), "token-1");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // A minute before the hour is up, the next caller refreshes.
        tokio::time::sleep(Duration::from_secs(3540)).await;
        assert_eq!(
            &*get(Arc::clone(&cache), Arc::clone(&fetches)).await,
            "token-2"
        );
        // Short-lived tokens are refreshed a fifth of their life early.
        let short = TokenCache::new();
        short.get(|_| async { Ok(token(1, 10)) }).await.unwrap();
        tokio::time::sleep(Duration::from_secs(8)).await;
        let again = short.get(|_| async { Ok(token(2, 10)) }).await.unwrap();
        assert_eq!(&*again, "token-2");
    }

    #[tokio::test]
    async fn a_refused_token_is_forgotten_and_the_rotated_refresh_token_is_used() {
        let cache = TokenCache::new();
        cache.get(|_| async { Ok(token(1, 3600)) }).await.unwrap();
        cache.forget("token-1").await;
        let seen = Arc::new(std::sync::Mutex::new(None));
        let seen_by_fetch = Arc::clone(&seen);
        let fresh = cache
            .get(|refresh| async move {
                *seen_by_fetch.lock().unwrap() = refresh.map(|r| r.to_string());
                Ok(token(2, 3600))
            })
            .await
            .unwrap();
        assert_eq!(&*fresh, "token-2");
        assert_eq!(seen.lock().unwrap().as_deref(), Some("refresh-1"));
        // Forgetting a token that was already replaced keeps the new one.
        cache.forget("token-1").await;
        let kept = cache.get(|_| async { Ok(token(3, 3600)) }).await.unwrap();
        assert_eq!(&*kept, "token-2");
        assert!(!format!("{:?}", token(9, 1)).contains("token-9"));
    }
}
