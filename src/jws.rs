//! JWS compact serialization (RFC 7515 section 7.1): strict parsing into an
//! untrusted token, key selection, and signature verification.
//!
//! Security invariants kept here:
//! - Size is checked before any decoding; every segment must be canonical
//!   base64url; the header must be strict JSON (no duplicate names).
//! - The token's `alg` only *selects among* algorithms the key allows
//!   ([`crate::jwk::Jwk::usable_for`]); `none` has no [`Alg`] at all.
//! - Keys are never taken from the token: `jku`, `x5u`, `x5c` and `jwk`
//!   header members are ignored.
//! - `crit` is refused: we implement no JWS extension, and RFC 7515 section
//!   4.1.11 requires rejecting a token whose critical extensions we do not
//!   understand. (Envoy's jwt_authn ignores `crit`; we are stricter.)
//! - The payload is handed out as trusted only by [`UntrustedJws::verify`],
//!   after a signature checked out; [`UntrustedJws::untrusted_payload`] is
//!   for the claim checks jwt_authn runs before the signature (they can only
//!   refuse a token, never admit one).

use crate::alg::Alg;
use crate::b64;
use crate::ecdsa_ext::{Es384, Es512};
use crate::json::{self, Field, JsonError};
use crate::jwk::{KeyMaterial, KeySet, Material};
use crate::rsa_verify::HashAlg;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::OnceLock;

/// Longest `alg` value copied into [`JwsError::AlgNotAllowed`].
const MAX_REPORTED_ALG: usize = 32;

/// The protected header members that matter for verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoseHeader {
    /// The algorithm the token claims (already known to be supported).
    pub alg: Alg,
    /// Key id used to pick the key.
    pub kid: Option<String>,
    /// Media type of the whole token (informational).
    pub typ: Option<String>,
    /// Content type of the payload; "JWT" (nested) is refused.
    pub cty: Option<String>,
}

/// Why a token failed at the JWS stage; `code()` is the metric/log label.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwsError {
    /// Longer than the configured maximum (checked before decoding).
    TooLarge,
    /// Not a well-formed JWS compact token (what was wrong, never the input).
    Malformed(&'static str),
    /// `alg` missing, not a string, `none`, or unknown (name, max 32 chars).
    AlgNotAllowed(String),
    /// The header has a `crit` member; we support no extensions.
    CritUnsupported,
    /// `cty: JWT`: nested tokens are not supported.
    NestedJwt,
    /// No key passed the kid/alg/kty/use/key_ops selection.
    KeyNotFound,
    /// Candidate keys existed but none verified the signature.
    BadSignature,
}

impl JwsError {
    /// Stable label for metrics and logs (crit and nested count as malformed).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed(_) | Self::CritUnsupported | Self::NestedJwt => "malformed",
            Self::AlgNotAllowed(_) => "alg_not_allowed",
            Self::KeyNotFound => "key_not_found",
            Self::BadSignature => "bad_signature",
        }
    }
}

impl fmt::Display for JwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("token too large"),
            Self::Malformed(what) => write!(f, "malformed token: {what}"),
            Self::AlgNotAllowed(name) => {
                write!(f, "algorithm not allowed: \"{}\"", name.escape_debug())
            }
            Self::CritUnsupported => f.write_str("unsupported critical header"),
            Self::NestedJwt => f.write_str("nested jwt not supported"),
            Self::KeyNotFound => f.write_str("no matching key"),
            Self::BadSignature => f.write_str("signature verification failed"),
        }
    }
}

impl std::error::Error for JwsError {}

