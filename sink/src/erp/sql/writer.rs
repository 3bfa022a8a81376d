//! SQLite's one writer: concurrent upserts committed together (group commit).
//!
//! SQLite lets one connection write at a time. Upserts on several connections of a pool
//! queue for its lock in SQLite's busy handler, which sleeps in steps of up to 100 ms, so
//! under load a write waited far longer than it took, and the sink's concurrency bought
//! nothing but latency. Here every upsert goes to one task that owns the writing: it takes
//! whatever upserts are waiting (up to [`MAX_GROUP`]), writes each in a savepoint of one
//! `BEGIN IMMEDIATE` transaction and commits them with one commit, one fsync. Nothing about
//! an order's outcome changes:
//!
//! - each upsert still reads its stored version and writes inside the transaction that
//!   commits it, so a redelivery is a no-op and an older event never overwrites a newer one;
//! - an upsert the database refuses (a constraint) is rolled back to its savepoint alone and
//!   answered with its own error; the others of the group commit;
//! - when the commit (or the transaction itself) fails, nothing of the group is written and
//!   every upsert of it is answered with that error, transient: the sink retries each.
//!
//! Only after the commit is any upsert answered, so the sink stores an offset only for a
//! write that is durable (`synchronous` stays SQLite's default, FULL: the commit fsyncs).

use orderbridge_schemas::OrderEvent;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::{db_error, upsert_sqlite};
use crate::erp::{ErpError, Upserted};

/// Upserts written in one transaction at most. The sink's concurrency (`max_in_flight`,
/// 16 for SQL) bounds a group long before this does.
pub(super) const MAX_GROUP: usize = 128;

/// An upsert waiting for the writer.
struct Write {
    event: OrderEvent,
    answer: oneshot::Sender<Result<Upserted, ErpError>>,
}

/// The way to the writer task; the task ends when every clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    requests: mpsc::Sender<Write>,
}

impl Writer {
    /// Starts the writer task on `pool` (on the current Tokio runtime).
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (requests, waiting) = mpsc::channel(MAX_GROUP * 4);
        tokio::spawn(write_groups(pool, waiting));
        Self { requests }
    }

    /// Upserts `event` with whatever else is waiting, answering once it is committed.
    pub(super) async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let (answer, answered) = oneshot::channel();
        let write = Write {
            event: event.clone(),
            answer,
        };
        self.requests
            .send(write)
            .await
            .map_err(|_| ErpError::transient("the SQLite writer has stopped"))?;
        answered
            .await
            .map_err(|_| ErpError::transient("the SQLite writer stopped before answering"))?
    }
}

async fn write_groups(pool: SqlitePool, mut waiting: mpsc::Receiver<Write>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        let results = match write_group(&pool, &group).await {
            Ok(results) => results,
            Err(err) => vec![Err(err); group.len()],
        };
        for (write, result) in group.drain(..).zip(results) {
            // A caller that went away (its sink stopping) needs no answer.
            let _ = write.answer.send(result);
        }
    }
}

/// Writes `group` in one transaction: one result per upsert, or the error that kept the
/// whole group from committing.
async fn write_group(
    pool: &SqlitePool,
    group: &[Write],
) -> Result<Vec<Result<Upserted, ErpError>>, ErpError> {
    // The write lock up front: a deferred transaction reads, then cannot become a writer
    // while another connection (an import, `sqlite3` in a shell) wrote meanwhile, and SQLite
    // fails it at once instead of waiting out `busy_timeout`.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
    let mut results = Vec::with_capacity(group.len());
    for write in group {
        sqlx::query("SAVEPOINT upsert")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let result = upsert_sqlite(&mut tx, &write.event).await;
        if result.is_err() {
            // Undo this upsert alone. When even that fails (SQLite rolled the whole
            // transaction back after an I/O error, say), the group fails as one.
            sqlx::query("ROLLBACK TO upsert")
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        sqlx::query("RELEASE upsert")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        results.push(result);
    }
    tx.commit().await.map_err(db_error)?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::erp::sql::tests::event;
    use crate::erp::sql::{SqlConfig, SqlErp};

    async fn staging() -> (SqlitePool, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("staging.db").display());
        let erp = SqlErp::connect(&SqlConfig { url }).await.unwrap();
        let super::super::Pool::Sqlite(pool, _) = erp.pool else {
            panic!("sqlite")
        };
        (pool, dir)
    }

    fn order(n: u32, order_number: &str) -> OrderEvent {
        let mut order = event(1, "10.00", 2);
        order.order_key = format!("shopify:shop.myshopify.com:{n}");
        order.order_number = Some(order_number.into());
        order
    }

    fn group(events: Vec<OrderEvent>) -> Vec<Write> {
        events
            .into_iter()
            .map(|event| Write {
                event,
                answer: oneshot::channel().0,
            })
            .collect()
    }

    async fn keys(pool: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar("SELECT order_key FROM orders ORDER BY order_key")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_upsert_the_database_refuses_is_undone_alone_and_the_rest_of_its_group_commits() {
        let (pool, _dir) = staging().await;
        // A rule of this database (not of the sink): order numbers are unique. The second
        // order breaks it.
        sqlx::query("CREATE UNIQUE INDEX one_number ON orders (order_number)")
            .execute(&pool)
            .await
            .unwrap();
        let writes = group(vec![order(1, "#1"), order(2, "#1"), order(3, "#3")]);
        let results = write_group(&pool, &writes).await.unwrap();
        assert_eq!(results[0], Ok(Upserted::Created));
        assert!(
            matches!(&results[1], Err(ErpError::Rejected { .. })),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2], Ok(Upserted::Created));
        assert_eq!(
            keys(&pool).await,
            [
                "shopify:shop.myshopify.com:1",
                "shopify:shop.myshopify.com:3"
            ]
        );
        // Nothing of the refused order stayed behind, its lines included.
        let lines: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM order_lines WHERE order_key = 'shopify:shop.myshopify.com:2'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(lines, 0);
    }

    #[tokio::test]
    async fn a_group_that_cannot_commit_writes_nothing_and_fails_as_one() {
        let (pool, dir) = staging().await;
        // Another connection holds the write lock past the writer's patience.
        let impatient = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.path().join("staging.db"))
                    .busy_timeout(std::time::Duration::from_millis(50)),
            )
            .await
            .unwrap();
        let mut other = pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *other)
            .await
            .unwrap();
        let writes = group(vec![order(1, "#1"), order(2, "#2")]);
        let failed = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            write_group(&impatient, &writes),
        )
        .await
        .expect("busy_timeout ends the wait");
        assert!(
            matches!(&failed, Err(ErpError::Transient { .. })),
            "{failed:?}"
        );
        sqlx::query("ROLLBACK").execute(&mut *other).await.unwrap();
        drop(other);
        assert!(keys(&pool).await.is_empty());
        // The writer answers every caller of a failed group, with the group's error.
        let writer = Writer::start(pool.clone());
        assert_eq!(writer.upsert(&order(1, "#1")).await, Ok(Upserted::Created));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_upserts_share_commits() {
        let (pool, _dir) = staging().await;
        let writer = Writer::start(pool.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..64 {
            let writer = writer.clone();
            tasks.spawn(async move { writer.upsert(&order(n, &format!("#{n}"))).await });
        }
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.unwrap(), Ok(Upserted::Created));
        }
        assert_eq!(keys(&pool).await.len(), 64);
    }
}
