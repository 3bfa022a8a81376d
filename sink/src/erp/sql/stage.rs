//! One upsert, written once for both databases: what to write for an event, given what is
//! staged ([`upsert`]), over a [`Staging`], an open transaction of either database.
//! PostgreSQL's is sqlx's connection ([`Pg`]); SQLite's is a rusqlite transaction on the
//! writer's own thread ([`Lite`], see `writer.rs`).

use orderbridge_schemas::{Address, OrderEvent, Touchpoint};

use super::{
    db_error, DELETE_LINES, DELETE_TOUCHPOINTS, INSERT_LINE, INSERT_TOUCHPOINT, SELECT_VERSION,
    UPDATE_STATUS, UPDATE_TOUCHES, UPSERT_ORDER,
};
use crate::erp::attribution::credit_share;
use crate::erp::{ErpError, Upserted};

/// A statement's parameter, bound by its number: the first is `$1`.
#[derive(Debug, Clone)]
pub(super) enum Param {
    Text(Option<String>),
    Int(i64),
    Int32(i32),
    Real(Option<f64>),
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<i32> for Param {
    fn from(value: i32) -> Self {
        Param::Int32(value)
    }
}

/// An open transaction of a staging database.
pub(super) trait Staging {
    /// Runs `sql` with `params`, giving the number of rows it changed.
    async fn execute(&mut self, sql: &'static str, params: Vec<Param>) -> Result<u64, ErpError>;
    /// The version staged for `order_key`, if the order is staged.
    async fn version(&mut self, order_key: &str) -> Result<Option<i64>, ErpError>;
}

/// Applies `event`: created, updated, already present, stale, or not held (a partial
/// event for an order not staged). Errors leave the transaction for the caller to undo.
pub(super) async fn upsert<S: Staging>(
    stage: &mut S,
    event: &OrderEvent,
) -> Result<Upserted, ErpError> {
    let stored = stage.version(&event.order_key).await?;
    match stored {
        Some(version) if version == event.version => Ok(Upserted::AlreadyPresent),
        Some(version) if version > event.version => Ok(Upserted::Stale),
        // A status for an order the staging tables do not hold: there is nothing to update,
        // and a row of zero totals would mislead an import. It waits for the full order (the
        // delivery engine holds it, then dead-letters it).
        None if event.partial => Ok(Upserted::NotHeld),
        Some(_) if event.partial => {
            let written = stage.execute(UPDATE_STATUS, status_params(event)).await?;
            if written == 0 {
                return Ok(Upserted::Stale);
            }
            attribution(stage, event).await?;
            Ok(Upserted::Updated)
        }
        _ => {
            let applied_at = chrono::Utc::now().to_rfc3339();
            let written = stage
                .execute(UPSERT_ORDER, order_params(event, applied_at))
                .await?;
            if written == 0 {
                // Another writer got a newer version in between.
                return Ok(Upserted::Stale);
            }
            stage
                .execute(DELETE_LINES, vec![event.order_key.as_str().into()])
                .await?;
            for (index, line) in event.line_items.iter().enumerate() {
                let params = vec![
                    event.order_key.as_str().into(),
                    position(index).into(),
                    line.line_id.clone().into(),
                    line.sku.clone().into(),
                    line.title.clone().into(),
                    line.quantity.into(),
                    line.unit_price.to_string().into(),
                    line.discount.to_string().into(),
                    line.tax.to_string().into(),
                ];
                stage.execute(INSERT_LINE, params).await?;
            }
            attribution(stage, event).await?;
            Ok(if stored.is_some() {
                Upserted::Updated
            } else {
                Upserted::Created
            })
        }
    }
}

/// Replaces the staged attribution of the event's order with the event's, when it carries
/// any, in the transaction of the write it belongs to.
async fn attribution<S: Staging>(stage: &mut S, event: &OrderEvent) -> Result<(), ErpError> {
    let Some(attribution) = &event.attribution else {
        return Ok(());
    };
    let touch = |t: Option<&Touchpoint>| -> [Param; 4] {
        match t {
            Some(t) => [
                t.channel.clone().into(),
                t.campaign.clone().into(),
                t.source.clone().into(),
                t.medium.clone().into(),
            ],
            None => [
                Param::Text(None),
                Param::Text(None),
                Param::Text(None),
                Param::Text(None),
            ],
        }
    };
    let mut touches = vec![event.order_key.as_str().into()];
    touches.extend(touch(attribution.first_touch.as_ref()));
    touches.extend(touch(attribution.last_touch.as_ref()));
    stage.execute(UPDATE_TOUCHES, touches).await?;
    stage
        .execute(DELETE_TOUCHPOINTS, vec![event.order_key.as_str().into()])
        .await?;
    for (index, touch) in attribution.touchpoints.iter().enumerate() {
        let params = vec![
            event.order_key.as_str().into(),
            position(index).into(),
            touch.channel.clone().into(),
            touch.campaign.clone().into(),
            touch.source.clone().into(),
            touch.medium.clone().into(),
            touch.occurred_at.map(|t| t.to_rfc3339()).into(),
            Param::Real(credit_share(touch)),
        ];
        stage.execute(INSERT_TOUCHPOINT, params).await?;
    }
    Ok(())
}

/// A line's or touchpoint's number, from 1.
fn position(index: usize) -> i64 {
    i64::try_from(index + 1).unwrap_or(i64::MAX)
}

/// `UPSERT_ORDER`'s parameters, in its order.
pub(super) fn order_params(e: &OrderEvent, applied_at: String) -> Vec<Param> {
    let ship: Address = e.shipping_address.clone().unwrap_or_default();
    let customer = e.customer.as_ref();
    vec![
        e.order_key.as_str().into(),
        e.source.as_str().into(),
        e.account.as_str().into(),
        e.source_order_id.as_str().into(),
        e.order_number.clone().into(),
        e.event_type.as_str().into(),
        e.status.as_str().into(),
        e.payment_status.as_str().into(),
        e.version.into(),
        e.currency.as_str().into(),
        e.totals.total.to_string().into(),
        e.totals.subtotal.to_string().into(),
        e.totals.tax.to_string().into(),
        e.totals.shipping.to_string().into(),
        e.totals.discount.to_string().into(),
        customer.and_then(|c| c.id.clone()).into(),
        customer.and_then(|c| c.email.clone()).into(),
        customer.and_then(|c| c.name.clone()).into(),
        ship.name.into(),
        ship.line1.into(),
        ship.city.into(),
        ship.postal_code.into(),
        ship.country_code.into(),
        e.source_created_at.map(|t| t.to_rfc3339()).into(),
        e.source_updated_at.map(|t| t.to_rfc3339()).into(),
        e.lineage.raw_topic.as_str().into(),
        e.lineage.raw_partition.into(),
        e.lineage.raw_offset.into(),
        e.lineage.event_id.as_str().into(),
        e.lineage.received_at.to_rfc3339().into(),
        applied_at.into(),
    ]
}

/// `UPDATE_STATUS`'s parameters, in its order.
fn status_params(e: &OrderEvent) -> Vec<Param> {
    vec![
        e.order_key.as_str().into(),
        e.event_type.as_str().into(),
        e.status.as_str().into(),
        e.payment_status.as_str().into(),
        e.version.into(),
        e.source_updated_at.map(|t| t.to_rfc3339()).into(),
        e.lineage.raw_topic.as_str().into(),
        e.lineage.raw_partition.into(),
        e.lineage.raw_offset.into(),
        e.lineage.event_id.as_str().into(),
        e.lineage.received_at.to_rfc3339().into(),
        chrono::Utc::now().to_rfc3339().into(),
    ]
}

/// PostgreSQL: the connection of an open sqlx transaction.
pub(super) struct Pg<'c>(pub(super) &'c mut sqlx::PgConnection);

impl Staging for Pg<'_> {
    async fn execute(&mut self, sql: &'static str, params: Vec<Param>) -> Result<u64, ErpError> {
        let mut query = sqlx::query(sql);
        for param in params {
            query = match param {
                Param::Text(value) => query.bind(value),
                Param::Int(value) => query.bind(value),
                Param::Int32(value) => query.bind(value),
                Param::Real(value) => query.bind(value),
            };
        }
        let done = query.execute(&mut *self.0).await.map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn version(&mut self, order_key: &str) -> Result<Option<i64>, ErpError> {
        sqlx::query_scalar(SELECT_VERSION)
            .bind(order_key)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(db_error)
    }
}

/// SQLite: a transaction of the writer's own connection. Nothing here waits: every call
/// runs the statement to its end on the calling thread.
pub(super) struct Lite<'t>(pub(super) &'t rusqlite::Connection);

