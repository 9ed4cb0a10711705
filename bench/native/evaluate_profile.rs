//! The core's per-request work, natively, for instruction counts that do
//! not move with the machine: one `engine::evaluate` per request over the
//! benchmark's config and tokens, with the request built from a proxy-wasm
//! header map as the shell builds it. The host's `verify_signature` is not
//! called (its request is built, then answered "valid"), so what is counted
//! is the module's own work: parsing, claims, rules, headers, caches.
//!
//! ```sh
//! python3 bench/v8/inputs.py /tmp/in --pool 5000
//! cargo build --release --example evaluate_profile
//! valgrind --tool=callgrind --toggle-collect='jwt_authn::engine::evaluate*' \
//!     target/release/examples/evaluate_profile /tmp/in/config.json /tmp/in/rs_pool.txt 5000
//! callgrind_annotate callgrind.out.*        # per function, per request = / 5000
//! ```
//!
//! Arguments: CONFIG TOKENS REQUESTS [--cache]. With `--cache` the engine
//! gets a per-VM verified-token cache (a repeated token then takes the memo
//! path); without it every request is a new token. The clock is the first
//! token's `iat` plus one second, so the tokens are always within their time.

use jwt_authn::alg::Alg;
use jwt_authn::config::{Config, ProviderId};
use jwt_authn::decision::Decision;
use jwt_authn::engine::{self, EvalContext, KeyStore, RemoteKeys};
use jwt_authn::host_crypto::{self, HostCheck};
use jwt_authn::jwk::KeyMaterial;
use jwt_authn::memo::Memo;
use jwt_authn::request::{host_map, Request};
use jwt_authn::verified_cache::{CachedToken, VerifiedCache};
use std::cell::RefCell;
use std::process::ExitCode;
use std::sync::Arc;

/// Local keys only; the host's answer is "valid" once its request is built.
struct Keys {
    cache: Option<RefCell<VerifiedCache>>,
}

impl KeyStore for Keys {
    fn remote_keys(&self, _: ProviderId) -> RemoteKeys {
        RemoteKeys::Failed
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        false
    }
    fn cached_token(&self, token: &str) -> Option<CachedToken> {
        self.cache.as_ref()?.borrow().get(token).cloned()
    }
    fn remember_token(&self, token: &str, entry: CachedToken) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|c| c.borrow_mut().insert(token, entry))
    }
    fn remember_memo(&self, token: &str, memo: Arc<Memo>) {
        if let Some(c) = &self.cache {
            c.borrow_mut().set_memo(token, memo);
        }
    }
    fn host_verify(&self, alg: Alg, key: &KeyMaterial, input: &[u8], sig: &[u8]) -> Option<bool> {
        match host_crypto::prepare(alg, key, input, sig) {
            HostCheck::Request(args) => Some(!std::hint::black_box(args).is_empty()),
            HostCheck::Verdict(v) => Some(v),
            HostCheck::NotDelegable => None,
        }
    }
}

/// A request as Envoy shows it to the module (`proxy_get_header_map_pairs`).
fn header_map(token: &str) -> Vec<u8> {
    let authorization = format!("Bearer {token}");
    host_map(&[
        (b":authority", b"127.0.0.1:10000"),
        (b":path", b"/"),
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b"authorization", authorization.as_bytes()),
        (b"user-agent", b"wrk"),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", b"5b1c8a2e-3f1d-4a8e-9b0e-0d1f2c3b4a59"),
    ])
}

/// The `iat` of a token (to set the clock), 0 if it has none.
fn issued_at(token: &str) -> u64 {
    let payload = token.split('.').nth(1).unwrap_or("");
    jwt_authn::b64::decode_strict(payload)
        .ok()
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .and_then(|v| v.get("iat").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

fn run(args: &[String]) -> Result<String, String> {
    let [config, tokens, requests, rest @ ..] = args else {
        return Err("usage: evaluate_profile CONFIG TOKENS REQUESTS [--cache]".into());
    };
    let bytes = std::fs::read(config).map_err(|e| format!("{config}: {e}"))?;
    let config = Config::parse(&bytes).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(tokens).map_err(|e| format!("{tokens}: {e}"))?;
    let maps: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(header_map)
        .collect();
    let first = text.lines().next().ok_or("no tokens")?;
    let requests: usize = requests.parse().map_err(|_| "REQUESTS: a number")?;
    let keys = Keys {
        cache: rest
            .iter()
            .any(|a| a == "--cache")
            .then(|| RefCell::new(VerifiedCache::new(maps.len().max(100), 7))),
    };
    let ctx = EvalContext {
        now: issued_at(first) + 1,
        already_fetched: Vec::new(),
    };
    let mut allowed = 0usize;
    for map in maps.iter().cycle().take(requests) {
        let req = Request::from_host_pairs(std::hint::black_box(map.clone()))
            .ok_or("not a header map")?;
        if let Decision::Allow { .. } = engine::evaluate(&config, &req, &keys, &ctx) {
            allowed += 1;
        }
    }
    Ok(format!("allowed {allowed} of {requests}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("evaluate_profile: {e}");
            ExitCode::from(2)
        }
    }
}
