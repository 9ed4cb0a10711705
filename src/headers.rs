//! Identity headers: how claims and the payload become request headers.
//!
//! Default encoding is jwt_authn's (Envoy 1.40): strings as-is, integers as
//! digits, booleans as `true`/`false`, other numbers like C++ `std::to_string`
//! (`1.500000`), arrays and objects as base64url of their JSON. The `join`
//! extension writes arrays of scalars joined by a separator, so `roles` or
//! `scp` arrive readable. Claims are hostile: a value carrying CR, LF or NUL
//! is never written into a header.

use crate::config::{ClaimFormat, ClaimToHeader};
use base64::Engine as _;
use serde_json::Value;

/// Formats a JSON number the way jwt_authn's `convertClaimDoubleToString`
/// does: through a double (so integers above 2^53 lose their last digits, as
/// in Envoy), integral non-negative values as digits, anything else as `%f`.
fn envoy_number(n: &serde_json::Number) -> String {
    let f = n.as_f64().unwrap_or(0.0);
    if (0.0..18_446_744_073_709_551_616.0).contains(&f) && f.fract() == 0.0 {
        return (f as u64).to_string();
    }
    format!("{f:.6}")
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(envoy_number(n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Encodes one claim value for a header; `None` means "do not set the header"
/// (empty value, null, or bytes that must never reach a header).
pub fn encode_claim(value: &Value, format: &ClaimFormat) -> Option<String> {
    let text = match (value, format) {
        (Value::Null, _) => return None,
        (Value::Array(items), ClaimFormat::Join(sep)) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| scalar(i).unwrap_or_else(|| i.to_string()))
                .collect();
            parts.join(sep)
        }
        (Value::Object(_), ClaimFormat::Join(_)) => value.to_string(),
        // Standard base64 with padding (not base64url), as Envoy 1.40 writes it.
        (Value::Array(_) | Value::Object(_), ClaimFormat::Envoy) => {
            base64::engine::general_purpose::STANDARD.encode(value.to_string().as_bytes())
        }
        (v, _) => scalar(v)?,
    };
    if text.is_empty() || !is_safe_header_value(&text) {
        return None;
    }
    Some(text)
}

/// True when `v` can be a header value without smuggling a new line or a NUL.
pub fn is_safe_header_value(v: &str) -> bool {
    !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// The header/value pairs `claim_to_headers` produces for a claim set.
pub fn claim_headers(
    mappings: &[ClaimToHeader],
    lookup: impl Fn(&str) -> Option<Value>,
) -> Vec<(String, String)> {
    mappings
        .iter()
        .filter_map(|m| {
            let v = lookup(&m.claim_name)?;
            encode_claim(&v, &m.format).map(|s| (m.header_name.clone(), s))
        })
        .collect()
}

/// `forward_payload_header` value: the payload segment as sent, optionally padded.
pub fn forward_payload_value(payload_b64: &str, pad: bool) -> String {
    let mut s = payload_b64.to_string();
    if pad {
        while s.len() % 4 != 0 {
            s.push('=');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envoy_encoding() {
        let e = ClaimFormat::Envoy;
        assert_eq!(encode_claim(&json!("alice"), &e).as_deref(), Some("alice"));
        assert_eq!(encode_claim(&json!(42), &e).as_deref(), Some("42"));
        assert_eq!(encode_claim(&json!(1.5), &e).as_deref(), Some("1.500000"));
        assert_eq!(encode_claim(&json!(-2), &e).as_deref(), Some("-2.000000"));
        assert_eq!(encode_claim(&json!(3.0), &e).as_deref(), Some("3"));
        assert_eq!(
            encode_claim(&json!(9_007_199_254_740_993u64), &e).as_deref(),
            Some("9007199254740992"),
            "via a double, as Envoy"
        );
        assert_eq!(
            encode_claim(&json!(1e21), &e).as_deref(),
            Some("1000000000000000000000.000000"),
            "above u64, %f as Envoy"
        );
        assert_eq!(encode_claim(&json!(true), &e).as_deref(), Some("true"));
        assert_eq!(
            encode_claim(&json!(["admin", "dev"]), &e).as_deref(),
            Some("WyJhZG1pbiIsImRldiJd")
        );
        assert_eq!(
            encode_claim(&json!(["x,y", "z"]), &e).as_deref(),
            Some("WyJ4LHkiLCJ6Il0="),
            "padded, as Envoy"
        );
        assert_eq!(
            encode_claim(&json!({"k": 1}), &e).as_deref(),
            Some("eyJrIjoxfQ==")
        );
        assert_eq!(encode_claim(&json!(""), &e), None);
        assert_eq!(encode_claim(&json!(null), &e), None);
    }

    #[test]
    fn join_encoding() {
        let j = ClaimFormat::Join(",".into());
        assert_eq!(
            encode_claim(&json!(["admin", "dev", 3, true]), &j).as_deref(),
            Some("admin,dev,3,true")
        );
        assert_eq!(
            encode_claim(&json!("read write"), &j).as_deref(),
            Some("read write")
        );
        assert_eq!(encode_claim(&json!([]), &j), None);
        let sp = ClaimFormat::Join(" ".into());
        assert_eq!(
            encode_claim(&json!(["a", "b"]), &sp).as_deref(),
            Some("a b")
        );
    }

    #[test]
    fn header_injection_is_refused() {
        for f in [ClaimFormat::Envoy, ClaimFormat::Join(",".into())] {
            assert_eq!(encode_claim(&json!("x\r\nx-admin: 1"), &f), None);
            assert_eq!(encode_claim(&json!("a\0b"), &f), None);
        }
        assert_eq!(
            encode_claim(&json!(["ok", "x\ny"]), &ClaimFormat::Join(",".into())),
            None
        );
    }

    #[test]
    fn payload_padding() {
        assert_eq!(forward_payload_value("abcde", false), "abcde");
        assert_eq!(forward_payload_value("abcde", true), "abcde===");
        assert_eq!(forward_payload_value("abcd", true), "abcd");
    }
}
