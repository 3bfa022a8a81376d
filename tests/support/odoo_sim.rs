//! An Odoo JSON-RPC simulator (`POST /jsonrpc`) that follows the documented contract
//! (`shared/reference/erp-targets.md` §4), not a 200-for-everything stub:
//!
//! - `common.authenticate(db, login, key, {})`: the user id, or `false` for a wrong key.
//! - `object.execute_kw(db, uid, key, model, method, args, kwargs)` for `sale.order`
//!   (`search_read` by `client_order_ref`, `create` with `[0, 0, {…}]` line commands,
//!   `action_cancel`) and `product.product` (`search_read` by `default_code`).
//! - Errors the way Odoo sends them: HTTP 200 with an `error` member whose `data.name` is the
//!   exception (`AccessDenied` for a revoked key, `ValidationError` for a missing partner or
//!   product). Like Odoo, it does **not** reject a duplicate `client_order_ref`.
//! - `action_cancel` on a confirmed order without `disable_cancel_warning` returns the
//!   cancellation wizard instead of cancelling, as Odoo does.
//! - `sale.order.write([id], values)` with line commands `[5, 0, 0]` (drop all lines) and
//!   `[0, 0, {…}]`; the custom field `x_orderbridge_version` (a Char) on `sale.order`, read as
//!   `false` while unset. A field the model lacks is Odoo's `ValueError` ("Invalid field").
//! - Credit notes: `account.move` `search_read` by `ref` and `move_type`, and `create` with
//!   `move_type = out_refund` and `invoice_line_ids`.
//! - UTM: `sale.order`'s many2one fields `campaign_id`, `source_id`, `medium_id` (an id that
//!   is not a record of `utm.campaign`, `utm.source`, `utm.medium` is refused, `false`
//!   clears), and those models' `search` (domain terms on `name` with `=`, `=ilike` or
//!   `ilike`, PostgreSQL's `ILIKE` patterns with `%`, `_` and `\` escapes, case-insensitive)
//!   and `create` (`name` required; a name already taken is made unique as Odoo does,
//!   `spring [2]`; a field the model lacks is `ValueError`). The database starts with Odoo's
//!   own media (`Email`, `Direct`, `Website`) and source `Newsletter`.
//! - The custom Text field `x_orderbridge_attribution` on `sale.order`.
//! - Faults on demand: the key revoked, a maintenance window (502 from the proxy), a create
//!   that lands and then answers 504, 429 from the proxy with `Retry-After`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use orderbridge_runtime::Secret;
use orderbridge_sink::erp::odoo::OdooConfig;
use serde_json::{json, Value};

pub const DATABASE: &str = "mycompany";
pub const LOGIN: &str = "api@mycompany.example";
pub const API_KEY: &str = "0d6f4c1e8b2a4f3d9c7e5a1b";
pub const PARTNER: i64 = 42;
const UID: i64 = 7;

#[derive(Debug, Clone)]
pub struct SaleOrder {
    pub id: i64,
    pub client_order_ref: String,
    pub partner_id: i64,
    pub state: String,
    pub lines: Vec<Value>,
    /// `x_orderbridge_version`.
    pub version: Option<String>,
    pub writes: u32,
    /// `campaign_id`, `source_id`, `medium_id`.
    pub campaign_id: Option<i64>,
    pub source_id: Option<i64>,
    pub medium_id: Option<i64>,
    /// `x_orderbridge_attribution`.
    pub attribution: Option<String>,
}

/// A customer credit note (`account.move`, `out_refund`).
#[derive(Debug, Clone)]
pub struct CreditNote {
    pub id: i64,
    pub reference: String,
    pub lines: Vec<Value>,
}

#[derive(Default)]
struct Sim {
    /// SKU → product id.
    products: HashMap<String, i64>,
    orders: Vec<SaleOrder>,
    credit_notes: Vec<CreditNote>,
    /// The next call gets 429 with this `Retry-After`.
    throttle: Option<u64>,
    key_revoked: bool,
    maintenance: bool,
    create_lands_then_504: bool,
    /// The next `sale.order.create` fails with this exception (name, message), as Odoo
    /// reports a PostgreSQL concurrency error it gave up retrying itself.
    fail_next_create: Option<(String, String)>,
    authentications: u32,
    creates: u32,
    /// UTM model → its records (id, name).
    utm: HashMap<&'static str, Vec<(i64, String)>>,
    next_utm: i64,
    utm_searches: u32,
    utm_creates: u32,
}

