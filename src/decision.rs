//! Decisions: values the shell carries out, so the hard logic is testable without a proxy.

use crate::claims::Claims;
use crate::config::ProviderId;
use crate::reason::Reason;
use std::sync::Arc;

/// Request-header edits for a request that goes on upstream. Apply `remove`
/// first, then `set` (overwrite), then `path`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderChanges {
    /// Header names to delete (spoofing protection, consumed tokens).
    pub remove: Vec<String>,
    /// Header name/value pairs to set, replacing any value.
    pub set: Vec<(String, String)>,
    /// A new `:path` (a consumed token removed from the query string).
    pub path: Option<String>,
}

/// A token that verified, kept for metadata and authorization.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Provider that verified it.
    pub provider: ProviderId,
    /// Its claims.
    pub claims: Arc<Claims>,
}

/// A local reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    /// Stable reason code.
    pub reason: Reason,
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// `www-authenticate` value.
    pub www_authenticate: String,
    /// Provider whose token (or absence of one) decided, when known.
    pub provider: Option<ProviderId>,
}

/// Why keys are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchCause {
    /// No keys yet (cold start, or only failures so far).
    NoKeys,
    /// The token's `kid` is not in the cached set (rotation).
    UnknownKid,
}

/// What the shell must do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Forward with these edits.
    Allow {
        /// Header edits.
        changes: HeaderChanges,
        /// Tokens that verified (may be empty: no rule, allow_missing...).
        verified: Vec<Verified>,
    },
    /// Reply locally; never forward.
    Deny(Denial),
    /// Pause; get keys for this provider, then evaluate again.
    FetchKeys {
        /// The provider.
        provider: ProviderId,
        /// Why.
        cause: FetchCause,
    },
}

impl Decision {
    /// The reason code for metrics and logs (`allowed` for Allow).
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Allow { .. } => Some(Reason::Allowed),
            Decision::Deny(d) => Some(d.reason),
            Decision::FetchKeys { .. } => None,
        }
    }
}
