//! The sink's delivery engine against the SAP Business One simulator (which, like SAP, stores
//! a duplicate `NumAtCard` without complaint, so only the sink prevents doubles):
//!
//! - records of one order are applied strictly in order while other orders run in parallel;
//! - 5,000 orders, with duplicate deliveries and out-of-order updates, stream through a
//!   30-second maintenance window: the breaker pauses and reports not ready, nothing is
//!   committed meanwhile, and afterwards every order is there once, at its newest version,
//!   with the group's offsets at the end;
//! - a rejected order is dead-lettered with SAP's message and the partition goes on.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderbridge_runtime::{header_str, Health};
use orderbridge_schemas::{EventType, OrderEvent};
use orderbridge_sink::erp::external_reference;
use orderbridge_sink::erp::sap_business_one::SapBusinessOne;
use support::pipeline::{counter, sink_config, Env};
use support::sap_sim::SapSim;
use support::{shopify_event, unique, wait_for};
use tokio_util::sync::CancellationToken;

const ITEMS: &[&str] = &["IPOD2008GREEN", "MUG-BLUE", "TEAPOT"];

/// Order `n` of a test run: the basic fixture under its own order id.
fn order(n: usize) -> OrderEvent {
    let mut event = shopify_event("orders-create-basic");
    let id = 1_000_000 + n;
    event.source_order_id = id.to_string();
    event.order_key = format!("shopify:example-store.myshopify.com:{id}");
    event
}

/// An update of `event`, `step` versions later, with `quantity` on its line.
fn update(event: &OrderEvent, step: i64, quantity: i64) -> OrderEvent {
    let mut update = event.clone();
    update.event_type = EventType::Updated;
    update.version += step;
    update.line_items[0].quantity = quantity;
    update
}

