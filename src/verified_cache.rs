//! A small cache of tokens whose signature already verified.
//!
//! Parsing and signature checks dominate the per-request cost, and clients
//! resend the same token for minutes. jwt_authn keeps a cache of verified
//! JWTs (`jwt_cache_config.jwt_cache_size`, default 100); this is ours. What
//! is cached is the parse (the claim set) and the signature verdict; every
//! claim check (time, issuer, audience, subject, authorization) still runs on
//! each request. An entry holds the very key set it verified against
//! (compared by identity, and kept alive by the entry so its address cannot be
//! reused), so a key rotation or a reloaded set never reuses a verdict. The
//! key is the full token text, so there is no collision to exploit.

use crate::claims::Claims;
use crate::jwk::KeySet;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Default capacity, as jwt_authn's `jwt_cache_size` default.
pub const DEFAULT_CAPACITY: usize = 100;
/// Bytes of token text kept at most (bounded memory whatever the capacity).
pub const MAX_BYTES: usize = 1 << 20;

/// What a verified token left behind.
#[derive(Debug, Clone)]
pub struct CachedToken {
    /// The provider whose keys verified it.
    pub provider: usize,
    /// Those keys (identity matters, see the module doc).
    pub keys: Arc<KeySet>,
    /// The parsed claim set.
    pub claims: Arc<Claims>,
}

/// FIFO-evicted map of verified tokens.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    capacity: usize,
    bytes: usize,
    map: HashMap<String, CachedToken>,
    order: VecDeque<String>,
}

impl VerifiedCache {
    /// A cache holding at most `capacity` tokens (0 disables it).
    pub fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity,
            ..Default::default()
        }
    }

    /// The entry for a token, if it verified before.
    pub fn get(&self, token: &str) -> Option<&CachedToken> {
        if self.capacity == 0 {
            return None;
        }
        self.map.get(token)
    }

    /// Records a verified token.
    pub fn insert(&mut self, token: &str, entry: CachedToken) {
        if self.capacity == 0 || token.len() > MAX_BYTES / 4 {
            return;
        }
        if let Some(existing) = self.map.get_mut(token) {
            *existing = entry;
            return;
        }
        while !self.order.is_empty()
            && (self.order.len() >= self.capacity || self.bytes + token.len() > MAX_BYTES)
        {
            if let Some(old) = self.order.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.len());
                self.map.remove(&old);
            }
        }
        self.bytes += token.len();
        self.order.push_back(token.to_string());
        self.map.insert(token.to_string(), entry);
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::{parse_key_set, JwksOptions};

    fn set() -> Arc<KeySet> {
        let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        Arc::new(parse_key_set(jwks, &JwksOptions::default()).unwrap())
    }

    fn entry(keys: &Arc<KeySet>) -> CachedToken {
        let claims = Claims::from_value(serde_json::json!({"sub": "a"})).unwrap();
        CachedToken {
            provider: 0,
            keys: keys.clone(),
            claims: Arc::new(claims),
        }
    }

    #[test]
    fn remembers_and_keeps_the_key_set() {
        let (k1, k2) = (set(), set());
        let mut c = VerifiedCache::new(2);
        c.insert("a.b.c", entry(&k1));
        let hit = c.get("a.b.c").unwrap();
        assert!(Arc::ptr_eq(&hit.keys, &k1));
        assert!(
            !Arc::ptr_eq(&hit.keys, &k2),
            "equal keys, another set: not the same"
        );
        assert!(c.get("a.b.d").is_none());
    }

    #[test]
    fn evicts_oldest_first_and_stays_bounded() {
        let k = set();
        let mut c = VerifiedCache::new(2);
        c.insert("t1", entry(&k));
        c.insert("t2", entry(&k));
        c.insert("t3", entry(&k));
        assert_eq!(c.len(), 2);
        assert!(c.get("t1").is_none());
        assert!(c.get("t3").is_some());
        let mut big = VerifiedCache::new(1000);
        for i in 0..20 {
            big.insert(&format!("{i}{}", "x".repeat(200_000)), entry(&k));
        }
        assert!(big.bytes <= MAX_BYTES);
    }

    #[test]
    fn zero_capacity_disables() {
        let k = set();
        let mut c = VerifiedCache::new(0);
        c.insert("t", entry(&k));
        assert!(c.get("t").is_none());
        assert!(c.is_empty());
    }
}
