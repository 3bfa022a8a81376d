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
//! - Version guard: the standard API has no field of our own on a sales order, so the
//!   canonical version the sink last wrote is kept in a comment line (`lineType: Comment`,
//!   description `OrderBridge version <n>`), written with the lines it belongs to. An older
//!   event is `Stale`.
//! - Update: one `$batch` with `Isolation: snapshot` that deletes the order's lines and posts
//!   the event's lines and version line: all of it or none. A status-only event rewrites the
//!   version line alone.
//! - Posted: an order that was shipped and invoiced from BC is gone from `salesOrders`; the
//!   lookup then finds its posted `salesInvoices` by the same external document number, and
//!   such an order takes nothing but refunds.
//! - Cancel: `DELETE salesOrders({id})` with `If-Match: *` (BC has no cancel action for
//!   orders); a 404 means it is gone already.
//! - Refund: a `salesCreditMemos` deep insert whose external document number is the refund's
//!   own reference, looked up first. Item lines by SKU; money without items on
//!   `refund_account_number` (a G/L account line) when one is configured.
//! - Attribution: the standard API's sales order has no field for it. What the API offers
//!   is a comment line (`lineType: Comment`, a `description` of at most 100 characters) and
//!   dimensions (`dimensionSetLines`, or the header's shortcut dimension codes). Dimensions
//!   are what BC reports by, but a dimension value must exist in BC before an order can
//!   carry it: every channel a platform ever sends would have to be set up first or its
//!   orders would be refused, and a 20-character code holds no credits. So the attribution
//!   goes into a comment line, `Attribution: first google_ads, last email;
//!   google_ads:40%;email:60%` (the touchpoints as far as whole entries fit), written like
//!   the version line: in the create's deep insert, in the update's batch, and for a late
//!   attribution in one `$batch` (snapshot) with the version line, so the two change
//!   together. It needs nothing set up; like the version line it shows on the order's
//!   printed documents, and `attribution_comment = false` leaves it out. An event without
//!   attribution keeps the line the order has.
//! - The reference is [`external_reference`]: upper-case, at most 35 characters (`Code[35]`).
//!
//! Contract: `shared/reference/erp-targets.md` §1 and
//! <https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/>.

use std::sync::Arc;

use async_trait::async_trait;
use orderbridge_runtime::Secret;
use orderbridge_schemas::{Attribution, OrderEvent};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::attribution::{summary, SUMMARY_PREFIX};
use super::status::{classify, json_body};
use super::token::TokenCache;
use super::{
    action, external_reference, json_number, odata_eq, reference, Action, ErpClient, ErpError,
    ErpSetupError, Held, Upserted,
};
use crate::mapping::Mapping;

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
    /// G/L account number for a refund of money with no item lines; without one such a
    /// refund is dead-lettered with the reason.
    #[serde(default)]
    pub refund_account_number: Option<String>,
    /// Whether the attribution goes into a comment line of the order (`Attribution: first
    /// …, last …; …`). Default: `true`; it needs nothing set up in BC, and like the version
    /// line it shows on the order's printed documents.
    #[serde(default = "default_attribution_comment")]
    pub attribution_comment: bool,
    /// Per-request timeout in milliseconds.
    #[serde(default = "super::default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_attribution_comment() -> bool {
    true
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

