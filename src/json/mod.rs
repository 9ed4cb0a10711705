//! Strict RFC 8259 JSON for security-relevant documents (JOSE headers, JWT
//! claims, JWKS).
//!
//! Two JSON parsers that disagree about one document are an attack surface:
//! with duplicate member names, one may see `"alg":"RS256"` where another sees
//! `"alg":"none"`. RFC 7515 section 5.2 says a JOSE header with duplicate names
//! must be rejected, so we reject them at every depth. Nesting is bounded so
//! hostile input cannot exhaust the stack (serde_json additionally stops at
//! 128 levels on its own, which keeps even 100k nested `[` harmless).

mod scan;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

/// Nesting limit used for JOSE headers, JWT payloads and JWKS documents.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Longest member name kept in [`JsonError::DuplicateKey`], so that an error
/// message stays short whatever the input.
const MAX_REPORTED_NAME: usize = 64;
/// Longest syntax message kept in [`JsonError::Syntax`].
const MAX_SYNTAX_MESSAGE: usize = 128;

/// Why a document was refused; the stage-specific caller wraps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonError {
    /// Not RFC 8259 JSON (position only, never the input text).
    Syntax(String),
    /// An object repeats a member name (the name, truncated to 64 chars).
    DuplicateKey(String),
    /// Nested deeper than the allowed depth.
    TooDeep,
    /// Valid JSON, but the caller needs an object at the top.
    NotAnObject,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(msg) => write!(f, "invalid json: {msg}"),
            Self::DuplicateKey(name) => {
                write!(f, "duplicate member name \"{}\"", name.escape_debug())
            }
            Self::TooDeep => f.write_str("json nested too deeply"),
            Self::NotAnObject => f.write_str("json is not an object"),
        }
    }
}

impl std::error::Error for JsonError {}

/// Parses RFC 8259 JSON, rejecting duplicate member names at any depth and
/// nesting deeper than `max_depth`, because lenient parsing of signed or
/// key-bearing documents lets parsers disagree. The effective limit is at
/// most 127 (serde_json's own guard).
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    let failure = Cell::new(None);
    let seed = StrictSeed {
        failure: &failure,
        max_depth,
        depth: 0,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = seed
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value));
    match result {
        Ok(value) => Ok(value),
        Err(err) => Err(match failure.take() {
            Some(found) => found,
            None => classify(&err),
        }),
    }
}

/// [`parse_strict`] for documents that must be a JSON object (JOSE headers,
/// JWT claim sets, JWKs), so callers do not repeat the shape check.
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, JsonError> {
    match parse_strict(bytes, max_depth)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

fn classify(err: &serde_json::Error) -> JsonError {
    let msg = err.to_string();
    if msg.starts_with("recursion limit exceeded") {
        return JsonError::TooDeep;
    }
    JsonError::Syntax(truncate(&msg, MAX_SYNTAX_MESSAGE))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Builds a `Value` while tracking depth and refusing duplicate names. The
/// precise failure travels in `failure` because serde errors are stringly.
#[derive(Clone, Copy)]
struct StrictSeed<'s> {
    failure: &'s Cell<Option<JsonError>>,
    max_depth: usize,
    depth: usize,
}

impl StrictSeed<'_> {
    fn fail<E: de::Error>(&self, err: JsonError) -> E {
        self.failure.set(Some(err));
        E::custom("strict json check failed")
    }

    /// The seed for the members of a container opened at this level.
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        let depth = self.depth.saturating_add(1);
        if depth > self.max_depth {
            return Err(self.fail(JsonError::TooDeep));
        }
        Ok(Self { depth, ..self })
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(self.fail(JsonError::DuplicateKey(truncate(&key, MAX_REPORTED_NAME))));
            }
            let value = access.next_value_seed(inner)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// A top-level member's value as [`scan_object`] hands it over: strings
/// borrowed from the input where they have no escapes, nothing else built.
#[derive(Clone, Debug, PartialEq)]
pub enum Field<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// A number, as serde_json reads it.
    Num(Number),
    /// An array whose elements are all strings (possibly none).
    StrList(Vec<Cow<'a, str>>),
    /// Anything else: `true`, `false`, `null`, an object, a mixed array.
    Other,
}

impl<'a> Field<'a> {
    /// The member [`scan_object`] hands over for a value [`parse_object`]
    /// built: the contract between the two, stated once for the scanner's
    /// differential tests and the fuzz oracle.
    pub fn of_value(v: &'a Value) -> Field<'a> {
        match v {
            Value::String(s) => Field::Str(Cow::Borrowed(s)),
            Value::Number(n) => Field::Num(n.clone()),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(Cow::Borrowed))
                .collect::<Option<Vec<_>>>()
                .map_or(Field::Other, Field::StrList),
            _ => Field::Other,
        }
    }
}