/// A parsed but NOT verified token. It exposes only what is needed to pick
/// a key; the payload comes out of [`UntrustedJws::verify`] alone.
#[derive(Clone, Debug)]
pub struct UntrustedJws {
    header: JoseHeader,
    /// The protected header JSON; as a map only when asked for.
    header_bytes: Vec<u8>,
    header_json: OnceLock<Map<String, Value>>,
    /// `header_b64 || "." || payload_b64`, the bytes the signature covers.
    signing_input: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl UntrustedJws {
    /// Parses a compact JWS. `max_len` is checked BEFORE any decoding, and
    /// bounds the decoded header and payload too. The header must be a strict
    /// JSON object with a supported `alg`; `kid`, `typ`, `cty` must be strings
    /// when present; `jku`, `x5u`, `x5c`, `jwk` are ignored.
    pub fn parse(token: &str, max_len: usize) -> Result<UntrustedJws, JwsError> {
        if token.len() > max_len {
            return Err(JwsError::TooLarge);
        }
        let Some((header_b64, rest)) = token.split_once('.') else {
            return Err(Self::segments_error(token));
        };
        let Some((payload_b64, signature_b64)) = rest.split_once('.') else {
            return Err(Self::segments_error(token));
        };
        // A third dot would make more than three segments. It is looked for
        // only when parsing fails (so the error is the same as if it were
        // looked for first): a signature that decodes has no dot.
        Self::parse_segments(token, header_b64, payload_b64, signature_b64).map_err(|e| {
            if signature_b64.contains('.') {
                Self::segments_error(token)
            } else {
                e
            }
        })
    }

    /// Why a token without exactly three segments is refused (five is JWE).
    fn segments_error(token: &str) -> JwsError {
        // At most 6 pieces are looked at, whatever the number of dots.
        let pieces = token.splitn(6, '.').count();
        JwsError::Malformed(if pieces == 5 {
            "jwe not supported"
        } else {
            "expected three segments"
        })
    }

    /// [`UntrustedJws::parse`] once the token is split at its first two dots.
    fn parse_segments(
        token: &str,
        header_b64: &str,
        payload_b64: &str,
        signature_b64: &str,
    ) -> Result<UntrustedJws, JwsError> {
        if header_b64.is_empty() {
            return Err(JwsError::Malformed("empty segment"));
        }
        let header_bytes = b64::decode_strict(header_b64)
            .map_err(|_| JwsError::Malformed("bad base64 in header"))?;
        // The members key selection needs, without building the map; an
        // error is reported as the full parse words it.
        let header = match json::scan_object(&header_bytes, json::DEFAULT_MAX_DEPTH, HEADER_MEMBERS)
        {
            Ok(fields) => header_from_fields(fields)?,
            Err(_) => match json::parse_object(&header_bytes, json::DEFAULT_MAX_DEPTH) {
                Ok(map) => parse_header(&map)?,
                Err(e) => return Err(JwsError::Malformed(header_json_error(&e))),
            },
        };
        // Checked after the header so that `alg: none` tokens (empty
        // signature) are reported as such.
        if payload_b64.is_empty() || signature_b64.is_empty() {
            return Err(JwsError::Malformed("empty segment"));
        }
        let payload = b64::decode_strict(payload_b64)
            .map_err(|_| JwsError::Malformed("bad base64 in payload"))?;
        let signature = b64::decode_strict(signature_b64)
            .map_err(|_| JwsError::Malformed("bad base64 in signature"))?;
        let signing_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input = token
            .as_bytes()
            .get(..signing_len)
            .unwrap_or_default()
            .to_vec();
        Ok(UntrustedJws {
            header,
            header_bytes,
            header_json: OnceLock::new(),
            signing_input,
            payload,
            signature,
        })
    }

    /// The decoded payload before any signature check, for claim checks that
    /// only refuse (jwt_authn checks issuer, time and audience first, so junk
    /// never costs a signature or a key refetch). Never trust it to admit.
    pub fn untrusted_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The header fields used to select a key.
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    /// The whole protected header (e.g. for `header_in_metadata`). It is
    /// covered by the signature, so trust it only after `verify` succeeded.
    pub fn header_json(&self) -> &Map<String, Value> {
        // It parsed once already (scanned), so this cannot fail.
        self.header_json.get_or_init(|| {
            json::parse_object(&self.header_bytes, json::DEFAULT_MAX_DEPTH).unwrap_or_default()
        })
    }

    /// Key selection like jwt_verify_lib: a key is a candidate when (token
    /// has no kid, or key has no kid, or the kids are equal) AND
    /// `key.usable_for(alg)`. No candidate -> `KeyNotFound`; candidates but
    /// none verifies -> `BadSignature`. On success returns the payload bytes,
    /// only now trusted.
    pub fn verify<'a>(&'a self, keys: &KeySet) -> Result<&'a [u8], JwsError> {
        self.verify_with(keys, &BuiltIn)
    }

    /// Like [`UntrustedJws::verify`], with signature checks offered first to
    /// `backend` (the host's crypto in the filter); same key selection.
    pub fn verify_with<'a>(
        &'a self,
        keys: &KeySet,
        backend: &dyn SignatureBackend,
    ) -> Result<&'a [u8], JwsError> {
        let alg = self.header.alg;
        let mut candidates = 0usize;
        for key in &keys.keys {
            if let (Some(token_kid), Some(key_kid)) = (&self.header.kid, &key.kid) {
                if token_kid != key_kid {
                    continue;
                }
            }
            if !key.usable_for(alg) {
                continue;
            }
            candidates += 1;
            let ok = match backend.verify(alg, &key.material, &self.signing_input, &self.signature)
            {
                Some(verdict) => verdict,
                None => verify_signature(alg, &key.material, &self.signing_input, &self.signature),
            };
            if ok {
                return Ok(&self.payload);
            }
        }
        Err(if candidates == 0 {
            JwsError::KeyNotFound
        } else {
            JwsError::BadSignature
        })
    }
}

/// Somewhere else to check a signature (the host's BoringSSL in the filter,
/// far faster than Rust crypto inside V8). `None` = not handled here: the
/// built-in verifier decides. Key selection never moves out of this module.
pub trait SignatureBackend {
    /// `Some(verdict)` when handled.
    fn verify(
        &self,
        alg: Alg,
        key: &KeyMaterial,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Option<bool>;
}

/// The built-in verifier only.
struct BuiltIn;

impl SignatureBackend for BuiltIn {
    fn verify(&self, _: Alg, _: &KeyMaterial, _: &[u8], _: &[u8]) -> Option<bool> {
        None
    }
}

fn header_json_error(err: &JsonError) -> &'static str {
    match err {
        JsonError::DuplicateKey(_) => "duplicate member in header",
        JsonError::TooDeep => "header nested too deeply",
        JsonError::NotAnObject => "header is not a json object",
        _ => "header is not valid json",
    }
}

