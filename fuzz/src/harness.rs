//! Bodies of the cargo-fuzz targets, one public function per target.
//!
//! They live in one self-contained file because two crates compile it: the
//! fuzz crate (`fuzz_targets/*.rs` call these functions) and the core's
//! `tests/attacks.rs` (through `#[path]`), which replays every saved crash
//! input without libFuzzer. A crash found by fuzzing therefore stays a
//! failing `cargo test` until it is fixed, through exactly the same code.
//!
//! Each function takes raw fuzz bytes, calls the public API of `jwt_authn`
//! and must never panic. Besides "no panic", a few oracles (`assert!`) turn
//! wrong answers into crashes too: canonical base64 after a successful
//! parse, key round trips, strict JSON agreeing with serde_json, and every
//! denial carrying the status its reason maps to.

use jwt_authn::alg::Alg;
use jwt_authn::b64;
use jwt_authn::claims::Claims;
use jwt_authn::config::{Config, KeySource, ProviderId};
use jwt_authn::decision::{Decision, FetchCause};
use jwt_authn::engine::{self, EvalContext, KeyStore, NoRemoteKeys, RemoteKeys};
use jwt_authn::json::{self, JsonError};
use jwt_authn::jwk::{self, JwksOptions, KeyMaterial, KeySet};
use jwt_authn::jws::UntrustedJws;
use jwt_authn::request::Request;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// Token size limit the `token` target parses with (the config maximum is 64 KiB;
/// 16 KiB keeps the fuzzer on inputs that can still be well formed).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The clock every target evaluates at (2023-11-14T22:13:20Z).
pub const NOW: u64 = 1_700_000_000;

/// Fixed key set of the `token` target: one key of each type. Private halves
/// (for the seed generator `examples/gen_seeds.rs`, which checks they match):
/// RSA and P-521 are RFC 7520 section 3's keys, P-256 has d = 0x03 * 32,
/// P-384 d = 0x05 * 48, Ed25519 seed 0x09 * 32, and the HMAC secret
/// [`TOKEN_HMAC_SECRET`].
pub const TOKEN_JWKS: &str = r#"{"keys":[
{"kty":"RSA","kid":"rsa","n":"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw","e":"AQAB"},
{"kty":"EC","kid":"p256","crv":"P-256","x":"WRq3ceu8_W2cuQlNEGUordGmnUTCwfYn8InsWLnGGt8","y":"n05qvw0EXAxpOjxorXyXynK-ZN70om_s0mPdmKkngPA"},
{"kty":"EC","kid":"p384","crv":"P-384","x":"8UGQhnnx4MHpleGMpVo1Ou9kidt5ObFYlbSvB0SjQGDSZqL5YhpzSVbnoSb0Yms7","y":"WWXA9tzx_-aP-UdgTA6CkhuztOS5m1gKRQDHiETUODe_PSvZk7vRUQEUwiDoENaT"},
{"kty":"EC","kid":"p521","crv":"P-521","x":"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt","y":"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"},
{"kty":"OKP","kid":"ed","crv":"Ed25519","x":"_RckOFqgx1tk-3jNYC-h2ZH96_drE8WO1wLqyDXp9hg"},
{"kty":"oct","kid":"hmac","k":"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQg"}
]}"#;

/// HMAC secret in [`TOKEN_JWKS`]: 64 bytes, so it serves HS256, HS384 and HS512.
pub const TOKEN_HMAC_SECRET: [u8; 64] = [0x42; 64];

/// HMAC secret (HS256, kid `k1`) of every provider in [`EXTRACT_CONFIG`].
pub const EXTRACT_HMAC_SECRET: &[u8; 32] = b"fuzz-extract-hmac-secret-32bytes";

