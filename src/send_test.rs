//! `orderbridge send-test <source>`: an operator's smoke test after a deploy. It signs a
//! sample order with the source's configured secret, posts it to ingest, and follows it
//! through the pipeline (the raw topic, the canonical topic or the dead-letter topic, the
//! sink's committed offset), printing each stage it passed and how long after the post.
//!
//! The sample is a real order to every stage: it lands in the ERP, marked so it is easy to
//! find and remove (SKU `OB-SEND-TEST`, customer `send-test@orderbridge.invalid`, order id
//! `ob-send-test-<unix ms>`). Sources whose webhooks name an order without carrying it are
//! not offered: their sample would have to exist at the provider.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use orderbridge_ingest::config::{Accounts, HmacConfig};
use orderbridge_ingest::verify::scheme::Preset;
use orderbridge_ingest::verify::sign::signed_headers;
use orderbridge_schemas::{headers, Source};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;

/// Options of `orderbridge send-test`.
#[derive(Debug, clap::Args)]
pub struct SendTestArgs {
    /// The source to impersonate: `shopify`, `sumeru` or `zephyrcart`.
    source: String,
    /// The account, as in `/webhooks/<source>/<account>`; `-` for the source's own route.
    #[arg(long, default_value = "-")]
    account: String,
    /// Ingest's base URL; by default `http://127.0.0.1:<port of ingest.listen>`.
    #[arg(long)]
    url: Option<String>,
    /// Give up (exit 1) when the order is not through the pipeline within this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

/// A signed sample: where it goes, what it carries, and the order key it should become.
struct Sample {
    preset: Preset,
    body: String,
    /// Provider headers besides the signature.
    headers: Vec<(String, String)>,
    order_id: String,
}

fn sample(source: Source, millis: i64, now: &str) -> anyhow::Result<Sample> {
    let order_id = format!("ob-send-test-{millis}");
    let email = "send-test@orderbridge.invalid";
    let line = serde_json::json!({"sku": "OB-SEND-TEST", "title": "OrderBridge send-test", "quantity": 1, "price": "1.00"});
    Ok(match source {
        Source::Shopify => {
            // Shopify order ids are numbers; the marker is in the name, SKU and email.
            let id = millis;
            let body = serde_json::json!({
                "id": id, "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
                "name": format!("#OB-SEND-TEST-{millis}"), "email": email,
                "created_at": now, "updated_at": now, "currency": "USD",
                "financial_status": "paid", "fulfillment_status": null,
                "total_price": "1.00", "subtotal_price": "1.00", "total_tax": "0.00",
                "total_discounts": "0.00",
                "customer": {"email": email, "first_name": "OrderBridge", "last_name": "send-test"},
                "line_items": [line],
            });
            Sample {
                preset: Preset::Shopify,
                body: body.to_string(),
                headers: vec![
                    ("x-shopify-topic".into(), "orders/create".into()),
                    ("x-shopify-webhook-id".into(), format!("ob-send-test-{millis}")),
                    ("x-shopify-event-id".into(), format!("ob-send-test-{millis}")),
                    ("x-shopify-triggered-at".into(), now.into()),
                ],
                order_id: id.to_string(),
            }
        }
        Source::Sumeru => Sample {
            preset: Preset::Sumeru,
            body: serde_json::json!({
                "id": format!("evt_ob_send_test_{millis}"), "type": "order.created", "created_at": now,
                "data": {"order_id": order_id, "customer": {"email": email}, "total": "1.00",
                         "currency": "usd", "created_at": now, "line_items": [line]},
            })
            .to_string(),
            headers: Vec::new(),
            order_id,
        },
        Source::Zephyrcart => Sample {
            preset: Preset::Zephyrcart,
            body: serde_json::json!({
                "id": format!("evt_ob_send_test_{millis}"), "type": "order.created", "created_at": now,
                "data": {"id": order_id, "currency": "USD", "customer": {"email": email},
                         "total": "1.00", "line_items": [line]},
            })
            .to_string(),
            headers: Vec::new(),
            order_id,
        },
        other @ (Source::AmazonSns
        | Source::Ebay
        | Source::Etsy
        | Source::TiktokShop
        | Source::Walmart
        | Source::Flipkart
        | Source::Easypost
        | Source::Ordermentum
        | Source::Bigcommerce
        | Source::StandardWebhooks
        | Source::Custom
        | Source::Edi) => anyhow::bail!(
            "send-test signs samples for shopify, sumeru and zephyrcart; {other}'s webhooks \
             name an order the provider must have (use `subscribe --test` where the provider \
             offers a test delivery)"
        ),
    })
}

/// `account`'s HMAC settings of `source` in ingest's configuration.
fn hmac_settings<'a>(config: &'a Config, source: Source, account: &str) -> Option<&'a HmacConfig> {
    let sources = &config.ingest.sources;
    let accounts: Option<&Accounts<HmacConfig>> = match source {
        Source::Shopify => sources.shopify.as_ref(),
        Source::Sumeru => sources.sumeru.as_ref(),
        Source::Zephyrcart => sources.zephyrcart.as_ref(),
        Source::AmazonSns
        | Source::Ebay
        | Source::Etsy
        | Source::TiktokShop
        | Source::Walmart
        | Source::Flipkart
        | Source::Easypost
        | Source::Ordermentum
        | Source::Bigcommerce
        | Source::StandardWebhooks
        | Source::Custom
        | Source::Edi => None,
    };
    accounts.and_then(|a| a.route(account))
}

