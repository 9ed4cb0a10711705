//! Verification keys: JWK / JWKS (RFC 7517, RFC 7518 section 6, RFC 8037)
//! and PEM/DER public keys, turned into typed key material.
//!
//! Security invariants kept here:
//! - Only public material is ever stored. Private JWK members (`d`, `p`,
//!   `q`, ...) are never read; HMAC secrets (`oct`) are kept only when the
//!   caller allows symmetric keys (a local JWKS) and are wiped on drop.
//! - A key is usable only for algorithms of its own type and strength
//!   ([`Jwk::usable_for`]), so a token cannot pick "HS256 with the RSA public
//!   key as secret" (algorithm confusion).
//! - One bad key never poisons a set: it is skipped with a reason, and only a
//!   set with no usable key at all is an error.
//! - Error messages and `Debug` output never contain key bytes.

use crate::alg::Alg;
use crate::b64;
use crate::json::{self, JsonError};
use crate::rsa_verify::RsaVerifier;
use base64::Engine as _;
use rsa::pkcs8::der::{self, Decode as _, Tagged as _};
use rsa::pkcs8::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Largest RSA modulus we accept: bigger keys only cost CPU per request.
pub const MAX_RSA_BITS: usize = 8192;
/// Shortest HMAC secret kept at parse time (the HS256 minimum, RFC 7518
/// section 3.2); longer algorithms need longer keys, checked at use time.
pub const MIN_HMAC_KEY_BYTES: usize = 32;
/// Longest `kid` copied into a [`SkippedKey`], to keep reports bounded.
const MAX_REPORTED_KID: usize = 64;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Public key material (or an HMAC secret) in verified, typed form, so the
/// verifier never re-parses or guesses a key's type.
#[derive(Clone)]
pub struct KeyMaterial {
    pub(crate) inner: Material,
    /// DER SubjectPublicKeyInfo of RSA and EC keys, computed once at load,
    /// for handing the key to the host's verifier (`host_crypto`).
    spki: Option<Vec<u8>>,
}

/// The key variants; crate-private so only this module can build them.
#[derive(Clone)]
pub(crate) enum Material {
    /// `key` serves encoding (SPKI, JWK export); `verifier` is the same key
    /// with its Montgomery constants computed once, for the in-wasm verify.
    Rsa {
        key: RsaPublicKey,
        bits: usize,
        verifier: Arc<RsaVerifier>,
    },
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Ed25519(ed25519_compact::PublicKey),
    Oct(Zeroizing<Vec<u8>>),
}

impl KeyMaterial {
    pub(crate) fn new(inner: Material) -> Self {
        let spki = spki_der(&inner);
        Self { inner, spki }
    }

    /// DER SubjectPublicKeyInfo (RSA and EC keys only; `None` otherwise).
    pub fn spki_der(&self) -> Option<&[u8]> {
        self.spki.as_deref()
    }

    /// Reads a DER SubjectPublicKeyInfo (RSA, EC P-256/P-384/P-521, Ed25519),
    /// the form PEM "PUBLIC KEY" blocks and Wycheproof vectors carry.
    pub fn from_spki_der(der: &[u8]) -> Result<KeyMaterial, JwkError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|_| JwkError::InvalidKey(KeySkipReason::Malformed))?;
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or(JwkError::InvalidKey(KeySkipReason::Malformed))?;
        let oid = spki.algorithm.oid;
        let inner = if oid == OID_RSA {
            // RFC 3279: the parameters are NULL (some encoders omit them).
            if let Some(params) = spki.algorithm.parameters {
                if params.tag() != der::Tag::Null {
                    return Err(JwkError::InvalidKey(KeySkipReason::Malformed));
                }
            }
            rsa_from_pkcs1_der(key_bytes).map_err(JwkError::InvalidKey)?
        } else if oid == OID_EC {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|_| JwkError::InvalidKey(KeySkipReason::WrongCurve))?;
            ec_from_sec1(curve, key_bytes).map_err(JwkError::InvalidKey)?
        } else if oid == OID_ED25519 {
            if spki.algorithm.parameters.is_some() {
                return Err(JwkError::InvalidKey(KeySkipReason::Malformed));
            }
            ed25519_from_bytes(key_bytes).map_err(JwkError::InvalidKey)?
        } else {
            return Err(JwkError::InvalidKey(KeySkipReason::UnknownKty));
        };
        Ok(Self::new(inner))
    }

    /// Reads one PEM block: "PUBLIC KEY" (SPKI) or "RSA PUBLIC KEY"
    /// (PKCS#1), the forms jwt_authn's `local_jwks` accepts besides JWKS.
    pub fn from_pem(pem: &str) -> Result<KeyMaterial, JwkError> {
        let (label, der) = decode_pem(pem)?;
        match label {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => rsa_from_pkcs1_der(&der)
                .map(Self::new)
                .map_err(JwkError::InvalidKey),
            _ => Err(JwkError::Pem("unsupported pem label".into())),
        }
    }

    /// The JWK `kty` of this key, for logs and reports.
    pub fn kty(&self) -> &'static str {
        match &self.inner {
            Material::Rsa { .. } => "RSA",
            Material::P256(_) | Material::P384(_) | Material::P521(_) => "EC",
            Material::Ed25519(_) => "OKP",
            Material::Oct(_) => "oct",
        }
    }

    /// Key size in bits (RSA modulus, curve field, or HMAC secret length),
    /// for policy checks and reports.
    pub fn bits(&self) -> usize {
        match &self.inner {
            Material::Rsa { bits, .. } => *bits,
            Material::P256(_) | Material::Ed25519(_) => 256,
            Material::P384(_) => 384,
            Material::P521(_) => 521,
            Material::Oct(k) => k.len().saturating_mul(8),
        }
    }

    /// Whether this key can ever verify `alg`: the type must match, and an
    /// HMAC secret must be at least as long as the hash output (RFC 7518
    /// section 3.2), so a 32-byte secret serves HS256 but not HS384/HS512.
    pub fn fits(&self, alg: Alg) -> bool {
        match &self.inner {
            Material::Rsa { .. } => matches!(
                alg,
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
            ),
            Material::P256(_) => alg == Alg::Es256,
            Material::P384(_) => alg == Alg::Es384,
            Material::P521(_) => alg == Alg::Es512,
            Material::Ed25519(_) => alg == Alg::EdDsa,
            Material::Oct(k) => alg.is_hmac() && k.len() >= alg.hash_len(),
        }
    }

    /// The public JWK (no `kid`/`alg`) of an asymmetric key, for tools that
    /// convert PEM to JWKS; `None` for HMAC secrets, which are never exported.
    pub fn to_public_jwk(&self) -> Option<Map<String, Value>> {
        let mut m = Map::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), Value::String(v));
        };
        match &self.inner {
            Material::Rsa { key, .. } => {
                put("kty", "RSA".into());
                put("n", b64::encode(&key.n().to_bytes_be()));
                put("e", b64::encode(&key.e().to_bytes_be()));
            }
            Material::P256(k) => ec_jwk(&mut put, "P-256", k.to_encoded_point(false).as_bytes()),
            Material::P384(k) => ec_jwk(&mut put, "P-384", k.to_encoded_point(false).as_bytes()),
            Material::P521(k) => ec_jwk(&mut put, "P-521", k.to_encoded_point(false).as_bytes()),
            Material::Ed25519(k) => {
                put("kty", "OKP".into());
                put("crv", "Ed25519".into());
                put("x", b64::encode(k.as_ref()));
            }
            Material::Oct(_) => return None,
        }
        Some(m)
    }
}

