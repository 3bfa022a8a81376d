//! Simulators of providers' APIs, each following its provider's documented contract, on a
//! shared core (`core.rs`): rate limits with 429, maintenance and 5xx, token expiry.
// A refused request's answer is the error of a simulator's gate: an HTTP response, as big as
// it is; boxing it would only make the handlers harder to read.
#![allow(clippy::result_large_err)]

pub mod amazon;
pub mod bigcommerce;
pub mod core;
pub mod ebay;
pub mod etsy;
pub mod flipkart;
pub mod ordermentum;
pub mod shopify;
pub mod sumeru;
pub mod tiktok_shop;
pub mod walmart;
