//! Staging tables, `orders` and `order_lines`, in SQLite (default) or PostgreSQL (by URL).
//! Many ERPs import from such tables; it is also the `dev` target.
//!
//! The order key is the primary key. An event is applied only when its version is newer than
//! the stored one, in one transaction with its lines, so a redelivery is a no-op and an older
//! event never overwrites a newer one. The same SQL runs on both databases (`$n` parameters,
//! `ON CONFLICT … DO UPDATE … WHERE`). A partial (status-only) event updates the statuses of
//! an order already staged and is skipped for one that is not.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use orderbridge_schemas::{Address, OrderEvent};
use serde::Deserialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{ErpClient, ErpError, ErpSetupError, Upserted};

/// Staging database settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// `sqlite://path.db` or `postgres://user@host/db` (a password belongs in `PGPASSWORD`,
    /// not in the URL, since the URL is configuration).
    pub url: String,
}

impl Default for SqlConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://orderbridge.db".into(),
        }
    }
}

const CREATE_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (
    order_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    account TEXT NOT NULL,
    source_order_id TEXT NOT NULL,
    order_number TEXT,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    version BIGINT NOT NULL,
    currency TEXT NOT NULL,
    total TEXT NOT NULL,
    subtotal TEXT NOT NULL,
    tax TEXT NOT NULL,
    shipping TEXT NOT NULL,
    discount TEXT NOT NULL,
    customer_id TEXT,
    customer_email TEXT,
    customer_name TEXT,
    ship_to_name TEXT,
    ship_to_line1 TEXT,
    ship_to_city TEXT,
    ship_to_postal_code TEXT,
    ship_to_country_code TEXT,
    source_created_at TEXT,
    source_updated_at TEXT,
    raw_topic TEXT NOT NULL,
    raw_partition INTEGER NOT NULL,
    raw_offset BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

const CREATE_LINES: &str = "CREATE TABLE IF NOT EXISTS order_lines (
    order_key TEXT NOT NULL REFERENCES orders (order_key),
    line_no INTEGER NOT NULL,
    line_id TEXT,
    sku TEXT,
    title TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price TEXT NOT NULL,
    discount TEXT NOT NULL,
    tax TEXT NOT NULL,
    PRIMARY KEY (order_key, line_no)
)";

const SELECT_VERSION: &str = "SELECT version FROM orders WHERE order_key = $1";

const UPSERT_ORDER: &str = "INSERT INTO orders (
    order_key, source, account, source_order_id, order_number, event_type, status, payment_status,
    version, currency, total, subtotal, tax, shipping, discount, customer_id, customer_email,
    customer_name, ship_to_name, ship_to_line1, ship_to_city, ship_to_postal_code,
    ship_to_country_code, source_created_at, source_updated_at, raw_topic, raw_partition,
    raw_offset, event_id, received_at, applied_at
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
    $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)
ON CONFLICT (order_key) DO UPDATE SET
    order_number = excluded.order_number, event_type = excluded.event_type,
    status = excluded.status, payment_status = excluded.payment_status,
    version = excluded.version, currency = excluded.currency, total = excluded.total,
    subtotal = excluded.subtotal, tax = excluded.tax, shipping = excluded.shipping,
    discount = excluded.discount, customer_id = excluded.customer_id,
    customer_email = excluded.customer_email, customer_name = excluded.customer_name,
    ship_to_name = excluded.ship_to_name, ship_to_line1 = excluded.ship_to_line1,
    ship_to_city = excluded.ship_to_city, ship_to_postal_code = excluded.ship_to_postal_code,
    ship_to_country_code = excluded.ship_to_country_code,
    source_created_at = excluded.source_created_at, source_updated_at = excluded.source_updated_at,
    raw_topic = excluded.raw_topic, raw_partition = excluded.raw_partition,
    raw_offset = excluded.raw_offset, event_id = excluded.event_id,
    received_at = excluded.received_at, applied_at = excluded.applied_at
WHERE orders.version < excluded.version";

const DELETE_LINES: &str = "DELETE FROM order_lines WHERE order_key = $1";
/// A partial (status-only) event: the statuses it states (`UNKNOWN` keeps the stored one),
/// its version and lineage; totals, lines and the buyer stay as the full order left them.
const UPDATE_STATUS: &str = "UPDATE orders SET
    event_type = $2,
    status = CASE WHEN $3 = 'UNKNOWN' THEN status ELSE $3 END,
    payment_status = CASE WHEN $4 = 'UNKNOWN' THEN payment_status ELSE $4 END,
    version = $5, source_updated_at = COALESCE($6, source_updated_at),
    raw_topic = $7, raw_partition = $8, raw_offset = $9, event_id = $10, received_at = $11,
    applied_at = $12
