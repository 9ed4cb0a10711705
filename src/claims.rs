//! JWT claim set: typed parse of the registered claims, and jwt_authn's checks.
//!
//! Semantics follow jwt_verify_lib (inside Envoy's jwt_authn): `exp`/`nbf`/`iat`
//! must be non-negative integers when present, `iss`/`sub`/`jti` strings, `aud`
//! a string or a list of strings; `iat` is parsed but never judged; time uses
//! `now + skew < nbf` and `now > exp + skew`. Audiences compare after dropping
//! an `http(s)://` scheme and a trailing '/', as jwt_verify_lib's CheckAudience.

use crate::config::matcher::StringMatcher;
use serde_json::{Map, Value};
use std::fmt;

/// Why a claim set was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsError {
    /// Payload is not a JSON object, or a registered claim has the wrong type.
    Malformed(&'static str),
    /// `exp` is in the past (beyond skew).
    Expired,
    /// `nbf` is in the future (beyond skew).
    NotYetValid,
    /// `iss` differs from the provider's issuer.
    Issuer,
    /// No `aud` value is allowed.
    Audience,
    /// `sub` does not satisfy `subjects`.
    Subject,
    /// `require_expiration` without `exp`, or `max_lifetime` exceeded.
    Lifetime,
}

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimsError::Malformed(what) => write!(f, "malformed claims: {what}"),
            ClaimsError::Expired => f.write_str("token is expired"),
            ClaimsError::NotYetValid => f.write_str("token is not yet valid"),
            ClaimsError::Issuer => f.write_str("issuer is not allowed"),
            ClaimsError::Audience => f.write_str("audience is not allowed"),
            ClaimsError::Subject => f.write_str("subject is not allowed"),
            ClaimsError::Lifetime => f.write_str("token lifetime is not allowed"),
        }
    }
}

impl std::error::Error for ClaimsError {}

/// Registered claims, typed, plus the whole object for header mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `iss` ("" when absent, as jwt_verify_lib).
    pub iss: String,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, normalised to a list.
    pub aud: Vec<String>,
    /// `exp` (0 = absent, as jwt_verify_lib).
    pub exp: u64,
    /// `nbf` (0 = absent).
    pub nbf: u64,
    /// `iat` (0 = absent); parsed, never judged.
    pub iat: u64,
    /// The full claim set.
    pub object: Map<String, Value>,
}

fn uint_claim(
    obj: &Map<String, Value>,
    name: &'static str,
    err: &'static str,
) -> Result<u64, ClaimsError> {
    match obj.get(name) {
        None => Ok(0),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                return Ok(u);
            }
            // jwt_verify_lib reads JSON numbers as doubles and truncates: `now + 3600.5`
            // is accepted. Negative or out-of-range values are refused.
            match n.as_f64() {
                Some(f) if (0.0..1.8e19).contains(&f) => Ok(f as u64),
                _ => Err(ClaimsError::Malformed(err)),
            }
        }
        Some(_) => Err(ClaimsError::Malformed(err)),
    }
}

fn string_claim(
    obj: &Map<String, Value>,
    name: &'static str,
    err: &'static str,
) -> Result<Option<String>, ClaimsError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ClaimsError::Malformed(err)),
    }
}

impl Claims {
    /// Parses an (already strict-JSON-parsed) payload value.
    pub fn from_value(v: Value) -> Result<Claims, ClaimsError> {
        let Value::Object(object) = v else {
            return Err(ClaimsError::Malformed("payload is not a JSON object"));
        };
        let iss = string_claim(&object, "iss", "iss is not a string")?.unwrap_or_default();
        let sub = string_claim(&object, "sub", "sub is not a string")?;
        string_claim(&object, "jti", "jti is not a string")?;
        let aud = match object.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    match i {
                        Value::String(s) => out.push(s.clone()),
                        _ => {
                            return Err(ClaimsError::Malformed(
                                "aud is not a string or a list of strings",
                            ))
                        }
                    }
                }
                out
            }
            Some(_) => {
                return Err(ClaimsError::Malformed(
                    "aud is not a string or a list of strings",
                ))
            }
        };
        let exp = uint_claim(&object, "exp", "exp is not a non-negative integer")?;
        let nbf = uint_claim(&object, "nbf", "nbf is not a non-negative integer")?;
        let iat = uint_claim(&object, "iat", "iat is not a non-negative integer")?;
        Ok(Claims {
            iss,
            sub,
            aud,
            exp,
            nbf,
            iat,
            object,
        })
    }

    /// Time window check (jwt_verify_lib order: nbf first, then exp).
    pub fn check_time(&self, now: u64, skew: u64) -> Result<(), ClaimsError> {
        if now.saturating_add(skew) < self.nbf {
            return Err(ClaimsError::NotYetValid);
        }
        if self.exp != 0 && now > self.exp.saturating_add(skew) {
            return Err(ClaimsError::Expired);
        }
        Ok(())
    }

    /// `require_expiration` and `max_lifetime`, as Envoy 1.40 measures them: a
    /// token must say when it ends, and `exp - iat` must not exceed the maximum
    /// (a token without `iat` is not measured).
    pub fn check_lifetime(
        &self,
        require_exp: bool,
        max_lifetime_secs: Option<u64>,
    ) -> Result<(), ClaimsError> {
        if (require_exp || max_lifetime_secs.is_some()) && self.exp == 0 {
            return Err(ClaimsError::Lifetime);
        }
        if let Some(max) = max_lifetime_secs {
            if self.iat != 0 && self.exp.saturating_sub(self.iat) > max {
                return Err(ClaimsError::Lifetime);
            }
        }
        Ok(())
    }

    /// `subjects` matcher: a token without `sub` never matches.
    pub fn check_subject(&self, matcher: Option<&StringMatcher>) -> Result<(), ClaimsError> {
        match matcher {
            None => Ok(()),
            Some(m) => match &self.sub {
                Some(s) if m.matches(s) => Ok(()),
                _ => Err(ClaimsError::Subject),
            },
        }
    }

    /// Audience check; an empty allowed list accepts everything.
    pub fn check_audience(&self, allowed: &[String]) -> Result<(), ClaimsError> {
        if allowed.is_empty() {
            return Ok(());
        }
        let ok = self.aud.iter().any(|a| {
            allowed
                .iter()
                .any(|b| sanitize_audience(a) == sanitize_audience(b))
        });
        if ok {
            Ok(())
        } else {
            Err(ClaimsError::Audience)
        }
    }

    /// A claim by dotted path (`realm.role`); jwt_authn's nested-claim lookup.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut cur = self.object.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_object()?.get(p)?;
        }
        Some(cur)
    }
}

