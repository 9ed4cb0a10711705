//! End-to-end tests of the `jwt-authn` binary: every command is run as a
//! process, as an operator would, on files in `testdata/cli/` and on files
//! written here. Tokens are signed in this file (HS256 with `hmac`+`sha2`,
//! ES256 with `p256`), never with the code under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The HMAC secret of `testdata/cli/plugin.json` (kid k1).
const SECRET: &[u8; 32] = b"cli-test-secret-0123456789abcdef";
/// A fixed clock for time-dependent cases: 2023-11-14T22:13:20Z.
const NOW: u64 = 1_700_000_000;

// ---------------------------------------------------------------- support

fn testdata(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testdata")
        .join("cli")
        .join(name);
    root.to_string_lossy().into_owned()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one line of JSON expected: {}",
            self.stdout
        );
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwt-authn"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

/// A scratch directory removed at drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jwt-authn-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hs256(secret: &[u8], header: &Value, payload: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// A token the `local` provider accepts (at [`NOW`]) with `extra` claims merged in.
fn local_token(extra: Value) -> String {
    let mut claims = json!({"iss": "https://idp.test", "sub": "alice", "aud": "api", "iat": NOW - 60, "exp": NOW + 3600});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    hs256(
        SECRET,
        &json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
        &claims,
    )
}

/// A fixed P-256 key (scalar 0x0101..01), so runs are reproducible.
fn es_key() -> SigningKey {
    SigningKey::from_bytes(&[1u8; 32].into()).unwrap()
}

