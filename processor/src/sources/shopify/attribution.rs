//! The attribution a Shopify order carries itself: the UTM parameters of `landing_site` (the
//! path and query the buyer's session began on) and, without them, the `referring_site`.
//!
//! That is the session that ended in the order, so it is the order's *last* touch; Shopify's
//! webhook says nothing of earlier ones, and nothing here guesses them. An attribution
//! platform's events on `orders.attribution.v1` replace this when they arrive.

use orderbridge_schemas::{Attribution, Touchpoint};

/// The last touch named by `landing_site`'s `utm_*` parameters, or by `referring_site`'s
/// host; `None` when the order names neither.
pub(super) fn from_landing(
    landing_site: Option<&str>,
    referring_site: Option<&str>,
) -> Option<Attribution> {
    let (mut source, mut medium, mut campaign) = (None, None, None);
    if let Some(query) = landing_site.and_then(|site| site.split_once('?').map(|(_, q)| q)) {
        let query = query.split('#').next().unwrap_or_default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "utm_source" => source = Some(value.to_owned()),
                "utm_medium" => medium = Some(value.to_owned()),
                "utm_campaign" => campaign = Some(value.to_owned()),
                _ => {}
            }
        }
    }
    let referrer = referring_site.and_then(host);
    let channel = match (&medium, &source, &referrer) {
        (Some(medium), _, _) => channel_of(medium),
        (None, Some(_), _) => "unknown".to_owned(),
        (None, None, Some(_)) => "referral".to_owned(),
        (None, None, None) => return None,
    };
    let touch = Touchpoint {
        channel,
        campaign,
        source: source.or(referrer),
        medium,
        occurred_at: None,
        credit_share: None,
    };
    Some(Attribution {
        first_touch: None,
        last_touch: Some(touch.clone()),
        touchpoints: vec![touch],
    })
}

/// The channel a `utm_medium` stands for, in the names of the canonical model; an unknown
/// medium is kept as written (lowercased) rather than guessed.
fn channel_of(medium: &str) -> String {
    let medium = medium.to_ascii_lowercase();
    match medium.as_str() {
        "cpc" | "ppc" | "paid_search" | "paidsearch" | "sem" => "paid_search".to_owned(),
        "email" | "e-mail" | "newsletter" => "email".to_owned(),
        "social" | "social-network" | "social_media" | "sm" => "social".to_owned(),
        "paid_social" | "paidsocial" => "paid_social".to_owned(),
        "display" | "banner" | "cpm" => "display".to_owned(),
        "affiliate" => "affiliate".to_owned(),
        "referral" => "referral".to_owned(),
        "organic" => "organic_search".to_owned(),
        _ => medium,
    }
}

/// The host of a referring URL (`https://www.google.com/search?q=…` → `www.google.com`).
fn host(site: &str) -> Option<String> {
    let site = site.trim();
    let rest = site.split_once("://").map_or(site, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn utm_parameters_become_the_last_touch() {
        let found = from_landing(
            Some("/products/mug?utm_source=google&utm_medium=cpc&utm_campaign=spring%20sale#top"),
            Some("https://www.google.com/"),
        )
        .unwrap();
        let touch = found.last_touch.unwrap();
        assert_eq!(touch.channel, "paid_search");
        assert_eq!(touch.source.as_deref(), Some("google"));
        assert_eq!(touch.medium.as_deref(), Some("cpc"));
        assert_eq!(touch.campaign.as_deref(), Some("spring sale"));
        assert!(
            found.first_touch.is_none(),
            "Shopify does not tell the first touch"
        );
    }

    #[test]
    fn a_referrer_alone_is_a_referral_and_nothing_is_no_attribution() {
        let found = from_landing(Some("/"), Some("https://blog.example.com/post?id=1")).unwrap();
        let touch = found.last_touch.unwrap();
        assert_eq!(touch.channel, "referral");
        assert_eq!(touch.source.as_deref(), Some("blog.example.com"));
        assert_eq!(from_landing(Some("/collections/all"), None), None);
        assert_eq!(from_landing(None, Some("  ")), None);
    }

    #[test]
    fn an_unknown_medium_is_kept_not_guessed() {
        let found = from_landing(Some("/?utm_medium=Podcast&utm_source=show"), None).unwrap();
        assert_eq!(found.last_touch.unwrap().channel, "podcast");
    }
}