/// The Business Central adapter.
pub struct BusinessCentral {
    config: BusinessCentralConfig,
    http: reqwest::Client,
    mapping: Arc<Mapping>,
    token: TokenCache,
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
            mapping: Arc::new(Mapping::default()),
            token: TokenCache::default(),
        })
    }

    /// Applies `mapping` (items, customers, channels, the program) to what this adapter
    /// sends.
    #[must_use]
    pub fn with_mapping(mut self, mapping: Arc<Mapping>) -> Self {
        self.mapping = mapping;
        self
    }

    /// The customer number of `event`: mapped, or the configured default.
    fn customer<'a>(&'a self, event: &'a OrderEvent) -> &'a str {
        self.mapping
            .customer(event)
            .unwrap_or(&self.config.default_customer_number)
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
        let url = self
            .config
            .token_url
            .replace("{tenant}", &self.config.tenant_id);
        self.token
            .bearer(|| {
                self.http.post(url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", self.config.client_id.as_str()),
                    ("client_secret", self.config.client_secret.expose()),
                    ("scope", self.config.scope.as_str()),
                ])
            })
            .await
    }

    /// Sends one API request with a bearer token; on 401 fetches a new token and tries once
    /// more. Returns the status and parsed JSON body after the status table accepted it.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ErpError> {
        self.call_with(method, url, body, false).await
    }

    /// [`Self::call`]; `snapshot` runs a `$batch` in one transaction (`Isolation: snapshot`).
    /// PATCH and DELETE carry `If-Match: *`, which BC requires.
    async fn call_with(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        snapshot: bool,
    ) -> Result<(StatusCode, Value), ErpError> {
        let reply = super::transport::send(
            "business-central",
            self,
            "check the app's permissions in BC",
            || {
                let mut request = self.http.request(method.clone(), url);
                if method == Method::PATCH || method == Method::DELETE {
                    request = request.header(reqwest::header::IF_MATCH, "*");
                }
                if snapshot {
                    request = request.header("Isolation", "snapshot");
                }
                if let Some(body) = body {
                    request = request.json(body);
                }
                request
            },
        )
        .await?;
        classify(reply.status, &reply.headers, &reply.text)?;
        Ok((reply.status, json_body(&reply.text)?))
    }

    /// The first `entity` (`salesOrders`, `salesInvoices`, `salesCreditMemos`) whose external
    /// document number is `reference`.
    async fn find(&self, entity: &str, reference: &str) -> Result<Option<Value>, ErpError> {
        let filter = odata_eq("externalDocumentNumber", reference);
        let url = reqwest::Url::parse_with_params(
            &self.company_url(entity),
            &[
                ("$filter", filter.as_str()),
                ("$select", "id,number,externalDocumentNumber"),
            ],
        )
        .map_err(|err| ErpError::transient(format!("bad BC URL (check api_url): {err}")))?;
        let (_, body) = self.call(Method::GET, url.as_str(), None).await?;
        Ok(body
            .get("value")
            .and_then(Value::as_array)
            .and_then(|found| found.first().cloned()))
    }

    /// The lines of the sales order `id`.
    async fn lines(&self, id: &str) -> Result<Vec<Value>, ErpError> {
        let url = self.company_url(&format!("salesOrders({id})/salesOrderLines"));
        let (_, body) = self.call(Method::GET, &url, None).await?;
        Ok(body
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// What BC holds of the order, and the order with its lines when it is still an order.
    async fn held(&self, reference: &str) -> Result<Option<(Held, Option<Order>)>, ErpError> {
        if let Some(order) = self.find("salesOrders", reference).await? {
            let id = entity_id(&order)?;
            let lines = self.lines(&id).await?;
            let held = Held {
                version: lines.iter().find_map(version_line),
                ..Held::default()
            };
            return Ok(Some((held, Some(Order { id, lines }))));
        }
        if self.find("salesInvoices", reference).await?.is_some() {
            let held = Held {
                posted: true,
                ..Held::default()
            };
            return Ok(Some((held, None)));
        }
        Ok(None)
    }

    /// Sends `requests` as one `$batch` that BC runs in one transaction, and fails with the
    /// first inner request's failure.
    async fn batch(&self, requests: Vec<Value>) -> Result<(), ErpError> {
        let url = format!(
            "{}/{}/{}/api/v2.0/$batch",
            self.config.api_url.trim_end_matches('/'),
            self.config.tenant_id,
            self.config.environment
        );
        let body = json!({ "requests": requests });
        let (_, reply) = self
            .call_with(Method::POST, &url, Some(&body), true)
            .await?;
        for response in reply
            .get("responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let status = response
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = response
                .get("body")
                .map(Value::to_string)
                .unwrap_or_default();
            classify(status, &reqwest::header::HeaderMap::new(), &text)?;
        }
        Ok(())
    }

    /// A request of a `$batch`, its URL relative to the API root.
    fn batch_request(&self, id: usize, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut request = json!({
            "id": id.to_string(),
            "method": method,
            "url": format!("companies({})/{path}", self.config.company_id),
            "headers": { "Content-Type": "application/json", "If-Match": "*" },
        });
        if let Some(body) = body {
            request["body"] = body;
        }
        request
    }

    /// Replaces the order's lines with the event's (and its version line), atomically. The
    /// lines are the create body's after `[sink.mapping]`'s program, so an update books what
    /// a create would have.
    async fn update(&self, order: &Order, event: &OrderEvent) -> Result<(), ErpError> {
        let body = self.order_body(event, &external_reference(&event.order_key))?;
        let mut lines: Vec<Value> = body
            .get("salesOrderLines")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| {
                ErpError::rejected("sink.mapping.program left the order without salesOrderLines")
            })?;
        // The version guard needs its line, whatever the program did with the rest.
        if !lines.iter().any(|line| version_line(line).is_some()) {
            lines.push(version_line_body(event.version));
        }
        // An event that brings no attribution line keeps the order's.
        if event.attribution.is_none() || !self.config.attribution_comment {
            if let Some(kept) = order.lines.iter().find(|line| is_attribution_line(line)) {
                lines.push(comment_line(
                    kept["description"].as_str().unwrap_or_default(),
                ));
            }
        }
        let mut requests = Vec::new();
        for line in &order.lines {
            let line_id = entity_id(line)?;
            let path = format!("salesOrders({})/salesOrderLines({line_id})", order.id);
            requests.push(self.batch_request(requests.len() + 1, "DELETE", &path, None));
        }
        let path = format!("salesOrders({})/salesOrderLines", order.id);
        for line in lines {
            requests.push(self.batch_request(requests.len() + 1, "POST", &path, Some(line)));
        }
        if requests.len() > BATCH_MAX {
            return Err(ErpError::rejected(format!(
                "the update needs {} requests, more than BC's $batch takes ({BATCH_MAX})",
                requests.len()
            )));
        }
        self.batch(requests).await
    }

    /// Rewrites (or adds) the order's version line.
    async fn stamp(&self, order: &Order, event: &OrderEvent) -> Result<(), ErpError> {
        let existing = order.lines.iter().find(|line| version_line(line).is_some());
        let line = version_line_body(event.version);
        match existing {
            Some(existing) => {
                let url = self.company_url(&format!(
                    "salesOrders({})/salesOrderLines({})",
                    order.id,
                    entity_id(existing)?
                ));
                self.call(Method::PATCH, &url, Some(&line)).await?;
            }
            None => {
                let url = self.company_url(&format!("salesOrders({})/salesOrderLines", order.id));
                self.call(Method::POST, &url, Some(&line)).await?;
            }
        }
        Ok(())
    }

    /// Rewrites the order's attribution line (added, changed or removed) and its version line
    /// in one `$batch` that BC runs in one transaction: a late attribution, applied in place.
    async fn restamp(
        &self,
        order: &Order,
        event: &OrderEvent,
        attribution: &Attribution,
    ) -> Result<(), ErpError> {
        let lines = format!("salesOrders({})/salesOrderLines", order.id);
        let mut requests = Vec::new();
        let existing = order.lines.iter().find(|line| is_attribution_line(line));
        let wanted = summary(attribution, DESCRIPTION_MAX).map(|text| comment_line(&text));
        let existing_version = order.lines.iter().find(|line| version_line(line).is_some());
        for (existing, wanted) in [
            (existing, wanted),
            (existing_version, Some(version_line_body(event.version))),
        ] {
            let id = requests.len() + 1;
            match (existing, wanted) {
                (Some(existing), Some(wanted)) => {
                    let path = format!("{lines}({})", entity_id(existing)?);
                    requests.push(self.batch_request(id, "PATCH", &path, Some(wanted)));
                }
                (Some(existing), None) => {
                    let path = format!("{lines}({})", entity_id(existing)?);
                    requests.push(self.batch_request(id, "DELETE", &path, None));
                }
                (None, Some(wanted)) => {
                    requests.push(self.batch_request(id, "POST", &lines, Some(wanted)));
                }
                (None, None) => {}
            }
        }
        self.batch(requests).await
    }

    /// Books the event's refund as a sales credit memo, unless one with its reference exists.
    async fn refund(&self, event: &OrderEvent, reference: &str) -> Result<Upserted, ErpError> {
        let Some(refund) = &event.refund else {
            return Ok(Upserted::Skipped);
        };
        let credit = super::refund_reference(reference, &refund.refund_id, reference::MAX_LEN);
        if self.find("salesCreditMemos", &credit).await?.is_some() {
            return Ok(Upserted::AlreadyPresent);
        }
        let mut lines: Vec<Value> = self
            .mapping
            .refund_items(refund, "BC")?
            .into_iter()
            .map(|refunded| {
                json!({
                    "lineType": "Item",
                    "lineObjectNumber": refunded.item,
                    "quantity": refunded.quantity,
                    "unitPrice": json_number(refunded.unit_price),
                })
            })
            .collect();
        if lines.is_empty() {
            let account = self
                .config
                .refund_account_number
                .as_deref()
                .ok_or_else(|| {
                    ErpError::rejected(
                    "the refund has no item lines and sink.erp.refund_account_number is not set",
                )
                })?;
            lines.push(json!({
                "lineType": "Account",
                "lineObjectNumber": account,
                "description": format!("Refund {}", refund.refund_id).chars().take(100).collect::<String>(),
                "quantity": 1,
                "unitPrice": json_number(refund.amount),
            }));
        }
        let body = json!({
            "externalDocumentNumber": credit,
            "customerNumber": self.customer(event),
            "currencyCode": event.currency,
            "salesCreditMemoLines": lines,
        });
        self.call(
            Method::POST,
            &self.company_url("salesCreditMemos"),
            Some(&body),
        )
        .await?;
        Ok(Upserted::Updated)
    }

    /// The event's lines, then its version line.
    fn lines_body(&self, event: &OrderEvent) -> Result<Vec<Value>, ErpError> {
        let mut lines = event
            .line_items
            .iter()
            .map(|line| {
                let item = self.mapping.item(line, "BC")?;
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
        lines.extend(self.attribution_line(event));
        lines.push(version_line_body(event.version));
        Ok(lines)
    }

    /// The comment line of `event`'s attribution, when the event carries one that names a
    /// touch and the line is configured.
    fn attribution_line(&self, event: &OrderEvent) -> Option<Value> {
        if !self.config.attribution_comment {
            return None;
        }
        let text = summary(event.attribution.as_ref()?, DESCRIPTION_MAX)?;
        Some(comment_line(&text))
    }

    fn order_body(&self, event: &OrderEvent, reference: &str) -> Result<Value, ErpError> {
        let mut body = json!({
            "externalDocumentNumber": reference,
            "customerNumber": self.customer(event),
            "currencyCode": event.currency,
            "salesOrderLines": self.lines_body(event)?,
        });
        if let Some(created) = event.source_created_at {
            body["orderDate"] = json!(created.format("%Y-%m-%d").to_string());
        }
        if let Some(dimension) = self.mapping.channel(event) {
            body["shortcutDimension1Code"] = json!(dimension);
        }
        self.mapping.transform(event, body)
    }
}

/// Most requests BC takes in one `$batch`.
const BATCH_MAX: usize = 100;

/// How the version line's description begins.
const VERSION_LINE: &str = "OrderBridge version ";

/// A line's `description`: `Text[100]`.
const DESCRIPTION_MAX: usize = 100;

/// A sales order BC holds: its id and lines.
struct Order {
    id: String,
    lines: Vec<Value>,
}

/// The version a line records, when it is the version line.
fn version_line(line: &Value) -> Option<i64> {
    if line.get("lineType").and_then(Value::as_str) != Some("Comment") {
        return None;
    }
    line.get("description")?
        .as_str()?
        .strip_prefix(VERSION_LINE)?
        .trim()
        .parse()
        .ok()
}

fn version_line_body(version: i64) -> Value {
    comment_line(&format!("{VERSION_LINE}{version}"))
}

/// Whether `line` is the attribution line.
fn is_attribution_line(line: &Value) -> bool {
    line.get("lineType").and_then(Value::as_str) == Some("Comment")
        && line
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|text| text.starts_with(SUMMARY_PREFIX))
}

fn comment_line(description: &str) -> Value {
    json!({ "lineType": "Comment", "description": description })
}

/// The `id` of an entity BC returned.
fn entity_id(entity: &Value) -> Result<String, ErpError> {
    entity
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ErpError::transient("BC entity without id"))
}