impl Staging for Lite<'_> {
    async fn execute(&mut self, sql: &'static str, params: Vec<Param>) -> Result<u64, ErpError> {
        let mut statement = self.0.prepare_cached(sql).map_err(lite_error)?;
        for (index, param) in params.into_iter().enumerate() {
            // `$n` is a named parameter to SQLite, numbered by its first appearance, and a
            // statement may name one twice: bind by name.
            let Some(at) = statement
                .parameter_index(&format!("${}", index + 1))
                .map_err(lite_error)?
            else {
                continue;
            };
            match param {
                Param::Text(value) => statement.raw_bind_parameter(at, value),
                Param::Int(value) => statement.raw_bind_parameter(at, value),
                Param::Int32(value) => statement.raw_bind_parameter(at, value),
                Param::Real(value) => statement.raw_bind_parameter(at, value),
            }
            .map_err(lite_error)?;
        }
        let changed = statement.raw_execute().map_err(lite_error)?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    async fn version(&mut self, order_key: &str) -> Result<Option<i64>, ErpError> {
        let mut statement = self.0.prepare_cached(SELECT_VERSION).map_err(lite_error)?;
        let mut rows = statement.query([order_key]).map_err(lite_error)?;
        match rows.next().map_err(lite_error)? {
            Some(row) => Ok(Some(row.get(0).map_err(lite_error)?)),
            None => Ok(None),
        }
    }
}

/// SQLite's errors as the sink's, as [`db_error`] classifies sqlx's: a check, foreign-key,
/// unique or primary-key constraint is this order's fault; anything else (I/O, locks,
/// a full disk) is transient.
pub(super) fn lite_error(err: rusqlite::Error) -> ErpError {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(failure, _) = &err {
        if matches!(
            failure.extended_code,
            ffi::SQLITE_CONSTRAINT_CHECK
                | ffi::SQLITE_CONSTRAINT_FOREIGNKEY
                | ffi::SQLITE_CONSTRAINT_UNIQUE
                | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        ) {
            return ErpError::rejected(format!("database refused the order: {err}"));
        }
    }
    ErpError::transient(format!("database: {err}"))
}