WHERE order_key = $1 AND version < $5";

const INSERT_LINE: &str = "INSERT INTO order_lines
    (order_key, line_no, line_id, sku, title, quantity, unit_price, discount, tax)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The staging-table adapter.
#[derive(Debug, Clone)]
pub struct SqlErp {
    pool: Pool,
}

impl SqlErp {
    /// Opens the database (creating a SQLite file if missing) and creates the tables.
    ///
    /// # Errors
    /// When the database cannot be opened or the tables created.
    pub async fn connect(config: &SqlConfig) -> Result<Self, ErpSetupError> {
        let pool =
            if config.url.starts_with("postgres://") || config.url.starts_with("postgresql://") {
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(8)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect(&config.url)
                        .await?,
                )
            } else if config.url.starts_with("sqlite:") {
                let options = SqliteConnectOptions::from_str(&config.url)?
                    .create_if_missing(true)
                    // WAL lets readers (an ERP import, `sqlite3` in a shell) read while we write.
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10));
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .connect_with(options)
                        .await?,
                )
            } else {
                return Err(ErpSetupError::Config(format!(
                    "sink.erp.url must start with sqlite: or postgres:// (got a {}-character URL)",
                    config.url.len()
                )));
            };
        let erp = Self { pool };
        erp.create_tables().await?;
        Ok(erp)
    }

    async fn create_tables(&self) -> Result<(), sqlx::Error> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query(CREATE_ORDERS).execute(pool).await?;
                sqlx::query(CREATE_LINES).execute(pool).await?;
            }
            Pool::Postgres(pool) => {
                sqlx::query(CREATE_ORDERS).execute(pool).await?;
                sqlx::query(CREATE_LINES).execute(pool).await?;
            }
        }
        Ok(())
    }
}

/// Binds an order's columns in `UPSERT_ORDER` order onto any sqlx query.
macro_rules! bind_order {
    ($query:expr, $e:expr, $applied_at:expr) => {{
        let e: &OrderEvent = $e;
        let ship: Address = e.shipping_address.clone().unwrap_or_default();
        let customer = e.customer.clone();
        $query
            .bind(e.order_key.clone())
            .bind(e.source.clone())
            .bind(e.account.clone())
            .bind(e.source_order_id.clone())
            .bind(e.order_number.clone())
            .bind(e.event_type.as_str())
            .bind(e.status.as_str())
            .bind(e.payment_status.as_str())
            .bind(e.version)
            .bind(e.currency.clone())
            .bind(e.totals.total.to_string())
            .bind(e.totals.subtotal.to_string())
            .bind(e.totals.tax.to_string())
            .bind(e.totals.shipping.to_string())
            .bind(e.totals.discount.to_string())
            .bind(customer.as_ref().and_then(|c| c.id.clone()))
            .bind(customer.as_ref().and_then(|c| c.email.clone()))
            .bind(customer.as_ref().and_then(|c| c.name.clone()))
            .bind(ship.name)
            .bind(ship.line1)
            .bind(ship.city)
            .bind(ship.postal_code)
            .bind(ship.country_code)
            .bind(e.source_created_at.map(|t| t.to_rfc3339()))
            .bind(e.source_updated_at.map(|t| t.to_rfc3339()))
            .bind(e.lineage.raw_topic.clone())
            .bind(e.lineage.raw_partition)
            .bind(e.lineage.raw_offset)
            .bind(e.lineage.event_id.clone())
            .bind(e.lineage.received_at.to_rfc3339())
            .bind($applied_at)
    }};
}

