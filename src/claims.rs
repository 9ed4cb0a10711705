//! JWT claim set: typed parse of the registered claims, and jwt_authn's checks.
//!
//! Semantics follow jwt_verify_lib (inside Envoy's jwt_authn): `exp`/`nbf`/`iat`
//! must be non-negative integers when present, `iss`/`sub`/`jti` strings, `aud`
//! a string or a list of strings; `iat` is parsed but never judged; time uses
//! `now + skew < nbf` and `now > exp + skew`. Audiences compare after dropping
//! an `http(s)://` scheme and a trailing '/', as jwt_verify_lib's CheckAudience.

use crate::config::matcher::StringMatcher;
use crate::json::{self, Field, JsonError};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

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
///
/// Parsed from a token, the whole object is only built when something asks
/// for it ([`Claims::object`]: claim headers, authorization, metadata): the
/// checks need only the registered claims, and building every member was
/// most of the cost of reading a new token.
#[derive(Debug, Clone)]
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
    /// The full claim set, built on first use from `payload`.
    object: OnceLock<Map<String, Value>>,
    /// The payload JSON it was scanned from (empty when built from a `Value`).
    payload: Box<[u8]>,
}

impl PartialEq for Claims {
    fn eq(&self, other: &Claims) -> bool {
        (
            &self.iss, &self.sub, &self.aud, self.exp, self.nbf, self.iat,
        ) == (
            &other.iss, &other.sub, &other.aud, other.exp, other.nbf, other.iat,
        ) && self.object() == other.object()
    }
}

/// jwt_verify_lib reads JSON numbers as doubles and truncates: `now + 3600.5`
/// is accepted. Negative or out-of-range values are refused.
fn uint_number(n: &Number, err: &'static str) -> Result<u64, ClaimsError> {
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    match n.as_f64() {
        Some(f) if (0.0..1.8e19).contains(&f) => Ok(f as u64),
        _ => Err(ClaimsError::Malformed(err)),
    }
}