fn ec_jwk(put: &mut impl FnMut(&str, String), crv: &str, sec1: &[u8]) {
    // Uncompressed SEC1: 0x04 || x || y, coordinates of equal length.
    let coords = sec1.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    put("kty", "EC".into());
    put("crv", crv.into());
    put("x", b64::encode(x));
    put("y", b64::encode(y));
}

impl fmt::Debug for KeyMaterial {
    /// Type and size only: key bytes never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("KeyMaterial");
        d.field("kty", &self.kty());
        match &self.inner {
            Material::P256(_) => d.field("crv", &"P-256"),
            Material::P384(_) => d.field("crv", &"P-384"),
            Material::P521(_) => d.field("crv", &"P-521"),
            Material::Ed25519(_) => d.field("crv", &"Ed25519"),
            Material::Rsa { .. } | Material::Oct(_) => d.field("bits", &self.bits()),
        };
        d.finish()
    }
}

/// One verification key with the JWK metadata that restricts its use.
#[derive(Clone, Debug)]
pub struct Jwk {
    /// `kid`, matched against the token's `kid`.
    pub kid: Option<String>,
    /// `alg`, when the publisher pins the key to one algorithm.
    pub alg: Option<String>,
    /// `use` (`sig` or `enc`).
    pub key_use: Option<String>,
    /// `key_ops` (must contain `verify` when present).
    pub key_ops: Option<Vec<String>>,
    /// The key itself.
    pub material: KeyMaterial,
    /// Came from a PEM block: no metadata, serves every algorithm of its type.
    pub from_pem: bool,
}

impl Jwk {
    /// The key may verify a token with this alg: the material fits, the JWK
    /// `alg` (when present) names the same algorithm ("EdDSA" and "Ed25519"
    /// are equal), `use` (when present) is "sig", and `key_ops` (when present)
    /// contains "verify". A PEM key (no alg) serves every alg of its type.
    pub fn usable_for(&self, alg: Alg) -> bool {
        if !self.material.fits(alg) {
            return false;
        }
        if let Some(name) = &self.alg {
            if Alg::from_name(name) != Some(alg) {
                return false;
            }
        }
        if let Some(key_use) = &self.key_use {
            if key_use != "sig" {
                return false;
            }
        }
        if let Some(ops) = &self.key_ops {
            if !ops.iter().any(|op| op == "verify") {
                return false;
            }
        }
        true
    }
}

/// Limits and policy for reading a key set; remote and local sets differ.
#[derive(Clone, Copy, Debug)]
pub struct JwksOptions {
    /// RSA keys with a shorter modulus are skipped (`weak_rsa`).
    pub min_rsa_bits: usize,
    /// Keep `oct` (HMAC) keys; only for key sets from local configuration,
    /// never for fetched ones (a public URL must not hold shared secrets).
    pub allow_hmac: bool,
    /// Larger documents are refused before parsing.
    pub max_bytes: usize,
    /// Sets with more entries are refused (bounds per-token verify work).
    pub max_keys: usize,
}

impl Default for JwksOptions {
    /// 2048-bit RSA minimum (RFC 7518 section 3.3), no HMAC, 256 KiB, 100 keys.
    fn default() -> Self {
        Self {
            min_rsa_bits: 2048,
            allow_hmac: false,
            max_bytes: 256 * 1024,
            max_keys: 100,
        }
    }
}

/// Why one key of a set was left out; `as_str` codes are stable for logs
/// and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySkipReason {
    /// `kty` is not RSA, EC, OKP or oct (or the SPKI algorithm is unknown).
    UnknownKty,
    /// A key member is not valid base64url.
    BadBase64,
    /// RSA modulus shorter than `min_rsa_bits`.
    WeakRsa,
    /// RSA parameters unusable (even modulus, bad exponent, too large).
    BadRsa,
    /// Curve unsupported, or not the one the key type/alg requires.
    WrongCurve,
    /// EC coordinates are not a point on the named curve.
    NotOnCurve,
    /// An `oct` key in a set that may not hold HMAC secrets.
    HmacNotAllowed,
    /// HMAC secret shorter than 32 bytes (or than its `alg` requires).
    HmacTooShort,
    /// A required key member decodes to nothing.
    EmptyKey,
    /// Not a JSON object, a member of the wrong type, or a missing member.
    Malformed,
    /// `alg` is not a supported JWS algorithm (e.g. `RSA-OAEP`, `none`).
    UnsupportedAlg,
    /// `alg` names an algorithm of another key type.
    AlgMismatch,
    /// `use` is not `sig`, or `key_ops` lacks `verify`.
    NotForSignature,
}

