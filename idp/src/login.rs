//! The `POST /login` request body: JSON `{"username","password"}` or an HTML /
//! OAuth-style form (`application/x-www-form-urlencoded`). Parsing is strict
//! about shape and sizes and never allocates more than the (bounded) body.

use std::fmt;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::users::{MAX_PASSWORD, MAX_USERNAME};

/// Largest accepted login body; anything larger is answered 413 unread.
pub const MAX_BODY: usize = 8 * 1024;

/// Why a login body was refused (answered 400). Never quotes the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// Not valid JSON / form encoding, or not UTF-8.
    Malformed,
    /// `username` or `password` is missing or not a string.
    Missing,
    /// `username` or `password` is longer than allowed.
    TooLong,
    /// A field appears twice in a form.
    Duplicate,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::Malformed => "body must be JSON or form-urlencoded",
            BodyError::Missing => "username and password are required strings",
            BodyError::TooLong => "username or password too long",
            BodyError::Duplicate => "duplicate form field",
        })
    }
}

impl std::error::Error for BodyError {}

/// A username and password from a login request; the password is wiped on drop.
pub struct Credentials {
    /// The login name as sent.
    pub username: String,
    /// The password as sent.
    pub password: Zeroizing<String>,
}

/// Never prints the password.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct JsonBody {
    username: Option<String>,
    password: Option<String>,
}

fn checked(username: Option<String>, password: Option<String>) -> Result<Credentials, BodyError> {
    let password = Zeroizing::new(password.ok_or(BodyError::Missing)?);
    let username = username.ok_or(BodyError::Missing)?;
    if username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD {
        return Err(BodyError::TooLong);
    }
    Ok(Credentials { username, password })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn form_decode(s: &str) -> Result<String, BodyError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(BodyError::Malformed),
                }
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| BodyError::Malformed)
}

fn parse_form(text: &str) -> Result<Credentials, BodyError> {
    let mut username = None;
    let mut password = None;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match form_decode(name)?.as_str() {
            "username" => &mut username,
            "password" => &mut password,
            _ => continue,
        };
        if slot.is_some() {
            return Err(BodyError::Duplicate);
        }
        *slot = Some(form_decode(value)?);
    }
    checked(username, password)
}

fn parse_json(text: &str) -> Result<Credentials, BodyError> {
    let body: JsonBody = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            BodyError::Missing
        } else {
            BodyError::Malformed
        }
    })?;
    checked(body.username, body.password)
}

/// Parses a login body. The content type picks the format; without one, a body
/// starting with `{` is JSON and anything else is a form.
pub fn parse_credentials(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Credentials, BodyError> {
    if body.len() > MAX_BODY {
        return Err(BodyError::TooLong);
    }
    let text = std::str::from_utf8(body).map_err(|_| BodyError::Malformed)?;
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("application/json") => parse_json(text),
        Some("application/x-www-form-urlencoded") => parse_form(text),
        None | Some("") | Some("text/plain") if text.trim_start().starts_with('{') => {
            parse_json(text)
        }
        None | Some("") => parse_form(text),
        Some(_) => Err(BodyError::Malformed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");

    #[test]
    fn json_and_form_bodies_parse() {
        let c = parse_credentials(JSON, br#"{"username":"alice","password":"p w"}"#).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "p w"));
        let c = parse_credentials(
            FORM,
            b"grant_type=password&username=al%69ce&password=p+w%26%3D%C3%A9",
        )
        .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "p w&=\u{e9}")
        );
        // No content type: sniffed.
        let c = parse_credentials(None, br#" {"username":"a","password":"b"}"#).unwrap();
        assert_eq!(c.username, "a");
        let c = parse_credentials(None, b"username=a&password=b").unwrap();
        assert_eq!(c.password.as_str(), "b");
        // Unknown JSON fields are ignored (OAuth clients send grant_type).
        let c = parse_credentials(
            JSON,
            br#"{"grant_type":"password","username":"a","password":"b"}"#,
        )
        .unwrap();
        assert_eq!(c.username, "a");
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        let cases: &[(Option<&str>, &[u8], BodyError)] = &[
            (JSON, b"", BodyError::Malformed),
            (JSON, b"{", BodyError::Malformed),
            (JSON, b"[]", BodyError::Missing),
            (JSON, b"null", BodyError::Missing),
            (JSON, br#"{"username":"a"}"#, BodyError::Missing),
            (
                JSON,
                br#"{"username":1,"password":"b"}"#,
                BodyError::Missing,
            ),
            (JSON, b"\xff\xfe", BodyError::Malformed),
            (FORM, b"username=a", BodyError::Missing),
            (
                FORM,
                b"username=a&password=b&password=c",
                BodyError::Duplicate,
            ),
            (FORM, b"username=%zz&password=b", BodyError::Malformed),
            (FORM, b"username=%4&password=b", BodyError::Malformed),
            (FORM, b"username=%&password=b", BodyError::Malformed),
            (FORM, b"username=%ff&password=b", BodyError::Malformed),
            (Some("text/xml"), b"<x/>", BodyError::Malformed),
        ];
        for (ct, body, expected) in cases {
            let err = parse_credentials(*ct, body).unwrap_err();
            assert_eq!(err, *expected, "{ct:?} {:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let long_user = format!(
            r#"{{"username":"{}","password":"b"}}"#,
            "u".repeat(MAX_USERNAME + 1)
        );
        assert_eq!(
            parse_credentials(JSON, long_user.as_bytes()).unwrap_err(),
            BodyError::TooLong
        );
        let long_pw = format!("username=a&password={}", "p".repeat(MAX_PASSWORD + 1));
        assert_eq!(
            parse_credentials(FORM, long_pw.as_bytes()).unwrap_err(),
            BodyError::TooLong
        );
        let huge = vec![b'a'; MAX_BODY + 1];
        assert_eq!(
            parse_credentials(FORM, &huge).unwrap_err(),
            BodyError::TooLong
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: no external fuzzing crate needed.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"{}[]\":,=&%+ab01\\\xff\xc3\xa9un";
        for _ in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let body: Vec<u8> = (0..len)
                .map(|i| alphabet[((state >> (i % 56)) as usize + i) % alphabet.len()])
                .collect();
            for ct in [JSON, FORM, None] {
                let _ = parse_credentials(ct, &body);
            }
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let c = parse_credentials(JSON, br#"{"username":"a","password":"hunter2"}"#).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
