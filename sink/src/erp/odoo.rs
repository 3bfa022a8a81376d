//! Odoo, through its external JSON-RPC API (`POST /jsonrpc`, Odoo 14–18; deprecated but still
//! served in 19).
//!
//! - Auth: `common.authenticate(db, login, api_key, {})` gives the user id; every
//!   `object.execute_kw` call carries the id and the key. The id is cached and asked for again
//!   after Odoo answers `AccessDenied` (a rotated or revoked key).
//! - Errors: Odoo answers HTTP 200 with an `error` member. `AccessDenied` and database
//!   concurrency failures (serialization conflicts, deadlocks, lock timeouts) are transient;
//!   validation and user errors reject the order with Odoo's own message; anything else goes
//!   through the status table ("200 with errors" is rejected, still with Odoo's exception and
//!   message).
//! - Idempotency: `client_order_ref` has no uniqueness constraint, so the lookup
//!   `sale.order.search_read([("client_order_ref", "=", ref)])` is what prevents doubles.
//!   Every attempt looks up first, so a create that timed out (and may have landed) is looked
//!   up again before it is retried.
//! - Create: one `sale.order.create` with its lines as ORM create commands (`[0, 0, {…}]`),
//!   one SQL transaction. Products are found by SKU (`product.product.default_code`) and
//!   cached.
//! - Cancel: `action_cancel` with `disable_cancel_warning` in the context (otherwise Odoo
//!   returns a wizard for confirmed orders instead of cancelling).
//! - Version guard: the canonical version the sink last wrote is kept on the order in a
//!   custom field (`version_field`, default `x_orderbridge_version`, a Char: versions do not
//!   fit Odoo's 32-bit Integer). An older event is `Stale`.
//! - Update: one `write` with the version and the lines as ORM commands, `[5, 0, 0]` (drop
//!   the lines) followed by `[0, 0, {…}]` per line: one call, one SQL transaction. A
//!   status-only event writes the version alone.
//! - Refund: a customer credit note, `account.move` with `move_type = out_refund`, its `ref`
//!   the order's reference plus the refund's, looked up by `ref` first. Item lines become
//!   invoice lines; money without items goes on `refund_product_id` when one is configured.
//! - Attribution: `sale.order` has Odoo's own UTM fields (`campaign_id`, `source_id`,
//!   `medium_id`, many2one to `utm.campaign`, `utm.source`, `utm.medium`), which its sales
//!   reports group by. They take one touch, the last (`attribution_touch = "first"` for the
//!   first): its campaign, source and medium; Odoo has no channel field, and its media are
//!   channels ("Email", "Website"), so a touch without a medium gives its channel as the
//!   medium. Each record is found by name as Odoo finds UTM records itself (`search` with
//!   `=ilike`, archived ones included, the pattern's wildcards escaped so a name matches
//!   only itself) or created, and the id cached; lookups run one at a time so two orders of
//!   a new campaign cannot both create it (Odoo would name the second "spring [2]"). The
//!   whole attribution (both touches, every touchpoint with its credit) goes as text into a
//!   custom Text field when `attribution_note_field` names one; not into `note`, which is
//!   the terms and conditions printed on the customer's quotation. An event with
//!   attribution writes these with the rest of its `create` or `write`, a late attribution
//!   (a partial event) with its version alone; an event without leaves them.
//!
//! Contract: `shared/reference/erp-targets.md` §4.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use orderbridge_runtime::Secret;
use orderbridge_schemas::OrderEvent;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::attribution::{describe, Touch};
use super::status::{classify, json_body, transport};
use super::{
    action, discount_percent, external_reference, json_number, Action, ErpClient, ErpError,
    ErpSetupError, Held, Upserted,
};
use crate::mapping::Mapping;

