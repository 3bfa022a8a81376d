//! Why a call to a provider's API failed, classified once, here, by what the caller must do:
//! wait and try again, or give up on this order with the provider's own words.
//!
//! | response | meaning |
//! |---|---|
//! | 2xx | success (a provider's "200 with an error code" is its client's to check) |
//! | 401 | the credentials just used were refused: the client forgets them and tries once more with fresh ones; refused again, the account's trouble (transient), never one order's |
//! | 403 | permanent: the app has no permission for this order (the provider's message kept) |
//! | 404, 410 | permanent: the provider does not have this order |
//! | 408, 425, 429, 5xx | transient, honouring `Retry-After` (429 first waits in the limiter) |
//! | other 4xx | permanent: the provider refuses this request |
//! | no answer (timeout, connection) | transient |

use std::time::Duration;

/// Longest provider message kept in an error (they end up in dead-letter headers and logs).
const MAX_MESSAGE: usize = 300;

/// A failed call to a provider's API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Worth trying again later: the provider is down, slow, throttling or refusing our
    /// credentials. Nothing about the order is wrong.
    #[error("{reason}")]
    Transient {
        /// What happened, with the provider's message when it sent one.
        reason: String,
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The provider will not give this order: trying again cannot help.
    #[error("{reason}")]
    Permanent {
        /// Which kind of refusal.
        refusal: Refusal,
        /// What the provider said.
        reason: String,
    },
}

/// Why a provider refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It has no such order (404, 410, or an empty answer where the order should be).
    NotFound,
    /// Our app may not see it (403).
    Forbidden,
    /// It refuses the request as made (other 4xx, or an answer we cannot read as an order).
    Rejected,
}

impl Refusal {
    /// The dead letter's `ob-dlq-error-class`.
    pub fn class(self) -> &'static str {
        match self {
            Refusal::NotFound => "provider-not-found",
            Refusal::Forbidden => "provider-forbidden",
            Refusal::Rejected => "provider-rejected",
        }
    }
}

impl ApiError {
    /// A transient failure without a hint.
    pub fn transient(reason: impl Into<String>) -> Self {
        ApiError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A permanent refusal.
    pub fn permanent(refusal: Refusal, reason: impl Into<String>) -> Self {
        ApiError::Permanent {
            refusal,
            reason: reason.into(),
        }
    }

    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transient { .. } => true,
            ApiError::Permanent { .. } => false,
        }
    }

    /// The dead letter's `ob-dlq-error-class` when the record is given up on with this error.
    pub fn class(&self) -> &'static str {
        match self {
            ApiError::Transient { .. } => "provider-unavailable",
            ApiError::Permanent { refusal, .. } => refusal.class(),
        }
    }
}

/// What a response's status means; see the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Success,
    /// 401: fresh credentials may help once.
    Unauthorized,
    /// 429: wait as told, then again.
    Throttled,
    /// 408, 425, 5xx, and anything unexpected (1xx, 3xx).
    Transient,
    /// 403, 404, 410, other 4xx.
    Refused(Refusal),
}

/// The verdict on a status code.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        401 => Verdict::Unauthorized,
        429 => Verdict::Throttled,
        403 => Verdict::Refused(Refusal::Forbidden),
        404 | 410 => Verdict::Refused(Refusal::NotFound),
        408 | 425 | 500..=599 => Verdict::Transient,
        400..=499 => Verdict::Refused(Refusal::Rejected),
        // A redirect or an informational answer where an order should be: configuration
        // trouble (a wrong base URL), not the order's.
        _ => Verdict::Transient,
    }
}

/// The provider's own message from the common error shapes (`{"errors":[{"message"}]}`,
/// `{"error":"…","error_description":"…"}`, `{"message":…}`, `[{"message"}]`, `{"title"}`),
/// else the start of the body; cut to a length fit for a header.
pub fn provider_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    let found = serde_json::from_str::<serde_json::Value>(trimmed)
        .ok()
        .and_then(|json| message_in(&json));
    let message = found.unwrap_or_else(|| trimmed.to_owned());
    cut(&message.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn message_in(json: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match json {
        Value::Array(items) => items.iter().find_map(message_in),
        Value::Object(map) => {
            if let Some(errors) = map.get("errors") {
                if let Some(found) = message_in(errors) {
                    return Some(found);
                }
            }
            let description = map.get("error_description").and_then(text);
            let error = map
                .get("error")
                .and_then(|e| text(e).or_else(|| message_in(e)));
            let longer = [
                "longMessage",
                "message",
                "description",
                "detail",
                "title",
                "msg",
            ]
            .iter()
            .find_map(|key| map.get(*key).and_then(text));
            match (error, description) {
                (Some(error), Some(description)) => Some(format!("{error}: {description}")),
                (error, description) => description.or(longer).or(error),
            }
        }
        Value::String(s) => Some(s.clone()),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_MESSAGE {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_row_has_its_verdict() {
        assert_eq!(verdict(200), Verdict::Success);
        assert_eq!(verdict(204), Verdict::Success);
        assert_eq!(verdict(401), Verdict::Unauthorized);
        assert_eq!(verdict(403), Verdict::Refused(Refusal::Forbidden));
        assert_eq!(verdict(404), Verdict::Refused(Refusal::NotFound));
        assert_eq!(verdict(410), Verdict::Refused(Refusal::NotFound));
        assert_eq!(verdict(400), Verdict::Refused(Refusal::Rejected));
        assert_eq!(verdict(422), Verdict::Refused(Refusal::Rejected));
        assert_eq!(verdict(408), Verdict::Transient);
        assert_eq!(verdict(425), Verdict::Transient);
        assert_eq!(verdict(429), Verdict::Throttled);
        assert_eq!(verdict(500), Verdict::Transient);
        assert_eq!(verdict(503), Verdict::Transient);
        assert_eq!(verdict(302), Verdict::Transient);
    }

    #[test]
    fn messages_come_from_each_providers_error_shape() {
        let cases: [(&str, &str); 7] = [
            (
                r#"{"errors":[{"code":"NotFound","message":"Order not found"}]}"#,
                "Order not found",
            ),
            (
                r#"{"errors":[{"errorId":32100,"message":"Invalid order ID","longMessage":"Invalid order ID: 1"}]}"#,
                "Invalid order ID: 1",
            ),
            (
                r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
                "invalid_grant: refresh token revoked",
            ),
            (
                r#"[{"status":404,"message":"The requested resource was not found."}]"#,
                "The requested resource was not found.",
            ),
            (r#"{"error":"Receipt not found"}"#, "Receipt not found"),
            (
                r#"{"code":105002,"message":"Access token is expired"}"#,
                "Access token is expired",
            ),
            ("<html>Bad   Gateway</html>", "<html>Bad Gateway</html>"),
        ];
        for (body, expected) in cases {
            assert_eq!(provider_message(body.as_bytes()), expected, "{body}");
        }
        let long = "é".repeat(400);
        let message = provider_message(long.as_bytes());
        assert!(
            message.len() <= MAX_MESSAGE + '…'.len_utf8(),
            "{}",
            message.len()
        );
    }

    #[test]
    fn classes_name_the_refusal() {
        assert_eq!(ApiError::transient("x").class(), "provider-unavailable");
        assert_eq!(
            ApiError::permanent(Refusal::NotFound, "x").class(),
            "provider-not-found"
        );
        assert!(!ApiError::permanent(Refusal::Forbidden, "x").is_transient());
    }
}
