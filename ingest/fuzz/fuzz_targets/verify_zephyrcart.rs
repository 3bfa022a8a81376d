//! `verify_zephyrcart`: arbitrary requests to the zephyrcart verifier never panic and are never
//! accepted without a valid signature (see `src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: orderbridge_ingest_fuzz::Input| {
    orderbridge_ingest_fuzz::verify(orderbridge_schemas::Source::Zephyrcart, &input);
});
