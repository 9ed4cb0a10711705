//! The stable vocabulary of outcomes: one code per way a request can be denied.
//!
//! The same codes name the denial metrics, the log lines and the CLI's
//! `reason` field, so an operator can go from a counter to a CLI run to a log
//! line with one word. HTTP status and body are decided here and only here.

use std::fmt;

/// Why a request was denied (or `Allowed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The request passed.
    Allowed,
    /// No token where the requirement looks.
    Missing,
    /// Not a well-formed compact JWS/JWT (segments, base64url, JSON, claim types, `crit`).
    Malformed,
    /// Token longer than `extensions.max_token_bytes`.
    TooLarge,
    /// `alg` is `none`, unknown, or missing.
    AlgNotAllowed,
    /// No key fits the token's `kid`/`alg`.
    KeyNotFound,
    /// Signature does not verify with any fitting key.
    BadSignature,
    /// `exp` passed.
    Expired,
    /// `nbf` in the future.
    NotYetValid,
    /// `iss` not configured for the token's location.
    Issuer,
    /// `aud` not allowed (403).
    Audience,
    /// `sub` does not satisfy `subjects`.
    Subject,
    /// `require_expiration` / `max_lifetime` not met.
    Lifetime,
    /// Verified, but claims fail the rule's `authorize` extension (403).
    InsufficientScope,
    /// Remote keys could not be fetched and none are cached.
    JwksUnavailable,
}

impl Reason {
    /// Every reason, for metric registration.
    pub const ALL: [Reason; 15] = [
        Reason::Allowed,
        Reason::Missing,
        Reason::Malformed,
        Reason::TooLarge,
        Reason::AlgNotAllowed,
        Reason::KeyNotFound,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::Issuer,
        Reason::Audience,
        Reason::Subject,
        Reason::Lifetime,
        Reason::InsufficientScope,
        Reason::JwksUnavailable,
    ];

    /// Position in [`Reason::ALL`], for per-reason counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::TooLarge => "too_large",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::KeyNotFound => "key_not_found",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Issuer => "issuer",
            Reason::Audience => "audience",
            Reason::Subject => "subject",
            Reason::Lifetime => "lifetime",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::JwksUnavailable => "jwks_unavailable",
        }
    }

    /// HTTP status, as jwt_authn: 403 for audience (and our authorization), else 401.
    pub fn status(self) -> u16 {
        match self {
            Reason::Allowed => 200,
            Reason::Audience | Reason::InsufficientScope => 403,
            _ => 401,
        }
    }

    /// Short response body (jwt_authn's wording where it has one).
    pub fn body(self) -> &'static str {
        match self {
            Reason::Allowed => "",
            Reason::Missing => "Jwt is missing",
            Reason::Malformed => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            Reason::TooLarge => "Jwt is too large",
            Reason::AlgNotAllowed => "Jwt header [alg] is not supported",
            Reason::KeyNotFound => "Jwks doesn't have key to match kid or alg from Jwt",
            Reason::BadSignature => "Jwt verification fails",
            Reason::Expired => "Jwt is expired",
            Reason::NotYetValid => "Jwt not yet valid",
            Reason::Issuer => "Jwt issuer is not configured",
            Reason::Audience => "Audiences in Jwt are not allowed",
            Reason::Subject => "Jwt subject is not allowed",
            Reason::Lifetime => "Jwt lifetime is not allowed",
            Reason::InsufficientScope => "Insufficient scope",
            Reason::JwksUnavailable => "Jwks remote fetch is failed",
        }
    }

    /// Parses a code back (CLI and tests).
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_position_in_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn statuses_like_jwt_authn() {
        assert_eq!(Reason::Audience.status(), 403);
        assert_eq!(Reason::InsufficientScope.status(), 403);
        assert_eq!(Reason::Missing.status(), 401);
        assert_eq!(Reason::BadSignature.status(), 401);
    }
}
