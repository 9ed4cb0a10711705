//! `decode`: show a token's header and payload for a person, clearly marked
//! UNVERIFIED, with `exp`/`nbf`/`iat` as UTC dates and relative to now. The
//! signature is never printed (only its length), and nothing is verified.

use crate::args::Args;
use crate::help;
use crate::input::read_token;
use crate::outcome::{usage, CliError, Outcome, EXIT_NO, EXIT_OK};
use crate::timefmt;
use jwt_authn::b64;
use serde_json::Value;
use std::fmt;

/// Longest token decoded: the filter's largest `max_token_bytes`.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a token cannot be shown; never quotes the token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DecodeError {
    TooLarge,
    Empty,
    Jwe,
    Segments(usize),
    Base64(&'static str),
    HeaderNotObject,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge => {
                write!(f, "token is longer than {} KiB", MAX_TOKEN_BYTES >> 10)
            }
            DecodeError::Empty => f.write_str("token is empty"),
            DecodeError::Jwe => {
                f.write_str("this is a JWE (5 segments): it is encrypted and cannot be decoded")
            }
            DecodeError::Segments(n) => write!(
                f,
                "not a JWS compact token: expected 3 dot-separated segments, found {n}"
            ),
            DecodeError::Base64(which) => write!(f, "the {which} segment is not base64url"),
            DecodeError::HeaderNotObject => f.write_str("the header is not a JSON object"),
        }
    }
}

/// Runs `jwt-authn decode TOKEN`.
pub fn run(args: &[String]) -> Result<Outcome, CliError> {
    let a = Args::parse(args, &["--now"])?;
    if a.help {
        return Ok(Outcome::out(help::DECODE.to_string(), EXIT_OK));
    }
    a.expect_positionals(1, "TOKEN (or - for stdin)")?;
    let now = match a.one("--now")? {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| usage("--now must be Unix seconds (a non-negative integer)"))?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let token = read_token(&a.positionals[0])?;
    Ok(match decode(&token, now) {
        Ok(text) => Outcome::out(text, EXIT_OK),
        Err(e) => Outcome {
            stdout: String::new(),
            stderr: format!("jwt-authn decode: {e}\n"),
            code: EXIT_NO,
        },
    })
}

fn segment(s: &str, which: &'static str) -> Result<Vec<u8>, DecodeError> {
    // Padded segments are shown too (the filter refuses them as malformed).
    b64::decode_lenient_padding(s).map_err(|_| DecodeError::Base64(which))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn decode(token: &str, now: u64) -> Result<String, DecodeError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(DecodeError::TooLarge);
    }
    if token.is_empty() {
        return Err(DecodeError::Empty);
    }
    let parts: Vec<&str> = token.splitn(6, '.').collect();
    let [h, p, s] = parts[..] else {
        return Err(if parts.len() == 5 {
            DecodeError::Jwe
        } else {
            DecodeError::Segments(parts.len())
        });
    };
    let header: Value =
        serde_json::from_slice(&segment(h, "header")?).map_err(|_| DecodeError::HeaderNotObject)?;
    if !header.is_object() {
        return Err(DecodeError::HeaderNotObject);
    }
    let payload = segment(p, "payload")?;
    let signature = segment(s, "signature")?;

    let mut out = String::from(
        "UNVERIFIED: decoded only; the signature was NOT checked. Do not trust these values.\n",
    );
    out.push_str(&format!("header (UNVERIFIED):\n{}\n", pretty(&header)));
    let claims = match serde_json::from_slice::<Value>(&payload) {
        Ok(v) => {
            out.push_str(&format!("payload (UNVERIFIED):\n{}\n", pretty(&v)));
            v.as_object().cloned()
        }
        Err(_) => {
            match std::str::from_utf8(&payload) {
                Ok(text) => out.push_str(&format!(
                    "payload (UNVERIFIED, not JSON, {} bytes):\n{}\n",
                    payload.len(),
                    text.escape_debug()
                )),
                Err(_) => out.push_str(&format!(
                    "payload (UNVERIFIED): {} bytes, not UTF-8 (not shown)\n",
                    payload.len()
                )),
            }
            None
        }
    };
    if let Some(claims) = claims {
        let present: Vec<&str> = ["exp", "nbf", "iat"]
            .into_iter()
            .filter(|k| claims.contains_key(*k))
            .collect();
        if !present.is_empty() {
            out.push_str(&format!("times (now {now} = {}):\n", timefmt::utc(now)));
            for name in present {
                if let Some(v) = claims.get(name) {
                    out.push_str(&format!("  {name}  {}\n", time_line(name, v, now)));
                }
            }
        }
    }
    out.push_str(&format!(
        "signature: {} bytes (not shown)\n",
        signature.len()
    ));
    Ok(out)
}

