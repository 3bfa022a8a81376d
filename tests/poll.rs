//! `orderbridge poll` as an operator runs it (a process, killed and restarted), against a
//! provider's simulator and a partner's EDI drop, with the processor and a SQL staging sink
//! behind it:
//!
//! - An API (Sumeru): the orders changed since the start are published, the high-water mark
//!   is kept in Kafka, a killed service goes on from its mark (its overlap catching changes
//!   that became visible late), and every order is in the ERP once.
//! - An EDI drop: X12 850 files claimed once by content (under any name, across a restart),
//!   each purchase order published raw with `ob-source: edi` and normalized into a canonical
//!   order with its lines and totals, a 997 written for each file, files being written left
//!   alone, and what cannot be read dead-lettered with its reason rather than skipped.
//! - The same drop on a partner's SFTP server (a real OpenSSH `sshd`): files fetched once
//!   settled, archived there, the 997s uploaded there, an upload in progress left alone, and
//!   a server with another host key refused.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use rdkafka::Message as _;
use support::pipeline::{counter, stop, topic_env, Env, PARTITIONS};
use support::procs::{free_port, ready, Procs};
use support::{header, unique, wait_for};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

/// `orderbridge.toml` in `dir`: the test broker's `[kafka]`, then `body`.
fn config_file(dir: &Path, env: &Env, body: &str) -> PathBuf {
    let path = dir.join("orderbridge.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap_servers = \"{}\"\n\n{body}",
            env.kafka.bootstrap_servers
        ),
    )
    .unwrap();
    path
}

/// Starts `orderbridge poll` as `poll` and waits until its `/readyz` answers on `port`.
async fn start_poll(procs: &mut Procs, config: &Path, port: u16, vars: &[(String, String)]) {
    procs.spawn(
        "poll",
        &["--config", config.to_str().unwrap(), "poll"],
        vars,
    );
    wait_for("poll ready", DEADLINE, || async move {
        ready(port).then_some(())
    })
    .await;
}