impl KeySkipReason {
    /// Stable snake_case code for logs, metrics and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownKty => "unknown_kty",
            Self::BadBase64 => "bad_base64",
            Self::WeakRsa => "weak_rsa",
            Self::BadRsa => "bad_rsa",
            Self::WrongCurve => "wrong_curve",
            Self::NotOnCurve => "not_on_curve",
            Self::HmacNotAllowed => "hmac_not_allowed",
            Self::HmacTooShort => "hmac_too_short",
            Self::EmptyKey => "empty_key",
            Self::Malformed => "malformed",
            Self::UnsupportedAlg => "unsupported_alg",
            Self::AlgMismatch => "alg_mismatch",
            Self::NotForSignature => "not_for_signature",
        }
    }
}

impl fmt::Display for KeySkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key left out of a set, reported so operators can fix their JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array (0 for a single JWK or PEM).
    pub index: usize,
    /// The key's `kid` if it had a string one (truncated to 64 chars).
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: KeySkipReason,
}

/// The usable keys of a document plus what was skipped and why.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    /// Keys in document order (verification tries them in this order).
    pub keys: Vec<Jwk>,
    /// Entries that were left out.
    pub skipped: Vec<SkippedKey>,
}

/// Why a key document (or one PEM/DER key) was refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwkError {
    /// Larger than `JwksOptions::max_bytes`.
    TooLarge,
    /// Not strict JSON (or not an object).
    Json(JsonError),
    /// An object with neither `keys` nor `kty`.
    NoKeysMember,
    /// The document's shape is wrong (e.g. `keys` is not an array).
    Malformed(&'static str),
    /// More entries than `JwksOptions::max_keys`.
    TooManyKeys,
    /// Every entry was skipped.
    NoValidKeys {
        /// How many entries were skipped.
        skipped: usize,
    },
    /// PEM framing is wrong (static message, never the input).
    Pem(String),
    /// A single PEM/DER key was refused for this reason.
    InvalidKey(KeySkipReason),
}

impl fmt::Display for JwkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("key set too large"),
            Self::Json(e) => write!(f, "key set: {e}"),
            Self::NoKeysMember => f.write_str("key set has no keys member"),
            Self::Malformed(what) => write!(f, "malformed key set: {what}"),
            Self::TooManyKeys => f.write_str("key set has too many keys"),
            Self::NoValidKeys { skipped } => {
                write!(f, "key set has no usable keys ({skipped} skipped)")
            }
            Self::Pem(what) => write!(f, "invalid pem: {what}"),
            Self::InvalidKey(reason) => write!(f, "key refused: {reason}"),
        }
    }
}

impl std::error::Error for JwkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// Parses a JWKS (`{"keys":[...]}`), a PEM public key (leading
/// "-----BEGIN"), or a single JWK object (a set of one). Unusable keys are
/// skipped with a reason; a set with no usable key is an error, so a broken
/// provider is noticed instead of silently rejecting every token.
pub fn parse_key_set(text: &str, opts: &JwksOptions) -> Result<KeySet, JwkError> {
    let set = parse_key_set_lenient(text, opts)?;
    if set.keys.is_empty() {
        return Err(JwkError::NoValidKeys {
            skipped: set.skipped.len(),
        });
    }
    Ok(set)
}

/// Like [`parse_key_set`] but returns a set with zero usable keys instead of
/// failing, so tools can show why every key was skipped.
pub fn parse_key_set_lenient(text: &str, opts: &JwksOptions) -> Result<KeySet, JwkError> {
    if text.len() > opts.max_bytes {
        return Err(JwkError::TooLarge);
    }
    if text.trim_start().starts_with("-----BEGIN") {
        return pem_key_set(text, opts);
    }
    let doc =
        json::parse_object(text.as_bytes(), json::DEFAULT_MAX_DEPTH).map_err(JwkError::Json)?;
    let mut set = KeySet::default();
    match doc.get("keys") {
        Some(Value::Array(entries)) => {
            if entries.len() > opts.max_keys {
                return Err(JwkError::TooManyKeys);
            }
            for (index, entry) in entries.iter().enumerate() {
                add_entry(&mut set, index, entry, opts);
            }
        }
        Some(_) => return Err(JwkError::Malformed("keys is not an array")),
        None if doc.contains_key("kty") => {
            add_entry(&mut set, 0, &Value::Object(doc.clone()), opts);
        }
        None => return Err(JwkError::NoKeysMember),
    }
    Ok(set)
}

fn pem_key_set(text: &str, opts: &JwksOptions) -> Result<KeySet, JwkError> {
    let material = KeyMaterial::from_pem(text)?;
    let mut set = KeySet::default();
    match check_strength(&material, opts) {
        Ok(()) => set.keys.push(Jwk {
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
            material,
            from_pem: true,
        }),
        Err(reason) => set.skipped.push(SkippedKey {
            index: 0,
            kid: None,
            reason,
        }),
    }
    Ok(set)
}

fn add_entry(set: &mut KeySet, index: usize, entry: &Value, opts: &JwksOptions) {
    let Some(obj) = entry.as_object() else {
        set.skipped.push(SkippedKey {
            index,
            kid: None,
            reason: KeySkipReason::Malformed,
        });
        return;
    };
    match parse_jwk(obj, opts) {
        Ok(jwk) => set.keys.push(jwk),
        Err(reason) => set.skipped.push(SkippedKey {
            index,
            kid: obj
                .get("kid")
                .and_then(Value::as_str)
                .map(|k| k.chars().take(MAX_REPORTED_KID).collect()),
            reason,
        }),
    }
}

/// An optional string member; present with another type is malformed.
fn opt_str(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, KeySkipReason> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(KeySkipReason::Malformed),
    }
}

