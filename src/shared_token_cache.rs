//! The proxy-wide layer of the verified-token cache, kept in proxy-wasm
//! shared data so a token verified by one worker is not verified again by
//! the others (native jwt_authn's cache is per worker).
//!
//! This module is the pure part: the digest, the bucket a digest lives in,
//! and the byte format of a bucket. The shell reads and writes the buckets.
//!
//! What an entry vouches for is narrow: "this token's signature verified
//! against provider P's key set with fingerprint F". The claim set is parsed
//! and every claim check runs again on the worker that uses the entry, so an
//! entry can never let a token through that its claims would refuse.
//!
//! - **Key**: a 128-bit SipHash-2-4 of the token under a secret key that the
//!   first VM draws at random and stores in shared data. The token text itself
//!   is not stored (bounded bytes, no token material in shared memory), and
//!   without the secret nobody can aim a forged token at a cached digest.
//! - **Bounded**: a fixed number of buckets of [`WAYS`] entries each, one
//!   shared-data value per bucket; a full bucket replaces the entry the new
//!   digest points at (not the oldest: with FIFO, tokens that keep coming
//!   back to an over-full bucket would evict each other in a cycle and all
//!   miss). Shared data is never freed by Envoy, so the bound is what it will
//!   ever use.
//! - **Never outlives the token**: an entry carries the token's `exp` and is
//!   ignored (and dropped on the next write to its bucket) once that passes.
//! - **Dropped with the keys**: an entry carries its key set's fingerprint;
//!   when the provider's keys change, every older entry stops matching.

use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher;

/// Entries per bucket: with 8, a bucket overflows for ~0.3% of tokens when
/// the cache is a third full (4 gave 3%, measured as 1.10 checks per token).
pub const WAYS: usize = 8;
/// Bytes of one encoded entry: digest 16, provider 2, fingerprint 8, exp 8.
const ENTRY_BYTES: usize = 34;
/// Format version, first byte of every bucket value.
const VERSION: u8 = 1;

/// A keyed digest of one token's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenDigest(pub [u8; 16]);

impl TokenDigest {
    /// Digest of `token` under the proxy's 16-byte secret.
    pub fn of(secret: &[u8; 16], token: &str) -> TokenDigest {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&secret[..8]);
        k1.copy_from_slice(&secret[8..]);
        let mut h = SipHasher24::new_with_keys(u64::from_le_bytes(k0), u64::from_le_bytes(k1));
        h.write(token.as_bytes());
        TokenDigest(h.finish128().as_bytes())
    }

    /// The bucket this digest lives in, among `buckets` (> 0).
    pub fn bucket(&self, buckets: usize) -> usize {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.0[..8]);
        let n = u64::try_from(buckets.max(1)).unwrap_or(u64::MAX);
        usize::try_from(u64::from_le_bytes(w) % n).unwrap_or(0)
    }
}

/// Buckets needed for `entries` entries.
pub fn bucket_count(entries: usize) -> usize {
    entries.div_ceil(WAYS)
}

/// An entry's expiry for a token's `exp` claim (0 = the token has none, so
/// the entry lives until it is evicted).
pub fn expiry(exp_claim: u64) -> u64 {
    if exp_claim == 0 {
        u64::MAX
    } else {
        exp_claim
    }
}

/// One cached verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// Which token.
    pub digest: TokenDigest,
    /// The provider whose keys verified it.
    pub provider: u16,
    /// Those keys' fingerprint.
    pub fingerprint: u64,
    /// The token's `exp` in Unix seconds (`u64::MAX` when it has none).
    pub exp: u64,
}

impl Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.digest.0);
        out.extend_from_slice(&self.provider.to_le_bytes());
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        out.extend_from_slice(&self.exp.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        let digest: [u8; 16] = b.get(0..16)?.try_into().ok()?;
        let provider = u16::from_le_bytes(b.get(16..18)?.try_into().ok()?);
        let fingerprint = u64::from_le_bytes(b.get(18..26)?.try_into().ok()?);
        let exp = u64::from_le_bytes(b.get(26..34)?.try_into().ok()?);
        Some(Entry {
            digest: TokenDigest(digest),
            provider,
            fingerprint,
            exp,
        })
    }

    fn live(&self, now: u64) -> bool {
        now < self.exp
    }

    /// Does this entry vouch for `want` (same token, provider and key set)
    /// at `now`?
    fn vouches_for(&self, want: &Entry, now: u64) -> bool {
        self.digest == want.digest
            && self.provider == want.provider
            && self.fingerprint == want.fingerprint
            && self.live(now)
    }
}