/// The UTM models and the `sale.order` field that refers to each.
const UTM: &[(&str, &str)] = &[
    ("utm.campaign", "campaign_id"),
    ("utm.source", "source_id"),
    ("utm.medium", "medium_id"),
];

/// A running simulator.
#[derive(Clone)]
pub struct OdooSim {
    pub addr: SocketAddr,
    state: Arc<Mutex<Sim>>,
}

impl OdooSim {
    /// Starts a simulator on 127.0.0.1 that knows partner 42 and a product per SKU in `skus`.
    pub async fn start(skus: &[&str]) -> Self {
        let products = skus
            .iter()
            .zip(100..)
            .map(|(sku, id)| ((*sku).to_owned(), id))
            .collect();
        // What Odoo's own data files put there.
        let utm = HashMap::from([
            ("utm.campaign", Vec::new()),
            ("utm.source", vec![(1, "Newsletter".to_owned())]),
            (
                "utm.medium",
                vec![
                    (2, "Email".to_owned()),
                    (3, "Direct".to_owned()),
                    (4, "Website".to_owned()),
                ],
            ),
        ]);
        let state = Arc::new(Mutex::new(Sim {
            products,
            utm,
            next_utm: 5,
            ..Sim::default()
        }));
        let app = Router::new()
            .route("/jsonrpc", post(jsonrpc))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// Adapter settings pointing at this simulator.
    pub fn config(&self) -> OdooConfig {
        OdooConfig {
            url: format!("http://{}", self.addr),
            database: DATABASE.into(),
            login: LOGIN.into(),
            api_key: Secret::new(API_KEY),
            default_partner_id: PARTNER,
            version_field: "x_orderbridge_version".into(),
            refund_product_id: None,
            attribution_touch: Default::default(),
            attribution_note_field: String::new(),
            request_timeout_ms: 5_000,
        }
    }

    pub fn revoke_key(&self, revoked: bool) {
        self.state.lock().unwrap().key_revoked = revoked;
    }

    pub fn set_maintenance(&self, on: bool) {
        self.state.lock().unwrap().maintenance = on;
    }

    /// The next call gets 429 from the proxy with `Retry-After: seconds`.
    pub fn throttle(&self, seconds: u64) {
        self.state.lock().unwrap().throttle = Some(seconds);
    }

    pub fn credit_notes(&self) -> Vec<CreditNote> {
        self.state.lock().unwrap().credit_notes.clone()
    }

    pub fn orders_with_reference(&self, reference: &str) -> usize {
        self.orders()
            .iter()
            .filter(|o| o.client_order_ref == reference)
            .count()
    }

    /// The next `sale.order.create` fails with Odoo's error envelope for `exception`.
    pub fn fail_next_create(&self, exception: &str, message: &str) {
        self.state.lock().unwrap().fail_next_create =
            Some((exception.to_owned(), message.to_owned()));
    }

    pub fn create_lands_then_504(&self) {
        self.state.lock().unwrap().create_lands_then_504 = true;
    }

    /// Confirms an order (`draft` → `sale`), as a salesperson would.
    pub fn confirm(&self, id: i64) {
        let mut state = self.state.lock().unwrap();
        if let Some(order) = state.orders.iter_mut().find(|o| o.id == id) {
            order.state = "sale".into();
        }
    }

    pub fn orders(&self) -> Vec<SaleOrder> {
        self.state.lock().unwrap().orders.clone()
    }

    /// The records of a UTM model (`utm.campaign`, `utm.source`, `utm.medium`): (id, name).
    pub fn utm_records(&self, model: &str) -> Vec<(i64, String)> {
        self.state
            .lock()
            .unwrap()
            .utm
            .get(model)
            .cloned()
            .unwrap_or_default()
    }

    /// The names of the campaign, source and medium `order` refers to.
    pub fn utm_of(&self, order: &SaleOrder) -> [Option<String>; 3] {
        let state = self.state.lock().unwrap();
        let name = |model: &str, id: Option<i64>| {
            let id = id?;
            state.utm[model]
                .iter()
                .find(|(record, _)| *record == id)
                .map(|(_, name)| name.clone())
        };
        [
            name("utm.campaign", order.campaign_id),
            name("utm.source", order.source_id),
            name("utm.medium", order.medium_id),
        ]
    }

    /// Adds a record named `name` to a UTM model, as a person would in Odoo.
    pub fn add_utm(&self, model: &str, name: &str) -> i64 {
        let mut state = self.state.lock().unwrap();
        let id = state.next_utm;
        state.next_utm += 1;
        state
            .utm
            .get_mut(model)
            .unwrap()
            .push((id, name.to_owned()));
        id
    }

    /// (UTM searches, UTM creates)
    pub fn utm_calls(&self) -> (u32, u32) {
        let state = self.state.lock().unwrap();
        (state.utm_searches, state.utm_creates)
    }

    /// (authentications, creates)
    pub fn counts(&self) -> (u32, u32) {
        let state = self.state.lock().unwrap();
        (state.authentications, state.creates)
    }
}

type Shared = State<Arc<Mutex<Sim>>>;

fn reply(id: &Value, result: Value) -> Response {
    Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
}

/// Odoo's error envelope, on HTTP 200.
fn odoo_error(id: &Value, exception: &str, message: &str) -> Response {
    Json(json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": 200,
            "message": "Odoo Server Error",
            "data": { "name": exception, "message": message, "arguments": [message], "context": {} }
        }
    }))
    .into_response()
}

