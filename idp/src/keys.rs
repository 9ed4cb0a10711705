//! Signing keys: generation, PKCS#8 PEM persistence, public JWK form and token
//! signing. One type hides the three algorithms so that the key store and the
//! minter never branch on them, and so that no code path outside this module
//! ever touches private key bytes.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Ed25519, Es256, Rsa};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use rand::rngs::OsRng;
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

/// RSA keys shorter than this are refused: RFC 7518 §3.3 requires 2048 bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Upper bound so that a typo cannot start a key generation that runs for minutes.
pub const MAX_RSA_BITS: usize = 4096;
/// A PKCS#8 PEM of a 4096-bit RSA key is about 3.3 KB; anything far larger is not ours.
const MAX_PEM_BYTES: usize = 16 * 1024;

/// The signature algorithms the IdP can sign with; the names are the JWS `alg` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the most widely accepted algorithm).
    Rs256,
    /// ECDSA P-256 with SHA-256 (small keys and tokens; the default).
    Es256,
    /// Ed25519 (`alg: EdDSA`, `crv: Ed25519`).
    EdDsa,
}

impl Alg {
    /// The JWS `alg` name, used in token headers, JWKs and the key manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Alg::Rs256, Alg::Es256, Alg::EdDsa]
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or(KeyError::UnknownAlg)
    }
}

/// Why a key could not be made, read or used. Messages never include key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm name is not RS256, ES256 or EdDSA.
    UnknownAlg,
    /// The requested or stored RSA modulus is outside 2048..=4096 bits.
    RsaBits,
    /// The random number generator or the key generator failed.
    Generate,
    /// The private key could not be encoded as PKCS#8 PEM.
    Encode,
    /// The PEM is not a PKCS#8 private key of the expected algorithm.
    Decode,
    /// The PEM is larger than any key this IdP writes.
    TooLarge,
    /// The claims could not be serialized or signed.
    Sign,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::UnknownAlg => "unknown algorithm (expected RS256, ES256 or EdDSA)",
            KeyError::RsaBits => "rsa key size must be between 2048 and 4096 bits",
            KeyError::Generate => "key generation failed",
            KeyError::Encode => "cannot encode private key",
            KeyError::Decode => "cannot decode private key",
            KeyError::TooLarge => "private key file too large",
            KeyError::Sign => "cannot sign token",
        })
    }
}

impl std::error::Error for KeyError {}

/// A private signing key of one of the supported algorithms.
pub enum SigningKey {
    /// RSA private key used with RS256.
    Rs256(Box<rsa::RsaPrivateKey>),
    /// P-256 private key used with ES256.
    Es256(p256::ecdsa::SigningKey),
    /// Ed25519 private key used with EdDSA.
    EdDsa(ed25519_compact::SecretKey),
}

/// Deliberately prints only the algorithm: a stray `{:?}` must never leak key bytes.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.alg())
    }
}

