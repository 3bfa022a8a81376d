//! Access tokens from OAuth 2.0 token endpoints, and the [`Authorize`] that sends them.
//!
//! Most providers hand out short-lived access tokens for a long-lived refresh token (eBay,
//! Etsy, Amazon's Login with Amazon, TikTok Shop) or for the app's client credentials
//! (Walmart, Flipkart). [`Bearer`] keeps one account's token in a [`TokenCache`] (refreshed
//! before it expires, one refresh at a time) and puts it in the header the provider reads.
//! A refused token endpoint is the account's trouble, never one order's: its errors are
//! transient, with the endpoint's own words.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use orderbridge_runtime::Secret;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::{provider_message, ApiError, Authorize, Token, TokenCache};

/// Where an access token comes from.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A new token; `rotated_refresh` is the newest refresh token the provider handed back,
    /// when it rotates them.
    ///
    /// # Errors
    /// Transient: the endpoint is down or refuses the credentials.
    async fn fetch(
        &self,
        http: &reqwest::Client,
        rotated_refresh: Option<Arc<str>>,
    ) -> Result<Token, ApiError>;
}

/// How the token is presented.
#[derive(Debug, Clone, Copy)]
pub enum TokenHeader {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `<name>: <token>` (Amazon's `x-amz-access-token`, Walmart's `WM_SEC.ACCESS_TOKEN`).
    Named(&'static str),
}

/// One account's token, fetched from `source`, sent as `header`.
pub struct Bearer<S> {
    source: S,
    cache: TokenCache,
    http: reqwest::Client,
    header: TokenHeader,
}

impl<S: TokenSource> Bearer<S> {
    /// Tokens from `source` (asked through `http`), sent as `header`.
    pub fn new(source: S, http: reqwest::Client, header: TokenHeader) -> Self {
        Self {
            source,
            cache: TokenCache::new(),
            http,
            header,
        }
    }