/// BC's bearer token from Entra ID, for the shared transport.
#[async_trait]
impl super::transport::Auth for BusinessCentral {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ErpError> {
        Ok(request.bearer_auth(self.bearer().await?))
    }

    async fn refused(&self) {
        self.token.forget().await;
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

    fn preview(&self, event: &OrderEvent) -> Result<super::Preview, ErpError> {
        let reference = external_reference(&event.order_key);
        Ok(super::Preview {
            method: "POST",
            url: self.company_url("salesOrders"),
            body: self.order_body(event, &reference)?,
        })
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let reference = external_reference(&event.order_key);
        let (held, order) = match self.held(&reference).await? {
            Some((held, order)) => (Some(held), order),
            None => (None, None),
        };
        match (action(event, held), order) {
            (Action::Create, _) => {
                let body = self.order_body(event, &reference)?;
                self.call(Method::POST, &self.company_url("salesOrders"), Some(&body))
                    .await?;
                Ok(Upserted::Created)
            }
            (Action::Update, Some(order)) => {
                self.update(&order, event).await?;
                Ok(Upserted::Updated)
            }
            (Action::UpdateStatus, Some(order)) => {
                match (&event.attribution, self.config.attribution_comment) {
                    // A late attribution (or a status that carries one): its line and the
                    // version line together.
                    (Some(attribution), true) => self.restamp(&order, event, attribution).await?,
                    (Some(_), false) | (None, _) => self.stamp(&order, event).await?,
                }
                Ok(Upserted::Updated)
            }
            (Action::Cancel, Some(order)) => {
                let url = self.company_url(&format!("salesOrders({})", order.id));
                match self.call_with(Method::DELETE, &url, None, false).await {
                    Ok(_) => Ok(Upserted::Updated),
                    // Deleted between the lookup and now: cancelled all the same.
                    Err(ErpError::Rejected { reason }) if reason.starts_with("404") => {
                        Ok(Upserted::AlreadyPresent)
                    }
                    Err(err) => Err(err),
                }
            }
            (Action::Refund, _) => self.refund(event, &reference).await,
            // Held, but not as an order (posted): the table sends nothing else there.
            (Action::Update | Action::UpdateStatus | Action::Cancel, None) => Ok(Upserted::Skipped),
            (Action::Nothing(outcome), _) => Ok(outcome),
        }
    }
}
