//! Shared helpers for the core's unit tests: HS256 tokens signed here, so tests
//! do not depend on the code under test to make their inputs.

use crate::b64;
use crate::request::Request;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A 32-byte HMAC secret (the HS256 minimum, RFC 7518 section 3.2).
pub const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

/// Local JWKS holding [`SECRET`] as kid "k1".
pub fn oct_jwks() -> String {
    format!(
        r#"{{"keys":[{{"kty":"oct","kid":"k1","alg":"HS256","k":"{}"}}]}}"#,
        b64::encode(SECRET)
    )
}

/// Signs `header`/`payload` JSON text with HS256 over `secret`.
pub fn hs256(secret: &[u8], header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64::encode(&mac.finalize().into_bytes()))
}

/// A good token for issuer "https://idp" with the given extra payload members.
pub fn token(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    hs256(
        SECRET,
        r#"{"alg":"HS256","kid":"k1"}"#,
        &format!(r#"{{"iss":"https://idp","sub":"alice","exp":2000000000{sep}{extra}}}"#),
    )
}

/// A request with pseudo-headers for `method` and `path` plus `headers`.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut h = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "example.com".to_string()),
        (":scheme".to_string(), "http".to_string()),
    ];
    h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Request::new(h)
}
