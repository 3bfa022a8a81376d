//! An OAuth 2.0 access token, fetched with client credentials and cached until a minute
//! before it expires: what Business Central (Entra ID) and NetSuite (M2M) share.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::status::{credentials_refused, transport};
use super::ErpError;

struct Token {
    value: String,
    refresh_at: Instant,
}

/// The cached token of one adapter.
#[derive(Default)]
pub(crate) struct TokenCache {
    current: Mutex<Option<Token>>,
}

impl TokenCache {
    /// The cached token, or a new one from the token endpoint `request` (a form POST, built
    /// only when needed). Callers waiting meanwhile get the same new token.
    ///
    /// # Errors
    /// Transient (the ERP as a whole is unavailable) when the endpoint refuses or cannot be
    /// reached: credentials are never one order's fault.
    pub async fn bearer(
        &self,
        request: impl FnOnce() -> reqwest::RequestBuilder,
    ) -> Result<String, ErpError> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            expires_in: Option<u64>,
        }
        let mut token = self.current.lock().await;
        if let Some(current) = token.as_ref() {
            if Instant::now() < current.refresh_at {
                return Ok(current.value.clone());
            }
        }
        let response = request().send().await.map_err(|err| transport(&err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|err| transport(&err))?;
        if !status.is_success() {
            return Err(credentials_refused(
                "token endpoint",
                status,
                &headers,
                &body,
            ));
        }
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|err| {
            ErpError::transient(format!("token endpoint sent an unreadable token: {err}"))
        })?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        *token = Some(Token {
            value: parsed.access_token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(Duration::from_secs(60)),
        });
        Ok(parsed.access_token)
    }

    /// Drops the cached token (the ERP refused it), so the next call fetches another.
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }
}