async fn jsonrpc(State(state): Shared, Json(request): Json<Value>) -> Response {
    let mut state = state.lock().unwrap();
    if state.maintenance {
        return (
            StatusCode::BAD_GATEWAY,
            "<html><body>502 Bad Gateway</body></html>",
        )
            .into_response();
    }
    if let Some(seconds) = state.throttle.take() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, seconds.to_string())],
            "<html><body>429 Too Many Requests</body></html>",
        )
            .into_response();
    }
    let id = request["id"].clone();
    let params = &request["params"];
    let args = params["args"].as_array().cloned().unwrap_or_default();
    match (params["service"].as_str(), params["method"].as_str()) {
        (Some("common"), Some("authenticate")) => {
            state.authentications += 1;
            let ok = args.first() == Some(&json!(DATABASE))
                && args.get(1) == Some(&json!(LOGIN))
                && args.get(2) == Some(&json!(API_KEY))
                && !state.key_revoked;
            reply(&id, if ok { json!(UID) } else { json!(false) })
        }
        (Some("object"), Some("execute_kw")) => {
            if args.first() != Some(&json!(DATABASE))
                || args.get(1) != Some(&json!(UID))
                || args.get(2) != Some(&json!(API_KEY))
                || state.key_revoked
            {
                return odoo_error(&id, "odoo.exceptions.AccessDenied", "Access Denied");
            }
            let model = args.get(3).and_then(Value::as_str).unwrap_or_default();
            let method = args.get(4).and_then(Value::as_str).unwrap_or_default();
            let positional = args.get(5).cloned().unwrap_or(Value::Null);
            let kwargs = args.get(6).cloned().unwrap_or(Value::Null);
            execute(&mut state, &id, model, method, &positional, &kwargs)
        }
        _ => odoo_error(
            &id,
            "werkzeug.exceptions.NotFound",
            "unknown service or method",
        ),
    }
}

/// The value of the domain term `[field, "=", value]` of the client's domain.
fn equals(positional: &Value, field: &str) -> Option<String> {
    positional
        .pointer("/0")?
        .as_array()?
        .iter()
        .find(|term| term[0] == field && term[1] == "=")
        .map(|term| term[2].as_str().unwrap_or_default().to_owned())
}

