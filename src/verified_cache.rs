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
//! It reads the token's length and last [`HASHED_TAIL`] bytes only: the end
//! of a JWS is its signature, which differs between any two tokens an issuer
//! signs, and a token only enters the cache once that signature verified.

use crate::claims::Claims;
use crate::jwk::KeySet;
use crate::memo::Memo;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// Default capacity, as jwt_authn's `jwt_cache_size` default.
pub const DEFAULT_CAPACITY: usize = 100;
/// Trailing bytes of a token that its cache key hashes (see the module doc).
pub const HASHED_TAIL: usize = 64;
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
    /// The Allow it last earned, for a repeated request (see `memo`).
    pub memo: Option<Arc<Memo>>,
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
            // A chunks_exact(8) remainder: at most 7 bytes, so it fits.
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

/// Hashes a `u64` that is already a good hash (the token hash) as itself.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type PassThroughBuilder = std::hash::BuildHasherDefault<PassThrough>;

/// Byte equality eight bytes at a time (wasm's `memcmp` goes byte by byte,
/// and this compares a whole token on every cache hit). The engine often
/// compares a token with itself (the same slice of the request): that is
/// answered without reading it.
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if std::ptr::eq(a, b) {
        return true;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let mut wx = [0u8; 8];
        let mut wy = [0u8; 8];
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        if u64::from_ne_bytes(wx) != u64::from_ne_bytes(wy) {
            return false;
        }
    }
    ca.remainder() == cb.remainder()
}

/// One cached token: its full text (compared on every hit) and what it left.
#[derive(Debug)]
struct Slot {
    token: Box<str>,
    entry: CachedToken,
}

/// FIFO-evicted map of verified tokens, keyed by the seeded token hash; two
/// tokens with the same hash simply take turns in the slot.
///
/// A token is admitted the second time it is offered while the admission
/// filter still remembers the first (it holds the keys of about the last
/// 2 x capacity tokens offered once): a token that is used only once, as
/// with clients that mint a token per request, never costs an insert, the
/// eviction it would cause, or the memo it would carry.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    capacity: usize,
    bytes: usize,
    hasher: TokenHashBuilder,
    map: HashMap<u64, Slot, PassThroughBuilder>,
    order: VecDeque<u64>,
    /// Keys offered once, direct-mapped (a power of two, or empty: no filter).
    seen_once: Vec<u64>,
}

impl VerifiedCache {
    /// A cache holding at most `capacity` tokens (0 disables it); `seed`
    /// should be random per VM.
    pub fn new(capacity: usize, seed: u64) -> Self {
        VerifiedCache {
            capacity,
            bytes: 0,
            hasher: TokenHashBuilder::new(seed),
            map: HashMap::default(),
            order: VecDeque::new(),
            seen_once: vec![0; capacity.saturating_mul(2).min(1 << 20).next_power_of_two()],
        }
    }

    /// Whether a token offered for the first time may go in (see the type's doc).
    fn admit(&mut self, key: u64) -> bool {
        let mask = self.seen_once.len().wrapping_sub(1);
        let Some(slot) = self.seen_once.get_mut((key as usize) & mask) else {
            return true;
        };
        if *slot == key {
            *slot = 0;
            true
        } else {
            *slot = key;
            false
        }
    }

    fn key(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        let tail = bytes
            .get(bytes.len().saturating_sub(HASHED_TAIL)..)
            .unwrap_or(bytes);
        let mut h = self.hasher.build_hasher();
        h.write_usize(bytes.len());
        h.write(tail);
        h.finish()
    }

    /// The entry for a token, if it verified before.
    pub fn get(&self, token: &str) -> Option<&CachedToken> {
        if self.capacity == 0 {
            return None;
        }
        self.map
            .get(&self.key(token))
            .filter(|s| same_text(&s.token, token))
            .map(|s| &s.entry)
    }

    /// Records a verified token; false when it was not kept (a token seen
    /// for the first time, or none kept at all).
    pub fn insert(&mut self, token: &str, entry: CachedToken) -> bool {
        if self.capacity == 0 || token.len() > MAX_BYTES / 4 {
            return false;
        }
        let key = self.key(token);
        if !self.map.contains_key(&key) && !self.admit(key) {
            return false;
        }
        if let Some(slot) = self.map.get_mut(&key) {
            // The same token again, or another one with the same hash: either
            // way the slot now holds this one (bytes adjusted).
            self.bytes = self.bytes.saturating_sub(slot.token.len()) + token.len();
            slot.token = token.into();
            slot.entry = entry;
            return true;
        }
        while !self.order.is_empty()
            && (self.order.len() >= self.capacity || self.bytes + token.len() > MAX_BYTES)
        {
            if let Some(old) = self.order.pop_front() {
                if let Some(s) = self.map.remove(&old) {
                    self.bytes = self.bytes.saturating_sub(s.token.len());
                }
            }
        }
        self.bytes += token.len();
        self.order.push_back(key);
        self.map.insert(
            key,
            Slot {
                token: token.into(),
                entry,
            },
        );
        true
    }

