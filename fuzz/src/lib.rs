//! Fuzz harness crate for the jwt-authn core. The target bodies live in
//! [`harness`], a single self-contained file that `tests/attacks.rs` also
//! compiles (via `#[path]`) to replay regression inputs without libFuzzer.

pub mod harness;