fn es256(key: &SigningKey, kid: &str, payload: &Value) -> String {
    let header = json!({"alg": "ES256", "kid": kid});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn es_jwks(key: &SigningKey, kid: &str) -> String {
    let point = key.verifying_key().to_encoded_point(false);
    json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                     "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())}]})
    .to_string()
}

fn verify(args: &[&str]) -> Run {
    let config = testdata("plugin.json");
    let mut all = vec!["verify", "--config", config.as_str()];
    all.extend_from_slice(args);
    run(&all)
}

// ---------------------------------------------------------- check-config

#[test]
fn check_config_summarizes_a_valid_plugin_configuration() {
    let r = run(&["check-config", &testdata("plugin.json")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "configuration ok: 3 providers, 4 rules");
    assert_eq!(
        lines[1],
        "provider local: issuer https://idp.test; keys local (1 key: k1/oct); audiences api; \
         token from header authorization \"Bearer \", query access_token; claim headers x-user-id=sub; token removed"
    );
    assert!(lines[3].starts_with("provider remote: issuer https://remote.test; keys remote http://127.0.0.1:8081/jwks.json (cluster idp, refresh 300s)"), "{}", lines[3]);
    assert_eq!(lines[4], "rule 0: prefix \"/api/\" -> provider local");
    assert_eq!(lines[7], "rule 3: prefix \"/\" -> no verification");
    assert!(
        !r.stdout.contains("Y2xpLXRlc3Qtc2VjcmV0"),
        "no key material"
    );
}

#[test]
fn check_config_prints_the_filters_error_line_with_its_json_path() {
    let r = run(&["check-config", &testdata("invalid.json")]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "providers.idp.remote_jwks.http_uri.timeout: invalid duration \"5 s\"\n"
    );
    assert_eq!(r.stdout, "");

    let s = Scratch::new();
    let typo = s.file("typo.json", br#"{"providers": {}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "nope"}}]}"#);
    let r = run(&["check-config", &typo]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            2,
            "rules[0].requires.provider_name: unknown provider \"nope\"\n"
        )
    );
    let broken = s.file("broken.json", b"{\"providers\": ");
    let r = run(&["check-config", &broken]);
    assert_eq!(r.code, 2);
    assert!(!r.stderr.is_empty());
}

#[test]
fn check_config_finds_the_wasm_filter_in_an_envoy_bootstrap() {
    let r = run(&["check-config", &testdata("envoy.yaml")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let label = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0] (jwt_authn)";
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], format!("filter {label}:"));
    assert_eq!(lines[1], "  configuration ok: 1 provider, 2 rules");
    assert_eq!(lines[3], "  rule 0: prefix \"/api/\" -> provider idp");

    // The same bootstrap with a broken plugin configuration: the error says which filter.
    let yaml = std::fs::read_to_string(testdata("envoy.yaml"))
        .unwrap()
        .replace("\"timeout\": \"5s\"", "\"timeout\": \"soon\"");
    let s = Scratch::new();
    let bad = s.file("bad.yaml", yaml.as_bytes());
    let r = run(&["check-config", &bad]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, format!("filter {label}: providers.idp.remote_jwks.http_uri.timeout: invalid duration \"soon\"\n"));
}

#[test]
fn check_config_refuses_unreadable_oversized_and_filterless_files() {
    let r = run(&["check-config", "/nonexistent/plugin.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/nonexistent/plugin.json: cannot read"),
        "{}",
        r.stderr
    );

    let s = Scratch::new();
    let none = s.file("none.yaml", b"static_resources:\n  listeners: []\n");
    let r = run(&["check-config", &none]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("no envoy.filters.http.wasm filter loading jwt-authn.wasm"),
        "{}",
        r.stderr
    );

    let big = s.file("big.json", &vec![b' '; 4 * 1024 * 1024 + 1]);
    let r = run(&["check-config", &big]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("larger than 4 MiB"), "{}", r.stderr);

    let r = run(&["check-config"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing FILE"), "{}", r.stderr);
}

// ----------------------------------------------------------------- decode

#[test]
fn decode_shows_header_payload_and_times_unverified_without_the_signature() {
    let token = local_token(json!({"nbf": NOW + 7200}));
    let signature = token.rsplit('.').next().unwrap().to_string();
    let r = run(&["decode", "--now", &(NOW + 180 + 3600).to_string(), &token]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("UNVERIFIED"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("header (UNVERIFIED):\n{\n  \"alg\": \"HS256\","),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("payload (UNVERIFIED):\n"), "{}", r.stdout);
    assert!(r.stdout.contains("\"sub\": \"alice\""), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("exp  1700003600  2023-11-14T23:13:20Z  expired 3m ago"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("nbf  1700007200  2023-11-15T00:13:20Z  not valid yet, starts in 57m"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("signature: 32 bytes (not shown)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(&signature));

    // Stdin, and the system clock (only the structure is checked).
    let r = run_with_stdin(&["decode", "-"], Some(&format!("{token}\n")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("exp  1700003600  2023-11-14T23:13:20Z  expired "),
        "{}",
        r.stdout
    );
}

#[test]
fn decode_rejects_malformed_tokens_with_exit_1() {
    for bad in ["not-a-token", "a.b", "!!!.e30.c2ln", "W10.e30.c2ln"] {
        let r = run(&["decode", bad]);
        assert_eq!(r.code, 1, "{bad}: {}", r.stdout);
        assert!(r.stderr.starts_with("jwt-authn decode: "), "{}", r.stderr);
        assert_eq!(r.stdout, "");
    }
    let r = run(&["decode"]);
    assert_eq!(r.code, 2);
}

// ----------------------------------------------------------------- verify

#[test]
fn verify_without_a_token_is_401_missing() {
    let r = verify(&["--path", "/api/orders"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.json(),
        json!({"decision": "deny", "status": 401, "reason": "missing", "provider": "local",
               "headers": {"set": {"www-authenticate": "Bearer realm=\"http://localhost/api/orders\""}, "removed": []}})
    );
    assert_eq!(
        r.stdout,
        "{\"decision\":\"deny\",\"status\":401,\"reason\":\"missing\",\"provider\":\"local\",\"headers\":{\"set\":{\"www-authenticate\":\"Bearer realm=\\\"http://localhost/api/orders\\\"\"},\"removed\":[]}}\n",
        "field order is part of the contract"
    );
}

#[test]
fn verify_allows_a_good_hs256_token_and_reports_the_header_changes() {
    let token = local_token(json!({}));
    let r = verify(&[
        "--path",
        "/api/orders",
        "--now",
        &NOW.to_string(),
        "--token",
        &token,
        "--header",
        "X-User-Id: mallory",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({"decision": "allow", "status": 200, "reason": "allowed", "provider": "local",
               "headers": {"set": {"x-user-id": "alice"}, "removed": ["x-user-id", "authorization"]}})
    );
    assert!(!r.stdout.contains(&token));

    // The same token from stdin.
    let config = testdata("plugin.json");
    let r = run_with_stdin(
        &[
            "verify",
            "--config",
            &config,
            "--path",
            "/api/x",
            "--now",
            &NOW.to_string(),
            "--token",
            "-",
        ],
        Some(&token),
    );
    assert_eq!(r.json()["decision"], "allow");
}

#[test]
fn verify_places_the_token_where_the_provider_looks() {
    let token = local_token(json!({}));
    // Provider `query` reads the `tok` query parameter, which is removed on success.
    let r = verify(&[
        "--path",
        "/q/items?page=2",
        "--now",
        &NOW.to_string(),
        "--token",
        &token,
    ]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["provider"], "query");
    assert_eq!(r.json()["headers"]["set"][":path"], "/q/items?page=2");
    // No rule needs a token: the default place is `authorization: Bearer`, and it passes untouched.
    let r = verify(&["--path", "/public", "--token", &token]);
    assert_eq!(
        r.json(),
        json!({"decision": "allow", "status": 200, "reason": "allowed", "provider": null,
               "headers": {"set": {}, "removed": []}})
    );
}

#[test]
fn verify_denies_an_expired_token_at_the_given_clock() {
    let token = local_token(json!({}));
    // exp = NOW + 3600, plus the default 60 s of clock skew.
    let r = verify(&[
        "--path",
        "/api/orders",
        "--now",
        &(NOW + 3600 + 61).to_string(),
        "--token",
        &token,
    ]);
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(
        (
            j["decision"].as_str(),
            j["status"].as_u64(),
            j["reason"].as_str()
        ),
        (Some("deny"), Some(401), Some("expired"))
    );
    assert_eq!(
        j["headers"]["set"]["www-authenticate"],
        "Bearer realm=\"http://localhost/api/orders\", error=\"invalid_token\""
    );
    let r = verify(&[
        "--path",
        "/api/orders",
        "--now",
        &(NOW + 3600 + 60).to_string(),
        "--token",
        &token,
    ]);
    assert_eq!(r.json()["decision"], "allow", "still inside the skew");
}

#[test]
fn verify_denies_a_wrong_audience_with_403() {
    let token = local_token(json!({"aud": ["other"]}));
    let r = verify(&[
        "--path",
        "/api/orders",
        "--now",
        &NOW.to_string(),
        "--token",
        &token,
        "--header",
        "host: shop.test",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.json(),
        json!({"decision": "deny", "status": 403, "reason": "audience", "provider": "local",
               "headers": {"set": {"www-authenticate": "Bearer realm=\"http://shop.test/api/orders\", error=\"invalid_token\""}, "removed": []}})
    );
}

#[test]
fn verify_uses_jwks_files_for_remote_providers_and_never_the_network() {
    let key = es_key();
    let s = Scratch::new();
    let jwks = s.file("remote.json", es_jwks(&key, "e1").as_bytes());
    let token = es256(
        &key,
        "e1",
        &json!({"iss": "https://remote.test", "sub": "bob", "aud": "api", "exp": NOW + 600}),
    );
    let spec = format!("remote={jwks}");
    let r = verify(&[
        "--path",
        "/remote/x",
        "--now",
        &NOW.to_string(),
        "--token",
        &token,
        "--jwks",
        &spec,
    ]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(
        r.json(),
        json!({"decision": "allow", "status": 200, "reason": "allowed", "provider": "remote",
               "headers": {"set": {"x-remote-sub": "bob"}, "removed": ["authorization"]}})
    );

    // Without --jwks the provider is unreachable, as a failed fetch in the filter.
    let r = verify(&[
        "--path",
        "/remote/x",
        "--now",
        &NOW.to_string(),
        "--token",
        &token,
    ]);
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(
        (
            j["status"].as_u64(),
            j["reason"].as_str(),
            j["provider"].as_str()
        ),
        (Some(401), Some("jwks_unavailable"), Some("remote"))
    );

    // A key set holding a different key: the signature does not verify.
    let other = SigningKey::from_bytes(&[2u8; 32].into()).unwrap();
    let wrong = s.file("wrong.json", es_jwks(&other, "e1").as_bytes());
    let r = verify(&[
        "--path",
        "/remote/x",
        "--now",
        &NOW.to_string(),
        "--token",
        &token,
        "--jwks",
        &format!("remote={wrong}"),
    ]);
    assert_eq!(r.json()["reason"], "bad_signature");
}

#[test]
fn verify_usage_and_configuration_errors_exit_2() {
    let r = run(&["verify", "--path", "/"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--config FILE is required"),
        "{}",
        r.stderr
    );

    let r = run(&["verify", "--config", &testdata("invalid.json")]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("providers.idp.remote_jwks.http_uri.timeout: invalid duration \"5 s\""),
        "{}",
        r.stderr
    );

    for args in [
        vec!["--jwks", "remote"],
        vec!["--jwks", "nobody=/dev/null"],
        vec!["--jwks", "local=/dev/null"],
        vec!["--jwks", "remote=/nonexistent.json"],
        vec!["--now", "yesterday"],
        vec!["--header", "no-colon"],
        vec!["--bogus"],
        vec!["stray-positional"],
    ] {
        let r = verify(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stdout);
        assert_eq!(r.stdout, "", "{args:?}");
        assert!(
            r.stderr.starts_with("jwt-authn: "),
            "{args:?}: {}",
            r.stderr
        );
    }

    let s = Scratch::new();
    let hmac_jwks = s.file(
        "oct.json",
        format!(r#"{{"keys":[{{"kty":"oct","k":"{}"}}]}}"#, b64(SECRET)).as_bytes(),
    );
    let r = verify(&["--jwks", &format!("remote={hmac_jwks}")]);
    assert_eq!(r.code, 2, "a fetched key set may not hold HMAC secrets");
    assert!(r.stderr.contains("no usable keys"), "{}", r.stderr);
    assert!(!r.stderr.contains(&b64(SECRET)));
}

#[test]
fn verify_reads_the_configuration_out_of_a_bootstrap() {
    let r = run(&[
        "verify",
        "--config",
        &testdata("envoy.yaml"),
        "--path",
        "/api/x",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["reason"], "missing");
    assert_eq!(r.json()["provider"], "idp");
}

// ------------------------------------------------------------- jws-verify

#[test]
fn jws_verify_checks_only_the_signature_layer() {
    let key = es_key();
    let s = Scratch::new();
    let jwks = s.file("keys.json", es_jwks(&key, "e1").as_bytes());
    // A payload that is not a JWT claim set at all.
    let header = json!({"alg": "ES256", "kid": "e1"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(b"not a claim set")
    );
    let sig: Signature = key.sign(input.as_bytes());
    let token = format!("{input}.{}", b64(&sig.to_bytes()));

    let r = run(&["jws-verify", "--jwks", &jwks, &token]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({"valid": true, "reason": "ok", "alg": "ES256", "kid": "e1"})
    );

    let other = SigningKey::from_bytes(&[3u8; 32].into()).unwrap();
    let forged_sig: Signature = other.sign(input.as_bytes());
    let forged = format!("{input}.{}", b64(&forged_sig.to_bytes()));
    let r = run(&["jws-verify", "--jwks", &jwks, &forged]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.json(),
        json!({"valid": false, "reason": "bad_signature", "alg": "ES256", "kid": "e1"})
    );

    let r = run(&["jws-verify", "--jwks", &jwks, "a.b"]);
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (1, Some("malformed"))
    );

    // HMAC keys are allowed in this offline tool; `-` reads stdin.
    let oct = s.file(
        "oct.json",
        format!(
            r#"{{"keys":[{{"kty":"oct","kid":"k1","k":"{}"}}]}}"#,
            b64(SECRET)
        )
        .as_bytes(),
    );
    let r = run_with_stdin(
        &["jws-verify", "--jwks", &oct, "-"],
        Some(&local_token(json!({}))),
    );
    assert_eq!(
        r.json(),
        json!({"valid": true, "reason": "ok", "alg": "HS256", "kid": "k1"})
    );

    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}"));
    let r = run(&["jws-verify", "--jwks", &oct, &none]);
    assert_eq!(
        r.json(),
        json!({"valid": false, "reason": "alg_not_allowed", "alg": "none", "kid": null})
    );

    let r = run(&["jws-verify", "--jwks", &oct, &"a".repeat(64 * 1024 + 1)]);
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (1, Some("too_large"))
    );
}

#[test]
fn jws_verify_with_an_unreadable_or_unparseable_key_file_exits_2() {
    let r = run(&["jws-verify", "--jwks", "/nonexistent/keys.json", "a.b.c"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
    let s = Scratch::new();
    let junk = s.file("junk.json", b"{\"keys\": 5}");
    let r = run(&["jws-verify", "--jwks", &junk, "a.b.c"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    let r = run(&["jws-verify", "a.b.c"]);
    assert_eq!(r.code, 2);
}

// ------------------------------------------------------------------- misc

#[test]
fn help_and_version() {
    for cmd in ["check-config", "decode", "verify", "jws-verify"] {
        let r = run(&[cmd, "--help"]);
        assert_eq!(r.code, 0, "{cmd}");
        assert!(
            r.stdout.starts_with(&format!("Usage: jwt-authn {cmd}")),
            "{cmd}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("Exit codes"), "{cmd}");
        assert_eq!(run(&["help", cmd]).stdout, r.stdout);
    }
    assert!(run(&["jws-verify", "--help"]).stdout.contains("64 KiB"));
    let r = run(&["--version"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, concat!("jwt-authn ", env!("CARGO_PKG_VERSION"), "\n"))
    );
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    let r = run(&[]);
    assert_eq!(r.code, 2);
    let r = run(&["frobnicate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown command"), "{}", r.stderr);
}

#[test]
fn odd_inputs_never_crash_the_tool() {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_token = format!(
        "{}.{}.c2ln",
        b64(br#"{"alg":"HS256"}"#),
        b64(deep.as_bytes())
    );
    let tokens = [
        "".to_string(),
        ".".to_string(),
        "...".to_string(),
        "é.é.é".to_string(),
        "e30.e30.".to_string(),
        format!("{}.{}.c2ln", b64(br#"{"alg":"HS256","kid":7}"#), b64(b"{}")),
        format!(
            "{}.{}.c2ln",
            b64(br#"{"alg":"HS256"}"#),
            b64(br#"{"exp":1e400,"nbf":-1,"iat":18446744073709551615}"#)
        ),
        deep_token,
    ];
    let s = Scratch::new();
    let oct = s.file(
        "oct.json",
        format!(r#"{{"keys":[{{"kty":"oct","k":"{}"}}]}}"#, b64(SECRET)).as_bytes(),
    );
    for t in &tokens {
        for args in [
            vec!["decode", t.as_str()],
            vec!["jws-verify", "--jwks", oct.as_str(), t.as_str()],
            vec![
                "verify",
                "--config",
                "PLUGIN",
                "--path",
                "/api/x",
                "--token",
                t.as_str(),
            ],
            vec![
                "verify",
                "--config",
                "PLUGIN",
                "--path",
                "/q/x#frag",
                "--token",
                t.as_str(),
            ],
        ] {
            let plugin = testdata("plugin.json");
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "PLUGIN" { plugin.as_str() } else { a })
                .collect();
            let r = run(&args);
            assert!(
                matches!(r.code, 0..=2),
                "{args:?} exited {}: {}",
                r.code,
                r.stderr
            );
        }
    }
    let files: [&[u8]; 6] = [
        deep.as_bytes(),
        b"a: &a [1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d]\n",
        b"\xff\xfe\x00binary",
        b"static_resources: [1, 2]",
        b"kind: WasmPlugin\nspec: {pluginConfig: 5}\n",
        b"---\na: 1\n---\nb: 2\n",
    ];
    for (i, content) in files.iter().enumerate() {
        let f = s.file(&format!("odd{i}"), content);
        for args in [
            vec!["check-config", f.as_str()],
            vec!["verify", "--config", f.as_str()],
            vec!["jws-verify", "--jwks", f.as_str(), "a.b.c"],
        ] {
            let r = run(&args);
            assert_eq!(r.code, 2, "{args:?}: {} {}", r.stdout, r.stderr);
        }
    }
}
