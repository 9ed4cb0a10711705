//! Where the proxy-wide verified-token cache (`shared_token_cache`) lives:
//! in proxy-wasm shared data while several VMs serve a configuration, in the
//! one VM's own memory while it serves alone.
//!
//! Shared data is what lets one worker reuse another's verdict, but every
//! read and write is a host call, and a read copies the bucket into the VM
//! through a call back into it: about 2 us per new token in Envoy 1.40 (V8),
//! measured, some 4% of a new RS256 token's cost. A proxy with one worker
//! (`--concurrency 1`, a common sidecar setting) pays that for nothing: there
//! is no other worker to share with. So the VMs of one configuration keep a
//! roster in shared data, each refreshing its own line on every tick, and a
//! VM that has seen no other live VM for a while keeps the very same buckets
//! in its own memory instead.
//!
//! What this never changes is a verdict: a bucket vouches only for a
//! signature, under the proxy's secret, whichever memory holds it. What a
//! wrong guess costs is a verification: a token verified by a VM that still
//! thinks it is alone is verified once more by a newcomer. That window is
//! kept small: a VM starts in shared data and goes local only after
//! [`ALONE_FOR_MS`] with nobody else on the roster; a VM that is local moves
//! back on the tick after another VM appears and publishes its buckets as it
//! goes.
//!
//! The roster is one shared-data value: a version byte and up to
//! [`MAX_MEMBERS`] lines of (VM id, last seen in ms), both u64 little-endian.
//! Lines older than [`MEMBER_TTL_MS`] are dropped by whoever writes next, so
//! a VM that is gone (Envoy's configuration canary, a reloaded VM) stops
//! counting after a second.

use crate::shared_token_cache::{Bucket, Entry};

/// A line not refreshed for this long belongs to a VM that is gone. VMs
/// refresh theirs every tick (100 ms), so this leaves ten ticks of margin
/// for a busy worker.
pub const MEMBER_TTL_MS: u64 = 1_000;
/// How long a VM must have been the only live member before it keeps the
/// cache in its own memory: at start-up Envoy configures its workers one
/// after another, and the roster must have seen them all.
pub const ALONE_FOR_MS: u64 = 1_000;
/// Roster lines kept at most (bounded bytes). With more VMs than this the
/// cache simply stays in shared data.
pub const MAX_MEMBERS: usize = 64;
/// Format version, first byte of the roster value.
const VERSION: u8 = 1;
const LINE_BYTES: usize = 16;

/// The live lines of a roster value at `now_ms`: (VM id, last seen). A
/// malformed value reads as empty (it is rewritten on the next refresh).
fn live_members(value: Option<&[u8]>, now_ms: u64) -> Vec<(u64, u64)> {
    let Some((&VERSION, rest)) = value.and_then(<[u8]>::split_first) else {
        return Vec::new();
    };
    if rest.len() % LINE_BYTES != 0 {
        return Vec::new();
    }
    rest.chunks_exact(LINE_BYTES)
        .take(MAX_MEMBERS)
        .filter_map(|line| {
            let id = u64::from_le_bytes(line.get(..8)?.try_into().ok()?);
            let seen = u64::from_le_bytes(line.get(8..)?.try_into().ok()?);
            (seen.saturating_add(MEMBER_TTL_MS) > now_ms).then_some((id, seen))
        })
        .collect()
}

/// The roster value after VM `me` says it is alive at `now_ms`: its line
/// refreshed (or added), lines of VMs that are gone dropped, and, when full,
/// the stalest line making room.
pub fn refresh(value: Option<&[u8]>, me: u64, now_ms: u64) -> Vec<u8> {
    let mut lines: Vec<(u64, u64)> = live_members(value, now_ms)
        .into_iter()
        .filter(|(id, _)| *id != me)
        .collect();
    if lines.len() >= MAX_MEMBERS {
        lines.sort_by_key(|(_, seen)| std::cmp::Reverse(*seen));
        lines.truncate(MAX_MEMBERS - 1);
    }
    lines.push((me, now_ms));
    let mut out = Vec::with_capacity(1 + lines.len() * LINE_BYTES);
    out.push(VERSION);
    for (id, seen) in lines {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&seen.to_le_bytes());
    }
    out
}

