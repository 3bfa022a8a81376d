//! The operators' commands: `trace`, `dlq`, `reprocess`, `audit`. They read Kafka and
//! nothing else (every fact about an order is in its topics), and every action that changes
//! something appends a record to the audit topic.
//!
//! - `read.rs` — reading a topic's records (all partitions, or an order key's), from a time on.
//! - `when.rs` — the times and durations the commands take (`7d`, `2026-12-01T00:00:00Z`).
//! - `audit.rs` — appending to the audit topic and `orderbridge audit`.
//! - `dlq.rs` — `orderbridge dlq list|show|replay`.
//! - `trace.rs` — `orderbridge trace`: an order's journey across raw, canonical, DLQ and status.
//! - `reprocess.rs` — `orderbridge reprocess`: a consumer group's offsets reset, as Kafka's tool.
//! - `revise.rs` — `orderbridge revise`: raw records re-published at a revision, to correct
//!   orders the ERP holds.

pub mod audit;
pub mod dlq;
pub mod read;
pub mod reprocess;
pub mod revise;
pub mod trace;
pub mod when;

use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::Message;

/// A header of `message` as text (lossy), if present.
pub fn header(message: &impl Message, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The headers of `message` but those `drop` names, for a record sent again.
pub fn headers_but(message: &impl Message, drop: impl Fn(&str) -> bool) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(existing) = message.headers() {
        for h in existing.iter().filter(|h| !drop(h.key)) {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    headers
}

/// `text` safe for a terminal: control characters (an escape sequence in an ERP's error
/// body, say) become `�`; line breaks stay when `lines` is set.
pub fn printable(text: &str, lines: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' if lines => c,
            '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// A unix-milliseconds time as `2026-12-07 03:40:01.123Z`.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_comes_from_outside_cannot_drive_the_terminal() {
        assert_eq!(
            printable("bad\u{1b}[2Jitem\tX\nnext", false),
            "bad\u{fffd}[2Jitem X\u{fffd}next"
        );
        assert_eq!(printable("a\nb", true), "a\nb");
    }
}