/// Every record of `topic` (read committed), by key: how many each key has.
fn keys_in(env: &Env, topic: &str) -> BTreeMap<String, usize> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = env
        .kafka
        .client_config()
        .set("group.id", unique("keys"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .unwrap();
        ends.insert(partition, high);
    }
    consumer.assign(&assignment).unwrap();
    let mut keys = BTreeMap::new();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let position = consumer.position().unwrap();
        let done = ends.iter().all(|(partition, high)| {
            *high == 0
                || position
                    .find_partition(topic, *partition)
                    .and_then(|p| p.offset().to_raw())
                    .is_some_and(|offset| offset >= *high)
        });
        if done {
            return keys;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{topic} read to its end before the deadline"
        );
        // Polls with its own timeout: a deadline-bounded wait, not a sleep.
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            *keys.entry(key).or_insert(0) += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_is_polled_from_its_mark_across_a_restart_and_each_order_lands_once() {
    use support::providers::sumeru::{SumeruSim, API_KEY};

    let env = Env::mock();
    let sim = SumeruSim::start(20.0, 5).await;
    let now = Utc::now();
    // Thirty orders changed between 90 and 32 minutes ago (created half an hour before).
    let first = sim.seed(
        1,
        30,
        now - chrono::Duration::minutes(120),
        Duration::from_secs(120),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_file(
        dir.path(),
        &env,
        &format!(
            r#"[api.sumeru]
base_url = "{base}"
api_key = {{ env = "SUMERU_API_KEY" }}
rate_per_sec = 20
burst = 5
page_size = 25

[poll]
interval_secs = 1
listen = "127.0.0.1:{port}"

[[poll.api]]
source = "sumeru"
start = "{start}"
overlap_secs = 900
"#,
            base = sim.base_url(),
            start = (now - chrono::Duration::hours(3)).to_rfc3339(),
        ),
    );
    let mut vars = topic_env(&env.topics);
    vars.push(("SUMERU_API_KEY".into(), API_KEY.into()));
    vars.push(("RUST_LOG".into(), "info".into()));

    let shutdown = CancellationToken::new();
    let down = env.downstream(&shutdown).await;
    let (db, sink_metrics) = (down.db.clone(), down.sink_metrics.clone());

    let mut procs = Procs::new(dir.path());
    start_poll(&mut procs, &config, port, &vars).await;
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM orders WHERE source = 'sumeru'")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    wait_for("the first thirty orders in the ERP", DEADLINE, || async {
        (rows().await == 30).then_some(())
    })
    .await;
    // The mark moved past them: a round after theirs has been saved.
    wait_for("a second round", DEADLINE, || async {
        procs
            .log("poll")
            .matches("poll round done")
            .nth(1)
            .map(|_| ())
    })
    .await;

    // Killed; meanwhile twenty more orders change, made visible late (their change times
    // are up to ten minutes old): within the overlap of the mark.
    procs.kill("poll");
    let second = sim.seed(
        31,
        20,
        Utc::now() - chrono::Duration::minutes(40),
        Duration::from_secs(30),
    );
    procs.restart("poll");
    wait_for("all fifty orders in the ERP", DEADLINE, || async {
        (rows().await == 50).then_some(())
    })
    .await;
    let log = procs.log("poll");
    assert!(log.contains("polling from the mark"), "{log}");

    // Once in effect: each created once, none rewritten; and the restarted service did not
    // read from the start again: each of the first thirty is in the raw topic once.
    wait_for("fifty orders created", DEADLINE, || async {
        (counter(
            &sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")],
        ) == 50)
            .then_some(())
    })
    .await;
    assert_eq!(
        counter(
            &sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "updated")],
        ),
        0
    );
    let raw = keys_in(&env, &env.topics.raw);
    for id in &first {
        assert_eq!(
            raw.get(&format!("sumeru:-:{id}")),
            Some(&1),
            "{id}: {raw:?}"
        );
    }
    for id in &second {
        assert!(raw.contains_key(&format!("sumeru:-:{id}")), "{id}: {raw:?}");
    }
    let totals: Vec<(String, String)> =
        sqlx::query_as("SELECT order_key, total FROM orders WHERE source = 'sumeru'")
            .fetch_all(&db)
            .await
            .unwrap();
    for (key, total) in totals {
        let id = key.rsplit(':').next().unwrap();
        let order = sim.order(id).unwrap();
        assert_eq!(total, order["total"].as_str().unwrap_or_default(), "{key}");
    }
    stop(&shutdown, down.stages).await;
}

/// The fixture interchange `case`.
fn fixture(case: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/x12")
        .join(case)
        .join("interchange.x12");
    std::fs::read_to_string(path).unwrap()
}