/// One upsert, written once for both databases: `$tx` is an open transaction.
macro_rules! upsert_in {
    ($tx:expr, $event:expr) => {{
        let event: &OrderEvent = $event;
        let stored: Option<i64> = sqlx::query_scalar(SELECT_VERSION)
            .bind(&event.order_key)
            .fetch_optional(&mut *$tx)
            .await
            .map_err(db_error)?;
        match stored {
            Some(version) if version == event.version => Ok(Upserted::AlreadyPresent),
            Some(version) if version > event.version => Ok(Upserted::Stale),
            // A status for an order the staging tables do not hold: there is nothing to
            // update, and a row of zero totals would mislead an import. It waits for the
            // full order (the delivery engine holds it, then dead-letters it).
            None if event.partial => Ok(Upserted::NotHeld),
            Some(_) if event.partial => {
                let written = sqlx::query(UPDATE_STATUS)
                    .bind(&event.order_key)
                    .bind(event.event_type.as_str())
                    .bind(event.status.as_str())
                    .bind(event.payment_status.as_str())
                    .bind(event.version)
                    .bind(event.source_updated_at.map(|t| t.to_rfc3339()))
                    .bind(event.lineage.raw_topic.clone())
                    .bind(event.lineage.raw_partition)
                    .bind(event.lineage.raw_offset)
                    .bind(event.lineage.event_id.clone())
                    .bind(event.lineage.received_at.to_rfc3339())
                    .bind(chrono::Utc::now().to_rfc3339())
                    .execute(&mut *$tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(if written == 0 {
                    Upserted::Stale
                } else {
                    Upserted::Updated
                })
            }
            _ => {
                let applied_at = chrono::Utc::now().to_rfc3339();
                let written = bind_order!(sqlx::query(UPSERT_ORDER), event, applied_at)
                    .execute(&mut *$tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                if written == 0 {
                    // Another writer got a newer version in between.
                    return Ok(Upserted::Stale);
                }
                sqlx::query(DELETE_LINES)
                    .bind(&event.order_key)
                    .execute(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                for (index, line) in event.line_items.iter().enumerate() {
                    sqlx::query(INSERT_LINE)
                        .bind(&event.order_key)
                        .bind(i64::try_from(index + 1).unwrap_or(i64::MAX))
                        .bind(line.line_id.clone())
                        .bind(line.sku.clone())
                        .bind(line.title.clone())
                        .bind(line.quantity)
                        .bind(line.unit_price.to_string())
                        .bind(line.discount.to_string())
                        .bind(line.tax.to_string())
                        .execute(&mut *$tx)
                        .await
                        .map_err(db_error)?;
                }
                Ok(if stored.is_some() {
                    Upserted::Updated
                } else {
                    Upserted::Created
                })
            }
        }
    }};
}

#[async_trait]
impl ErpClient for SqlErp {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn default_max_in_flight(&self) -> usize {
        16
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                // The write lock up front: a deferred transaction reads, then cannot become a
                // writer while another wrote meanwhile, and SQLite fails it at once ("database
                // is locked") instead of waiting out `busy_timeout`. Taken first, the lock is
                // waited for, and concurrent upserts go one after the other.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
                let result: Result<Upserted, ErpError> = upsert_in!(tx, event);
                tx.commit().await.map_err(db_error)?;
                result
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(db_error)?;
                let result: Result<Upserted, ErpError> = upsert_in!(tx, event);
                tx.commit().await.map_err(db_error)?;
                result
            }
        }
    }
}

/// Database errors: constraint and data errors are this order's fault; everything else
/// (connection, pool, lock timeouts, I/O) is transient. `sqlx::Error` is non-exhaustive, so
/// the rest is matched by a wildcard, and the safe side of an unknown error is "retry".
#[allow(clippy::wildcard_enum_match_arm)]
fn db_error(err: sqlx::Error) -> ErpError {
    match &err {
        sqlx::Error::Database(db)
            if db.is_check_violation()
                || db.is_foreign_key_violation()
                || db.is_unique_violation() =>
        {
            ErpError::rejected(format!("database refused the order: {db}"))
        }
        _ => ErpError::transient(format!("database: {err}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::{TimeZone, Utc};
    use orderbridge_schemas::*;
    use rust_decimal::Decimal;

    pub(crate) fn event(version: i64, total: &str, lines: usize) -> OrderEvent {
        let money = |s: &str| Decimal::from_str(s).unwrap();
        OrderEvent {
            order_key: "shopify:shop.myshopify.com:1001".into(),
            source: "shopify".into(),
            account: "shop.myshopify.com".into(),
            source_order_id: "1001".into(),
            order_number: Some("#1001".into()),
            event_type: EventType::Created,
            status: OrderStatus::Open,
            payment_status: PaymentStatus::Paid,
            version,
            currency: "USD".into(),
            totals: Totals {
                total: money(total),
                subtotal: money(total),
                tax: money("0"),
                shipping: money("0"),
                discount: money("0"),
            },
            line_items: (0..lines)
                .map(|i| LineItem {
                    line_id: Some(i.to_string()),
                    sku: Some(format!("SKU-{i}")),
                    title: "Thing".into(),
                    quantity: 1,
                    unit_price: money("1.50"),
                    discount: money("0"),
                    tax: money("0"),
                })
                .collect(),
            customer: None,
            shipping_address: None,
            billing_address: None,
            source_created_at: None,
            source_updated_at: None,
            attribution: None,
            lineage: Lineage {
                raw_topic: "orders.raw.v1".into(),
                raw_partition: 0,
                raw_offset: version,
                event_id: format!("e{version}"),
                received_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
                origin: "webhook".into(),
            },
            partial: false,
            source_created_at_original: None,
            source_updated_at_original: None,
            shipment: None,
            refund: None,
        }
    }

    async fn erp() -> (SqlErp, SqlitePool, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("staging.db").display());
        let erp = SqlErp::connect(&SqlConfig { url: url.clone() })
            .await
            .unwrap();
        let Pool::Sqlite(pool) = erp.pool.clone() else {
            panic!("sqlite")
        };
        (erp, pool, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_upserts_of_different_orders_all_succeed() {
        // The sink runs up to 16 upserts at once. Each reads what the database holds, then
        // writes; on SQLite, two transactions that both read before either writes cannot both
        // go on, and one of them failed at once ("database is locked") without waiting.
        let (erp, pool, _dir) = erp().await;
        let erp = std::sync::Arc::new(erp);
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..16 {
            let erp = std::sync::Arc::clone(&erp);
            tasks.spawn(async move {
                let mut failures = Vec::new();
                for n in 0..25 {
                    let mut order = event(1, "10.00", 2);
                    order.order_key = format!("shopify:shop.myshopify.com:{task}-{n}");
                    if let Err(err) = erp.upsert(&order).await {
                        failures.push(err.to_string());
                    }
                }
                failures
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = tasks.join_next().await {
            failures.extend(done.unwrap());
        }
        assert!(
            failures.is_empty(),
            "{} of 400 upserts failed: {:?}",
            failures.len(),
            failures.first()
        );
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 400);
    }

    #[tokio::test]
    async fn creates_once_and_treats_a_redelivery_as_present() {
        let (erp, pool, _dir) = erp().await;
        assert_eq!(
            erp.upsert(&event(1, "10.00", 2)).await.unwrap(),
            Upserted::Created
        );
        assert_eq!(
            erp.upsert(&event(1, "10.00", 2)).await.unwrap(),
            Upserted::AlreadyPresent
        );
        let (orders, lines): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_lines)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((orders, lines), (1, 2));
        let total: String = sqlx::query_scalar("SELECT total FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(total, "10.00", "money is stored exactly, as text");
    }

    #[tokio::test]
    async fn a_newer_version_replaces_lines_and_an_older_one_is_refused() {
        let (erp, pool, _dir) = erp().await;
        erp.upsert(&event(5, "10.00", 3)).await.unwrap();
        assert_eq!(
            erp.upsert(&event(7, "12.00", 1)).await.unwrap(),
            Upserted::Updated
        );
        assert_eq!(
            erp.upsert(&event(6, "11.00", 2)).await.unwrap(),
            Upserted::Stale
        );
        let (version, total): (i64, String) = sqlx::query_as("SELECT version, total FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((version, total.as_str()), (7, "12.00"));
        let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_lines")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(lines, 1);
    }

    #[tokio::test]
    async fn a_partial_event_updates_statuses_only_and_waits_for_the_order() {
        let (erp, pool, _dir) = erp().await;
        let mut status = event(3, "0", 0);
        status.partial = true;
        status.currency = "XXX".into();
        status.event_type = orderbridge_schemas::EventType::Cancelled;
        status.status = orderbridge_schemas::OrderStatus::Cancelled;
        status.payment_status = orderbridge_schemas::PaymentStatus::Unknown;
        assert_eq!(erp.upsert(&status).await.unwrap(), Upserted::NotHeld);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 0, "no row of zero totals");

        erp.upsert(&event(2, "10.00", 2)).await.unwrap();
        assert_eq!(erp.upsert(&status).await.unwrap(), Upserted::Updated);
        let row: (String, String, String, i64, String) =
            sqlx::query_as("SELECT status, payment_status, currency, version, total FROM orders")
                .fetch_one(&pool)
                .await
                .unwrap();
        let before = event(2, "10.00", 2);
        assert_eq!(
            row,
            (
                "CANCELLED".to_owned(),
                before.payment_status.as_str().to_owned(),
                before.currency.clone(),
                3,
                "10.00".to_owned()
            ),
            "status applied; UNKNOWN payment kept; currency and totals untouched"
        );
        let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_lines")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(lines, 2);
        assert_eq!(erp.upsert(&status).await.unwrap(), Upserted::AlreadyPresent);
        let mut older = status.clone();
        older.version = 1;
        assert_eq!(erp.upsert(&older).await.unwrap(), Upserted::Stale);
    }

    #[tokio::test]
    async fn refuses_an_unknown_url_scheme() {
        let err = SqlErp::connect(&SqlConfig {
            url: "mysql://x".into(),
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("sqlite:"), "{err}");
    }
}
