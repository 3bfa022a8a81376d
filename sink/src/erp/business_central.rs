//! Dynamics 365 Business Central, API v2.0.
//!
//! - Auth: OAuth 2.0 client credentials against Entra ID; the token is cached until a minute
//!   before it expires and fetched again after a 401 (one retry).
//! - Idempotency: BC does not check `externalDocumentNumber` for uniqueness, so the lookup
//!   `salesOrders?$filter=externalDocumentNumber eq '<ref>'` is what keeps the sink from
//!   creating an order twice. Every attempt looks up first, so a create that timed out or
//!   got a 5xx (and may have landed) is looked up again before it is retried.
//! - Create: one `POST salesOrders` with its `salesOrderLines` nested (deep insert), so the
//!   header and lines land together or not at all.
//! - The reference is [`external_reference`]: upper-case, at most 35 characters (`Code[35]`).
//!
//! Contract: `shared/reference/erp-targets.md` §1 and
//! <https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/>.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use orderbridge_runtime::Secret;
use orderbridge_schemas::OrderEvent;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::status::{classify, credentials_refused, json_body, transport};
use super::{
    action, external_reference, json_number, line_sku, odata_eq, Action, ErpClient, ErpError,
    ErpSetupError, Held, Upserted,
};

/// Business Central settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessCentralConfig {
    /// Entra tenant id.
    pub tenant_id: String,
    /// BC environment name, e.g. `production`.
    pub environment: String,
    /// Company id (GUID, from `GET …/api/v2.0/companies`).
    pub company_id: String,
    /// App registration's client id.
    pub client_id: String,
    /// App registration's client secret.
    pub client_secret: Secret,
    /// Customer number used for every order until customer mapping exists.
    pub default_customer_number: String,
    /// API root; the default is the public cloud.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Token endpoint; `{tenant}` is replaced by the tenant id.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// OAuth scope.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Per-request timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_api_url() -> String {
    "https://api.businesscentral.dynamics.com/v2.0".into()
}

fn default_token_url() -> String {
    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token".into()
}

fn default_scope() -> String {
    "https://api.businesscentral.dynamics.com/.default".into()
}

fn default_timeout_ms() -> u64 {
    30_000
}

struct Token {
    value: String,
    refresh_at: Instant,
}

/// The Business Central adapter.
pub struct BusinessCentral {
    config: BusinessCentralConfig,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
}

impl BusinessCentral {
    /// A client for one BC company.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(config: BusinessCentralConfig) -> Result<Self, ErpSetupError> {
        if config.default_customer_number.trim().is_empty() {
            return Err(ErpSetupError::Config(
                "business-central: default_customer_number is empty".into(),
            ));
        }
        let http = super::http_client(config.request_timeout_ms)?;
        Ok(Self {
            config,
            http,
            token: Mutex::new(None),
        })
    }

    fn company_url(&self, entity: &str) -> String {
        format!(
            "{}/{}/{}/api/v2.0/companies({})/{entity}",
            self.config.api_url.trim_end_matches('/'),
            self.config.tenant_id,
            self.config.environment,
            self.config.company_id
        )
    }

    async fn bearer(&self) -> Result<String, ErpError> {
        let mut token = self.token.lock().await;
        if let Some(current) = token.as_ref() {
            if Instant::now() < current.refresh_at {
                return Ok(current.value.clone());
            }
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            expires_in: Option<u64>,
        }
        let url = self
            .config
            .token_url
            .replace("{tenant}", &self.config.tenant_id);
        let response = self
            .http
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.config.client_id.as_str()),
                ("client_secret", self.config.client_secret.expose()),
                ("scope", self.config.scope.as_str()),
            ])
            .send()
            .await
            .map_err(|err| transport(&err))?;
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
        let value = parsed.access_token;
        *token = Some(Token {
            value: value.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(Duration::from_secs(60)),
        });
        Ok(value)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Sends one API request with a bearer token; on 401 fetches a new token and tries once
    /// more. Returns the status and parsed JSON body after the status table accepted it.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ErpError> {
        for attempt in 0..2 {
            let token = self.bearer().await?;
            let mut request = self.http.request(method.clone(), url).bearer_auth(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|err| transport(&err))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::info!(
                    erp = "business-central",
                    "token refused; fetching a new one"
                );
                self.forget_token().await;
                continue;
            }
            let headers = response.headers().clone();
            let text = response.text().await.map_err(|err| transport(&err))?;
            classify(status, &headers, &text)?;
            return Ok((status, json_body(&text)?));
        }
        Err(ErpError::transient(
            "401 after a fresh token (check the app's permissions in BC)",
        ))
    }

    async fn find_order(&self, reference: &str) -> Result<Option<Value>, ErpError> {
        let filter = odata_eq("externalDocumentNumber", reference);
        let url = reqwest::Url::parse_with_params(
            &self.company_url("salesOrders"),
            &[
                ("$filter", filter.as_str()),
                ("$select", "id,number,externalDocumentNumber,status"),
            ],
        )
        .map_err(|err| ErpError::transient(format!("bad BC URL (check api_url): {err}")))?;
        let (_, body) = self.call(Method::GET, url.as_str(), None).await?;
        Ok(body
            .get("value")
            .and_then(Value::as_array)
            .and_then(|found| found.first().cloned()))
    }

    fn order_body(&self, event: &OrderEvent, reference: &str) -> Result<Value, ErpError> {
        let lines = event
            .line_items
            .iter()
            .map(|line| {
                let item = line_sku(line, "BC")?;
                Ok(json!({
                    "lineType": "Item",
                    "lineObjectNumber": item,
                    "description": line.title.chars().take(100).collect::<String>(),
                    "quantity": line.quantity,
                    "unitPrice": json_number(line.unit_price),
                    "discountAmount": json_number(line.discount),
                }))
            })
            .collect::<Result<Vec<_>, ErpError>>()?;
        let mut body = json!({
            "externalDocumentNumber": reference,
            "customerNumber": self.config.default_customer_number,
            "currencyCode": event.currency,
            "salesOrderLines": lines,
        });
        if let Some(created) = event.source_created_at {
            body["orderDate"] = json!(created.format("%Y-%m-%d").to_string());
        }
        Ok(body)
    }
}

#[async_trait]
impl ErpClient for BusinessCentral {
    fn name(&self) -> &'static str {
        "business-central"
    }

    fn default_max_in_flight(&self) -> usize {
        5
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let reference = external_reference(&event.order_key);
        let held = self.find_order(&reference).await?.map(|_| Held::default());
        match action(event, held) {
            Action::Create => {
                let body = self.order_body(event, &reference)?;
                self.call(Method::POST, &self.company_url("salesOrders"), Some(&body))
                    .await?;
                Ok(Upserted::Created)
            }
            // Cancelling and refunding BC orders are the sink issue's next steps; until then
            // the order stays as BC holds it.
            Action::Update | Action::UpdateStatus | Action::Cancel | Action::Refund => {
                Ok(Upserted::AlreadyPresent)
            }
            Action::Nothing(outcome) => Ok(outcome),
        }
    }
}