fn optional_string(
    header: &Map<String, Value>,
    name: &str,
    err: &'static str,
) -> Result<Option<String>, JwsError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwsError::Malformed(err)),
    }
}

/// The header members [`header_from_fields`] judges, in its order.
const HEADER_MEMBERS: [&str; 5] = ["alg", "crit", "kid", "typ", "cty"];

/// [`parse_header`] on scanned members (same checks, same order).
fn header_from_fields(fields: [Option<Field<'_>>; 5]) -> Result<JoseHeader, JwsError> {
    let [alg, crit, kid, typ, cty] = fields;
    let alg = match alg {
        Some(Field::Str(name)) => Alg::from_name(&name).ok_or_else(|| {
            JwsError::AlgNotAllowed(name.chars().take(MAX_REPORTED_ALG).collect())
        })?,
        _ => return Err(JwsError::AlgNotAllowed(String::new())),
    };
    if crit.is_some() {
        return Err(JwsError::CritUnsupported);
    }
    let string = |f: Option<Field<'_>>, err: &'static str| match f {
        None => Ok(None),
        Some(Field::Str(s)) => Ok(Some(s.into_owned())),
        Some(_) => Err(JwsError::Malformed(err)),
    };
    let kid = string(kid, "kid is not a string")?;
    let typ = string(typ, "typ is not a string")?;
    let cty = string(cty, "cty is not a string")?;
    if cty
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
    {
        return Err(JwsError::NestedJwt);
    }
    Ok(JoseHeader { alg, kid, typ, cty })
}

fn parse_header(header: &Map<String, Value>) -> Result<JoseHeader, JwsError> {
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or_else(|| {
            JwsError::AlgNotAllowed(name.chars().take(MAX_REPORTED_ALG).collect())
        })?,
        // Missing or not a string: there is no algorithm we could allow.
        _ => return Err(JwsError::AlgNotAllowed(String::new())),
    };
    if header.contains_key("crit") {
        return Err(JwsError::CritUnsupported);
    }
    let kid = optional_string(header, "kid", "kid is not a string")?;
    let typ = optional_string(header, "typ", "typ is not a string")?;
    let cty = optional_string(header, "cty", "cty is not a string")?;
    if cty
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
    {
        return Err(JwsError::NestedJwt);
    }
    Ok(JoseHeader { alg, kid, typ, cty })
}

/// Raw signature check of `signing_input` for one key and algorithm; false
/// when the key does not fit the algorithm. ECDSA signatures must be raw
/// `r || s` of exactly twice the field size (DER is rejected); RSA signatures
/// must be exactly the modulus length.
pub fn verify_signature(
    alg: Alg,
    key: &KeyMaterial,
    signing_input: &[u8],
    signature: &[u8],
) -> bool {
    if !key.fits(alg) {
        return false;
    }
    match (&key.inner, alg) {
        // The prepared key (`rsa_verify`) insists on exactly k octets, no
        // stripped zeros (RFC 7518 sections 3.3 and 3.5).
        (Material::Rsa { verifier, .. }, _) => match alg {
            Alg::Rs256 => verifier.verify_pkcs1v15(HashAlg::Sha256, signing_input, signature),
            Alg::Rs384 => verifier.verify_pkcs1v15(HashAlg::Sha384, signing_input, signature),
            Alg::Rs512 => verifier.verify_pkcs1v15(HashAlg::Sha512, signing_input, signature),
            Alg::Ps256 => verifier.verify_pss(HashAlg::Sha256, signing_input, signature),
            Alg::Ps384 => verifier.verify_pss(HashAlg::Sha384, signing_input, signature),
            Alg::Ps512 => verifier.verify_pss(HashAlg::Sha512, signing_input, signature),
            _ => false,
        },
        (Material::P256(k), Alg::Es256) => run(&Es256, k, signing_input, signature),
        (Material::P384(k), Alg::Es384) => run(&Es384, k, signing_input, signature),
        (Material::P521(k), Alg::Es512) => run(&Es512, k, signing_input, signature),
        (Material::Ed25519(k), Alg::EdDsa) => run(&Ed25519, k, signing_input, signature),
        (Material::Oct(secret), Alg::Hs256) => run(
            &Hs256,
            &Hs256Key::new(&secret[..]),
            signing_input,
            signature,
        ),
        (Material::Oct(secret), Alg::Hs384) => run(
            &Hs384,
            &Hs384Key::new(&secret[..]),
            signing_input,
            signature,
        ),
        (Material::Oct(secret), Alg::Hs512) => run(
            &Hs512,
            &Hs512Key::new(&secret[..]),
            signing_input,
            signature,
        ),
        _ => false,
    }
}

