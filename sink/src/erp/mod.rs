//! ERP adapters behind one trait, [`ErpClient`], plus what they share: the response status
//! table (`status.rs`), the external reference derived from the order key
//! (`reference.rs`) and the marketing attribution as ERPs hold it (`attribution.rs`).
//!
//! Adding an ERP: a file here implementing [`ErpClient`], its arm in [`ErpConfig`] and
//! [`build`], and a simulator under `tests/` that follows the ERP's documented contract.

pub mod attribution;
pub mod business_central;
pub mod http;
pub mod netsuite;
pub mod odoo;
pub mod reference;
pub mod sap_business_one;
pub mod sql;
pub mod status;
mod token;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orderbridge_schemas::OrderEvent;
use serde::Deserialize;

pub use reference::external_reference;

/// What an ERP holds of an order, as far as the decision table cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Held {
    /// The canonical version the sink last wrote to it; `None` when the ERP record carries
    /// none (written by hand, or before the version field was set up).
    pub version: Option<i64>,
    /// Whether the ERP record is cancelled.
    pub cancelled: bool,
    /// Whether the ERP already booked the order into a document that takes no more changes
    /// (Business Central: the order was shipped and invoiced, only the posted invoice is
    /// left). Only refunds still apply.
    pub posted: bool,
}

/// What an ERP adapter does with an event, given what the ERP holds of its order: the same
/// rules for every ERP that is looked up by reference before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Create the order (it is not there, and the event carries a whole order).
    Create,
    /// Bring the order the ERP holds to this event's whole state (lines included) and version.
    Update,
    /// Record this status-only event's version (and status, where the ERP has a place for
    /// it) on the order the ERP holds; lines and prices stay.
    UpdateStatus,
    /// Cancel the order the ERP holds.
    Cancel,
    /// Book the event's refund against the order the ERP holds.
    Refund,
    /// Nothing to write: the outcome as it stands.
    Nothing(Upserted),
}

/// The [`Action`] for `event` when the ERP holds its order as `held`, or not at all.
///
/// The version guard lives here: an event older than the version the ERP holds is `Stale`,
/// the same version is a redelivery (`AlreadyPresent`). Refunds are exempt: each is a
/// document of its own, found by its own reference, whatever the order's version.
pub(crate) fn action(event: &OrderEvent, held: Option<Held>) -> Action {
    use orderbridge_schemas::{EventType, OrderStatus};
    let Some(held) = held else {
        // What cannot apply to an order the ERP does not hold waits for the order: the
        // delivery engine applies it once the order is there, or dead-letters it as
        // `order-unknown` (never committed away: a later or replayed create would otherwise
        // bring back a cancelled order, and a refund would be lost).
        return match event.event_type {
            // Nothing to cancel or refund yet.
            EventType::Cancelled | EventType::Refunded => Action::Nothing(Upserted::NotHeld),
            // Nor to create an order as cancelled: it stays out, unless its create comes.
            EventType::Created | EventType::Updated | EventType::Fulfilled | EventType::Unknown
                if event.status == OrderStatus::Cancelled =>
            {
                Action::Nothing(Upserted::NotHeld)
            }
            // A status-only event cannot create an order: it has no lines or prices.
            EventType::Created | EventType::Updated | EventType::Fulfilled | EventType::Unknown
                if event.partial =>
            {
                Action::Nothing(Upserted::NotHeld)
            }
            EventType::Created | EventType::Updated | EventType::Fulfilled | EventType::Unknown => {
                Action::Create
            }
        };
    };
    if event.event_type == EventType::Refunded {
        return Action::Refund;
    }
    if held.posted {
        return Action::Nothing(if event.event_type == EventType::Created {
            Upserted::AlreadyPresent
        } else {
            Upserted::Skipped
        });
    }
    match held.version {
        Some(version) if event.version < version => return Action::Nothing(Upserted::Stale),
        Some(version) if event.version == version => {
            return Action::Nothing(Upserted::AlreadyPresent)
        }
        Some(_) | None => {}
    }
    let cancels =
        event.event_type == EventType::Cancelled || event.status == OrderStatus::Cancelled;
    match (cancels, held.cancelled) {
        (true, true) => Action::Nothing(Upserted::AlreadyPresent),
        (true, false) => Action::Cancel,
        // A cancelled ERP document takes no further changes.
        (false, true) => Action::Nothing(Upserted::Skipped),
        (false, false) if event.partial => Action::UpdateStatus,
        (false, false) => Action::Update,
    }
}

