//! Token claims: one function builds the claim set for both the offline minter
//! (`jwt-idp mint`) and the login endpoint, so tests and the demo get tokens of
//! exactly the same shape.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde_json::{Map, Value};

use crate::keys::KeyError;
use crate::keystore::{KeyStore, StoreError};

/// Longest lifetime a token may be given (one year): a bound, not a recommendation.
pub const MAX_TTL: u64 = 366 * 24 * 3600;
/// Most extra `--claim` entries accepted.
pub const MAX_EXTRA_CLAIMS: usize = 64;
/// Bound on the serialized claim set, so a token always fits in a request header.
pub const MAX_CLAIMS_BYTES: usize = 8 * 1024;
const MAX_CLAIM_NAME: usize = 128;

/// Why a token could not be minted.
#[derive(Debug)]
#[non_exhaustive]
pub enum MintError {
    /// `ttl` is above [`MAX_TTL`] or `now + ttl` overflows.
    Ttl,
    /// A `--claim` is not `NAME=JSON` with a short non-empty name and valid JSON.
    BadClaim,
    /// More than [`MAX_EXTRA_CLAIMS`] extra claims.
    TooManyClaims,
    /// The claim set is larger than [`MAX_CLAIMS_BYTES`].
    TooLarge,
    /// A required string (`iss`, `aud`, `sub`) is empty.
    Empty(&'static str),
    /// The key store has no usable key.
    Store(StoreError),
    /// Signing failed.
    Sign(KeyError),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintError::Ttl => write!(f, "ttl must be at most {MAX_TTL} seconds"),
            MintError::BadClaim => f.write_str("claim must be NAME=JSON (e.g. tenant=\"acme\")"),
            MintError::TooManyClaims => {
                write!(f, "at most {MAX_EXTRA_CLAIMS} extra claims")
            }
            MintError::TooLarge => write!(f, "claims larger than {MAX_CLAIMS_BYTES} bytes"),
            MintError::Empty(name) => write!(f, "{name} must not be empty"),
            MintError::Store(e) => write!(f, "{e}"),
            MintError::Sign(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MintError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MintError::Store(e) => Some(e),
            MintError::Sign(e) => Some(e),
            _ => None,
        }
    }
}

/// Everything that goes into one token.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    /// `iss`.
    pub issuer: String,
    /// `aud` (a single audience, as a string).
    pub audience: String,
    /// `sub`.
    pub subject: String,
    /// `role`, omitted when `None`.
    pub role: Option<String>,
    /// `scope`, a space-delimited string (RFC 8693 §4.2), omitted when `None`.
    pub scope: Option<String>,
    /// Seconds from `iat` to `exp`.
    pub ttl: u64,
    /// Unix seconds used for `iat`.
    pub now: u64,
    /// Extra claims, applied last so that tests can override any standard claim
    /// (e.g. `exp` in the past, `aud` as an array).
    pub extra: Vec<(String, Value)>,
}

/// Parses one `--claim NAME=JSON` argument.
pub fn parse_claim(arg: &str) -> Result<(String, Value), MintError> {
    let (name, json) = arg.split_once('=').ok_or(MintError::BadClaim)?;
    if name.is_empty() || name.len() > MAX_CLAIM_NAME || json.len() > MAX_CLAIMS_BYTES {
        return Err(MintError::BadClaim);
    }
    let value: Value = serde_json::from_str(json).map_err(|_| MintError::BadClaim)?;
    Ok((name.to_owned(), value))
}

