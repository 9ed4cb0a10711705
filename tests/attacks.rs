//! Known attacks on JWT verifiers: one test per attack, named after it, each
//! asserting the exact outcome through the core's public API — the request
//! flow (`engine::evaluate` with a parsed `Config`, as the filter runs it)
//! and/or the JOSE layer (`UntrustedJws::parse` + `verify`, `jwk`).
//!
//! Tokens are signed here with the primitives themselves (hmac, p256, p384,
//! rsa, ed25519-compact), never with the code under test. Where we are
//! deliberately stricter than Envoy's jwt_authn, the test says so.
//!
//! The last tests replay the fuzz corpora (`fuzz/corpus-seed/`,
//! `fuzz/regressions/`) through the very harness the cargo-fuzz targets run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/src/harness.rs"]
#[allow(dead_code)]
mod harness;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jwt_authn::config::{Config, ProviderId};
use jwt_authn::decision::{Decision, FetchCause};
use jwt_authn::engine::{evaluate, EvalContext, KeyStore, NoRemoteKeys, RemoteKeys};
use jwt_authn::json::{self, JsonError};
use jwt_authn::jwk::{
    parse_key_set, parse_key_set_lenient, Jwk, JwkError, JwksOptions, KeyMaterial, KeySet,
    KeySkipReason,
};
use jwt_authn::jws::{JwsError, UntrustedJws};
use jwt_authn::reason::Reason;
use jwt_authn::request::Request;
use rand::SeedableRng as _;
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The clock of every evaluation.
const NOW: u64 = 1_700_000_000;
/// The issuer of the test provider.
const ISS: &str = "https://idp.example";
/// Size limit for direct `UntrustedJws::parse` calls (far above any config).
const BIG: usize = 1 << 20;
/// HMAC secret of the test JWKS: 64 bytes, so it serves HS256/384/512.
const HMAC_SECRET: [u8; 64] = [0x5a; 64];
/// Orders of the P-256 and P-384 groups (SEC 2).
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_N: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

// ---------------------------------------------------------------- keys ---

/// The 2048-bit RSA key of RFC 7520 section 3.4 (fixed, so tests are
/// deterministic and skip a slow key generation).
fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let jwk: Value = serde_json::from_str(include_str!(
            "../testdata/conformance/rfc7520/jwk/3_4.rsa_private_key.json"
        ))
        .unwrap();
        let int = |m: &str| rsa::BigUint::from_bytes_be(&unb64(jwk[m].as_str().unwrap()));
        rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
            .unwrap()
    })
}

/// A 1024-bit RSA key, generated once (slow in debug builds) from a fixed seed.
fn rsa_1024() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1024);
        rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap()
    })
}

fn p256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap()
}

fn p384_key() -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).unwrap()
}

fn ed_key() -> ed25519_compact::KeyPair {
    ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([0x33; 32]))
}

/// A key the attacker owns (never in any JWKS).
fn attacker_p256() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x77; 32]).unwrap()
}

// ------------------------------------------------------------- signing ---

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

macro_rules! hmac_fn {
    ($name:ident, $hash:ty) => {
        fn $name(secret: &[u8], input: &[u8]) -> Vec<u8> {
            let mut mac = Hmac::<$hash>::new_from_slice(secret).unwrap();
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
    };
}
hmac_fn!(hs256, sha2::Sha256);
hmac_fn!(hs384, sha2::Sha384);
hmac_fn!(hs512, sha2::Sha512);

fn es256(key: &p256::ecdsa::SigningKey, input: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = key.sign(input);
    sig.to_bytes().to_vec()
}

fn es384(key: &p384::ecdsa::SigningKey, input: &[u8]) -> Vec<u8> {
    let sig: p384::ecdsa::Signature = key.sign(input);
    sig.to_bytes().to_vec()
}

fn rs256(key: &rsa::RsaPrivateKey, input: &[u8]) -> Vec<u8> {
    rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
        .sign(input)
        .to_vec()
}

fn ps256(key: &rsa::RsaPrivateKey, input: &[u8]) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(256);
    rsa::pss::SigningKey::<sha2::Sha256>::new(key.clone())
        .sign_with_rng(&mut rng, input)
        .to_vec()
}

fn eddsa(key: &ed25519_compact::KeyPair, input: &[u8]) -> Vec<u8> {
    key.sk.sign(input, None).as_ref().to_vec()
}

/// `header.payload.signature` from raw JSON texts (so duplicate members and
/// odd number spellings survive) and a signing function.
fn jws(header: &str, payload: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// The same token with another signature segment.
fn with_sig(token: &str, sig: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", b64(sig))
}

/// The decoded signature segment.
fn sig_of(token: &str) -> Vec<u8> {
    unb64(token.rsplit_once('.').unwrap().1)
}

/// A claim set for [`ISS`] that passes every check at [`NOW`].
fn good_claims() -> String {
    format!(r#"{{"iss":"{ISS}","sub":"alice","exp":{}}}"#, NOW + 3600)
}

/// A claim set for [`ISS`] with `extra` members (raw JSON, leading comma included).
fn claims_with(extra: &str) -> String {
    format!(r#"{{"iss":"{ISS}","sub":"alice"{extra}}}"#)
}

/// A good HS256 token over `payload` with the test secret.
fn hs_token(payload: &str) -> String {
    jws(r#"{"alg":"HS256","kid":"hmac"}"#, payload, |i| {
        hs256(&HMAC_SECRET, i)
    })
}

fn es256_token(payload: &str) -> String {
    jws(r#"{"alg":"ES256","kid":"p256"}"#, payload, |i| {
        es256(&p256_key(), i)
    })
}

fn es384_token(payload: &str) -> String {
    jws(r#"{"alg":"ES384","kid":"p384"}"#, payload, |i| {
        es384(&p384_key(), i)
    })
}

fn rs256_token(payload: &str) -> String {
    jws(r#"{"alg":"RS256","kid":"rsa"}"#, payload, |i| {
        rs256(rsa_key(), i)
    })
}

// ----------------------------------------------------------- key sets ---

fn rsa_jwk(key: &rsa::RsaPublicKey, extra: Value) -> Value {
    merge(
        json!({"kty":"RSA","n":b64(&key.n().to_bytes_be()),"e":b64(&key.e().to_bytes_be())}),
        extra,
    )
}

fn ec_jwk(crv: &str, sec1: &[u8], extra: Value) -> Value {
    let coords = &sec1[1..];
    let (x, y) = coords.split_at(coords.len() / 2);
    merge(json!({"kty":"EC","crv":crv,"x":b64(x),"y":b64(y)}), extra)
}

fn p256_jwk(key: &p256::ecdsa::SigningKey, extra: Value) -> Value {
    ec_jwk(
        "P-256",
        key.verifying_key().to_encoded_point(false).as_bytes(),
        extra,
    )
}

fn p384_jwk(key: &p384::ecdsa::SigningKey, extra: Value) -> Value {
    ec_jwk(
        "P-384",
        key.verifying_key().to_encoded_point(false).as_bytes(),
        extra,
    )
}

fn ed_jwk(key: &ed25519_compact::KeyPair, extra: Value) -> Value {
    merge(
        json!({"kty":"OKP","crv":"Ed25519","x":b64(key.pk.as_ref())}),
        extra,
    )
}

fn oct_jwk(secret: &[u8], extra: Value) -> Value {
    merge(json!({"kty":"oct","k":b64(secret)}), extra)
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn jwks_text(keys: Vec<Value>) -> String {
    json!({ "keys": keys }).to_string()
}

/// One key of each kind, each with a kid.
fn all_keys_jwks() -> String {
    jwks_text(vec![
        rsa_jwk(&rsa_key().to_public_key(), json!({"kid":"rsa"})),
        p256_jwk(&p256_key(), json!({"kid":"p256"})),
        p384_jwk(&p384_key(), json!({"kid":"p384"})),
        ed_jwk(&ed_key(), json!({"kid":"ed"})),
        oct_jwk(&HMAC_SECRET, json!({"kid":"hmac"})),
    ])
}

/// The key-set policy of a local JWKS (HMAC allowed).
fn local_opts() -> JwksOptions {
    JwksOptions {
        allow_hmac: true,
        ..JwksOptions::default()
    }
}

fn local_set(text: &str) -> KeySet {
    parse_key_set(text, &local_opts()).unwrap()
}

fn all_keys() -> KeySet {
    local_set(&all_keys_jwks())
}

/// Parse + verify; the payload bytes on success.
fn check(token: &str, keys: &KeySet) -> Result<Vec<u8>, JwsError> {
    UntrustedJws::parse(token, BIG)?
        .verify(keys)
        .map(<[u8]>::to_vec)
}

// ------------------------------------------------------------- engine ---

/// A config with one provider `idp` (issuer [`ISS`], `local_jwks` = `jwks`,
/// `provider_extra` merged in) required on every path, plus global
/// `extensions`.
fn config_with(jwks: &str, provider_extra: Value, extensions: Value) -> Config {
    try_config(jwks, provider_extra, extensions).unwrap()
}

fn try_config(
    jwks: &str,
    provider_extra: Value,
    extensions: Value,
) -> Result<Config, jwt_authn::config::ConfigError> {
    let provider = merge(
        json!({"issuer": ISS, "local_jwks": {"inline_string": jwks}}),
        provider_extra,
    );
    let cfg = json!({
        "providers": {"idp": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
        "extensions": extensions,
    });
    Config::parse(cfg.to_string().as_bytes())
}

/// The config with [`all_keys_jwks`] and defaults, parsed once.
fn default_config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| config_with(&all_keys_jwks(), json!({}), json!({})))
}