/// Odoo settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OdooConfig {
    /// The instance, e.g. `https://mycompany.odoo.com`.
    pub url: String,
    /// Database name.
    pub database: String,
    /// Login of the API user.
    pub login: String,
    /// That user's API key (or password).
    pub api_key: Secret,
    /// `res.partner` id every order is booked to until customer mapping exists.
    pub default_partner_id: i64,
    /// The custom Char field on `sale.order` holding the canonical version the sink last
    /// wrote; the version guard reads it. Empty: no guard.
    #[serde(default = "default_version_field")]
    pub version_field: String,
    /// `product.product` id for a refund of money with no item lines; without one such a
    /// refund is dead-lettered with the reason.
    #[serde(default)]
    pub refund_product_id: Option<i64>,
    /// Which touch of the attribution goes into the order's UTM fields (`campaign_id`,
    /// `source_id`, `medium_id`): `last` (default) or `first`.
    #[serde(default)]
    pub attribution_touch: Touch,
    /// A custom Text field on `sale.order` (e.g. `x_orderbridge_attribution`) that takes the
    /// whole attribution as text: both touches, every touchpoint with its credit. Empty
    /// (default): not written.
    #[serde(default)]
    pub attribution_note_field: String,
    /// Per-request timeout in milliseconds.
    #[serde(default = "super::default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_version_field() -> String {
    "x_orderbridge_version".into()
}

/// `account.move.ref` is a Char without a size; keep credit references as short as SAP's.
const CREDIT_REF_MAX: usize = 100;

/// The Odoo adapter.
pub struct Odoo {
    config: OdooConfig,
    http: reqwest::Client,
    mapping: Arc<Mapping>,
    uid: Mutex<Option<i64>>,
    /// SKU → `product.product` id.
    products: Mutex<HashMap<String, i64>>,
    /// (UTM model, name) → record id. Held across a lookup: see the module docs.
    utm: Mutex<HashMap<(&'static str, String), i64>>,
    request_id: AtomicU64,
}

/// How an Odoo error is handled.
enum OdooFault {
    /// The key was refused: authenticate again, then retry later.
    AccessDenied(String),
    /// Everything else, already classified.
    Other(ErpError),
}

impl Odoo {
    /// A client for one Odoo database.
    ///
    /// # Errors
    /// When the configuration is unusable or the HTTP client cannot be built.
    pub fn new(config: OdooConfig) -> Result<Self, ErpSetupError> {
        reqwest::Url::parse(&config.url)
            .map_err(|err| ErpSetupError::Config(format!("odoo: url: {err}")))?;
        let http = super::http_client(config.request_timeout_ms)?;
        Ok(Self {
            config,
            http,
            uid: Mutex::new(None),
            products: Mutex::new(HashMap::new()),
            utm: Mutex::new(HashMap::new()),
            request_id: AtomicU64::new(1),
            mapping: Arc::new(Mapping::default()),
        })
    }

    /// Applies `mapping` (items, customers, channels, the program) to what this adapter
    /// sends.
    #[must_use]
    pub fn with_mapping(mut self, mapping: Arc<Mapping>) -> Self {
        self.mapping = mapping;
        self
    }

    /// The `res.partner` id of `event`: mapped, or the configured default.
    fn partner(&self, event: &OrderEvent) -> Result<i64, ErpError> {
        match self.mapping.customer(event) {
            None => Ok(self.config.default_partner_id),
            Some(mapped) => mapped.trim().parse().map_err(|_| {
                ErpError::rejected(format!(
                    "customer {mapped:?} from sink.mapping is not an Odoo res.partner id"
                ))
            }),
        }
    }

    /// The `stock.warehouse` id of `event`'s sales channel, when mapped.
    fn warehouse(&self, event: &OrderEvent) -> Result<Option<i64>, ErpError> {
        self.mapping
            .channel(event)
            .map(|code| {
                code.trim().parse().map_err(|_| {
                    ErpError::rejected(format!(
                        "channel code {code:?} from sink.mapping is not an Odoo warehouse id"
                    ))
                })
            })
            .transpose()
    }

