//! Writes the signed seed inputs under `fuzz/corpus-seed/` (tokens and
//! requests need real signatures, which a fuzzer would never find alone).
//!
//! Run from the `fuzz/` directory: `cargo run --example gen_seeds`. It first
//! checks that its private keys match the public ones the harness verifies
//! with, so seeds and targets cannot drift apart. Output is deterministic
//! except for the PS* tokens (random PSS salt).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jwt_authn_fuzz::harness::{self, EXTRACT_HMAC_SECRET, NOW, TOKEN_HMAC_SECRET};
use jwt_compact::alg::{Ed25519, Rsa};
use jwt_compact::{Algorithm, AlgorithmSignature};
use p256::ecdsa::signature::Signer as _;
use rsa::pkcs8::EncodePublicKey as _;
use serde_json::{json, Value};
use std::error::Error;
use std::fs;
use std::path::Path;

type Res<T> = Result<T, Box<dyn Error>>;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_key() -> Res<rsa::RsaPrivateKey> {
    let jwk: Value = serde_json::from_str(include_str!(
        "../../testdata/conformance/rfc7520/jwk/3_4.rsa_private_key.json"
    ))?;
    let int = |m: &str| -> Res<rsa::BigUint> {
        let s = jwk[m].as_str().ok_or("missing member")?;
        Ok(rsa::BigUint::from_bytes_be(&jwt_authn::b64::decode_strict(
            s,
        )?))
    };
    Ok(rsa::RsaPrivateKey::from_components(
        int("n")?,
        int("e")?,
        int("d")?,
        vec![int("p")?, int("q")?],
    )?)
}

fn p521_key() -> Res<p521::ecdsa::SigningKey> {
    let jwk: Value = serde_json::from_str(include_str!(
        "../../testdata/conformance/rfc7520/jwk/3_2.ec_private_key.json"
    ))?;
    let d = jwt_authn::b64::decode_strict(jwk["d"].as_str().ok_or("missing d")?)?;
    Ok(p521::ecdsa::SigningKey::from_slice(&d)?)
}

struct Keys {
    rsa: rsa::RsaPrivateKey,
    p256: p256::ecdsa::SigningKey,
    p384: p384::ecdsa::SigningKey,
    p521: p521::ecdsa::SigningKey,
    ed: ed25519_compact::KeyPair,
}

impl Keys {
    fn new() -> Res<Self> {
        Ok(Keys {
            rsa: rsa_key()?,
            p256: p256::ecdsa::SigningKey::from_slice(&[3u8; 32])?,
            p384: p384::ecdsa::SigningKey::from_slice(&[5u8; 48])?,
            p521: p521_key()?,
            ed: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9u8; 32])),
        })
    }

    /// The public JWKS these keys correspond to (kids as in the harness).
    fn public_jwks(&self) -> Value {
        use rsa::traits::PublicKeyParts as _;
        let ec = |kid: &str, crv: &str, sec1: &[u8]| {
            let coords = &sec1[1..];
            let (x, y) = coords.split_at(coords.len() / 2);
            json!({"kty":"EC","kid":kid,"crv":crv,"x":b64(x),"y":b64(y)})
        };
        json!({"keys":[
            {"kty":"RSA","kid":"rsa","n":b64(&self.rsa.n().to_bytes_be()),"e":b64(&self.rsa.e().to_bytes_be())},
            ec("p256", "P-256", self.p256.verifying_key().to_encoded_point(false).as_bytes()),
            ec("p384", "P-384", self.p384.verifying_key().to_encoded_point(false).as_bytes()),
            ec("p521", "P-521", p521::ecdsa::VerifyingKey::from(&self.p521).to_encoded_point(false).as_bytes()),
            {"kty":"OKP","kid":"ed","crv":"Ed25519","x":b64(self.ed.pk.as_ref())},
            {"kty":"oct","kid":"hmac","k":b64(&TOKEN_HMAC_SECRET)},
        ]})
    }

    fn sign(&self, alg: &str, input: &[u8]) -> Res<Vec<u8>> {
        Ok(match alg {
            "RS256" => Rsa::rs256().sign(&self.rsa, input).as_bytes().into_owned(),
            "RS384" => Rsa::rs384().sign(&self.rsa, input).as_bytes().into_owned(),
            "RS512" => Rsa::rs512().sign(&self.rsa, input).as_bytes().into_owned(),
            "PS256" => Rsa::ps256().sign(&self.rsa, input).as_bytes().into_owned(),
            "PS384" => Rsa::ps384().sign(&self.rsa, input).as_bytes().into_owned(),
            "PS512" => Rsa::ps512().sign(&self.rsa, input).as_bytes().into_owned(),
            "ES256" => {
                let s: p256::ecdsa::Signature = self.p256.sign(input);
                s.to_bytes().to_vec()
            }
            "ES384" => {
                let s: p384::ecdsa::Signature = self.p384.sign(input);
                s.to_bytes().to_vec()
            }
            "ES512" => {
                let s: p521::ecdsa::Signature = self.p521.sign(input);
                s.to_bytes().to_vec()
            }
            "EdDSA" => Ed25519.sign(&self.ed.sk, input).as_bytes().into_owned(),
            "HS256" | "HS384" | "HS512" => hmac_sign(alg, &TOKEN_HMAC_SECRET, input)?,
            other => return Err(format!("no signer for {other}").into()),
        })
    }
}