/// The entries of one bucket, decoded (what a VM that keeps the cache in its
/// own memory holds, and what an insert into a shared value works on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    len: usize,
    entries: [Entry; WAYS],
}

impl Bucket {
    /// A bucket value as shared data holds it; anything malformed reads as
    /// empty (the bucket is simply rewritten on the next insert).
    pub fn decode(value: Option<&[u8]>) -> Bucket {
        let mut b = Bucket::default();
        if let Some((&VERSION, rest)) = value.and_then(<[u8]>::split_first) {
            if rest.len() % ENTRY_BYTES == 0 {
                for e in rest.chunks_exact(ENTRY_BYTES).filter_map(Entry::decode) {
                    b.push(e);
                }
            }
        }
        b
    }

    /// The shared-data value of this bucket.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + WAYS * ENTRY_BYTES);
        out.push(VERSION);
        for e in self.entries() {
            e.encode(&mut out);
        }
        out
    }

    /// The entries held.
    pub fn entries(&self) -> &[Entry] {
        self.entries.get(..self.len).unwrap_or_default()
    }

    fn push(&mut self, e: Entry) {
        if let Some(slot) = self.entries.get_mut(self.len) {
            *slot = e;
            self.len += 1;
        }
    }

    /// Does this bucket vouch for the token, provider and key set at `now`?
    pub fn vouches(&self, want: &Entry, now: u64) -> bool {
        self.entries().iter().any(|e| e.vouches_for(want, now))
    }

    /// Adds `new`: expired entries, entries of other key sets of the same
    /// provider and an older copy of the same token go first; if the bucket
    /// is still full, `new` takes the slot its digest points at. In place.
    pub fn insert(&mut self, new: Entry, now: u64) {
        let mut kept = 0;
        for i in 0..self.len.min(WAYS) {
            let Some(&e) = self.entries.get(i) else {
                break;
            };
            let stays = e.live(now)
                && e.digest != new.digest
                && !(e.provider == new.provider && e.fingerprint != new.fingerprint);
            if stays {
                if let Some(slot) = self.entries.get_mut(kept) {
                    *slot = e;
                }
                kept += 1;
            }
        }
        self.len = kept;
        if self.len < WAYS {
            self.push(new);
        } else if let Some(slot) = self.entries.get_mut(usize::from(new.digest.0[15]) % WAYS) {
            *slot = new;
        }
    }
}

/// [`Bucket::vouches`] on a bucket value as shared data holds it. Runs on
/// every local cache miss, so it compares digests on the encoded bytes and
/// decodes only an entry that matches.
pub fn lookup(value: Option<&[u8]>, want: &Entry, now: u64) -> bool {
    let Some((&VERSION, rest)) = value.and_then(<[u8]>::split_first) else {
        return false;
    };
    rest.len() % ENTRY_BYTES == 0
        && rest
            .chunks_exact(ENTRY_BYTES)
            .take(WAYS)
            .filter(|c| c.get(..16) == Some(&want.digest.0[..]))
            .filter_map(Entry::decode)
            .any(|e| e.vouches_for(want, now))
}

/// The bucket value after adding `new` (see [`Bucket::insert`]).
pub fn insert(value: Option<&[u8]>, new: Entry, now: u64) -> Vec<u8> {
    let mut b = Bucket::decode(value);
    b.insert(new, now);
    b.encode()
}