/// A random `jti`: 128 bits from the OS generator, base64url.
fn new_jti() -> String {
    let mut bytes = [0_u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claim set of `spec`: `iss`, `aud`, `sub`, `role`, `scope`, `iat`, `exp`,
/// `jti`, then the extra claims.
pub fn build_claims(spec: &TokenSpec) -> Result<Map<String, Value>, MintError> {
    for (name, value) in [
        ("iss", &spec.issuer),
        ("aud", &spec.audience),
        ("sub", &spec.subject),
    ] {
        if value.is_empty() {
            return Err(MintError::Empty(name));
        }
    }
    if spec.ttl > MAX_TTL {
        return Err(MintError::Ttl);
    }
    if spec.extra.len() > MAX_EXTRA_CLAIMS {
        return Err(MintError::TooManyClaims);
    }
    let exp = spec.now.checked_add(spec.ttl).ok_or(MintError::Ttl)?;
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::from(spec.issuer.as_str()));
    claims.insert("aud".into(), Value::from(spec.audience.as_str()));
    claims.insert("sub".into(), Value::from(spec.subject.as_str()));
    if let Some(role) = &spec.role {
        claims.insert("role".into(), Value::from(role.as_str()));
    }
    if let Some(scope) = &spec.scope {
        claims.insert("scope".into(), Value::from(scope.as_str()));
    }
    claims.insert("iat".into(), Value::from(spec.now));
    claims.insert("exp".into(), Value::from(exp));
    claims.insert("jti".into(), Value::from(new_jti()));
    for (name, value) in &spec.extra {
        claims.insert(name.clone(), value.clone());
    }
    let size = serde_json::to_vec(&claims).map_or(usize::MAX, |v| v.len());
    if size > MAX_CLAIMS_BYTES {
        return Err(MintError::TooLarge);
    }
    Ok(claims)
}

/// Signs a token for `spec` with the store's active key.
pub fn mint(store: &KeyStore, spec: &TokenSpec) -> Result<String, MintError> {
    let claims = build_claims(spec)?;
    let (kid, key) = store.active().map_err(MintError::Store)?;
    key.sign(kid, &claims).map_err(MintError::Sign)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::keys::tests::verify_with_jwk;
    use crate::keys::Alg;
    use crate::keystore::Retire;

    fn spec() -> TokenSpec {
        TokenSpec {
            issuer: "http://127.0.0.1:8081".into(),
            audience: "demo-api".into(),
            subject: "alice".into(),
            role: Some("admin".into()),
            scope: Some("payments:write orders:read".into()),
            ttl: 300,
            now: 1_700_000_000,
            extra: Vec::new(),
        }
    }

    #[test]
    fn claims_have_the_documented_shape() {
        let c = build_claims(&spec()).unwrap();
        assert_eq!(c["iss"], "http://127.0.0.1:8081");
        assert_eq!(c["aud"], "demo-api");
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["role"], "admin");
        assert_eq!(c["scope"], "payments:write orders:read");
        assert_eq!(c["iat"], 1_700_000_000_u64);
        assert_eq!(c["exp"], 1_700_000_300_u64);
        assert_eq!(c["jti"].as_str().unwrap().len(), 22);
        let mut no_role = spec();
        no_role.role = None;
        no_role.scope = None;
        let c = build_claims(&no_role).unwrap();
        assert!(c.get("role").is_none() && c.get("scope").is_none());
    }

    #[test]
    fn jti_is_unique_per_token() {
        let a = build_claims(&spec()).unwrap();
        let b = build_claims(&spec()).unwrap();
        assert_ne!(a["jti"], b["jti"]);
    }

    #[test]
    fn extra_claims_are_added_and_override() {
        let mut s = spec();
        s.extra = vec![
            parse_claim(r#"aud=["a","b"]"#).unwrap(),
            parse_claim("exp=5").unwrap(),
            parse_claim(r#"tenant={"id":"acme"}"#).unwrap(),
            parse_claim(r#"x="a=b""#).unwrap(),
        ];
        let c = build_claims(&s).unwrap();
        assert_eq!(c["aud"], serde_json::json!(["a", "b"]));
        assert_eq!(c["exp"], 5);
        assert_eq!(c["tenant"]["id"], "acme");
        assert_eq!(c["x"], "a=b");
    }

    #[test]
    fn bad_claims_and_bounds_are_errors() {
        for bad in [
            "noequals",
            "=1",
            "x=",
            "x=not json",
            "x={",
            &format!("{}=1", "n".repeat(129)),
        ] {
            assert!(
                matches!(parse_claim(bad), Err(MintError::BadClaim)),
                "{bad}"
            );
        }
        let mut s = spec();
        s.ttl = MAX_TTL + 1;
        assert!(matches!(build_claims(&s), Err(MintError::Ttl)));
        let mut s = spec();
        s.now = u64::MAX;
        assert!(matches!(build_claims(&s), Err(MintError::Ttl)));
        let mut s = spec();
        s.extra = (0..=MAX_EXTRA_CLAIMS)
            .map(|i| (format!("c{i}"), Value::from(i)))
            .collect();
        assert!(matches!(build_claims(&s), Err(MintError::TooManyClaims)));
        let mut s = spec();
        s.extra = vec![("big".into(), Value::from("x".repeat(MAX_CLAIMS_BYTES)))];
        assert!(matches!(build_claims(&s), Err(MintError::TooLarge)));
        for field in ["iss", "aud", "sub"] {
            let mut s = spec();
            match field {
                "iss" => s.issuer.clear(),
                "aud" => s.audience.clear(),
                _ => s.subject.clear(),
            }
            assert!(matches!(build_claims(&s), Err(MintError::Empty(f)) if f == field));
        }
    }

    #[test]
    fn minted_token_verifies_against_the_published_jwks() {
        let dir = std::env::temp_dir().join(format!("jwt-idp-mint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = KeyStore::open(&dir).unwrap();
        assert!(matches!(
            mint(&store, &spec()),
            Err(MintError::Store(StoreError::NoKeys))
        ));
        for alg in [Alg::Es256, Alg::EdDsa] {
            let kid = store.generate(alg, 0, 0, Retire::Keep).unwrap();
            let token = mint(&store, &spec()).unwrap();
            let jwks = store.jwks(0);
            let jwk = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid.as_str())
                .unwrap();
            let claims = verify_with_jwk(&token, jwk).unwrap();
            assert_eq!(claims["sub"], "alice");
            assert_eq!(claims["exp"], 1_700_000_300_i64);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
