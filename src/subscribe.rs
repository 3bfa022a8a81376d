//! `orderbridge subscribe`: wiring only. The work is `orderbridge_providers::subscribe`; what
//! the provider must send with each delivery comes from ingest's configuration of the source.

use std::path::PathBuf;

use anyhow::Context;
use orderbridge_ingest::verify::credentials::Credential;
use orderbridge_providers::subscribe::{self, DeliveryAuth, Request, TestOutcome};
use orderbridge_providers::Apis;
use orderbridge_schemas::Source;

use crate::config::Config;

/// Options of `orderbridge subscribe`.
#[derive(Debug, clap::Args)]
pub struct SubscribeArgs {
    /// The provider (`sumeru`, `ordermentum`, `bigcommerce`, `ebay`).
    source: String,
    /// The public URL of ingest's webhook route for it (`https://…/webhooks/<source>`).
    #[arg(long)]
    url: String,
    /// The account, as in `[api.<source>.accounts.<account>]` and ingest's accounts.
    #[arg(long, default_value = "-")]
    account: String,
    /// Ask the provider for a test delivery afterwards (where it has one).
    #[arg(long)]
    test: bool,
    /// Where to write a signing secret the provider makes (written once, mode 0600); without
    /// it the secret is printed once on standard output.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// eBay: the address eBay alerts when the endpoint fails (needed once per app).
    #[arg(long)]
    alert_email: Option<String>,
}

impl SubscribeArgs {
    /// The file the provider's signing secret is to be written to.
    pub fn secret_file(&self) -> Option<&std::path::Path> {
        self.secret_file.as_deref()
    }
}

/// Subscribes and says what the provider answered.
pub async fn run(args: &SubscribeArgs, config: &Config) -> anyhow::Result<()> {
    let source: Source = args
        .source
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown source {:?}", args.source))?;
    anyhow::ensure!(
        args.url.starts_with("https://")
            || args.url.starts_with("http://127.0.0.1")
            || args.url.starts_with("http://localhost"),
        "--url must be https (providers deliver only there): {}",
        args.url
    );
    let sources = &config.ingest.sources;
    let delivery_auth = sources
        .ordermentum
        .as_ref()
        .and_then(|a| a.route(&args.account))
        .and_then(|c| c.credentials.first())
        .map(|credential| match credential {
            Credential::Basic {
                username, password, ..
            } => DeliveryAuth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            Credential::Header { header, value, .. } => DeliveryAuth::Header {
                name: header.clone(),
                value: value.clone(),
            },
        });
    let ebay = sources.ebay.as_ref().and_then(|a| a.route(&args.account));
    if let Some(ebay) = ebay.filter(|_| source == Source::Ebay) {
        if ebay.endpoint_url != args.url {
            eprintln!(
                "warning: ingest.sources.ebay.endpoint_url is {}; eBay's challenge hashes the URL \
                 it is given ({}), so they must be the same",
                ebay.endpoint_url, args.url
            );
        }
    }
    let request = Request {
        url: args.url.clone(),
        test: args.test,
        delivery_auth,
        verification_token: ebay.map(|e| e.verification_token.clone()),
        alert_email: args.alert_email.clone(),
    };
    let apis = Apis::new(config.api.clone(), None).context("setting up the HTTP client")?;
    let arguments = serde_json::json!({
        "source": source.as_str(),
        "account": args.account,
        "url": args.url,
        "test": args.test,
    });
    let outcome = subscribe::subscribe(&apis, source, &args.account, &request).await;
    // The secret is never in the log; the subscription's id and whether it was new are.
    let (result, detail) = match &outcome {
        Ok(s) => (
            "ok",
            serde_json::json!({ "id": s.id, "existing": s.existing }),
        ),
        Err(err) => ("failed", serde_json::json!({ "error": err.to_string() })),
    };
    crate::operate::audit::append_after(
        &config.kafka,
        &config.topics.audit,
        &crate::operate::audit::actor(None),
        "subscribe",
        arguments,
        result,
        detail,
    )
    .await;
    let subscribed = outcome?;
    println!(
        "{source}: {} subscription {} → {}",
        if subscribed.existing {
            "existing"
        } else {
            "new"
        },
        subscribed.id,
        args.url
    );
    if let Some(secret) = &subscribed.secret {
        match &args.secret_file {
            Some(path) => {
                subscribe::write_secret_file(path, secret)
                    .with_context(|| format!("writing the secret to {}", path.display()))?;
                println!("signing secret written to {} (mode 0600); give it to ingest as {{ file = \"{}\" }}", path.display(), path.display());
            }
            None => {
                eprintln!("the provider shows this secret once; keep it (ingest needs it) and do not paste it into a log:");
                println!("{}", secret.expose());
            }
        }
    } else if subscribed.existing && args.secret_file.is_some() {
        eprintln!("the subscription existed already: its secret was shown when it was made and is not shown again");
    }
    match &subscribed.test {
        None => {}
        Some(TestOutcome::Delivered { status }) if (200..300).contains(status) => {
            println!("test delivery: ingest answered {status}");
        }
        Some(TestOutcome::Delivered { status }) => {
            anyhow::bail!("test delivery: ingest answered {status} (a 401 means the secret ingest checks is not this subscription's)");
        }
        Some(TestOutcome::Requested) => {
            println!("test delivery requested; the provider sends it shortly")
        }
        Some(TestOutcome::Unavailable(why)) => println!("test delivery: {why}"),
    }
    Ok(())
}
