//! SQLite's one writer: concurrent upserts committed together (group commit), on a thread of
//! its own.
//!
//! SQLite lets one connection write at a time. Upserts on several connections of a pool
//! queued for its lock in SQLite's busy handler, which sleeps in steps of up to 100 ms, so
//! under load a write waited far longer than it took, and the sink's concurrency bought
//! nothing but latency. And each statement through sqlx is a round trip to sqlx's worker
//! thread: an order's six or so statements cost more in thread wake-ups than in SQLite.
//! Here every upsert goes to one thread that owns a connection of its own (rusqlite, the
//! same SQLite): it takes whatever upserts are waiting (up to [`MAX_GROUP`]), writes each in
//! a savepoint of one `BEGIN IMMEDIATE` transaction and commits them with one commit, one
//! fsync. Nothing about an order's outcome changes:
//!
//! - each upsert still reads its stored version and writes inside the transaction that
//!   commits it, so a redelivery is a no-op and an older event never overwrites a newer one
//!   (`stage.rs`, the same code as PostgreSQL's);
//! - an upsert the database refuses (a constraint) is rolled back to its savepoint alone and
//!   answered with its own error; the others of the group commit;
//! - when the commit (or the transaction itself) fails, nothing of the group is written and
//!   every upsert of it is answered with that error, transient: the sink retries each.
//!
//! Only after the commit is any upsert answered, so the sink stores an offset only for a
//! write that is durable (`synchronous = FULL`: the commit fsyncs the WAL).

use std::path::Path;
use std::time::Duration;

use orderbridge_schemas::OrderEvent;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::stage::{self, lite_error, Lite};
use crate::erp::{ErpError, ErpSetupError, Upserted};

/// Upserts written in one transaction at most. The sink's concurrency (`max_in_flight`,
/// 16 for SQL) bounds a group long before this does.
const MAX_GROUP: usize = 128;

/// An upsert waiting for the writer.
struct Write {
    event: OrderEvent,
    answer: oneshot::Sender<Result<Upserted, ErpError>>,
}

/// The way to the writer thread; the thread ends when every clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    requests: mpsc::Sender<Write>,
}

impl Writer {
    /// Opens `path` (whose tables exist) and starts the writer thread on it.
    ///
    /// # Errors
    /// When the database cannot be opened or the thread not started.
    pub(super) fn start(path: &Path) -> Result<Self, ErpSetupError> {
        let connection = open(path)
            .map_err(|err| ErpSetupError::Config(format!("opening {}: {err}", path.display())))?;
        let (requests, waiting) = mpsc::channel(MAX_GROUP * 4);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_groups(connection, waiting))
            .map_err(|err| ErpSetupError::Config(format!("starting the SQLite writer: {err}")))?;
        Ok(Self { requests })
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

/// The writer's connection: WAL (readers never wait for it), a commit that fsyncs, foreign
/// keys enforced (as sqlx's connections do), and the same patience as theirs for a lock
/// another process holds.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(connection)
}

fn write_groups(mut connection: Connection, mut waiting: mpsc::Receiver<Write>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = waiting.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match waiting.try_recv() {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        let results = match write_group(&mut connection, &group) {
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
fn write_group(
    connection: &mut Connection,
    group: &[Write],
) -> Result<Vec<Result<Upserted, ErpError>>, ErpError> {
    // The write lock up front: a deferred transaction reads, then cannot become a writer
    // while another connection (an import, `sqlite3` in a shell) wrote meanwhile, and SQLite
    // fails it at once instead of waiting out `busy_timeout`.
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(lite_error)?;
    let mut results = Vec::with_capacity(group.len());
    for write in group {
        tx.execute_batch("SAVEPOINT upsert").map_err(lite_error)?;
        // `Lite` never waits, so its futures finish on their first poll.
        let result = futures::executor::block_on(stage::upsert(&mut Lite(&tx), &write.event));
        if result.is_err() {
            // Undo this upsert alone. When even that fails (SQLite rolled the whole
            // transaction back after an I/O error, say), the group fails as one.
            tx.execute_batch("ROLLBACK TO upsert").map_err(lite_error)?;
        }
        tx.execute_batch("RELEASE upsert").map_err(lite_error)?;
        results.push(result);
    }
    tx.commit().map_err(lite_error)?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::erp::sql::tests::event;
    use crate::erp::sql::{SqlConfig, SqlErp};

    /// A staging database with its tables, and the writer's kind of connection to it.
    async fn staging() -> (Connection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging.db");
        SqlErp::connect(&SqlConfig {
            url: format!("sqlite://{}", path.display()),
        })
        .await
        .unwrap();
        (open(&path).unwrap(), dir)
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

    fn keys(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT order_key FROM orders ORDER BY order_key")
            .unwrap();
        let keys = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<Vec<String>, _>>()
            .unwrap();
        keys
    }

    #[tokio::test]
    async fn an_upsert_the_database_refuses_is_undone_alone_and_the_rest_of_its_group_commits() {
        let (mut connection, _dir) = staging().await;
        // A rule of this database (not of the sink): order numbers are unique. The second
        // order breaks it.
        connection
            .execute_batch("CREATE UNIQUE INDEX one_number ON orders (order_number)")
            .unwrap();
        let writes = group(vec![order(1, "#1"), order(2, "#1"), order(3, "#3")]);
        let results = write_group(&mut connection, &writes).unwrap();
        assert_eq!(results[0], Ok(Upserted::Created));
        assert!(
            matches!(&results[1], Err(ErpError::Rejected { .. })),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2], Ok(Upserted::Created));
        assert_eq!(
            keys(&connection),
            [
                "shopify:shop.myshopify.com:1",
                "shopify:shop.myshopify.com:3"
            ]
        );
        // Nothing of the refused order stayed behind, its lines included; the others' did.
        let lines: Vec<i64> = ["1", "2", "3"]
            .iter()
            .map(|n| {
                connection
                    .query_row(
                        "SELECT COUNT(*) FROM order_lines WHERE order_key = ?1",
                        [format!("shopify:shop.myshopify.com:{n}")],
                        |row| row.get(0),
                    )
                    .unwrap()
            })
            .collect();
        assert_eq!(lines, [2, 0, 2]);
    }

    #[tokio::test]
    async fn a_group_that_cannot_commit_writes_nothing_and_fails_as_one() {
        let (mut connection, dir) = staging().await;
        // Another connection holds the write lock past the writer's patience.
        connection.busy_timeout(Duration::from_millis(50)).unwrap();
        let other = open(&dir.path().join("staging.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let writes = group(vec![order(1, "#1"), order(2, "#2")]);
        let failed = write_group(&mut connection, &writes);
        assert!(
            matches!(&failed, Err(ErpError::Transient { .. })),
            "{failed:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        assert!(keys(&connection).is_empty());
        // Once the lock is free, the same orders go in.
        let results = write_group(&mut connection, &writes).unwrap();
        assert_eq!(results, [Ok(Upserted::Created), Ok(Upserted::Created)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_upserts_are_all_answered_and_all_written() {
        let (connection, dir) = staging().await;
        let writer = Writer::start(&dir.path().join("staging.db")).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..64 {
            let writer = writer.clone();
            tasks.spawn(async move { writer.upsert(&order(n, &format!("#{n}"))).await });
        }
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.unwrap(), Ok(Upserted::Created));
        }
        assert_eq!(keys(&connection).len(), 64);
    }
}
