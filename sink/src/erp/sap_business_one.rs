//! SAP Business One, through the Service Layer (OData, `/b1s/v2`).
//!
//! - Session: `POST Login` with company, user and password gives a `B1SESSION` cookie and,
//!   behind the load balancer, a `ROUTEID` cookie; both go with every call (without
//!   `ROUTEID` a call may land on a node that never saw the session). The session is reused
//!   until a minute before its sliding `SessionTimeout`, and renewed after a 401 (one retry).
//! - Idempotency: SAP stores a duplicate `NumAtCard` without complaint, so the lookup
//!   `Orders?$filter=NumAtCard eq '<ref>'` is the only thing between a redelivery and a
//!   second order. Every attempt looks up first, so a create that timed out or got a 5xx
//!   (and may have landed) is looked up again before it is retried.
//! - Create: one `POST Orders` with its `DocumentLines`, which SAP stores together or not at
//!   all. `DocDueDate` is required for sales orders: the order date plus `due_days`.
//! - Cancel: `POST Orders({DocEntry})/Cancel`, unless the order is already cancelled.
//! - Refund: an A/R credit note (`POST CreditNotes`) whose `NumAtCard` is the order's
//!   reference plus the refund's, looked up the same way first. Refund lines become item lines;
//!   a refund of money only goes on `refund_item_code` when one is configured.
//! - Version guard: the canonical version the sink last wrote is kept on the order in a
//!   user-defined field (`version_field`, default `U_OBVersion`, alphanumeric 20: versions do
//!   not fit SAP's numeric UDFs). An older event is `Stale`.
//! - Update: `PATCH Orders({DocEntry})` with the header, all `DocumentLines` and the version,
//!   sent with `B1S-ReplaceCollectionsOnPatch: true` so that SAP replaces the lines instead of
//!   appending to them. One request: the lines and the version change together or not at all.
//!   A status-only event patches the version alone (SAP keeps shipping in its own documents).
//! - Attribution: the standard order has no place for it, so it goes into user-defined
//!   fields on `ORDR` named in `attribution_fields` (none by default: SAP refuses a UDF that
//!   is not defined, so each must be created first, alphanumeric, 254 characters, the
//!   regular maximum): the first and the last touch's channel, and every touchpoint with its
//!   credit as `channel:credit%;…`, cut by whole entries to 254. They are written with the
//!   version, in the same request: on create, on update, and on a partial event, so a late
//!   attribution is one `PATCH` of the fields and the version; an event without attribution
//!   leaves them.
//!
//! Contract: `shared/reference/erp-targets.md` §2.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use orderbridge_runtime::Secret;
use orderbridge_schemas::{OrderEvent, Refund};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::attribution::AttributionFields;
use super::status::{classify, credentials_refused, json_body, transport};
use super::{
    action, discount_percent, external_reference, json_number, odata_eq, Action, ErpClient,
    ErpError, ErpSetupError, Held, Upserted,
};
use crate::mapping::Mapping;

/// `NumAtCard` is `nvarchar(100)`.
const NUM_AT_CARD_MAX: usize = 100;

/// The longest regular alphanumeric UDF: what the attribution fields are cut to.
const UDF_MAX: usize = 254;

/// SAP Business One settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SapBusinessOneConfig {
    /// The Service Layer root, e.g. `https://b1.example.com:50000/b1s/v2`.
    pub service_layer_url: String,
    /// Company database, e.g. `SBODEMOUS`.
    pub company_db: String,
    /// Service Layer user.
    pub username: String,
    /// That user's password.
    pub password: Secret,
    /// Business partner (`CardCode`) every order is booked to until customer mapping exists.
    pub default_card_code: String,
    /// Days from the order date to `DocDueDate`, which sales orders require.
    #[serde(default = "default_due_days")]
    pub due_days: u32,
    /// Item code for a refund of money with no item lines (a non-inventory "refund" item);
    /// without one such a refund is dead-lettered with the reason.
    #[serde(default)]
    pub refund_item_code: Option<String>,
    /// The user-defined field (alphanumeric, 20) on `ORDR` that holds the canonical version
    /// the sink last wrote; the version guard reads it. Empty: no guard (every newer-looking
    /// event is applied).
    #[serde(default = "default_version_field")]
    pub version_field: String,
    /// The user-defined fields (alphanumeric, 254) on `ORDR` that take the attribution, e.g.
    /// `{ first_touch = "U_OBFirstTouch", last_touch = "U_OBLastTouch", touchpoints =
    /// "U_OBTouchpoints" }`; a field left out is not written. Default: none.
    #[serde(default)]
    pub attribution_fields: AttributionFields,
    /// Per-request timeout in milliseconds.
    #[serde(default = "super::default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_version_field() -> String {
    "U_OBVersion".into()
}