/// A refund's own reference: the order's reference and the refund's id, or a hash of the id
/// when it would not fit in `max` characters or is not plain. Stable, so a redelivered refund
/// finds the document its first delivery made.
pub(crate) fn refund_reference(order_reference: &str, refund_id: &str, max: usize) -> String {
    use sha2::{Digest, Sha256};
    let plain = refund_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let candidate = format!("{order_reference}-R-{refund_id}");
    if plain && !refund_id.is_empty() && candidate.len() <= max {
        candidate
    } else {
        let hash = hex::encode_upper(&Sha256::digest(refund_id.as_bytes())[..8]);
        let hashed = format!("{order_reference}-R-H{hash}");
        if hashed.len() <= max {
            hashed
        } else {
            // Too long even so (Business Central's 35): a hash of both.
            let both = Sha256::digest(format!("{order_reference}\n{refund_id}").as_bytes());
            format!("R-H{}", hex::encode_upper(&both[..12]))
        }
    }
}

/// The version the sink stamped into `field` of an ERP record (a text field: versions do not
/// fit the 32-bit numbers some ERPs offer); `None` when unset, empty or not a number.
pub(crate) fn read_version(record: &serde_json::Value, field: &str) -> Option<i64> {
    record.get(field)?.as_str()?.trim().parse().ok()
}

/// Writes `event`'s version into `field` of a request body; nothing when `field` is empty
/// (no version guard configured).
pub(crate) fn stamp_version(body: &mut serde_json::Value, field: &str, event: &OrderEvent) {
    if !field.is_empty() {
        body[field] = serde_json::Value::String(event.version.to_string());
    }
}

/// The line's discount as a percentage of its gross amount (to four places), for ERPs that
/// take a percentage; `None` when there is no discount.
///
/// # Errors
/// Rejected when the amounts do not fit a decimal: a canonical record is data from outside
/// the sink (any producer may write the topic), and `rust_decimal`'s operators panic.
pub(crate) fn discount_percent(
    line: &orderbridge_schemas::LineItem,
) -> Result<Option<rust_decimal::Decimal>, ErpError> {
    use rust_decimal::Decimal;
    let gross = line
        .unit_price
        .checked_mul(Decimal::from(line.quantity))
        .ok_or_else(|| {
            ErpError::rejected("a line's quantity × unit price does not fit a decimal")
        })?;
    if line.discount.is_zero() || gross.is_zero() {
        return Ok(None);
    }
    line.discount
        .checked_div(gross)
        .and_then(|share| share.checked_mul(Decimal::ONE_HUNDRED))
        .map(|percent| Some(percent.round_dp(4)))
        .ok_or_else(|| ErpError::rejected("a line's discount percentage does not fit a decimal"))
}

/// Every remote adapter's default `request_timeout_ms`: 30 s.
pub(crate) fn default_request_timeout_ms() -> u64 {
    30_000
}

/// The HTTP client of an ERP adapter: one per adapter (it pools connections), every request
/// bounded by `timeout_ms` so a stalled ERP becomes a transient error, not a stuck sink.
pub(crate) fn http_client(timeout_ms: u64) -> Result<reqwest::Client, ErpSetupError> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .build()?)
}

/// A decimal as a JSON number, written from its decimal text, never through a float.
pub(crate) fn json_number(amount: rust_decimal::Decimal) -> serde_json::Value {
    serde_json::from_str(&amount.normalize().to_string()).unwrap_or(serde_json::Value::Null)
}

