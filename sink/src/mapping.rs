//! Field mapping without code: how canonical values become the ERP's own, from
//! configuration (`[sink.mapping]`).
//!
//! - `items`: SKU → ERP item number. A SKU without an entry is sent as it is, or, with
//!   `unmapped_items = "reject"`, dead-letters the order with the SKU named.
//! - `customers`: customer email (compared lower-case) → ERP customer number; orders of
//!   other customers go to `default_customer`, else the adapter's configured default.
//! - `channels`: sales channel → the ERP's dimension or location code. The channel is
//!   `<source>:<account>` (e.g. `shopify:example-store.myshopify.com`), or `<source>` alone
//!   when only that has an entry. Where it goes is the adapter's business: Business Central
//!   `shortcutDimension1Code`, SAP `WarehouseCode` on each line, NetSuite `location`, Odoo
//!   `warehouse_id` (a number).
//! - `program`: a jq program (run by jaq) for anything beyond tables. Its input is the body
//!   the adapter built for a create or an update; `$order` is the canonical event as JSON.
//!   Its one output is the body sent. A program that fails, or gives no output, dead-letters
//!   the order with jaq's message. The program is compiled at start, so a syntax error
//!   stops the sink with a clear message instead of dead-lettering every order.
//!
//! `orderbridge mapping test --erp <erp> <fixture>` prints the request a canonical event
//! would produce, with the mapping of the configuration file applied.

use std::collections::BTreeMap;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, RcIter};
use jaq_json::Val;
use orderbridge_schemas::{LineItem, OrderEvent, Refund};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::erp::ErpError;

/// One item line of a refund, as an ERP books it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundItem {
    /// The ERP item number.
    pub item: String,
    /// Units returned (at least one).
    pub quantity: i64,
    /// Money returned per unit.
    pub unit_price: Decimal,
}

/// What to do with a SKU that has no entry in `items`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unmapped {
    /// Send the SKU as the item number.
    #[default]
    Pass,
    /// Dead-letter the order, naming the SKU.
    Reject,
}

/// `[sink.mapping]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    /// SKU → ERP item number.
    pub items: BTreeMap<String, String>,
    /// A SKU without an entry: `pass` (default) or `reject`.
    pub unmapped_items: Unmapped,
    /// Customer email → ERP customer number.
    pub customers: BTreeMap<String, String>,
    /// The customer of orders whose email has no entry; unset: the adapter's default.
    pub default_customer: Option<String>,
    /// Sales channel (`<source>:<account>` or `<source>`) → dimension or location code.
    pub channels: BTreeMap<String, String>,
    /// A jq program applied to each create and update body (`$order`: the canonical event).
    pub program: Option<String>,
}

/// A checked mapping.
#[derive(Clone, Default)]
pub struct Mapping {
    config: MappingConfig,
    customers: BTreeMap<String, String>,
    /// The program, compiled once (running it is cheap; compiling it is not).
    program: Option<std::sync::Arc<Program>>,
}

/// A compiled jq program.
type Program = jaq_core::Filter<jaq_core::Native<Val>>;

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("config", &self.config)
            .field("compiled", &self.program.is_some())
            .finish()
    }
}

impl Mapping {
    /// Checks `config` (the jq program compiles) and prepares it.
    ///
    /// # Errors
    /// The jq program's parse or compile errors.
    pub fn new(config: MappingConfig) -> Result<Self, String> {
        let program = config
            .program
            .as_deref()
            .map(compile)
            .transpose()?
            .map(std::sync::Arc::new);
        let customers = config
            .customers
            .iter()
            .map(|(email, number)| (email.trim().to_lowercase(), number.clone()))
            .collect();
        Ok(Self {
            config,
            customers,
            program,
        })
    }

    /// The ERP item number of `line` (named `erp` in the errors).
    ///
    /// # Errors
    /// Rejected when the line has no SKU, or its SKU has no entry and unmapped SKUs are
    /// rejected.
    pub fn item(&self, line: &LineItem, erp: &str) -> Result<String, ErpError> {
        let sku = line.sku.as_deref().ok_or_else(|| {
            ErpError::rejected(format!(
                "line {:?} has no SKU to find the {erp} item by",
                line.title
            ))
        })?;
        self.sku(sku, erp)
    }

    /// The ERP item number of `sku`.
    ///
    /// # Errors
    /// Rejected when it has no entry and unmapped SKUs are rejected.
    pub fn sku(&self, sku: &str, erp: &str) -> Result<String, ErpError> {
        match (self.config.items.get(sku), self.config.unmapped_items) {
            (Some(item), _) => Ok(item.clone()),
            (None, Unmapped::Pass) => Ok(sku.to_owned()),
            (None, Unmapped::Reject) => Err(ErpError::rejected(format!(
                "SKU {sku:?} has no {erp} item in sink.mapping.items"
            ))),
        }
    }

    /// The item lines of `refund` with their ERP item numbers and unit prices; empty when
    /// the refund returns money without items.
    ///
    /// # Errors
    /// As [`Mapping::sku`].
    pub fn refund_items(&self, refund: &Refund, erp: &str) -> Result<Vec<RefundItem>, ErpError> {
        refund
            .lines
            .iter()
            .filter_map(|line| line.sku.as_deref().map(|sku| (line, sku)))
            .map(|(line, sku)| {
                let quantity = line.quantity.max(1);
                Ok(RefundItem {
                    item: self.sku(sku, erp)?,
                    quantity,
                    unit_price: line
                        .amount
                        .checked_div(Decimal::from(quantity))
                        .ok_or_else(|| {
                            ErpError::rejected("a refund line's unit price does not fit a decimal")
                        })?,
                })
            })
            .collect()
    }

