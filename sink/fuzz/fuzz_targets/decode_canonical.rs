//! `decode_canonical`: arbitrary canonical-topic records never panic the sink's decoder, and
//! whatever decodes never panics the ERP adapters building their requests (see `src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    orderbridge_sink_fuzz::decode(data);
});