/// The OData filter `<field> eq '<value>'`, the quote escaped by doubling it, so the filter
/// stays well-formed whatever the value.
pub(crate) fn odata_eq(field: &str, value: &str) -> String {
    format!("{field} eq '{}'", value.replace('\'', "''"))
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The order was created.
    Created,
    /// The order existed and was brought up to this event's version.
    Updated,
    /// The order already holds this event (a redelivery): nothing to do.
    AlreadyPresent,
    /// The ERP holds a newer version; this older event was not applied.
    Stale,
    /// Nothing to apply for this event in this ERP (a change of an order the ERP booked
    /// into a document that takes no more, or of a cancelled one).
    Skipped,
    /// The ERP does not hold this event's order, and the event cannot create it (a
    /// cancellation, a refund, a status): nothing was written. The delivery engine keeps the
    /// record open until the order arrives, then applies it again; or dead-letters it as
    /// `order-unknown` when the order does not come in time.
    NotHeld,
}

impl Upserted {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Upserted::Created => "created",
            Upserted::Updated => "updated",
            Upserted::AlreadyPresent => "already_present",
            Upserted::Stale => "stale",
            Upserted::Skipped => "skipped",
            Upserted::NotHeld => "not_held",
        }
    }
}

/// Why an upsert failed, classified once, here, by what the delivery loop must do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErpError {
    /// Worth retrying: timeouts, connection failures, 408, 429, 5xx, maintenance. The record
    /// is not committed; it is retried after a backoff of at least `retry_after`.
    #[error("transient ERP failure: {reason}")]
    Transient {
        /// What happened, with the ERP's own message when it sent one.
        reason: String,
        /// The ERP's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// Whose trouble it is: this request's, or the whole ERP's.
        cause: Cause,
    },
    /// The ERP refused this order (validation, unknown item, no customer): retrying cannot
    /// help. The record is dead-lettered with the reason, then committed.
    #[error("ERP rejected the order: {reason}")]
    Rejected {
        /// The ERP's own message.
        reason: String,
    },
}

/// Whose trouble a transient failure is. The delivery engine treats them differently: ERP-wide
/// trouble opens the breaker and never counts against a record; throttling shrinks the
/// concurrency; only a request's own failures count towards parking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// This request failed (a 500, a garbled answer) while the ERP may be fine otherwise.
    Request,
    /// The ERP asks us to slow down (429).
    Throttled,
    /// The ERP as a whole cannot serve: maintenance (502, 503, 504), unreachable, timing
    /// out, or refusing our credentials.
    Unavailable,
}

impl Cause {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Request => "transient",
            Cause::Throttled => "throttled",
            Cause::Unavailable => "unavailable",
        }
    }
}

impl ErpError {
    /// A transient failure of this request, without a retry hint.
    pub fn transient(reason: impl Into<String>) -> Self {
        ErpError::Transient {
            reason: reason.into(),
            retry_after: None,
            cause: Cause::Request,
        }
    }

    /// The ERP as a whole is unavailable (maintenance, unreachable, credentials refused).
    pub fn unavailable(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ErpError::Transient {
            reason: reason.into(),
            retry_after,
            cause: Cause::Unavailable,
        }
    }

    /// A permanent rejection.
    pub fn rejected(reason: impl Into<String>) -> Self {
        ErpError::Rejected {
            reason: reason.into(),
        }
    }
}

/// One ERP.
#[async_trait]
pub trait ErpClient: Send + Sync {
    /// Short name for logs and metric labels (`sql`, `business-central`).
    fn name(&self) -> &'static str;

    /// Most calls at once when the configuration does not say: what the ERP documents it
    /// takes from one client.
    fn default_max_in_flight(&self) -> usize {
        8
    }

    /// Whether this ERP answering slower means it is loaded, so that the adaptive limit
    /// shrinks as its latency grows. True for an ERP behind a network. False for a database
    /// the sink writes through one writer (SQLite): there, latency grows under concurrency
    /// only because the sink's own calls queue for the writer, and fewer calls would only
    /// shrink its group commits.
    fn latency_signals_load(&self) -> bool {
        true
    }

