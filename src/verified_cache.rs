//! A small cache of tokens whose signature already verified.
//!
//! Signature checks dominate the per-request cost, and clients resend the same
//! token for minutes. jwt_authn keeps a cache of verified JWTs
//! (`jwt_cache_config.jwt_cache_size`, default 100); this is ours. Only the
//! signature verdict is cached: parsing and every claim check (time,
//! issuer, audience, subject) still run on each request. An entry holds the
//! very key set it verified against (compared by identity, and kept alive by
//! the entry so its address cannot be reused), so a key rotation or a
//! reloaded set never reuses a verdict. The key is the full token text, so
//! there is no collision to exploit.

use crate::jwk::KeySet;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Default capacity, as jwt_authn's `jwt_cache_size` default.
pub const DEFAULT_CAPACITY: usize = 100;
/// Bytes of token text kept at most (bounded memory whatever the capacity).
pub const MAX_BYTES: usize = 1 << 20;

/// Entries are keyed by (provider, token).
type Key = (usize, String);

/// FIFO-evicted map of verified tokens to the key set that verified them.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    capacity: usize,
    bytes: usize,
    map: HashMap<Key, Arc<KeySet>>,
    order: VecDeque<Key>,
}

impl VerifiedCache {
    /// A cache holding at most `capacity` tokens (0 disables it).
    pub fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity,
            ..Default::default()
        }
    }

    /// True when this token verified against this very key set before.
    pub fn contains(&self, provider: usize, keys: &Arc<KeySet>, token: &str) -> bool {
        self.capacity > 0
            && self
                .map
                .get(&(provider, token.to_string()))
                .is_some_and(|k| Arc::ptr_eq(k, keys))
    }

    /// Records a verified token.
    pub fn insert(&mut self, provider: usize, keys: &Arc<KeySet>, token: &str) {
        if self.capacity == 0 || token.len() > MAX_BYTES / 4 {
            return;
        }
        let key = (provider, token.to_string());
        if let Some(existing) = self.map.get_mut(&key) {
            *existing = keys.clone();
            return;
        }
        while !self.order.is_empty()
            && (self.order.len() >= self.capacity || self.bytes + token.len() > MAX_BYTES)
        {
            if let Some(old) = self.order.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.1.len());
                self.map.remove(&old);
            }
        }
        self.bytes += token.len();
        self.order.push_back(key.clone());
        self.map.insert(key, keys.clone());
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

    #[test]
    fn remembers_per_provider_and_key_set() {
        let (k1, k2) = (set(), set());
        let mut c = VerifiedCache::new(2);
        c.insert(0, &k1, "a.b.c");
        assert!(c.contains(0, &k1, "a.b.c"));
        assert!(!c.contains(1, &k1, "a.b.c"), "other provider");
        assert!(
            !c.contains(0, &k2, "a.b.c"),
            "another key set (rotation), even with equal keys"
        );
        assert!(!c.contains(0, &k1, "a.b.d"));
    }

    #[test]
    fn evicts_oldest_first_and_stays_bounded() {
        let k = set();
        let mut c = VerifiedCache::new(2);
        c.insert(0, &k, "t1");
        c.insert(0, &k, "t2");
        c.insert(0, &k, "t3");
        assert_eq!(c.len(), 2);
        assert!(!c.contains(0, &k, "t1"));
        assert!(c.contains(0, &k, "t3"));
        let mut big = VerifiedCache::new(1000);
        for i in 0..20 {
            big.insert(0, &k, &format!("{i}{}", "x".repeat(200_000)));
        }
        assert!(big.bytes <= MAX_BYTES);
    }

    #[test]
    fn zero_capacity_disables() {
        let k = set();
        let mut c = VerifiedCache::new(0);
        c.insert(0, &k, "t");
        assert!(!c.contains(0, &k, "t"));
        assert!(c.is_empty());
    }
}