fn default_due_days() -> u32 {
    7
}

struct Session {
    /// `B1SESSION=…; ROUTEID=…`, as sent back.
    cookie: String,
    renew_at: Instant,
    timeout: Duration,
}

/// The SAP Business One adapter.
pub struct SapBusinessOne {
    config: SapBusinessOneConfig,
    http: reqwest::Client,
    mapping: Arc<Mapping>,
    session: Mutex<Option<Session>>,
}

impl SapBusinessOne {
    /// A client for one company database.
    ///
    /// # Errors
    /// When the configuration is unusable or the HTTP client cannot be built.
    pub fn new(config: SapBusinessOneConfig) -> Result<Self, ErpSetupError> {
        if config.default_card_code.trim().is_empty() {
            return Err(ErpSetupError::Config(
                "sap-business-one: default_card_code is empty".into(),
            ));
        }
        reqwest::Url::parse(&config.service_layer_url).map_err(|err| {
            ErpSetupError::Config(format!("sap-business-one: service_layer_url: {err}"))
        })?;
        let http = super::http_client(config.request_timeout_ms)?;
        Ok(Self {
            config,
            http,
            mapping: Arc::new(Mapping::default()),
            session: Mutex::new(None),
        })
    }

    /// Applies `mapping` (items, customers, channels, the program) to what this adapter
    /// sends.
    #[must_use]
    pub fn with_mapping(mut self, mapping: Arc<Mapping>) -> Self {
        self.mapping = mapping;
        self
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.config.service_layer_url.trim_end_matches('/')
        )
    }

    /// The session cookie, logging in when there is none or it is about to time out.
    async fn cookie(&self) -> Result<String, ErpError> {
        let mut session = self.session.lock().await;
        if let Some(current) = session.as_ref() {
            if Instant::now() < current.renew_at {
                return Ok(current.cookie.clone());
            }
        }
        let response = self
            .http
            .post(self.url("Login"))
            .json(&json!({
                "CompanyDB": self.config.company_db,
                "UserName": self.config.username,
                "Password": self.config.password.expose(),
            }))
            .send()
            .await
            .map_err(|err| transport(&err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|err| transport(&err))?;
        if !status.is_success() {
            return Err(credentials_refused(
                "Service Layer login",
                status,
                &headers,
                &body,
            ));
        }
        let cookies: Vec<String> = headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter(|pair| pair.starts_with("B1SESSION=") || pair.starts_with("ROUTEID="))
            .map(str::to_owned)
            .collect();
        let minutes = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|b| b.get("SessionTimeout").and_then(Value::as_u64))
            .unwrap_or(30);
        let cookie = if cookies.iter().any(|c| c.starts_with("B1SESSION=")) {
            cookies.join("; ")
        } else {
            // Some installs send only the body's SessionId.
            let id = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|b| {
                    b.get("SessionId")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .ok_or_else(|| ErpError::transient("Service Layer login gave no session"))?;
            format!("B1SESSION={id}")
        };
        let timeout = Duration::from_secs(minutes * 60);
        *session = Some(Session {
            cookie: cookie.clone(),
            renew_at: Instant::now() + timeout.saturating_sub(Duration::from_secs(60)),
            timeout,
        });
        Ok(cookie)
    }

    /// Sends one call with the session cookie (the shared transport logs in again after a
    /// 401). Returns the parsed JSON body (null when empty) after the status table accepted
    /// it.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ErpError> {
        let reply = super::transport::send(
            "sap-business-one",
            self,
            "check the Service Layer user's licence",
            || {
                let mut request = self.http.request(method.clone(), url);
                if method == Method::PATCH {
                    // Replace the document's lines with the ones sent, instead of appending.
                    request = request.header("B1S-ReplaceCollectionsOnPatch", "true");
                }
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            },
        )
        .await?;
        classify(reply.status, &reply.headers, &reply.text)?;
        json_body(&reply.text)
    }

    /// The first document of `entity` (`Orders`, `CreditNotes`) whose `NumAtCard` is
    /// `reference`.
    async fn find(&self, entity: &str, reference: &str) -> Result<Option<Value>, ErpError> {
        let filter = odata_eq("NumAtCard", reference);
        let mut select = "DocEntry,DocNum,NumAtCard,DocumentStatus,Cancelled".to_owned();
        if entity == "Orders" && !self.config.version_field.is_empty() {
            select = format!("{select},{}", self.config.version_field);
        }
        let url = reqwest::Url::parse_with_params(
            &self.url(entity),
            &[("$filter", filter.as_str()), ("$select", select.as_str())],
        )
        .map_err(|err| ErpError::transient(format!("bad Service Layer URL: {err}")))?;
        let body = self.call(Method::GET, url.as_str(), None).await?;
        Ok(body
            .get("value")
            .and_then(Value::as_array)
            .and_then(|found| found.first().cloned()))
    }

    fn header(&self, event: &OrderEvent, reference: &str, lines: Vec<Value>) -> Value {
        let date = event
            .source_created_at
            .or(event.source_updated_at)
            .unwrap_or_else(Utc::now)
            .date_naive();
        let due = date + chrono::Days::new(u64::from(self.config.due_days));
        json!({
            "CardCode": self.mapping.customer(event).unwrap_or(&self.config.default_card_code),
            "DocDate": date.format("%Y-%m-%d").to_string(),
            "DocDueDate": due.format("%Y-%m-%d").to_string(),
            "NumAtCard": reference,
            "DocCurrency": event.currency,
            "DocumentLines": lines,
        })
    }

    /// What the order found by [`Self::find`] holds.
    fn held(&self, order: &Value) -> Held {
        Held {
            version: super::read_version(order, &self.config.version_field),
            cancelled: order.get("Cancelled").and_then(Value::as_str) == Some("tYES"),
            posted: false,
        }
    }

    /// Puts the event's version, and its attribution when it carries one, on an order or
    /// update body.
    fn stamp(&self, body: &mut Value, event: &OrderEvent) {
        super::stamp_version(body, &self.config.version_field, event);
        self.config.attribution_fields.write(body, event, UDF_MAX);
    }

    async fn patch(&self, order: &Value, body: &Value) -> Result<(), ErpError> {
        let url = self.url(&format!("Orders({})", doc_entry(order)?));
        self.call(Method::PATCH, &url, Some(body)).await?;
        Ok(())
    }

    fn order_body(&self, event: &OrderEvent, reference: &str) -> Result<Value, ErpError> {
        let lines = event
            .line_items
            .iter()
            .map(|line| {
                let mut body = json!({
                    "ItemCode": self.mapping.item(line, "SAP")?,
                    "Quantity": line.quantity,
                    // UnitPrice is before the line discount, which goes as a percentage.
                    "UnitPrice": json_number(line.unit_price),
                });
                if let Some(percent) = discount_percent(line)? {
                    body["DiscountPercent"] = json_number(percent);
                }
                Ok(body)
            })
            .collect::<Result<Vec<_>, ErpError>>()?;
        if lines.is_empty() {
            return Err(ErpError::rejected("the order has no lines for SAP"));
        }
        let mut body = self.header(event, reference, lines);
        if let Some(warehouse) = self.mapping.channel(event) {
            for line in body["DocumentLines"].as_array_mut().into_iter().flatten() {
                line["WarehouseCode"] = json!(warehouse);
            }
        }
        self.mapping.transform(event, body)
    }

    fn credit_note_body(
        &self,
        event: &OrderEvent,
        refund: &Refund,
        reference: &str,
    ) -> Result<Value, ErpError> {
        let mut lines: Vec<Value> = self
            .mapping
            .refund_items(refund, "SAP")?
            .into_iter()
            .map(|refunded| {
                json!({
                    "ItemCode": refunded.item,
                    "Quantity": refunded.quantity,
                    "UnitPrice": json_number(refunded.unit_price),
                })
            })
            .collect();
        if lines.is_empty() {
            let item = self.config.refund_item_code.as_deref().ok_or_else(|| {
                ErpError::rejected(
                    "the refund has no item lines and sink.erp.refund_item_code is not set",
                )
            })?;
            lines.push(json!({
                "ItemCode": item,
                "Quantity": 1,
                "UnitPrice": json_number(refund.amount),
            }));
        }
        Ok(self.header(event, reference, lines))
    }

    async fn create(&self, entity: &str, body: &Value) -> Result<(), ErpError> {
        self.call(Method::POST, &self.url(entity), Some(body))
            .await?;
        Ok(())
    }
}