    /// The request that creates `event`'s order, as it would be sent, without sending
    /// anything (`orderbridge mapping test`).
    ///
    /// # Errors
    /// Rejected when the event cannot be mapped, or the adapter has no single create request.
    fn preview(&self, event: &OrderEvent) -> Result<Preview, ErpError> {
        let _ = event;
        Err(ErpError::rejected(format!(
            "{} has no request to preview",
            self.name()
        )))
    }

    /// Applies `event` so that, however often it is called with the same event, the ERP
    /// ends up holding the order once, at the newest version seen.
    ///
    /// # Errors
    /// [`ErpError`], classified.
    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError>;
}

/// A request an adapter would send.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// HTTP method.
    pub method: &'static str,
    /// Full URL.
    pub url: String,
    /// JSON body.
    pub body: serde_json::Value,
}

impl std::fmt::Display for Preview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = serde_json::to_string_pretty(&self.body).map_err(|_| std::fmt::Error)?;
        write!(f, "{} {}\n{body}", self.method, self.url)
    }
}

/// Which ERP the sink writes to.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ErpConfig {
    /// Staging tables in SQLite or PostgreSQL.
    Sql(sql::SqlConfig),
    /// Dynamics 365 Business Central API v2.0.
    BusinessCentral(business_central::BusinessCentralConfig),
    /// SAP Business One Service Layer.
    SapBusinessOne(sap_business_one::SapBusinessOneConfig),
    /// NetSuite SuiteTalk REST.
    Netsuite(netsuite::NetSuiteConfig),
    /// Odoo over JSON-RPC.
    Odoo(odoo::OdooConfig),
    /// A plain HTTP receiver: `PUT` per order with an `Idempotency-Key`.
    Http(http::HttpConfig),
}

impl Default for ErpConfig {
    fn default() -> Self {
        ErpConfig::Sql(sql::SqlConfig::default())
    }
}

impl ErpConfig {
    /// The `kind` as written in configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            ErpConfig::Sql(_) => "sql",
            ErpConfig::BusinessCentral(_) => "business-central",
            ErpConfig::SapBusinessOne(_) => "sap-business-one",
            ErpConfig::Netsuite(_) => "netsuite",
            ErpConfig::Odoo(_) => "odoo",
            ErpConfig::Http(_) => "http",
        }
    }
}

/// Builds the configured ERP client, applying `mapping` to what it sends (the SQL staging
/// tables hold the canonical order as it is and take no mapping).
///
/// # Errors
/// When the ERP cannot be set up (database unreachable, bad URL, unreadable key).
pub async fn build(
    config: &ErpConfig,
    mapping: Arc<crate::mapping::Mapping>,
) -> Result<Arc<dyn ErpClient>, ErpSetupError> {
    Ok(match config {
        ErpConfig::Sql(sql) => Arc::new(sql::SqlErp::connect(sql).await?),
        remote @ (ErpConfig::BusinessCentral(_)
        | ErpConfig::SapBusinessOne(_)
        | ErpConfig::Netsuite(_)
        | ErpConfig::Odoo(_)
        | ErpConfig::Http(_)) => build_remote(remote, mapping)?,
    })
}

/// Builds an ERP client that talks HTTP: no connection is made until the first call.
///
/// # Errors
/// When the configuration is unusable; `sql` is not one of these.
pub fn build_remote(
    config: &ErpConfig,
    mapping: Arc<crate::mapping::Mapping>,
) -> Result<Arc<dyn ErpClient>, ErpSetupError> {
    Ok(match config {
        ErpConfig::Sql(_) => {
            return Err(ErpSetupError::Config(
                "sql staging tables take no mapping and send no requests".into(),
            ))
        }
        ErpConfig::BusinessCentral(bc) => {
            Arc::new(business_central::BusinessCentral::new(bc.clone())?.with_mapping(mapping))
        }
        ErpConfig::SapBusinessOne(sap) => {
            Arc::new(sap_business_one::SapBusinessOne::new(sap.clone())?.with_mapping(mapping))
        }
        ErpConfig::Netsuite(netsuite) => {
            Arc::new(netsuite::NetSuite::new(netsuite.clone())?.with_mapping(mapping))
        }
        ErpConfig::Odoo(odoo) => Arc::new(odoo::Odoo::new(odoo.clone())?.with_mapping(mapping)),
        ErpConfig::Http(http) => Arc::new(http::HttpErp::new(http.clone())?.with_mapping(mapping)),
    })
}

