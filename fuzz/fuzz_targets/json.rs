//! cargo-fuzz target `json`: the body lives in `jwt_authn_fuzz::harness::json`
//! so that `tests/attacks.rs` replays crash inputs through the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwt_authn_fuzz::harness::json(data));