/// Ingest's own base URL from its listen address (on this machine: the loopback).
fn default_url(listen: std::net::SocketAddr) -> String {
    format!("http://127.0.0.1:{}", listen.port())
}

/// Posts the sample and follows it; see the module docs.
pub async fn run(args: &SendTestArgs, config: &Config) -> anyhow::Result<()> {
    let source: Source = args
        .source
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown source {:?}", args.source))?;
    let now = chrono::Utc::now();
    let sample = sample(
        source,
        now.timestamp_millis(),
        &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )?;
    let settings = hmac_settings(config, source, &args.account).with_context(|| {
        format!(
            "ingest.sources.{} has no secret for account {:?}: send-test signs with the secret ingest checks",
            source.as_str().replace('-', "_"),
            args.account
        )
    })?;
    let path = match args.account.as_str() {
        "-" => format!("/webhooks/{source}"),
        account => format!("/webhooks/{source}/{account}"),
    };
    let signature = signed_headers(
        sample.preset,
        settings,
        &path,
        sample.body.as_bytes(),
        &format!("msg_ob_send_test_{}", now.timestamp_millis()),
        now.timestamp(),
    )
    .map_err(|err| anyhow::anyhow!("ingest.sources.{source}: {err}"))?;
    let order_key = format!("{source}:{}:{}", args.account, sample.order_id);
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| default_url(config.ingest.listen));
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);

    // Where every topic ends before the post: the sample is after it.
    let follower = Follower::new(config)?;
    let started = Instant::now();
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", base.trim_end_matches('/')))
        .header("content-type", "application/json")
        .body(sample.body.clone())
        .timeout(Duration::from_secs(30));
    for (name, value) in sample.headers.iter().chain(&signature) {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("posting to {base}{path}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("send-test {source}: order {order_key}");
    stage(
        "ingest",
        &format!("{} {}", status.as_u16(), text.trim()),
        started,
    );
    match status.as_u16() {
        200..=299 => {}
        401 => anyhow::bail!(
            "ingest refused the signature: the secret ingest checks is not the one in this configuration"
        ),
        404 => anyhow::bail!("ingest does not serve {path}: is {source} configured for account {:?}?", args.account),
        code => anyhow::bail!("ingest answered {code}: {}", text.trim()),
    }

    let sink_group = config.sink.group_id.clone();
    let key = order_key.clone();
    tokio::task::spawn_blocking(move || follower.follow(&key, &sink_group, started, deadline))
        .await
        .context("following the sample")?
}

fn stage(name: &str, what: &str, started: Instant) {
    println!(
        "  {name:<10} {what} (+{:.2} s)",
        started.elapsed().as_secs_f64()
    );
}

/// Reads raw, canonical and the dead-letter topic from where they ended before the post.
struct Follower {
    consumer: BaseConsumer,
    raw: String,
    canonical: String,
    dlq: String,
    /// Where each partition of the dead-letter topic ended before the post.
    dlq_starts: BTreeMap<i32, i64>,
    settings: orderbridge_runtime::KafkaSettings,
}

impl Follower {
    fn new(config: &Config) -> anyhow::Result<Self> {
        let topics = &config.topics;
        let consumer: BaseConsumer = config
            .kafka
            .client_config()
            .set("enable.auto.commit", "false")
            .set("group.id", "orderbridge-send-test")
            .create()
            .context("connecting to Kafka")?;
        let mut assignment = TopicPartitionList::new();
        let mut dlq_starts = BTreeMap::new();
        for topic in [&topics.raw, &topics.canonical, &topics.dlq] {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("reading {topic}'s partitions"))?;
            let partitions = metadata
                .topics()
                .first()
                .map(|t| t.partitions().len())
                .unwrap_or(0);
            anyhow::ensure!(partitions > 0, "topic {topic} does not exist");
            for partition in 0..partitions as i32 {
                let (_, high) = consumer
                    .fetch_watermarks(topic, partition, Duration::from_secs(10))
                    .with_context(|| format!("reading where {topic} [{partition}] ends"))?;
                assignment.add_partition_offset(topic, partition, Offset::Offset(high))?;
                if *topic == topics.dlq {
                    dlq_starts.insert(partition, high);
                }
            }
        }
        consumer.assign(&assignment).context("reading the topics")?;
        Ok(Self {
            consumer,
            raw: topics.raw.clone(),
            canonical: topics.canonical.clone(),
            dlq: topics.dlq.clone(),
            dlq_starts,
            settings: config.kafka.clone(),
        })
    }

    /// Waits for the sample in each stage in turn; an error when it was dead-lettered or
    /// did not get through in time.
    fn follow(
        self,
        key: &str,
        sink_group: &str,
        started: Instant,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let mut raw_seen = false;
        let mut canonical: Option<(i32, i64)> = None;
        while canonical.is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} within the timeout; is the processor running (and the enrich stage, for a thin source)?",
                if raw_seen { "not in the canonical topic" } else { "not in the raw topic" }
            );
            let Some(message) = self.consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message.context("reading the topics")?;
            if message.key() != Some(key.as_bytes()) {
                continue;
            }
            let topic = message.topic();
            if topic == self.raw && !raw_seen {
                raw_seen = true;
                stage(
                    "raw",
                    &format!("{topic} [{}] @ {}", message.partition(), message.offset()),
                    started,
                );
            } else if topic == self.canonical {
                canonical = Some((message.partition(), message.offset()));
                stage(
                    "canonical",
                    &format!("{topic} [{}] @ {}", message.partition(), message.offset()),
                    started,
                );
            } else if topic == self.dlq {
                anyhow::bail!("dead-lettered: {}", dead_letter(&message));
            }
        }
        let (partition, offset) = canonical.unwrap_or_default();
        self.wait_for_sink(sink_group, partition, offset, deadline)?;
        // A sink that could not write the order dead-letters it before it commits past it.
        self.read_dead_letters_to_their_end(key, deadline)?;
        stage(
            "erp",
            &format!("written; sink group {sink_group} committed past it"),
            started,
        );
        Ok(())
    }

    /// Reads the dead-letter topic up to where it ends now; an error naming the reason when
    /// the sample is in it.
    fn read_dead_letters_to_their_end(&self, key: &str, deadline: Instant) -> anyhow::Result<()> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.dlq), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        let mut ends = Vec::with_capacity(partitions);
        for partition in 0..partitions as i32 {
            let (_, end) =
                self.consumer
                    .fetch_watermarks(&self.dlq, partition, Duration::from_secs(10))?;
            ends.push((partition, end));
        }
        loop {
            let position = self.consumer.position()?;
            let behind = ends.iter().any(|(partition, end)| {
                let at = position
                    .find_partition(&self.dlq, *partition)
                    .and_then(|e| e.offset().to_raw())
                    .unwrap_or(-1);
                at < *end && self.start_of_dlq(*partition) < *end
            });
            if !behind {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the dead-letter topic could not be read in time"
            );
            if let Some(message) = self.consumer.poll(Duration::from_millis(200)) {
                let message = message.context("reading the dead-letter topic")?;
                if message.topic() == self.dlq && message.key() == Some(key.as_bytes()) {
                    anyhow::bail!("dead-lettered by the sink: {}", dead_letter(&message));
                }
            }
        }
    }

    /// Where the dead-letter topic's `partition` ended before the post.
    fn start_of_dlq(&self, partition: i32) -> i64 {
        self.dlq_starts.get(&partition).copied().unwrap_or(0)
    }

    /// Waits until the sink group's committed offset of `partition` is past `offset`.
    fn wait_for_sink(
        &self,
        group: &str,
        partition: i32,
        offset: i64,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let consumer: BaseConsumer = self
            .settings
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .context("connecting to Kafka")?;
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.canonical, partition);
        loop {
            let committed = consumer
                .committed_offsets(list.clone(), Duration::from_secs(10))
                .ok()
                .and_then(|c| {
                    c.find_partition(&self.canonical, partition)
                        .and_then(|e| e.offset().to_raw())
                })
                .unwrap_or(-1);
            if committed > offset {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the sink (group {group}) has not committed past it in time (committed {committed}); is the sink running?"
            );
            std::thread::sleep(Duration::from_millis(200)); // poll interval, bounded by the deadline
        }
    }
}

/// A dead letter's stage and reason, from its headers.
fn dead_letter(message: &rdkafka::message::BorrowedMessage<'_>) -> String {
    let header = |name: &str| {
        message.headers().and_then(|h| {
            h.iter()
                .find(|header| header.key == name)
                .and_then(|header| header.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    format!(
        "{} ({}): {}",
        header(headers::DLQ_STAGE).unwrap_or_else(|| "?".into()),
        header(headers::DLQ_ERROR_CLASS).unwrap_or_else(|| "?".into()),
        header(headers::DLQ_REASON).unwrap_or_else(|| "no reason given".into())
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ingest_is_reached_on_its_own_port() {
        assert_eq!(
            default_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            default_url("[::]:9000".parse().unwrap()),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn only_sources_that_carry_the_order_are_offered() {
        assert!(sample(Source::Shopify, 1, "2026-12-02T00:00:00Z").is_ok());
        assert!(sample(Source::Sumeru, 1, "2026-12-02T00:00:00Z").is_ok());
        let thin = sample(Source::Ebay, 1, "2026-12-02T00:00:00Z")
            .err()
            .map(|e| e.to_string());
        assert!(thin.is_some_and(|e| e.contains("subscribe --test")));
    }
}