/// Checks a document exactly as [`parse_object`] does (the same grammar,
/// duplicate names at any depth, the depth limit, an object at the top)
/// without building it, and returns the values of the `wanted` top-level
/// members (by index in `wanted`). For the request path: a token's header
/// and claims are judged on a few members, and building the whole `Value`
/// (a map node and a string per member) was most of the cost of a new token.
/// Errors are those of [`parse_object`] in kind, not always in wording: a
/// caller that reports them re-parses with it. (A direct byte scanner, see
/// `scan`; tested and fuzzed against [`parse_object`].)
pub fn scan_object<'a, const N: usize>(
    bytes: &'a [u8],
    max_depth: usize,
    wanted: [&str; N],
) -> Result<[Option<Field<'a>>; N], JsonError> {
    scan::scan_object(bytes, max_depth, wanted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<Value, JsonError> {
        parse_strict(s.as_bytes(), DEFAULT_MAX_DEPTH)
    }

    #[test]
    fn parses_plain_json() {
        let v = parse(r#" {"a":[1,-2,3.5,true,null,"x\u00e9"],"b":{"c":{}}} "#).unwrap();
        assert_eq!(v, json!({"a":[1,-2,3.5,true,null,"xé"],"b":{"c":{}}}));
        assert_eq!(parse("1").unwrap(), json!(1));
        assert_eq!(parse("\"s\"").unwrap(), json!("s"));
    }

    #[test]
    fn rejects_duplicate_names_at_any_depth() {
        assert_eq!(
            parse(r#"{"alg":"RS256","alg":"none"}"#),
            Err(JsonError::DuplicateKey("alg".into()))
        );
        assert_eq!(
            parse(r#"{"a":[{"b":1,"c":2,"b":3}]}"#),
            Err(JsonError::DuplicateKey("b".into()))
        );
        // Escapes are compared after decoding: "\u0061" is "a".
        assert_eq!(
            parse(r#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateKey("a".into()))
        );
        // Same name in sibling objects is fine.
        assert!(parse(r#"{"x":{"a":1},"y":{"a":1}}"#).is_ok());
    }

    #[test]
    fn duplicate_name_is_truncated() {
        let long = "k".repeat(1000);
        let doc = format!(r#"{{"{long}":1,"{long}":2}}"#);
        match parse(&doc) {
            Err(JsonError::DuplicateKey(name)) => assert_eq!(name.len(), 64),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_non_rfc8259() {
        for bad in [
            r#"{"a":1,}"#,
            "[1,2,]",
            "{'a':1}",
            "{a:1}",
            "[1] x",
            "[1][2]",
            "",
            "   ",
            "NaN",
            "Infinity",
            "01",
            "+1",
            "1e400",
            "\"\\ud800\"",
            "\"tab\there\"",
            "/* c */ 1",
            "\u{feff}{}",
        ] {
            assert!(
                matches!(parse(bad), Err(JsonError::Syntax(_))),
                "accepted {bad:?}"
            );
        }
        assert!(matches!(
            parse_strict(b"\"\xff\"", 8),
            Err(JsonError::Syntax(_))
        ));
    }

    #[test]
    fn depth_limit_is_exact() {
        let ok = format!("{}{}", "[".repeat(4), "]".repeat(4));
        assert!(parse_strict(ok.as_bytes(), 4).is_ok());
        let deep = format!("{}{}", "[".repeat(5), "]".repeat(5));
        assert_eq!(parse_strict(deep.as_bytes(), 4), Err(JsonError::TooDeep));
        let obj = r#"{"a":{"b":{}}}"#;
        assert!(parse_strict(obj.as_bytes(), 3).is_ok());
        assert_eq!(parse_strict(obj.as_bytes(), 2), Err(JsonError::TooDeep));
        assert!(parse_strict(b"7", 0).is_ok());
        assert_eq!(parse_strict(b"[]", 0), Err(JsonError::TooDeep));
    }

    #[test]
    fn hundred_thousand_nested_arrays_do_not_crash() {
        let open = "[".repeat(100_000);
        assert_eq!(parse(&open), Err(JsonError::TooDeep));
        let both = format!("{}{}", open, "]".repeat(100_000));
        assert_eq!(parse(&both), Err(JsonError::TooDeep));
        // Even with a huge limit, serde_json's own guard stops it.
        assert_eq!(
            parse_strict(both.as_bytes(), usize::MAX),
            Err(JsonError::TooDeep)
        );
        let objs = r#"{"a":"#.repeat(100_000);
        assert_eq!(
            parse_strict(objs.as_bytes(), usize::MAX),
            Err(JsonError::TooDeep)
        );
    }

    #[test]
    fn parse_object_requires_object() {
        assert!(parse_object(b"{}", 4).unwrap().is_empty());
        assert_eq!(parse_object(b"[]", 4), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"\"x\"", 4), Err(JsonError::NotAnObject));
    }

    #[test]
    fn syntax_errors_do_not_echo_input() {
        let err = parse(r#"{"secret-value": tru}"#).unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }
}
