//! `extract`: every source's key and id extraction, run on arbitrary requests as if their
//! signature held, never panics and always yields a usable record key.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    orderbridge_ingest_fuzz::extract(data);
});