    /// One JSON-RPC call; its `result`, or the fault.
    async fn rpc(&self, service: &str, method: &str, args: Value) -> Result<Value, OdooFault> {
        let body = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": { "service": service, "method": method, "args": args },
            "id": self.request_id.fetch_add(1, Ordering::Relaxed),
        });
        let url = format!("{}/jsonrpc", self.config.url.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|err| OdooFault::Other(transport(&err)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|err| OdooFault::Other(transport(&err)))?;
        if status.is_success() {
            let reply = json_body(&text).map_err(OdooFault::Other)?;
            if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
                return Err(odoo_fault(error, status, &headers, &text));
            }
            return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
        }
        classify(status, &headers, &text).map_err(OdooFault::Other)?;
        Err(OdooFault::Other(ErpError::transient(format!(
            "unexpected {status}"
        ))))
    }

    async fn uid(&self) -> Result<i64, ErpError> {
        let mut uid = self.uid.lock().await;
        if let Some(known) = *uid {
            return Ok(known);
        }
        let args = json!([
            self.config.database,
            self.config.login,
            self.config.api_key.expose(),
            {}
        ]);
        let result =
            self.rpc("common", "authenticate", args)
                .await
                .map_err(|fault| match fault {
                    OdooFault::AccessDenied(reason) => ErpError::unavailable(reason, None),
                    OdooFault::Other(err) => err,
                })?;
        // A refused login is `false`, not an error: never one order's fault.
        let known = result.as_i64().ok_or_else(|| {
            ErpError::unavailable(
                "Odoo refused the login (check odoo.login and the API key)",
                None,
            )
        })?;
        *uid = Some(known);
        Ok(known)
    }

    /// `object.execute_kw(db, uid, key, model, method, args, kwargs)`.
    async fn execute(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, ErpError> {
        let uid = self.uid().await?;
        let call = json!([
            self.config.database,
            uid,
            self.config.api_key.expose(),
            model,
            method,
            args,
            kwargs
        ]);
        match self.rpc("object", "execute_kw", call).await {
            Ok(result) => Ok(result),
            Err(OdooFault::AccessDenied(reason)) => {
                // A rotated key: the next attempt authenticates again.
                *self.uid.lock().await = None;
                Err(ErpError::unavailable(reason, None))
            }
            Err(OdooFault::Other(err)) => Err(err),
        }
    }

    async fn find_order(&self, reference: &str) -> Result<Option<Value>, ErpError> {
        let found = self
            .execute(
                "sale.order",
                "search_read",
                json!([[["client_order_ref", "=", reference]]]),
                json!({ "fields": self.order_fields(), "limit": 1 }),
            )
            .await?;
        Ok(found.as_array().and_then(|rows| rows.first().cloned()))
    }

    fn order_fields(&self) -> Vec<&str> {
        let mut fields = vec!["id", "name", "state"];
        if !self.config.version_field.is_empty() {
            fields.push(&self.config.version_field);
        }
        fields
    }

    /// What the order found by [`Self::find_order`] holds.
    fn held(&self, order: &Value) -> Held {
        Held {
            // An unset Char field reads as `false`.
            version: super::read_version(order, &self.config.version_field),
            cancelled: order.get("state").and_then(Value::as_str) == Some("cancel"),
            posted: false,
        }
    }

    /// Puts the event's version into `values`.
    fn stamp(&self, values: &mut Value, event: &OrderEvent) {
        super::stamp_version(values, &self.config.version_field, event);
    }

    /// The order's lines as ORM create commands.
    async fn order_lines(&self, event: &OrderEvent) -> Result<Vec<Value>, ErpError> {
        let mut lines = Vec::with_capacity(event.line_items.len());
        for line in &event.line_items {
            let code = self.mapping.item(line, "Odoo")?;
            let mut values = json!({
                "product_id": self.product(&code).await?,
                "product_uom_qty": line.quantity,
                "price_unit": json_number(line.unit_price),
            });
            if let Some(percent) = discount_percent(line)? {
                values["discount"] = json_number(percent);
            }
            lines.push(json!([0, 0, values]));
        }
        if lines.is_empty() {
            return Err(ErpError::rejected("the order has no lines for Odoo"));
        }
        Ok(lines)
    }

    async fn write(&self, order: &Value, values: Value) -> Result<(), ErpError> {
        self.execute(
            "sale.order",
            "write",
            json!([[order_id(order)?], values]),
            json!({}),
        )
        .await?;
        Ok(())
    }

    /// Books `refund` as a customer credit note, unless one with its reference exists.
    async fn refund(&self, event: &OrderEvent, reference: &str) -> Result<Upserted, ErpError> {
        let Some(refund) = &event.refund else {
            return Ok(Upserted::Skipped);
        };
        let credit = super::refund_reference(reference, &refund.refund_id, CREDIT_REF_MAX);
        let found = self
            .execute(
                "account.move",
                "search_read",
                json!([[["ref", "=", credit], ["move_type", "=", "out_refund"]]]),
                json!({ "fields": ["id"], "limit": 1 }),
            )
            .await?;
        if found.as_array().is_some_and(|rows| !rows.is_empty()) {
            return Ok(Upserted::AlreadyPresent);
        }
        let mut lines = Vec::new();
        for refunded in self.mapping.refund_items(refund, "Odoo")? {
            lines.push(json!([0, 0, {
                "product_id": self.product(&refunded.item).await?,
                "quantity": refunded.quantity,
                "price_unit": json_number(refunded.unit_price),
            }]));
        }
        if lines.is_empty() {
            let product = self.config.refund_product_id.ok_or_else(|| {
                ErpError::rejected(
                    "the refund has no item lines and sink.erp.refund_product_id is not set",
                )
            })?;
            lines.push(json!([0, 0, {
                "product_id": product,
                "quantity": 1,
                "price_unit": json_number(refund.amount),
            }]));
        }
        let values = json!({
            "move_type": "out_refund",
            "partner_id": self.partner(event)?,
            "ref": credit,
            "invoice_origin": reference,
            "invoice_line_ids": lines,
        });
        self.execute("account.move", "create", json!([values]), json!({}))
            .await?;
        Ok(Upserted::Updated)
    }

    async fn product(&self, sku: &str) -> Result<i64, ErpError> {
        if let Some(id) = self.products.lock().await.get(sku) {
            return Ok(*id);
        }
        let found = self
            .execute(
                "product.product",
                "search_read",
                json!([[["default_code", "=", sku]]]),
                json!({ "fields": ["id"], "limit": 1 }),
            )
            .await?;
        let id = found
            .as_array()
            .and_then(|rows| rows.first())
            .and_then(|row| row.get("id"))
            .and_then(Value::as_i64)
            .ok_or_else(|| ErpError::rejected(format!("no Odoo product with SKU {sku:?}")))?;
        self.products.lock().await.insert(sku.to_owned(), id);
        Ok(id)
    }

    /// The UTM fields of `event`'s attribution: (field, model, name of its record), no name
    /// clearing the field; `None` when the event carries no attribution.
    fn utm_names<'a>(
        &self,
        event: &'a OrderEvent,
    ) -> Option<[(&'static str, &'static str, Option<&'a str>); 3]> {
        let touch = self
            .config
            .attribution_touch
            .of(event.attribution.as_ref()?);
        let named = |name: Option<&'a str>| name.map(str::trim).filter(|n| !n.is_empty());
        Some([
            (
                "campaign_id",
                "utm.campaign",
                named(touch.and_then(|t| t.campaign.as_deref())),
            ),
            (
                "source_id",
                "utm.source",
                named(touch.and_then(|t| t.source.as_deref())),
            ),
            (
                "medium_id",
                "utm.medium",
                named(touch.and_then(|t| t.medium.as_deref().or(Some(t.channel.as_str())))),
            ),
        ])
    }

    /// Puts `event`'s attribution into order `values`: the UTM ids (records found or created)
    /// and the note field. Nothing when the event carries none.
    async fn attribute(&self, values: &mut Value, event: &OrderEvent) -> Result<(), ErpError> {
        let (Some(names), Some(attribution)) = (self.utm_names(event), &event.attribution) else {
            return Ok(());
        };
        let mut fields = serde_json::Map::new();
        for (field, model, name) in names {
            let id = match name {
                Some(name) => json!(self.utm(model, name).await?),
                None => json!(false),
            };
            fields.insert(field.to_owned(), id);
        }
        if !self.config.attribution_note_field.is_empty() {
            fields.insert(
                self.config.attribution_note_field.clone(),
                json!(describe(attribution)),
            );
        }
        if let Some(values) = values.as_object_mut() {
            values.extend(fields);
        }
        Ok(())
    }

    /// The id of the `model` record (`utm.campaign`, `utm.source`, `utm.medium`) named
    /// `name`, found as Odoo finds one (case aside, archived ones too) or created.
    async fn utm(&self, model: &'static str, name: &str) -> Result<i64, ErpError> {
        // Held until the record is known: a second lookup of the same new name waits for the
        // first to create it instead of creating it again.
        let mut known = self.utm.lock().await;
        if let Some(id) = known.get(&(model, name.to_owned())) {
            return Ok(*id);
        }
        let found = self
            .execute(
                model,
                "search",
                json!([[["name", "=ilike", like_exactly(name)]]]),
                json!({ "limit": 1, "context": { "active_test": false } }),
            )
            .await?;
        let id = match found
            .as_array()
            .and_then(|ids| ids.first())
            .and_then(Value::as_i64)
        {
            Some(id) => id,
            None => self
                .execute(model, "create", json!([{ "name": name }]), json!({}))
                .await?
                .as_i64()
                .ok_or_else(|| {
                    ErpError::transient(format!("Odoo created a {model} without an id"))
                })?,
        };
        known.insert((model, name.to_owned()), id);
        Ok(id)
    }

    async fn create_order(&self, event: &OrderEvent, reference: &str) -> Result<(), ErpError> {
        let mut values = json!({
            "partner_id": self.partner(event)?,
            "client_order_ref": reference,
            "order_line": self.order_lines(event).await?,
        });
        if let Some(warehouse) = self.warehouse(event)? {
            values["warehouse_id"] = json!(warehouse);
        }
        self.stamp(&mut values, event);
        self.attribute(&mut values, event).await?;
        let values = self.mapping.transform(event, values)?;
        self.execute("sale.order", "create", json!([values]), json!({}))
            .await?;
        Ok(())
    }
}