    /// The current token (fetching one when needed), for calls that put it elsewhere.
    ///
    /// # Errors
    /// As [`TokenSource::fetch`].
    pub async fn token(&self) -> Result<Arc<str>, ApiError> {
        self.cache
            .get(|rotated| self.source.fetch(&self.http, rotated))
            .await
    }
}

#[async_trait]
impl<S: TokenSource> Authorize for Bearer<S> {
    async fn authorize(
        &self,
        request: &mut reqwest::Request,
    ) -> Result<Option<Arc<str>>, ApiError> {
        let token = self.token().await?;
        let (name, value) = match self.header {
            TokenHeader::Bearer => (reqwest::header::AUTHORIZATION, format!("Bearer {token}")),
            TokenHeader::Named(name) => (HeaderName::from_static(name), token.to_string()),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ApiError::transient("the token endpoint handed out a token that is not a header value")
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert(name, value);
        Ok(Some(token))
    }

    async fn refused(&self, used: Option<&str>) {
        if let Some(used) = used {
            self.cache.forget(used).await;
        }
    }
}

/// How a token request carries the client's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP basic auth (`client_id:client_secret`): eBay, Walmart, Flipkart.
    Basic,
    /// `client_id` and `client_secret` in the form: Login with Amazon.
    Form,
    /// Only `client_id` in the form, no secret: Etsy (PKCE apps).
    FormIdOnly,
}

/// A grant at a standard OAuth 2.0 token endpoint: `refresh_token` when a refresh token is
/// given, else `client_credentials`.
pub struct Grant {
    /// The token endpoint.
    pub url: String,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret (unused with [`ClientAuth::FormIdOnly`]).
    pub client_secret: Option<Secret>,
    /// The account's refresh token; `None` for client credentials.
    pub refresh_token: Option<Secret>,
    /// `scope`, when the provider wants one.
    pub scope: Option<String>,
    /// How the client's credentials are sent.
    pub client_auth: ClientAuth,
    /// Extra headers the endpoint wants (Walmart's `WM_SVC.NAME`, …).
    pub headers: Vec<(&'static str, String)>,
    /// `GET` with the parameters in the query (Flipkart) instead of a form `POST`.
    pub query: bool,
}

/// A token endpoint's answer: the standard fields, with `expires_in` as a number or a
/// numeric string (both are seen).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

/// Reads a token endpoint's 2xx answer.
///
/// # Errors
/// Transient when it holds no token.
pub fn read_token(body: &[u8], what: &str) -> Result<Token, ApiError> {
    let answer: TokenAnswer = serde_json::from_slice(body).map_err(|err| {
        ApiError::transient(format!(
            "{what}: the token endpoint's answer is unreadable: {err}"
        ))
    })?;
    let expires_in = match &answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s > 0.0)
    .map_or(Duration::from_secs(3600), |s| {
        Duration::from_secs_f64(s.min(366.0 * 86400.0))
    });
    Ok(Token {
        access: answer.access_token,
        expires_in,
        refresh: answer.refresh_token.filter(|r| !r.is_empty() && r != "N/A"),
    })
}

/// The error for a token endpoint that did not give a token: transient whatever its status
/// (the account's credentials, or the endpoint, are the trouble), with its words.
pub fn token_refused(what: &str, status: reqwest::StatusCode, body: &[u8]) -> ApiError {
    ApiError::Transient {
        reason: format!(
            "{what}: token endpoint answered {status}: {} (check the account's credentials)",
            provider_message(body)
        ),
        retry_after: None,
    }
}

#[async_trait]
impl TokenSource for Grant {
    async fn fetch(
        &self,
        http: &reqwest::Client,
        rotated_refresh: Option<Arc<str>>,
    ) -> Result<Token, ApiError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        match (&rotated_refresh, &self.refresh_token) {
            (Some(refresh), _) => {
                params.push(("grant_type", "refresh_token".into()));
                params.push(("refresh_token", refresh.to_string()));
            }
            (None, Some(refresh)) => {
                params.push(("grant_type", "refresh_token".into()));
                params.push(("refresh_token", refresh.expose().to_owned()));
            }
            (None, None) => params.push(("grant_type", "client_credentials".into())),
        }
        if let Some(scope) = &self.scope {
            params.push(("scope", scope.clone()));
        }
        let secret = self
            .client_secret
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default();
        match self.client_auth {
            ClientAuth::Basic => {}
            ClientAuth::Form => {
                params.push(("client_id", self.client_id.clone()));
                params.push(("client_secret", secret.to_owned()));
            }
            ClientAuth::FormIdOnly => params.push(("client_id", self.client_id.clone())),
        }
        let mut request = if self.query {
            http.get(&self.url).query(&params)
        } else {
            http.post(&self.url).form(&params)
        };
        request = request.header(reqwest::header::ACCEPT, "application/json");
        if self.client_auth == ClientAuth::Basic {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{secret}", self.client_id));
            let mut value = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
                ApiError::transient("the client credentials cannot be sent as a header")
            })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|err| {
            ApiError::transient(format!("token endpoint unreachable: {}", without_url(&err)))
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| ApiError::transient(format!("token endpoint: {}", without_url(&err))))?;
        if !status.is_success() {
            return Err(token_refused("token", status, &body));
        }
        read_token(&body, "token")
    }
}

/// A transport error in words, without the URL (whose query may hold credentials).
pub(crate) fn without_url(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn token_answers_take_expiry_as_number_or_text() {
        let token = read_token(
            br#"{"access_token":"a","expires_in":7200,"token_type":"User Access Token"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(token.expires_in, Duration::from_secs(7200));
        assert!(token.refresh.is_none());
        let token = read_token(
            br#"{"access_token":"a","expires_in":"3600","refresh_token":"r2"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(token.expires_in, Duration::from_secs(3600));
        assert_eq!(token.refresh.as_deref(), Some("r2"));
        let token = read_token(br#"{"access_token":"a","refresh_token":"N/A"}"#, "t").unwrap();
        assert!(
            token.refresh.is_none(),
            "eBay's placeholder is no refresh token"
        );
        assert!(read_token(b"{}", "t").unwrap_err().is_transient());
        let refused = token_refused(
            "token",
            reqwest::StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"the provided authorization refresh token is invalid"}"#,
        );
        assert!(refused.is_transient());
        assert!(refused.to_string().contains("invalid_grant"), "{refused}");
    }
}
