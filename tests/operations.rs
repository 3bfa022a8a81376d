//! Operating the pipeline with the binary's own commands, as an operator would: a dead
//! letter found with `dlq list`, looked at with `dlq show`, fixed by a mapping change and
//! replayed with `dlq replay` (once: a second replay sends nothing, `--again` changes nothing
//! in the ERP), the order's journey read back with `trace`, every action in `audit`; and a
//! consumer group moved back with `reprocess`, which re-delivers without doubling anything.
//!
//! The stages run in the test (ingest's router, the processor, the sink against the Business
//! Central simulator); the commands are the `orderbridge` binary, a separate process talking
//! to the same broker.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::time::Duration;

use orderbridge_processor::Guarantee;
use orderbridge_sink::erp::external_reference;
use rdkafka::Message;
use support::bc_sim::BcSim;
use support::pipeline::{counter, post_shopify, stop, topic_env, Env};
use support::{fixture, unique, wait_for};
use tokio_util::sync::CancellationToken;

/// The ERP's item number for the fixture's SKU `IPOD2008GREEN`: the two differ, so until the
/// mapping says so, Business Central answers "The Item does not exist".
const ERP_ITEM: &str = "1896-S";

/// Runs `orderbridge <args>` against `env`'s broker and topics: (success, stdout, stderr).
async fn orderbridge(
    env: &Env,
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orderbridge"));
    command
        .args(args)
        .env(
            "ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS",
            &env.kafka.bootstrap_servers,
        )
        .env("ORDERBRIDGE_ACTOR", "test-operator")
        .env("RUST_LOG", "warn");
    for (key, value) in topic_env(&env.topics) {
        command.env(key, value);
    }
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `dlq list --json`, parsed.
async fn dead_letters(env: &Env) -> Vec<serde_json::Value> {
    let (ok, out, err) = orderbridge(env, &[], &["dlq", "list", "--json"]).await;
    assert!(ok, "dlq list failed: {err}");
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_dead_lettered_for_an_unknown_item_lands_once_after_a_mapping_fix_and_a_replay() {
    let env = Env::mock();
    let sim = BcSim::start(&[ERP_ITEM]).await;
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::ExactlyOnce, &shutdown);
    let group = unique("sink");
    let first_sink = CancellationToken::new();
    let before_fix = prometheus::Registry::new();
    let sink = env.spawn_sink(&group, sim.client_with_items(&[]), &before_fix, &first_sink);

    let (headers, body) = fixture("shopify", "orders-create-basic");
    assert_eq!(
        post_shopify(&env.ingest(), &headers, &body, None).await,
        200
    );

    // The ERP refuses it: a dead letter, found by class and source.
    let dead = wait_for("the dead letter", Duration::from_secs(60), || async {
        let found = dead_letters(&env).await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = &dead[0];
    assert_eq!(letter["stage"], "sink");
    assert_eq!(letter["class"], "erp-rejected");
    assert_eq!(letter["source"], "shopify");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("The Item does not exist"),
        "{letter}"
    );
    let at = letter["at"].as_str().unwrap().to_owned();
    let order_key = letter["key"].as_str().unwrap().to_owned();
    assert!(sim.orders().is_empty());

    let (ok, table, err) =
        orderbridge(&env, &[], &["dlq", "list", "--class", "erp-rejected"]).await;
    assert!(ok, "{err}");
    assert!(
        table.contains(&at) && table.contains("by class:  erp-rejected 1"),
        "{table}"
    );
    let (ok, table, _) = orderbridge(&env, &[], &["dlq", "list", "--source", "ebay"]).await;
    assert!(ok && table.contains("0 dead letter(s)"), "{table}");

    // `show` decodes the canonical event it holds and names the reason.
    let (ok, shown, err) = orderbridge(&env, &[], &["dlq", "show", &at]).await;
    assert!(ok, "{err}");
    assert!(shown.contains("The Item does not exist"), "{shown}");
    assert!(
        shown.contains("IPOD2008GREEN"),
        "the body is shown: {shown}"
    );
    assert!(
        shown.contains("ob-dlq-error-class: erp-rejected"),
        "{shown}"
    );

    // The mapping is fixed and the sink restarted with it.
    stop(&first_sink, vec![sink]).await;
    let after_fix = prometheus::Registry::new();
    let sink = env.spawn_sink(
        &group,
        sim.client_with_items(&[("IPOD2008GREEN", ERP_ITEM)]),
        &after_fix,
        &shutdown,
    );

    // A dry run publishes nothing.
    let (ok, out, err) = orderbridge(&env, &[], &["dlq", "replay", "--dry-run"]).await;
    assert!(ok, "{err}");
    assert!(out.contains(&format!("would replay {at}")), "{out}");
    assert!(out.contains("1 dead letter(s) would be replayed"), "{out}");

    let (ok, out, err) = orderbridge(
        &env,
        &[],
        &[
            "dlq",
            "replay",
            "--class",
            "erp-rejected",
            "--source",
            "shopify",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("replayed 1 dead letter(s)"), "{out}");
    let order = wait_for(
        "the replayed order in BC",
        Duration::from_secs(60),
        || async { sim.orders().into_iter().next() },
    )
    .await;
    assert_eq!(
        order.external_document_number,
        external_reference(&order_key)
    );
    assert_eq!(order.item_lines()[0]["lineObjectNumber"], ERP_ITEM);
    // The dry run counted as nothing: the order was created exactly once.
    let created = wait_for("the created count", Duration::from_secs(30), || async {
        let n = counter(
            &after_fix,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")],
        );
        (n == 1).then_some(n)
    })
    .await;
    assert_eq!(created, 1);

    // Replaying again sends nothing: the audit log knows it was replayed.
    let (ok, out, err) = orderbridge(&env, &[], &["dlq", "replay"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("replayed 0 dead letter(s), skipped 1"),
        "{out}"
    );
    assert!(err.contains("were replayed before"), "{err}");
    // `--again` sends it, and the ERP is unchanged: already present.
    let (ok, out, err) =
        orderbridge(&env, &[], &["dlq", "replay", "--again", "--record", &at]).await;
    assert!(ok, "{err}");
    assert!(out.contains("replayed 1 dead letter(s)"), "{out}");
    wait_for(
        "the second replay's upsert",
        Duration::from_secs(60),
        || async {
            (counter(
                &after_fix,
                "orderbridge_sink_upserts_total",
                &[("outcome", "already_present")],
            ) == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(sim.orders().len(), 1, "one order in the ERP");
    assert_eq!(
        sim.orders_with_reference(&external_reference(&order_key)),
        1
    );
    assert_eq!(
        dead_letters(&env).await.len(),
        1,
        "nothing dead-lettered again"
    );

    // The journey, by order key, by the source's order id and by the ERP's reference. Status
    // records are written without waiting, so the last one may take a moment to be there.
    wait_for("the last status", Duration::from_secs(30), || async {
        let (_, trace, _) = orderbridge(&env, &[], &["trace", &order_key]).await;
        trace
            .contains("now: sink: already-present in business-central")
            .then_some(())
    })
    .await;
    let order_id = order_key.rsplit(':').next().unwrap();
    for query in [
        order_key.as_str(),
        order_id,
        &external_reference(&order_key),
    ] {
        let (ok, trace, err) = orderbridge(&env, &[], &["trace", query]).await;
        assert!(ok, "trace {query}: {err}");
        eprintln!("$ orderbridge trace {query}\n{trace}");
        assert!(trace.contains(&format!("order {order_key}")), "{trace}");
        for step in [
            "received orders/create",
            "ingest: received",
            "processor: normalized",
            "dead-lettered by sink (erp-rejected): ",
            "sink: dead-lettered in business-central (erp-rejected)",
            "replay of dead letter",
            "sink: created in business-central",
            "sink: already-present in business-central",
            "now: sink: already-present in business-central",
        ] {
            assert!(
                trace.contains(step),
                "trace {query} lacks {step:?}:\n{trace}"
            );
        }
    }
    let (ok, json, err) = orderbridge(&env, &[], &["trace", &order_key, "--json"]).await;
    assert!(ok, "{err}");
    let trace: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let steps = trace["steps"].as_array().unwrap();
    let times: Vec<i64> = steps.iter().map(|s| s["at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    let canonical = steps.iter().filter(|s| s["topic"] == "canonical").count();
    assert_eq!(canonical, 3, "the event, then its two replays: {trace}");

    // Every action is in the audit log, with who did it.
    let (ok, audit, err) =
        orderbridge(&env, &[], &["audit", "--action", "dlq-replay", "--json"]).await;
    assert!(ok, "{err}");
    let actions: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let results: Vec<&str> = actions
        .iter()
        .map(|a| a["result"].as_str().unwrap())
        .collect();
    // Each replay that sends something is "started" before it sends, then "ok".
    assert_eq!(
        results,
        ["dry-run", "started", "ok", "ok", "started", "ok"],
        "{audit}"
    );
    assert!(actions.iter().all(|a| a["actor"] == "test-operator"));
    assert_eq!(actions[1]["detail"]["replaying"][0], at.as_str());
    assert_eq!(actions[2]["detail"]["replayed"][0], at.as_str());
    assert_eq!(actions[3]["detail"]["skipped"][0], at.as_str());

    stop(&shutdown, vec![processor, sink]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_whose_cause_is_not_fixed_is_dead_lettered_again_with_its_count() {
    let env = Env::mock();
    let sim = BcSim::start(&[ERP_ITEM]).await;
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::ExactlyOnce, &shutdown);
    let sink = env.spawn_sink(
        &unique("sink"),
        sim.client_with_items(&[]),
        &prometheus::Registry::new(),
        &shutdown,
    );
    let (headers, body) = fixture("shopify", "orders-create-basic");
    assert_eq!(
        post_shopify(&env.ingest(), &headers, &body, None).await,
        200
    );
    wait_for("the dead letter", Duration::from_secs(60), || async {
        (dead_letters(&env).await.len() == 1).then_some(())
    })
    .await;
    let (ok, out, err) = orderbridge(&env, &[], &["dlq", "replay"]).await;
    assert!(ok && out.contains("replayed 1"), "{out}{err}");
    let again = wait_for(
        "the second dead letter",
        Duration::from_secs(60),
        || async {
            let found = dead_letters(&env).await;
            (found.len() == 2).then_some(found)
        },
    )
    .await;
    assert_eq!(again[1]["replays"], 1, "{again:?}");
    assert_eq!(again[1]["class"], "erp-rejected");
    // Nothing replays on its own: the second dead letter stays until someone replays it.
    let (ok, out, err) = orderbridge(&env, &[], &["dlq", "replay", "--dry-run"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "would replay {}",
            again[1]["at"].as_str().unwrap()
        )) && out.contains("1 dead letter(s) would be replayed"),
        "only the new one: {out}"
    );
    assert!(sim.orders().is_empty());
    stop(&shutdown, vec![processor, sink]).await;
}

#[tokio::test]
async fn commands_refuse_what_they_cannot_do_with_a_clear_error() {
    let env = Env::mock();
    let (ok, _, err) = orderbridge(&env, &[], &["dlq", "show", "0:x"]).await;
    assert!(!ok && err.contains("the offset is not a number"), "{err}");
    let (ok, _, err) = orderbridge(&env, &[], &["dlq", "show", "0:5"]).await;
    assert!(!ok && err.contains("has no record at 0:5"), "{err}");
    let (ok, _, err) = orderbridge(&env, &[], &["trace", "no-such-order"]).await;
    assert!(!ok && err.contains("no order \"no-such-order\""), "{err}");
    let (ok, _, err) = orderbridge(&env, &[], &["dlq", "list", "--since", "yesterday"]).await;
    assert!(!ok && err.contains("neither a time"), "{err}");
    let (ok, _, err) = orderbridge(
        &env,
        &[],
        &[
            "reprocess",
            "--group",
            "sink",
            "--by-duration",
            "1h",
            "--to-earliest",
        ],
    )
    .await;
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    let (ok, _, err) = orderbridge(
        &env,
        &[],
        &["reprocess", "--group", "nope", "--to-earliest"],
    )
    .await;
    assert!(!ok && err.contains("processor or sink"), "{err}");
}

/// On a real broker (tansu, or `KAFKA_BOOTSTRAP`): the mock cluster cannot look offsets up by
/// time nor describe groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reprocessing_the_sink_re_delivers_a_time_range_and_doubles_nothing() {
    let Some(env) = Env::external().await else {
        assert!(
            std::env::var("ORDERBRIDGE_REQUIRE_BROKER").is_err(),
            "ORDERBRIDGE_REQUIRE_BROKER is set but KAFKA_BOOTSTRAP is not"
        );
        eprintln!("skipped: KAFKA_BOOTSTRAP is not set (tests/run.sh starts tansu)");
        return;
    };
    let sim = BcSim::start(&["IPOD2008GREEN"]).await;
    let group = unique("sink");
    let group_env = [("ORDERBRIDGE_SINK__GROUP_ID", group.as_str())];
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::AtLeastOnce, &shutdown);
    let first = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let sink = env.spawn_sink(&group, sim.client_with_items(&[]), &registry, &first);
    let ingest = env.ingest();
    for i in 0..3 {
        let (headers, body, _) = support::pipeline::nth_order("reprocess", i);
        assert_eq!(post_shopify(&ingest, &headers, &body, None).await, 200);
    }
    wait_for("three orders in BC", Duration::from_secs(90), || async {
        (sim.orders().len() == 3).then_some(())
    })
    .await;
    wait_for("the sink's commits", Duration::from_secs(60), || async {
        (committed(&env, &group) == 3).then_some(())
    })
    .await;

    // Refused while the sink runs: it would commit over the new offsets.
    let (ok, _, err) = orderbridge(
        &env,
        &group_env,
        &["reprocess", "--group", "sink", "--by-duration", "1h"],
    )
    .await;
    assert!(!ok && err.contains("live member"), "{err}");

    stop(&first, vec![sink]).await;
    let (ok, out, err) = wait_for("the group to empty", Duration::from_secs(60), || async {
        let result = orderbridge(
            &env,
            &group_env,
            &[
                "reprocess",
                "--group",
                "sink",
                "--by-duration",
                "1h",
                "--dry-run",
            ],
        )
        .await;
        (!result.2.contains("live member")).then_some(result)
    })
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("dry run: nothing changed"), "{out}");
    let planned = moves(&out, &env.topics.canonical);
    assert_eq!(committed(&env, &group), 3, "a dry run moves nothing");

    let (ok, out, err) = orderbridge(
        &env,
        &group_env,
        &["reprocess", "--group", "sink", "--by-duration", "1h"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("record(s) will be read"), "{out}");
    assert_eq!(
        moves(&out, &env.topics.canonical),
        planned,
        "as the dry run said"
    );
    assert!(
        planned
            .iter()
            .all(|(_, before, after)| after <= before || *before == -1),
        "back in time: {planned:?}"
    );
    assert_eq!(committed(&env, &group), 0, "the hour holds every record");
    // Moving forward past what the group has not read is refused unless asked for.
    let (ok, _, err) = orderbridge(
        &env,
        &group_env,
        &["reprocess", "--group", "sink", "--to-latest", "--dry-run"],
    )
    .await;
    assert!(!ok && err.contains("would skip"), "{err}");

    let again = prometheus::Registry::new();
    let sink = env.spawn_sink(&group, sim.client_with_items(&[]), &again, &shutdown);
    wait_for(
        "the range re-delivered",
        Duration::from_secs(90),
        || async {
            (counter(
                &again,
                "orderbridge_sink_upserts_total",
                &[("outcome", "already_present")],
            ) == 3)
                .then_some(())
        },
    )
    .await;
    assert_eq!(sim.orders().len(), 3, "nothing doubled");
    assert_eq!(
        counter(
            &again,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")]
        ),
        0
    );
    let (ok, audit, err) =
        orderbridge(&env, &[], &["audit", "--action", "reprocess", "--json"]).await;
    assert!(ok, "{err}");
    let results: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["result"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        results.first().map(String::as_str),
        Some("refused"),
        "{audit}"
    );
    assert_eq!(
        results[results.len() - 3..],
        ["dry-run", "ok", "refused"],
        "{audit}"
    );
    stop(&shutdown, vec![processor, sink]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revision_corrects_an_order_the_erp_holds_where_a_reprocess_cannot() {
    let env = Env::mock();
    // The ERP knows both numbers; the order first goes in under the SKU as it is.
    let sim = BcSim::start(&["IPOD2008GREEN", ERP_ITEM]).await;
    let shutdown = CancellationToken::new();
    let processor = env.spawn_processor(Guarantee::ExactlyOnce, &shutdown);
    let group = unique("sink");
    let first = CancellationToken::new();
    let sink = env.spawn_sink(
        &group,
        sim.client_with_items(&[]),
        &prometheus::Registry::new(),
        &first,
    );
    let (headers, body) = fixture("shopify", "orders-create-basic");
    assert_eq!(
        post_shopify(&env.ingest(), &headers, &body, None).await,
        200
    );
    let order = wait_for("the order in BC", Duration::from_secs(60), || async {
        sim.orders().into_iter().next()
    })
    .await;
    assert_eq!(order.item_lines()[0]["lineObjectNumber"], "IPOD2008GREEN");
    let raw = env.read(&env.topics.raw, 1, Duration::from_secs(10)).await;
    let key = String::from_utf8(raw[0].key().unwrap().to_vec()).unwrap();

    // The mapping is corrected: the SKU is the ERP's item 1896-S.
    stop(&first, vec![sink]).await;
    let fixed = prometheus::Registry::new();
    let sink = env.spawn_sink(
        &group,
        sim.client_with_items(&[("IPOD2008GREEN", ERP_ITEM)]),
        &fixed,
        &shutdown,
    );
    let (ok, out, err) = orderbridge(
        &env,
        &[],
        &["revise", "--revision", "1", "--key", &key, "--dry-run"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("1 raw record(s) of 1 order(s) would be"),
        "{out}"
    );
    let (ok, out, err) =
        orderbridge(&env, &[], &["revise", "--revision", "1", "--key", &key]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("re-published 1 raw record(s) of 1 order(s) at revision 1"),
        "{out}"
    );
    wait_for("the corrected order", Duration::from_secs(60), || async {
        let orders = sim.orders();
        (orders.len() == 1 && orders[0].item_lines()[0]["lineObjectNumber"] == ERP_ITEM)
            .then_some(())
    })
    .await;
    assert_eq!(
        counter(
            &fixed,
            "orderbridge_sink_upserts_total",
            &[("outcome", "updated")]
        ),
        1
    );
    assert_eq!(sim.orders().len(), 1, "corrected, not doubled");

    // The same revision again is a duplicate delivery: nothing more reaches the ERP.
    let (ok, _, err) = orderbridge(&env, &[], &["revise", "--revision", "1", "--key", &key]).await;
    assert!(ok, "{err}");
    let (ok, out, err) =
        orderbridge(&env, &[], &["revise", "--revision", "0", "--key", &key]).await;
    assert!(!ok && err.contains("a revision is 1 to 9"), "{out}{err}");
    let trace = wait_for(
        "the duplicate in the trace",
        Duration::from_secs(30),
        || async {
            let (_, out, _) = orderbridge(&env, &[], &["trace", &key]).await;
            out.contains("processor: duplicate").then_some(out)
        },
    )
    .await;
    assert!(trace.contains("at revision 1"), "{trace}");
    assert!(
        trace.contains("sink: updated in business-central"),
        "{trace}"
    );
    assert_eq!(
        counter(
            &fixed,
            "orderbridge_sink_upserts_total",
            &[("outcome", "updated")]
        ),
        1
    );
    stop(&shutdown, vec![processor, sink]).await;
}

/// The sum of the committed offsets of `group` in the canonical topic (each the next offset
/// to read; read from the group, not from the partitions' ends, which tansu reports short).
fn committed(env: &Env, group: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = env
        .kafka
        .client_config()
        .set("group.id", group)
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for partition in 0..support::pipeline::PARTITIONS {
        partitions.add_partition(&env.topics.canonical, partition);
    }
    consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(at) => at,
            rdkafka::Offset::Beginning
            | rdkafka::Offset::End
            | rdkafka::Offset::Stored
            | rdkafka::Offset::Invalid
            | rdkafka::Offset::OffsetTail(_) => 0,
        })
        .sum()
}

/// `(partition, before, after)` of each line of `reprocess`'s table for `topic`.
fn moves(table: &str, topic: &str) -> Vec<(i32, i64, i64)> {
    table
        .lines()
        .filter(|line| line.starts_with(topic))
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            (
                columns[1].parse().unwrap(),
                columns[2].parse().unwrap_or(-1),
                columns[3].parse().unwrap(),
            )
        })
        .collect()
}