/// `name` as an `=ilike` pattern that matches only itself (case aside): PostgreSQL's `ILIKE`
/// reads `%` and `_` as wildcards and `\` as their escape.
fn like_exactly(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The `id` of a record Odoo returned.
fn order_id(order: &Value) -> Result<i64, ErpError> {
    order
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ErpError::transient("Odoo record without id"))
}

/// An Odoo error envelope, classified: `AccessDenied` apart, serialization conflicts
/// transient, validation and user errors rejected with Odoo's message, the rest by the
/// status table.
fn odoo_fault(
    error: &Value,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    text: &str,
) -> OdooFault {
    let name = error
        .pointer("/data/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = error
        .pointer("/data/message")
        .or_else(|| error.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("Odoo Server Error")
        .to_owned();
    match name {
        "odoo.exceptions.AccessDenied" => OdooFault::AccessDenied(format!("Odoo: {message}")),
        // PostgreSQL gave up on the transaction for another's sake (Odoo retries these
        // itself a few times, then reports them): the next attempt may well pass.
        "psycopg2.errors.SerializationFailure"
        | "psycopg2.errors.DeadlockDetected"
        | "psycopg2.errors.LockNotAvailable"
        | "psycopg2.extensions.TransactionRollbackError" => {
            OdooFault::Other(ErpError::transient(format!("Odoo: {message}")))
        }
        "odoo.exceptions.ValidationError"
        | "odoo.exceptions.UserError"
        | "odoo.exceptions.MissingError" => {
            OdooFault::Other(ErpError::rejected(format!("Odoo {name}: {message}")))
        }
        _ => OdooFault::Other(match classify(status, headers, text) {
            // "200 with errors": Odoo's exception and message (`Invalid field 'x_…' on model
            // 'sale.order'` for a field the database lacks) say what the envelope does not.
            Err(ErpError::Rejected { .. }) | Ok(()) => {
                ErpError::rejected(format!("Odoo {name}: {message}"))
            }
            Err(transient @ ErpError::Transient { .. }) => transient,
        }),
    }
}

#[async_trait]
impl ErpClient for Odoo {
    fn name(&self) -> &'static str {
        "odoo"
    }

    fn default_max_in_flight(&self) -> usize {
        4
    }

    fn preview(&self, event: &OrderEvent) -> Result<super::Preview, ErpError> {
        // Products are found by their code at send time; the preview names the code.
        let lines = event
            .line_items
            .iter()
            .map(|line| {
                let code = self.mapping.item(line, "Odoo")?;
                Ok(json!([0, 0, {
                    "product_id": format!("<product.product whose default_code is {code}>"),
                    "product_uom_qty": line.quantity,
                    "price_unit": json_number(line.unit_price),
                }]))
            })
            .collect::<Result<Vec<_>, ErpError>>()?;
        let mut values = json!({
            "partner_id": self.partner(event)?,
            "client_order_ref": external_reference(&event.order_key),
            "order_line": lines,
        });
        if let Some(warehouse) = self.warehouse(event)? {
            values["warehouse_id"] = json!(warehouse);
        }
        self.stamp(&mut values, event);
        // UTM records are found (or created) by name at send time; the preview names them.
        for (field, model, name) in self.utm_names(event).into_iter().flatten() {
            values[field] = name.map_or(json!(false), |name| {
                json!(format!("<{model} named {name}, found or created>"))
            });
        }
        if let (false, Some(attribution)) = (
            self.config.attribution_note_field.is_empty(),
            &event.attribution,
        ) {
            values[&self.config.attribution_note_field] = json!(describe(attribution));
        }
        let values = self.mapping.transform(event, values)?;
        Ok(super::Preview {
            method: "POST",
            url: format!("{}/jsonrpc", self.config.url.trim_end_matches('/')),
            body: json!({
                "jsonrpc": "2.0",
                "method": "call",
                "params": { "service": "object", "method": "execute_kw", "args": [
                    self.config.database, "<uid>", "<api key>", "sale.order", "create", [values], {}
                ]},
            }),
        })
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let reference = external_reference(&event.order_key);
        let order = self.find_order(&reference).await?;
        let held = order.as_ref().map(|order| self.held(order));
        match (action(event, held), order) {
            (Action::Create, _) => {
                self.create_order(event, &reference).await?;
                Ok(Upserted::Created)
            }
            (Action::Update, Some(order)) => {
                let mut lines = vec![json!([5, 0, 0])];
                lines.extend(self.order_lines(event).await?);
                let mut values = json!({ "order_line": lines });
                self.stamp(&mut values, event);
                self.attribute(&mut values, event).await?;
                let values = self.mapping.transform(event, values)?;
                self.write(&order, values).await?;
                Ok(Upserted::Updated)
            }
            (Action::UpdateStatus, Some(order)) => {
                let mut values = json!({});
                self.stamp(&mut values, event);
                // A late attribution (or a status that carries one) writes it in place.
                self.attribute(&mut values, event).await?;
                if values.as_object().is_some_and(serde_json::Map::is_empty) {
                    // No version field and no attribution: nothing to record.
                    return Ok(Upserted::Skipped);
                }
                self.write(&order, values).await?;
                Ok(Upserted::Updated)
            }
            (Action::Cancel, Some(order)) => {
                let result = self
                    .execute(
                        "sale.order",
                        "action_cancel",
                        json!([[order_id(&order)?]]),
                        json!({ "context": { "disable_cancel_warning": true } }),
                    )
                    .await?;
                if result.is_object() {
                    // A wizard instead of a cancellation: this Odoo wants a person to decide.
                    return Err(ErpError::rejected(
                        "Odoo answered the cancellation with a wizard; cancel the order there",
                    ));
                }
                Ok(Upserted::Updated)
            }
            (Action::Refund, Some(_)) => self.refund(event, &reference).await,
            // The table only changes orders the ERP holds.
            (Action::Update | Action::UpdateStatus | Action::Cancel | Action::Refund, None) => {
                Ok(Upserted::Skipped)
            }
            (Action::Nothing(outcome), _) => Ok(outcome),
        }
    }
}
