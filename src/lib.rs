//! Host-independent core of jwt-authn-wasm.
//!
//! Everything that decides lives here and compiles natively, so it is unit
//! tested with plain `cargo test`; the proxy-wasm shell (`filter/`) and the
//! operator CLI (`cli/`) only translate between their host and these types.
//!
//! Flow of one request: [`request::Request`] → [`engine::evaluate`] (rule
//! match, [`extract`], [`jws`] + [`jwk`] verification, [`claims`], [`authz`],
//! [`headers`]) → a [`decision::Decision`] the shell carries out. Remote keys
//! come through the [`engine::KeyStore`] trait, backed in the filter by the
//! [`jwks_cache`] state machine.

pub mod alg;
pub mod authz;
pub mod b64;
pub mod cache_placement;
pub mod cache_sampling;
pub mod claims;
pub mod config;
pub mod decision;
mod ecdsa_ext;
pub mod engine;
pub mod extract;
pub mod headers;
pub mod host_crypto;
pub mod json;
pub mod jwk;
pub mod jwks_cache;
pub mod jws;
pub mod memo;
pub mod reason;
pub mod request;
/// RSA signature verification with keys prepared once (Montgomery form),
/// for RS*/PS* when the host cannot verify.
pub mod rsa_verify;
pub mod shared_token_cache;
pub mod verified_cache;

#[cfg(test)]
pub(crate) mod testutil;
