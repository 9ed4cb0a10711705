//! The Allow a token earned, kept so that the same token on the same rule is
//! answered again without re-running the flow.
//!
//! Most traffic is one client resending one token. After the first full
//! evaluation, everything but the clock and the key set is a function of
//! (rule, token, where the token was): which provider accepted it, the
//! issuer/audience/subject/lifetime/authorization verdicts, and the headers
//! to set. So the engine keeps that Allow, with the time window in which the
//! token's `nbf`/`exp` checks pass and the key set that verified it, next to
//! the token in the verified-token cache. A later request reuses it only when
//! the same rule matches, the token is the request's only one and sits in the
//! same location, the provider still verifies with that very key set, and the
//! clock is inside the window; anything else takes the full path, which
//! decides as if the memo did not exist (a test replays requests both ways).
//!
//! Only single-token outcomes are kept: an Allow reached through exactly one
//! token check that passed (other children of the requirement saw no token).
//! Then no failure, whose reason could change with time, is folded in.

use crate::config::ProviderId;
use crate::decision::{Decision, HeaderChanges, Verified};
use crate::jwk::KeySet;
use std::sync::Arc;

/// A reusable Allow.
#[derive(Debug)]
pub struct Memo {
    /// Index of the rule that matched.
    pub rule: usize,
    /// Index of the token's location in that rule's plan (`Config::rule_plans`).
    pub location: usize,
    /// The provider whose check passed.
    pub provider: ProviderId,
    /// The key set that verified the token (compared by identity).
    pub keys: Arc<KeySet>,
    /// First second (Unix time) at which the time checks pass.
    pub not_before: u64,
    /// Last second at which they pass.
    pub not_after: u64,
    /// The headers the Allow sets (claims, payload), in order.
    pub set: Vec<(String, String)>,
    /// The header the token came from, when the provider consumes it (`forward: false`).
    pub token_header: Option<String>,
    /// The verified tokens (for metadata and filter state).
    pub verified: Vec<Verified>,
}

/// The seconds in which a token's time checks pass for a provider's clock
/// skew: `check_time` accepts `now` when `now + skew >= nbf` and, with an
/// `exp`, `now <= exp + skew`.
pub fn window(nbf: u64, exp: u64, skew: u64) -> (u64, u64) {
    let not_after = if exp == 0 {
        u64::MAX
    } else {
        exp.saturating_add(skew)
    };
    (nbf.saturating_sub(skew), not_after)
}

impl Memo {
    /// Whether this memo stands for the request now: same rule and location,
    /// the provider's current keys are the ones that verified, inside the window.
    pub fn applies(
        &self,
        rule: usize,
        location: usize,
        current_keys: Option<&Arc<KeySet>>,
        now: u64,
    ) -> bool {
        self.rule == rule
            && self.location == location
            && current_keys.is_some_and(|k| Arc::ptr_eq(k, &self.keys))
            && (self.not_before..=self.not_after).contains(&now)
    }

    /// The Allow for a request whose spoofed identity headers are `strip`:
    /// those go first, then the consumed token header, as the full path orders them.
    pub fn decision(&self, mut strip: Vec<String>) -> Decision {
        if let Some(h) = &self.token_header {
            if !strip.contains(h) {
                strip.push(h.clone());
            }
        }
        Decision::Allow {
            changes: HeaderChanges {
                remove: strip,
                set: self.set.clone(),
                path: None,
            },
            verified: self.verified.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_matches_check_time() {
        use crate::claims::Claims;
        let now = 1_000_000u64;
        for (nbf, exp, skew) in [
            (0, 0, 60),
            (now, now, 0),
            (now + 60, now + 100, 60),
            (now + 61, now + 100, 60),
            (now - 200, now - 61, 60),
            (now - 200, now - 60, 60),
            (30, 0, 60),
            (0, u64::MAX, 60),
        ] {
            let c = Claims::from_value(serde_json::json!({"nbf": nbf, "exp": exp})).unwrap();
            let (a, b) = window(c.nbf, c.exp, skew);
            for t in [now - 1, now, now + 1] {
                assert_eq!(
                    c.check_time(t, skew).is_ok(),
                    (a..=b).contains(&t),
                    "nbf {nbf} exp {exp} skew {skew} t {t}"
                );
            }
        }
    }
}
