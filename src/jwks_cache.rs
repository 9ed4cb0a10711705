//! Remote JWKS cache: the fetch / refresh / back-off / stale-if-error state
//! machine, shared by every worker VM of one proxy.
//!
//! Envoy runs one VM per worker thread. The state below lives in proxy-wasm
//! shared data (one small record per provider, next to the JWKS body), and a
//! compare-and-swap on it is the lease that makes exactly one VM fetch at a
//! time. Each function here is pure: it takes the record and the time and
//! returns the next record, so the whole behaviour is tested with a fake clock.
//!
//! Timeline of a provider's keys (all times in milliseconds):
//! - fresh until `fetched_at + cache_duration`: a refresh is then due;
//! - stale but usable until `fetched_at + cache_duration + stale_if_error`
//!   while refreshes fail (metric `stale_keys_in_use`);
//! - unusable after that: requests get 401 `jwks_unavailable`.

use crate::config::RemoteJwks;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The per-provider record in shared data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheState {
    /// Bumped on every successful fetch; workers reload the body when it changes.
    pub generation: u64,
    /// When the current keys were fetched (0 = never).
    pub fetched_at: u64,
    /// Next time a fetch should start (refresh or retry).
    pub next_fetch_at: u64,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// Holder of the fetch lease and when it lapses.
    pub lease: Option<Lease>,
    /// Last time a fetch was asked for because of an unknown `kid`.
    pub unknown_kid_requested_at: u64,
    /// JWKS URI learned from OIDC discovery.
    pub discovered_jwks_uri: Option<String>,
    /// Number of usable keys in the current set.
    pub key_count: u32,
    /// Keys skipped in the current set.
    pub skipped_keys: u32,
}

/// Who may fetch, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Random id of the VM holding it.
    pub owner: u64,
    /// Lapses at this time even if the holder vanished.
    pub until: u64,
}