/// A required base64url member (padding tolerated, as some IdPs pad).
fn req_b64(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeySkipReason> {
    match obj.get(name) {
        Some(Value::String(s)) => {
            let bytes = b64::decode_lenient_padding(s).map_err(|_| KeySkipReason::BadBase64)?;
            if bytes.is_empty() {
                return Err(KeySkipReason::EmptyKey);
            }
            Ok(bytes)
        }
        Some(_) => Err(KeySkipReason::Malformed),
        None => Err(KeySkipReason::Malformed),
    }
}

fn parse_jwk(obj: &Map<String, Value>, opts: &JwksOptions) -> Result<Jwk, KeySkipReason> {
    let kid = opt_str(obj, "kid")?;
    let alg = opt_str(obj, "alg")?;
    let key_use = opt_str(obj, "use")?;
    let key_ops = match obj.get("key_ops") {
        None => None,
        Some(Value::Array(ops)) => Some(
            ops.iter()
                .map(|op| op.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or(KeySkipReason::Malformed)?,
        ),
        Some(_) => return Err(KeySkipReason::Malformed),
    };
    let kty = match obj.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        _ => return Err(KeySkipReason::Malformed),
    };
    // Only public members are read below; private ones are never touched.
    let material = match kty {
        "RSA" => {
            let n = req_b64(obj, "n")?;
            let e = req_b64(obj, "e")?;
            KeyMaterial::new(rsa_from_parts(&n, &e)?)
        }
        "EC" => {
            let curve = match opt_str(obj, "crv")?.as_deref() {
                Some("P-256") => OID_P256,
                Some("P-384") => OID_P384,
                Some("P-521") => OID_P521,
                Some(_) => return Err(KeySkipReason::WrongCurve),
                None => return Err(KeySkipReason::Malformed),
            };
            let x = req_b64(obj, "x")?;
            let y = req_b64(obj, "y")?;
            let size = field_bytes(curve);
            // RFC 7518 section 6.2.1.2 wants full-length coordinates, but
            // some publishers strip leading zero bytes (jwt_verify_lib's own
            // ES512 test key has a 65-byte `y`; it reads coordinates as
            // integers). The value stays unambiguous, so shorter ones are
            // left-padded; longer ones are refused.
            if x.len() > size || y.len() > size {
                return Err(KeySkipReason::Malformed);
            }
            let mut sec1 = vec![0u8; 1 + 2 * size];
            sec1[0] = 0x04;
            sec1[1 + size - x.len()..=size].copy_from_slice(&x);
            sec1[1 + 2 * size - y.len()..].copy_from_slice(&y);
            KeyMaterial::new(ec_from_sec1(curve, &sec1)?)
        }
        "OKP" => {
            match opt_str(obj, "crv")?.as_deref() {
                Some("Ed25519") => {}
                Some(_) => return Err(KeySkipReason::WrongCurve),
                None => return Err(KeySkipReason::Malformed),
            }
            let x = req_b64(obj, "x")?;
            KeyMaterial::new(ed25519_from_bytes(&x)?)
        }
        "oct" => {
            if !opts.allow_hmac {
                return Err(KeySkipReason::HmacNotAllowed);
            }
            let k = Zeroizing::new(req_b64(obj, "k")?);
            if k.len() < MIN_HMAC_KEY_BYTES {
                return Err(KeySkipReason::HmacTooShort);
            }
            KeyMaterial::new(Material::Oct(k))
        }
        _ => return Err(KeySkipReason::UnknownKty),
    };
    check_strength(&material, opts)?;
    if key_use.as_deref().is_some_and(|u| u != "sig")
        || key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Err(KeySkipReason::NotForSignature);
    }
    if let Some(name) = &alg {
        let parsed = Alg::from_name(name).ok_or(KeySkipReason::UnsupportedAlg)?;
        if !material.fits(parsed) {
            return Err(match material.inner {
                Material::Oct(_) if parsed.is_hmac() => KeySkipReason::HmacTooShort,
                _ => KeySkipReason::AlgMismatch,
            });
        }
    }
    Ok(Jwk {
        kid,
        alg,
        key_use,
        key_ops,
        material,
        from_pem: false,
    })
}

fn check_strength(material: &KeyMaterial, opts: &JwksOptions) -> Result<(), KeySkipReason> {
    match material.inner {
        Material::Rsa { bits, .. } if bits < opts.min_rsa_bits => Err(KeySkipReason::WeakRsa),
        Material::Oct(_) if !opts.allow_hmac => Err(KeySkipReason::HmacNotAllowed),
        _ => Ok(()),
    }
}

fn field_bytes(curve: ObjectIdentifier) -> usize {
    if curve == OID_P256 {
        32
    } else if curve == OID_P384 {
        48
    } else {
        66
    }
}

fn rsa_from_pkcs1_der(der_bytes: &[u8]) -> Result<Material, KeySkipReason> {
    let key =
        rsa::pkcs1::RsaPublicKey::from_der(der_bytes).map_err(|_| KeySkipReason::Malformed)?;
    rsa_from_parts(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

/// Builds an RSA key from big-endian `n` and `e`, refusing parameters no
/// honest key has (even modulus, even or tiny exponent, oversize modulus).
fn rsa_from_parts(n: &[u8], e: &[u8]) -> Result<Material, KeySkipReason> {
    let n = BigUint::from_bytes_be(n);
    let e = BigUint::from_bytes_be(e);
    let one = BigUint::from(1u8);
    if n.bits() == 0 || e.bits() == 0 {
        return Err(KeySkipReason::EmptyKey);
    }
    if (&n & &one) != one || (&e & &one) != one || e <= one {
        return Err(KeySkipReason::BadRsa);
    }
    let key =
        RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS).map_err(|_| KeySkipReason::BadRsa)?;
    Material::rsa(key)
}

impl Material {
    /// The RSA variant for an already checked public key, with its prepared
    /// verifier (the Montgomery constants are computed here, once per key).
    pub(crate) fn rsa(key: RsaPublicKey) -> Result<Material, KeySkipReason> {
        let verifier = RsaVerifier::new(&key.n().to_bytes_be(), &key.e().to_bytes_be())
            .map_err(|_| KeySkipReason::BadRsa)?;
        Ok(Material::Rsa {
            bits: key.n().bits(),
            key,
            verifier: Arc::new(verifier),
        })
    }
}

fn ec_from_sec1(curve: ObjectIdentifier, sec1: &[u8]) -> Result<Material, KeySkipReason> {
    let not_on_curve = |_| KeySkipReason::NotOnCurve;
    if curve == OID_P256 {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .map(Material::P256)
            .map_err(not_on_curve)
    } else if curve == OID_P384 {
        p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .map(Material::P384)
            .map_err(not_on_curve)
    } else if curve == OID_P521 {
        p521::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .map(Material::P521)
            .map_err(not_on_curve)
    } else {
        Err(KeySkipReason::WrongCurve)
    }
}

fn ed25519_from_bytes(x: &[u8]) -> Result<Material, KeySkipReason> {
    ed25519_compact::PublicKey::from_slice(x)
        .map(Material::Ed25519)
        .map_err(|_| KeySkipReason::Malformed)
}

/// Splits one PEM block into its label and DER body. Strict framing: one
/// block, matching END label, no RFC 1421 headers, nothing after the block.
fn decode_pem(pem: &str) -> Result<(&str, Vec<u8>), JwkError> {
    let bad = |what: &str| JwkError::Pem(what.to_owned());
    let text = pem.trim();
    let rest = text
        .strip_prefix("-----BEGIN ")
        .ok_or_else(|| bad("missing begin line"))?;
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| bad("malformed begin line"))?;
    if label.is_empty() || label.len() > 64 || label.contains(['\r', '\n']) {
        return Err(bad("malformed begin line"));
    }
    let end = format!("-----END {label}-----");
    let (body, after) = rest
        .split_once(&end)
        .ok_or_else(|| bad("missing end line"))?;
    if !after.trim().is_empty() {
        return Err(bad("data after end line"));
    }
    if body.contains(':') || body.contains('-') {
        return Err(bad("unexpected content in pem body"));
    }
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| bad("invalid base64 in pem body"))?;
    if der.is_empty() {
        return Err(bad("empty pem body"));
    }
    Ok((label, der))
}

