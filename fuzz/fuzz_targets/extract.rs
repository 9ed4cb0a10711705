//! cargo-fuzz target `extract`: the body lives in `jwt_authn_fuzz::harness::extract`
//! so that `tests/attacks.rs` replays crash inputs through the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwt_authn_fuzz::harness::extract(data));
