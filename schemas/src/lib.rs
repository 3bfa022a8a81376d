//! The contract between OrderBridge's stages, and nothing else.
//!
//! Every stage agrees on four things, and they all live here:
//!
//! - `topics.rs` — topic names, the `ob-` header keys, the closed set of [`Source`]s and the
//!   order key (`<source>:<account>:<order id>`) that keys every topic.
//! - `model.rs` — the canonical [`OrderEvent`] as Rust types.
//! - `avro/` — the Avro schema (every released version frozen under `avro/order_event/`, the
//!   newest compiled in) and the codec that writes and reads the schema registry's wire
//!   format (magic byte 0, 4-byte schema id, Avro binary body).
//! - `compat.rs` — the rule every new schema version is held to: fully compatible with
//!   every released one.
//! - `status.rs` — what operators read: each order's [`StatusRecord`] on the status topic, and
//!   the [`AuditRecord`] of every operator action.
//! - `registry.rs` — the [`SchemaRegistry`] client side: the Confluent REST API when a URL is
//!   configured, or an embedded in-process registry (the `dev` default).
//!
//! Plumbing (Kafka clients, config loading, metrics) never comes here; this crate stays the
//! pure contract so that other teams can depend on it to read `orders.canonical.v1`.

pub mod avro;
pub mod compat;
pub mod model;
pub mod registry;
pub mod status;
pub mod topics;

pub use avro::{CodecError, OrderEventCodec, ORDER_EVENT_SCHEMA, ORDER_EVENT_VERSIONS};
pub use model::{
    in_minor_units, minor_units, revised, version_at, Address, Attribution, AttributionEvent,
    Customer, EventType, LineItem, Lineage, OrderEvent, OrderStatus, PaymentStatus, Refund,
    RefundLine, Shipment, Totals, Touchpoint, MAX_REVISION, REVISION_STEP, VERSIONS_PER_MS,
};
pub use registry::{ConfluentRegistry, EmbeddedRegistry, RegistryError, SchemaRegistry};
pub use status::{AuditRecord, Status, StatusRecord};
pub use topics::{headers, order_key, Origin, Source, Topics, UnknownSource};
