//! `verify_bigcommerce`: arbitrary requests to the bigcommerce verifier never panic and are
//! never accepted without a valid signature (see `src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    orderbridge_ingest_fuzz::verify(orderbridge_schemas::Source::Bigcommerce, data);
});