/// A config whose provider `idp` fetches its keys remotely.
fn remote_config() -> Config {
    let cfg = json!({
        "providers": {"idp": {"issuer": ISS, "remote_jwks": {"http_uri": {
            "uri": "http://127.0.0.1:8081/jwks.json", "cluster": "idp", "timeout": "1s"}}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    });
    Config::parse(cfg.to_string().as_bytes()).unwrap()
}

fn bearer_request(token: &str) -> Request {
    Request::new(vec![
        (":method".into(), "GET".into()),
        (":path".into(), "/api".into()),
        (":authority".into(), "example.com".into()),
        (":scheme".into(), "https".into()),
        ("authorization".into(), format!("Bearer {token}")),
    ])
}

fn decide_with(
    cfg: &Config,
    token: &str,
    keys: &dyn KeyStore,
    fetched: &[(ProviderId, FetchCause)],
) -> Decision {
    let ctx = EvalContext {
        now: NOW,
        already_fetched: fetched.to_vec(),
    };
    evaluate(cfg, &bearer_request(token), keys, &ctx)
}

/// The engine's verdict for a bearer token.
fn verdict(cfg: &Config, token: &str) -> Reason {
    decide_with(cfg, token, &NoRemoteKeys, &[])
        .reason()
        .expect("local keys never need a fetch")
}

/// A key store that has the given remote keys and records who asked.
struct Store {
    keys: RemoteKeys,
    asked: RefCell<Vec<ProviderId>>,
}

impl Store {
    fn new(keys: RemoteKeys) -> Self {
        Store {
            keys,
            asked: RefCell::new(Vec::new()),
        }
    }
}

impl KeyStore for Store {
    fn remote_keys(&self, provider: ProviderId) -> RemoteKeys {
        self.asked.borrow_mut().push(provider);
        self.keys.clone()
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        true
    }
}

// ================================================================ alg ===

/// `alg: none` in one spelling: refused by name, signed or not, whatever
/// the key set holds.
fn assert_alg_none_refused(name: &str) {
    let header = format!(r#"{{"alg":"{name}"}}"#);
    let unsigned = format!(
        "{}.{}.",
        b64(header.as_bytes()),
        b64(good_claims().as_bytes())
    );
    // The same header with a valid HMAC over it: still no algorithm to run.
    let maced = jws(&header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
    for t in [&unsigned, &maced] {
        assert_eq!(
            UntrustedJws::parse(t, BIG).unwrap_err(),
            JwsError::AlgNotAllowed(name.into())
        );
        assert_eq!(verdict(default_config(), t), Reason::AlgNotAllowed);
    }
    // Control: the same claims under HS256 pass.
    assert_eq!(
        verdict(default_config(), &hs_token(&good_claims())),
        Reason::Allowed
    );
}

#[test]
fn alg_none_lowercase() {
    assert_alg_none_refused("none");
}

#[test]
fn alg_none_titlecase() {
    assert_alg_none_refused("None");
}

#[test]
fn alg_none_uppercase() {
    assert_alg_none_refused("NONE");
}

#[test]
fn token_with_unknown_alg_is_rejected_by_name() {
    // Even with a valid HS256 MAC over the token: the name decides.
    for name in [
        "HS1", "RS1", "ES256K", "Ed448", "RSA-OAEP", "A128KW", "dir", "rs256", "HS256 ", "eddsa",
    ] {
        let header = format!(r#"{{"alg":"{name}"}}"#);
        let t = jws(&header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
        assert_eq!(
            UntrustedJws::parse(&t, BIG).unwrap_err(),
            JwsError::AlgNotAllowed(name.into()),
            "{name}"
        );
        assert_eq!(
            verdict(default_config(), &t),
            Reason::AlgNotAllowed,
            "{name}"
        );
    }
    // Missing or non-string alg: refused with an empty name.
    for header in [
        r#"{"typ":"JWT"}"#,
        r#"{"alg":256}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":null}"#,
    ] {
        let t = jws(header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
        assert_eq!(
            UntrustedJws::parse(&t, BIG).unwrap_err(),
            JwsError::AlgNotAllowed(String::new()),
            "{header}"
        );
    }
}

// ============================================ algorithm confusion (HMAC) ===

/// An HS256 token MACed with `secret` (the bytes of a public key) is refused
/// by every key document holding that public key, with the remote and the
/// local policy, directly and through the engine. `control` is a genuine
/// token of the key's own algorithm, which the same config accepts.
fn assert_hmac_confusion_fails(secrets: &[Vec<u8>], docs: &[String], kid: &str, control: &str) {
    for doc in docs {
        let remote = parse_key_set(doc, &JwksOptions::default()).unwrap();
        let local = local_set(doc);
        let cfg = config_with(doc, json!({}), json!({}));
        assert_eq!(verdict(&cfg, control), Reason::Allowed, "control");
        for secret in secrets {
            for header in [
                r#"{"alg":"HS256"}"#.to_string(),
                format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#),
            ] {
                let t = jws(&header, &good_claims(), |i| hs256(secret, i));
                assert_eq!(check(&t, &remote), Err(JwsError::KeyNotFound));
                assert_eq!(check(&t, &local), Err(JwsError::KeyNotFound));
                assert_eq!(verdict(&cfg, &t), Reason::KeyNotFound);
            }
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body: Vec<String> = STANDARD
        .encode(der)
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

fn rsa_spki_der() -> Vec<u8> {
    rsa_key()
        .to_public_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn rsa_docs() -> Vec<String> {
    vec![
        jwks_text(vec![rsa_jwk(
            &rsa_key().to_public_key(),
            json!({"kid":"rsa"}),
        )]),
        pem("PUBLIC KEY", &rsa_spki_der()),
    ]
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    match body.len() {
        n if n < 0x80 => v.push(n as u8),
        n if n < 0x100 => v.extend([0x81, n as u8]),
        n => v.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(body);
    v
}

/// SubjectPublicKeyInfo of the P-256 test key, built by hand.
fn p256_spki_der() -> Vec<u8> {
    let mut alg = der_tlv(0x06, &hex("2a8648ce3d0201"));
    alg.extend(der_tlv(0x06, &hex("2a8648ce3d030107")));
    let mut bits = vec![0u8];
    bits.extend_from_slice(
        p256_key()
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes(),
    );
    let mut body = der_tlv(0x30, &alg);
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

fn ec_docs() -> Vec<String> {
    vec![
        jwks_text(vec![p256_jwk(&p256_key(), json!({"kid":"p256"}))]),
        pem("PUBLIC KEY", &p256_spki_der()),
    ]
}

#[test]
fn hs256_keyed_with_rsa_public_key_pem() {
    let pem_text = pem("PUBLIC KEY", &rsa_spki_der());
    let pkcs1 = rsa_key().to_public_key().to_pkcs1_der().unwrap();
    let secrets = vec![
        pem_text.clone().into_bytes(),
        pem_text.trim_end().as_bytes().to_vec(),
        pem("RSA PUBLIC KEY", pkcs1.as_bytes()).into_bytes(),
    ];
    assert_hmac_confusion_fails(&secrets, &rsa_docs(), "rsa", &rs256_token(&good_claims()));
}

#[test]
fn hs256_keyed_with_rsa_public_key_der() {
    let pkcs1 = rsa_key().to_public_key().to_pkcs1_der().unwrap();
    let secrets = vec![
        rsa_spki_der(),
        pkcs1.as_bytes().to_vec(),
        rsa_key().n().to_bytes_be(),
    ];
    assert_hmac_confusion_fails(&secrets, &rsa_docs(), "rsa", &rs256_token(&good_claims()));
}

#[test]
fn hs256_keyed_with_rsa_public_key_jwk_json() {
    let jwk = rsa_jwk(&rsa_key().to_public_key(), json!({"kid":"rsa"}));
    let secrets = vec![
        jwk.to_string().into_bytes(),
        serde_json::to_vec_pretty(&jwk).unwrap(),
        rsa_docs()[0].clone().into_bytes(),
    ];
    assert_hmac_confusion_fails(&secrets, &rsa_docs(), "rsa", &rs256_token(&good_claims()));
}

#[test]
fn hs256_keyed_with_ec_public_key_pem() {
    let pem_text = pem("PUBLIC KEY", &p256_spki_der());
    let secrets = vec![
        pem_text.clone().into_bytes(),
        pem_text.trim_end().as_bytes().to_vec(),
    ];
    assert_hmac_confusion_fails(&secrets, &ec_docs(), "p256", &es256_token(&good_claims()));
}

#[test]
fn hs256_keyed_with_ec_public_key_der() {
    let point = p256_key()
        .verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let compressed = p256_key()
        .verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .to_vec();
    let secrets = vec![p256_spki_der(), point, compressed];
    assert_hmac_confusion_fails(&secrets, &ec_docs(), "p256", &es256_token(&good_claims()));
}

#[test]
fn hs256_keyed_with_ec_public_key_jwk_json() {
    let jwk = p256_jwk(&p256_key(), json!({"kid":"p256"}));
    let secrets = vec![
        jwk.to_string().into_bytes(),
        ec_docs()[0].clone().into_bytes(),
    ];
    assert_hmac_confusion_fails(&secrets, &ec_docs(), "p256", &es256_token(&good_claims()));
}

// ================================================================ kid ===

#[test]
fn kid_path_traversal() {
    for kid in [
        "../../etc/passwd",
        "../../../../../../dev/null",
        "/etc/passwd",
        "..\\..\\boot.ini",
    ] {
        // Signed with the real HMAC key: only the kid is hostile.
        let header = json!({"alg":"HS256","kid":kid}).to_string();
        let t = jws(&header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
        assert_eq!(check(&t, &all_keys()), Err(JwsError::KeyNotFound), "{kid}");
        assert_eq!(verdict(default_config(), &t), Reason::KeyNotFound, "{kid}");
    }
    // With remote keys the unknown kid may trigger one refetch of the
    // CONFIGURED JWKS (key rotation), never a lookup by the kid; after that
    // fetch the answer is final.
    let cfg = remote_config();
    let ready = Store::new(RemoteKeys::Ready(Arc::new(
        parse_key_set(
            &jwks_text(vec![p256_jwk(&p256_key(), json!({"kid":"p256"}))]),
            &JwksOptions::default(),
        )
        .unwrap(),
    )));
    let t = jws(
        r#"{"alg":"ES256","kid":"../../etc/passwd"}"#,
        &good_claims(),
        |i| es256(&p256_key(), i),
    );
    assert_eq!(
        decide_with(&cfg, &t, &ready, &[]),
        Decision::FetchKeys {
            provider: 0,
            cause: FetchCause::UnknownKid
        }
    );
    assert_eq!(
        decide_with(&cfg, &t, &ready, &[(0, FetchCause::UnknownKid)]).reason(),
        Some(Reason::KeyNotFound)
    );
}

#[test]
fn kid_sql_injection() {
    for kid in [
        "' OR '1'='1",
        "x' UNION SELECT 'secret' --",
        "\"; DROP TABLE keys; --",
        "%27%20OR%201=1",
    ] {
        let header = json!({"alg":"HS256","kid":kid}).to_string();
        let t = jws(&header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
        assert_eq!(check(&t, &all_keys()), Err(JwsError::KeyNotFound), "{kid}");
        assert_eq!(verdict(default_config(), &t), Reason::KeyNotFound, "{kid}");
    }
}

#[test]
fn kid_very_long() {
    let kid = "k".repeat(100 * 1024);
    let header = json!({"alg":"HS256","kid":kid}).to_string();
    let t = jws(&header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
    // Through the filter: over any configurable token limit (64 KiB max).
    let cfg = config_with(
        &all_keys_jwks(),
        json!({}),
        json!({"max_token_bytes": 65536}),
    );
    assert_eq!(verdict(&cfg, &t), Reason::TooLarge);
    assert_eq!(verdict(default_config(), &t), Reason::TooLarge);
    // Directly, with no size limit: just an unknown kid, and the error does
    // not carry it.
    let err = check(&t, &all_keys()).unwrap_err();
    assert_eq!(err, JwsError::KeyNotFound);
    assert!(err.to_string().len() < 64);
}

// ============================================ keys named by the token ===

/// A token signed by the attacker's own key, which the header names or
/// embeds (`extra`): the header is ignored, the configured keys decide.
fn assert_header_key_ignored(extra: Value) {
    let header = merge(json!({"alg":"ES256"}), extra).to_string();
    let t = jws(&header, &good_claims(), |i| es256(&attacker_p256(), i));
    assert_eq!(check(&t, &all_keys()), Err(JwsError::BadSignature));
    assert_eq!(verdict(default_config(), &t), Reason::BadSignature);
    // A remote provider: the store is asked for the configured provider's
    // keys only, and the attacker's key does not verify against them.
    let cfg = remote_config();
    let ready = Store::new(RemoteKeys::Ready(Arc::new(
        parse_key_set(
            &jwks_text(vec![p256_jwk(&p256_key(), json!({}))]),
            &JwksOptions::default(),
        )
        .unwrap(),
    )));
    assert_eq!(
        decide_with(&cfg, &t, &ready, &[]).reason(),
        Some(Reason::BadSignature)
    );
    assert_eq!(*ready.asked.borrow(), vec![0]);
    // Cold cache: the fetch asked for is the configured provider's (id 0),
    // which the shell fetches from its configured URI; the Decision has no
    // field that could carry a URL from the token.
    let pending = Store::new(RemoteKeys::Pending);
    assert_eq!(
        decide_with(&cfg, &t, &pending, &[]),
        Decision::FetchKeys {
            provider: 0,
            cause: FetchCause::NoKeys
        }
    );
}

fn attacker_spki_b64() -> String {
    let mut alg = der_tlv(0x06, &hex("2a8648ce3d0201"));
    alg.extend(der_tlv(0x06, &hex("2a8648ce3d030107")));
    let mut bits = vec![0u8];
    bits.extend_from_slice(
        attacker_p256()
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes(),
    );
    let mut body = der_tlv(0x30, &alg);
    body.extend(der_tlv(0x03, &bits));
    STANDARD.encode(der_tlv(0x30, &body))
}

#[test]
fn jku_header_is_never_fetched_or_trusted() {
    assert_header_key_ignored(json!({"jku":"http://127.0.0.1:8081/attacker-jwks.json"}));
}

#[test]
fn x5u_header_is_never_fetched_or_trusted() {
    assert_header_key_ignored(json!({"x5u":"http://127.0.0.1:8081/attacker.pem"}));
}

#[test]
fn x5c_header_is_not_trusted() {
    assert_header_key_ignored(json!({"x5c":[attacker_spki_b64()]}));
}

#[test]
fn embedded_jwk_header_is_not_trusted() {
    assert_header_key_ignored(json!({"jwk": p256_jwk(&attacker_p256(), json!({}))}));
    // Even when the embedded key claims the kid of a configured key.
    assert_header_key_ignored(
        json!({"kid":"p256","jwk": p256_jwk(&attacker_p256(), json!({"kid":"p256"}))}),
    );
}

// =============================================================== crit ===

// RFC 7515 section 4.1.11: a recipient must reject critical extensions it
// does not understand, and we understand none. Stricter than Envoy's
// jwt_authn, which ignores `crit` altogether.

#[test]
fn crit_unknown_extension() {
    for header in [
        r#"{"alg":"HS256","crit":["http://example.com/ext"],"http://example.com/ext":true}"#,
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
    ] {
        let t = jws(header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::CritUnsupported),
            "{header}"
        );
        assert_eq!(verdict(default_config(), &t), Reason::Malformed, "{header}");
    }
}

#[test]
fn crit_malformed() {
    for crit in [
        r#""b64""#,
        "[]",
        "[1]",
        "{}",
        "null",
        "true",
        r#"[["b64"]]"#,
    ] {
        let header = format!(r#"{{"alg":"HS256","crit":{crit}}}"#);
        let t = jws(&header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::CritUnsupported),
            "{crit}"
        );
        assert_eq!(verdict(default_config(), &t), Reason::Malformed, "{crit}");
    }
}

// ==================================================== duplicate members ===

// RFC 7515 section 5.2 / RFC 7519 section 4: duplicate member names must be
// rejected, so two parsers can never read different values from one token.
// Stricter than Envoy's jwt_authn, whose JSON parser keeps one of them.

#[test]
fn duplicate_member_in_header() {
    for header in [
        r#"{"alg":"HS256","kid":"hmac","alg":"none"}"#,
        r#"{"alg":"none","alg":"HS256"}"#,
        r#"{"kid":"other","alg":"HS256","kid":"hmac"}"#,
        r#"{"alg":"HS256","\u0061lg":"HS256"}"#,
    ] {
        let t = jws(header, &good_claims(), |i| hs256(&HMAC_SECRET, i));
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::Malformed("duplicate member in header")),
            "{header}"
        );
        assert_eq!(verdict(default_config(), &t), Reason::Malformed, "{header}");
    }
}

#[test]
fn duplicate_member_in_payload() {
    let cases = [
        (
            format!(
                r#"{{"iss":"https://evil","iss":"{ISS}","exp":{}}}"#,
                NOW + 60
            ),
            "iss",
        ),
        (
            format!(r#"{{"iss":"{ISS}","exp":1,"exp":{}}}"#, NOW + 60),
            "exp",
        ),
        (
            format!(r#"{{"iss":"{ISS}","sub":"a","\u0073ub":"admin"}}"#),
            "sub",
        ),
        (
            format!(r#"{{"iss":"{ISS}","realm":{{"role":"user","role":"admin"}}}}"#),
            "role",
        ),
    ];
    for (payload, name) in cases {
        let t = hs_token(&payload);
        // The signature is fine; the claim set is not.
        let bytes = check(&t, &all_keys()).unwrap();
        assert_eq!(
            json::parse_strict(&bytes, json::DEFAULT_MAX_DEPTH),
            Err(JsonError::DuplicateKey(name.into()))
        );
        assert_eq!(
            verdict(default_config(), &t),
            Reason::Malformed,
            "{payload}"
        );
    }
}

// ======================================================= base64url form ===

// RFC 7515 section 2: base64url without padding, one spelling per value.
// Stricter than Envoy's jwt_authn (absl's web-safe decoder accepts padding).

/// A good token's three segments.
fn segments(t: &str) -> [String; 3] {
    let p: Vec<&str> = t.split('.').collect();
    [p[0].to_string(), p[1].to_string(), p[2].to_string()]
}

const WHERE: [&str; 3] = [
    "bad base64 in header",
    "bad base64 in payload",
    "bad base64 in signature",
];

#[test]
fn padding_in_segment() {
    let good = hs_token(&good_claims());
    assert!(check(&good, &all_keys()).is_ok());
    for i in 0..3 {
        for pad in ["=", "==", "===="] {
            let mut s = segments(&good);
            s[i].push_str(pad);
            let t = s.join(".");
            assert_eq!(
                check(&t, &all_keys()),
                Err(JwsError::Malformed(WHERE[i])),
                "{i}{pad}"
            );
            assert_eq!(verdict(default_config(), &t), Reason::Malformed);
        }
    }
    // A padding character in the middle of a segment.
    let mut s = segments(&good);
    s[2].insert(4, '=');
    assert_eq!(
        check(&s.join("."), &all_keys()),
        Err(JwsError::Malformed(WHERE[2]))
    );
}

#[test]
fn plus_slash_alphabet() {
    // Find (bounded, deterministic) a token whose segments use '-' or '_'.
    let t = (0..200)
        .map(|i| {
            let header = json!({"alg":"HS256","kid":"hmac","x":"~".repeat(i % 7 + 1)}).to_string();
            jws(
                &header,
                &claims_with(&format!(r#","n":{i},"q":"???>>>""#)),
                |x| hs256(&HMAC_SECRET, x),
            )
        })
        .find(|t| segments(t).iter().all(|s| s.contains(['-', '_'])))
        .expect("a token with '-' or '_' in every segment");
    assert_eq!(verdict(default_config(), &t), Reason::Allowed, "control");
    for i in 0..3 {
        let mut s = segments(&t);
        s[i] = s[i].replace('-', "+").replace('_', "/");
        let bad = s.join(".");
        assert_eq!(
            check(&bad, &all_keys()),
            Err(JwsError::Malformed(WHERE[i])),
            "{i}"
        );
        assert_eq!(verdict(default_config(), &bad), Reason::Malformed);
    }
}

#[test]
fn non_zero_trailing_bits() {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let good = hs_token(&claims_with(r#","pad":"x""#));
    let mut tested = 0;
    for i in 0..3 {
        let s = segments(&good);
        if s[i].len() % 4 == 0 {
            continue; // no spare bits in this segment
        }
        // The last character's unused low bits are zero; set one. A lenient
        // decoder yields the same bytes, so the token would verify.
        let mut seg = s[i].clone().into_bytes();
        let last = seg.pop().unwrap();
        let idx = ALPHABET.iter().position(|c| *c == last).unwrap();
        seg.push(ALPHABET[idx | 1]);
        let mut bad = s.clone();
        bad[i] = String::from_utf8(seg).unwrap();
        let bad = bad.join(".");
        assert_ne!(bad, good);
        assert_eq!(
            check(&bad, &all_keys()),
            Err(JwsError::Malformed(WHERE[i])),
            "{i}"
        );
        assert_eq!(verdict(default_config(), &bad), Reason::Malformed);
        tested += 1;
    }
    // HS256 tags are 32 bytes = 43 characters: the signature always has spare bits.
    assert!(tested >= 1);
}

#[test]
fn whitespace_in_token() {
    let good = hs_token(&good_claims());
    let dot = good.find('.').unwrap();
    for ws in [" ", "\t", "\n", "\r\n", "\u{a0}", "\u{200b}", "\u{feff}"] {
        for pos in [0, dot, dot + 1, good.len() - 5, good.len()] {
            let mut t = good.clone();
            t.insert_str(pos, ws);
            assert!(
                matches!(check(&t, &all_keys()), Err(JwsError::Malformed(_))),
                "{ws:?} at {pos}"
            );
            // In a header value, whitespace before the token is skipped by
            // the extractor (as jwt_authn); anywhere else it breaks the token.
            if pos > 0 {
                assert_eq!(
                    verdict(default_config(), &t),
                    Reason::Malformed,
                    "{ws:?} at {pos}"
                );
            }
        }
    }
}

// ============================================================ framing ===

#[test]
fn extra_segments() {
    let good = hs_token(&good_claims());
    let s = segments(&good);
    for t in [
        format!("{good}."),
        format!("{good}.{}", s[2]),
        format!("{}.{}.{}.{}", s[0], s[1], s[1], s[2]),
        format!("{}..{}.{}", s[0], s[1], s[2]),
        format!("{good}.a.b.c"),
        format!("{good}{}", ".".repeat(1000)),
    ] {
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::Malformed("expected three segments"))
        );
        assert_eq!(verdict(default_config(), &t), Reason::Malformed);
    }
}

#[test]
fn trailing_data_after_signature() {
    let good = hs_token(&good_claims());
    // More base64url: a longer signature, never equal to the 32-byte tag.
    for tail in ["A", "AAAA", "QUJA"] {
        let t = format!("{good}{tail}");
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::BadSignature),
            "{tail}"
        );
        assert_eq!(
            verdict(default_config(), &t),
            Reason::BadSignature,
            "{tail}"
        );
    }
    // Anything else is not canonical base64url (43 + 2 characters is a
    // length no byte string has).
    for tail in ["AA", "!", "\0", "%20", "=", "\"", ";foo=bar"] {
        let t = format!("{good}{tail}");
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::Malformed(WHERE[2])),
            "{tail:?}"
        );
        assert_eq!(verdict(default_config(), &t), Reason::Malformed, "{tail:?}");
    }
}

#[test]
fn oversize_segments() {
    // Over the limit by one byte: refused; at the limit: fine.
    let good = hs_token(&good_claims());
    let exact = config_with(
        &all_keys_jwks(),
        json!({}),
        json!({"max_token_bytes": good.len()}),
    );
    assert_eq!(verdict(&exact, &good), Reason::Allowed);
    let under = config_with(
        &all_keys_jwks(),
        json!({}),
        json!({"max_token_bytes": good.len() - 1}),
    );
    assert_eq!(verdict(&under, &good), Reason::TooLarge);

    // A 9 KB payload segment against the default 8 KiB limit.
    let big = hs_token(&claims_with(&format!(r#","pad":"{}""#, "x".repeat(9000))));
    assert_eq!(verdict(default_config(), &big), Reason::TooLarge);

    // 4 MiB of text that is not even base64: reported as too large, not as
    // malformed, so the size check ran before any decoding; and fast.
    let garbage = format!(
        "{}.{}.{}",
        "!".repeat(2 << 20),
        "!".repeat(1 << 20),
        "!".repeat(1 << 20)
    );
    let start = Instant::now();
    assert_eq!(
        UntrustedJws::parse(&garbage, 8192).unwrap_err(),
        JwsError::TooLarge
    );
    assert_eq!(verdict(default_config(), &garbage), Reason::TooLarge);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[test]
fn nested_jws_cty_jwt() {
    // A signed token whose payload is another token. jwt_authn has no
    // nested-JWT support either (it would read the inner token as claims
    // and fail); we refuse it by its header.
    let inner = hs_token(&good_claims());
    for cty in ["JWT", "jwt"] {
        let header = format!(r#"{{"alg":"HS256","kid":"hmac","cty":"{cty}"}}"#);
        let t = jws(&header, &inner, |i| hs256(&HMAC_SECRET, i));
        assert_eq!(check(&t, &all_keys()), Err(JwsError::NestedJwt));
        assert_eq!(verdict(default_config(), &t), Reason::Malformed);
    }
    // Without cty the payload is simply not a claim set.
    let t = jws(r#"{"alg":"HS256"}"#, &inner, |i| hs256(&HMAC_SECRET, i));
    assert!(check(&t, &all_keys()).is_ok());
    assert_eq!(verdict(default_config(), &t), Reason::Malformed);
}

#[test]
fn jwe_compact_five_segments() {
    let header = b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    let dir = b64(br#"{"alg":"dir","enc":"A128GCM"}"#);
    for t in [
        format!("{header}.AAAA.AAAA.AAAA.AAAA"),
        format!("{dir}..48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ"),
    ] {
        assert_eq!(check(&t, &all_keys()), Err(JwsError::Malformed("jwe not supported")));
        assert_eq!(verdict(default_config(), &t), Reason::Malformed);
    }
}

// ========================================================= crash attempts ===

/// FOUND BY FUZZING (target `extract`, input in
/// `fuzz/regressions/extract/realm-multibyte-truncate`): the `realm` of
/// `www-authenticate` is built from client headers (`x-forwarded-proto`,
/// `:authority`, `:path`) and cut to 2048 bytes with `String::truncate`,
/// which panics when byte 2048 falls inside a multi-byte character. Any
/// unauthenticated request to a protected route could abort the VM. The
/// request must simply be denied.
#[test]
fn multibyte_header_in_realm_crash_attempt() {
    let long = format!("a{}", "\u{e9}".repeat(1100));
    let cases = [
        ("x-forwarded-proto", long.clone(), "/api".to_string()),
        (":authority", long.clone(), "/api".to_string()),
        (":path", "example.com".to_string(), format!("/{long}")),
    ];
    for (name, value, path) in cases {
        let mut headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path),
            (":scheme".to_string(), "https".to_string()),
        ];
        if name != ":path" {
            headers.push((name.to_string(), value));
        } else {
            headers.push((":authority".to_string(), value));
        }
        let req = Request::new(headers);
        let ctx = EvalContext {
            now: NOW,
            already_fetched: vec![],
        };
        let outcome =
            std::panic::catch_unwind(|| evaluate(default_config(), &req, &NoRemoteKeys, &ctx));
        let decision =
            outcome.unwrap_or_else(|_| panic!("evaluate panicked on a long multi-byte {name}"));
        match decision {
            Decision::Deny(d) => {
                assert_eq!((d.reason, d.status), (Reason::Missing, 401));
                assert!(d.www_authenticate.starts_with("Bearer realm=\""));
                assert!(d.www_authenticate.len() <= 2048 + 32);
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}

// ============================================================== ECDSA ===

/// The ES256 and ES384 test keys only.
fn ec_keys() -> KeySet {
    local_set(&jwks_text(vec![
        p256_jwk(&p256_key(), json!({"kid":"p256"})),
        p384_jwk(&p384_key(), json!({"kid":"p384"})),
    ]))
}

/// A good ES256 and ES384 token with the group order of their curve.
fn ec_cases() -> Vec<(String, Vec<u8>)> {
    let t256 = es256_token(&good_claims());
    let t384 = es384_token(&good_claims());
    assert!(check(&t256, &ec_keys()).is_ok() && check(&t384, &ec_keys()).is_ok());
    vec![(t256, hex(P256_N)), (t384, hex(P384_N))]
}

fn assert_bad_ecdsa(token: &str, sig: &[u8]) {
    let t = with_sig(token, sig);
    assert_eq!(
        check(&t, &ec_keys()),
        Err(JwsError::BadSignature),
        "sig {}",
        b64(sig)
    );
    assert_eq!(verdict(default_config(), &t), Reason::BadSignature);
}

#[test]
fn ecdsa_signature_all_zero() {
    for (t, n) in ec_cases() {
        let size = n.len();
        for len in [1, size, 2 * size - 1, 2 * size, 2 * size + 1, 4 * size] {
            assert_bad_ecdsa(&t, &vec![0u8; len]);
        }
    }
}

#[test]
fn ecdsa_psychic_signature_r_s_zero() {
    // CVE-2022-21449: r = s = 0 "verified" everything in Java 15-18.
    for (t, n) in ec_cases() {
        let size = n.len();
        let good = sig_of(&t);
        let (r, s) = good.split_at(size);
        assert_bad_ecdsa(&t, &vec![0u8; 2 * size]);
        assert_bad_ecdsa(&t, &[vec![0u8; size], s.to_vec()].concat());
        assert_bad_ecdsa(&t, &[r.to_vec(), vec![0u8; size]].concat());
    }
}

#[test]
fn ecdsa_r_equals_order_n() {
    // r = n is 0 mod n: must be refused as out of range, not reduced.
    for (t, n) in ec_cases() {
        let good = sig_of(&t);
        let s = &good[n.len()..];
        assert_bad_ecdsa(&t, &[n.clone(), s.to_vec()].concat());
        assert_bad_ecdsa(&t, &[n.clone(), n.clone()].concat());
    }
}

/// Big-endian `a + b` (same length, carry dropped) and `a - b`.
fn add_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut v = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(v < 0);
        if v < 0 {
            v += 256;
        }
        out[i] = v as u8;
    }
    out
}

#[test]
fn ecdsa_s_out_of_range() {
    for (t, n) in ec_cases() {
        let size = n.len();
        let good = sig_of(&t);
        let (r, s) = good.split_at(size);
        let mut one = vec![0u8; size];
        one[size - 1] = 1;
        for bad_s in [n.clone(), add_be(&n, &one), vec![0xff; size]] {
            assert_bad_ecdsa(&t, &[r.to_vec(), bad_s].concat());
        }
        // s + n, when it still fits in the field size, is s mod n again.
        let s_plus_n = add_be(s, &n);
        if s_plus_n > s.to_vec() {
            assert_bad_ecdsa(&t, &[r.to_vec(), s_plus_n].concat());
        }
        // n - s is in range and verifies: ECDSA is malleable and, like
        // BoringSSL in Envoy, we do not demand low-s. Recorded so a change
        // is deliberate.
        let high_s = with_sig(&t, &[r.to_vec(), sub_be(&n, s)].concat());
        assert!(check(&high_s, &ec_keys()).is_ok());
    }
}

#[test]
fn ecdsa_negative_like_high_bit() {
    // Raw r || s are unsigned: an r with its top bit set is an ordinary
    // value, not a negative number. Find one (bounded, deterministic).
    let t = (0..64)
        .map(|i| es256_token(&claims_with(&format!(r#","n":{i}"#))))
        .find(|t| sig_of(t)[0] & 0x80 != 0)
        .expect("a signature with the top bit of r set");
    assert!(check(&t, &ec_keys()).is_ok(), "top-bit r must verify");
    let good = sig_of(&t);
    let (r, s) = good.split_at(32);
    // DER-style sign padding, and the two's complement "negative" of r.
    assert_bad_ecdsa(&t, &[&[0u8][..], r, s].concat());
    assert_bad_ecdsa(&t, &[r, &[0u8][..], s].concat());
    assert_bad_ecdsa(&t, &[sub_be(&[0u8; 32], r), s.to_vec()].concat());
    assert_bad_ecdsa(&t, &[&[0xffu8][..], &r[1..], s].concat());
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let int = |x: &[u8]| {
        let x = &x[x.iter().position(|b| *b != 0).unwrap_or(x.len() - 1)..];
        let mut body = x.to_vec();
        if body[0] & 0x80 != 0 {
            body.insert(0, 0);
        }
        der_tlv(0x02, &body)
    };
    der_tlv(0x30, &[int(r), int(s)].concat())
}

#[test]
fn ecdsa_der_instead_of_raw() {
    // JWS (RFC 7518 section 3.4) uses raw r || s; DER is what X.509 and
    // BoringSSL use internally. jwt_authn requires raw too.
    for (t, n) in ec_cases() {
        let good = sig_of(&t);
        let (r, s) = good.split_at(n.len());
        let der = der_signature(r, s);
        assert_bad_ecdsa(&t, &der);
        // DER cut or zero-padded to the raw length.
        let mut fitted = der.clone();
        fitted.resize(2 * n.len(), 0);
        assert_bad_ecdsa(&t, &fitted);
    }
}

// ================================================================ RSA ===

#[test]
fn rsa_signature_shorter_than_modulus() {
    // RFC 7518 section 3.3: the signature is exactly k = 256 octets. Find a
    // signature that starts with 0x00 (about 1 in 256) and strip that byte:
    // the same integer, one octet short. RS256 is deterministic: searching
    // from 0 the first hit is counter 197, so the search starts there (one
    // signature in a debug build costs ~0.15 s); it still works, slower, if
    // the key or claims change.
    let keys = local_set(&rsa_docs()[0]);
    let t = (197..2000)
        .map(|i| rs256_token(&claims_with(&format!(r#","n":{i}"#))))
        .find(|t| sig_of(t)[0] == 0)
        .expect("an RS256 signature with a leading zero octet");
    assert!(check(&t, &keys).is_ok(), "control");
    let short = with_sig(&t, &sig_of(&t)[1..]);
    assert_eq!(check(&short, &keys), Err(JwsError::BadSignature));
    assert_eq!(verdict(default_config(), &short), Reason::BadSignature);
    // And for any signature, PKCS#1 v1.5 and PSS alike.
    for good in [
        rs256_token(&good_claims()),
        jws(r#"{"alg":"PS256"}"#, &good_claims(), |i| {
            ps256(rsa_key(), i)
        }),
    ] {
        assert!(check(&good, &keys).is_ok());
        let sig = sig_of(&good);
        for cut in [&sig[1..], &sig[..255], &sig[..128], &sig[..1]] {
            let bad = with_sig(&good, cut);
            assert_eq!(check(&bad, &keys), Err(JwsError::BadSignature));
        }
    }
}

#[test]
fn rsa_signature_longer_than_modulus() {
    let keys = local_set(&rsa_docs()[0]);
    for good in [
        rs256_token(&good_claims()),
        jws(r#"{"alg":"PS256"}"#, &good_claims(), |i| {
            ps256(rsa_key(), i)
        }),
    ] {
        let sig = sig_of(&good);
        // A leading zero keeps the integer value: lenient verifiers accept it.
        for long in [
            [&[0u8][..], &sig].concat(),
            [&sig[..], &[0u8][..]].concat(),
            [sig.clone(), sig.clone()].concat(),
        ] {
            let bad = with_sig(&good, &long);
            assert_eq!(check(&bad, &keys), Err(JwsError::BadSignature));
            assert_eq!(verdict(default_config(), &bad), Reason::BadSignature);
        }
    }
}

#[test]
fn rsa_key_under_2048_bits_is_refused() {
    // RFC 7518 section 3.3 requires 2048 bits. Stricter than Envoy's
    // jwt_authn, which accepts 1024-bit keys; `extensions.min_rsa_bits`
    // can lower the floor to 1024 on purpose.
    let weak = rsa_1024();
    assert_eq!(weak.size(), 128);
    let weak_jwk = rsa_jwk(&weak.to_public_key(), json!({"kid":"weak"}));
    let only_weak = jwks_text(vec![weak_jwk.clone()]);
    for opts in [JwksOptions::default(), local_opts()] {
        assert_eq!(
            parse_key_set(&only_weak, &opts).unwrap_err(),
            JwkError::NoValidKeys { skipped: 1 }
        );
        let lenient = parse_key_set_lenient(&only_weak, &opts).unwrap();
        assert_eq!(lenient.skipped[0].reason, KeySkipReason::WeakRsa);
    }
    let weak_pem = pem(
        "PUBLIC KEY",
        weak.to_public_key().to_public_key_der().unwrap().as_bytes(),
    );
    assert_eq!(
        parse_key_set(&weak_pem, &JwksOptions::default()).unwrap_err(),
        JwkError::NoValidKeys { skipped: 1 }
    );
    let err = try_config(&only_weak, json!({}), json!({})).unwrap_err();
    assert_eq!(err.path, "providers.idp.local_jwks.inline_string");

    // Next to a strong key the weak one is skipped: its tokens find no key
    // (with its kid) or fail on the strong key (without one).
    let mixed = jwks_text(vec![
        weak_jwk,
        rsa_jwk(&rsa_key().to_public_key(), json!({"kid":"rsa"})),
    ]);
    let cfg = config_with(&mixed, json!({}), json!({}));
    let by_weak = jws(r#"{"alg":"RS256","kid":"weak"}"#, &good_claims(), |i| {
        rs256(weak, i)
    });
    let by_weak_no_kid = jws(r#"{"alg":"RS256"}"#, &good_claims(), |i| rs256(weak, i));
    assert_eq!(verdict(&cfg, &by_weak), Reason::KeyNotFound);
    assert_eq!(verdict(&cfg, &by_weak_no_kid), Reason::BadSignature);
    assert_eq!(
        verdict(&cfg, &rs256_token(&good_claims())),
        Reason::Allowed,
        "control"
    );

    // Control: with the floor lowered on purpose, the same key works.
    let lowered = config_with(
        &mixed,
        json!({"extensions": {"min_rsa_bits": 1024}}),
        json!({}),
    );
    assert_eq!(verdict(&lowered, &by_weak), Reason::Allowed);
}

// ============================================================= claims ===

/// Verdict for an HS256 token with these claim-set members after iss/sub.
fn claims_verdict(cfg: &Config, extra: &str) -> Reason {
    verdict(cfg, &hs_token(&claims_with(extra)))
}

fn parsed(extra: &str) -> jwt_authn::claims::Claims {
    let v = json::parse_strict(claims_with(extra).as_bytes(), json::DEFAULT_MAX_DEPTH).unwrap();
    jwt_authn::claims::Claims::from_value(v).unwrap()
}

#[test]
fn exp_as_string() {
    for exp in [
        r#""2000000000""#,
        r#""1e10""#,
        "true",
        "null",
        "[2000000000]",
        "{}",
    ] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","exp":{exp}"#)),
            Reason::Malformed,
            "{exp}"
        );
    }
}

#[test]
fn exp_as_float() {
    // jwt_verify_lib reads numbers as doubles and truncates; we match. With
    // the default 60 s skew a token is expired once now > exp + 60.
    let at_edge = format!(r#","exp":{}.9"#, NOW - 60);
    assert_eq!(parsed(&at_edge).exp, NOW - 60);
    assert_eq!(claims_verdict(default_config(), &at_edge), Reason::Allowed);
    // .9 truncates down (rounding would make this one pass).
    let past_edge = format!(r#","exp":{}.9"#, NOW - 61);
    assert_eq!(parsed(&past_edge).exp, NOW - 61);
    assert_eq!(
        claims_verdict(default_config(), &past_edge),
        Reason::Expired
    );
    assert_eq!(parsed(r#","exp":1.7e9"#).exp, 1_700_000_000);
}

#[test]
fn exp_huge_number() {
    // The largest u64 is a (far) future time.
    assert_eq!(
        claims_verdict(default_config(), &format!(r#","exp":{}"#, u64::MAX)),
        Reason::Allowed
    );
    for exp in [
        "18446744073709551616",
        "1e300",
        "99999999999999999999999999",
        "1.8e19",
    ] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","exp":{exp}"#)),
            Reason::Malformed,
            "{exp}"
        );
    }
}

#[test]
fn exp_negative() {
    for exp in [
        "-1",
        "-1700000000",
        "-0.5",
        "-1e300",
        "-9223372036854775808",
    ] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","exp":{exp}"#)),
            Reason::Malformed,
            "{exp}"
        );
    }
}

#[test]
fn nbf_as_string() {
    for nbf in [r#""0""#, "true", "null", "[0]"] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","nbf":{nbf}"#)),
            Reason::Malformed,
            "{nbf}"
        );
    }
}

#[test]
fn nbf_as_float() {
    // Not yet valid while now + 60 < nbf. .9 truncates down: NOW + 60.9 is
    // NOW + 60 and passes (rounding would refuse it).
    let at_edge = format!(r#","nbf":{}.9"#, NOW + 60);
    assert_eq!(parsed(&at_edge).nbf, NOW + 60);
    assert_eq!(claims_verdict(default_config(), &at_edge), Reason::Allowed);
    let past_edge = format!(r#","nbf":{}.5"#, NOW + 61);
    assert_eq!(
        claims_verdict(default_config(), &past_edge),
        Reason::NotYetValid
    );
}

#[test]
fn nbf_huge_number() {
    assert_eq!(
        claims_verdict(default_config(), &format!(r#","nbf":{}"#, u64::MAX)),
        Reason::NotYetValid
    );
    for nbf in ["18446744073709551616", "1e300"] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","nbf":{nbf}"#)),
            Reason::Malformed,
            "{nbf}"
        );
    }
}

#[test]
fn nbf_negative() {
    for nbf in ["-1", "-0.5", "-1e300"] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","nbf":{nbf}"#)),
            Reason::Malformed,
            "{nbf}"
        );
    }
}

/// A config whose provider limits `exp - iat` to one hour.
fn lifetime_config() -> Config {
    config_with(
        &all_keys_jwks(),
        json!({"max_lifetime": "3600s"}),
        json!({}),
    )
}

#[test]
fn iat_as_string() {
    // iat is never judged, but its type is (as jwt_verify_lib).
    for iat in [r#""1700000000""#, "true", "[1]"] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","iat":{iat}"#)),
            Reason::Malformed,
            "{iat}"
        );
    }
}

#[test]
fn iat_as_float() {
    // Truncation is visible through max_lifetime: exp - iat must be <= 3600.
    let cfg = lifetime_config();
    let exp = NOW + 3600;
    let ok = format!(r#","exp":{exp},"iat":{NOW}.9"#);
    assert_eq!(parsed(&ok).iat, NOW);
    assert_eq!(claims_verdict(&cfg, &ok), Reason::Allowed);
    // 1699999999.9 truncates to 1699999999: lifetime 3601 (rounding: 3600).
    let over = format!(r#","exp":{exp},"iat":{}.9"#, NOW - 1);
    assert_eq!(claims_verdict(&cfg, &over), Reason::Lifetime);
}

#[test]
fn iat_huge_number() {
    // An iat after exp measures a lifetime of 0 (saturating), as jwt_authn,
    // which does not judge iat on its own.
    let cfg = lifetime_config();
    let extra = format!(r#","exp":{},"iat":{}"#, NOW + 60, u64::MAX);
    assert_eq!(claims_verdict(&cfg, &extra), Reason::Allowed);
    for iat in ["18446744073709551616", "1e300"] {
        assert_eq!(
            claims_verdict(&cfg, &format!(r#","exp":{},"iat":{iat}"#, NOW + 60)),
            Reason::Malformed
        );
    }
}

#[test]
fn iat_negative() {
    for iat in ["-1", "-0.5", "-1e300"] {
        assert_eq!(
            claims_verdict(default_config(), &format!(r#","iat":{iat}"#)),
            Reason::Malformed,
            "{iat}"
        );
    }
}

#[test]
fn aud_as_object() {
    let with_aud = config_with(&all_keys_jwks(), json!({"audiences": ["api"]}), json!({}));
    for aud in [
        r#"{"api":true}"#,
        "[1]",
        r#"[["api"]]"#,
        r#"[{"aud":"api"}]"#,
        "7",
        "true",
    ] {
        let extra = format!(r#","aud":{aud}"#);
        assert_eq!(
            claims_verdict(&with_aud, &extra),
            Reason::Malformed,
            "{aud}"
        );
        assert_eq!(
            claims_verdict(default_config(), &extra),
            Reason::Malformed,
            "{aud}"
        );
    }
    assert_eq!(
        claims_verdict(&with_aud, r#","aud":"api""#),
        Reason::Allowed,
        "control"
    );
    assert_eq!(
        claims_verdict(&with_aud, r#","aud":["x","api"]"#),
        Reason::Allowed,
        "control"
    );
}

#[test]
fn claims_nested_thousands_deep() {
    let cfg = config_with(
        &all_keys_jwks(),
        json!({}),
        json!({"max_token_bytes": 65536}),
    );
    let depth = 5000;
    let payloads = [
        format!(
            r#"{{"iss":"{ISS}","a":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        format!(
            r#"{{"iss":"{ISS}","a":{}1{}}}"#,
            r#"{"a":"#.repeat(depth),
            "}".repeat(depth)
        ),
        format!(r#"{{"iss":"{ISS}","a":{}"#, "[".repeat(depth)),
    ];
    for payload in payloads {
        let t = hs_token(&payload);
        assert!(t.len() < 65536);
        // On a small stack (the wasm VM's is small too): bounded recursion.
        let verdict_on_small_stack = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn_scoped(scope, || verdict(&cfg, &t))
                .unwrap()
                .join()
                .unwrap()
        });
        assert_eq!(verdict_on_small_stack, Reason::Malformed);
        // The JOSE layer hands out the payload; the strict parser stops it.
        if let Ok(bytes) = check(&t, &all_keys()) {
            assert_eq!(
                json::parse_strict(&bytes, json::DEFAULT_MAX_DEPTH),
                Err(JsonError::TooDeep)
            );
        }
    }
}

// ========================================================= key policy ===

#[test]
fn hmac_key_shorter_than_hash_is_refused() {
    // RFC 7518 section 3.2: an HMAC key at least as long as the hash.
    // Stricter than Envoy's jwt_authn, which accepts any length.
    let short = jwks_text(vec![oct_jwk(&[7u8; 31], json!({"kid":"s31"}))]);
    assert_eq!(
        parse_key_set(&short, &local_opts()).unwrap_err(),
        JwkError::NoValidKeys { skipped: 1 }
    );
    assert_eq!(
        parse_key_set_lenient(&short, &local_opts())
            .unwrap()
            .skipped[0]
            .reason,
        KeySkipReason::HmacTooShort
    );
    assert_eq!(
        try_config(&short, json!({}), json!({})).unwrap_err().path,
        "providers.idp.local_jwks.inline_string"
    );
    // A 32-byte secret serves HS256 only.
    let k32 = [9u8; 32];
    let doc = jwks_text(vec![oct_jwk(&k32, json!({"kid":"k32"}))]);
    let cfg = config_with(&doc, json!({}), json!({}));
    let h = |alg: &str| format!(r#"{{"alg":"{alg}","kid":"k32"}}"#);
    assert_eq!(
        verdict(&cfg, &jws(&h("HS256"), &good_claims(), |i| hs256(&k32, i))),
        Reason::Allowed
    );
    assert_eq!(
        verdict(&cfg, &jws(&h("HS384"), &good_claims(), |i| hs384(&k32, i))),
        Reason::KeyNotFound
    );
    assert_eq!(
        verdict(&cfg, &jws(&h("HS512"), &good_claims(), |i| hs512(&k32, i))),
        Reason::KeyNotFound
    );
    // Pinned to an algorithm it is too short for: skipped at load.
    let pinned = jwks_text(vec![oct_jwk(&k32, json!({"alg":"HS512"}))]);
    assert_eq!(
        parse_key_set_lenient(&pinned, &local_opts())
            .unwrap()
            .skipped[0]
            .reason,
        KeySkipReason::HmacTooShort
    );
    // And a fetched (remote) key set never holds HMAC secrets at all.
    let long = jwks_text(vec![oct_jwk(&HMAC_SECRET, json!({}))]);
    assert_eq!(
        parse_key_set_lenient(&long, &JwksOptions::default())
            .unwrap()
            .skipped[0]
            .reason,
        KeySkipReason::HmacNotAllowed
    );
}

/// A key set that holds `jwk` as parsed, and the same key built by hand
/// with `edit` applied (bypassing the parser's own checks), so both the
/// load-time and the use-time checks are covered.
fn hand_built(edit: impl FnOnce(&mut Jwk)) -> KeySet {
    let material = KeyMaterial::from_spki_der(&p256_spki_der()).unwrap();
    let mut jwk = Jwk {
        kid: Some("p256".into()),
        alg: None,
        key_use: None,
        key_ops: None,
        material,
        from_pem: false,
    };
    edit(&mut jwk);
    KeySet {
        keys: vec![jwk],
        skipped: Vec::new(),
    }
}

/// A P-256 JWK with `extra` members and a P-384 key next to it (so the set
/// still loads), the ES256 token's verdict, and the skip reason.
fn p256_with(extra: Value) -> (Reason, Option<KeySkipReason>) {
    let doc = jwks_text(vec![
        p256_jwk(&p256_key(), merge(json!({"kid":"p256"}), extra)),
        p384_jwk(&p384_key(), json!({"kid":"p384"})),
    ]);
    let skipped = parse_key_set_lenient(&doc, &local_opts())
        .unwrap()
        .skipped
        .first()
        .map(|s| s.reason);
    let cfg = config_with(&doc, json!({}), json!({}));
    (verdict(&cfg, &es256_token(&good_claims())), skipped)
}

#[test]
fn key_with_use_enc_is_not_used() {
    assert_eq!(
        p256_with(json!({"use":"enc"})),
        (Reason::KeyNotFound, Some(KeySkipReason::NotForSignature))
    );
    assert_eq!(
        p256_with(json!({"use":"sig"})),
        (Reason::Allowed, None),
        "control"
    );
    let set = hand_built(|k| k.key_use = Some("enc".into()));
    assert_eq!(
        check(&es256_token(&good_claims()), &set),
        Err(JwsError::KeyNotFound)
    );
}

#[test]
fn key_ops_without_verify_is_not_used() {
    for ops in [
        json!(["sign"]),
        json!(["encrypt", "decrypt"]),
        json!([]),
        json!(["Verify"]),
    ] {
        assert_eq!(
            p256_with(json!({"key_ops": ops})),
            (Reason::KeyNotFound, Some(KeySkipReason::NotForSignature)),
            "{ops}"
        );
    }
    assert_eq!(
        p256_with(json!({"key_ops":["verify"]})),
        (Reason::Allowed, None),
        "control"
    );
    let set = hand_built(|k| k.key_ops = Some(vec!["sign".into()]));
    assert_eq!(
        check(&es256_token(&good_claims()), &set),
        Err(JwsError::KeyNotFound)
    );
}

#[test]
fn key_alg_mismatch_is_not_used() {
    // A P-256 key pinned to another algorithm is skipped at load...
    assert_eq!(
        p256_with(json!({"alg":"ES384"})),
        (Reason::KeyNotFound, Some(KeySkipReason::AlgMismatch))
    );
    assert_eq!(
        p256_with(json!({"alg":"HS256"})),
        (Reason::KeyNotFound, Some(KeySkipReason::AlgMismatch))
    );
    assert_eq!(
        p256_with(json!({"alg":"ES256"})),
        (Reason::Allowed, None),
        "control"
    );
    // ...and refused at use when built by hand.
    let set = hand_built(|k| k.alg = Some("ES384".into()));
    assert_eq!(
        check(&es256_token(&good_claims()), &set),
        Err(JwsError::KeyNotFound)
    );
    // An RSA key pinned to RS256 serves neither PS256 nor RS512.
    let doc = jwks_text(vec![rsa_jwk(
        &rsa_key().to_public_key(),
        json!({"kid":"rsa","alg":"RS256"}),
    )]);
    let cfg = config_with(&doc, json!({}), json!({}));
    assert_eq!(
        verdict(&cfg, &rs256_token(&good_claims())),
        Reason::Allowed,
        "control"
    );
    let ps = jws(r#"{"alg":"PS256","kid":"rsa"}"#, &good_claims(), |i| {
        ps256(rsa_key(), i)
    });
    assert_eq!(verdict(&cfg, &ps), Reason::KeyNotFound);
    // An HMAC key pinned to HS256 does not serve HS512 (even if long enough).
    let doc = jwks_text(vec![oct_jwk(&HMAC_SECRET, json!({"alg":"HS256"}))]);
    let cfg = config_with(&doc, json!({}), json!({}));
    let hs = jws(r#"{"alg":"HS512"}"#, &good_claims(), |i| {
        hs512(&HMAC_SECRET, i)
    });
    assert_eq!(verdict(&cfg, &hs), Reason::KeyNotFound);
}

#[test]
fn es256_token_vs_p384_key() {
    let only_p384 = jwks_text(vec![p384_jwk(&p384_key(), json!({}))]);
    let only_p256 = jwks_text(vec![p256_jwk(&p256_key(), json!({}))]);
    let (c384, c256) = (
        config_with(&only_p384, json!({}), json!({})),
        config_with(&only_p256, json!({}), json!({})),
    );
    // ES256 claimed, signed on P-256, or even signed with the P-384 key.
    let es256_p256 = jws(r#"{"alg":"ES256"}"#, &good_claims(), |i| {
        es256(&p256_key(), i)
    });
    let es256_p384 = jws(r#"{"alg":"ES256"}"#, &good_claims(), |i| {
        es384(&p384_key(), i)
    });
    assert_eq!(verdict(&c384, &es256_p256), Reason::KeyNotFound);
    assert_eq!(verdict(&c384, &es256_p384), Reason::KeyNotFound);
    // The other way round.
    let es384_p384 = jws(r#"{"alg":"ES384"}"#, &good_claims(), |i| {
        es384(&p384_key(), i)
    });
    assert_eq!(verdict(&c256, &es384_p384), Reason::KeyNotFound);
    assert_eq!(verdict(&c384, &es384_p384), Reason::Allowed, "control");
    // Ed25519 and P-256 signatures are both 64 bytes: neither passes for
    // the other.
    let ed = jws(r#"{"alg":"EdDSA"}"#, &good_claims(), |i| {
        eddsa(&ed_key(), i)
    });
    assert_eq!(verdict(default_config(), &ed), Reason::Allowed, "control");
    let es256_by_ed = jws(r#"{"alg":"ES256"}"#, &good_claims(), |i| {
        eddsa(&ed_key(), i)
    });
    let eddsa_by_p256 = jws(r#"{"alg":"EdDSA"}"#, &good_claims(), |i| {
        es256(&p256_key(), i)
    });
    assert_eq!(
        verdict(default_config(), &es256_by_ed),
        Reason::BadSignature
    );
    assert_eq!(
        verdict(default_config(), &eddsa_by_p256),
        Reason::BadSignature
    );
    // A JWK that names P-384 but carries P-256 coordinates is not a key.
    let lying = ec_jwk(
        "P-384",
        p256_key()
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes(),
        json!({}),
    );
    let set = parse_key_set_lenient(&jwks_text(vec![lying]), &local_opts()).unwrap();
    assert!(set.keys.is_empty());
    assert_eq!(set.skipped[0].reason, KeySkipReason::NotOnCurve);
}

// ===================================================== fuzz replays ===

/// A harness entry point: raw fuzz bytes in, panics on a finding.
type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 5] = [
    ("token", harness::token),
    ("jwks", harness::jwks),
    ("config", harness::config),
    ("extract", harness::extract),
    ("json", harness::json),
];

/// Input files of `fuzz/<dir>/<target>/` (dotfiles and *.md skipped).
fn inputs(dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&path) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Every crash input saved under `fuzz/regressions/<target>/` replays
/// without a panic (a panic or a failed harness oracle fails this test).
/// Empty directories pass.
#[test]
fn fuzz_regressions_replay() {
    for (target, run) in TARGETS {
        for (name, data) in inputs("regressions", target) {
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(
                outcome.is_ok(),
                "fuzz regression {name} panics (target {target})"
            );
        }
    }
}

/// The committed seed corpora replay cleanly, and the harness's fixed
/// inputs are what the seeds were made for (valid seeds still verify).
#[test]
fn fuzz_seed_corpora_replay() {
    assert_eq!(harness::token_keys().keys.len(), 6, "harness TOKEN_JWKS");
    let cfg = harness::extract_config().expect("harness EXTRACT_CONFIG parses");
    for (target, run) in TARGETS {
        let seeds = inputs("corpus-seed", target);
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for (_, data) in &seeds {
            run(data);
        }
    }
    let valid: Vec<_> = inputs("corpus-seed", "token")
        .into_iter()
        .filter(|(name, _)| name.contains("/valid-"))
        .collect();
    assert_eq!(valid.len(), 13, "one valid seed per algorithm");
    for (name, data) in valid {
        let t = String::from_utf8(data).unwrap();
        assert!(
            check(&t, harness::token_keys()).is_ok(),
            "{name} does not verify"
        );
    }
    // The bearer request seed passes the fixed config: the success path is
    // in the corpus.
    let (_, bearer) = inputs("corpus-seed", "extract")
        .into_iter()
        .find(|(name, _)| name.ends_with("/bearer"))
        .unwrap();
    let text = String::from_utf8(bearer).unwrap();
    let token = text
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let ctx = EvalContext {
        now: harness::NOW,
        already_fetched: vec![],
    };
    assert_eq!(
        evaluate(cfg, &bearer_request(token), &NoRemoteKeys, &ctx).reason(),
        Some(Reason::Allowed)
    );
}