/// Does the roster show a live VM other than `me`?
pub fn others_alive(value: Option<&[u8]>, me: u64, now_ms: u64) -> bool {
    live_members(value, now_ms).iter().any(|(id, _)| *id != me)
}

/// Which memory holds the cache for this VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// Proxy-wasm shared data: every VM of the configuration sees it.
    Shared,
    /// This VM's memory: it serves the configuration alone.
    Local,
}

/// A change of [`Home`] the shell must carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Start keeping buckets locally (the local store starts empty).
    ToLocal,
    /// Publish the local buckets into shared data, then use shared data.
    ToShared,
}

/// The decision, fed with one roster reading per tick.
#[derive(Debug, Clone)]
pub struct Placement {
    home: Home,
    /// Since when this VM has seen nobody else (ms), if it has not since.
    alone_since: Option<u64>,
}

impl Default for Placement {
    fn default() -> Self {
        Placement::new()
    }
}

impl Placement {
    /// Starts in shared data: a VM cannot know yet who else will start.
    pub fn new() -> Placement {
        Placement {
            home: Home::Shared,
            alone_since: None,
        }
    }

    /// Where the cache is now.
    pub fn home(&self) -> Home {
        self.home
    }

    /// Takes one roster reading (`others` = another live VM is on it) and
    /// says whether the cache moves.
    pub fn observe(&mut self, others: bool, now_ms: u64) -> Option<Move> {
        if others {
            self.alone_since = None;
            if self.home == Home::Local {
                self.home = Home::Shared;
                return Some(Move::ToShared);
            }
            return None;
        }
        let since = *self.alone_since.get_or_insert(now_ms);
        if self.home == Home::Shared && now_ms.saturating_sub(since) >= ALONE_FOR_MS {
            self.home = Home::Local;
            return Some(Move::ToLocal);
        }
        None
    }
}

/// The cache's buckets held in this VM's memory, decoded (lookups and
/// inserts in place; moving them to shared data is a plain merge).
/// Allocated bucket by bucket as tokens arrive: at most the configured size,
/// as in shared data.
#[derive(Debug, Default)]
pub struct LocalBuckets {
    buckets: Vec<Option<Box<Bucket>>>,
    count: usize,
}

impl LocalBuckets {
    /// An empty store of `count` buckets.
    pub fn new(count: usize) -> LocalBuckets {
        LocalBuckets {
            buckets: Vec::new(),
            count,
        }
    }

    /// Does `bucket` vouch for `want` at `now` (see [`Bucket::vouches`])?
    pub fn vouches(&self, bucket: usize, want: &Entry, now: u64) -> bool {
        self.buckets
            .get(bucket)
            .and_then(|b| b.as_deref())
            .is_some_and(|b| b.vouches(want, now))
    }

    /// Adds `entry` to its bucket (see [`Bucket::insert`]).
    pub fn insert(&mut self, bucket: usize, entry: Entry, now: u64) {
        if bucket >= self.count {
            return;
        }
        if self.buckets.len() < self.count {
            self.buckets.resize(self.count, None);
        }
        if let Some(slot) = self.buckets.get_mut(bucket) {
            slot.get_or_insert_with(Box::default).insert(entry, now);
        }
    }