/// The bucket value after adding every entry of `other` (e.g. a bucket a VM
/// kept in its own memory) to `value`, by [`Bucket::insert`]'s rules.
pub fn merge(value: Option<&[u8]>, other: &Bucket, now: u64) -> Vec<u8> {
    let mut b = Bucket::decode(value);
    for e in other.entries() {
        b.insert(*e, now);
    }
    b.encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 16] = *b"0123456789abcdef";

    fn entry(token: &str, fingerprint: u64, exp: u64) -> Entry {
        Entry {
            digest: TokenDigest::of(&SECRET, token),
            provider: 1,
            fingerprint,
            exp,
        }
    }

    #[test]
    fn digest_is_keyed_and_covers_every_byte() {
        let a = TokenDigest::of(&SECRET, "a.b.c");
        assert_eq!(a, TokenDigest::of(&SECRET, "a.b.c"));
        assert_ne!(a, TokenDigest::of(b"fedcba9876543210", "a.b.c"));
        assert_ne!(a, TokenDigest::of(&SECRET, "a.b.d"));
        assert!(a.bucket(7) < 7);
        assert_eq!(TokenDigest::of(&SECRET, "x").bucket(0), 0);
    }

    #[test]
    fn finds_only_the_same_token_provider_keys_and_live() {
        let e = entry("t1", 9, 1000);
        let v = insert(None, e, 10);
        assert!(lookup(Some(&v), &e, 999));
        assert!(!lookup(Some(&v), &e, 1000), "expired at exp");
        assert!(!lookup(Some(&v), &entry("t2", 9, 1000), 10));
        assert!(
            !lookup(Some(&v), &entry("t1", 8, 1000), 10),
            "other key set"
        );
        let other_provider = Entry { provider: 2, ..e };
        assert!(!lookup(Some(&v), &other_provider, 10));
        assert!(!lookup(None, &e, 10));
    }

    #[test]
    fn bounded_newest_kept_and_key_change_drops_older_entries() {
        let mut v: Option<Vec<u8>> = None;
        for i in 0..WAYS + 3 {
            v = Some(insert(v.as_deref(), entry(&format!("t{i}"), 9, 1000), 10));
            let now_in = lookup(v.as_deref(), &entry(&format!("t{i}"), 9, 1000), 10);
            assert!(now_in, "the entry just written is there");
        }
        let v = v.unwrap();
        assert_eq!(v.len(), 1 + WAYS * ENTRY_BYTES);
        let kept = (0..WAYS + 3)
            .filter(|i| lookup(Some(&v), &entry(&format!("t{i}"), 9, 1000), 10))
            .count();
        assert_eq!(kept, WAYS, "full, and no more");
        // New keys for provider 1: every entry verified with the old ones goes.
        let v2 = insert(Some(&v), entry("n", 10, 1000), 10);
        assert_eq!(Bucket::decode(Some(&v2)).entries().len(), 1);
        // Expired entries go on the next write.
        let v3 = insert(Some(&v2), entry("m", 10, 1000), 2000);
        assert_eq!(Bucket::decode(Some(&v3)).entries().len(), 1);
    }

    #[test]
    fn a_bucket_kept_in_memory_answers_as_its_encoded_copy() {
        let mut kept = Bucket::default();
        let mut shared: Option<Vec<u8>> = None;
        for i in 0..30u64 {
            let e = entry(&format!("t{}", i % 13), 9 + u64::from(i % 7 == 0), 100 + i);
            let now = 10 + i * 3;
            kept.insert(e, now);
            shared = Some(insert(shared.as_deref(), e, now));
            assert_eq!(Bucket::decode(shared.as_deref()).entries(), kept.entries());
            for t in 0..13 {
                for fp in [9, 10] {
                    let want = entry(&format!("t{t}"), fp, 0);
                    assert_eq!(
                        kept.vouches(&want, now),
                        lookup(shared.as_deref(), &want, now)
                    );
                }
            }
        }
        assert_eq!(
            Bucket::decode(Some(&kept.encode())).entries(),
            kept.entries()
        );
    }

    #[test]
    fn malformed_buckets_read_as_empty() {
        for bad in [
            &b""[..],
            b"\x02",
            b"\x01\x00",
            &[1u8; 1 + ENTRY_BYTES + 1][..],
        ] {
            assert!(Bucket::decode(Some(bad)).entries().is_empty(), "{bad:?}");
        }
        let e = entry("t", 1, 5);
        let v = insert(Some(b"\xff garbage"), e, 0);
        assert!(lookup(Some(&v), &e, 1));
    }
}
