//! One way to send an ERP request, shared by every HTTP adapter so that their rules cannot
//! drift apart:
//!
//! - **Credentials.** Each adapter says how a request is authorized ([`Auth`]: a bearer
//!   token, a session cookie, a fixed token) and how a refused credential is dropped.
//! - **The 401 rule.** A 401 drops the credential and the request goes once more with a
//!   fresh one. A second 401 is ERP-wide trouble (the integration's permissions, a licence,
//!   a role): transient and *unavailable*, so the breaker decides and no order is ever
//!   parked or dead-lettered for it. A fixed token is not renewable: its first 401 is that
//!   trouble. The ERP's own words of refusal go into the reason.
//! - **Timeouts and transport errors.** Every request is bounded by the adapter's client
//!   timeout; a request that gets no answer is classified once, in `status.rs`.
//!
//! What an answer means (the status table, an ERP's error body) stays with the adapter.

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use super::status::transport;
use super::ErpError;

/// How an adapter authorizes its requests.
#[async_trait]
pub(crate) trait Auth: Send + Sync {
    /// `request` with the current credential (fetched or renewed when needed).
    ///
    /// # Errors
    /// When no credential can be had: ERP-wide trouble.
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, ErpError>;

    /// The ERP refused the credential: drop it, so the next request gets a fresh one.
    async fn refused(&self);

    /// The ERP accepted a request (a sliding session is extended).
    async fn accepted(&self) {}

    /// Whether a refused credential can be replaced by a fresh one (a fixed token cannot, so
    /// its 401 is not worth sending twice).
    fn renewable(&self) -> bool {
        true
    }
}

/// A fixed credential, or none: nothing to renew.
pub(crate) struct Fixed<'a>(pub Option<&'a str>);

#[async_trait]
impl Auth for Fixed<'_> {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, ErpError> {
        Ok(match &self.0 {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }

    async fn refused(&self) {}

    fn renewable(&self) -> bool {
        false
    }
}

/// An answer, its body read.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

/// Sends the request `build` makes (built again for the retry) with `auth`, by the rules in
/// the module docs. `erp` names the adapter in logs; `hint` says what to check when the ERP
/// refuses fresh credentials.
///
/// # Errors
/// Transient when no answer came, or when the ERP refused fresh credentials.
pub(crate) async fn send(
    erp: &'static str,
    auth: &dyn Auth,
    hint: &str,
    build: impl Fn() -> RequestBuilder + Send,
) -> Result<Reply, ErpError> {
    let attempts = if auth.renewable() { 2 } else { 1 };
    let mut refusal = String::new();
    for attempt in 1..=attempts {
        let request = auth.authorize(build()).await?;
        let response = request.send().await.map_err(|err| transport(&err))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            auth.refused().await;
            refusal = response.text().await.unwrap_or_default();
            if attempt < attempts {
                tracing::info!(erp, "credential refused; renewing it");
            }
            continue;
        }
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|err| transport(&err))?;
        if status.is_success() {
            auth.accepted().await;
        }
        return Ok(Reply {
            status,
            headers,
            text,
        });
    }
    let refusal: String = refusal.trim().chars().take(300).collect();
    Err(ErpError::unavailable(
        format!("401 Unauthorized with a fresh credential ({hint}): {refusal}"),
        None,
    ))
}
