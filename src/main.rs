//! The `orderbridge` binary: command-line parsing and wiring only. Each service is a library
//! (`ingest/`, `processor/`, `sink/`); this file reads the configuration, builds what they
//! share (registry, codec, ERP client) and runs the chosen one until SIGINT or SIGTERM.

mod backfill;
mod config;
mod console;
mod dev;
mod operate;
mod probe;
mod registry_api;
mod send_test;
mod subscribe;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orderbridge_runtime::Ops;
use orderbridge_schemas::{ConfluentRegistry, EmbeddedRegistry, OrderEventCodec, SchemaRegistry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RegistryConfig};

#[derive(Debug, Parser)]
#[command(
    name = "orderbridge",
    version,
    about = "Commerce webhooks to ERPs, through Kafka"
)]
struct Cli {
    /// TOML configuration file; `ORDERBRIDGE_<TABLE>__<KEY>` variables override it.
    #[arg(long, short, global = true, env = "ORDERBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    json_logs: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive webhooks, verify them and publish them to the raw topic.
    Ingest,
    /// Normalize raw webhooks into canonical order events.
    Process,
    /// Upsert canonical order events into the configured ERP.
    Sink,
    /// Complete thin marketplace notifications from the providers' APIs.
    Enrich,
    /// Poll providers' APIs for changed orders and partners' EDI drops for purchase orders.
    Poll,
    /// Everything in one process on an embedded broker, writing to a local SQLite file.
    Dev(dev::DevArgs),
    /// Read a provider's past orders from its API into the raw topic, resumably.
    Backfill(backfill::BackfillArgs),
    /// Register ingest's webhook URL with a provider (and ask for its test delivery).
    Subscribe(subscribe::SubscribeArgs),
    /// Post a signed sample order to ingest and follow it to the ERP, stage by stage.
    SendTest(send_test::SendTestArgs),
    /// An order's journey: raw records, canonical events, dead letters and what each stage
    /// recorded, in time order.
    Trace(operate::trace::TraceArgs),
    /// Dead letters: list them, show one, replay them once the cause is fixed.
    #[command(subcommand)]
    Dlq(operate::dlq::DlqCommand),
    /// Move the processor's or the sink's consumer group to read a range again.
    Reprocess(operate::reprocess::ReprocessArgs),
    /// Correct orders the ERP holds after a normalizer or mapping fix: re-publish their raw
    /// records at a new revision, which the version guard lets through.
    Revise(operate::revise::ReviseArgs),
    /// The operators' web page: failures, orders, replays, the audit log (`[console]`).
    Console,
    /// The operators' actions (replays, reprocessing, subscriptions, console sign-ins).
    Audit(operate::audit::AuditArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Field-mapping helpers.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Topic helpers.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// GET a health endpoint (e.g. `http://127.0.0.1:9091/readyz`); exit 0 on a 2xx answer.
    /// A container health check for images without curl.
    Probe {
        /// A plain `http://` URL.
        url: String,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create the topics that are missing, with `[topic_layout]` (partitions, replication,
    /// retention; the attribution topic compacted), and check that the co-partitioned ones
    /// (raw, canonical, attribution) agree. Exits non-zero when they do not.
    Ensure,
}

#[derive(Debug, Subcommand)]
enum MappingCommand {
    /// Print the request that creating a canonical event's order would send to the
    /// configured ERP, with `[sink.mapping]` applied. Sends nothing.
    Test {
        /// The ERP `kind`; it must be the configuration's `[sink.erp]`.
        #[arg(long)]
        erp: String,
        /// A canonical event as JSON (e.g. `tests/fixtures/shopify/orders-create-basic/expected.json`).
        event: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a complete, commented configuration with every source and option.
    Example,
    /// Read the configuration (file and environment) and check it, as the services would.
    Check,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.json_logs);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    if let Command::Dev(args) = &cli.command {
        return dev::run(args, cli.config.as_deref(), shutdown).await;
    }
    if let Command::Probe { url, timeout_ms } = &cli.command {
        let status = probe::probe(url, std::time::Duration::from_millis(*timeout_ms)).await?;
        println!("{url}: {status}");
        return Ok(());
    }
    if let Command::Config(ConfigCommand::Example) = &cli.command {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    // `subscribe --secret-file` writes a file the configuration may already name.
    let pending = match &cli.command {
        Command::Subscribe(args) => args.secret_file(),
        Command::Ingest
        | Command::Process
        | Command::Sink
        | Command::Enrich
        | Command::Poll
        | Command::Dev(_)
        | Command::Backfill(_)
        | Command::SendTest(_)
        | Command::Trace(_)
        | Command::Dlq(_)
        | Command::Reprocess(_)
        | Command::Revise(_)
        | Command::Console
        | Command::Audit(_)
        | Command::Config(_)
        | Command::Mapping(_)
        | Command::Topics(_)
        | Command::Probe { .. } => None,
    };
    let config = match pending {
        Some(pending) => Config::load_pending(cli.config.as_deref(), pending)?,
        None => Config::load(cli.config.as_deref())?,
    };
    match cli.command {
        Command::Backfill(args) => backfill::run(&args, &config, shutdown).await?,
        Command::Subscribe(args) => subscribe::run(&args, &config).await?,
        Command::SendTest(args) => send_test::run(&args, &config).await?,
        Command::Trace(args) => {
            let codec = codec(&config.schema_registry, &config.topics.canonical).ok();
            operate::trace::run(&args, &config.kafka, &config.topics, codec).await?;
        }
        Command::Dlq(command) => {
            let codec = codec(&config.schema_registry, &config.topics.canonical).ok();
            operate::dlq::run(
                &command,
                &config.kafka,
                &config.topics,
                config.topic_layout.dlq_retention_ms,
                codec,
            )
            .await?;
        }
        Command::Reprocess(args) => {
            let (group_id, topics) = match args.group.as_str() {
                "processor" => (
                    config.processor.group_id.clone(),
                    vec![config.topics.raw.clone(), config.topics.attribution.clone()],
                ),
                "sink" => (
                    config.sink.group_id.clone(),
                    vec![config.topics.canonical.clone()],
                ),
                other => anyhow::bail!("--group {other:?}: processor or sink"),
            };
            operate::reprocess::run(
                &args,
                &config.kafka,
                &group_id,
                topics,
                &config.topics.audit,
            )
            .await?;
        }
        Command::Revise(args) => {
            operate::revise::run(
                &args,
                &config.kafka,
                &config.topics,
                &config.processor.enrichment,
            )
            .await?;
        }
        Command::Console => {
            let codec = codec(&config.schema_registry, &config.topics.canonical).ok();
            console::run(
                &config.console,
                &config.kafka,
                &config.topics,
                config.topic_layout.dlq_retention_ms,
                codec,
                shutdown,
            )
            .await?;
        }
        Command::Audit(args) => {
            operate::audit::run(&args, &config.kafka, &config.topics.audit).await?;
        }
        Command::Ingest => {
            let listener = TcpListener::bind(config.ingest.listen)
                .await
                .with_context(|| format!("binding {}", config.ingest.listen))?;
            orderbridge_ingest::run(
                &config.ingest,
                &config.kafka,
                &config.topics,
                listener,
                shutdown,
            )
            .await?;
        }
        Command::Process => {
            let codec = codec(&config.schema_registry, &config.topics.canonical)?;
            let ops = TcpListener::bind(config.processor.listen).await?;
            orderbridge_processor::run(
                &config.processor,
                &config.kafka,
                &config.topics,
                codec,
                Ops::new(Some(ops)),
                shutdown,
            )
            .await?;
        }
        Command::Enrich => {
            let ops = Ops::new(Some(TcpListener::bind(config.enrich.listen).await?));
            let metrics = orderbridge_providers::metrics::EnrichMetrics::register(&ops.registry)?;
            let apis =
                orderbridge_providers::Apis::new(config.api.clone(), Some(metrics.api.clone()))?;
            let health = std::sync::Arc::clone(&ops.health);
            let mut ops = ops;
            ops.serve(&shutdown);
            orderbridge_providers::enrich::run(
                &config.enrich,
                &config.kafka,
                &config.topics,
                Arc::new(apis),
                metrics,
                health,
                shutdown,
            )
            .await?;
        }
        Command::Poll => {
            let ops = Ops::new(Some(TcpListener::bind(config.poll.listen).await?));
            let metrics = orderbridge_providers::poll::PollMetrics::register(&ops.registry)?;
            let apis =
                orderbridge_providers::Apis::new(config.api.clone(), Some(metrics.api.clone()))?;
            let context = orderbridge_providers::poll::Context {
                apis: Arc::new(apis),
                publisher: orderbridge_providers::publish::RawPublisher::new(
                    &config.kafka,
                    &config.topics.raw,
                )?,
                checkpoints: orderbridge_providers::checkpoint::Checkpoints::new(
                    &config.kafka,
                    &config.topics.checkpoints,
                )?,
                metrics,
            };
            let health = Arc::clone(&ops.health);
            let mut ops = ops;
            ops.serve(&shutdown);
            orderbridge_providers::poll::run(&config.poll, context, health, shutdown).await?;
        }
        Command::Sink => {
            let codec = codec(&config.schema_registry, &config.topics.canonical)?;
            let erp = orderbridge_sink::erp::build(&config.sink.erp, mapping(&config)?).await?;
            let ops = TcpListener::bind(config.sink.listen).await?;
            orderbridge_sink::run(
                &config.sink,
                &config.kafka,
                &config.topics,
                codec,
                erp,
                Ops::new(Some(ops)),
                shutdown,
            )
            .await?;
        }
        Command::Mapping(MappingCommand::Test { erp, event }) => {
            let configured = config.sink.erp.kind();
            anyhow::ensure!(
                erp == configured,
                "--erp {erp}: the configuration's [sink.erp] is {configured}; the request is built from it"
            );
            let text = std::fs::read_to_string(&event)
                .with_context(|| format!("reading {}", event.display()))?;
            let event: orderbridge_schemas::OrderEvent = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a canonical event", event.display()))?;
            let client = orderbridge_sink::erp::build_remote(&config.sink.erp, mapping(&config)?)?;
            let request = client
                .preview(&event)
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            println!("{request}");
        }
        Command::Topics(TopicsCommand::Ensure) => {
            let states = orderbridge_runtime::ensure_topics(
                &config.kafka,
                &config.topics,
                config.topic_layout,
            )
            .await?;
            for state in states {
                println!(
                    "{:<32} {:>4} partitions  {}",
                    state.name,
                    state.partitions,
                    if state.created { "created" } else { "exists" }
                );
            }
            println!("raw, canonical and attribution are co-partitioned");
        }
        Command::Config(ConfigCommand::Check) => {
            mapping(&config)?;
            if !config.console.users.is_empty() {
                console::auth::Operators::new(
                    config.console.users.clone(),
                    config.console.session_minutes,
                    b"config check",
                )
                .map_err(anyhow::Error::msg)?;
            }
            let routes = config.ingest.sources.routes();
            println!(
                "configuration is valid; ingest serves {} route(s):",
                routes.len()
            );
            for (source, account) in routes {
                match account {
                    Some(account) => println!("  /webhooks/{source}/{account}"),
                    None => println!("  /webhooks/{source}"),
                }
            }
        }
        Command::Dev(_) | Command::Probe { .. } | Command::Config(ConfigCommand::Example) => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

/// The sink's checked field mapping.
fn mapping(config: &Config) -> anyhow::Result<Arc<orderbridge_sink::mapping::Mapping>> {
    let mapping = orderbridge_sink::mapping::Mapping::new(config.sink.mapping.clone())
        .map_err(|err| anyhow::anyhow!("sink.mapping: {err}"))?;
    Ok(Arc::new(mapping))
}

/// The registry from configuration: Confluent when a URL is set, else embedded.
fn registry(config: &RegistryConfig) -> anyhow::Result<Arc<dyn SchemaRegistry>> {
    Ok(match &config.url {
        Some(url) => {
            let credentials = config
                .username
                .as_deref()
                .zip(config.password.as_ref().map(|p| p.expose()));
            Arc::new(ConfluentRegistry::new(url, credentials)?)
        }
        None => {
            tracing::warn!(
                "no schema_registry.url: using the embedded registry (same-build processes only)"
            );
            Arc::new(EmbeddedRegistry::new())
        }
    })
}

fn codec(config: &RegistryConfig, canonical_topic: &str) -> anyhow::Result<Arc<OrderEventCodec>> {
    Ok(Arc::new(OrderEventCodec::new(
        registry(config)?,
        canonical_topic,
    )?))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to standard error: standard output is the commands' answers (`dlq list --json`).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