/// A NumericDate claim as read by the filter: a non-negative integer
/// (an integral float is accepted too).
fn as_seconds(v: &Value) -> Option<u64> {
    let n = v.as_number()?;
    n.as_u64().or_else(|| match n.as_f64() {
        Some(f) if (0.0..1.8e19).contains(&f) && f.fract() == 0.0 => Some(f as u64),
        _ => None,
    })
}

fn time_line(name: &str, v: &Value, now: u64) -> String {
    let Some(t) = as_seconds(v) else {
        return format!(
            "{v}  (not a non-negative integer: the filter rejects this token as malformed)"
        );
    };
    let rel = timefmt::relative(t, now);
    let words = match name {
        "exp" if t < now => format!("expired {rel}"),
        "exp" => format!("expires {rel}"),
        "nbf" if t > now => format!("not valid yet, starts {rel}"),
        "nbf" => format!("valid since {rel}"),
        _ if t > now => format!("issued {rel} (in the future)"),
        _ => format!("issued {rel}"),
    };
    format!("{t}  {}  {words}", timefmt::utc(t))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tok(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64::encode(header.as_bytes()),
            b64::encode(payload.as_bytes()),
            b64::encode(sig)
        )
    }

    #[test]
    fn shows_claims_and_times_but_not_the_signature() {
        let sig = b"SIGNATURE-BYTES-0123456789abcdef";
        let t = tok(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"alice","exp":1000,"nbf":1300,"iat":880}"#,
            sig,
        );
        let out = decode(&t, 1180).unwrap();
        assert!(out.starts_with("UNVERIFIED"), "{out}");
        assert!(out.contains("\"sub\": \"alice\""), "{out}");
        assert!(
            out.contains("exp  1000  1970-01-01T00:16:40Z  expired 3m ago"),
            "{out}"
        );
        assert!(
            out.contains("nbf  1300  1970-01-01T00:21:40Z  not valid yet, starts in 2m"),
            "{out}"
        );
        assert!(
            out.contains("iat  880  1970-01-01T00:14:40Z  issued 5m ago"),
            "{out}"
        );
        assert!(out.contains("signature: 32 bytes (not shown)"), "{out}");
        assert!(!out.contains(&b64::encode(sig)), "{out}");
    }

    #[test]
    fn odd_payloads_and_bad_tokens() {
        let out = decode(&tok(r#"{"alg":"none"}"#, "hello", b""), 0).unwrap();
        assert!(out.contains("not JSON, 5 bytes):\nhello"), "{out}");
        let out = decode(&tok(r#"{"alg":"HS256"}"#, r#"{"exp":"soon"}"#, b"s"), 0).unwrap();
        assert!(
            out.contains("exp  \"soon\"  (not a non-negative integer"),
            "{out}"
        );
        assert_eq!(decode("a.b", 0), Err(DecodeError::Segments(2)));
        assert_eq!(decode("a.b.c.d.e", 0), Err(DecodeError::Jwe));
        assert_eq!(decode("%%%.a.b", 0), Err(DecodeError::Base64("header")));
        assert_eq!(
            decode(&tok("[1]", "{}", b"s"), 0),
            Err(DecodeError::HeaderNotObject)
        );
        assert_eq!(
            decode(&"a".repeat(MAX_TOKEN_BYTES + 1), 0),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(decode("", 0), Err(DecodeError::Empty));
    }
}
