//! Dead-letter records: the original value untouched, its original headers, and the
//! `ob-dlq-*` headers that say why and from where, so it can always be replayed to its
//! original topic.

use orderbridge_schemas::headers as ob;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::Message;

/// Longest reason kept in a header; ERP error bodies can be long.
const MAX_REASON: usize = 1000;

/// Why and where a record was dead-lettered.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    /// Stage that gave up (`processor`, `sink`).
    pub stage: &'static str,
    /// Machine-readable class (`unparseable`, `invalid`, `unsupported`, `erp-rejected`, …).
    pub class: &'static str,
    /// Human-readable reason. Must not contain secrets; is cut to 1000 bytes.
    pub reason: &'a str,
    /// Attempts made before giving up.
    pub attempts: u32,
}

/// The original record's headers plus the `ob-dlq-*` headers.
pub fn dlq_headers(original: &OwnedMessage, dead: &DeadLetter<'_>) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(existing) = original.headers() {
        for header in existing.iter() {
            // A replayed record that fails again gets fresh dlq headers, not two sets.
            if !header.key.starts_with("ob-dlq-") {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
    }
    let mut reason = dead.reason;
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason = &reason[..cut];
    }
    let now = crate::now_ms().to_string();
    headers
        .insert(Header {
            key: ob::DLQ_STAGE,
            value: Some(dead.stage),
        })
        .insert(Header {
            key: ob::DLQ_REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: ob::DLQ_ERROR_CLASS,
            value: Some(dead.class),
        })
        .insert(Header {
            key: ob::DLQ_ORIGINAL_TOPIC,
            value: Some(original.topic()),
        })
        .insert(Header {
            key: ob::DLQ_ORIGINAL_PARTITION,
            value: Some(&original.partition().to_string()),
        })
        .insert(Header {
            key: ob::DLQ_ORIGINAL_OFFSET,
            value: Some(&original.offset().to_string()),
        })
        .insert(Header {
            key: ob::DLQ_ATTEMPTS,
            value: Some(&dead.attempts.to_string()),
        })
        .insert(Header {
            key: ob::DLQ_AT,
            value: Some(&now),
        })
}

/// `<topic>:<partition>:<offset>` of a record: where it is, as the status topic, the dead
/// letters and `orderbridge trace` name it.
pub fn coordinates<M: Message>(message: &M) -> String {
    format!(
        "{}:{}:{}",
        message.topic(),
        message.partition(),
        message.offset()
    )
}

/// A header's value as UTF-8 text, if present.
pub fn header_str<'a, M: Message>(message: &'a M, key: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rdkafka::Timestamp;

    #[test]
    fn keeps_original_headers_and_adds_the_reason() {
        let original = OwnedMessage::new(
            Some(b"{}".to_vec()),
            Some(b"k".to_vec()),
            "orders.raw.v1".into(),
            Timestamp::NotAvailable,
            4,
            99,
            Some(OwnedHeaders::new().insert(Header {
                key: ob::EVENT_ID,
                value: Some("e1"),
            })),
        );
        let long = "x".repeat(5000);
        let headers = dlq_headers(
            &original,
            &DeadLetter {
                stage: "processor",
                class: "unparseable",
                reason: &long,
                attempts: 1,
            },
        );
        let message = OwnedMessage::new(
            None,
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            0,
            Some(headers),
        );
        assert_eq!(header_str(&message, ob::EVENT_ID), Some("e1"));
        assert_eq!(
            header_str(&message, ob::DLQ_ORIGINAL_TOPIC),
            Some("orders.raw.v1")
        );
        assert_eq!(header_str(&message, ob::DLQ_ORIGINAL_PARTITION), Some("4"));
        assert_eq!(header_str(&message, ob::DLQ_ORIGINAL_OFFSET), Some("99"));
        assert_eq!(
            header_str(&message, ob::DLQ_ERROR_CLASS),
            Some("unparseable")
        );
        assert_eq!(
            header_str(&message, ob::DLQ_REASON).unwrap().len(),
            MAX_REASON
        );
    }
}