fn hmac_sign(alg: &str, secret: &[u8], input: &[u8]) -> Res<Vec<u8>> {
    macro_rules! mac {
        ($hash:ty) => {{
            let mut mac = Hmac::<$hash>::new_from_slice(secret)?;
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }};
    }
    Ok(match alg {
        "HS256" => mac!(sha2::Sha256),
        "HS384" => mac!(sha2::Sha384),
        "HS512" => mac!(sha2::Sha512),
        other => return Err(format!("not an hmac alg: {other}").into()),
    })
}

/// `header.payload.signature` from raw JSON texts (duplicates stay possible).
fn jws(header: &str, payload: &str, sign: impl FnOnce(&[u8]) -> Res<Vec<u8>>) -> Res<String> {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = sign(input.as_bytes())?;
    Ok(format!("{input}.{}", b64(&sig)))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Res<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn token_seeds(keys: &Keys, out: &Path) -> Res<()> {
    let claims = format!(
        r#"{{"iss":"https://idp.fuzz","sub":"alice","aud":["api","x"],"iat":{},"nbf":{},"exp":{},"scope":"read write","realm":{{"role":"admin"}}}}"#,
        NOW - 10,
        NOW - 10,
        NOW + 3600
    );
    let kid_of = |alg: &str| match &alg[..2] {
        "RS" | "PS" => "rsa",
        "ES" => match alg {
            "ES256" => "p256",
            "ES384" => "p384",
            _ => "p521",
        },
        "Ed" => "ed",
        _ => "hmac",
    };
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
        "HS256", "HS384", "HS512",
    ] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, kid_of(alg));
        let t = jws(&header, &claims, |i| keys.sign(alg, i))?;
        write(out, &format!("valid-{}", alg.to_lowercase()), t.as_bytes())?;
    }
    let es = |header: &str, payload: &str| jws(header, payload, |i| keys.sign("ES256", i));
    let hs = |header: &str, payload: &str| jws(header, payload, |i| keys.sign("HS256", i));
    let seeds = [
        (
            "no-kid-hs256",
            hs(r#"{"alg":"HS256"}"#, r#"{"exp":1.5e9,"aud":"api"}"#)?,
        ),
        (
            "float-claims",
            es(
                r#"{"alg":"ES256"}"#,
                r#"{"exp":1700003600.9,"nbf":-1,"iat":"x"}"#,
            )?,
        ),
        ("dup-header", es(r#"{"alg":"ES256","alg":"none"}"#, "{}")?),
        (
            "dup-payload",
            es(r#"{"alg":"ES256"}"#, r#"{"iss":"a","iss":"b"}"#)?,
        ),
        (
            "crit",
            es(r#"{"alg":"ES256","crit":["b64"],"b64":false}"#, "{}")?,
        ),
        ("nested", es(r#"{"alg":"ES256","cty":"JWT"}"#, "{}")?),
        (
            "embedded-jwk",
            es(
                r#"{"alg":"ES256","jwk":{"kty":"EC"},"jku":"http://127.0.0.1/","x5c":["AA"]}"#,
                "{}",
            )?,
        ),
        (
            "deep",
            es(
                r#"{"alg":"ES256"}"#,
                &format!(r#"{{"a":{}{}}}"#, "[".repeat(40), "]".repeat(40)),
            )?,
        ),
        (
            "none",
            format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}")),
        ),
        (
            "jwe",
            "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.AAAA.AAAA.AAAA.AAAA".to_string(),
        ),
        (
            "padded",
            format!("{}=.e30.AAAA", b64(br#"{"alg":"HS256"}"#)),
        ),
    ];
    for (name, t) in seeds {
        write(out, name, t.as_bytes())?;
    }
    Ok(())
}

fn jwks_seeds(keys: &Keys, out: &Path) -> Res<()> {
    let set = keys.public_jwks();
    write(
        out,
        "fixed-jwks.json",
        serde_json::to_string_pretty(&set)?.as_bytes(),
    )?;
    if let Some(list) = set["keys"].as_array() {
        for k in list {
            let kid = k["kid"].as_str().unwrap_or("key");
            write(out, &format!("single-{kid}.json"), k.to_string().as_bytes())?;
        }
    }
    let der = keys.rsa.to_public_key().to_public_key_der()?;
    write(out, "rsa-spki.der", der.as_bytes())?;
    let body: Vec<String> = STANDARD
        .encode(der.as_bytes())
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        body.join("\n")
    );
    write(out, "rsa.pem", pem.as_bytes())?;
    let mixed = json!({"keys":[
        {"kty":"RSA","n":"AQAB","e":"AQAB"},
        {"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","use":"enc"},
        {"kty":"oct","k":"c2hvcnQ","alg":"HS512"},
        {"kty":"OKP","crv":"X25519","x":"AAAA"},
        {"kty":"EC","crv":"P-256","x":set["keys"][1]["x"],"y":set["keys"][1]["y"],"key_ops":["verify"],"alg":"ES256","kid":"ok"},
        "not an object"
    ]});
    write(out, "mixed.json", mixed.to_string().as_bytes())?;
    write(
        out,
        "rfc7520-ec.json",
        include_bytes!("../../testdata/conformance/rfc7520/jwk/3_1.ec_public_key.json"),
    )?;
    write(
        out,
        "rfc7520-oct.json",
        include_bytes!(
            "../../testdata/conformance/rfc7520/jwk/3_5.symmetric_key_mac_computation.json"
        ),
    )?;
    Ok(())
}

fn extract_seeds(out: &Path) -> Res<()> {
    let good = |iss: &str, sub: &str, extra: &str| {
        let payload = format!(
            r#"{{"iss":"{iss}","sub":"{sub}","aud":"api","iat":{},"exp":{}{extra}}}"#,
            NOW - 10,
            NOW + 600
        );
        jws(r#"{"alg":"HS256","kid":"k1"}"#, &payload, |i| {
            hmac_sign("HS256", EXTRACT_HMAC_SECRET, i)
        })
    };
    let local = good(
        "https://idp.fuzz",
        "alice",
        r#","scope":["admin","x"],"realm":{"role":"root"}"#,
    )?;
    let other = good("https://other.fuzz", "svc-billing", "")?;
    let seeds = [
        (
            "bearer",
            format!(
                "/api/v1\nauthorization: Bearer {local}\nx-auth-user: spoofed\nx-user: spoofed"
            ),
        ),
        ("param", format!("/api?access_token={local}&x=1#frag")),
        ("cookie", format!("/any\ncookie: a=1; session=\"{other}\"")),
        (
            "any-two",
            format!("/any\nx-jwt: {other}\nauthorization: Bearer {local}"),
        ),
        (
            "all",
            format!("/all/abc\nauthorization: Bearer {local}\nx-jwt: {other}"),
        ),
        (
            "tenant",
            format!("/tenant/x?v=1\nx-tenant: a\nx-token: junk Token={local}"),
        ),
        (
            "admin",
            format!("/admin\n:method: POST\nauthorization: Bearer {local}"),
        ),
        (
            "remote",
            "/remote\nx-remote: Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6Im5ldyJ9.e30.AAAA".to_string(),
        ),
        (
            "cors",
            "/x\n:method: OPTIONS\norigin: http://127.0.0.1\naccess-control-request-method: GET"
                .to_string(),
        ),
        ("failed", "/failed\nauthorization: Bearer a.b.c".to_string()),
        ("missing", "/API/upper".to_string()),
    ];
    for (name, text) in seeds {
        write(out, name, text.as_bytes())?;
    }
    Ok(())
}

fn config_seeds(out: &Path) -> Res<()> {
    write(
        out,
        "extract-config.json",
        harness::EXTRACT_CONFIG.as_bytes(),
    )?;
    write(
        out,
        "cli-plugin.json",
        include_bytes!("../../testdata/cli/plugin.json"),
    )?;
    write(
        out,
        "cli-invalid.json",
        include_bytes!("../../testdata/cli/invalid.json"),
    )?;
    let discovery = json!({
        "providers": {"oidc": {"issuer": "https://127.0.0.1:8443/realm", "extensions": {
            "oidc_discovery": {"cluster": "idp", "timeout": "2s"},
            "stale_if_error": "3600s", "min_rsa_bits": 3072,
            "claim_to_filter_state": [{"name": "user", "claim_name": "sub"}]}}},
        "rules": [{"match": {"prefix": "/", "headers": [{"name": "x-a", "present_match": true, "invert_match": true}]},
                   "requires": {"provider_name": "oidc"}}],
        "stat_prefix": "fuzz"
    });
    write(out, "oidc-discovery.json", discovery.to_string().as_bytes())?;
    let remote = json!({
        "providers": {"r": {"remote_jwks": {"http_uri": {"uri": "http://127.0.0.1:8081/jwks", "cluster": "c", "timeout": "0.5s"},
            "cache_duration": "300s", "async_fetch": {"failed_refetch_duration": "2s"},
            "retry_policy": {"num_retries": 3, "retry_back_off": {"base_interval": "0.1s", "max_interval": "1s"}}},
            "subjects": {"safe_regex": {"regex": "^user-[0-9]+$"}}, "max_lifetime": "3600s"}},
        "rules": [{"match": {"safe_regex": {"regex": "/(a|b)+"}, "query_parameters": [{"name": "q", "string_match": {"suffix": "x", "ignore_case": true}}]},
                   "requires": {"requires_any": {"requirements": [{"provider_name": "r"}, {"allow_missing_or_failed": {}}]}}}]
    });
    write(out, "remote.json", remote.to_string().as_bytes())?;
    write(out, "empty-object.json", b"{}")?;
    Ok(())
}

fn json_seeds(out: &Path) -> Res<()> {
    let docs: [(&str, &[u8]); 7] = [
        (
            "object",
            br#"{"a":[1,-2,3.5e10,true,null,"x\u00e9\n"],"b":{"c":{}}}"#,
        ),
        ("dup", br#"{"a":1,"\u0061":2}"#),
        (
            "numbers",
            b"[0,-0,1e308,-1e-308,18446744073709551615,18446744073709551616,0.1]",
        ),
        (
            "deep",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ),
        (
            "strings",
            br#"["\ud83d\ude00","\u0000","\"\\\/\b\f\n\r\t"]"#,
        ),
        ("bad", b"{\"a\":1,}"),
        ("scalar", b" \"s\" "),
    ];
    for (name, d) in docs {
        write(out, name, d)?;
    }
    Ok(())
}

fn main() -> Res<()> {
    let keys = Keys::new()?;
    let expected = keys.public_jwks();
    let actual: Value = serde_json::from_str(harness::TOKEN_JWKS)?;
    if expected != actual {
        println!("{}", serde_json::to_string_pretty(&expected)?);
        return Err("harness::TOKEN_JWKS does not match the seed keys (expected above)".into());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus-seed");
    token_seeds(&keys, &root.join("token"))?;
    jwks_seeds(&keys, &root.join("jwks"))?;
    extract_seeds(&root.join("extract"))?;
    config_seeds(&root.join("config"))?;
    json_seeds(&root.join("json"))?;
    println!("seeds written under {}", root.display());
    Ok(())
}
