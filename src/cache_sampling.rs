//! Whether a new token takes part in the proxy-wide verified-token cache
//! (`shared_token_cache`): all of them while the cache hits, a fixed subset
//! while it does not.
//!
//! Taking part costs a keyed digest of the whole token, a bucket read and a
//! bucket write: about 1% of a new RS256 token in V8, and all of it wasted
//! when tokens never come back (a client that mints a token per request).
//! So each VM watches the cache's hit rate. Over a window of as many lookups
//! as the cache has entries (at least [`MIN_WINDOW`]), a cache that holds a
//! working set which comes back hits; when fewer than 1 lookup in
//! [`HIT_RATE_DIVISOR`] hit, only 1 token in [`SUBSET`] takes part from then
//! on. Those keep measuring. With sixteen times fewer tokens competing for
//! the same entries their hit rate reads high (a pool too big for the cache
//! as a whole can fit when sampled), so every token takes part again only
//! when [`SUBSET`] in [`HIT_RATE_DIVISOR`] of them hit.
//!
//! The subset is chosen by a keyed hash of the token's last bytes (its
//! signature), keyed by the proxy's cache secret, so every VM picks the same
//! tokens and a client cannot choose to be in it or out of it any more than
//! it can choose its signature. Verdicts never depend on any of this: a token
//! that does not take part is simply verified.

/// Fewest lookups in a window.
pub const MIN_WINDOW: u32 = 4096;
/// A window hits "enough" with at least one lookup in this many hitting.
pub const HIT_RATE_DIVISOR: u32 = 100;
/// While the cache does not hit, one token in this many takes part.
pub const SUBSET: u64 = 16;

/// Which tokens take part now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every token.
    All,
    /// One token in [`SUBSET`].
    Subset,
}

/// One VM's hit-rate watch.
#[derive(Debug, Clone)]
pub struct Sampling {
    mode: Mode,
    window: u32,
    lookups: u32,
    hits: u32,
}

impl Sampling {
    /// For a cache of `entries` entries; every token takes part at first.
    pub fn new(entries: usize) -> Sampling {
        Sampling {
            mode: Mode::All,
            window: u32::try_from(entries).unwrap_or(u32::MAX).max(MIN_WINDOW),
            lookups: 0,
            hits: 0,
        }
    }

    /// Which tokens take part now.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Does a token whose [`subset_hash`] is `hash` take part?
    pub fn takes_part(&self, hash: u64) -> bool {
        match self.mode {
            Mode::All => true,
            Mode::Subset => hash % SUBSET == 0,
        }
    }

    /// Counts one lookup of a token that took part; at the end of a window,
    /// decides the next mode (a window in `Subset` mode counts the same
    /// number of requests, so a sixteenth of the lookups).
    pub fn record(&mut self, hit: bool) {
        self.lookups = self.lookups.saturating_add(1);
        self.hits = self.hits.saturating_add(u32::from(hit));
        let window = match self.mode {
            Mode::All => self.window,
            Mode::Subset => (self.window / SUBSET as u32).max(1),
        };
        if self.lookups < window {
            return;
        }
        // While sampled, the subset has the whole cache to itself (see the
        // module doc): it must hit SUBSET times as often.
        let needed = match self.mode {
            Mode::All => self.lookups,
            Mode::Subset => self.lookups.saturating_mul(SUBSET as u32),
        };
        let hitting = self.hits.saturating_mul(HIT_RATE_DIVISOR) >= needed;
        self.mode = if hitting { Mode::All } else { Mode::Subset };
        self.lookups = 0;
        self.hits = 0;
    }
}

/// The hash that puts a token in the subset or not: its last 8 bytes (the
/// end of its signature, which differs between any two tokens an issuer
/// signs), keyed by the proxy's 16-byte cache secret and mixed.
pub fn subset_hash(secret: &[u8; 16], token: &str) -> u64 {
    let b = token.as_bytes();
    let mut tail = [0u8; 8];
    let from = b.len().saturating_sub(8);
    if let Some(t) = b.get(from..) {
        if let Some(dst) = tail.get_mut(..t.len()) {
            dst.copy_from_slice(t);
        }
    }
    let mut k = [0u8; 8];
    k.copy_from_slice(&secret[..8]);
    let mut h = u64::from_le_bytes(tail) ^ u64::from_le_bytes(k) ^ (b.len() as u64);
    // murmur3's fmix64: every output bit depends on every input bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_that_does_not_hit_keeps_only_a_subset_until_it_hits_again() {
        let mut s = Sampling::new(128);
        assert_eq!(s.mode(), Mode::All);
        assert!(s.takes_part(1) && s.takes_part(16));
        // A window of MIN_WINDOW lookups, under 1% hits.
        for i in 0..MIN_WINDOW {
            s.record(i % 200 == 0);
        }
        assert_eq!(s.mode(), Mode::Subset);
        assert!(s.takes_part(32) && !s.takes_part(33));
        // A subset window (MIN_WINDOW / 16 lookups) with 7% hits: a pool that
        // only fits the cache when sampled; it stays sampled.
        for i in 0..MIN_WINDOW / SUBSET as u32 {
            s.record(i % 14 == 0);
        }
        assert_eq!(s.mode(), Mode::Subset);
        // 16% of them hit: all again.
        for i in 0..MIN_WINDOW / SUBSET as u32 {
            s.record(i % 6 == 0);
        }
        assert_eq!(s.mode(), Mode::All);
    }

    #[test]
    fn a_big_cache_waits_as_many_lookups_as_it_has_entries() {
        // A first pass over 20,000 tokens that will come back: no hit yet,
        // but the window is the cache's size, so nothing is dropped.
        let mut s = Sampling::new(65_536);
        for _ in 0..60_000 {
            s.record(false);
        }
        assert_eq!(s.mode(), Mode::All);
        for _ in 0..5_536 {
            s.record(false);
        }
        assert_eq!(s.mode(), Mode::Subset);
    }

    #[test]
    fn a_hitting_cache_stays_whole() {
        let mut s = Sampling::new(0);
        for i in 0..10 * MIN_WINDOW {
            s.record(i % 100 == 0);
            assert_eq!(s.mode(), Mode::All);
        }
    }

    #[test]
    fn the_subset_is_a_sixteenth_keyed_and_stable() {
        let secret = *b"0123456789abcdef";
        let other = *b"fedcba9876543210";
        let tokens: Vec<String> = (0..16_000).map(|i| format!("h.p.sig{i:08}")).collect();
        let inside = |k: &[u8; 16]| {
            tokens
                .iter()
                .filter(|t| subset_hash(k, t) % SUBSET == 0)
                .count()
        };
        let n = inside(&secret);
        assert!((800..1200).contains(&n), "{n} of 16000");
        assert_eq!(n, inside(&secret), "the same tokens every time");
        let both = tokens
            .iter()
            .filter(|t| {
                subset_hash(&secret, t) % SUBSET == 0 && subset_hash(&other, t) % SUBSET == 0
            })
            .count();
        assert!(
            both < 200,
            "another secret picks other tokens ({both} in both)"
        );
        assert_eq!(subset_hash(&secret, ""), subset_hash(&secret, ""));
        let _ = subset_hash(&secret, "ab");
    }
}
