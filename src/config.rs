//! The configuration file: one TOML document with a table per service, overridden by
//! `ORDERBRIDGE_<TABLE>__<KEY>` environment variables (double underscore between levels),
//! e.g. `ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`. Values are read as TOML when they
//! parse (numbers, booleans, arrays) and as strings otherwise.

use std::path::Path;

use anyhow::{bail, Context};
use orderbridge_ingest::IngestConfig;
use orderbridge_processor::ProcessorConfig;
use orderbridge_runtime::{KafkaSettings, Secret, TopicLayout};
use orderbridge_schemas::Topics;
use orderbridge_sink::SinkConfig;
use serde::Deserialize;

const ENV_PREFIX: &str = "ORDERBRIDGE_";

/// The complete, commented configuration `orderbridge config example` prints.
pub const EXAMPLE: &str = include_str!("example.toml");

/// Everything, for every subcommand; each uses its part.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Brokers and client properties.
    pub kafka: KafkaSettings,
    /// Topic names.
    pub topics: Topics,
    /// Partitions and replicas for topics created at start-up.
    pub topic_layout: TopicLayout,
    /// The schema registry.
    pub schema_registry: RegistryConfig,
    /// Ingest.
    pub ingest: IngestConfig,
    /// Processor.
    pub processor: ProcessorConfig,
    /// Sink.
    pub sink: SinkConfig,
    /// Providers' APIs, per source and account (completion, backfill, polling,
    /// subscriptions).
    pub api: orderbridge_providers::ApiConfig,
    /// The enrich stage.
    pub enrich: orderbridge_providers::enrich::EnrichConfig,
    /// The poll service (APIs that do not push, EDI drops).
    pub poll: orderbridge_providers::poll::PollConfig,
    /// The operators' console (`orderbridge console`).
    pub console: crate::console::ConsoleConfig,
}

/// Where schemas are registered.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Confluent-compatible registry URL; without one, the embedded registry is used, which
    /// only works when every process runs the same build (see `schemas/src/registry.rs`).
    pub url: Option<String>,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<Secret>,
}

impl Config {
    /// Reads `path` (if given), applies environment overrides, validates.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a value is invalid; the message names it.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with(path, std::env::vars())
    }

    /// [`Config::load`] for a command that is about to write the secret file `pending`
    /// (`subscribe --secret-file`): the configuration may already name it (ingest will read
    /// it), but it does not exist yet, so the entries whose secret is that file are left out
    /// of this reading instead of failing it.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_pending(path: Option<&Path>, pending: &Path) -> anyhow::Result<Self> {
        if pending.exists() {
            return Self::load(path);
        }
        Self::load_inner(path, std::env::vars(), Some(pending))
    }

    /// [`Config::load`] with the environment `vars`.
    ///
    /// # Errors
    /// As [`Config::load`]. An error never repeats the value of an environment override:
    /// it may be a secret.
    pub fn load_with(
        path: Option<&Path>,
        vars: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        Self::load_inner(path, vars, None)
    }

    fn load_inner(
        path: Option<&Path>,
        vars: impl Iterator<Item = (String, String)>,
        pending: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
            None => String::new(),
        };
        let mut document: toml::Table =
            toml::from_str(&text).context("parsing the configuration")?;
        let overrides = apply_env_overrides(&mut document, vars)?;
        if let Some(pending) = pending {
            forget_secret_file(&mut document, pending);
        }
        let mut config: Config =
            toml::Value::Table(document)
                .try_into()
                .map_err(|err: toml::de::Error| {
                    let mut message = err.to_string();
                    for (_, value) in &overrides {
                        if value.len() >= 4 {
                            message = message.replace(value.as_str(), "[redacted]");
                        }
                    }
                    let names: Vec<&str> = overrides.iter().map(|(n, _)| n.as_str()).collect();
                    let from = if names.is_empty() {
                        String::new()
                    } else {
                        format!(" (with environment overrides {})", names.join(", "))
                    };
                    anyhow::anyhow!("reading the configuration{from}: {message}")
                })?;
        config.ingest.validate().map_err(anyhow::Error::msg)?;
        config.processor.validate().map_err(anyhow::Error::msg)?;
        config.sink.validate().map_err(anyhow::Error::msg)?;
        config.enrich.validate().map_err(anyhow::Error::msg)?;
        config.poll.validate().map_err(anyhow::Error::msg)?;
        // The accounts whose thin notifications `orderbridge enrich` completes: the processor
        // leaves those to it.
        config.processor.enrichment =
            orderbridge_providers::completion::Enrichment::new(config.api.clone());
        if config.topic_layout.partitions < 1 || config.topic_layout.replication < 1 {
            bail!("topic_layout.partitions and topic_layout.replication must be at least 1");
        }
        Ok(config)
    }
}

