//! The sink is killed after the ERP accepted an order but before the offset was committed.
//! On restart the record is delivered again, and the ERP still holds the order once — for
//! the SQL staging tables and for Business Central, which does not reject duplicates itself.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use orderbridge_processor::Guarantee;
use orderbridge_schemas::OrderEvent;
use orderbridge_sink::erp::business_central::BusinessCentral;
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::{ErpClient, ErpError, Upserted};
use support::bc_sim::BcSim;
use support::pipeline::{post_shopify, Env};
use support::{fixture, unique, wait_for};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

/// Upserts through the real ERP, records the outcome, and — when told to — never returns
/// afterwards, like a process that dies right after the ERP answered.
struct Instrumented {
    inner: Arc<dyn ErpClient>,
    stall_after_upsert: bool,
    upserted: Notify,
    outcomes: Mutex<Vec<(String, Upserted)>>,
}

impl Instrumented {
    fn new(inner: Arc<dyn ErpClient>, stall_after_upsert: bool) -> Arc<Self> {
        Arc::new(Self {
            inner,
            stall_after_upsert,
            upserted: Notify::new(),
            outcomes: Mutex::new(Vec::new()),
        })
    }

    fn saw(&self, order_key: &str, outcome: Upserted) -> bool {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .any(|(key, o)| key == order_key && *o == outcome)
    }
}

#[async_trait]
impl ErpClient for Instrumented {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn upsert(&self, event: &OrderEvent) -> Result<Upserted, ErpError> {
        let outcome = self.inner.upsert(event).await?;
        self.outcomes
            .lock()
            .unwrap()
            .push((event.order_key.clone(), outcome));
        self.upserted.notify_one();
        if self.stall_after_upsert {
            std::future::pending::<()>().await;
        }
        Ok(outcome)
    }
}

/// Runs the crash scenario against `erp`; `count` tells how many records the ERP holds for
/// an order key.
async fn crash_between_upsert_and_commit<F, Fut>(erp: Arc<dyn ErpClient>, count: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let env = Env::mock();
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::ExactlyOnce, &shutdown);
    let ingest = env.ingest();
    let group = unique("sink");

    // First life: the upsert succeeds, then the process "dies" before storing the offset.
    let dying = Instrumented::new(Arc::clone(&erp), true);
    let first_life = CancellationToken::new();
    let sink = env.spawn_sink(
        &group,
        dying.clone(),
        &prometheus::Registry::new(),
        &first_life,
    );
    let (headers, body) = fixture("shopify", "orders-create-basic");
    assert_eq!(
        post_shopify(&ingest, &headers, &body, None).await,
        StatusCode::OK
    );
    let key = "shopify:example-store.myshopify.com:450789469".to_owned();
    tokio::time::timeout(DEADLINE, dying.upserted.notified())
        .await
        .expect("the first upsert");
    assert!(dying.saw(&key, Upserted::Created));
    assert_eq!(count(key.clone()).await, 1);
    sink.abort();
    assert!(sink.await.unwrap_err().is_cancelled());

    // Second life, same consumer group: the uncommitted record comes again and is a no-op.
    let healthy = Instrumented::new(Arc::clone(&erp), false);
    let sink = env.spawn_sink(
        &group,
        healthy.clone(),
        &prometheus::Registry::new(),
        &shutdown,
    );
    wait_for("the redelivered order", DEADLINE, || async {
        healthy.saw(&key, Upserted::AlreadyPresent).then_some(())
    })
    .await;
    assert_eq!(
        count(key.clone()).await,
        1,
        "one record after the redelivery"
    );

    // And the restarted sink goes on with new orders.
    let (headers, body) = fixture("shopify", "orders-updated-partially-fulfilled");
    assert_eq!(
        post_shopify(&ingest, &headers, &body, None).await,
        StatusCode::OK
    );
    let next = "shopify:example-store.myshopify.com:450789470".to_owned();
    wait_for("the next order", DEADLINE, || async {
        healthy.saw(&next, Upserted::Created).then_some(())
    })
    .await;
    assert_eq!(count(next).await, 1);
    assert_eq!(count(key).await, 1);

    shutdown.cancel();
    processor.await.unwrap();
    sink.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarting_the_sink_between_upsert_and_commit_leaves_one_staging_row() {
    let (erp, db, _dir) = support::staging_db().await;
    crash_between_upsert_and_commit(erp, |key| {
        let db = db.clone();
        async move {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE order_key = $1")
                .bind(key)
                .fetch_one(&db)
                .await
                .unwrap();
            usize::try_from(rows).unwrap()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarting_the_sink_between_upsert_and_commit_leaves_one_business_central_order() {
    let sim = BcSim::start(&["IPOD2008GREEN", "MUG-BLUE", "TEAPOT"]).await;
    let erp = Arc::new(BusinessCentral::new(sim.config(5_000)).unwrap());
    crash_between_upsert_and_commit(erp, |key| {
        let sim = sim.clone();
        async move { sim.orders_with_reference(&external_reference(&key)) }
    })
    .await;
}