    /// Attaches the Allow a cached token earned (no-op if it is not cached).
    pub fn set_memo(&mut self, token: &str, memo: Arc<Memo>) {
        if self.capacity == 0 {
            return;
        }
        let key = self.key(token);
        if let Some(slot) = self.map.get_mut(&key) {
            if same_text(&slot.token, token) {
                slot.entry.memo = Some(memo);
            }
        }
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
            memo: None,
        }
    }

    #[test]
    fn same_text_compares_every_byte() {
        let a = "abcdefghijklmnopqrstu";
        assert!(same_text(a, a));
        assert!(
            same_text(a, &String::from(a)),
            "equal text in another buffer"
        );
        for i in 0..a.len() {
            let mut b = a.as_bytes().to_vec();
            b[i] = b'!';
            assert!(!same_text(a, std::str::from_utf8(&b).unwrap()), "byte {i}");
        }
        assert!(!same_text(a, &a[..20]));
        assert!(same_text("", ""));
    }

    /// Offers a token twice: what admits it (see `admit`).
    fn put(c: &mut VerifiedCache, token: &str, e: CachedToken) {
        c.insert(token, e.clone());
        c.insert(token, e);
    }

    #[test]
    fn a_token_is_admitted_when_offered_again() {
        let k = set();
        let mut c = VerifiedCache::new(2, 7);
        c.insert("once", entry(&k));
        assert!(
            c.get("once").is_none() && c.is_empty(),
            "one offer: not cached"
        );
        c.insert("once", entry(&k));
        assert!(c.get("once").is_some(), "the second offer admits it");
        // A stream of one-time tokens never evicts what is cached.
        for i in 0..1000 {
            c.insert(&format!("t{i}"), entry(&k));
        }
        assert!(c.get("once").is_some());
        assert_eq!(c.len(), 1);
        // The filter forgets: a token offered again much later waits once more.
        c.insert("late", entry(&k));
        for i in 0..1000 {
            c.insert(&format!("u{i}"), entry(&k));
        }
        c.insert("late", entry(&k));
        assert!(c.get("late").is_none());
    }

    #[test]
    fn remembers_and_keeps_the_key_set() {
        let (k1, k2) = (set(), set());
        let mut c = VerifiedCache::new(2, 7);
        put(&mut c, "a.b.c", entry(&k1));
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
        put(&mut c, "t1", entry(&k));
        put(&mut c, "t2", entry(&k));
        put(&mut c, "t3", entry(&k));
        assert_eq!(c.len(), 2);
        assert!(c.get("t1").is_none());
        assert!(c.get("t3").is_some());
        let mut big = VerifiedCache::new(1000, 7);
        for i in 0..20 {
            put(&mut big, &format!("{i}{}", "x".repeat(200_000)), entry(&k));
        }
        assert!(big.bytes <= MAX_BYTES);
    }

    #[test]
    fn key_reads_the_length_and_every_byte_of_the_tail() {
        let c = VerifiedCache::new(1, 7);
        let base = format!("{}.{}", "h".repeat(200), "s".repeat(100));
        for i in base.len() - HASHED_TAIL..base.len() {
            let mut t = base.clone().into_bytes();
            t[i] = b'y';
            assert_ne!(
                c.key(&base),
                c.key(&String::from_utf8(t).unwrap()),
                "byte {i}"
            );
        }
        assert_ne!(c.key(&base), c.key(&format!("h{base}")), "length");
        assert_ne!(c.key("abc"), VerifiedCache::new(1, 8).key("abc"), "seed");
        // Equal tails of different tokens share a key, but never a hit.
        let k = set();
        let mut c = VerifiedCache::new(4, 7);
        let other = format!("{}.{}", "g".repeat(200), "s".repeat(100));
        put(&mut c, &base, entry(&k));
        assert_eq!(c.key(&base), c.key(&other));
        assert!(c.get(&other).is_none());
        assert!(c.get(&base).is_some());
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