/// Fixed configuration of the `extract` target: every token location kind,
/// every requirement kind, a remote provider, header/regex route matchers,
/// an authorization extension and identity headers to strip.
pub const EXTRACT_CONFIG: &str = r#"{
  "providers": {
    "local": {
      "issuer": "https://idp.fuzz",
      "audiences": ["api"],
      "local_jwks": {"inline_string": "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"alg\":\"HS256\",\"k\":\"ZnV6ei1leHRyYWN0LWhtYWMtc2VjcmV0LTMyYnl0ZXM\"}]}"},
      "from_headers": [
        {"name": "authorization", "value_prefix": "Bearer "},
        {"name": "x-jwt"},
        {"name": "x-token", "value_prefix": "Token="}
      ],
      "from_params": ["access_token", "tok"],
      "from_cookies": ["session"],
      "forward_payload_header": "x-jwt-payload",
      "pad_forward_payload_header": true,
      "claim_to_headers": [
        {"header_name": "x-user", "claim_name": "sub"},
        {"header_name": "x-role", "claim_name": "realm.role"},
        {"header_name": "x-scopes", "claim_name": "scope", "extensions": {"format": "join", "separator": ";"}}
      ],
      "require_expiration": true,
      "max_lifetime": "86400s"
    },
    "other": {
      "issuer": "https://other.fuzz",
      "local_jwks": {"inline_string": "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"alg\":\"HS256\",\"k\":\"ZnV6ei1leHRyYWN0LWhtYWMtc2VjcmV0LTMyYnl0ZXM\"}]}"},
      "from_headers": [{"name": "x-jwt"}],
      "from_cookies": ["session"],
      "subjects": {"prefix": "svc-"},
      "forward": true
    },
    "remote": {
      "issuer": "https://remote.fuzz",
      "remote_jwks": {"http_uri": {"uri": "http://127.0.0.1:9/jwks.json", "cluster": "idp", "timeout": "1s"}},
      "from_headers": [{"name": "x-remote", "value_prefix": "Bearer "}]
    }
  },
  "rules": [
    {"match": {"prefix": "/public"}},
    {"match": {"path": "/any"}, "requires": {"requires_any": {"requirements": [
      {"provider_name": "local"}, {"provider_name": "other"}, {"allow_missing": {}}]}}},
    {"match": {"safe_regex": {"regex": "/all/[a-z]+"}}, "requires": {"requires_all": {"requirements": [
      {"provider_name": "local"}, {"provider_name": "other"}]}}},
    {"match": {"prefix": "/remote"}, "requires": {"provider_name": "remote"}},
    {"match": {"prefix": "/failed"}, "requires": {"allow_missing_or_failed": {}}},
    {"match": {"path_separated_prefix": "/tenant", "headers": [{"name": "x-tenant", "string_match": {"exact": "a"}}],
               "query_parameters": [{"name": "v", "present_match": true}]},
     "requires": {"provider_and_audiences": {"provider_name": "local", "audiences": ["tenant"]}}},
    {"match": {"prefix": "/admin"}, "requires": {"provider_name": "local"},
     "extensions": {"authorize": {"scopes_all": ["admin"], "roles_any": ["root"], "role_claim": "realm.role"}}},
    {"match": {"prefix": "/", "case_sensitive": false}, "requires": {"provider_name": "local"}}
  ],
  "bypass_cors_preflight": true,
  "extensions": {"max_token_bytes": 4096, "strip_headers": ["x-forwarded-user"], "strip_header_prefixes": ["x-auth-"]}
}"#;

/// Most lines (request line + headers) the `extract` target reads.
const MAX_REQUEST_LINES: usize = 64;

/// The parsed [`TOKEN_JWKS`]; empty if it ever stops parsing (the replay
/// test asserts it holds six keys, so that cannot go unnoticed).
pub fn token_keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let opts = JwksOptions {
            allow_hmac: true,
            ..JwksOptions::default()
        };
        jwk::parse_key_set(TOKEN_JWKS, &opts).unwrap_or_default()
    })
}

/// The parsed [`EXTRACT_CONFIG`] (`None` if it ever stops parsing; the
/// replay test asserts it parses).
pub fn extract_config() -> Option<&'static Config> {
    static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Config::parse(EXTRACT_CONFIG.as_bytes()).ok())
        .as_ref()
}

/// Target `token`: parse a compact JWS, verify it against [`TOKEN_JWKS`],
/// and run the claim checks on its payload (verified or not: the engine
/// judges claims before the signature, as jwt_authn does).
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match UntrustedJws::parse(text, MAX_TOKEN_BYTES) {
        Ok(jws) => {
            // Oracle: only canonical, three-segment tokens parse.
            let segments: Vec<&str> = text.split('.').collect();
            assert_eq!(segments.len(), 3, "parsed a token without 3 segments");
            for seg in &segments {
                let bytes = b64::decode_strict(seg);
                assert!(bytes.is_ok(), "parsed a token with bad base64");
                if let Ok(bytes) = bytes {
                    assert_eq!(&b64::encode(&bytes), seg, "non-canonical base64 parsed");
                }
            }
            let header = jws.header();
            assert_eq!(Alg::from_name(header.alg.name()), Some(header.alg));
            assert!(!jws.header_json().contains_key("crit"), "crit accepted");
            assert!(
                !header
                    .cty
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("jwt")),
                "nested jwt accepted"
            );
            match jws.verify(token_keys()) {
                Ok(payload) => claims(payload),
                Err(e) => {
                    let _ = (e.code(), e.to_string());
                }
            }
        }
        Err(e) => {
            let _ = (e.code(), e.to_string());
        }
    }
    if let Some(payload) = text.split('.').nth(1) {
        if let Ok(bytes) = b64::decode_strict(payload) {
            claims(&bytes);
        }
    }
}