/// Whether `value` is a secret reference to the file `path` (`{ file = "<path>" }`).
fn is_secret_file(value: &toml::Value, path: &Path) -> bool {
    value
        .as_table()
        .and_then(|t| t.get("file"))
        .and_then(toml::Value::as_str)
        .is_some_and(|file| Path::new(file) == path)
}

/// Whether `value` holds, at any depth, a secret reference to the file `path`.
fn mentions_secret_file(value: &toml::Value, path: &Path) -> bool {
    is_secret_file(value, path)
        || match value {
            toml::Value::Table(table) => table.values().any(|v| mentions_secret_file(v, path)),
            toml::Value::Array(items) => items.iter().any(|v| mentions_secret_file(v, path)),
            toml::Value::String(_)
            | toml::Value::Integer(_)
            | toml::Value::Float(_)
            | toml::Value::Boolean(_)
            | toml::Value::Datetime(_) => false,
        }
}

/// Leaves out of `document` what needs the secret file `path`: in `ingest.sources`, the
/// routes (a source's own settings, or an account's) naming it, since a route without its
/// secret would not build; elsewhere the keys holding it.
fn forget_secret_file(document: &mut toml::Table, path: &Path) {
    let sources = document
        .get_mut("ingest")
        .and_then(toml::Value::as_table_mut)
        .and_then(|ingest| ingest.get_mut("sources"))
        .and_then(toml::Value::as_table_mut);
    if let Some(sources) = sources {
        for source in sources.iter_mut().filter_map(|(_, v)| v.as_table_mut()) {
            if let Some(accounts) = source
                .get_mut("accounts")
                .and_then(toml::Value::as_table_mut)
            {
                accounts.retain(|_, account| !mentions_secret_file(account, path));
            }
            let own = source
                .iter()
                .any(|(key, value)| key != "accounts" && mentions_secret_file(value, path));
            if own {
                source.retain(|key, _| key == "accounts");
            }
        }
        sources.retain(|_, source| source.as_table().is_none_or(|t| !t.is_empty()));
    }
    forget_secret_keys(document, path);
}

/// Removes every key of `table`, at any depth, whose value is the secret file `path`.
fn forget_secret_keys(table: &mut toml::Table, path: &Path) {
    table.retain(|_, value| !is_secret_file(value, path));
    for (_, value) in table.iter_mut() {
        match value {
            toml::Value::Table(inner) => forget_secret_keys(inner, path),
            toml::Value::Array(items) => {
                items.retain(|item| !mentions_secret_file(item, path));
                for item in items.iter_mut() {
                    if let toml::Value::Table(inner) = item {
                        forget_secret_keys(inner, path);
                    }
                }
            }
            toml::Value::String(_)
            | toml::Value::Integer(_)
            | toml::Value::Float(_)
            | toml::Value::Boolean(_)
            | toml::Value::Datetime(_) => {}
        }
    }
}