/// Whether two calls ran at the same time.
fn overlap(a: &support::sap_sim::Call, b: &support::sap_sim::Call) -> bool {
    a.started < b.ended && b.started < a.ended
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_orders_updates_apply_in_order_while_other_orders_run_in_parallel() {
    let env = Env::mock();
    let sim = SapSim::start(ITEMS).await;
    sim.set_latency(Duration::from_millis(40));
    let first = order(0);
    let mut events = vec![first.clone()];
    events.extend((1..40).map(order));
    let updates = [
        update(&first, 1_000, 2),
        update(&first, 2_000, 3),
        update(&first, 3_000, 4),
    ];
    events.extend(updates.iter().cloned());
    env.publish_canonical(&events).await;

    let shutdown = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let erp = Arc::new(SapBusinessOne::new(sim.config(5_000)).unwrap());
    let sink = env.spawn_sink(&unique("sink"), erp, &registry, &shutdown);
    let reference = external_reference(&first.order_key);
    wait_for(
        "all orders and the three updates",
        Duration::from_secs(60),
        || async {
            let orders = sim.orders();
            let done = orders.len() == 40
                && orders
                    .iter()
                    .find(|o| o.num_at_card == reference)
                    .is_some_and(|o| o.version() == Some(updates[2].version));
            done.then_some(())
        },
    )
    .await;

    let orders = sim.orders();
    let target = orders.iter().find(|o| o.num_at_card == reference).unwrap();
    assert_eq!(
        target.history,
        vec![
            first.version,
            updates[0].version,
            updates[1].version,
            updates[2].version
        ],
        "created, then each update once, in order"
    );
    assert_eq!(target.lines[0]["Quantity"], 4);
    // The updates' writes to that order never overlapped.
    let path = format!("/b1s/v2/Orders({})", target.doc_entry);
    let patches: Vec<_> = sim.calls().into_iter().filter(|c| c.path == path).collect();
    assert_eq!(patches.len(), 3);
    for (n, a) in patches.iter().enumerate() {
        for b in &patches[n + 1..] {
            assert!(!overlap(a, b), "two updates of one order ran at once");
        }
    }
    // Other orders' creates did.
    let creates: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.path == "/b1s/v2/Orders" && c.method == axum::http::Method::POST)
        .collect();
    let most_at_once = creates
        .iter()
        .map(|a| creates.iter().filter(|b| overlap(a, b)).count())
        .max()
        .unwrap_or(0);
    println!("at most {most_at_once} creates ran at once");
    assert!(most_at_once >= 4, "creates ran {most_at_once} at a time");
    assert_eq!(
        counter(
            &registry,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")]
        ),
        40
    );
    shutdown.cancel();
    sink.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_orders_through_a_maintenance_window_land_once_at_their_newest_state() {
    const ORDERS: usize = 5_000;
    const WINDOW: Duration = Duration::from_secs(30);
    let env = Env::mock();
    let sim = SapSim::start(ITEMS).await;

    // Every order created; one in ten delivered twice; one in ten updated twice with the
    // older update arriving last.
    let mut events = Vec::with_capacity(ORDERS * 13 / 10);
    let mut newest = HashMap::new();
    for n in 0..ORDERS {
        let created = order(n);
        let quantity = created.line_items[0].quantity;
        newest.insert(
            external_reference(&created.order_key),
            (created.version, quantity),
        );
        events.push(created);
        if n % 10 == 5 {
            events.push(order(n - 5)); // a duplicate delivery
        }
        if n % 10 == 9 {
            let target = order(n - 9);
            let (newer, older) = (update(&target, 2_000, 3), update(&target, 1_000, 7));
            newest.insert(external_reference(&target.order_key), (newer.version, 3));
            events.push(newer);
            events.push(older);
        }
    }
    let records = events.len();
    env.publish_canonical(&events).await;

    let group = unique("sink");
    let shutdown = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let health = Health::new();
    let erp = Arc::new(SapBusinessOne::new(sim.config(5_000)).unwrap());
    let sink = env.spawn_sink_with(
        &sink_config(&group),
        erp,
        &registry,
        Arc::clone(&health),
        &shutdown,
    );

    // Part of the way in, the Service Layer goes down for maintenance.
    wait_for(
        "the first thousand orders",
        Duration::from_secs(120),
        || async { (sim.orders().len() >= 1_000).then_some(()) },
    )
    .await;
    sim.set_maintenance(true);
    let started = Instant::now();
    wait_for("the breaker to open", Duration::from_secs(10), || async {
        health.is_held().then_some(())
    })
    .await;
    assert!(!health.is_ready(), "not ready while the ERP is down");
    let during = sim.orders().len();

    // Throughout the window: nothing written, the sink not ready, and after the first
    // auto-commit (every 5 s) of what finished before the window, no offset moves.
    let mut held_back = None;
    while started.elapsed() < WINDOW {
        assert_eq!(
            sim.orders().len(),
            during,
            "an order was written during maintenance"
        );
        assert!(!health.is_ready());
        if held_back.is_none() && started.elapsed() > Duration::from_secs(7) {
            held_back = Some(env.uncommitted(&group));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let held_back = held_back.unwrap();
    println!("{held_back} records held back during the window");
    assert!(held_back > 0, "the window held records back");
    assert_eq!(
        env.uncommitted(&group),
        held_back,
        "an offset moved during maintenance"
    );
    sim.set_maintenance(false);
    let resumed = Instant::now();

    wait_for(
        "every order at its newest state",
        Duration::from_secs(180),
        || async {
            let orders = sim.orders();
            (orders.len() >= ORDERS
                && orders
                    .iter()
                    .all(|o| newest.get(&o.num_at_card).map(|n| n.0) == o.version()))
            .then_some(())
        },
    )
    .await;
    println!("caught up {:?} after the window", resumed.elapsed());
    wait_for(
        "the offsets at the end",
        Duration::from_secs(30),
        || async { (env.uncommitted(&group) == 0).then_some(()) },
    )
    .await;
    assert!(health.is_ready(), "ready again");

    let orders = sim.orders();
    let mut per_reference: HashMap<&str, usize> = HashMap::new();
    for order in &orders {
        *per_reference.entry(&order.num_at_card).or_default() += 1;
    }
    assert_eq!(per_reference.len(), ORDERS);
    assert!(
        per_reference.values().all(|n| *n == 1),
        "an order was created twice"
    );
    for order in &orders {
        let (version, quantity) = newest[&order.num_at_card];
        assert_eq!(order.version(), Some(version), "{}", order.num_at_card);
        assert_eq!(
            order.lines[0]["Quantity"], quantity,
            "{}",
            order.num_at_card
        );
    }
    let outcome = |label: &str| {
        counter(
            &registry,
            "orderbridge_sink_upserts_total",
            &[("outcome", label)],
        )
    };
    println!(
        "{records} records: created {}, updated {}, already present {}, stale {}",
        outcome("created"),
        outcome("updated"),
        outcome("already_present"),
        outcome("stale")
    );
    assert_eq!(outcome("created"), ORDERS as u64);
    assert!(
        outcome("stale") >= (ORDERS / 10) as u64,
        "older updates skipped"
    );
    assert!(
        outcome("already_present") >= (ORDERS / 10) as u64,
        "duplicates found"
    );
    assert!(
        counter(
            &registry,
            "orderbridge_sink_erp_failures_total",
            &[("class", "unavailable")]
        ) > 0
    );
    assert_eq!(
        counter(&registry, "orderbridge_sink_dead_letters_total", &[]),
        0,
        "maintenance never dead-letters"
    );
    shutdown.cancel();
    sink.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_order_is_dead_lettered_with_saps_message_and_the_rest_go_on() {
    let env = Env::mock();
    let sim = SapSim::start(ITEMS).await;
    let mut unknown_item = order(0);
    unknown_item.line_items[0].sku = Some("NO-SUCH-ITEM".into());
    env.publish_canonical(&[unknown_item.clone(), order(1), order(2)])
        .await;
    let group = unique("sink");
    let shutdown = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let erp = Arc::new(SapBusinessOne::new(sim.config(5_000)).unwrap());
    let sink = env.spawn_sink(&group, erp, &registry, &shutdown);
    let dead = env.read(&env.topics.dlq, 1, Duration::from_secs(60)).await;
    assert_eq!(
        header_str(&dead[0], "ob-dlq-error-class"),
        Some("erp-rejected")
    );
    let reason = header_str(&dead[0], "ob-dlq-reason").unwrap_or_default();
    assert!(
        reason.contains("Item code 'NO-SUCH-ITEM' is invalid"),
        "{reason}"
    );
    wait_for(
        "the other orders and the commit",
        Duration::from_secs(30),
        || async { (sim.orders().len() == 2 && env.uncommitted(&group) == 0).then_some(()) },
    )
    .await;
    shutdown.cancel();
    sink.await.unwrap();
}

/// An adapter with a bug: it panics on every order.
struct Panicking;

#[async_trait::async_trait]
impl orderbridge_sink::ErpClient for Panicking {
    fn name(&self) -> &'static str {
        "panicking"
    }

    async fn upsert(
        &self,
        _event: &OrderEvent,
    ) -> Result<orderbridge_sink::Upserted, orderbridge_sink::ErpError> {
        panic!("adapter bug")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_adapter_stops_the_sink_with_the_record_uncommitted() {
    let env = Env::mock();
    env.publish_canonical(&[order(0)]).await;
    let group = unique("sink");
    let shutdown = CancellationToken::new();
    let sink = env.spawn_sink(
        &group,
        Arc::new(Panicking),
        &prometheus::Registry::new(),
        &shutdown,
    );
    let ended = tokio::time::timeout(Duration::from_secs(60), sink)
        .await
        .expect("the sink stops on its own");
    let panic = ended.unwrap_err().into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("Task(") && message.contains("adapter bug"),
        "{message}"
    );
    assert_eq!(env.uncommitted(&group), 1, "the record is delivered again");
}

/// An ERP that answers every order but one, whose requests always time out.
struct OneTimesOut {
    stuck: String,
}

#[async_trait::async_trait]
impl orderbridge_sink::ErpClient for OneTimesOut {
    fn name(&self) -> &'static str {
        "one-times-out"
    }

    async fn upsert(
        &self,
        event: &OrderEvent,
    ) -> Result<orderbridge_sink::Upserted, orderbridge_sink::ErpError> {
        if event.order_key == self.stuck {
            // What the adapters make of a request that gets no answer in time.
            return Err(orderbridge_sink::ErpError::unavailable(
                "timed out: operation timed out",
                None,
            ));
        }
        Ok(orderbridge_sink::Upserted::Created)
    }
}

/// A record whose own request always times out, while the ERP answers every other order,
/// is parked after its attempts: it cannot hold its key and its partition's commit forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_that_always_times_out_while_others_pass_is_parked() {
    let env = Env::mock();
    let group = unique("sink");
    let mut config = sink_config(&group);
    config.park_after_attempts = 4;
    config.retry_initial_ms = 20;
    config.retry_max_ms = 100;
    let stuck = order(0);
    let erp = Arc::new(OneTimesOut {
        stuck: stuck.order_key.clone(),
    });
    let registry = prometheus::Registry::new();
    let shutdown = CancellationToken::new();
    let sink = env.spawn_sink_with(&config, erp, &registry, Health::new(), &shutdown);
    env.publish_canonical(std::slice::from_ref(&stuck)).await;
    // Other orders keep the ERP visibly healthy meanwhile.
    let mut n = 1;
    let parked = wait_for("the stuck record parked", Duration::from_secs(60), || {
        let (env, registry) = (&env, &registry);
        n += 5;
        let batch: Vec<OrderEvent> = (n..n + 5).map(order).collect();
        async move {
            env.publish_canonical(&batch).await;
            let parked = counter(
                registry,
                "orderbridge_sink_dead_letters_total",
                &[("class", "parked")],
            );
            (parked > 0).then_some(parked)
        }
    })
    .await;
    assert_eq!(parked, 1);
    let dead = env.read(&env.topics.dlq, 1, Duration::from_secs(30)).await;
    assert_eq!(
        rdkafka::Message::key(&dead[0]),
        Some(stuck.order_key.as_bytes())
    );
    wait_for("everything committed", Duration::from_secs(30), || async {
        (env.uncommitted(&group) == 0).then_some(())
    })
    .await;
    shutdown.cancel();
    sink.await.unwrap();
}
