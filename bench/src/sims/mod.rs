//! The integration tests' provider simulators (`tests/support/providers/`), compiled here as
//! they are there: the benchmark meets the same limits the tests do.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err
)]

#[path = "../../../tests/support/providers/core.rs"]
pub mod core;
#[path = "../../../tests/support/providers/ordermentum.rs"]
pub mod ordermentum;
#[path = "../../../tests/support/providers/shopify.rs"]
pub mod shopify;
#[path = "../../../tests/support/providers/sumeru.rs"]
pub mod sumeru;
