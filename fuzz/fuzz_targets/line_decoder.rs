//! Fuzz target `line_decoder`: the property is `properties::line_decoder` in
//! `fuzz/properties.rs`, which `crates/nea-cli/tests/fuzz_corpus.rs` also replays.
#![no_main]

// Each target uses one of the shared properties.
#[allow(dead_code)]
#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::line_decoder(data));
