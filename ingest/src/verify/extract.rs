//! What the raw record's key and headers need from a verified request: event id, event type,
//! order id and account, each from the first of a list of places (a header, or a JSON field
//! named by a JSON pointer).
//!
//! Extraction runs only after the signature held, and it never fails the request: a body
//! that is not JSON, or names no order, is still published, keyed by its event id, for the
//! processor to judge. The body is parsed at most once, and only when a header did not
//! already answer.

use std::cell::OnceCell;

use serde::Deserialize;
use serde_json::Value;

use super::{header, identifier, VerifiedParts, WebhookRequest};

/// Where one value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Field {
    /// A request header (`{ header = "webhook-id" }`).
    Header(String),
    /// A JSON field, by JSON pointer (`{ json = "/data/id" }`); numbers become text.
    Json(String),
}

impl Field {
    /// A header field.
    pub fn header(name: &str) -> Self {
        Field::Header(name.to_owned())
    }

    /// A JSON-pointer field.
    pub fn json(pointer: &str) -> Self {
        Field::Json(pointer.to_owned())
    }
}

/// Where a source's event id, event type, order id and account are found; the first place
/// that has a usable value wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Extraction {
    /// The provider's event or delivery id; without one, a hash of the body is used.
    pub event_id: Vec<Field>,
    /// The event type (`orders/create`, `order.paid`, …).
    pub event_type: Vec<Field>,
    /// The order the event is about; without one, the record is keyed by event id.
    pub order_id: Vec<Field>,
    /// Shop, seller or tenant; without one, the route's `{account}` segment, else `-`.
    pub account: Vec<Field>,
}

impl Extraction {
    /// Fills in what the fields find in `request` (the secret id is left to the caller).
    pub(super) fn extract(&self, request: &WebhookRequest<'_>) -> VerifiedParts {
        let body = Body::new(request.body);
        let find = |fields: &[Field]| fields.iter().find_map(|f| body.field(request, f));
        VerifiedParts {
            account: find(&self.account).or_else(|| identifier(request.account)),
            event_type: find(&self.event_type),
            event_id: find(&self.event_id),
            order_id: find(&self.order_id),
            ..VerifiedParts::default()
        }
    }

    /// These fields, with `other`'s where `other` names any.
    pub fn overridden_by(mut self, other: &Extraction) -> Self {
        let Extraction {
            event_id,
            event_type,
            order_id,
            account,
        } = other;
        for (mine, theirs) in [
            (&mut self.event_id, event_id),
            (&mut self.event_type, event_type),
            (&mut self.order_id, order_id),
            (&mut self.account, account),
        ] {
            if !theirs.is_empty() {
                mine.clone_from(theirs);
            }
        }
        self
    }
}

/// A body parsed on first use.
pub(crate) struct Body<'a> {
    bytes: &'a [u8],
    json: OnceCell<Option<Value>>,
}

impl<'a> Body<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            json: OnceCell::new(),
        }
    }

    /// The body as JSON, if it is JSON.
    pub(crate) fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.bytes).ok())
            .as_ref()
    }

    /// The value at `pointer` as an identifier.
    pub(crate) fn pointer(&self, pointer: &str) -> Option<String> {
        scalar(self.json()?.pointer(pointer)?)
    }

    fn field(&self, request: &WebhookRequest<'_>, field: &Field) -> Option<String> {
        match field {
            Field::Header(name) => identifier(header(request.headers, name)),
            Field::Json(pointer) => self.pointer(pointer),
        }
    }
}

/// A JSON string or integer as an identifier; anything else is absent.
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => identifier(Some(text.trim())),
        Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
        Value::Number(_) | Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::verify::testing::headers;
    use axum::http::Method;
    use bytes::Bytes;

    #[test]
    fn first_usable_place_wins_and_bad_values_are_absent() {
        let extraction = Extraction {
            event_id: vec![Field::header("webhook-id"), Field::json("/id")],
            event_type: vec![Field::json("/type")],
            order_id: vec![Field::json("/data/order_id"), Field::json("/data/id")],
            account: vec![Field::json("/shop")],
        };
        let h = headers(&[("webhook-id", "has spaces so not an id")]);
        let body = Bytes::from_static(
            br#"{"id":"evt_1","type":"order.paid","data":{"id":12345},"shop":{"nested":1}}"#,
        );
        let request = WebhookRequest {
            method: &Method::POST,
            path_and_query: "/",
            headers: &h,
            body: &body,
            account: Some("tenant-a"),
            now: 0,
        };
        let parts = extraction.extract(&request);
        assert_eq!(parts.event_id.as_deref(), Some("evt_1"));
        assert_eq!(parts.event_type.as_deref(), Some("order.paid"));
        assert_eq!(parts.order_id.as_deref(), Some("12345"));
        assert_eq!(
            parts.account.as_deref(),
            Some("tenant-a"),
            "falls back to the path"
        );
    }

    #[test]
    fn a_body_that_is_not_json_extracts_nothing_and_fails_nothing() {
        let extraction = Extraction {
            order_id: vec![Field::json("/id")],
            ..Extraction::default()
        };
        let h = headers(&[]);
        let body = Bytes::from_static(b"\xff\xfe not json");
        let request = WebhookRequest {
            method: &Method::POST,
            path_and_query: "/",
            headers: &h,
            body: &body,
            account: None,
            now: 0,
        };
        let parts = extraction.extract(&request);
        assert_eq!(parts.order_id, None);
        assert_eq!(parts.account, None);
    }
}