/// How usable the cached keys are right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No keys were ever fetched.
    None,
    /// Within `cache_duration`.
    Fresh,
    /// Past `cache_duration`, within `stale_if_error`.
    Stale,
    /// Past `stale_if_error`: not to be used.
    Expired,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl CacheState {
    /// Serialises for shared data.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads shared data; garbage reads as a fresh record (never a panic).
    pub fn from_bytes(bytes: Option<&[u8]>) -> CacheState {
        bytes
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    /// How usable the keys are at `now`.
    pub fn freshness(&self, cfg: &RemoteJwks, now: u64) -> Freshness {
        if self.fetched_at == 0 || self.key_count == 0 {
            return Freshness::None;
        }
        let fresh_until = self.fetched_at.saturating_add(ms(cfg.cache_duration));
        if now < fresh_until {
            Freshness::Fresh
        } else if now < fresh_until.saturating_add(ms(cfg.stale_if_error)) {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// True while a fetch is due: first fetch, refresh time reached, or an
    /// unknown-`kid` request newer than the keys.
    pub fn fetch_due(&self, now: u64) -> bool {
        self.fetched_at == 0 && self.failures == 0
            || now >= self.next_fetch_at
            || self.unknown_kid_requested_at > self.fetched_at
                && self.unknown_kid_pending_allowed(now)
    }

    fn unknown_kid_pending_allowed(&self, now: u64) -> bool {
        // A failure after the request already answered it; wait for the back-off.
        now >= self.next_fetch_at || self.failures == 0
    }

    /// True while another VM's lease is live.
    pub fn leased_by_other(&self, me: u64, now: u64) -> bool {
        matches!(self.lease, Some(l) if l.owner != me && l.until > now)
    }

    /// If a fetch is due and nobody else holds the lease, the record that takes
    /// it (to be written with compare-and-swap; only the winner fetches).
    pub fn try_lease(&self, cfg: &RemoteJwks, me: u64, now: u64) -> Option<CacheState> {
        if !self.fetch_due(now) || self.leased_by_other(me, now) {
            return None;
        }
        if matches!(self.lease, Some(l) if l.owner == me && l.until > now) {
            return None; // our own fetch is already under way
        }
        let mut next = self.clone();
        // Discovery needs two calls; give the lease room for both plus slack.
        let span = ms(cfg.timeout).saturating_mul(2).saturating_add(1000);
        next.lease = Some(Lease {
            owner: me,
            until: now.saturating_add(span),
        });
        Some(next)
    }

    /// A fetch succeeded with a set of `key_count` usable keys.
    pub fn on_success(
        &self,
        cfg: &RemoteJwks,
        now: u64,
        key_count: u32,
        skipped: u32,
    ) -> CacheState {
        let mut next = self.clone();
        next.generation = self.generation.wrapping_add(1);
        next.fetched_at = now.max(1);
        next.next_fetch_at = now.saturating_add(ms(cfg.cache_duration));
        next.failures = 0;
        next.lease = None;
        next.key_count = key_count;
        next.skipped_keys = skipped;
        next
    }

    /// A fetch failed; schedule the retry with exponential back-off and
    /// jitter. `jitter` is a uniform sample in [0, 1).
    pub fn on_failure(&self, cfg: &RemoteJwks, now: u64, jitter: f64) -> CacheState {
        let mut next = self.clone();
        next.failures = self.failures.saturating_add(1);
        next.lease = None;
        next.next_fetch_at = now.saturating_add(backoff(cfg, next.failures, jitter));
        next
    }

    /// True once the first fetch cycle (1 + `num_retries` attempts) has failed
    /// without ever producing keys: waiting requests give up with 401.
    pub fn cold_start_failed(&self, cfg: &RemoteJwks) -> bool {
        self.key_count == 0 && self.failures > cfg.num_retries
    }

    /// Asks for a refetch because a token named an unknown `kid`. Returns the
    /// new record, or `None` when rate-limited (an earlier one is too recent).
    pub fn request_unknown_kid(&self, cfg: &RemoteJwks, now: u64) -> Option<CacheState> {
        if self.unknown_kid_in_flight() {
            return Some(self.clone());
        }
        let interval = ms(cfg.unknown_kid_refetch_interval);
        if self.unknown_kid_requested_at != 0
            && now < self.unknown_kid_requested_at.saturating_add(interval)
        {
            return None;
        }
        let mut next = self.clone();
        // The request comes after the fetch whose keys lacked the kid, even
        // when both fall in the same millisecond (a VM that fetched and then
        // re-judged its waiting requests at once): equal stamps would read
        // as "answered already" and the refetch would never start.
        next.unknown_kid_requested_at = now.max(self.fetched_at.saturating_add(1)).max(1);
        Some(next)
    }

    /// An unknown-`kid` refetch was asked for and has not completed yet.
    pub fn unknown_kid_in_flight(&self) -> bool {
        self.unknown_kid_requested_at > self.fetched_at && self.failures == 0
    }

    /// May a request with an unknown `kid` wait for a refetch now?
    pub fn may_refetch_unknown_kid(&self, cfg: &RemoteJwks, now: u64) -> bool {
        self.request_unknown_kid(cfg, now).is_some()
    }
}

/// Delay after the `failures`-th consecutive failure: the floor is
/// `retry_policy.retry_back_off.base_interval` when a retry policy is set, else
/// `async_fetch.failed_refetch_duration`; it doubles per failure up to
/// `max_interval` (but never above `cache_duration`), and is jittered down by up
/// to 25% so proxies restarted together do not stampede the IdP.
pub fn backoff(cfg: &RemoteJwks, failures: u32, jitter: f64) -> u64 {
    let floor = if cfg.num_retries > 0 {
        ms(cfg.retry_base)
    } else {
        ms(cfg.failed_refetch)
    }
    .max(1);
    let cap = ms(cfg.retry_max)
        .max(floor)
        .min(ms(cfg.cache_duration).max(floor));
    let exp = failures.saturating_sub(1).min(30);
    let raw = floor.saturating_mul(1u64 << exp).min(cap);
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let cut = (raw as f64 * 0.25 * j) as u64;
    raw.saturating_sub(cut).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpTarget, RemoteTarget};
    use crate::jwk::JwksOptions;

    fn cfg() -> RemoteJwks {
        RemoteJwks {
            target: RemoteTarget::Jwks(HttpTarget::parse("http://idp/jwks", "x").unwrap()),
            cluster: "idp".into(),
            timeout: Duration::from_secs(1),
            cache_duration: Duration::from_secs(600),
            failed_refetch: Duration::from_secs(1),
            num_retries: 0,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(3600),
            unknown_kid_refetch_interval: Duration::from_secs(30),
            max_jwks_bytes: 1 << 18,
            jwks_options: JwksOptions::default(),
        }
    }

    const T0: u64 = 1_000_000;

    #[test]
    fn first_fetch_is_due_and_only_one_vm_gets_the_lease() {
        let c = cfg();
        let s = CacheState::default();
        assert!(s.fetch_due(T0));
        let a = s.try_lease(&c, 1, T0).expect("vm 1 leases");
        // vm 2 reads the record vm 1 wrote: leased, so it does not fetch.
        assert!(a.try_lease(&c, 2, T0 + 10).is_none());
        // vm 1 does not start a second fetch of its own either.
        assert!(a.try_lease(&c, 1, T0 + 10).is_none());
        // A holder that vanished loses the lease when it lapses.
        assert!(a.try_lease(&c, 2, T0 + 3001).is_some());
    }

    #[test]
    fn success_schedules_refresh_and_keys_age_through_stale_to_expired() {
        let c = cfg();
        let s = CacheState::default()
            .try_lease(&c, 1, T0)
            .unwrap()
            .on_success(&c, T0, 2, 1);
        assert_eq!(
            (s.generation, s.key_count, s.skipped_keys, s.lease),
            (1, 2, 1, None)
        );
        assert_eq!(s.freshness(&c, T0 + 599_999), Freshness::Fresh);
        assert!(!s.fetch_due(T0 + 599_999));
        assert!(s.fetch_due(T0 + 600_000));
        assert_eq!(s.freshness(&c, T0 + 600_000), Freshness::Stale);
        assert_eq!(s.freshness(&c, T0 + 600_000 + 3_599_999), Freshness::Stale);
        assert_eq!(
            s.freshness(&c, T0 + 600_000 + 3_600_000),
            Freshness::Expired
        );
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_and_keep_last_good_keys() {
        let c = cfg();
        let good = CacheState::default().on_success(&c, T0, 1, 0);
        let t = T0 + 600_000;
        let f1 = good.on_failure(&c, t, 0.0);
        assert_eq!((f1.failures, f1.next_fetch_at - t), (1, 1000));
        let f2 = f1.on_failure(&c, t, 0.0);
        assert_eq!(f2.next_fetch_at - t, 2000);
        let f3 = f2.on_failure(&c, t, 0.0);
        assert_eq!(f3.next_fetch_at - t, 4000);
        let mut s = f3.clone();
        for _ in 0..20 {
            s = s.on_failure(&c, t, 0.0);
        }
        assert_eq!(s.next_fetch_at - t, 10_000, "capped at max_interval");
        let jittered = f3.on_failure(&c, t, 0.999);
        assert!(jittered.next_fetch_at - t > 6000 && jittered.next_fetch_at - t <= 8000);
        assert_eq!(
            s.freshness(&c, t + 1000),
            Freshness::Stale,
            "last good keys survive"
        );
        assert_eq!(s.generation, 1);
        let back = s.on_success(&c, t + 20_000, 3, 0);
        assert_eq!((back.failures, back.generation), (0, 2));
    }

    #[test]
    fn retry_policy_sets_the_floor_and_cold_start_gives_up_after_retries() {
        let mut c = cfg();
        c.num_retries = 2;
        c.retry_base = Duration::from_millis(200);
        c.retry_max = Duration::from_millis(500);
        assert_eq!(backoff(&c, 1, 0.0), 200);
        assert_eq!(backoff(&c, 2, 0.0), 400);
        assert_eq!(backoff(&c, 3, 0.0), 500);
        let s = CacheState::default().on_failure(&c, T0, 0.0);
        assert!(!s.cold_start_failed(&c));
        let s = s.on_failure(&c, T0, 0.0).on_failure(&c, T0, 0.0);
        assert!(s.cold_start_failed(&c));
        assert!(!s.fetch_due(T0 + 499));
        assert!(s.fetch_due(T0 + 500), "recovery keeps being tried");
    }

    #[test]
    fn unknown_kid_refetch_is_coalesced_and_rate_limited() {
        let c = cfg();
        let s = CacheState::default().on_success(&c, T0, 1, 0);
        let t = T0 + 5_000;
        assert!(!s.fetch_due(t));
        let asked = s.request_unknown_kid(&c, t).expect("first request");
        assert!(
            asked.fetch_due(t),
            "an unknown kid makes a fetch due at once"
        );
        assert!(asked.unknown_kid_in_flight());
        // A second request while that refetch is in flight waits for it too.
        assert_eq!(asked.request_unknown_kid(&c, t + 5), Some(asked.clone()));
        let done = asked.on_success(&c, t + 50, 2, 0);
        assert!(!done.unknown_kid_in_flight());
        assert!(
            !done.may_refetch_unknown_kid(&c, t + 10_000),
            "rate limited for 30s"
        );
        assert!(done.may_refetch_unknown_kid(&c, t + 30_000));
        // A failed unknown-kid refetch does not turn into a fetch loop.
        let failed = asked.on_failure(&c, t + 50, 0.0);
        assert!(!failed.fetch_due(t + 60));
        assert!(!failed.may_refetch_unknown_kid(&c, t + 60));
    }

    #[test]
    fn an_unknown_kid_in_the_millisecond_of_the_fetch_still_refetches() {
        let c = cfg();
        let s = CacheState::default().on_success(&c, T0, 1, 0);
        let asked = s.request_unknown_kid(&c, T0).expect("first request");
        assert!(asked.unknown_kid_in_flight());
        assert!(asked.fetch_due(T0), "the refetch starts");
        let done = asked.on_success(&c, T0 + 1, 2, 0);
        assert!(!done.unknown_kid_in_flight());
        assert!(
            !done.may_refetch_unknown_kid(&c, T0 + 2),
            "still rate-limited"
        );
    }

    #[test]
    fn garbage_in_shared_data_reads_as_empty() {
        assert_eq!(
            CacheState::from_bytes(Some(b"\xff garbage")),
            CacheState::default()
        );
        assert_eq!(CacheState::from_bytes(None), CacheState::default());
        let s = CacheState {
            generation: 7,
            ..Default::default()
        };
        assert_eq!(CacheState::from_bytes(Some(&s.to_bytes())), s);
    }
}