/// Copies the fixture interchange `case` into `dir` as `name`.
fn drop_file(dir: &Path, case: &str, name: &str) {
    std::fs::write(dir.join(name), fixture(case)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edi_drop_is_claimed_once_normalized_acknowledged_and_nothing_is_skipped() {
    let env = Env::mock();
    let dir = tempfile::tempdir().unwrap();
    let (inbox, acks, done) = (
        dir.path().join("inbox"),
        dir.path().join("acks"),
        dir.path().join("done"),
    );
    for path in [&inbox, &acks, &done] {
        std::fs::create_dir(path).unwrap();
    }
    // Two readable interchanges (three purchase orders), one whose 850 is rejected for its
    // segment count, one whose second 850 repeats the first's control number (the first is
    // booked, the second rejected), a file that is no interchange at all, and one still
    // being uploaded.
    drop_file(&inbox, "po-sample", "acme-0001.x12");
    // (The two-group fixture is a test interchange, ISA15 `T`, which is acknowledged but never
    // booked; here it is sent as production data.)
    let two_groups = fixture("po-two-groups");
    assert!(two_groups.contains("|0|T|:~"));
    std::fs::write(
        inbox.join("acme-0002.x12"),
        two_groups.replace("|0|T|:~", "|0|P|:~"),
    )
    .unwrap();
    drop_file(&inbox, "po-bad-se-count", "acme-0003.x12");
    std::fs::write(inbox.join("acme-0004.x12"), b"PDF-1.4 not an interchange").unwrap();
    drop_file(&inbox, "po-sample", "acme-0005.x12.part");
    drop_file(&inbox, "po-duplicate-control-number", "acme-0006.x12");

    let port = free_port();
    let config = config_file(
        dir.path(),
        &env,
        &format!(
            r#"[poll]
interval_secs = 1
listen = "127.0.0.1:{port}"

[[poll.edi]]
partner = "acme"
dir = "{inbox}"
ack_dir = "{acks}"
done_dir = "{done}"
settle_secs = 0
"#,
            inbox = inbox.display(),
            acks = acks.display(),
            done = done.display(),
        ),
    );
    let mut vars = topic_env(&env.topics);
    vars.push(("RUST_LOG".into(), "info".into()));

    let shutdown = CancellationToken::new();
    let down = env.downstream(&shutdown).await;
    let (db, sink_metrics) = (down.db.clone(), down.sink_metrics.clone());

    let mut procs = Procs::new(dir.path());
    start_poll(&mut procs, &config, port, &vars).await;

    // The four purchase orders, with their lines and totals.
    let orders = || async {
        sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT order_key, total, currency, \
             (SELECT COUNT(*) FROM order_lines l WHERE l.order_key = o.order_key) \
             FROM orders o WHERE source = 'edi' ORDER BY order_key",
        )
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let held = wait_for("four purchase orders in the ERP", DEADLINE, || async {
        let held = orders().await;
        (held.len() == 4).then_some(held)
    })
    .await;
    let expected = [
        ("edi:acme:PO-45001", "780.00", "USD", 2),
        ("edi:acme:PO-46001", "62.50", "USD", 1),
        ("edi:acme:SC-9001", "45.00", "USD", 1),
        ("edi:acme:SC-9002", "156.50", "USD", 2),
    ];
    assert_eq!(held.len(), expected.len());
    for ((key, total, currency, lines), want) in held.iter().zip(expected) {
        assert_eq!(
            (key.as_str(), total.as_str(), currency.as_str(), *lines),
            want
        );
    }
    let skus: Vec<String> = sqlx::query_scalar(
        "SELECT sku FROM order_lines WHERE order_key = 'edi:acme:PO-45001' ORDER BY sku",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(skus, ["GAD-200", "WID-100"]);

    // Nothing skipped: the two rejected 850s and the unreadable file are dead letters, with
    // their reasons and the bytes that came in.
    let dead = env.read(&env.topics.dlq, 3, DEADLINE).await;
    let mut reasons: Vec<(String, String, String)> = dead
        .iter()
        .map(|record| {
            (
                header(record, "ob-dlq-error-class").unwrap_or_default(),
                header(record, "ob-source").unwrap_or_default(),
                header(record, "ob-dlq-reason").unwrap_or_default(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["invalid", "invalid", "unparseable"],
        "{reasons:?}"
    );
    assert!(
        reasons[..2].iter().all(|r| r.2.contains("rejected")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.2.contains("used by an earlier set")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().all(|(_, source, _)| source == "edi"),
        "{reasons:?}"
    );
    assert!(dead
        .iter()
        .any(|record| record.payload() == Some(b"PDF-1.4 not an interchange".as_slice())));

    // A 997 for each readable file: accepted, and the rejected set acknowledged R.
    let mut written: Vec<String> = std::fs::read_dir(&acks)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    written.sort();
    assert_eq!(written.len(), 4, "{written:?}");
    assert!(
        written
            .iter()
            .any(|ack| ack.contains("AK1*PO*905~") && ack.contains("AK5*A~")),
        "{written:?}"
    );
    assert!(
        written
            .iter()
            .any(|ack| ack.contains("AK1|PO|17~") && ack.contains("AK1|PO|18~")),
        "{written:?}"
    );
    assert!(
        written.iter().any(|ack| ack.contains("AK5*R")),
        "{written:?}"
    );
    assert!(
        written
            .iter()
            .any(|ack| ack.contains("AK1*PO*911~") && ack.contains("AK5*R*23")),
        "{written:?}"
    );

    // Claimed files moved aside; the one being uploaded left where it is.
    let names = |path: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    wait_for("the claimed files moved", DEADLINE, || async {
        (names(&inbox) == ["acme-0005.x12.part"]).then_some(())
    })
    .await;
    assert_eq!(
        names(&done),
        [
            "acme-0001.x12",
            "acme-0002.x12",
            "acme-0003.x12",
            "acme-0004.x12",
            "acme-0006.x12"
        ]
    );
    let raw_before = keys_in(&env, &env.topics.raw);
    assert_eq!(
        raw_before.get("edi:acme:PO-45001"),
        Some(&1),
        "{raw_before:?}"
    );

    // Restarted, and the partner sends the first file again under a new name: claimed
    // before, so read no more.
    procs.kill("poll");
    drop_file(&inbox, "po-sample", "acme-0001-resent.x12");
    procs.restart("poll");
    wait_for("the resent file set aside", DEADLINE, || async {
        names(&done)
            .contains(&"acme-0001-resent.x12".to_owned())
            .then_some(())
    })
    .await;
    assert_eq!(keys_in(&env, &env.topics.raw), raw_before);
    assert_eq!(
        counter(
            &sink_metrics,
            "orderbridge_sink_upserts_total",
            &[("outcome", "created")],
        ),
        4
    );
    assert_eq!(names(&acks).len(), 4, "no second 997");
    stop(&shutdown, down.stages).await;
}

/// The file names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edi_drop_on_a_partners_sftp_server_is_fetched_booked_and_acknowledged_there() {
    use orderbridge_providers::poll::sftp::{self, Seen, SftpDrop, SftpError};
    use orderbridge_providers::poll::EdiDrop;
    use support::sftp_server::SftpServer;

    let Some(server) = SftpServer::start().await else {
        return;
    };
    let env = Env::mock();
    let dir = tempfile::tempdir().unwrap();
    // The partner's server (the same machine's file system, reached only through SFTP) and
    // OrderBridge's local drop.
    let (outbound, archive, inbound) = (
        dir.path().join("partner/outbound"),
        dir.path().join("partner/archive"),
        dir.path().join("partner/inbound"),
    );
    let (inbox, acks) = (dir.path().join("inbox"), dir.path().join("acks"));
    for path in [&outbound, &archive, &inbound, &inbox, &acks] {
        std::fs::create_dir_all(path).unwrap();
    }
    drop_file(&outbound, "po-sample", "acme-0001.x12");
    // Still being uploaded by the partner.
    let two_groups = fixture("po-two-groups").replace("|0|T|:~", "|0|P|:~");
    std::fs::write(outbound.join("acme-0002.x12.part"), &two_groups).unwrap();

    let settings = SftpDrop {
        host: "127.0.0.1".into(),
        port: server.port,
        username: server.user.clone(),
        private_key_file: Some(server.client_key.clone()),
        passphrase: None,
        password: None,
        host_key_fingerprint: server.fingerprint.clone(),
        remote_dir: outbound.display().to_string(),
        remote_done_dir: Some(archive.display().to_string()),
        remote_ack_dir: Some(inbound.display().to_string()),
        timeout_secs: 10,
    };
    let drop = EdiDrop {
        partner: "acme".into(),
        dir: inbox.clone(),
        ack_dir: Some(acks.clone()),
        done_dir: None,
        settle_secs: 0,
        sftp: Some(settings.clone()),
    };
    // A server whose host key is not the configured one is refused before anything is read.
    let impostor = SftpDrop {
        host_key_fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".into(),
        ..settings.clone()
    };
    match sftp::sync(&drop, &impostor, &mut Seen::default()).await {
        Err(SftpError::HostKey { seen, .. }) => assert_eq!(seen, server.fingerprint),
        other => panic!("an unknown host key was not refused: {other:?}"),
    }
    assert!(names_in(&inbox).is_empty());
    assert_eq!(names_in(&outbound).len(), 2);

    let port = free_port();
    let config = config_file(
        dir.path(),
        &env,
        &format!(
            r#"[poll]
interval_secs = 1
listen = "127.0.0.1:{port}"

[[poll.edi]]
partner = "acme"
dir = "{inbox}"
ack_dir = "{acks}"
settle_secs = 1

[poll.edi.sftp]
host = "127.0.0.1"
port = {sftp_port}
username = "{user}"
private_key_file = "{key}"
host_key_fingerprint = "{fingerprint}"
remote_dir = "{outbound}"
remote_done_dir = "{archive}"
remote_ack_dir = "{inbound}"
"#,
            inbox = inbox.display(),
            acks = acks.display(),
            sftp_port = server.port,
            user = server.user,
            key = server.client_key.display(),
            fingerprint = server.fingerprint,
            outbound = outbound.display(),
            archive = archive.display(),
            inbound = inbound.display(),
        ),
    );
    let mut vars = topic_env(&env.topics);
    vars.push(("RUST_LOG".into(), "info".into()));
    let shutdown = CancellationToken::new();
    let down = env.downstream(&shutdown).await;
    let db = down.db.clone();
    let mut procs = Procs::new(dir.path());
    start_poll(&mut procs, &config, port, &vars).await;

    let orders = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT order_key FROM orders WHERE source = 'edi' ORDER BY order_key",
        )
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let booked = wait_for("the first purchase order in the ERP", DEADLINE, || async {
        let held = orders().await;
        (!held.is_empty()).then_some(held)
    })
    .await;
    assert_eq!(booked, ["edi:acme:PO-45001"], "{}", server.log());
    // Archived on the server, its 997 delivered there, the upload in progress left alone.
    wait_for("the 997 on the partner's server", DEADLINE, || async {
        (names_in(&inbound).len() == 1).then_some(())
    })
    .await;
    assert_eq!(names_in(&archive), ["acme-0001.x12"]);
    assert_eq!(names_in(&outbound), ["acme-0002.x12.part"]);
    let ack = std::fs::read_to_string(inbound.join(&names_in(&inbound)[0])).unwrap();
    assert!(ack.contains("AK5*A~"), "{ack}");
    assert_eq!(names_in(&acks.join("sent")).len(), 1);

    // The partner's upload completes: its two orders follow.
    std::fs::rename(
        outbound.join("acme-0002.x12.part"),
        outbound.join("acme-0002.x12"),
    )
    .unwrap();
    let booked = wait_for("all three purchase orders in the ERP", DEADLINE, || async {
        let held = orders().await;
        (held.len() == 3).then_some(held)
    })
    .await;
    assert_eq!(
        booked,
        ["edi:acme:PO-45001", "edi:acme:SC-9001", "edi:acme:SC-9002"]
    );
    wait_for("both 997s on the partner's server", DEADLINE, || async {
        (names_in(&inbound).len() == 2).then_some(())
    })
    .await;
    assert_eq!(names_in(&archive), ["acme-0001.x12", "acme-0002.x12"]);
    assert!(names_in(&outbound).is_empty());
    let log = procs.log("poll");
    assert!(log.contains("SFTP drop synced"), "{log}");
    stop(&shutdown, down.stages).await;
}
