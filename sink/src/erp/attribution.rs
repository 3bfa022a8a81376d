//! Marketing attribution as the ERPs can hold it, written the same way by every adapter.
//!
//! An attribution platform's reason to sync orders into an ERP is revenue analytics: the
//! first-touch channel, the last-touch channel and each touchpoint's credit. Each ERP has a
//! different place for them (staging columns, Odoo's UTM fields, SAP and NetSuite custom
//! fields, a Business Central comment line); this file holds what they share:
//!
//! - **When it is written.** An event that carries attribution replaces what the ERP holds;
//!   an event without any leaves it as it is. The processor copies known attribution onto
//!   every later event of an order, so "none" means "not known here" (a replay past the
//!   processor's attribution window, a backfill), never "the order lost its attribution".
//!   A late attribution is a partial event (`partial: true`, lineage origin `attribution`)
//!   that the adapters apply in place, as they apply a status: the version guard holds, the
//!   lines and prices stay.
//! - **Credit shares.** The canonical share is a float in 0..1. A share that is not a finite
//!   number in that range (any producer may write the topic) is written as unknown: one
//!   strange share must not dead-letter an order whose lines are fine.
//! - **Text that must fit.** Custom fields have lengths, so the compact forms below are cut
//!   to a budget in UTF-8 bytes (never more characters than bytes, so a byte budget fits a
//!   character limit too), at a character boundary. A touchpoint list is cut by whole
//!   entries and says how many it left out (`google_ads:40%;email:35%;+3`), never in the
//!   middle of a channel or a number.

use orderbridge_schemas::{Attribution, OrderEvent, Touchpoint};
use serde::Deserialize;
use serde_json::Value;

/// Which touch an ERP with room for one touch writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Touch {
    /// The first touch (what brought the buyer in).
    First,
    /// The last touch (what closed the sale); the default, as in most analytics tools.
    #[default]
    Last,
}

impl Touch {
    /// This touch of `attribution`, when the platform named one. Never guessed from the
    /// touchpoint list: its order is the platform's business.
    pub(crate) fn of(self, attribution: &Attribution) -> Option<&Touchpoint> {
        match self {
            Touch::First => attribution.first_touch.as_ref(),
            Touch::Last => attribution.last_touch.as_ref(),
        }
    }
}

/// The custom fields (SAP Business One UDFs, NetSuite custom body fields) that take the
/// attribution; an empty name is a field not written. The fields must exist in the ERP
/// (both refuse a field they do not know, so a misspelt name dead-letters orders with the
/// ERP's message instead of losing the attribution silently).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionFields {
    /// Takes the first touch's channel, e.g. `paid_search`. Default: empty (not written).
    pub first_touch: String,
    /// Takes the last touch's channel. Default: empty (not written).
    pub last_touch: String,
    /// Takes every touchpoint with its credit, `channel:credit%;…` in the platform's order
    /// (`google_ads:40%;email:60%`; a touch without a credit is its channel alone), cut by
    /// whole entries to the field's length with `+N` for the N left out. Default: empty.
    pub touchpoints: String,
}

impl AttributionFields {
    /// Puts `event`'s attribution into the configured fields of `body`, each at most `max`
    /// bytes. Nothing when the event carries no attribution (the ERP keeps what it holds) or
    /// `body` is not an object. A touch the platform did not name clears its field.
    pub(crate) fn write(&self, body: &mut Value, event: &OrderEvent, max: usize) {
        let (Some(attribution), Some(fields)) = (&event.attribution, body.as_object_mut()) else {
            return;
        };
        let channel = |touch: Option<&Touchpoint>| {
            Value::String(touch.map_or_else(String::new, |t| cut(&t.channel, max)))
        };
        if !self.first_touch.is_empty() {
            fields.insert(
                self.first_touch.clone(),
                channel(attribution.first_touch.as_ref()),
            );
        }
        if !self.last_touch.is_empty() {
            fields.insert(
                self.last_touch.clone(),
                channel(attribution.last_touch.as_ref()),
            );
        }
        if !self.touchpoints.is_empty() {
            let (text, _) = compact(&attribution.touchpoints, max);
            fields.insert(self.touchpoints.clone(), Value::String(text));
        }
    }
}

/// `touch`'s credit share when it is a finite number in 0..1; anything else is unknown.
pub(crate) fn credit_share(touch: &Touchpoint) -> Option<f64> {
    touch
        .credit_share
        .filter(|share| share.is_finite() && (0.0..=1.0).contains(share))
}

