//! The named presets: how each provider that signs with an HMAC does it, as data.

use super::{
    Algorithm, Encoding, KeyForm, Scheme, SignatureFormat, Template, TimestampRule,
    DEFAULT_TOLERANCE_SECS,
};
use serde::Deserialize;

/// A named preset: how a provider signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body.
    Shopify,
    /// `X-Sumeru-Signature: sha256=<hex>` of the body (seed 000).
    Sumeru,
    /// `x-zephyrcart-signature: t=<unix>,v1=<hex>` of `t.body`, with a replay window.
    Zephyrcart,
    /// Standard Webhooks `v1`: `webhook-signature: v1,<base64>` of `id.timestamp.body`,
    /// key base64 after `whsec_`.
    StandardWebhooks,
    /// Etsy: Standard Webhooks headers and key form.
    Etsy,
    /// BigCommerce: Standard Webhooks headers, keyed with the app's client secret as it is
    /// (its samples base64 the secret only for the library to decode it again).
    Bigcommerce,
    /// TikTok Shop: `Authorization: <hex>` of `app_key + body`.
    TiktokShop,
    /// EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<hex>` of the body, secret NFKD.
    Easypost,
    /// Walmart performance webhooks: `WM_SEC.SIGNATURE`, base64 HMAC-SHA256 of
    /// `METHOD\nPATH\nTIMESTAMP\nsha256hex(body)`, with `WM_SEC.TIMESTAMP`.
    WalmartWmSec,
    /// Stripe: `Stripe-Signature: t=…,v1=…`, hex HMAC-SHA256 of `t.body`, the whole `whsec_…`
    /// string as key, 5-minute tolerance.
    Stripe,
    /// WooCommerce: `X-WC-Webhook-Signature`, base64 of the body, secret HTML-entity decoded.
    Woocommerce,
    /// Square: `x-square-hmacsha256-signature`, base64 of notification URL + body.
    Square,
    /// GitHub-style `X-Hub-Signature-256: sha256=<hex>` of the body; the default for small
    /// platforms that copy it.
    Github,
}

impl Preset {
    /// The preset's scheme.
    pub fn scheme(self) -> Scheme {
        let single = |header: &str, prefix: Option<&str>, encoding, signed: &str| Scheme {
            header: header.to_owned(),
            format: SignatureFormat::Single {
                prefix: prefix.map(str::to_owned),
            },
            algorithm: Algorithm::Sha256,
            encoding,
            signed: template(signed),
            key: KeyForm::Utf8,
            id_header: None,
            timestamp: None,
        };
        let standard_webhooks = || Scheme {
            header: "webhook-signature".into(),
            format: SignatureFormat::List {
                separator: " ".into(),
                version: "v1".into(),
            },
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Base64,
            signed: template("{id}.{timestamp}.{body}"),
            key: KeyForm::WhsecBase64,
            id_header: Some("webhook-id".into()),
            timestamp: Some(TimestampRule {
                header: Some("webhook-timestamp".into()),
                tolerance_secs: DEFAULT_TOLERANCE_SECS,
            }),
        };
        let stripe_like = |header: &str| Scheme {
            header: header.to_owned(),
            format: SignatureFormat::Fields {
                separator: ",".into(),
                signature: "v1".into(),
                timestamp: Some("t".into()),
            },
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            signed: template("{timestamp}.{body}"),
            key: KeyForm::Utf8,
            id_header: None,
            timestamp: Some(TimestampRule {
                header: None,
                tolerance_secs: DEFAULT_TOLERANCE_SECS,
            }),
        };
        match self {
            Preset::Shopify => single("x-shopify-hmac-sha256", None, Encoding::Base64, "{body}"),
            Preset::Sumeru => single(
                "x-sumeru-signature",
                Some("sha256="),
                Encoding::Hex,
                "{body}",
            ),
            Preset::Zephyrcart => stripe_like("x-zephyrcart-signature"),
            Preset::StandardWebhooks | Preset::Etsy => standard_webhooks(),
            Preset::Bigcommerce => Scheme {
                key: KeyForm::Utf8,
                ..standard_webhooks()
            },
            Preset::TiktokShop => single("authorization", None, Encoding::Hex, "{app_key}{body}"),
            Preset::Easypost => Scheme {
                key: KeyForm::Nfkd,
                ..single(
                    "x-hmac-signature",
                    Some("hmac-sha256-hex="),
                    Encoding::Hex,
                    "{body}",
                )
            },
            Preset::WalmartWmSec => Scheme {
                timestamp: Some(TimestampRule {
                    header: Some("wm_sec.timestamp".into()),
                    tolerance_secs: DEFAULT_TOLERANCE_SECS,
                }),
                ..single(
                    "wm_sec.signature",
                    None,
                    Encoding::Base64,
                    "{method}\n{path_and_query}\n{timestamp}\n{body_sha256_hex}",
                )
            },
            Preset::Stripe => stripe_like("stripe-signature"),
            Preset::Woocommerce => Scheme {
                key: KeyForm::HtmlEntitiesDecoded,
                ..single("x-wc-webhook-signature", None, Encoding::Base64, "{body}")
            },
            Preset::Square => single(
                "x-square-hmacsha256-signature",
                None,
                Encoding::Base64,
                "{url}{body}",
            ),
            Preset::Github => single(
                "x-hub-signature-256",
                Some("sha256="),
                Encoding::Hex,
                "{body}",
            ),
        }
    }
}

fn template(text: &str) -> Template {
    // Presets are literals of this file; a bad one fails every test.
    text.parse().unwrap_or_else(|err| panic!("preset: {err}"))
}