/// Why an ERP client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ErpSetupError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn event(event_type: orderbridge_schemas::EventType, partial: bool) -> OrderEvent {
        let mut event: OrderEvent = serde_json::from_str(include_str!(
            "../../../tests/fixtures/shopify/orders-create-basic/expected.json"
        ))
        .unwrap_or_else(|err| panic!("fixture: {err}"));
        event.event_type = event_type;
        event.partial = partial;
        event
    }

    #[test]
    fn one_decision_table_for_every_looked_up_erp() {
        use orderbridge_schemas::EventType::*;
        let nothing = Action::Nothing;
        let base = event(Created, false).version;
        let at = |version: i64| {
            Some(Held {
                version: Some(version),
                ..Held::default()
            })
        };
        let cancelled = Some(Held {
            version: Some(base - 1),
            cancelled: true,
            posted: false,
        });
        let unversioned = Some(Held::default());
        let posted = Some(Held {
            posted: true,
            ..Held::default()
        });
        for (event_type, partial, held, expected) in [
            // Not held.
            (Created, false, None, Action::Create),
            (Updated, false, None, Action::Create),
            (Updated, true, None, nothing(Upserted::NotHeld)),
            (Cancelled, false, None, nothing(Upserted::NotHeld)),
            // Posted: only refunds still apply.
            (Created, false, posted, nothing(Upserted::AlreadyPresent)),
            (Updated, false, posted, nothing(Upserted::Skipped)),
            (Cancelled, false, posted, nothing(Upserted::Skipped)),
            (Refunded, true, posted, Action::Refund),
            (Refunded, true, None, nothing(Upserted::NotHeld)),
            // Held: the version guard.
            (Created, false, at(base), nothing(Upserted::AlreadyPresent)),
            (Updated, false, at(base + 1), nothing(Upserted::Stale)),
            (Cancelled, false, at(base + 1), nothing(Upserted::Stale)),
            (Updated, false, at(base - 1), Action::Update),
            (Updated, false, unversioned, Action::Update),
            (Updated, true, at(base - 1), Action::UpdateStatus),
            (Fulfilled, true, at(base - 1), Action::UpdateStatus),
            (Cancelled, false, at(base - 1), Action::Cancel),
            // Refunds are their own documents, never stale.
            (Refunded, true, at(base + 1), Action::Refund),
            // A cancelled document takes nothing but its own redelivery.
            (
                Cancelled,
                false,
                cancelled,
                nothing(Upserted::AlreadyPresent),
            ),
            (Updated, false, cancelled, nothing(Upserted::Skipped)),
        ] {
            assert_eq!(
                action(&event(event_type, partial), held),
                expected,
                "{event_type:?} partial={partial} held={held:?}"
            );
        }
        // An update whose status is cancelled cancels.
        let mut update = event(Updated, false);
        update.status = orderbridge_schemas::OrderStatus::Cancelled;
        assert_eq!(action(&update, at(base - 1)), Action::Cancel);
        assert_eq!(action(&update, None), nothing(Upserted::NotHeld));
    }

    #[test]
    fn refund_references_fit_and_stay_distinct() {
        let order = "SHOP-CAZHE1JD14-450789469";
        assert_eq!(
            refund_reference(order, "509562969", 100),
            "SHOP-CAZHE1JD14-450789469-R-509562969"
        );
        let long = "r".repeat(120);
        let hashed = refund_reference(order, &long, 100);
        assert!(hashed.len() <= 100, "{hashed}");
        assert_ne!(
            refund_reference(order, "a/b", 100),
            refund_reference(order, "a.b", 100)
        );
        let tight = refund_reference("SHOP-CAZHE1JD14-H0123456789ABCDEFG", "509562969", 35);
        assert!(tight.len() <= 35, "{tight}");
        assert_ne!(
            tight,
            refund_reference("SHOP-CAZHE1JD14-H0123456789ABCDEFG", "509562970", 35)
        );
    }

    #[test]
    fn a_discount_of_amounts_that_do_not_fit_is_rejected_not_a_panic() {
        let mut line = event(orderbridge_schemas::EventType::Created, false).line_items[0].clone();
        line.discount = rust_decimal::Decimal::ONE;
        assert!(matches!(discount_percent(&line), Ok(Some(_))));
        // Any producer may write the canonical topic: a quantity is any long there.
        line.quantity = i64::MAX;
        line.unit_price = rust_decimal::Decimal::from(99_999_999_999_999_i64);
        assert!(matches!(
            discount_percent(&line),
            Err(ErpError::Rejected { .. })
        ));
    }

    #[test]
    fn attribution_settings_parse_with_their_defaults_and_refuse_unknown_keys() {
        let parse = |text: &str| toml::from_str::<ErpConfig>(text);
        let bc = r#"kind = "business-central"
            tenant_id = "t"
            environment = "production"
            company_id = "c"
            client_id = "i"
            client_secret = { env = "PATH" }
            default_customer_number = "10000""#;
        let Ok(ErpConfig::BusinessCentral(config)) = parse(bc) else {
            panic!("business central")
        };
        assert!(config.attribution_comment, "on unless turned off");
        let odoo = r#"kind = "odoo"
            url = "https://odoo.example"
            database = "db"
            login = "api"
            api_key = { env = "PATH" }
            default_partner_id = 42"#;
        let Ok(ErpConfig::Odoo(config)) = parse(odoo) else {
            panic!("odoo")
        };
        assert_eq!(config.attribution_touch, attribution::Touch::Last);
        assert_eq!(config.attribution_note_field, "");
        let Ok(ErpConfig::Odoo(config)) = parse(&format!(
            "{odoo}\nattribution_touch = \"first\"\nattribution_note_field = \"x_ob\""
        )) else {
            panic!("odoo, first touch")
        };
        assert_eq!(config.attribution_touch, attribution::Touch::First);
        assert_eq!(config.attribution_note_field, "x_ob");
        let sap = r#"kind = "sap-business-one"
            service_layer_url = "https://b1.example/b1s/v2"
            company_db = "SBODEMOUS"
            username = "manager"
            password = { env = "PATH" }
            default_card_code = "C20000""#;
        let Ok(ErpConfig::SapBusinessOne(config)) = parse(sap) else {
            panic!("sap")
        };
        assert_eq!(
            config.attribution_fields,
            attribution::AttributionFields::default()
        );
        let fields = r#"attribution_fields = { first_touch = "U_A", touchpoints = "U_T" }"#;
        let Ok(ErpConfig::SapBusinessOne(config)) = parse(&format!("{sap}\n{fields}")) else {
            panic!("sap with fields")
        };
        assert_eq!(config.attribution_fields.first_touch, "U_A");
        assert_eq!(
            config.attribution_fields.last_touch, "",
            "left out: not written"
        );
        assert!(
            parse(&format!(
                "{sap}\nattribution_fields = {{ first = \"U_A\" }}"
            ))
            .is_err(),
            "a misspelt key is refused, not ignored"
        );
        assert!(parse(&format!("{odoo}\nattribution_touch = \"middle\"")).is_err());
    }

    #[test]
    fn odata_filters_escape_quotes_and_numbers_keep_their_digits() {
        assert_eq!(odata_eq("NumAtCard", "O'Brien"), "NumAtCard eq 'O''Brien'");
        let amount = rust_decimal::Decimal::from_str("210.9400").unwrap_or_default();
        assert_eq!(json_number(amount).to_string(), "210.94");
    }
}
