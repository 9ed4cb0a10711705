//! The per-VM cache of tokens whose signature already verified.
//!
//! Parsing and signature checks dominate the per-request cost, and clients
//! resend the same token for minutes. jwt_authn keeps a cache of verified
//! JWTs (`jwt_cache_config.jwt_cache_size`, default 100); this is ours, one
//! per VM (the proxy-wide layer behind it is `shared_token_cache`). What is
//! cached is the parse (the claim set) and the signature verdict; every claim
//! check (time, issuer, audience, subject, authorization) still runs on each
//! request. An entry holds the very key set it verified against (compared by
//! identity, and kept alive by the entry so its address cannot be reused), so
//! a key rotation or a reloaded set never reuses a verdict.
//!
//! Lookups hash the token with a fast seeded hash and then compare the full
//! token text, so a hit is always the very same token: there is no collision
//! to exploit, and the hash only has to be quick (it runs on every request).

use crate::claims::Claims;
use crate::jwk::KeySet;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
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

/// A seeded word-at-a-time hash for token text: several times faster than
/// SipHash in wasm, and collisions cost only a probe (keys are compared in full).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenHashBuilder {
    seed: u64,
}

impl TokenHashBuilder {
    /// A builder with a per-VM random seed, so bucket collisions cannot be planned.
    pub fn new(seed: u64) -> Self {
        TokenHashBuilder { seed }
    }
}

/// The hasher [`TokenHashBuilder`] builds.
#[derive(Debug, Clone, Copy)]
pub struct TokenHasher {
    h: u64,
}

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.h = (self.h ^ u64::from_le_bytes(w))
                .wrapping_mul(MUL)
                .rotate_left(31);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.h = (self.h ^ u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56))
                .wrapping_mul(MUL)
                .rotate_left(31);
        }
    }

    fn finish(&self) -> u64 {
        // A final avalanche (murmur3's fmix64), so the table's low bits mix well.
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl BuildHasher for TokenHashBuilder {
    type Hasher = TokenHasher;
    fn build_hasher(&self) -> TokenHasher {
        TokenHasher { h: self.seed ^ MUL }
    }
}

/// FIFO-evicted map of verified tokens.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    capacity: usize,
    bytes: usize,
    map: HashMap<Arc<str>, CachedToken, TokenHashBuilder>,
    order: VecDeque<Arc<str>>,
}

impl VerifiedCache {
    /// A cache holding at most `capacity` tokens (0 disables it); `seed`
    /// should be random per VM.
    pub fn new(capacity: usize, seed: u64) -> Self {
        VerifiedCache {
            capacity,
            bytes: 0,
            map: HashMap::with_hasher(TokenHashBuilder::new(seed)),
            order: VecDeque::new(),
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
        let key: Arc<str> = Arc::from(token);
        self.order.push_back(key.clone());
        self.map.insert(key, entry);
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
        let mut c = VerifiedCache::new(2, 7);
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
        let mut c = VerifiedCache::new(2, 7);
        c.insert("t1", entry(&k));
        c.insert("t2", entry(&k));
        c.insert("t3", entry(&k));
        assert_eq!(c.len(), 2);
        assert!(c.get("t1").is_none());
        assert!(c.get("t3").is_some());
        let mut big = VerifiedCache::new(1000, 7);
        for i in 0..20 {
            big.insert(&format!("{i}{}", "x".repeat(200_000)), entry(&k));
        }
        assert!(big.bytes <= MAX_BYTES);
    }

    #[test]
    fn hash_depends_on_seed_and_every_byte() {
        let h = |seed: u64, s: &str| TokenHashBuilder::new(seed).hash_one(s);
        assert_ne!(h(1, "a.b.c"), h(2, "a.b.c"));
        let base = "x".repeat(37);
        for i in 0..base.len() {
            let mut t = base.clone().into_bytes();
            t[i] = b'y';
            let t = String::from_utf8(t).unwrap();
            assert_ne!(h(1, &base), h(1, &t), "byte {i} ignored");
        }
        // Same bytes, different lengths (trailing zero padding must not collide).
        assert_ne!(h(1, "abc"), h(1, "abc\0"));
    }

    #[test]
    fn zero_capacity_disables() {
        let k = set();
        let mut c = VerifiedCache::new(0, 7);
        c.insert("t", entry(&k));
        assert!(c.get("t").is_none());
        assert!(c.is_empty());
    }
}