/// jwt_verify_lib's audience normalisation.
fn sanitize_audience(a: &str) -> &str {
    let a = a
        .strip_prefix("http://")
        .or_else(|| a.strip_prefix("https://"))
        .unwrap_or(a);
    a.strip_suffix('/').unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(v: Value) -> Result<Claims, ClaimsError> {
        Claims::from_value(v)
    }

    #[test]
    fn registered_claim_types() {
        let ok =
            c(json!({"iss":"i","sub":"s","aud":["a","b"],"exp":10,"nbf":1,"iat":2.0})).unwrap();
        assert_eq!(
            (ok.iss.as_str(), ok.aud.len(), ok.exp, ok.iat),
            ("i", 2, 10, 2)
        );
        assert_eq!(
            c(json!({"exp": 10.5})).unwrap().exp,
            10,
            "truncated, as jwt_verify_lib"
        );
        for bad in [
            json!({"exp":"10"}),
            json!({"exp":-1.5}),
            json!({"exp":-1}),
            json!({"exp":1e300}),
            json!({"nbf":true}),
            json!({"iat":"x"}),
            json!({"aud":{"a":1}}),
            json!({"aud":[1]}),
            json!({"iss":1}),
            json!({"sub":[]}),
            json!({"jti":5}),
            json!([1]),
        ] {
            assert!(
                matches!(c(bad.clone()), Err(ClaimsError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn time_window_with_skew() {
        let t = c(json!({"exp":1000,"nbf":500})).unwrap();
        assert_eq!(t.check_time(1000, 60), Ok(()));
        assert_eq!(t.check_time(1060, 60), Ok(()));
        assert_eq!(t.check_time(1061, 60), Err(ClaimsError::Expired));
        assert_eq!(t.check_time(440, 60), Ok(()));
        assert_eq!(t.check_time(439, 60), Err(ClaimsError::NotYetValid));
        let no_exp = c(json!({})).unwrap();
        assert_eq!(no_exp.check_time(u64::MAX, 60), Ok(()));
        let huge = c(json!({"exp": u64::MAX})).unwrap();
        assert_eq!(huge.check_time(u64::MAX, 60), Ok(()));
    }

    #[test]
    fn lifetime_rules() {
        let no_exp = c(json!({})).unwrap();
        assert_eq!(no_exp.check_lifetime(false, None), Ok(()));
        assert_eq!(
            no_exp.check_lifetime(true, None),
            Err(ClaimsError::Lifetime)
        );
        assert_eq!(
            no_exp.check_lifetime(false, Some(100)),
            Err(ClaimsError::Lifetime)
        );
        let t = c(json!({"iat":100,"exp":400})).unwrap();
        assert_eq!(t.check_lifetime(false, Some(300)), Ok(()));
        assert_eq!(
            t.check_lifetime(false, Some(299)),
            Err(ClaimsError::Lifetime)
        );
        let no_iat = c(json!({"exp":400000})).unwrap();
        assert_eq!(
            no_iat.check_lifetime(false, Some(100)),
            Ok(()),
            "not measured without iat, as Envoy"
        );
    }

    #[test]
    fn audiences_like_jwt_verify_lib() {
        let t = c(json!({"aud":"https://api.example.com/"})).unwrap();
        assert_eq!(t.check_audience(&[]), Ok(()));
        assert_eq!(t.check_audience(&["api.example.com".into()]), Ok(()));
        assert_eq!(t.check_audience(&["http://api.example.com".into()]), Ok(()));
        assert_eq!(
            t.check_audience(&["other".into()]),
            Err(ClaimsError::Audience)
        );
        let none = c(json!({})).unwrap();
        assert_eq!(
            none.check_audience(&["a".into()]),
            Err(ClaimsError::Audience)
        );
    }

    #[test]
    fn nested_claims_by_dots() {
        let t = c(json!({"realm":{"role":"admin","deep":{"x":1}}})).unwrap();
        assert_eq!(t.get_path("realm.role"), Some(&json!("admin")));
        assert_eq!(t.get_path("realm.deep.x"), Some(&json!(1)));
        assert_eq!(t.get_path("realm.missing"), None);
        assert_eq!(t.get_path("realm.role.x"), None);
    }
}
