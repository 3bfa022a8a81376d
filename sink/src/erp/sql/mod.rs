//! Staging tables, `orders`, `order_lines` and `order_touchpoints`, in SQLite (default) or
//! PostgreSQL (by URL). Many ERPs import from such tables; it is also the `dev` target.
//!
//! The order key is the primary key. An event is applied only when its version is newer than
//! the stored one, in one transaction with its lines, so a redelivery is a no-op and an older
//! event never overwrites a newer one. The same SQL runs on both databases (`$n` parameters,
//! `ON CONFLICT … DO UPDATE … WHERE`). A partial (status-only) event updates the statuses of
//! an order already staged and is skipped for one that is not.
//!
//! Marketing attribution: the first and last touch (channel, campaign, source, medium) are
//! columns of `orders`, every touchpoint with its credit share a row of `order_touchpoints`.
//! An event that carries attribution replaces them, in the same transaction as the rest of
//! its write; one without leaves them (see `erp/attribution.rs`). A late attribution is a
//! partial event, so it changes the attribution, the version and the lineage of the staged
//! order and nothing else.
//!
//! Layout: `schema.rs` creates the tables and upgrades those of an older release;
//! `tests.rs` holds this adapter's tests.

mod schema;
mod stage;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use orderbridge_schemas::OrderEvent;
use serde::Deserialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

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
/// (The attribution it may carry is written next, by `attribution_in!`.)
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

/// An event's attribution: its first and last touch (a touch it does not name is cleared).
const UPDATE_TOUCHES: &str = "UPDATE orders SET
    first_touch_channel = $2, first_touch_campaign = $3, first_touch_source = $4,
    first_touch_medium = $5, last_touch_channel = $6, last_touch_campaign = $7,
    last_touch_source = $8, last_touch_medium = $9
WHERE order_key = $1";

const DELETE_TOUCHPOINTS: &str = "DELETE FROM order_touchpoints WHERE order_key = $1";

const INSERT_TOUCHPOINT: &str = "INSERT INTO order_touchpoints
    (order_key, position, channel, campaign, source, medium, occurred_at, credit_share)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

#[derive(Debug, Clone)]
enum Pool {
    /// SQLite: every write goes through the one writer thread (`writer.rs`).
    Sqlite(writer::Writer),
    Postgres(PgPool),
}

/// The staging-table adapter.
#[derive(Debug, Clone)]
pub struct SqlErp {
    pool: Pool,
}

impl SqlErp {
    /// Opens the database (creating a SQLite file if missing), creates the tables and adds
    /// the columns a database of an older release lacks.
    ///
    /// # Errors
    /// When the database cannot be opened or the tables created or upgraded.
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
                // The writer writes on a connection of its own (`writer.rs`), and an in-memory
                // database is one per connection: it would write where no table is.
                if config.url.contains(":memory:") || config.url.contains("mode=memory") {
                    return Err(ErpSetupError::Config(
                        "sink.erp.url: an in-memory SQLite database is not supported (its \
                         orders would vanish with the sink); name a file, sqlite://path.db"
                            .into(),
                    ));
                }
                let options = SqliteConnectOptions::from_str(&config.url)?
                    .create_if_missing(true)
                    // WAL lets readers (an ERP import, `sqlite3` in a shell) read while we write.
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options.clone())
                    .await?;
                // sqlx's pool creates and upgrades the tables, then the writer takes over.
                schema::ensure_sqlite(&pool).await?;
                pool.close().await;
                Pool::Sqlite(writer::Writer::start(options.get_filename())?)
            } else {
                return Err(ErpSetupError::Config(format!(
                    "sink.erp.url must start with sqlite: or postgres:// (got a {}-character URL)",
                    config.url.len()
                )));
            };
        match &pool {
            // Ensured above, before the writer opened it.
            Pool::Sqlite(..) => {}
            Pool::Postgres(postgres) => schema::ensure_postgres(postgres).await?,
        }
        Ok(Self { pool })
    }
}

#[async_trait]
impl ErpClient for SqlErp {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn default_max_in_flight(&self) -> usize {
        16
    }

    fn latency_signals_load(&self) -> bool {
        // SQLite: one writer, whose queue is the sink's own calls (see `writer.rs`).
        matches!(self.pool, Pool::Postgres(_))
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        match &self.pool {
            Pool::Sqlite(writer) => writer.upsert(event).await,
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(db_error)?;
                // On an error the transaction is dropped, which rolls it back.
                let upserted = stage::upsert(&mut stage::Pg(&mut tx), event).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(upserted)
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
pub(crate) mod tests;