/// Sets `ORDERBRIDGE_A__B=value` as `a.b = value` in `document`, and returns the overrides
/// it applied (`(variable, value)`). Only names with a table and a key are overrides:
/// `ORDERBRIDGE_CONFIG` (the file's path) and other single-word variables are not
/// configuration keys. librdkafka properties (`kafka.properties.*`) are strings whatever
/// they look like (a password of digits); other values are read as TOML when they parse
/// (numbers, booleans, arrays) and as strings otherwise.
fn apply_env_overrides(
    document: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut applied = Vec::new();
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix(ENV_PREFIX).filter(|p| p.contains("__")) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            bail!("environment variable {name}: empty key segment");
        }
        let property = keys.len() == 3 && keys[0] == "kafka" && keys[1] == "properties";
        let value = if property {
            toml::Value::String(raw.clone())
        } else {
            toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.clone()))
        };
        let (last, parents) = keys.split_last().context("empty override")?;
        let mut table = &mut *document;
        for key in parents {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .with_context(|| format!("environment variable {name}: {key} is not a table"))?;
        }
        table.insert(last.clone(), value);
        applied.push((name, raw));
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use orderbridge_schemas::Source;

    #[test]
    fn a_secret_file_about_to_be_written_does_not_stop_the_reading() {
        let dir = tempfile::tempdir().unwrap();
        let pending = dir.path().join("sumeru-secret");
        let path = dir.path().join("orderbridge.toml");
        std::fs::write(
            &path,
            format!(
                "[ingest.sources.sumeru]\nsecrets = [{{ id = \"whk\", secret = {{ file = \"{}\" }} }}]\n",
                pending.display()
            ),
        )
        .unwrap();
        let err = Config::load(Some(&path)).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read"), "{err:#}");
        let config = Config::load_pending(Some(&path), &pending).unwrap();
        assert!(
            config.ingest.sources.sumeru.is_none(),
            "the route waits for its secret"
        );
        // Once written, it is read as any secret.
        std::fs::write(&pending, "wsec_1\n").unwrap();
        let config = Config::load_pending(Some(&path), &pending).unwrap();
        let sumeru = config.ingest.sources.sumeru.unwrap();
        assert_eq!(
            sumeru.route("-").unwrap().secrets[0].secret.expose(),
            "wsec_1"
        );
    }

    #[test]
    fn the_example_is_a_valid_configuration_of_every_source() {
        // Every secret the example names, with a value every secret form accepts
        // (whsec_ + base64, 32-80 of [A-Za-z0-9_-]).
        for name in EXAMPLE.split("env = \"").skip(1) {
            let name = &name[..name.find('"').unwrap()];
            std::env::set_var(name, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        }
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("shopify-wholesale");
        std::fs::write(&secret_file, "wholesale-secret\n").unwrap();
        let text = EXAMPLE.replace(
            "/run/secrets/shopify-wholesale",
            &secret_file.display().to_string(),
        );
        assert_ne!(text, EXAMPLE, "the example names a file secret");
        let path = dir.path().join("example.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let served: std::collections::BTreeSet<_> = config
            .ingest
            .sources
            .routes()
            .into_iter()
            .map(|(source, _)| source)
            .collect();
        let all: std::collections::BTreeSet<_> = Source::ALL
            .iter()
            .copied()
            .filter(|s| s.sends_webhooks())
            .collect();
        assert_eq!(served, all, "the example shows every source");
        let built =
            orderbridge_ingest::verify::registry::build(&config.ingest, &reqwest::Client::new())
                .unwrap();
        assert_eq!(built.len(), config.ingest.sources.routes().len());
    }

    #[test]
    fn environment_overrides_nest_and_parse() {
        let mut document: toml::Table =
            toml::from_str("[kafka]\nbootstrap_servers = \"a:1\"\n").unwrap();
        let vars = [
            (
                "ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS".to_owned(),
                "b:2".to_owned(),
            ),
            (
                "ORDERBRIDGE_INGEST__BODY_LIMIT_BYTES".to_owned(),
                "2048".to_owned(),
            ),
            (
                "ORDERBRIDGE_PROCESSOR__GUARANTEE".to_owned(),
                "at-least-once".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
            // The --config flag's own variable is not a configuration key.
            (
                "ORDERBRIDGE_CONFIG".to_owned(),
                "/etc/orderbridge.toml".to_owned(),
            ),
        ];
        apply_env_overrides(&mut document, vars.into_iter()).unwrap();
        let config: Config = toml::Value::Table(document).try_into().unwrap();
        assert_eq!(config.kafka.bootstrap_servers, "b:2");
        assert_eq!(config.ingest.body_limit_bytes, 2048);
        assert_eq!(
            config.processor.guarantee,
            orderbridge_processor::Guarantee::AtLeastOnce
        );
    }

    #[test]
    fn an_override_that_does_not_fit_is_refused_without_echoing_its_value() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        // A password where a secret reference belongs: refused, the value not repeated.
        let err = Config::load_with(
            None,
            vars(&[("ORDERBRIDGE_SCHEMA_REGISTRY__PASSWORD", "hunter2-pa55")]).into_iter(),
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(!message.contains("hunter2-pa55"), "{message}");
        assert!(
            message.contains("ORDERBRIDGE_SCHEMA_REGISTRY__PASSWORD"),
            "{message}"
        );
        // A numeric or array-looking librdkafka property is a property, not TOML.
        let config = Config::load_with(
            None,
            vars(&[
                ("ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS", "kafka:9092"),
                ("ORDERBRIDGE_KAFKA__PROPERTIES__SASL.PASSWORD", "123456"),
                ("ORDERBRIDGE_KAFKA__PROPERTIES__CLIENT.ID", "[edge]"),
            ])
            .into_iter(),
        )
        .unwrap();
        assert_eq!(config.kafka.properties["sasl.password"], "123456");
        assert_eq!(config.kafka.properties["client.id"], "[edge]");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("[ingest]\nbody_limit = 1\n").unwrap_err();
        assert!(err.to_string().contains("body_limit"), "{err}");
    }
}
