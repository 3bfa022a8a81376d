//! The staging tables, and how a database made by an older release is brought up to them.
//!
//! Tables are created with `CREATE TABLE IF NOT EXISTS`, which leaves an existing table as
//! it is: a database from before a column existed would never get it, and every write
//! naming the column would fail. So the columns added after a table's first release are
//! listed in [`ORDERS_ADDED`], and [`ensure`] adds those the table lacks, read from the
//! catalog (`pragma_table_info` in SQLite, `information_schema.columns` in PostgreSQL), in
//! one transaction with the creates. Rows are kept; the new columns are nullable, so old
//! rows read as "no attribution known". Reading the catalog first means a sink start takes
//! no lock on `orders` when there is nothing to add (PostgreSQL's `ALTER TABLE` takes an
//! exclusive one, even with `IF NOT EXISTS`).
//!
//! Two sinks starting at once against one database: SQLite runs this in a `BEGIN
//! IMMEDIATE` transaction, so they go one after the other; PostgreSQL's
//! `ADD COLUMN IF NOT EXISTS` lets the second find the column the first added.
//!
//! Adding a column: append it to the table's `CREATE` and to its `…_ADDED` list (never
//! `NOT NULL` without a default: old rows have no value).

use sqlx::{PgPool, SqlitePool};

pub(super) const CREATE_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (
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
    applied_at TEXT NOT NULL,
    first_touch_channel TEXT,
    first_touch_campaign TEXT,
    first_touch_source TEXT,
    first_touch_medium TEXT,
    last_touch_channel TEXT,
    last_touch_campaign TEXT,
    last_touch_source TEXT,
    last_touch_medium TEXT
)";

/// Columns of `orders` added after its first release (the marketing attribution's first and
/// last touch), with their types.
pub(super) const ORDERS_ADDED: &[(&str, &str)] = &[
    ("first_touch_channel", "TEXT"),
    ("first_touch_campaign", "TEXT"),
    ("first_touch_source", "TEXT"),
    ("first_touch_medium", "TEXT"),
    ("last_touch_channel", "TEXT"),
    ("last_touch_campaign", "TEXT"),
    ("last_touch_source", "TEXT"),
    ("last_touch_medium", "TEXT"),
];

pub(super) const CREATE_LINES: &str = "CREATE TABLE IF NOT EXISTS order_lines (
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

/// Every touchpoint of an order's attribution, in the platform's order (`position` from 1),
/// replaced whenever an event brings attribution. `credit_share` is the canonical share
/// (0..1) as a double: it is a binary float in the canonical event already (Avro `double`),
/// so a double column holds it exactly, and an import can sum and weigh by it without
/// parsing text. (Money is text because it is decimal; a share never was.)
pub(super) const CREATE_TOUCHPOINTS: &str = "CREATE TABLE IF NOT EXISTS order_touchpoints (
    order_key TEXT NOT NULL REFERENCES orders (order_key),
    position INTEGER NOT NULL,
    channel TEXT NOT NULL,
    campaign TEXT,
    source TEXT,
    medium TEXT,
    occurred_at TEXT,
    credit_share DOUBLE PRECISION,
    PRIMARY KEY (order_key, position)
)";

const SQLITE_COLUMNS: &str = "SELECT name FROM pragma_table_info('orders')";
const POSTGRES_COLUMNS: &str = "SELECT column_name::text FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'orders'";

/// The `ALTER TABLE` statements that bring an `orders` table with `existing` columns up to
/// [`ORDERS_ADDED`]; `if_not_exists` where the database has it.
fn missing(existing: &[String], if_not_exists: bool) -> Vec<(&'static str, String)> {
    let guard = if if_not_exists { "IF NOT EXISTS " } else { "" };
    ORDERS_ADDED
        .iter()
        .filter(|(name, _)| !existing.iter().any(|have| have.eq_ignore_ascii_case(name)))
        .map(|(name, kind)| {
            (
                *name,
                format!("ALTER TABLE orders ADD COLUMN {guard}{name} {kind}"),
            )
        })
        .collect()
}

/// Creates the tables SQLite lacks and the columns its `orders` lacks.
pub(super) async fn ensure_sqlite(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(CREATE_ORDERS).execute(&mut *tx).await?;
    sqlx::query(CREATE_LINES).execute(&mut *tx).await?;
    sqlx::query(CREATE_TOUCHPOINTS).execute(&mut *tx).await?;
    let existing: Vec<String> = sqlx::query_scalar(SQLITE_COLUMNS)
        .fetch_all(&mut *tx)
        .await?;
    for (column, alter) in missing(&existing, false) {
        sqlx::query(&alter).execute(&mut *tx).await?;
        tracing::info!(table = "orders", column, "staging table upgraded");
    }
    tx.commit().await
}

/// Creates the tables PostgreSQL lacks and the columns its `orders` lacks.
pub(super) async fn ensure_postgres(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(CREATE_ORDERS).execute(&mut *tx).await?;
    sqlx::query(CREATE_LINES).execute(&mut *tx).await?;
    sqlx::query(CREATE_TOUCHPOINTS).execute(&mut *tx).await?;
    let existing: Vec<String> = sqlx::query_scalar(POSTGRES_COLUMNS)
        .fetch_all(&mut *tx)
        .await?;
    for (column, alter) in missing(&existing, true) {
        sqlx::query(&alter).execute(&mut *tx).await?;
        tracing::info!(table = "orders", column, "staging table upgraded");
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_added_column_is_in_the_create_and_only_missing_ones_are_altered() {
        for (name, kind) in ORDERS_ADDED {
            assert!(
                CREATE_ORDERS.contains(&format!("    {name} {kind}")),
                "{name} is missing from CREATE_ORDERS"
            );
        }
        let existing = vec!["order_key".to_owned(), "FIRST_TOUCH_CHANNEL".to_owned()];
        let alters = missing(&existing, true);
        assert_eq!(alters.len(), ORDERS_ADDED.len() - 1);
        assert_eq!(
            alters[0].1,
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS first_touch_campaign TEXT"
        );
        assert_eq!(
            missing(&existing, false)[0].1,
            "ALTER TABLE orders ADD COLUMN first_touch_campaign TEXT"
        );
    }
}