impl SigningKey {
    /// Creates a fresh key from the OS random number generator.
    pub fn generate(alg: Alg, rsa_bits: usize) -> Result<Self, KeyError> {
        match alg {
            Alg::Rs256 => {
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&rsa_bits) {
                    return Err(KeyError::RsaBits);
                }
                rsa::RsaPrivateKey::new(&mut OsRng, rsa_bits)
                    .map(|k| SigningKey::Rs256(Box::new(k)))
                    .map_err(|_| KeyError::Generate)
            }
            Alg::Es256 => Ok(SigningKey::Es256(p256::ecdsa::SigningKey::random(
                &mut OsRng,
            ))),
            Alg::EdDsa => Ok(SigningKey::EdDsa(Ed25519::generate(&mut OsRng).0)),
        }
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        match self {
            SigningKey::Rs256(_) => Alg::Rs256,
            SigningKey::Es256(_) => Alg::Es256,
            SigningKey::EdDsa(_) => Alg::EdDsa,
        }
    }

    /// Encodes the key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), wiped from memory on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        match self {
            SigningKey::Rs256(key) => {
                rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&**key, rsa::pkcs8::LineEnding::LF)
                    .map_err(|_| KeyError::Encode)
            }
            SigningKey::Es256(key) => key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|_| KeyError::Encode),
            SigningKey::EdDsa(key) => Ok(Zeroizing::new(key.to_pem())),
        }
    }

    /// Decodes a PKCS#8 PEM written by [`SigningKey::to_pkcs8_pem`], insisting on `alg`
    /// so that a swapped file cannot silently change the signing algorithm.
    pub fn from_pkcs8_pem(alg: Alg, pem: &str) -> Result<Self, KeyError> {
        if pem.len() > MAX_PEM_BYTES {
            return Err(KeyError::TooLarge);
        }
        match alg {
            Alg::Rs256 => {
                let key = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(pem)
                    .map_err(|_| KeyError::Decode)?;
                let bits = key.n().bits();
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(KeyError::RsaBits);
                }
                Ok(SigningKey::Rs256(Box::new(key)))
            }
            Alg::Es256 => {
                <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(pem)
                    .map(SigningKey::Es256)
                    .map_err(|_| KeyError::Decode)
            }
            Alg::EdDsa => ed25519_compact::SecretKey::from_pem(pem)
                .map(SigningKey::EdDsa)
                .map_err(|_| KeyError::Decode),
        }
    }

    /// Runs `f` on the public half as a jwt-compact JWK (which borrows the key).
    fn with_public_jwk<R>(&self, f: impl FnOnce(&JsonWebKey<'_>) -> R) -> R {
        match self {
            SigningKey::Rs256(key) => f(&JsonWebKey::from(&key.to_public_key())),
            SigningKey::Es256(key) => f(&JsonWebKey::from(key.verifying_key())),
            SigningKey::EdDsa(key) => f(&JsonWebKey::from(&key.public_key())),
        }
    }

    /// The RFC 7638 thumbprint of the public key (base64url SHA-256): a `kid` that
    /// anyone can recompute from the published JWK, so it can never name the wrong key.
    pub fn kid(&self) -> String {
        self.with_public_jwk(|jwk| URL_SAFE_NO_PAD.encode(jwk.thumbprint::<Sha256>()))
    }

    /// The public JWK as published in the JWKS, with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.with_public_jwk(|jwk| match serde_json::to_value(jwk) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        });
        jwk.insert("kid".into(), Value::String(self.kid()));
        jwk.insert("alg".into(), Value::String(self.alg().as_str().into()));
        jwk.insert("use".into(), Value::String("sig".into()));
        Value::Object(jwk)
    }

    /// Signs `claims` as a compact JWS with header `{alg, kid, typ: JWT}`.
    pub fn sign(&self, kid: &str, claims: &Map<String, Value>) -> Result<String, KeyError> {
        let header = Header::empty().with_key_id(kid).with_token_type("JWT");
        let claims = Claims::new(claims);
        match self {
            SigningKey::Rs256(key) => Rsa::rs256().token(&header, &claims, key),
            SigningKey::Es256(key) => Es256.token(&header, &claims, key),
            SigningKey::EdDsa(key) => Ed25519.token(&header, &claims, key),
        }
        .map_err(|_| KeyError::Sign)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;
    use jwt_compact::UntrustedToken;

    /// A fixed 2048-bit RSA test key: generating one in a debug build takes seconds.
    pub(crate) const RSA_TEST_PEM: &str = include_str!("../testdata/rsa2048-test-key.pem");

    /// Verifies `token` against the public JWK exactly as a relying party would:
    /// parse the published JWK, build the verifying key from it, check the signature.
    pub(crate) fn verify_with_jwk(token: &str, jwk: &Value) -> Option<Map<String, Value>> {
        let untrusted = UntrustedToken::new(token).ok()?;
        let parsed: JsonWebKey<'_> = serde_json::from_value(jwk.clone()).ok()?;
        let claims: Claims<Map<String, Value>> = match jwk["alg"].as_str()? {
            "RS256" => {
                let key = rsa::RsaPublicKey::try_from(&parsed).ok()?;
                Rsa::rs256()
                    .validator(&key)
                    .validate(&untrusted)
                    .ok()?
                    .claims()
                    .clone()
            }
            "ES256" => {
                let key = p256::ecdsa::VerifyingKey::try_from(&parsed).ok()?;
                Es256
                    .validator(&key)
                    .validate(&untrusted)
                    .ok()?
                    .claims()
                    .clone()
            }
            "EdDSA" => {
                let key = ed25519_compact::PublicKey::try_from(&parsed).ok()?;
                Ed25519
                    .validator(&key)
                    .validate(&untrusted)
                    .ok()?
                    .claims()
                    .clone()
            }
            _ => return None,
        };
        // The standard time claims are parsed by jwt-compact into typed fields;
        // put them back so callers see the token's payload as sent.
        let mut all = claims.custom.clone();
        if let Some(exp) = claims.expiration {
            all.insert("exp".into(), Value::from(exp.timestamp()));
        }
        if let Some(iat) = claims.issued_at {
            all.insert("iat".into(), Value::from(iat.timestamp()));
        }
        Some(all)
    }

    fn sample_claims() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sub".into(), Value::from("alice"));
        m
    }

    fn all_keys() -> Vec<SigningKey> {
        vec![
            SigningKey::from_pkcs8_pem(Alg::Rs256, RSA_TEST_PEM).unwrap(),
            SigningKey::generate(Alg::Es256, 0).unwrap(),
            SigningKey::generate(Alg::EdDsa, 0).unwrap(),
        ]
    }

    #[test]
    fn alg_names_round_trip_and_reject_others() {
        for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
            assert_eq!(alg.as_str().parse::<Alg>().unwrap(), alg);
        }
        assert_eq!("eddsa".parse::<Alg>().unwrap(), Alg::EdDsa);
        for bad in ["HS256", "none", "", "RS512", "ES384"] {
            assert_eq!(bad.parse::<Alg>(), Err(KeyError::UnknownAlg), "{bad}");
        }
    }

    #[test]
    fn rsa_below_2048_bits_is_refused_before_generating() {
        assert_eq!(
            SigningKey::generate(Alg::Rs256, 1024).unwrap_err(),
            KeyError::RsaBits
        );
        assert_eq!(
            SigningKey::generate(Alg::Rs256, 8192).unwrap_err(),
            KeyError::RsaBits
        );
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        for key in all_keys() {
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{key:?}");
            let back = SigningKey::from_pkcs8_pem(key.alg(), &pem).unwrap();
            assert_eq!(back.kid(), key.kid());
            assert_eq!(back.alg(), key.alg());
        }
    }

    #[test]
    fn pem_of_another_algorithm_is_refused() {
        let es = SigningKey::generate(Alg::Es256, 0).unwrap();
        let pem = es.to_pkcs8_pem().unwrap();
        assert_eq!(
            SigningKey::from_pkcs8_pem(Alg::EdDsa, &pem).unwrap_err(),
            KeyError::Decode
        );
        assert_eq!(
            SigningKey::from_pkcs8_pem(Alg::Rs256, &pem).unwrap_err(),
            KeyError::Decode
        );
        assert_eq!(
            SigningKey::from_pkcs8_pem(Alg::Es256, "garbage").unwrap_err(),
            KeyError::Decode
        );
        let huge = "A".repeat(MAX_PEM_BYTES + 1);
        assert_eq!(
            SigningKey::from_pkcs8_pem(Alg::Es256, &huge).unwrap_err(),
            KeyError::TooLarge
        );
    }

    #[test]
    fn public_jwk_has_no_private_parts_and_a_thumbprint_kid() {
        let expected_kty = ["RSA", "EC", "OKP"];
        for (key, kty) in all_keys().into_iter().zip(expected_kty) {
            let jwk = key.public_jwk();
            assert_eq!(jwk["kty"], kty);
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], key.alg().as_str());
            assert_eq!(jwk["kid"], key.kid());
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
                assert!(jwk.get(private).is_none(), "{kty} jwk has {private}");
            }
            // 32-byte SHA-256, base64url without padding.
            assert_eq!(key.kid().len(), 43);
        }
    }

    #[test]
    fn signed_token_verifies_with_the_public_jwk_only() {
        for key in all_keys() {
            let kid = key.kid();
            let token = key.sign(&kid, &sample_claims()).unwrap();
            let untrusted = UntrustedToken::new(&token).unwrap();
            assert_eq!(untrusted.algorithm(), key.alg().as_str());
            assert_eq!(untrusted.header().key_id.as_deref(), Some(kid.as_str()));
            assert_eq!(untrusted.header().token_type.as_deref(), Some("JWT"));
            let claims = verify_with_jwk(&token, &key.public_jwk()).unwrap();
            assert_eq!(claims["sub"], "alice");
        }
    }

    #[test]
    fn token_does_not_verify_with_another_key() {
        let a = SigningKey::generate(Alg::Es256, 0).unwrap();
        let b = SigningKey::generate(Alg::Es256, 0).unwrap();
        let token = a.sign(&a.kid(), &sample_claims()).unwrap();
        assert!(verify_with_jwk(&token, &b.public_jwk()).is_none());
        // A tampered payload fails too.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory"}"#);
        parts[1] = &forged;
        assert!(verify_with_jwk(&parts.join("."), &a.public_jwk()).is_none());
    }

    #[test]
    fn debug_output_hides_key_material() {
        for key in all_keys() {
            let shown = format!("{key:?}");
            assert_eq!(shown, format!("SigningKey({})", key.alg()));
        }
    }
}