/// Runs one jwt-compact algorithm. The length is checked first because some
/// `try_from_slice` implementations assume it (and would panic otherwise).
fn run<A: Algorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if let Some(len) = A::Signature::LENGTH {
        if signature.len() != len.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(sig) => alg.verify_signature(&sig, key, message),
        Err(_) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
mod tests {
    #[test]
    fn scanned_header_is_judged_like_the_parsed_one() {
        let docs = [
            r#"{"alg":"RS256","kid":"k","typ":"JWT"}"#,
            r#"{"alg":"ES256","cty":"jwt"}"#,
            r#"{"alg":"ES256","cty":"text"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS999999999999999999999999999999999999999"}"#,
            r#"{"alg":1}"#,
            r#"{"kid":"k"}"#,
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"{"alg":"RS256","crit":null}"#,
            r#"{"alg":"RS256","kid":1}"#,
            r#"{"alg":"RS256","typ":{}}"#,
            r#"{"alg":"RS256","cty":[]}"#,
            r#"{"\u0061lg":"RS256","x":{"y":[1,2]}}"#,
            r#"{"alg":"RS256","jwk":{"kty":"RSA"},"x5c":["a"]}"#,
        ];
        for d in docs {
            let fields =
                json::scan_object(d.as_bytes(), json::DEFAULT_MAX_DEPTH, HEADER_MEMBERS).unwrap();
            let map = json::parse_object(d.as_bytes(), json::DEFAULT_MAX_DEPTH).unwrap();
            assert_eq!(header_from_fields(fields), parse_header(&map), "{d}");
        }
    }

    use super::*;
    use crate::jwk::{parse_key_set, JwksOptions};
    use jwt_compact::alg::Rsa;
    use rsa::RsaPrivateKey;
    use serde_json::json;

    const MAX: usize = 16 * 1024;

    fn rfc7520_rsa() -> RsaPrivateKey {
        let jwk: Value = serde_json::from_str(include_str!(
            "../testdata/conformance/rfc7520/jwk/3_4.rsa_private_key.json"
        ))
        .unwrap();
        let n = |m: &str| {
            rsa::BigUint::from_bytes_be(&b64::decode_strict(jwk[m].as_str().unwrap()).unwrap())
        };
        RsaPrivateKey::from_components(n("n"), n("e"), n("d"), vec![n("p"), n("q")]).unwrap()
    }

    fn p256_sk() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap()
    }
    fn p384_sk() -> p384::ecdsa::SigningKey {
        p384::ecdsa::SigningKey::from_slice(&[5u8; 48]).unwrap()
    }
    fn p521_sk() -> p521::ecdsa::SigningKey {
        let mut d = [0u8; 66];
        d[1..].fill(6);
        p521::ecdsa::SigningKey::from_slice(&d).unwrap()
    }
    fn ed_kp() -> ed25519_compact::KeyPair {
        ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9u8; 32]))
    }
    const HMAC: [u8; 64] = [0x42; 64];

    /// Public JWK JSON for each signing key (through `to_public_jwk`).
    fn public_jwk(material: Material, extra: Value) -> Value {
        let mut m = KeyMaterial::new(material).to_public_jwk().unwrap();
        for (k, v) in extra.as_object().unwrap() {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }

    fn rsa_jwk(extra: Value) -> Value {
        let pk = rfc7520_rsa().to_public_key();
        public_jwk(Material::rsa(pk).unwrap(), extra)
    }

    fn key_set(keys: Vec<Value>, allow_hmac: bool) -> KeySet {
        let opts = JwksOptions {
            allow_hmac,
            ..JwksOptions::default()
        };
        parse_key_set(&json!({ "keys": keys }).to_string(), &opts).unwrap()
    }

    /// All test keys, one per algorithm family.
    fn all_keys() -> KeySet {
        key_set(
            vec![
                rsa_jwk(json!({"kid":"rsa"})),
                public_jwk(
                    Material::P256(*p256_sk().verifying_key()),
                    json!({"kid":"p256"}),
                ),
                public_jwk(
                    Material::P384(*p384_sk().verifying_key()),
                    json!({"kid":"p384"}),
                ),
                public_jwk(
                    Material::P521(p521::ecdsa::VerifyingKey::from(&p521_sk())),
                    json!({"kid":"p521"}),
                ),
                public_jwk(Material::Ed25519(ed_kp().pk), json!({"kid":"ed"})),
                json!({"kty":"oct","k":b64::encode(&HMAC),"kid":"hmac"}),
            ],
            true,
        )
    }

    fn sign(alg: Alg, input: &[u8]) -> Vec<u8> {
        let rsa = || rfc7520_rsa();
        match alg {
            Alg::Rs256 => Rsa::rs256().sign(&rsa(), input).as_bytes().into_owned(),
            Alg::Rs384 => Rsa::rs384().sign(&rsa(), input).as_bytes().into_owned(),
            Alg::Rs512 => Rsa::rs512().sign(&rsa(), input).as_bytes().into_owned(),
            Alg::Ps256 => Rsa::ps256().sign(&rsa(), input).as_bytes().into_owned(),
            Alg::Ps384 => Rsa::ps384().sign(&rsa(), input).as_bytes().into_owned(),
            Alg::Ps512 => Rsa::ps512().sign(&rsa(), input).as_bytes().into_owned(),
            Alg::Es256 => Es256.sign(&p256_sk(), input).as_bytes().into_owned(),
            Alg::Es384 => Es384.sign(&p384_sk(), input).as_bytes().into_owned(),
            Alg::Es512 => Es512.sign(&p521_sk(), input).as_bytes().into_owned(),
            Alg::EdDsa => Ed25519.sign(&ed_kp().sk, input).as_bytes().into_owned(),
            Alg::Hs256 => Hs256
                .sign(&Hs256Key::new(HMAC), input)
                .as_bytes()
                .into_owned(),
            Alg::Hs384 => Hs384
                .sign(&Hs384Key::new(HMAC), input)
                .as_bytes()
                .into_owned(),
            Alg::Hs512 => Hs512
                .sign(&Hs512Key::new(HMAC), input)
                .as_bytes()
                .into_owned(),
        }
    }

    fn token_with(header: &Value, payload: &[u8], sig: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(payload)
        );
        let s = sig(input.as_bytes());
        format!("{input}.{}", b64::encode(&s))
    }

    fn token(alg: Alg, kid: Option<&str>, payload: &[u8]) -> String {
        let mut h = json!({"alg": alg.name(), "typ": "JWT"});
        if let Some(kid) = kid {
            h["kid"] = json!(kid);
        }
        token_with(&h, payload, |i| sign(alg, i))
    }

    fn check(token: &str, keys: &KeySet) -> Result<Vec<u8>, JwsError> {
        UntrustedJws::parse(token, MAX)?
            .verify(keys)
            .map(<[u8]>::to_vec)
    }

    fn tamper_last_segment(token: &str) -> String {
        // Flip bits of the first signature byte, keeping base64 canonical.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut bytes = b64::decode_strict(sig).unwrap();
        bytes[0] ^= 0x01;
        format!("{input}.{}", b64::encode(&bytes))
    }

    #[test]
    fn every_alg_verifies_and_rejects_tampering() {
        let keys = all_keys();
        for alg in Alg::ALL {
            let t = token(alg, None, br#"{"sub":"x"}"#);
            assert_eq!(check(&t, &keys).unwrap(), br#"{"sub":"x"}"#, "{alg}");
            assert_eq!(
                check(&tamper_last_segment(&t), &keys),
                Err(JwsError::BadSignature),
                "{alg}"
            );
            // Payload swapped under the same signature.
            let (h, rest) = t.split_once('.').unwrap();
            let (_, s) = rest.split_once('.').unwrap();
            let swapped = format!("{h}.{}.{s}", b64::encode(br#"{"sub":"y"}"#));
            assert_eq!(check(&swapped, &keys), Err(JwsError::BadSignature), "{alg}");
            // With the right kid too.
            let kid = match alg {
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                    "rsa"
                }
                Alg::Es256 => "p256",
                Alg::Es384 => "p384",
                Alg::Es512 => "p521",
                Alg::EdDsa => "ed",
                _ => "hmac",
            };
            assert!(check(&token(alg, Some(kid), b"{}"), &keys).is_ok(), "{alg}");
            assert_eq!(
                check(&token(alg, Some("other"), b"{}"), &keys),
                Err(JwsError::KeyNotFound),
                "{alg}"
            );
        }
    }

    #[test]
    fn header_fields_are_exposed() {
        let h = json!({"alg":"ES256","kid":"k","typ":"JWT","cty":"json","x":1});
        let t = token_with(&h, b"{}", |i| sign(Alg::Es256, i));
        let u = UntrustedJws::parse(&t, MAX).unwrap();
        assert_eq!(
            u.header(),
            &JoseHeader {
                alg: Alg::Es256,
                kid: Some("k".into()),
                typ: Some("JWT".into()),
                cty: Some("json".into())
            }
        );
        assert_eq!(u.header_json()["x"], json!(1));
    }

    #[test]
    fn ed25519_alg_name_alias_is_accepted() {
        let h = json!({"alg":"Ed25519"});
        let t = token_with(&h, b"{}", |i| sign(Alg::EdDsa, i));
        assert!(check(&t, &all_keys()).is_ok());
    }

    #[test]
    fn alg_confusion_hmac_with_public_key_bytes_fails() {
        use rsa::pkcs8::EncodePublicKey as _;
        let rsa_pub = rfc7520_rsa().to_public_key();
        let rsa_jwk_value = rsa_jwk(json!({}));
        let spki = rsa_pub.to_public_key_der().unwrap();
        let pem = crate::jwk::tests_support::pem_wrap("PUBLIC KEY", spki.as_bytes());
        let ec_vk = *p256_sk().verifying_key();
        let ec_jwk_value = public_jwk(Material::P256(ec_vk), json!({}));
        let ec_der = ec_vk.to_encoded_point(false).as_bytes().to_vec();

        let secrets: Vec<Vec<u8>> = vec![
            pem.clone().into_bytes(),
            spki.as_bytes().to_vec(),
            rsa_jwk_value.to_string().into_bytes(),
            serde_json::to_vec(&json!({"keys":[rsa_jwk_value.clone()]})).unwrap(),
            ec_jwk_value.to_string().into_bytes(),
            ec_der,
        ];
        for allow_hmac in [false, true] {
            let rsa_set = key_set(vec![rsa_jwk_value.clone()], allow_hmac);
            let ec_set = key_set(vec![ec_jwk_value.clone()], allow_hmac);
            let pem_set = parse_key_set(
                &pem,
                &JwksOptions {
                    allow_hmac,
                    ..JwksOptions::default()
                },
            )
            .unwrap();
            for secret in &secrets {
                let t = token_with(&json!({"alg":"HS256"}), b"{}", |i| {
                    Hs256
                        .sign(&Hs256Key::new(secret), i)
                        .as_bytes()
                        .into_owned()
                });
                for set in [&rsa_set, &ec_set, &pem_set] {
                    assert_eq!(check(&t, set), Err(JwsError::KeyNotFound));
                    for key in &set.keys {
                        let u = UntrustedJws::parse(&t, MAX).unwrap();
                        assert!(!verify_signature(
                            Alg::Hs256,
                            &key.material,
                            &u.signing_input,
                            &u.signature
                        ));
                    }
                }
            }
        }
    }

    #[test]
    fn none_is_never_allowed() {
        let keys = all_keys();
        for name in ["none", "None", "NONE", "nOnE"] {
            let t = format!(
                "{}.{}.",
                b64::encode(json!({"alg": name}).to_string().as_bytes()),
                b64::encode(b"{}")
            );
            assert_eq!(check(&t, &keys), Err(JwsError::AlgNotAllowed(name.into())));
            let with_sig = format!("{t}AAAA");
            assert_eq!(
                check(&with_sig, &keys),
                Err(JwsError::AlgNotAllowed(name.into()))
            );
        }
        for header in [
            json!({}),
            json!({"alg": null}),
            json!({"alg": 256}),
            json!({"alg": ["RS256"]}),
        ] {
            let t = format!("{}.e30.AAAA", b64::encode(header.to_string().as_bytes()));
            assert_eq!(
                check(&t, &keys),
                Err(JwsError::AlgNotAllowed(String::new()))
            );
        }
        let long = "X".repeat(500);
        let t = format!(
            "{}.e30.AAAA",
            b64::encode(json!({"alg": long}).to_string().as_bytes())
        );
        match check(&t, &keys) {
            Err(JwsError::AlgNotAllowed(n)) => assert_eq!(n.len(), 32),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            JwsError::AlgNotAllowed("none".into()).code(),
            "alg_not_allowed"
        );
    }

    #[test]
    fn hostile_kids_are_just_not_found() {
        let keys = all_keys();
        for kid in [
            "../../../../etc/passwd".to_string(),
            "' OR '1'='1".to_string(),
            "%00\u{0}\n\r".to_string(),
            "k".repeat(10_000),
            String::new(),
        ] {
            let t = token(Alg::Es256, Some(&kid), b"{}");
            assert_eq!(
                check(&t, &keys),
                Err(JwsError::KeyNotFound),
                "{}",
                kid.len().min(40)
            );
        }
        let t = token_with(&json!({"alg":"ES256","kid":7}), b"{}", |i| {
            sign(Alg::Es256, i)
        });
        assert_eq!(
            check(&t, &keys),
            Err(JwsError::Malformed("kid is not a string"))
        );
    }

    #[test]
    fn crit_and_nested_are_refused() {
        let keys = all_keys();
        for crit in [json!(["exp"]), json!([]), json!("b64"), json!(null)] {
            let t = token_with(&json!({"alg":"ES256","crit":crit}), b"{}", |i| {
                sign(Alg::Es256, i)
            });
            assert_eq!(check(&t, &keys), Err(JwsError::CritUnsupported));
        }
        for cty in ["JWT", "jwt", "Jwt"] {
            let t = token_with(&json!({"alg":"ES256","cty":cty}), b"{}", |i| {
                sign(Alg::Es256, i)
            });
            assert_eq!(check(&t, &keys), Err(JwsError::NestedJwt));
            assert_eq!(JwsError::NestedJwt.code(), "malformed");
        }
    }

    #[test]
    fn keys_in_the_header_are_ignored() {
        // Signed with an attacker key that is embedded in the header.
        let attacker = p256::ecdsa::SigningKey::from_slice(&[0x77; 32]).unwrap();
        let jwk = public_jwk(Material::P256(*attacker.verifying_key()), json!({}));
        let h = json!({"alg":"ES256","jwk":jwk,"jku":"http://127.0.0.1/k","x5u":"http://127.0.0.1/c","x5c":["AAAA"]});
        let t = token_with(&h, b"{}", |i| {
            Es256.sign(&attacker, i).as_bytes().into_owned()
        });
        assert_eq!(check(&t, &all_keys()), Err(JwsError::BadSignature));
    }

    #[test]
    fn duplicate_header_members_are_malformed() {
        let header = r#"{"alg":"ES256","alg":"none"}"#;
        let t = format!("{}.e30.AAAA", b64::encode(header.as_bytes()));
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::Malformed("duplicate member in header"))
        );
        let t = format!("{}.e30.AAAA", b64::encode(b"[1]"));
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::Malformed("header is not a json object"))
        );
        let t = format!("{}.e30.AAAA", b64::encode(br#"{"alg":"ES256",}"#));
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::Malformed("header is not valid json"))
        );
        let deep = format!(
            r#"{{"alg":"ES256","x":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let t = format!("{}.e30.AAAA", b64::encode(deep.as_bytes()));
        assert_eq!(
            check(&t, &all_keys()),
            Err(JwsError::Malformed("header nested too deeply"))
        );
    }

    #[test]
    fn non_canonical_base64_is_malformed() {
        let keys = all_keys();
        let good = token(Alg::Es256, None, b"{\"a\":1}");
        assert!(check(&good, &keys).is_ok());
        let parts: Vec<&str> = good.split('.').collect();
        let variants = [
            // Padding on each segment.
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}==.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            // Standard alphabet.
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                parts[2].replace(['-', '_'], "+")
            ),
            format!("{}.{}.{}", parts[0].replace('e', "/"), parts[1], parts[2]),
            // Whitespace anywhere, trailing data.
            format!("{} .{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}\n", parts[0], parts[1], parts[2]),
            format!("{}.{}.{} ", parts[0], parts[1], parts[2]),
            format!(" {}.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}x", parts[0], parts[1], parts[2]),
        ];
        for v in &variants {
            assert!(
                matches!(check(v, &keys), Err(JwsError::Malformed(_))),
                "{v}"
            );
        }
        // Non-zero trailing bits: "e30" is "{}"; "e31" decodes to the same
        // bytes in a lenient decoder.
        let t = format!("{}.e31.{}", parts[0], parts[2]);
        assert_eq!(
            check(&t, &keys),
            Err(JwsError::Malformed("bad base64 in payload"))
        );
        // ES256 signature is 64 bytes = 86 chars, last char carries 2 spare bits.
        let mut sig = parts[2].to_string();
        let last = sig.pop().unwrap();
        let idx = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            .iter()
            .position(|c| *c as char == last)
            .unwrap();
        let alt =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[idx | 1] as char;
        let t = format!("{}.{}.{sig}{alt}", parts[0], parts[1]);
        assert_eq!(
            check(&t, &keys),
            Err(JwsError::Malformed("bad base64 in signature"))
        );
    }

    #[test]
    fn segment_counts() {
        let keys = all_keys();
        let good = token(Alg::Es256, None, b"{}");
        let (h, rest) = good.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();
        let cases = [
            (String::new(), "expected three segments"),
            (format!("{h}.{p}"), "expected three segments"),
            (format!("{h}.{p}.{s}.{s}"), "expected three segments"),
            (format!("{h}.{p}.{s}."), "expected three segments"),
            (format!("{h}.{p}.{s}.{s}.{s}"), "jwe not supported"),
            (
                format!("{h}.{p}.{s}.{s}.{s}.{s}"),
                "expected three segments",
            ),
            (".".repeat(5000), "expected three segments"),
            (format!(".{p}.{s}"), "empty segment"),
            (format!("{h}..{s}"), "empty segment"),
            (format!("{h}.{p}."), "empty segment"),
            ("c".repeat(10_240), "expected three segments"),
            // The count is the error whatever else is wrong, as if it were
            // checked first (the third dot is only looked for on failure).
            (format!("!!.{p}.{s}.{s}"), "expected three segments"),
            (format!(".{p}.{s}.{s}"), "expected three segments"),
            (format!("{h}.!!.{s}.{s}.{s}"), "jwe not supported"),
            (format!("{h}.{p}.!.{s}"), "expected three segments"),
            (format!("{h}.{p}.."), "expected three segments"),
        ];
        for (t, why) in cases {
            assert_eq!(check(&t, &keys), Err(JwsError::Malformed(why)), "{why}");
        }
    }

    #[test]
    fn oversize_is_refused_before_decoding() {
        let good = token(Alg::Es256, None, b"{}");
        assert!(UntrustedJws::parse(&good, good.len()).is_ok());
        assert_eq!(
            UntrustedJws::parse(&good, good.len() - 1).unwrap_err(),
            JwsError::TooLarge
        );
        let garbage = "!".repeat(100_000);
        assert_eq!(
            UntrustedJws::parse(&garbage, MAX).unwrap_err(),
            JwsError::TooLarge
        );
        assert_eq!(JwsError::TooLarge.code(), "too_large");
    }

    #[test]
    fn ecdsa_edge_signatures_fail() {
        let keys = all_keys();
        let orders: [(Alg, &str); 3] = [
            (Alg::Es256, "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
            (Alg::Es384, "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"),
            (Alg::Es512, "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"),
        ];
        for (alg, n_hex) in orders {
            let n = hex(n_hex);
            let size = n.len();
            let good = token(alg, None, b"{}");
            let u = UntrustedJws::parse(&good, MAX).unwrap();
            let (r, s) = u.signature.split_at(size);
            let bad_sigs = vec![
                vec![0u8; 2 * size],              // psychic signature r = s = 0
                [n.clone(), n.clone()].concat(),  // r = s = n
                [r.to_vec(), n.clone()].concat(), // s = n
                [n.clone(), s.to_vec()].concat(), // r = n
                [vec![0u8; size], s.to_vec()].concat(),
                [r.to_vec(), vec![0u8; size]].concat(),
                u.signature[..2 * size - 1].to_vec(),
                [u.signature.clone(), vec![0]].concat(),
                der_signature(r, s),
            ];
            for sig in bad_sigs {
                let t = format!(
                    "{}.{}",
                    std::str::from_utf8(&u.signing_input).unwrap(),
                    b64::encode(&sig)
                );
                assert_eq!(check(&t, &keys), Err(JwsError::BadSignature), "{alg}");
                for key in &keys.keys {
                    assert!(!verify_signature(
                        alg,
                        &key.material,
                        &u.signing_input,
                        &sig
                    ));
                }
            }
        }
    }

    #[test]
    fn rsa_signature_length_must_equal_modulus() {
        let keys = all_keys();
        for alg in [Alg::Rs256, Alg::Ps256] {
            let good = token(alg, None, b"{}");
            let u = UntrustedJws::parse(&good, MAX).unwrap();
            let input = std::str::from_utf8(&u.signing_input).unwrap();
            let longer = [vec![0u8], u.signature.clone()].concat();
            let shorter = u.signature[1..].to_vec();
            let empty_ish = vec![0u8; 1];
            for sig in [longer, shorter, empty_ish, vec![0u8; 256], vec![0xff; 256]] {
                let t = format!("{input}.{}", b64::encode(&sig));
                assert_eq!(check(&t, &keys), Err(JwsError::BadSignature), "{alg}");
            }
        }
    }

    #[test]
    fn key_selection_rules() {
        let rsa_a = rsa_jwk(json!({"kid":"a","alg":"RS256"}));
        let ec = public_jwk(
            Material::P256(*p256_sk().verifying_key()),
            json!({"kid":"a"}),
        );
        // RSA key + ES256 token with the same kid: the EC key is the candidate.
        let keys = key_set(vec![rsa_a.clone(), ec], false);
        assert!(check(&token(Alg::Es256, Some("a"), b"{}"), &keys).is_ok());
        // RSA-only set and an ES256 token: no candidate at all.
        let rsa_only = key_set(vec![rsa_a], false);
        assert_eq!(
            check(&token(Alg::Es256, Some("a"), b"{}"), &rsa_only),
            Err(JwsError::KeyNotFound)
        );
        // Key pinned to RS256 does not serve PS256.
        assert_eq!(
            check(&token(Alg::Ps256, Some("a"), b"{}"), &rsa_only),
            Err(JwsError::KeyNotFound)
        );
        // A key without kid serves any token kid.
        let no_kid = key_set(vec![rsa_jwk(json!({}))], false);
        assert!(check(&token(Alg::Ps512, Some("zzz"), b"{}"), &no_kid).is_ok());
        // Wrong key of the right type: bad signature.
        let other_ec = p256::ecdsa::SigningKey::from_slice(&[0x55; 32]).unwrap();
        let other = key_set(
            vec![public_jwk(
                Material::P256(*other_ec.verifying_key()),
                json!({}),
            )],
            false,
        );
        assert_eq!(
            check(&token(Alg::Es256, None, b"{}"), &other),
            Err(JwsError::BadSignature)
        );
        // A later key verifies after an earlier one failed.
        let both = key_set(
            vec![
                public_jwk(Material::P256(*other_ec.verifying_key()), json!({})),
                public_jwk(Material::P256(*p256_sk().verifying_key()), json!({})),
            ],
            false,
        );
        assert!(check(&token(Alg::Es256, None, b"{}"), &both).is_ok());
        // An empty set finds nothing.
        assert_eq!(
            check(&token(Alg::Es256, None, b"{}"), &KeySet::default()),
            Err(JwsError::KeyNotFound)
        );
    }

    #[test]
    fn hmac_key_length_per_alg() {
        let k32 = [0x11u8; 32];
        let keys = key_set(vec![json!({"kty":"oct","k":b64::encode(&k32)})], true);
        let t256 = token_with(&json!({"alg":"HS256"}), b"{}", |i| {
            Hs256.sign(&Hs256Key::new(k32), i).as_bytes().into_owned()
        });
        assert!(check(&t256, &keys).is_ok());
        // HS512 with the same 32-byte secret: the key does not qualify.
        let t512 = token_with(&json!({"alg":"HS512"}), b"{}", |i| {
            Hs512.sign(&Hs512Key::new(k32), i).as_bytes().into_owned()
        });
        assert_eq!(check(&t512, &keys), Err(JwsError::KeyNotFound));
        // Truncated MAC.
        let u = UntrustedJws::parse(&t256, MAX).unwrap();
        assert!(!verify_signature(
            Alg::Hs256,
            &keys.keys[0].material,
            &u.signing_input,
            &u.signature[..16]
        ));
        assert!(verify_signature(
            Alg::Hs256,
            &keys.keys[0].material,
            &u.signing_input,
            &u.signature
        ));
    }

    #[test]
    fn messages_do_not_leak_token_content() {
        let t = format!(
            "{}.c2VjcmV0.AAAA",
            b64::encode(br#"{"alg":"ES256","crit":["secret"]}"#)
        );
        let err = check(&t, &all_keys()).unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` (short form lengths suffice
    /// for P-256/P-384; P-521 needs the long form).
    fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
        fn int(x: &[u8]) -> Vec<u8> {
            let mut body = x.to_vec();
            if body[0] & 0x80 != 0 {
                body.insert(0, 0);
            }
            let mut v = vec![0x02, body.len() as u8];
            v.extend(body);
            v
        }
        let mut body = int(r);
        body.extend(int(s));
        let mut v = vec![0x30];
        if body.len() >= 128 {
            v.push(0x81);
        }
        v.push(body.len() as u8);
        v.extend(body);
        v
    }
}