/// The Service Layer's session cookie, for the shared transport.
#[async_trait]
impl super::transport::Auth for SapBusinessOne {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ErpError> {
        Ok(request.header(reqwest::header::COOKIE, self.cookie().await?))
    }

    async fn refused(&self) {
        *self.session.lock().await = None;
    }

    async fn accepted(&self) {
        // The timeout slides with every call the Service Layer accepted.
        if let Some(session) = self.session.lock().await.as_mut() {
            session.renew_at =
                Instant::now() + session.timeout.saturating_sub(Duration::from_secs(60));
        }
    }
}

#[async_trait]
impl ErpClient for SapBusinessOne {
    fn name(&self) -> &'static str {
        "sap-business-one"
    }

    fn preview(&self, event: &OrderEvent) -> Result<super::Preview, ErpError> {
        let reference = external_reference(&event.order_key);
        let mut body = self.order_body(event, &reference)?;
        self.stamp(&mut body, event);
        Ok(super::Preview {
            method: "POST",
            url: self.url("Orders"),
            body,
        })
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let reference = external_reference(&event.order_key);
        let order = self.find("Orders", &reference).await?;
        let held = order.as_ref().map(|order| self.held(order));
        match (action(event, held), order) {
            (Action::Create, _) => {
                let mut body = self.order_body(event, &reference)?;
                self.stamp(&mut body, event);
                self.create("Orders", &body).await?;
                Ok(Upserted::Created)
            }
            (Action::Update, Some(order)) => {
                let mut body = self.order_body(event, &reference)?;
                // The business partner and the dates the order was booked with stay.
                if let Some(header) = body.as_object_mut() {
                    header.remove("CardCode");
                    header.remove("DocDate");
                    header.remove("DocDueDate");
                }
                self.stamp(&mut body, event);
                self.patch(&order, &body).await?;
                Ok(Upserted::Updated)
            }
            (Action::UpdateStatus, Some(order)) => {
                let mut body = json!({});
                self.stamp(&mut body, event);
                if body.as_object().is_some_and(serde_json::Map::is_empty) {
                    // No version field and no attribution: nothing to record.
                    return Ok(Upserted::Skipped);
                }
                self.patch(&order, &body).await?;
                Ok(Upserted::Updated)
            }
            (Action::Cancel, Some(order)) => {
                let cancel = self.url(&format!("Orders({})/Cancel", doc_entry(&order)?));
                self.call(Method::POST, &cancel, None).await?;
                Ok(Upserted::Updated)
            }
            (Action::Refund, Some(_)) => {
                let Some(refund) = &event.refund else {
                    return Ok(Upserted::Skipped);
                };
                let credit =
                    super::refund_reference(&reference, &refund.refund_id, NUM_AT_CARD_MAX);
                if self.find("CreditNotes", &credit).await?.is_some() {
                    return Ok(Upserted::AlreadyPresent);
                }
                let body = self.credit_note_body(event, refund, &credit)?;
                self.create("CreditNotes", &body).await?;
                Ok(Upserted::Updated)
            }
            // The table only changes orders the ERP holds.
            (Action::Update | Action::UpdateStatus | Action::Cancel | Action::Refund, None) => {
                Ok(Upserted::Skipped)
            }
            (Action::Nothing(outcome), _) => Ok(outcome),
        }
    }
}

/// The `DocEntry` of a document the Service Layer returned.
fn doc_entry(document: &Value) -> Result<u64, ErpError> {
    document
        .get("DocEntry")
        .and_then(Value::as_u64)
        .ok_or_else(|| ErpError::transient("SAP document without DocEntry"))
}