    /// The ERP customer of `event`: its email's entry, else the configured default.
    pub fn customer(&self, event: &OrderEvent) -> Option<&str> {
        event
            .customer
            .as_ref()
            .and_then(|c| c.email.as_deref())
            .and_then(|email| self.customers.get(&email.trim().to_lowercase()))
            .or(self.config.default_customer.as_ref())
            .map(String::as_str)
    }

    /// The dimension or location code of `event`'s sales channel.
    pub fn channel(&self, event: &OrderEvent) -> Option<&str> {
        let channels = &self.config.channels;
        channels
            .get(&format!("{}:{}", event.source, event.account))
            .or_else(|| channels.get(&event.source))
            .map(String::as_str)
    }

    /// `body` through the configured program (unchanged without one).
    ///
    /// # Errors
    /// Rejected when the program fails or gives no output.
    pub fn transform(&self, event: &OrderEvent, body: Value) -> Result<Value, ErpError> {
        let Some(program) = &self.program else {
            return Ok(body);
        };
        let order = serde_json::to_value(event)
            .map_err(|err| ErpError::rejected(format!("the order as JSON: {err}")))?;
        run(program, order, body)
            .map_err(|err| ErpError::rejected(format!("sink.mapping.program: {err}")))
    }
}

/// Compiles `program` with the standard library and `$order`.
fn compile(program: &str) -> Result<Program, String> {
    let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: program,
                path: (),
            },
        )
        .map_err(|errors| format!("the jq program does not parse: {errors:?}"))?;
    Compiler::default()
        .with_funs(jaq_std::funs().chain(jaq_json::funs()))
        .with_global_vars(["$order"])
        .compile(modules)
        .map_err(|errors| format!("the jq program does not compile: {errors:?}"))
}

/// Runs `filter` on `body` with `$order`; its first output.
fn run(filter: &Program, order: Value, body: Value) -> Result<Value, String> {
    let inputs = RcIter::new(core::iter::empty());
    let mut outputs = filter.run((Ctx::new([Val::from(order)], &inputs), Val::from(body)));
    match outputs.next() {
        Some(Ok(value)) => Ok(Value::from(value)),
        Some(Err(err)) => Err(err.to_string()),
        None => Err("the program gave no output".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> OrderEvent {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/shopify/orders-create-basic/expected.json"
        ))
        .unwrap_or_else(|err| panic!("fixture: {err}"))
    }

    fn mapping(toml_text: &str) -> Mapping {
        let config: MappingConfig =
            toml::from_str(toml_text).unwrap_or_else(|err| panic!("config: {err}"));
        Mapping::new(config).unwrap_or_else(|err| panic!("mapping: {err}"))
    }

    #[test]
    fn tables_map_items_customers_and_channels() {
        let event = order();
        let email = event
            .customer
            .as_ref()
            .and_then(|c| c.email.clone())
            .unwrap_or_default();
        let mapping = mapping(&format!(
            r#"
            items = {{ "IPOD2008GREEN" = "1896-S" }}
            customers = {{ "{}" = "C-7" }}
            default_customer = "10000"
            channels = {{ "shopify" = "WEB", "amazon" = "AMZ" }}
            "#,
            email.to_uppercase()
        ));
        assert_eq!(
            mapping.item(&event.line_items[0], "BC").ok().as_deref(),
            Some("1896-S")
        );
        assert_eq!(
            mapping.customer(&event),
            Some("C-7"),
            "emails match in any case"
        );
        assert_eq!(mapping.channel(&event), Some("WEB"));
        let mut stranger = event.clone();
        stranger.customer = None;
        assert_eq!(mapping.customer(&stranger), Some("10000"));
    }

    #[test]
    fn unmapped_skus_pass_or_are_rejected() {
        let event = order();
        let passing = mapping("");
        assert_eq!(
            passing.item(&event.line_items[0], "BC").ok().as_deref(),
            Some("IPOD2008GREEN")
        );
        let strict = mapping(r#"unmapped_items = "reject""#);
        let err = strict.item(&event.line_items[0], "BC");
        assert!(
            matches!(&err, Err(ErpError::Rejected { reason }) if reason.contains("IPOD2008GREEN")),
            "{err:?}"
        );
    }

    #[test]
    fn the_program_reshapes_the_body_with_the_order_at_hand() {
        let mapping = mapping(
            r#"program = '.comment = "Shopify " + $order.order_number | del(.currencyCode)'"#,
        );
        let body = mapping
            .transform(
                &order(),
                json!({ "currencyCode": "USD", "customerNumber": "10000" }),
            )
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            body,
            json!({ "customerNumber": "10000", "comment": "Shopify #1001" })
        );
    }

    #[test]
    fn a_broken_program_is_refused_at_start_and_a_failing_one_rejects_the_order() {
        let config = MappingConfig {
            program: Some(".items[".into()),
            ..MappingConfig::default()
        };
        assert!(Mapping::new(config).is_err());
        let failing = mapping(r#"program = 'error("no warehouse for this order")'"#);
        let err = failing.transform(&order(), json!({}));
        assert!(
            matches!(&err, Err(ErpError::Rejected { reason }) if reason.contains("no warehouse")),
            "{err:?}"
        );
    }
}
