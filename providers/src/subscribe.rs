//! `orderbridge subscribe <source> --url <public webhook URL>`: tells a provider where to
//! send its webhooks, through its API, where it has one for that.
//!
//! - **Sumeru**: `POST /api/v1/webhook-subscriptions` for `order.attributed`, with
//!   `secret: "auto"`; the secret comes back once and is written to a file (mode 0600) or
//!   printed once, never logged. `--test` asks Sumeru for its test delivery.
//! - **Ordermentum**: `POST /v1/webhooks` for `order_created` and `order_updated`, with the
//!   supplier's id and the credentials ingest checks (basic auth or a header). Ordermentum
//!   has no test delivery.
//! - **BigCommerce**: `POST /v3/hooks` for `store/order/*`. No test delivery either.
//! - **Shopify**: `webhookSubscriptionCreate` (Admin GraphQL) for `orders/create`,
//!   `orders/updated`, `orders/cancelled` and `refunds/create`; topics already sent to the
//!   URL are left alone. Deliveries are signed with the app's client secret, so nothing
//!   comes back to keep; no test delivery through the API.
//! - **eBay**: the Notification API's destination (with ingest's verification token; eBay
//!   checks the endpoint with its challenge at once) and an `ORDER_CONFIRMATION`
//!   subscription; `--test` asks eBay for its test notification.
//!
//! Other providers register webhooks in their own consoles (Etsy, TikTok Shop, Walmart,
//! Flipkart by ticket, Amazon through SNS): the command says so instead of guessing.

use orderbridge_runtime::Secret;
use orderbridge_schemas::Source;

use crate::client::ApiError;
use crate::{Apis, PerAccount};

/// How the provider must authenticate its deliveries, as ingest checks them (Ordermentum
/// lets the subscriber choose).
#[derive(Debug, Clone)]
pub enum DeliveryAuth {
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// A header with a fixed value.
    Header {
        /// Header name.
        name: String,
        /// Its whole value.
        value: Secret,
    },
}

/// What to subscribe.
#[derive(Debug, Clone)]
pub struct Request {
    /// The public URL the provider is to send to (ingest's `/webhooks/<source>[/<account>]`).
    pub url: String,
    /// Ask the provider for a test delivery afterwards, where it has one.
    pub test: bool,
    /// How the provider authenticates deliveries (Ordermentum).
    pub delivery_auth: Option<DeliveryAuth>,
    /// The token eBay's endpoint challenge hashes (ingest's `verification_token`).
    pub verification_token: Option<Secret>,
    /// eBay: the address eBay alerts when the endpoint fails (set once per app).
    pub alert_email: Option<String>,
}

/// What the provider answered.
#[derive(Debug)]
pub struct Subscribed {
    /// The subscription's id at the provider.
    pub id: String,
    /// The signing secret, when the provider made one (shown once).
    pub secret: Option<Secret>,
    /// Whether an existing subscription for this URL was found rather than a new one made.
    pub existing: bool,
    /// How the test delivery went, when asked for.
    pub test: Option<TestOutcome>,
}

/// How a test delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// The provider delivered it and says what our endpoint answered.
    Delivered {
        /// Our endpoint's status, as the provider saw it.
        status: u16,
    },
    /// The provider accepted the request and delivers on its own time.
    Requested,
    /// The provider has no test delivery; what to do instead.
    Unavailable(String),
}

/// Why a subscription was not made.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// No `[api.<source>]` for the account.
    #[error(
        "no [api.{0}] configured for account {1:?}: subscribing goes through the provider's API"
    )]
    NotConfigured(String, String),
    /// The provider's API has no way to register webhooks.
    #[error("{0}")]
    Unsupported(String),
    /// Something the provider needs was not given.
    #[error("{0}")]
    Missing(String),
    /// The provider refused or could not be reached.
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// `account`'s settings of a source, or the error saying they are missing.
pub(crate) fn settings<'a, T>(
    per: Option<&'a PerAccount<T>>,
    source: Source,
    account: &str,
) -> Result<&'a T, SubscribeError> {
    per.and_then(|p| p.for_account(account)).ok_or_else(|| {
        SubscribeError::NotConfigured(source.as_str().replace('-', "_"), account.to_owned())
    })
}

/// Registers `request.url` with `source`'s API for `account`; see the module docs.
///
/// # Errors
/// [`SubscribeError`].
pub async fn subscribe(
    apis: &Apis,
    source: Source,
    account: &str,
    request: &Request,
) -> Result<Subscribed, SubscribeError> {
    let config = apis.config();
    let shared = apis.shared();
    match source {
        Source::Sumeru => {
            let settings = settings(config.sumeru.as_ref(), source, account)?;
            crate::sumeru::SumeruApi::new(shared, account, settings)?
                .subscribe(request)
                .await
        }
        Source::Ordermentum => {
            let settings = settings(config.ordermentum.as_ref(), source, account)?;
            crate::ordermentum::OrdermentumApi::new(shared, account, settings)?
                .subscribe(request)
                .await
        }
        Source::Bigcommerce => {
            let settings = settings(config.bigcommerce.as_ref(), source, account)?;
            crate::bigcommerce::BigcommerceApi::new(shared, account, settings)?
                .subscribe(request)
                .await
        }
        Source::Ebay => {
            let settings = settings(config.ebay.as_ref(), source, account)?;
            crate::ebay::EbayApi::new(shared, account, settings)
                .subscribe_with(settings, request)
                .await
        }
        Source::Shopify => {
            let settings = settings(config.shopify.as_ref(), source, account)?;
            crate::shopify::ShopifyApi::new(shared, account, settings)?
                .subscribe(request)
                .await
        }
        Source::Etsy
        | Source::TiktokShop
        | Source::Walmart
        | Source::Flipkart
        | Source::AmazonSns
        | Source::Zephyrcart
        | Source::Easypost
        | Source::StandardWebhooks
        | Source::Custom => Err(SubscribeError::Unsupported(format!(
            "{source}: webhooks are registered in the provider's own console or partner portal, \
             not through an API OrderBridge calls; point it at {}",
            request.url
        ))),
        Source::Edi => Err(SubscribeError::Unsupported(
            "edi: partners drop files; `orderbridge poll` reads them ([[poll.edi]])".into(),
        )),
    }
}

/// Writes `secret` to `path`, readable by its owner only (0600), before any byte of it
/// lands; an existing file is made owner-only first, then replaced.
///
/// # Errors
/// When the file cannot be written.
pub fn write_secret_file(path: &std::path::Path, secret: &Secret) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let mut file = options.open(path)?;
    file.write_all(secret.expose().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_secret_file_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ob-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sumeru-secret");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret_file(&path, &Secret::new("wsec_abc")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "wsec_abc\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