    /// Empties the store, handing over the buckets that hold anything.
    pub fn take_all(&mut self) -> Vec<(usize, Box<Bucket>)> {
        std::mem::take(&mut self.buckets)
            .into_iter()
            .enumerate()
            .filter_map(|(i, b)| b.map(|b| (i, b)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_token_cache::{self, lookup, merge, TokenDigest};

    #[test]
    fn roster_keeps_live_members_and_forgets_the_gone() {
        let v = refresh(None, 1, 10_000);
        assert!(!others_alive(Some(&v), 1, 10_000), "alone");
        let v = refresh(Some(&v), 2, 10_050);
        assert!(others_alive(Some(&v), 1, 10_100));
        assert!(others_alive(Some(&v), 2, 10_100));
        // VM 1 stops refreshing (Envoy's canary is killed after configure).
        let v = refresh(Some(&v), 2, 10_900);
        assert!(others_alive(Some(&v), 2, 10_999), "1 still within its TTL");
        assert!(!others_alive(Some(&v), 2, 11_000), "gone after the TTL");
        let v = refresh(Some(&v), 2, 11_000);
        assert_eq!(
            v.len(),
            1 + LINE_BYTES,
            "a line of a gone VM is dropped on write"
        );
    }

    #[test]
    fn roster_is_bounded_and_keeps_the_freshest() {
        let mut v = None;
        for id in 0..(MAX_MEMBERS as u64 + 10) {
            v = Some(refresh(v.as_deref(), id, 5_000 + id));
        }
        let v = v.unwrap();
        assert_eq!(v.len(), 1 + MAX_MEMBERS * LINE_BYTES);
        let live = live_members(Some(&v), 5_100);
        assert!(
            live.iter().any(|(id, _)| *id == MAX_MEMBERS as u64 + 9),
            "the newest is in"
        );
        assert!(
            !live.iter().any(|(id, _)| *id == 0),
            "the stalest made room"
        );
    }

    #[test]
    fn malformed_roster_reads_as_nobody() {
        for bad in [
            &b""[..],
            b"\x02",
            b"\x01\x00\x01",
            &[1u8; 1 + LINE_BYTES + 3][..],
        ] {
            assert!(live_members(Some(bad), 0).is_empty(), "{bad:?}");
            assert!(!others_alive(Some(bad), 7, 0));
            let v = refresh(Some(bad), 7, 0);
            assert_eq!(live_members(Some(&v), 0), vec![(7, 0)]);
        }
    }

    #[test]
    fn goes_local_only_after_being_alone_for_a_while_and_back_at_once() {
        let mut p = Placement::new();
        assert_eq!(p.home(), Home::Shared);
        assert_eq!(
            p.observe(true, 0),
            None,
            "start-up: the canary is still listed"
        );
        assert_eq!(p.observe(false, 100), None);
        assert_eq!(p.observe(false, 100 + ALONE_FOR_MS - 1), None);
        // Someone shows up: the clock starts again.
        assert_eq!(p.observe(true, 100 + ALONE_FOR_MS), None);
        assert_eq!(p.observe(false, 2_000), None);
        assert_eq!(p.observe(false, 2_000 + ALONE_FOR_MS), Some(Move::ToLocal));
        assert_eq!(p.home(), Home::Local);
        assert_eq!(p.observe(false, 9_000), None);
        assert_eq!(p.observe(true, 9_100), Some(Move::ToShared));
        assert_eq!(p.home(), Home::Shared);
        assert_eq!(p.observe(true, 9_200), None);
    }

    fn entry(token: &str) -> Entry {
        Entry {
            digest: TokenDigest::of(b"0123456789abcdef", token),
            provider: 0,
            fingerprint: 3,
            exp: 1_000,
        }
    }

    #[test]
    fn local_buckets_answer_as_shared_ones_and_hand_over_what_they_hold() {
        let mut l = LocalBuckets::new(4);
        let (a, b) = (entry("a"), entry("b"));
        assert!(!l.vouches(1, &a, 10));
        l.insert(1, a, 10);
        l.insert(3, b, 10);
        l.insert(4, b, 10); // out of range: ignored
        assert!(l.vouches(1, &a, 10));
        assert!(!l.vouches(1, &b, 10));
        assert!(!l.vouches(1, &a, 1_000), "expired");
        let all = l.take_all();
        assert_eq!(all.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 3]);
        assert!(!l.vouches(1, &a, 10), "empty after the hand-over");
        // Merged into what another VM wrote meanwhile, both survive.
        let theirs = shared_token_cache::insert(None, entry("c"), 10);
        let merged = merge(Some(&theirs), &all[0].1, 10);
        assert!(lookup(Some(&merged), &a, 10));
        assert!(lookup(Some(&merged), &entry("c"), 10));
    }
}