/// Test helpers shared with other modules' tests.
/// Fixed DER prefixes of an EC SubjectPublicKeyInfo (id-ecPublicKey + named
/// curve + BIT STRING header) for P-256, P-384 and P-521 uncompressed points.
const SPKI_P256: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_P384: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
const SPKI_P521: &[u8] = &[
    0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
    0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00,
];

fn spki_der(inner: &Material) -> Option<Vec<u8>> {
    use rsa::pkcs8::EncodePublicKey;
    let ec = |prefix: &[u8], point: &[u8]| [prefix, point].concat();
    match inner {
        Material::Rsa { key, .. } => key.to_public_key_der().ok().map(|d| d.as_bytes().to_vec()),
        Material::P256(k) => Some(ec(SPKI_P256, k.to_encoded_point(false).as_bytes())),
        Material::P384(k) => Some(ec(SPKI_P384, k.to_encoded_point(false).as_bytes())),
        Material::P521(k) => Some(ec(SPKI_P521, k.to_encoded_point(false).as_bytes())),
        Material::Ed25519(_) | Material::Oct(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests_support {
    use base64::Engine as _;

    /// Wraps DER in a PEM block with 64-column lines.
    pub(crate) fn pem_wrap(label: &str, der: &[u8]) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
mod tests {
    use super::tests_support::pem_wrap;
    use super::*;
    use serde_json::json;

    /// RFC 7515 A.3 P-256 public key.
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    /// RFC 7515 A.2 RSA-2048 modulus.
    const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    /// A 1024-bit RSA modulus (generated with openssl for this test).
    const RSA1024_N: &str = "ukPjEP0XSjSaqRY0waY0Wg6mO4_yb4UY-5tvmaxu7NisgUiuiDcCzMlg3UU-FHCEstflJVbUJiqlB_CC7CmAPnI8KH0naoGoh1RN5ApX-TF6Q9Ig9Fd0eSSLjvhGkj4Qt1uvhLZbePe9dT9lZaS2ATUXu9rL3oEDsxhWU0pOLa0";

    fn opts() -> JwksOptions {
        JwksOptions::default()
    }

    fn local() -> JwksOptions {
        JwksOptions {
            allow_hmac: true,
            ..JwksOptions::default()
        }
    }

    fn one(jwk: Value, opts: &JwksOptions) -> Result<Jwk, KeySkipReason> {
        let set = parse_key_set_lenient(&json!({ "keys": [jwk] }).to_string(), opts).unwrap();
        match (set.keys.into_iter().next(), set.skipped.first()) {
            (Some(k), None) => Ok(k),
            (None, Some(s)) => Err(s.reason),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_rsa_ec_okp_keys() {
        let doc = json!({"keys":[
            {"kty":"RSA","kid":"r","n":RSA_N,"e":"AQAB","alg":"RS256","use":"sig"},
            {"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]});
        let set = parse_key_set(&doc.to_string(), &opts()).unwrap();
        assert_eq!(set.keys.len(), 3);
        assert!(set.skipped.is_empty());
        assert_eq!(set.keys[0].material.kty(), "RSA");
        assert_eq!(set.keys[0].material.bits(), 2048);
        assert_eq!(set.keys[0].kid.as_deref(), Some("r"));
        assert_eq!(set.keys[1].material.kty(), "EC");
        assert_eq!(set.keys[2].material.kty(), "OKP");
        assert!(set.keys[0].usable_for(Alg::Rs256));
        assert!(!set.keys[0].usable_for(Alg::Ps256)); // pinned by "alg"
        assert!(set.keys[1].usable_for(Alg::Es256));
        assert!(!set.keys[1].usable_for(Alg::Es384));
        assert!(set.keys[2].usable_for(Alg::EdDsa));
    }

    #[test]
    fn single_jwk_is_a_set_of_one() {
        let doc = json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"kid":"k1"});
        let set = parse_key_set(&doc.to_string(), &opts()).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("k1"));
    }

    #[test]
    fn document_level_errors() {
        assert_eq!(
            parse_key_set("{}", &opts()).unwrap_err(),
            JwkError::NoKeysMember
        );
        assert_eq!(
            parse_key_set(r#"{"keys":{}}"#, &opts()).unwrap_err(),
            JwkError::Malformed("keys is not an array")
        );
        assert!(matches!(
            parse_key_set("[]", &opts()),
            Err(JwkError::Json(JsonError::NotAnObject))
        ));
        assert!(matches!(
            parse_key_set(r#"{"keys":[],}"#, &opts()),
            Err(JwkError::Json(JsonError::Syntax(_)))
        ));
        assert!(matches!(
            parse_key_set(r#"{"keys":[],"keys":[]}"#, &opts()),
            Err(JwkError::Json(JsonError::DuplicateKey(_)))
        ));
        assert_eq!(
            parse_key_set(r#"{"keys":[]}"#, &opts()).unwrap_err(),
            JwkError::NoValidKeys { skipped: 0 }
        );
        let small = JwksOptions {
            max_bytes: 10,
            ..opts()
        };
        assert_eq!(
            parse_key_set(r#"{"keys":[   ]}"#, &small).unwrap_err(),
            JwkError::TooLarge
        );
        let few = JwksOptions {
            max_keys: 1,
            ..opts()
        };
        assert_eq!(
            parse_key_set(r#"{"keys":[1,2]}"#, &few).unwrap_err(),
            JwkError::TooManyKeys
        );
    }

    #[test]
    fn bad_keys_are_skipped_not_fatal() {
        let doc = json!({"keys":[
            "not an object",
            {"kty":"XYZ"},
            {"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"kid":"good"},
            {"kty":"RSA","kid":"weak","n":RSA1024_N,"e":"AQAB"}
        ]});
        let set = parse_key_set(&doc.to_string(), &opts()).unwrap();
        assert_eq!(set.keys.len(), 1);
        let reasons: Vec<_> = set.skipped.iter().map(|s| (s.index, s.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (0, KeySkipReason::Malformed),
                (1, KeySkipReason::UnknownKty),
                (3, KeySkipReason::WeakRsa)
            ]
        );
        assert_eq!(set.skipped[2].kid.as_deref(), Some("weak"));
        // All bad: an error that says how many were skipped.
        let bad = json!({"keys":[{"kty":"XYZ"},{"kty":"RSA","n":RSA1024_N,"e":"AQAB"}]});
        assert_eq!(
            parse_key_set(&bad.to_string(), &opts()).unwrap_err(),
            JwkError::NoValidKeys { skipped: 2 }
        );
    }

    #[test]
    fn rsa_1024_skipped_unless_policy_allows() {
        let jwk = json!({"kty":"RSA","n":RSA1024_N,"e":"AQAB"});
        assert_eq!(
            one(jwk.clone(), &opts()).unwrap_err(),
            KeySkipReason::WeakRsa
        );
        let lax = JwksOptions {
            min_rsa_bits: 1024,
            ..opts()
        };
        assert_eq!(one(jwk, &lax).unwrap().material.bits(), 1024);
    }

    #[test]
    fn rsa_parameter_checks() {
        let even_n = {
            let mut n = b64::decode_strict(RSA_N).unwrap();
            *n.last_mut().unwrap() &= 0xfe;
            b64::encode(&n)
        };
        assert_eq!(
            one(json!({"kty":"RSA","n":even_n,"e":"AQAB"}), &opts()).unwrap_err(),
            KeySkipReason::BadRsa
        );
        for e in ["AQ", "Ag", "AAE"] {
            // e = 1, e = 2 (even), e = 1 with a leading zero.
            assert_eq!(
                one(json!({"kty":"RSA","n":RSA_N,"e":e}), &opts()).unwrap_err(),
                KeySkipReason::BadRsa,
                "{e}"
            );
        }
        assert_eq!(
            one(json!({"kty":"RSA","n":RSA_N,"e":""}), &opts()).unwrap_err(),
            KeySkipReason::EmptyKey
        );
        assert_eq!(
            one(json!({"kty":"RSA","n":RSA_N}), &opts()).unwrap_err(),
            KeySkipReason::Malformed
        );
        assert_eq!(
            one(json!({"kty":"RSA","n":"a+b/","e":"AQAB"}), &opts()).unwrap_err(),
            KeySkipReason::BadBase64
        );
        assert_eq!(
            one(json!({"kty":"RSA","n":RSA_N,"e":65537}), &opts()).unwrap_err(),
            KeySkipReason::Malformed
        );
        // A leading zero byte on n (some IdPs) and padding are tolerated.
        let mut padded = vec![0u8];
        padded.extend(b64::decode_strict(RSA_N).unwrap());
        let n = format!("{}=", b64::encode(&padded));
        let k = one(json!({"kty":"RSA","n":n,"e":"AQAB"}), &opts()).unwrap();
        assert_eq!(k.material.bits(), 2048);
        // Oversize modulus.
        let huge = b64::encode(&[0xffu8; MAX_RSA_BITS / 8 + 1]);
        assert_eq!(
            one(json!({"kty":"RSA","n":huge,"e":"AQAB"}), &opts()).unwrap_err(),
            KeySkipReason::BadRsa
        );
    }

    #[test]
    fn ec_point_must_be_on_curve_and_match_crv() {
        let mut y = b64::decode_strict(EC_Y).unwrap();
        y[31] ^= 1;
        assert_eq!(
            one(
                json!({"kty":"EC","crv":"P-256","x":EC_X,"y":b64::encode(&y)}),
                &opts()
            )
            .unwrap_err(),
            KeySkipReason::NotOnCurve
        );
        // P-256 coordinates under crv P-384: not a P-384 point.
        assert_eq!(
            one(json!({"kty":"EC","crv":"P-384","x":EC_X,"y":EC_Y}), &opts()).unwrap_err(),
            KeySkipReason::NotOnCurve
        );
        // 48-byte coordinates under crv P-256: too long for that curve.
        let x48 = b64::encode(&[1u8; 48]);
        assert_eq!(
            one(json!({"kty":"EC","crv":"P-256","x":x48,"y":x48}), &opts()).unwrap_err(),
            KeySkipReason::Malformed
        );
        assert_eq!(
            one(
                json!({"kty":"EC","crv":"secp256k1","x":EC_X,"y":EC_Y}),
                &opts()
            )
            .unwrap_err(),
            KeySkipReason::WrongCurve
        );
        assert_eq!(
            one(json!({"kty":"EC","x":EC_X,"y":EC_Y}), &opts()).unwrap_err(),
            KeySkipReason::Malformed
        );
        // A coordinate with its leading zero byte stripped is left-padded
        // (here the stripped byte was not zero, so the point moves off the
        // curve); an over-long one is refused.
        let short_x = b64::encode(&b64::decode_strict(EC_X).unwrap()[1..]);
        assert_eq!(
            one(
                json!({"kty":"EC","crv":"P-256","x":short_x,"y":EC_Y}),
                &opts()
            )
            .unwrap_err(),
            KeySkipReason::NotOnCurve
        );
        let long_x = b64::encode(&[&[0u8][..], &b64::decode_strict(EC_X).unwrap()].concat());
        assert_eq!(
            one(
                json!({"kty":"EC","crv":"P-256","x":long_x,"y":EC_Y}),
                &opts()
            )
            .unwrap_err(),
            KeySkipReason::Malformed
        );
        // Point at zero.
        let zero = b64::encode(&[0u8; 32]);
        assert_eq!(
            one(json!({"kty":"EC","crv":"P-256","x":zero,"y":zero}), &opts()).unwrap_err(),
            KeySkipReason::NotOnCurve
        );
        // alg of another curve.
        assert_eq!(
            one(
                json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"alg":"ES384"}),
                &opts()
            )
            .unwrap_err(),
            KeySkipReason::AlgMismatch
        );
    }

    #[test]
    fn ec_coordinates_with_stripped_leading_zero_are_accepted() {
        // Find (in a bounded search) a P-256 key whose x starts with 0x00.
        let found = (1u32..=20_000).find_map(|i| {
            let mut d = [0u8; 32];
            d[28..].copy_from_slice(&i.to_be_bytes());
            let sk = p256::ecdsa::SigningKey::from_slice(&d).ok()?;
            let point = sk.verifying_key().to_encoded_point(false);
            let (x, y) = (point.x()?.to_vec(), point.y()?.to_vec());
            (x[0] == 0).then_some((x, y))
        });
        let (x, y) = found.expect("a key with a leading zero in x");
        let full = one(
            json!({"kty":"EC","crv":"P-256","x":b64::encode(&x),"y":b64::encode(&y)}),
            &opts(),
        )
        .unwrap();
        let stripped = one(
            json!({"kty":"EC","crv":"P-256","x":b64::encode(&x[1..]),"y":b64::encode(&y)}),
            &opts(),
        )
        .unwrap();
        assert_eq!(
            full.material.to_public_jwk(),
            stripped.material.to_public_jwk()
        );
    }

    #[test]
    fn okp_checks() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        assert_eq!(
            one(json!({"kty":"OKP","crv":"X25519","x":x}), &opts()).unwrap_err(),
            KeySkipReason::WrongCurve
        );
        assert_eq!(
            one(json!({"kty":"OKP","crv":"Ed25519","x":"AAAA"}), &opts()).unwrap_err(),
            KeySkipReason::Malformed
        );
        let k = one(
            json!({"kty":"OKP","crv":"Ed25519","x":x,"alg":"Ed25519"}),
            &opts(),
        )
        .unwrap();
        assert!(k.usable_for(Alg::EdDsa));
        let k = one(
            json!({"kty":"OKP","crv":"Ed25519","x":x,"alg":"EdDSA"}),
            &opts(),
        )
        .unwrap();
        assert!(k.usable_for(Alg::EdDsa));
    }

    #[test]
    fn hmac_policy() {
        let k32 = b64::encode(&[7u8; 32]);
        let k31 = b64::encode(&[7u8; 31]);
        let k64 = b64::encode(&[7u8; 64]);
        assert_eq!(
            one(json!({"kty":"oct","k":k32}), &opts()).unwrap_err(),
            KeySkipReason::HmacNotAllowed
        );
        assert_eq!(
            one(json!({"kty":"oct","k":k31}), &local()).unwrap_err(),
            KeySkipReason::HmacTooShort
        );
        assert_eq!(
            one(json!({"kty":"oct","k":""}), &local()).unwrap_err(),
            KeySkipReason::EmptyKey
        );
        let key = one(json!({"kty":"oct","k":k32}), &local()).unwrap();
        assert!(key.usable_for(Alg::Hs256));
        assert!(!key.usable_for(Alg::Hs384));
        assert!(!key.usable_for(Alg::Hs512));
        assert!(!key.usable_for(Alg::Rs256));
        let key = one(json!({"kty":"oct","k":k64}), &local()).unwrap();
        assert!(Alg::ALL.iter().filter(|a| key.usable_for(**a)).count() == 3);
        // A 32-byte key pinned to HS512 can never be used.
        assert_eq!(
            one(json!({"kty":"oct","k":k32,"alg":"HS512"}), &local()).unwrap_err(),
            KeySkipReason::HmacTooShort
        );
        assert_eq!(
            format!(
                "{:?}",
                one(json!({"kty":"oct","k":k32}), &local())
                    .unwrap()
                    .material
            ),
            r#"KeyMaterial { kty: "oct", bits: 256 }"#
        );
    }

    #[test]
    fn use_key_ops_and_alg_metadata() {
        let base = || json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y});
        let with = |k: &str, v: Value| {
            let mut j = base();
            j[k] = v;
            j
        };
        assert_eq!(
            one(with("use", json!("enc")), &opts()).unwrap_err(),
            KeySkipReason::NotForSignature
        );
        assert_eq!(
            one(with("key_ops", json!(["encrypt"])), &opts()).unwrap_err(),
            KeySkipReason::NotForSignature
        );
        assert_eq!(
            one(with("key_ops", json!("verify")), &opts()).unwrap_err(),
            KeySkipReason::Malformed
        );
        assert_eq!(
            one(with("alg", json!("none")), &opts()).unwrap_err(),
            KeySkipReason::UnsupportedAlg
        );
        assert_eq!(
            one(with("alg", json!("RS256")), &opts()).unwrap_err(),
            KeySkipReason::AlgMismatch
        );
        assert_eq!(
            one(with("kid", json!(5)), &opts()).unwrap_err(),
            KeySkipReason::Malformed
        );
        let k = one(with("key_ops", json!(["sign", "verify"])), &opts()).unwrap();
        assert!(k.usable_for(Alg::Es256));
        // usable_for re-checks metadata on hand-built keys too.
        let mut k = one(base(), &opts()).unwrap();
        k.key_use = Some("enc".into());
        assert!(!k.usable_for(Alg::Es256));
        k.key_use = None;
        k.key_ops = Some(vec!["sign".into()]);
        assert!(!k.usable_for(Alg::Es256));
        k.key_ops = None;
        k.alg = Some("ES256".into());
        assert!(k.usable_for(Alg::Es256));
    }

    #[test]
    fn private_members_are_not_needed_or_kept() {
        let jwk = json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,
            "d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"});
        let k = one(jwk, &opts()).unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("jpsQ"));
        assert!(!dbg.contains(EC_X));
        let exported = Value::Object(k.material.to_public_jwk().unwrap());
        assert_eq!(
            exported,
            json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y})
        );
    }

    #[test]
    fn pem_and_der_keys() {
        let rsa = one(json!({"kty":"RSA","n":RSA_N,"e":"AQAB"}), &opts()).unwrap();
        let Material::Rsa { key, .. } = &rsa.material.inner else {
            panic!("not rsa")
        };
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        use rsa::pkcs8::EncodePublicKey as _;
        let spki = key.to_public_key_der().unwrap();
        let pkcs1 = key.to_pkcs1_der().unwrap();
        let from_der = KeyMaterial::from_spki_der(spki.as_bytes()).unwrap();
        assert_eq!(from_der.bits(), 2048);
        let pem = pem_wrap("PUBLIC KEY", spki.as_bytes());
        let set = parse_key_set(&pem, &opts()).unwrap();
        assert!(set.keys[0].from_pem);
        assert!(set.keys[0].usable_for(Alg::Rs256));
        assert!(set.keys[0].usable_for(Alg::Ps512));
        assert!(!set.keys[0].usable_for(Alg::Es256));
        let pem1 = pem_wrap("RSA PUBLIC KEY", pkcs1.as_bytes());
        assert_eq!(KeyMaterial::from_pem(&pem1).unwrap().kty(), "RSA");
        // Leading whitespace is fine; trailing junk, bad labels, headers are not.
        assert!(parse_key_set(&format!("\n  {pem}\n"), &opts()).is_ok());
        assert!(matches!(
            KeyMaterial::from_pem(&format!("{pem}junk")),
            Err(JwkError::Pem(_))
        ));
        assert!(matches!(
            KeyMaterial::from_pem(&pem_wrap("CERTIFICATE", spki.as_bytes())),
            Err(JwkError::Pem(_))
        ));
        assert!(matches!(
            KeyMaterial::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n"),
            Err(JwkError::Pem(_))
        ));
        let bad_b64 = pem.replacen('M', "*", 1);
        assert!(matches!(
            KeyMaterial::from_pem(&bad_b64),
            Err(JwkError::Pem(_))
        ));
        // DER with trailing garbage.
        let mut der = spki.as_bytes().to_vec();
        der.push(0);
        assert_eq!(
            KeyMaterial::from_spki_der(&der).unwrap_err(),
            JwkError::InvalidKey(KeySkipReason::Malformed)
        );

        // EC and Ed25519 SPKI built by hand.
        let ec = ec_spki(&hex("2a8648ce3d030107"), &{
            let mut p = vec![4u8];
            p.extend(b64::decode_strict(EC_X).unwrap());
            p.extend(b64::decode_strict(EC_Y).unwrap());
            p
        });
        let m = KeyMaterial::from_spki_der(&ec).unwrap();
        assert!(m.fits(Alg::Es256));
        let mut off = ec.clone();
        let last = off.len() - 1;
        off[last] ^= 1;
        assert_eq!(
            KeyMaterial::from_spki_der(&off).unwrap_err(),
            JwkError::InvalidKey(KeySkipReason::NotOnCurve)
        );
        let mut ed = hex("302a300506032b6570032100");
        ed.extend(b64::decode_strict("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap());
        assert!(KeyMaterial::from_spki_der(&ed).unwrap().fits(Alg::EdDsa));
        let pem_ed = pem_wrap("PUBLIC KEY", &ed);
        assert_eq!(
            parse_key_set(&pem_ed, &opts()).unwrap().keys[0]
                .material
                .kty(),
            "OKP"
        );
    }

    #[test]
    fn weak_rsa_pem_is_no_valid_keys() {
        let n = b64::decode_strict(RSA1024_N).unwrap();
        let der = pkcs1_der(&n, &[1, 0, 1]);
        let pem = pem_wrap("RSA PUBLIC KEY", &der);
        assert_eq!(
            parse_key_set(&pem, &opts()).unwrap_err(),
            JwkError::NoValidKeys { skipped: 1 }
        );
        let set = parse_key_set_lenient(&pem, &opts()).unwrap();
        assert_eq!(set.skipped[0].reason, KeySkipReason::WeakRsa);
    }

    #[test]
    fn reason_codes_are_stable() {
        assert_eq!(KeySkipReason::HmacTooShort.as_str(), "hmac_too_short");
        assert_eq!(KeySkipReason::NotOnCurve.to_string(), "not_on_curve");
        assert_eq!(
            JwkError::NoValidKeys { skipped: 3 }.to_string(),
            "key set has no usable keys (3 skipped)"
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn der_len(len: usize) -> Vec<u8> {
        if len < 128 {
            vec![len as u8]
        } else if len < 256 {
            vec![0x81, len as u8]
        } else {
            vec![0x82, (len >> 8) as u8, len as u8]
        }
    }

    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend(der_len(body.len()));
        v.extend_from_slice(body);
        v
    }

    fn pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
        let mut n_int = vec![0u8];
        n_int.extend_from_slice(n);
        let mut body = tlv(0x02, &n_int);
        body.extend(tlv(0x02, e));
        tlv(0x30, &body)
    }

    fn ec_spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
        let mut alg = tlv(0x06, &hex("2a8648ce3d0201"));
        alg.extend(tlv(0x06, curve_oid));
        let mut bits = vec![0u8];
        bits.extend_from_slice(point);
        let mut body = tlv(0x30, &alg);
        body.extend(tlv(0x03, &bits));
        tlv(0x30, &body)
    }
}
