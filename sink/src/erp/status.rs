//! The one status table every HTTP adapter sends its responses through.
//!
//! | response | meaning |
//! |---|---|
//! | 2xx without an `error` member in a JSON body | success |
//! | 2xx with an `error` member ("200 with errors", JSON-RPC style) | rejected |
//! | 401, 403 | unavailable: credentials or permissions are ERP-wide trouble, never one order's fault |
//! | 429 | throttled, honouring `Retry-After` (seconds) |
//! | 502, 503, 504 | unavailable (maintenance, a gateway without its ERP), honouring `Retry-After` |
//! | 408, other 5xx | transient failure of this request, honouring `Retry-After` |
//! | other 4xx | rejected, with the ERP's own message |
//! | 1xx, 3xx | transient: a misrouted request is configuration trouble, not the order's |

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::{Cause, ErpError};

/// Longest ERP message kept in an error (they end up in DLQ headers and logs).
const MAX_MESSAGE: usize = 500;

/// Classifies one ERP response.
///
/// # Errors
/// The [`ErpError`] the table above gives.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> Result<(), ErpError> {
    let message = || erp_message(body).unwrap_or_else(|| status.to_string());
    match status.as_u16() {
        200..=299 => match json_error(body) {
            Some(error) => Err(ErpError::rejected(format!("{status} with error: {error}"))),
            None => Ok(()),
        },
        401 | 403 => Err(ErpError::unavailable(
            format!("{status} (check the ERP credentials): {}", message()),
            None,
        )),
        408 | 429 | 500..=599 => Err(ErpError::Transient {
            reason: format!("{status}: {}", message()),
            retry_after: retry_after(headers),
            cause: match status.as_u16() {
                429 => Cause::Throttled,
                502..=504 => Cause::Unavailable,
                _ => Cause::Request,
            },
        }),
        400..=499 => Err(ErpError::rejected(format!("{status}: {}", message()))),
        _ => Err(ErpError::transient(format!("unexpected {status}"))),
    }
}

/// The error for a refused token or login (`what`: "token endpoint", "Service Layer
/// login"): whatever the status, transient. Credentials are ERP-wide trouble, never one
/// order's fault, so no record is dead-lettered for them.
pub fn credentials_refused(
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
) -> ErpError {
    let reason = match classify(status, headers, body) {
        Err(ErpError::Transient { reason, .. } | ErpError::Rejected { reason }) => reason,
        Ok(()) => status.to_string(),
    };
    ErpError::unavailable(format!("{what}: {reason}"), retry_after(headers))
}

/// A response body the status table accepted, as JSON (`null` when empty).
///
/// # Errors
/// Transient when the body is not JSON: the ERP's answer was cut or garbled, which says
/// nothing about the order.
pub fn json_body(text: &str) -> Result<serde_json::Value, ErpError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(text)
        .map_err(|err| ErpError::transient(format!("unreadable response: {err}")))
}

/// Classifies a failure to get any response at all: always transient (the request may or
/// may not have reached the ERP, which is why creates look up again before retrying). An ERP
/// that cannot be reached or does not answer in time is unavailable as a whole.
pub fn transport(err: &reqwest::Error) -> ErpError {
    if err.is_timeout() {
        ErpError::unavailable(format!("timed out: {err}"), None)
    } else if err.is_connect() {
        ErpError::unavailable(format!("connection failed: {err}"), None)
    } else {
        ErpError::transient(format!("request failed: {err}"))
    }
}

/// `Retry-After` in seconds. (The HTTP-date form is rare from ERPs; it falls back to backoff.)
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The ERP's own message from the common error shapes: `{"error":{"message":…}}` (OData, BC,
/// SAP), `{"error":"…"}`, `{"message":…}`; otherwise the start of the body.
fn erp_message(body: &str) -> Option<String> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return None;
    }
    let text = match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(json) => json_error(trimmed)
            .or_else(|| {
                json.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| trimmed.to_owned()),
        Err(_) => trimmed.to_owned(),
    };
    Some(cut(&text))
}

fn json_error(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let error = json.get("error")?;
    let text = match error {
        serde_json::Value::Null => return None,
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(obj) => {
            let code = obj
                .get("code")
                .map(|c| c.to_string().trim_matches('"').to_owned());
            let message = obj
                .get("message")
                .and_then(|m| {
                    m.as_str()
                        .map(str::to_owned)
                        .or_else(|| m.get("value").and_then(|v| v.as_str()).map(str::to_owned))
                })
                .unwrap_or_else(|| error.to_string());
            match code {
                Some(code) => format!("{code}: {message}"),
                None => message,
            }
        }
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) | serde_json::Value::Array(_) => {
            error.to_string()
        }
    };
    Some(cut(&text))
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
    #![allow(clippy::unwrap_used)]

    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn check(status: u16, body: &str) -> Result<(), ErpError> {
        classify(
            StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            &HeaderMap::new(),
            body,
        )
    }

    #[test]
    fn success_rows() {
        assert_eq!(check(200, r#"{"value":[]}"#), Ok(()));
        assert_eq!(check(201, r#"{"id":"x"}"#), Ok(()));
        assert_eq!(check(204, ""), Ok(()));
        assert_eq!(check(200, r#"{"error":null,"result":1}"#), Ok(()));
    }

    #[test]
    fn two_hundred_with_errors_is_rejected() {
        let body = r#"{"jsonrpc":"2.0","error":{"code":200,"message":"Odoo Server Error"}}"#;
        assert!(
            matches!(check(200, body), Err(ErpError::Rejected { reason }) if reason.contains("Odoo Server Error"))
        );
    }

    #[test]
    fn auth_is_erp_wide_trouble() {
        for status in [401, 403] {
            assert!(matches!(
                check(status, ""),
                Err(ErpError::Transient {
                    cause: Cause::Unavailable,
                    ..
                })
            ));
        }
    }

    #[test]
    fn timeouts_throttling_and_server_errors_are_transient_with_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        for status in [408u16, 429, 500, 502, 503, 504] {
            let result = classify(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                &headers,
                "",
            );
            assert_eq!(
                result,
                Err(ErpError::Transient {
                    reason: format!(
                        "{}: {}",
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                    ),
                    retry_after: Some(Duration::from_secs(7)),
                    cause: match status {
                        429 => Cause::Throttled,
                        502..=504 => Cause::Unavailable,
                        _ => Cause::Request,
                    },
                }),
                "{status}"
            );
        }
        assert!(matches!(
            check(503, "maintenance"),
            Err(ErpError::Transient {
                retry_after: None,
                ..
            })
        ));
    }

    #[test]
    fn other_client_errors_are_rejected_with_the_erps_message() {
        let body = r#"{"error":{"code":"Application_DialogException","message":"A customerNumber or a customerID must be provided."}}"#;
        let err = check(400, body).unwrap_err();
        assert_eq!(
            err,
            ErpError::rejected("400 Bad Request: Application_DialogException: A customerNumber or a customerID must be provided.")
        );
        assert!(
            matches!(check(404, "no such thing"), Err(ErpError::Rejected { reason }) if reason.contains("no such thing"))
        );
        assert!(
            matches!(check(422, &"x".repeat(2000)), Err(ErpError::Rejected { reason }) if reason.len() < 600)
        );
    }

    #[test]
    fn redirects_are_transient() {
        assert!(matches!(check(302, ""), Err(ErpError::Transient { .. })));
    }
}