/// Claim parsing and every claim check, on untrusted payload bytes.
fn claims(payload: &[u8]) {
    let Ok(value) = json::parse_strict(payload, json::DEFAULT_MAX_DEPTH) else {
        return;
    };
    let Ok(c) = Claims::from_value(value) else {
        return;
    };
    let _ = c.check_time(NOW, 60);
    let _ = c.check_time(u64::MAX, u64::MAX);
    let _ = c.check_lifetime(true, Some(3600));
    let _ = c.check_audience(&["api".to_string(), "https://api.fuzz/".to_string()]);
    let _ = c.check_subject(None);
    let _ = c.get_path("realm.role");
    let _ = c.get_path("");
}

/// Target `jwks`: read a key document (JWKS, single JWK, PEM) with the
/// remote and the local policy, and raw bytes as DER SubjectPublicKeyInfo.
pub fn jwks(data: &[u8]) {
    let _ = KeyMaterial::from_spki_der(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let remote = JwksOptions::default();
    let local = JwksOptions {
        allow_hmac: true,
        min_rsa_bits: 1024,
        ..JwksOptions::default()
    };
    for (opts, deep) in [(remote, false), (local, true)] {
        let lenient = jwk::parse_key_set_lenient(text, &opts);
        let strict = jwk::parse_key_set(text, &opts);
        // Oracle: the strict reader fails exactly when no key is usable.
        let usable = lenient.as_ref().map_or(0, |l| l.keys.len());
        assert_eq!(strict.as_ref().map_or(0, |s| s.keys.len()), usable);
        assert_eq!(strict.is_ok(), usable > 0);
        if let Ok(set) = lenient {
            assert!(set.keys.len() + set.skipped.len() <= opts.max_keys.max(1));
            for key in &set.keys {
                check_key(key, &opts, deep);
            }
            let _ = format!("{set:?}");
        }
    }
    let _ = KeyMaterial::from_pem(text);
}

/// Oracles on one accepted key: policy respected, `usable_for` never wider
/// than `fits`, and (`deep`, the costly ones, once per input) the public JWK
/// round-trips to the same key and an all-zero signature does not verify.
fn check_key(key: &jwk::Jwk, opts: &JwksOptions, deep: bool) {
    let m = &key.material;
    if !opts.allow_hmac {
        assert_ne!(m.kty(), "oct", "hmac key in a remote set");
    }
    if m.kty() == "RSA" {
        assert!(m.bits() >= opts.min_rsa_bits, "weak rsa key accepted");
    }
    for alg in Alg::ALL {
        if key.usable_for(alg) {
            assert!(m.fits(alg));
        }
    }
    if !deep {
        return;
    }
    if let Some(public) = m.to_public_jwk() {
        let text = Value::Object(public.clone()).to_string();
        let again = jwk::parse_key_set(&text, opts);
        assert!(again.is_ok(), "exported public jwk does not parse");
        if let Ok(again) = again {
            assert_eq!(again.keys.len(), 1);
            if let Some(k) = again.keys.first() {
                assert_eq!(
                    k.material.to_public_jwk(),
                    Some(public),
                    "round trip changed the key"
                );
            }
        }
    }
    // An all-zero signature of the right size never verifies with this key
    // (one algorithm per key: RSA verification dominates the cost).
    let set = KeySet {
        keys: vec![key.clone()],
        skipped: Vec::new(),
    };
    if let Some(alg) = Alg::ALL.into_iter().find(|a| key.usable_for(*a)) {
        let sig_len = match alg {
            Alg::Es256 => 64,
            Alg::Es384 => 96,
            Alg::Es512 => 132,
            Alg::EdDsa => 64,
            a if a.is_hmac() => a.hash_len(),
            _ => m.bits().div_ceil(8),
        };
        let header = format!(r#"{{"alg":"{}"}}"#, alg.name());
        let probe = format!(
            "{}.e30.{}",
            b64::encode(header.as_bytes()),
            b64::encode(&vec![0u8; sig_len])
        );
        if let Ok(jws) = UntrustedJws::parse(&probe, usize::MAX) {
            assert!(jws.verify(&set).is_err(), "all-zero signature verified");
        }
    }
}

/// Target `config`: parse a plugin configuration; when it loads, evaluate
/// a few fixed requests against it.
pub fn config(data: &[u8]) {
    let cfg = match Config::parse(data) {
        Ok(cfg) => cfg,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!((16..=65536).contains(&cfg.max_token_bytes));
    let token = format!(
        "{}.{}.{}",
        b64::encode(br#"{"alg":"HS256"}"#),
        b64::encode(br#"{"iss":"https://idp.fuzz"}"#),
        b64::encode(&[0u8; 32])
    );
    let token = token.as_str();
    let bearer = format!("Bearer {token}");
    let requests = [
        request("GET", "/", &[]),
        request(
            "GET",
            "/api/x?access_token=a.b.c",
            &[("authorization", bearer.as_str())],
        ),
        request(
            "OPTIONS",
            "/cors",
            &[
                ("origin", "http://127.0.0.1"),
                ("access-control-request-method", "GET"),
            ],
        ),
        request(
            "POST",
            "/a/b",
            &[("cookie", "session=x.y.z"), ("x-jwt-assertion", token)],
        ),
    ];
    for req in &requests {
        check_decision(&cfg, req, &NoRemoteKeys, &[]);
        check_decision(&cfg, req, &PendingKeys, &[]);
    }
}

/// Target `extract`: a request built from fuzz bytes (first line `:path`,
/// then `name: value` lines) evaluated against [`EXTRACT_CONFIG`] with
/// every remote-key state.
pub fn extract(data: &[u8]) {
    let Some(cfg) = extract_config() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').take(MAX_REQUEST_LINES);
    let path = lines.next().unwrap_or_default();
    let mut headers = vec![
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "example.com".to_string()),
        (":scheme".to_string(), "http".to_string()),
    ];
    let mut has_method = false;
    for line in lines {
        // The name ends at the first ':' after position 0 (pseudo-headers
        // start with one); the value loses one leading space.
        let split = line
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == ':')
            .map(|(i, _)| i);
        let (name, value) = match split {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        has_method |= name.eq_ignore_ascii_case(":method");
        headers.push((name.to_string(), value.to_string()));
    }
    if !has_method {
        headers.push((":method".to_string(), "GET".to_string()));
    }
    let req = Request::new(headers);
    let remote = cfg.provider_id("remote");
    let all = EvalContext::never_wait(NOW, cfg.providers.len()).already_fetched;
    check_decision(cfg, &req, &NoRemoteKeys, &[]);
    check_decision(cfg, &req, &PendingKeys, &[]);
    check_decision(cfg, &req, &PendingKeys, &all);
    if let Some(id) = remote {
        let ready = ReadyKeys(Arc::new(remote_keys_for_extract()));
        check_decision(cfg, &req, &ready, &[]);
        check_decision(cfg, &req, &ready, &[(id, FetchCause::NoKeys)]);
        check_decision(cfg, &req, &ready, &[(id, FetchCause::UnknownKid)]);
    }
    let providers: Vec<_> = cfg.providers.iter().enumerate().collect();
    for found in jwt_authn::extract::extract(&req, &providers) {
        assert!(!found.providers.is_empty());
    }
    let _ = jwt_authn::extract::path_without_param(req.path(), "access_token");
}

/// An EC key for the remote provider of the `extract` target (the P-256
/// key of [`TOKEN_JWKS`]), so a ready remote set is exercised too.
fn remote_keys_for_extract() -> KeySet {
    KeySet {
        keys: token_keys()
            .keys
            .iter()
            .filter(|k| k.kid.as_deref() == Some("p256"))
            .cloned()
            .collect(),
        skipped: Vec::new(),
    }
}

/// Evaluates and checks the invariants every decision must keep.
fn check_decision(
    cfg: &Config,
    req: &Request,
    keys: &dyn KeyStore,
    fetched: &[(ProviderId, FetchCause)],
) {
    let ctx = EvalContext {
        now: NOW,
        already_fetched: fetched.to_vec(),
    };
    match engine::evaluate(cfg, req, keys, &ctx) {
        Decision::Allow { changes, .. } => {
            // Identity headers a client sent never survive.
            for h in &cfg.strip_headers {
                if req.header(h).is_some() {
                    assert!(changes.remove.contains(h), "strip header kept");
                }
            }
            for (name, _) in req.headers() {
                if cfg
                    .strip_header_prefixes
                    .iter()
                    .any(|p| name.starts_with(p.as_str()))
                {
                    assert!(
                        changes.remove.iter().any(|r| r == name),
                        "prefixed header kept"
                    );
                }
            }
        }
        Decision::Deny(d) => {
            assert_eq!(d.status, d.reason.status());
            assert_eq!(d.body, d.reason.body());
            assert!(
                !d.www_authenticate.contains(['\r', '\n', '\0']),
                "control character in www-authenticate"
            );
        }
        Decision::FetchKeys { provider, cause } => {
            assert!(
                !fetched.contains(&(provider, cause)),
                "second wait for the same provider and cause"
            );
            let remote = cfg
                .providers
                .get(provider)
                .is_some_and(|p| matches!(p.keys, KeySource::Remote(_)));
            assert!(remote, "fetch asked for a provider without remote keys");
        }
    }
}

/// Remote keys that are still being fetched.
struct PendingKeys;

impl KeyStore for PendingKeys {
    fn remote_keys(&self, _: ProviderId) -> RemoteKeys {
        RemoteKeys::Pending
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        true
    }
}

/// Remote keys that are there.
struct ReadyKeys(Arc<KeySet>);

impl KeyStore for ReadyKeys {
    fn remote_keys(&self, _: ProviderId) -> RemoteKeys {
        RemoteKeys::Ready(self.0.clone())
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        true
    }
}

fn request(method: &str, path: &str, extra: &[(&str, &str)]) -> Request {
    let mut h = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "example.com".to_string()),
        (":scheme".to_string(), "https".to_string()),
    ];
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Request::new(h)
}

/// Target `json`: the strict parser at the default depth and at a depth
/// taken from the first byte, checked against serde_json.
pub fn json(data: &[u8]) {
    let depth = data.first().map_or(0, |b| usize::from(*b) % 140);
    // Oracle: the scanner the request path uses agrees with the full parse.
    let full = json::parse_strict(data, json::DEFAULT_MAX_DEPTH);
    let claims = jwt_authn::claims::Claims::from_json(data);
    let via_value = full
        .clone()
        .map_err(|_| ())
        .and_then(|v| jwt_authn::claims::Claims::from_value(v).map_err(|_| ()));
    assert_eq!(claims.ok(), via_value.ok(), "Claims::from_json disagrees");
    for max_depth in [json::DEFAULT_MAX_DEPTH, depth] {
        let scanned = json::scan_object(data, max_depth, ["iss", "aud", "exp"]);
        let parsed = json::parse_object(data, max_depth);
        assert_eq!(
            scanned.as_ref().map(|_| ()).map_err(std::mem::discriminant),
            parsed.as_ref().map(|_| ()).map_err(std::mem::discriminant),
            "scan_object and parse_object disagree"
        );
        if let (Ok(fields), Ok(map)) = (&scanned, &parsed) {
            for (field, name) in fields.iter().zip(["iss", "aud", "exp"]) {
                assert_eq!(
                    field.as_ref(),
                    map.get(name).map(json::Field::of_value).as_ref(),
                    "scan_object read member {name} differently"
                );
            }
        }
        match json::parse_strict(data, max_depth) {
            Ok(v) => {
                // Oracle: strict is a subset of serde_json, with the same value.
                let lenient: Result<Value, _> = serde_json::from_slice(data);
                assert!(lenient.is_ok(), "strict accepted what serde_json refuses");
                if let Ok(lenient) = lenient {
                    assert_eq!(lenient, v);
                }
                // Oracle: re-serialised output parses to the same value. Not
                // for floats: without its `float_roundtrip` feature serde_json
                // may read a float 1 ulp off its own output.
                if !has_float(&v) {
                    if let Ok(text) = serde_json::to_vec(&v) {
                        assert_eq!(json::parse_strict(&text, max_depth).ok(), Some(v.clone()));
                    }
                }
                assert_eq!(json::parse_object(data, max_depth).is_ok(), v.is_object());
            }
            Err(JsonError::Syntax(msg)) => {
                assert!(msg.chars().count() <= 128, "syntax message not bounded");
                assert!(
                    serde_json::from_slice::<Value>(data).is_err(),
                    "syntax error on valid json"
                );
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// Whether a value holds a number that is not an integer.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}