/// A share (0..1) as a percentage with at most two decimals: `0.4` → `40`, `1/3` → `33.33`.
pub(crate) fn percent(share: f64) -> String {
    let text = format!("{:.2}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        // `end` > 0 here: 0 is always a boundary.
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default().to_owned()
}

/// One touchpoint of the compact form: `channel:credit%`, or the channel alone.
fn entry(touch: &Touchpoint) -> String {
    match credit_share(touch) {
        Some(share) => format!("{}:{}%", touch.channel, percent(share)),
        None => touch.channel.clone(),
    }
}

/// The touchpoints as `channel:credit%;…` in at most `max` bytes, and how many entries it
/// kept whole. When they do not all fit, the first that do are kept and `+N` says how many
/// were left out.
pub(crate) fn compact(touchpoints: &[Touchpoint], max: usize) -> (String, usize) {
    let entries: Vec<String> = touchpoints.iter().map(entry).collect();
    let joined = entries.join(";");
    if joined.len() <= max {
        return (joined, entries.len());
    }
    // Keep the longest prefix whose text plus `;+N` fits. Lengths of outside text are added
    // saturating: a sum that large simply does not fit.
    let mut kept = 0;
    let mut head = 0_usize;
    for (index, text) in entries.iter().enumerate() {
        let with = if index == 0 {
            text.len()
        } else {
            head.saturating_add(1).saturating_add(text.len())
        };
        let left = entries.len().saturating_sub(index + 1);
        let marker = format!(";+{left}").len();
        if with.saturating_add(marker) > max {
            break;
        }
        head = with;
        kept = index + 1;
    }
    let left = entries.len().saturating_sub(kept);
    let text = match entries.get(..kept) {
        Some(whole) if !whole.is_empty() => format!("{};+{left}", whole.join(";")),
        // Not even one entry fits: say how many there are, as far as that fits.
        Some(_) | None => cut(&format!("+{left}"), max),
    };
    (text, kept)
}

/// One line for a place that holds a sentence of at most `max` bytes (a Business Central
/// comment line): `Attribution: first google_ads, last email; google_ads:40%;email:60%`,
/// the touchpoints only when at least one fits whole. `None` when the attribution names no
/// touch at all.
pub(crate) fn summary(attribution: &Attribution, max: usize) -> Option<String> {
    let touches: Vec<String> = [
        ("first", attribution.first_touch.as_ref()),
        ("last", attribution.last_touch.as_ref()),
    ]
    .into_iter()
    .filter_map(|(which, touch)| touch.map(|t| format!("{which} {}", t.channel)))
    .collect();
    if touches.is_empty() && attribution.touchpoints.is_empty() {
        return None;
    }
    let head = cut(&format!("{SUMMARY_PREFIX}{}", touches.join(", ")), max);
    let separator = if touches.is_empty() { "" } else { "; " };
    let room = max
        .saturating_sub(head.len())
        .saturating_sub(separator.len());
    let (list, kept) = compact(&attribution.touchpoints, room);
    Some(if kept > 0 {
        format!("{head}{separator}{list}")
    } else {
        head
    })
}

/// How [`summary`] begins: how a comment line of ours is told from a person's.
pub(crate) const SUMMARY_PREFIX: &str = "Attribution: ";

/// The attribution as readable text, one line per touch, for a text field without a length
/// (Odoo's Text), e.g.
///
/// ```text
/// First touch: paid_search (campaign spring, source google, medium cpc, 2025-04-20T09:00:00Z)
/// Last touch: email
/// Touchpoints: paid_search 60%; email 40%
/// ```
pub(crate) fn describe(attribution: &Attribution) -> String {
    let touch = |t: &Touchpoint| {
        let details: Vec<String> = [
            ("campaign", t.campaign.clone()),
            ("source", t.source.clone()),
            ("medium", t.medium.clone()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name} {v}")))
        .chain(t.occurred_at.map(|at| at.to_rfc3339()))
        .collect();
        if details.is_empty() {
            t.channel.clone()
        } else {
            format!("{} ({})", t.channel, details.join(", "))
        }
    };
    let mut lines = Vec::new();
    if let Some(first) = &attribution.first_touch {
        lines.push(format!("First touch: {}", touch(first)));
    }
    if let Some(last) = &attribution.last_touch {
        lines.push(format!("Last touch: {}", touch(last)));
    }
    if !attribution.touchpoints.is_empty() {
        let each: Vec<String> = attribution
            .touchpoints
            .iter()
            .map(|t| match credit_share(t) {
                Some(share) => format!("{} {}%", t.channel, percent(share)),
                None => t.channel.clone(),
            })
            .collect();
        lines.push(format!("Touchpoints: {}", each.join("; ")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(channel: &str, share: Option<f64>) -> Touchpoint {
        Touchpoint {
            channel: channel.into(),
            campaign: None,
            source: None,
            medium: None,
            occurred_at: None,
            credit_share: share,
        }
    }

    fn attribution(touchpoints: Vec<Touchpoint>) -> Attribution {
        Attribution {
            first_touch: Some(touch("google_ads", None)),
            last_touch: Some(touch("email", None)),
            touchpoints,
        }
    }

    #[test]
    fn shares_are_percentages_and_strange_ones_unknown() {
        assert_eq!(percent(0.4), "40");
        assert_eq!(percent(1.0 / 3.0), "33.33");
        assert_eq!(percent(0.125), "12.5");
        assert_eq!(percent(0.0), "0");
        for strange in [f64::NAN, f64::INFINITY, -0.1, 1.5] {
            assert_eq!(credit_share(&touch("x", Some(strange))), None, "{strange}");
        }
        assert_eq!(credit_share(&touch("x", Some(1.0))), Some(1.0));
    }

    #[test]
    fn the_compact_list_fits_by_whole_entries() {
        let touchpoints = vec![
            touch("google_ads", Some(0.4)),
            touch("email", Some(0.35)),
            touch("referral", None),
            touch("direct", Some(0.25)),
        ];
        let (all, kept) = compact(&touchpoints, 254);
        assert_eq!(all, "google_ads:40%;email:35%;referral;direct:25%");
        assert_eq!(kept, 4);
        let (cut_list, kept) = compact(&touchpoints, 30);
        assert_eq!(cut_list, "google_ads:40%;email:35%;+2");
        assert_eq!(kept, 2);
        let (none, kept) = compact(&touchpoints, 5);
        assert_eq!((none.as_str(), kept), ("+4", 0));
        assert_eq!(compact(&touchpoints, 0).0, "");
        // Many touchpoints, never past the budget.
        let many: Vec<Touchpoint> = (0..500)
            .map(|i| touch(&format!("c{i}"), Some(0.002)))
            .collect();
        let (text, kept) = compact(&many, 254);
        assert!(text.len() <= 254, "{}", text.len());
        assert!(text.ends_with(&format!(";+{}", 500 - kept)), "{text}");
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(cut("Kampagne für Bücher", 14), "Kampagne für ");
        assert_eq!(cut("für", 2), "f");
        assert_eq!(cut("plain", 99), "plain");
    }

    #[test]
    fn the_summary_names_both_touches_and_the_credits_that_fit() {
        let full = attribution(vec![
            touch("google_ads", Some(0.4)),
            touch("email", Some(0.6)),
        ]);
        assert_eq!(
            summary(&full, 100).as_deref(),
            Some("Attribution: first google_ads, last email; google_ads:40%;email:60%")
        );
        assert_eq!(
            summary(&full, 45).as_deref(),
            Some("Attribution: first google_ads, last email"),
            "no room for one whole touchpoint: the touches alone"
        );
        let long = Attribution {
            first_touch: Some(touch(&"x".repeat(300), None)),
            ..full.clone()
        };
        assert!(summary(&long, 100).is_some_and(|s| s.len() <= 100));
        let empty = Attribution {
            first_touch: None,
            last_touch: None,
            touchpoints: Vec::new(),
        };
        assert_eq!(summary(&empty, 100), None);
    }

    #[test]
    fn the_description_has_a_line_per_touch() {
        let mut first = touch("paid_search", None);
        first.campaign = Some("spring".into());
        first.medium = Some("cpc".into());
        let text = describe(&Attribution {
            first_touch: Some(first),
            last_touch: Some(touch("email", None)),
            touchpoints: vec![touch("paid_search", Some(0.6)), touch("email", None)],
        });
        assert_eq!(
            text,
            "First touch: paid_search (campaign spring, medium cpc)\n\
             Last touch: email\n\
             Touchpoints: paid_search 60%; email"
        );
    }

    #[test]
    fn fields_take_the_channels_and_the_list_and_absent_attribution_writes_nothing() {
        let fields = AttributionFields {
            first_touch: "U_OBFirstTouch".into(),
            last_touch: String::new(),
            touchpoints: "U_OBTouchpoints".into(),
        };
        let mut event: OrderEvent = serde_json::from_str(include_str!(
            "../../../tests/fixtures/sumeru/order-attributed/expected.json"
        ))
        .unwrap_or_else(|err| panic!("fixture: {err}"));
        let mut body = serde_json::json!({ "NumAtCard": "X" });
        fields.write(&mut body, &event, 254);
        assert_eq!(
            body,
            serde_json::json!({
                "NumAtCard": "X",
                "U_OBFirstTouch": "google_ads",
                "U_OBTouchpoints": "google_ads:40%;email:60%",
            })
        );
        event.attribution = None;
        let mut untouched = serde_json::json!({});
        fields.write(&mut untouched, &event, 254);
        assert_eq!(untouched, serde_json::json!({}));
    }
}