/// Fields of `sale.order` a client may write.
const ORDER_FIELDS: &[&str] = &[
    "partner_id",
    "client_order_ref",
    "order_line",
    "x_orderbridge_version",
    "campaign_id",
    "source_id",
    "medium_id",
    "x_orderbridge_attribution",
];

/// Odoo's answer to a field the model does not have.
fn unknown_field(id: &Value, values: &Value) -> Option<Response> {
    let field = values
        .as_object()?
        .keys()
        .find(|k| !ORDER_FIELDS.contains(&k.as_str()))?;
    Some(odoo_error(
        id,
        "builtins.ValueError",
        &format!("Invalid field '{field}' on model 'sale.order'"),
    ))
}

/// The UTM many2one values of `values` (`Some(None)` clears); Odoo's refusal of an id that
/// is no record, as PostgreSQL's foreign key makes it.
#[allow(clippy::result_large_err)] // the refusal is the HTTP response itself
fn utm_refs(state: &Sim, id: &Value, values: &Value) -> Result<[Option<Option<i64>>; 3], Response> {
    let mut refs = [None; 3];
    for ((model, field), slot) in UTM.iter().zip(refs.iter_mut()) {
        let value = &values[*field];
        match value {
            Value::Null => {}
            Value::Bool(false) => *slot = Some(None),
            Value::Bool(true)
            | Value::Number(_)
            | Value::String(_)
            | Value::Array(_)
            | Value::Object(_) => {
                let known = value
                    .as_i64()
                    .filter(|wanted| state.utm[model].iter().any(|(record, _)| record == wanted));
                let Some(known) = known else {
                    return Err(odoo_error(
                        id,
                        "odoo.exceptions.ValidationError",
                        &format!(
                            "The operation cannot be completed: {field} refers to a {model} record that does not exist."
                        ),
                    ));
                };
                *slot = Some(Some(known));
            }
        }
    }
    Ok(refs)
}

/// Whether `text` matches the `ILIKE` `pattern` (`%` any run, `_` one character, `\` the
/// escape), case-insensitively.
fn ilike(text: &str, pattern: &str) -> bool {
    fn matches(text: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|skip| matches(&text[skip..], rest)),
            Some(('_', rest)) => !text.is_empty() && matches(&text[1..], rest),
            Some((first, rest)) => {
                let (literal, rest) = match (first, rest.split_first()) {
                    ('\\', Some((escaped, after))) => (escaped, after),
                    _ => (first, rest),
                };
                text.first() == Some(literal) && matches(&text[1..], rest)
            }
        }
    }
    let lower = |s: &str| s.to_lowercase().chars().collect::<Vec<_>>();
    matches(&lower(text), &lower(pattern))
}

/// `search` and `create` on a UTM model.
fn utm(
    state: &mut Sim,
    id: &Value,
    model: &'static str,
    method: &str,
    positional: &Value,
) -> Response {
    match method {
        "search" => {
            state.utm_searches += 1;
            let terms = positional[0].as_array().cloned().unwrap_or_default();
            let found: Vec<i64> = state.utm[model]
                .iter()
                .filter(|(_, name)| {
                    terms.iter().all(|term| {
                        let wanted = term[2].as_str().unwrap_or_default();
                        match (term[0].as_str(), term[1].as_str()) {
                            (Some("name"), Some("=")) => name == wanted,
                            (Some("name"), Some("=ilike")) => ilike(name, wanted),
                            (Some("name"), Some("ilike")) => ilike(name, &format!("%{wanted}%")),
                            _ => false,
                        }
                    })
                })
                .map(|(record, _)| *record)
                .collect();
            reply(id, json!(found))
        }
        "create" => {
            let values = &positional[0];
            let allowed: &[&str] = if model == "utm.campaign" {
                &["name", "title"]
            } else {
                &["name"]
            };
            if let Some(field) = values
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .find(|k| !allowed.contains(&k.as_str()))
            {
                return odoo_error(
                    id,
                    "builtins.ValueError",
                    &format!("Invalid field '{field}' on model '{model}'"),
                );
            }
            let Some(name) = values["name"].as_str().filter(|n| !n.is_empty()) else {
                return odoo_error(
                    id,
                    "odoo.exceptions.ValidationError",
                    "The operation cannot be completed: Missing required value for the field 'Name' (name).",
                );
            };
            state.utm_creates += 1;
            // Odoo's `_get_unique_names`: a taken name gets the first free counter.
            let records = &state.utm[model];
            let unique = (1..)
                .map(|n| {
                    if n == 1 {
                        name.to_owned()
                    } else {
                        format!("{name} [{n}]")
                    }
                })
                .find(|candidate| records.iter().all(|(_, taken)| taken != candidate))
                .unwrap();
            let new_id = state.next_utm;
            state.next_utm += 1;
            state.utm.get_mut(model).unwrap().push((new_id, unique));
            reply(id, json!(new_id))
        }
        _ => odoo_error(id, "odoo.exceptions.UserError", "method not simulated"),
    }
}

