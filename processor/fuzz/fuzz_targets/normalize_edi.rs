//! `normalize_edi`: arbitrary records of edi (X12 850 interchanges) never panic the
//! normalizer, and whatever it makes of them encodes and reads back unchanged, or is refused
//! with a reason (see `src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    orderbridge_processor_fuzz::normalize(orderbridge_schemas::Source::Edi, data);
});
