//! Plumbing shared by the three services, kept out of `schemas/` (the pure contract).
//!
//! - `kafka.rs` — [`KafkaSettings`]: the broker list and extra librdkafka properties every
//!   client starts from, and [`ensure_topics`] to create the pipeline's topics.
//! - `backoff.rs` — [`Backoff`], exponential with jitter, honouring `Retry-After`.
//! - `dlq.rs` — the headers of a dead-letter record ([`dlq_headers`]), shared by every stage
//!   that dead-letters.
//! - `ledger.rs` — [`Ledger`]: which records of each partition are open, the commit position
//!   behind them, and each order's records in order; for stages that run many records at once.
//! - `scan.rs` — reading a partition from its start to its end ([`scan_partition`]): the
//!   processor's memory and the commands' checkpoints are read back this way.
//! - `status.rs` — [`StatusWriter`], each order's status to the status topic without ever
//!   waiting, and [`partition_for`], the partition an order key is in.
//! - `ops.rs` — the operations endpoints every service serves: `/metrics` (Prometheus),
//!   `/healthz` (the process runs) and `/readyz` (it can do its job), with [`Health`].
//!
//! Each service still builds its own Kafka clients, one function per role, so that every
//! delivery-critical setting sits next to the code that depends on it.

pub mod backoff;
pub mod consumer;
pub mod dlq;
pub mod kafka;
pub mod ledger;
pub mod ops;
pub mod scan;
pub mod status;
pub mod topics;

pub use backoff::Backoff;
pub use consumer::{Event, GroupConsumer, Revocation};
pub use dlq::{coordinates, dlq_headers, header_str, DeadLetter};
pub use kafka::{pause_after_consumer_error, GroupContext, KafkaSettings};
pub use ledger::{Accepted, Finished, Ledger, Ticket};
pub use ops::{ops_router, spawn_ops_server, Dependency, Health, Ops};
pub use scan::{scan_partition, scan_partition_from, Cancel, ScanError};
pub use status::{now_ms, partition_for, status_counter, StatusWriter};
pub use topics::{check_copartitioned, ensure_topics, TopicError, TopicLayout, TopicState};
pub mod secret;

pub use secret::Secret;