/// The product ids of line commands `[0, 0, {product_id}]` all exist.
fn products_exist(state: &Sim, lines: &[Value], field: &str) -> bool {
    lines.iter().filter(|line| line[0] == 0).all(|line| {
        let product = line[2][field].as_i64().unwrap_or_default();
        state.products.values().any(|p| *p == product)
    })
}

fn order_json(order: &SaleOrder) -> Value {
    json!({
        "id": order.id,
        "name": format!("S{:05}", order.id),
        "state": order.state,
        "x_orderbridge_version": order.version.clone().map_or(json!(false), Value::String),
    })
}

fn execute(
    state: &mut Sim,
    id: &Value,
    model: &str,
    method: &str,
    positional: &Value,
    kwargs: &Value,
) -> Response {
    match (model, method) {
        ("product.product", "search_read") => {
            let Some(sku) = equals(positional, "default_code") else {
                return odoo_error(id, "odoo.exceptions.ValidationError", "Invalid domain");
            };
            let found: Vec<Value> = state
                .products
                .get(&sku)
                .map(|pid| json!({ "id": pid }))
                .into_iter()
                .collect();
            reply(id, json!(found))
        }
        ("sale.order", "search_read") => {
            let Some(reference) = equals(positional, "client_order_ref") else {
                return odoo_error(id, "odoo.exceptions.ValidationError", "Invalid domain");
            };
            let found: Vec<Value> = state
                .orders
                .iter()
                .filter(|o| o.client_order_ref == reference)
                .map(order_json)
                .collect();
            reply(id, json!(found))
        }
        ("sale.order", "create") => {
            if let Some((exception, message)) = state.fail_next_create.take() {
                return odoo_error(id, &exception, &message);
            }
            state.creates += 1;
            let values = &positional[0];
            let partner = values["partner_id"].as_i64().unwrap_or_default();
            if partner != PARTNER {
                return odoo_error(
                    id,
                    "odoo.exceptions.ValidationError",
                    "The operation cannot be completed: Missing required value for the field 'Customer' (partner_id).",
                );
            }
            if let Some(refusal) = unknown_field(id, values) {
                return refusal;
            }
            let lines = values["order_line"].as_array().cloned().unwrap_or_default();
            if !products_exist(state, &lines, "product_id") {
                return odoo_error(
                    id,
                    "odoo.exceptions.MissingError",
                    "Record does not exist or has been deleted.",
                );
            }
            let [campaign_id, source_id, medium_id] = match utm_refs(state, id, values) {
                Ok(refs) => refs.map(Option::flatten),
                Err(refusal) => return refusal,
            };
            let order = SaleOrder {
                campaign_id,
                source_id,
                medium_id,
                attribution: values["x_orderbridge_attribution"]
                    .as_str()
                    .map(str::to_owned),
                id: state.orders.len() as i64 + 1,
                client_order_ref: values["client_order_ref"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                partner_id: partner,
                state: "draft".into(),
                lines,
                version: values["x_orderbridge_version"].as_str().map(str::to_owned),
                writes: 0,
            };
            let new_id = order.id;
            state.orders.push(order);
            if std::mem::take(&mut state.create_lands_then_504) {
                return (StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out").into_response();
            }
            reply(id, json!(new_id))
        }
        ("sale.order", "action_cancel") => {
            let ids: Vec<i64> = positional[0]
                .as_array()
                .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let quiet = kwargs.pointer("/context/disable_cancel_warning") == Some(&json!(true));
            for order in state.orders.iter_mut().filter(|o| ids.contains(&o.id)) {
                if order.state != "draft" && !quiet {
                    // Odoo's wizard, not a cancellation.
                    return reply(
                        id,
                        json!({ "type": "ir.actions.act_window", "res_model": "sale.order.cancel" }),
                    );
                }
                order.state = "cancel".into();
            }
            reply(id, json!(true))
        }
        ("sale.order", "write") => {
            let ids: Vec<i64> = positional[0]
                .as_array()
                .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let values = &positional[1];
            if let Some(refusal) = unknown_field(id, values) {
                return refusal;
            }
            let refs = match utm_refs(state, id, values) {
                Ok(refs) => refs,
                Err(refusal) => return refusal,
            };
            let commands = values["order_line"].as_array().cloned();
            if let Some(commands) = &commands {
                if !products_exist(state, commands, "product_id") {
                    return odoo_error(
                        id,
                        "odoo.exceptions.MissingError",
                        "Record does not exist or has been deleted.",
                    );
                }
            }
            for order in state.orders.iter_mut().filter(|o| ids.contains(&o.id)) {
                if let Some(version) = values["x_orderbridge_version"].as_str() {
                    order.version = Some(version.to_owned());
                }
                let [campaign, source, medium] = refs;
                for (slot, value) in [
                    (&mut order.campaign_id, campaign),
                    (&mut order.source_id, source),
                    (&mut order.medium_id, medium),
                ] {
                    if let Some(value) = value {
                        *slot = value;
                    }
                }
                if let Some(text) = values["x_orderbridge_attribution"].as_str() {
                    order.attribution = Some(text.to_owned());
                } else if values["x_orderbridge_attribution"] == false {
                    order.attribution = None;
                }
                for command in commands.iter().flatten() {
                    match command[0].as_i64() {
                        Some(5) => order.lines.clear(),
                        Some(0) => order.lines.push(command.clone()),
                        _ => {}
                    }
                }
                order.writes += 1;
            }
            reply(id, json!(true))
        }
        ("utm.campaign", method) => utm(state, id, "utm.campaign", method, positional),
        ("utm.source", method) => utm(state, id, "utm.source", method, positional),
        ("utm.medium", method) => utm(state, id, "utm.medium", method, positional),
        ("account.move", "search_read") => {
            let (Some(reference), Some(kind)) =
                (equals(positional, "ref"), equals(positional, "move_type"))
            else {
                return odoo_error(id, "odoo.exceptions.ValidationError", "Invalid domain");
            };
            let found: Vec<Value> = state
                .credit_notes
                .iter()
                .filter(|c| c.reference == reference && kind == "out_refund")
                .map(|c| json!({ "id": c.id }))
                .collect();
            reply(id, json!(found))
        }
        ("account.move", "create") => {
            let values = &positional[0];
            if values["move_type"] != "out_refund" || values["partner_id"] != PARTNER {
                return odoo_error(
                    id,
                    "odoo.exceptions.ValidationError",
                    "The operation cannot be completed: Missing required value for the field 'Customer' (partner_id).",
                );
            }
            let lines = values["invoice_line_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if lines.is_empty() || !products_exist(state, &lines, "product_id") {
                return odoo_error(
                    id,
                    "odoo.exceptions.UserError",
                    "You need to add a line before posting.",
                );
            }
            let note = CreditNote {
                id: 9_000 + state.credit_notes.len() as i64,
                reference: values["ref"].as_str().unwrap_or_default().to_owned(),
                lines,
            };
            let new_id = note.id;
            state.credit_notes.push(note);
            reply(id, json!(new_id))
        }
        _ => odoo_error(id, "odoo.exceptions.UserError", "method not simulated"),
    }
}