fn uint_claim(
    obj: &Map<String, Value>,
    name: &'static str,
    err: &'static str,
) -> Result<u64, ClaimsError> {
    match obj.get(name) {
        None => Ok(0),
        Some(Value::Number(n)) => uint_number(n, err),
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

const ISS_ERR: &str = "iss is not a string";
const SUB_ERR: &str = "sub is not a string";
const JTI_ERR: &str = "jti is not a string";
const AUD_ERR: &str = "aud is not a string or a list of strings";
const EXP_ERR: &str = "exp is not a non-negative integer";
const NBF_ERR: &str = "nbf is not a non-negative integer";
const IAT_ERR: &str = "iat is not a non-negative integer";

fn scanned_string(f: Option<Field<'_>>, err: &'static str) -> Result<Option<String>, ClaimsError> {
    match f {
        None => Ok(None),
        Some(Field::Str(s)) => Ok(Some(s.into_owned())),
        Some(_) => Err(ClaimsError::Malformed(err)),
    }
}

fn scanned_uint(f: Option<Field<'_>>, err: &'static str) -> Result<u64, ClaimsError> {
    match f {
        None => Ok(0),
        Some(Field::Num(n)) => uint_number(&n, err),
        Some(_) => Err(ClaimsError::Malformed(err)),
    }
}

impl Claims {
    /// Parses an (already strict-JSON-parsed) payload value.
    pub fn from_value(v: Value) -> Result<Claims, ClaimsError> {
        let Value::Object(object) = v else {
            return Err(ClaimsError::Malformed("payload is not a JSON object"));
        };
        let iss = string_claim(&object, "iss", ISS_ERR)?.unwrap_or_default();
        let sub = string_claim(&object, "sub", SUB_ERR)?;
        string_claim(&object, "jti", JTI_ERR)?;
        let aud = match object.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    match i {
                        Value::String(s) => out.push(s.clone()),
                        _ => return Err(ClaimsError::Malformed(AUD_ERR)),
                    }
                }
                out
            }
            Some(_) => return Err(ClaimsError::Malformed(AUD_ERR)),
        };
        let exp = uint_claim(&object, "exp", EXP_ERR)?;
        let nbf = uint_claim(&object, "nbf", NBF_ERR)?;
        let iat = uint_claim(&object, "iat", IAT_ERR)?;
        Ok(Claims {
            iss,
            sub,
            aud,
            exp,
            nbf,
            iat,
            object: OnceLock::from(object),
            payload: Box::default(),
        })
    }

    /// Parses a token's payload JSON: the same verdicts as
    /// `json::parse_strict` then [`Claims::from_value`] (a test replays both
    /// on many documents), without building the object until asked.
    pub fn from_json(payload: &[u8]) -> Result<Claims, ClaimsError> {
        let malformed = |_| ClaimsError::Malformed("payload is not strict JSON");
        let [iss, sub, jti, aud, exp, nbf, iat] = json::scan_object(
            payload,
            json::DEFAULT_MAX_DEPTH,
            ["iss", "sub", "jti", "aud", "exp", "nbf", "iat"],
        )
        .map_err(|e| match e {
            JsonError::NotAnObject => ClaimsError::Malformed("payload is not a JSON object"),
            other => malformed(other),
        })?;
        let iss = scanned_string(iss, ISS_ERR)?.unwrap_or_default();
        let sub = scanned_string(sub, SUB_ERR)?;
        if !matches!(jti, None | Some(Field::Str(_))) {
            return Err(ClaimsError::Malformed(JTI_ERR));
        }
        let aud = match aud {
            None => Vec::new(),
            Some(Field::Str(s)) => vec![s.into_owned()],
            Some(Field::StrList(items)) => items.into_iter().map(Cow::into_owned).collect(),
            Some(_) => return Err(ClaimsError::Malformed(AUD_ERR)),
        };
        Ok(Claims {
            iss,
            sub,
            aud,
            exp: scanned_uint(exp, EXP_ERR)?,
            nbf: scanned_uint(nbf, NBF_ERR)?,
            iat: scanned_uint(iat, IAT_ERR)?,
            object: OnceLock::new(),
            payload: payload.into(),
        })
    }

    /// The whole claim set. Built on first use for claims read from a
    /// token; that build re-reads what `from_json` already accepted, so it
    /// cannot fail (were it to, the set would look empty: claims that are
    /// not there never admit anything).
    pub fn object(&self) -> &Map<String, Value> {
        self.object.get_or_init(|| {
            json::parse_object(&self.payload, json::DEFAULT_MAX_DEPTH).unwrap_or_default()
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

    /// A claim's value by dotted path, as [`Claims::get_path`] finds it, but
    /// `sub` and `iss` (the usual identity headers) come from the typed
    /// fields, so copying them does not build the whole object.
    pub fn claim_value(&self, path: &str) -> Option<Value> {
        match path {
            "sub" => self.sub.clone().map(Value::String),
            "iss" if !self.iss.is_empty() => Some(Value::String(self.iss.clone())),
            _ => self.get_path(path).cloned(),
        }
    }

    /// A claim by dotted path (`realm.role`); jwt_authn's nested-claim lookup.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut cur = self.object().get(parts.next()?)?;
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

    /// The full parse the request path used before `from_json`.
    fn via_value(doc: &[u8]) -> Option<Claims> {
        let v = crate::json::parse_strict(doc, crate::json::DEFAULT_MAX_DEPTH).ok()?;
        Claims::from_value(v).ok()
    }

    const DOCS: &[&str] = &[
        r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":10,"nbf":1,"iat":2.0,"x":{"y":[1,{"z":null}]}}"#,
        r#"{"iss":"i","aud":"a","exp":1.5e9,"scope":"read write","realm":{"role":"admin"}}"#,
        r#"{"\u0069ss":"escaped name","s\u00fcb":1,"aud":[],"e\"x":true}"#,
        r#"{"iss":"a\"b\\c\/d\n\u00e9\ud83d\ude00","jti":"j"}"#,
        r#"{"iss":"i","iss":"j"}"#,
        r#"{"iss":"i","\u0069ss":"j"}"#,
        r#"{"a":{"b":1,"b":2}}"#,
        r#"{"a":[{"b":1},{"b":2}],"c":[[[[[]]]]]}"#,
        r#"{"iss":1}"#,
        r#"{"sub":["s"]}"#,
        r#"{"jti":{}}"#,
        r#"{"aud":["a",1]}"#,
        r#"{"aud":["a",["b"]]}"#,
        r#"{"aud":{"a":1}}"#,
        r#"{"aud":null}"#,
        r#"{"exp":-1}"#,
        r#"{"exp":-0}"#,
        r#"{"exp":1.8e19}"#,
        r#"{"exp":1.7e19}"#,
        r#"{"exp":18446744073709551615}"#,
        r#"{"exp":18446744073709551616}"#,
        r#"{"exp":1e400}"#,
        r#"{"nbf":"1"}"#,
        r#"{"iat":true}"#,
        r#"{"exp":0.0000001}"#,
        r#"{"x":1e400}"#,
        r#"{"x":01}"#,
        r#"{"x":"\ud800"}"#,
        r#"{"x":"\udc00"}"#,
        r#"{"x":"\ud800\u0041"}"#,
        r#"{"x":"tab	here"}"#,
        r#"{"x":1,}"#,
        r#"{"x":1} "#,
        " \t\r\n{ \"x\" : [ 1 , 2 ] }\n",
        r#"{"x":1}x"#,
        r#"[{"iss":"i"}]"#,
        r#""iss""#,
        "7",
        "",
        "{",
        "{}",
        r#"{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"#,
        r#"{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"#,
        r#"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        r#"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
    ];

    #[test]
    fn from_json_agrees_with_the_full_parse() {
        let mut docs: Vec<Vec<u8>> = DOCS.iter().map(|d| d.as_bytes().to_vec()).collect();
        docs.push(b"{\"iss\":\"\xff\"}".to_vec());
        docs.push(b"{\"x\":\"\xc3\xa9\"}".to_vec());
        docs.push(b"{\"x\":\"\x01\"}".to_vec());
        // Every document of the list, mutated: each byte dropped, and each
        // replaced by a character that JSON gives a meaning to.
        let base = docs.clone();
        for d in base.iter().take(8) {
            for i in 0..d.len() {
                let mut cut = d.clone();
                cut.remove(i);
                docs.push(cut);
                for b in [
                    b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'1', b'e', b'-', b' ', 0x80,
                ] {
                    let mut m = d.clone();
                    m[i] = b;
                    docs.push(m);
                }
            }
        }
        let (mut ok, mut err) = (0, 0);
        for d in &docs {
            let fast = Claims::from_json(d).ok();
            assert_eq!(fast, via_value(d), "{:?}", String::from_utf8_lossy(d));
            if let Some(c) = fast {
                ok += 1;
                for name in ["sub", "iss", "aud", "exp", "x"] {
                    assert_eq!(c.claim_value(name), c.get_path(name).cloned(), "{name}");
                }
                // The lazily built object is the full parse's.
                let full = crate::json::parse_object(d, crate::json::DEFAULT_MAX_DEPTH).unwrap();
                assert_eq!(c.object(), &full);
            } else {
                err += 1;
            }
        }
        assert!(ok > 100 && err > 1000, "{ok} accepted, {err} refused");
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
