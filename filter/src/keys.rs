//! Remote keys for one VM: a view of the shared cache record, the parsed key
//! set it points to, and the callouts this VM runs when it holds the lease.
//!
//! Shared data keys (per provider, hashed with the provider's remote settings
//! so two plugins sharing a VM never mix their keys):
//! `jwt_authn_wasm.v1.<hash>.state` (a `CacheState` record, CAS-updated) and
//! `jwt_authn_wasm.v1.<hash>.jwks` (the last good JWKS body).

use crate::host;
use crate::metrics::{self, Metrics};
use jwt_authn::alg::Alg;
use jwt_authn::cache_placement::{self, Home, LocalBuckets, Move, Placement};
use jwt_authn::cache_sampling::{self, Sampling};
use jwt_authn::config::{Config, HttpTarget, KeySource, ProviderId, RemoteJwks, RemoteTarget};
use jwt_authn::engine::{KeyStore, RemoteKeys};
use jwt_authn::host_crypto::{self, HostCheck};
use jwt_authn::jwk::{self, KeyMaterial, KeySet};
use jwt_authn::jwks_cache::{CacheState, Freshness};
use jwt_authn::memo::Memo;
use jwt_authn::shared_token_cache::{self as shared_cache, TokenDigest};
use jwt_authn::verified_cache::{CachedToken, VerifiedCache};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

/// Which document a callout is fetching.
#[derive(Debug, Clone)]
enum Stage {
    Discovery,
    Jwks { uri: String, discovered: bool },
}

#[derive(Debug, Clone)]
struct InFlight {
    token: u32,
    stage: Stage,
}

/// One remote provider as this VM sees it.
#[derive(Debug)]
pub struct RemoteProvider {
    /// Provider name (logs, metrics).
    pub name: String,
    /// Its settings.
    pub cfg: RemoteJwks,
    state_key: String,
    body_key: String,
    /// Last record read from shared data.
    pub view: CacheState,
    keys: Option<Arc<KeySet>>,
    /// Fingerprint of `keys` (a hash of the JWKS text), the same in every VM
    /// that parsed the same document: shared verdicts are tied to it.
    keys_fp: u64,
    in_flight: Option<InFlight>,
    stale_logged: bool,
    /// CAS of the shared record when `reload` last read it: Envoy gives every
    /// write a new one, so an equal CAS means nothing changed since.
    seen_cas: Option<u32>,
}

/// The proxy-wide verified-token cache (see `jwt_authn::shared_token_cache`),
/// in shared data or, while this VM serves its configuration alone, in
/// this VM's memory (see `jwt_authn::cache_placement`).
#[derive(Debug)]
struct SharedTokens {
    /// Shared-data key prefix, specific to this plugin configuration.
    prefix: String,
    buckets: usize,
    /// Drawn by the first VM and adopted by every other one; `None` (cache
    /// off) until known.
    secret: Cell<Option<[u8; 16]>>,
    /// Shared-data key of the roster of VMs serving this configuration.
    roster_key: String,
    placement: RefCell<Placement>,
    /// The buckets while `placement` says `Local`.
    local: RefCell<LocalBuckets>,
    /// This VM has served a request, so it is on the roster. Envoy's
    /// main-thread VM and its configuration canary never serve one, and must
    /// not count as workers.
    serving: Cell<bool>,
    /// Which new tokens take part (see `jwt_authn::cache_sampling`).
    sampling: RefCell<Sampling>,
}

impl SharedTokens {
    fn home(&self) -> Home {
        self.placement
            .try_borrow()
            .map_or(Home::Shared, |p| p.home())
    }

    fn takes_part(&self, secret: &[u8; 16], token: &str) -> bool {
        self.sampling.try_borrow().is_ok_and(|s| {
            s.mode() == cache_sampling::Mode::All
                || s.takes_part(cache_sampling::subset_hash(secret, token))
        })
    }

    fn record_lookup(&self, hit: bool) {
        if let Ok(mut s) = self.sampling.try_borrow_mut() {
            s.record(hit);
        }
    }
}

/// Counts gathered on the request path and flushed to Envoy on each tick, so
/// a cache hit costs no extra host call.
#[derive(Debug, Default)]
struct CacheCounts {
    local_hit: Cell<u64>,
    shared_hit: Cell<u64>,
    miss: Cell<u64>,
    verifications: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get().wrapping_add(1));
}

/// All remote providers of one plugin, indexed by `ProviderId`, and the
/// verified-token caches (this VM's, and the proxy-wide one).
#[derive(Debug, Default)]
pub struct Keys {
    providers: Vec<Option<RemoteProvider>>,
    verified: RefCell<VerifiedCache>,
    shared: Option<SharedTokens>,
    counts: CacheCounts,
    /// The host's `verify_signature` passed the start-up probe and the config
    /// allows it.
    pub host_crypto: bool,
}

/// Shared-data key of the shared token cache's secret (one per proxy).
const SECRET_KEY: &str = "jwt_authn_wasm.v1.token_cache_secret";

fn read_secret() -> Option<[u8; 16]> {
    let (v, _) = host::shared_get(SECRET_KEY);
    v.and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
}

/// `prefix` followed by the bucket number in decimal (on every shared-cache
/// miss: without `format!`'s machinery).
fn bucket_key(prefix: &str, bucket: usize) -> String {
    let mut digits = [0u8; 20];
    let mut n = bucket;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    let mut key = String::with_capacity(prefix.len() + digits.len() - i);
    key.push_str(prefix);
    for d in digits.iter().skip(i) {
        key.push(char::from(*d));
    }
    key
}

/// Read-modify-write of one shared-data value under its CAS, tried again
/// (up to `tries` times) when another VM wrote in between. `next` maps the
/// current value (`None`: absent) to the one to write. Returns what was
/// written; `None` when every try lost or the host refused.
fn cas_update(key: &str, tries: usize, next: impl Fn(Option<&[u8]>) -> Vec<u8>) -> Option<Vec<u8>> {
    for _ in 0..tries {
        let (value, cas) = host::shared_get(key);
        let new = next(value.as_deref());
        match host::shared_set(key, &new, cas) {
            Ok(()) => return Some(new),
            Err(Status::CasMismatch) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// Merges a bucket this VM kept into the shared one (a few tries: a lost
/// bucket only costs verifications, never a verdict).
fn publish_bucket(key: &str, held: &shared_cache::Bucket, now: u64) {
    let _ = cas_update(key, 4, |value| shared_cache::merge(value, held, now));
}

/// FNV-1a, to give shared-data keys a stable, config-dependent name.
pub fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn target_uri(t: &RemoteTarget) -> &str {
    match t {
        RemoteTarget::Jwks(h) | RemoteTarget::Discovery(h) => &h.uri,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads and CAS-updates a state record; `f` returns `None` to leave it alone.
fn update_state(key: &str, f: impl Fn(&CacheState) -> Option<CacheState>) -> Option<CacheState> {
    for _ in 0..8 {
        let (bytes, cas) = host::shared_get(key);
        if cas.is_none() {
            // First writer creates the record; a racing creator writes the same default.
            let _ = host::shared_set(key, &CacheState::default().to_bytes(), None);
            continue;
        }
        let cur = CacheState::from_bytes(bytes.as_deref());
        let next = f(&cur)?;
        match host::shared_set(key, &next.to_bytes(), cas) {
            Ok(()) => return Some(next),
            Err(Status::CasMismatch) => continue,
            Err(_) => return None,
        }
    }
    None
}

impl Keys {
    /// Sets up the remote providers of a config; `config_hash` names this
    /// configuration's share of the proxy-wide token cache.
    pub fn new(config: &Config, metrics: &mut Metrics, config_hash: u64) -> Keys {
        let providers = config
            .providers
            .iter()
            .enumerate()
            .map(|(id, p)| match &p.keys {
                KeySource::Remote(r) => {
                    metrics.add_provider(id, &p.name);
                    let h = fnv(&[
                        &p.name,
                        target_uri(&r.target),
                        &r.cluster,
                        &format!("{:?}", r.jwks_options),
                    ]);
                    Some(RemoteProvider {
                        name: p.name.clone(),
                        cfg: (**r).clone(),
                        state_key: format!("jwt_authn_wasm.v1.{h:016x}.state"),
                        body_key: format!("jwt_authn_wasm.v1.{h:016x}.jwks"),
                        view: CacheState::default(),
                        keys: None,
                        keys_fp: 0,
                        in_flight: None,
                        stale_logged: false,
                        seen_cas: None,
                    })
                }
                KeySource::Local(_) => None,
            })
            .collect();
        let shared = (config.shared_token_cache_size > 0).then(|| SharedTokens {
            prefix: format!("jwt_authn_wasm.v1.{config_hash:016x}.tc."),
            buckets: shared_cache::bucket_count(config.shared_token_cache_size),
            secret: Cell::new(None),
            roster_key: format!("jwt_authn_wasm.v1.{config_hash:016x}.vms"),
            placement: RefCell::new(Placement::new()),
            local: RefCell::new(LocalBuckets::new(0)),
            serving: Cell::new(false),
            sampling: RefCell::new(Sampling::new(config.shared_token_cache_size)),
        });
        Keys {
            providers,
            verified: RefCell::new(VerifiedCache::new(
                config.jwt_cache_size,
                host::random_u64(),
            )),
            shared,
            counts: CacheCounts::default(),
            host_crypto: false,
        }
    }

    /// Learns the proxy's token-cache secret, drawing it if this VM is the
    /// first. Called at configure and on every tick: when two VMs race to draw
    /// it, the one stored last wins and the other adopts it on its next tick
    /// (until then their shared entries simply do not match).
    pub fn sync_shared_secret(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let secret = match read_secret() {
            Some(s) => Some(s),
            None => host::random_16().and_then(|fresh| {
                host::shared_set(SECRET_KEY, &fresh, None).ok()?;
                read_secret()
            }),
        };
        shared.secret.set(secret);
    }

    /// Puts this VM on the roster when it serves its first request (see
    /// `SharedTokens::serving`); one flag test per request after that.
    pub fn note_serving(&self, me: u64, now_ms: u64, metrics: &Metrics) {
        if let Some(shared) = &self.shared {
            if !shared.serving.replace(true) {
                self.place_shared_cache(me, now_ms, metrics);
            }
        }
    }

    /// Says on the roster that this VM (`me`) is alive, and moves the
    /// verified-token cache between shared data and this VM's memory when
    /// the roster says so (see `jwt_authn::cache_placement`). Called on
    /// every tick once the VM serves requests.
    pub fn place_shared_cache(&self, me: u64, now_ms: u64, metrics: &Metrics) {
        let Some(shared) = &self.shared else {
            return;
        };
        if !shared.serving.get() {
            return;
        }
        // Unknown (the roster could not be written) counts as "not alone".
        let others = cas_update(&shared.roster_key, 8, |value| {
            cache_placement::refresh(value, me, now_ms)
        })
        .map_or(true, |roster| {
            cache_placement::others_alive(Some(&roster), me, now_ms)
        });
        let Ok(mut placement) = shared.placement.try_borrow_mut() else {
            return;
        };
        let Ok(mut local) = shared.local.try_borrow_mut() else {
            return;
        };
        match placement.observe(others, now_ms) {
            Some(Move::ToLocal) => {
                *local = LocalBuckets::new(shared.buckets);
                log::info!(
                    "token cache: no other VM serves this configuration; verdicts stay in this VM's memory"
                );
            }
            Some(Move::ToShared) => {
                let held = local.take_all();
                let n = held.len();
                for (bucket, bytes) in held {
                    publish_bucket(&bucket_key(&shared.prefix, bucket), &bytes, now_ms / 1000);
                }
                log::info!(
                    "token cache: another VM serves this configuration; verdicts move to shared data ({n} buckets published)"
                );
            }
            None => {}
        }
        metrics::set(
            metrics.cache().in_vm_memory,
            u64::from(placement.home() == Home::Local),
        );
    }

    /// Publishes the request-path counts gathered since the last tick.
    pub fn flush_counts(&self, metrics: &Metrics) {
        let c = &self.counts;
        let m = metrics.cache();
        for (cell, id) in [
            (&c.local_hit, m.local_hit),
            (&c.shared_hit, m.shared_hit),
            (&c.miss, m.miss),
            (&c.verifications, m.verifications),
        ] {
            let n = cell.replace(0);
            if n > 0 {
                metrics::add(id, n);
            }
        }
        metrics::set(m.vm_memory_bytes, host::vm_memory_bytes());
        if let Some(shared) = &self.shared {
            let subset = shared
                .sampling
                .try_borrow()
                .is_ok_and(|s| s.mode() == cache_sampling::Mode::Subset);
            metrics::set(m.sampled, u64::from(subset));
        }
    }

    /// The fingerprint of the keys a provider verifies with now (0 for keys
    /// from the config, whose text is part of the configuration hash).
    fn fingerprint(&self, id: ProviderId) -> u64 {
        self.provider(id).map_or(0, |p| p.keys_fp)
    }

    /// Whether the proxy-wide cache leaves this token out while it samples
    /// (see `jwt_authn::cache_sampling`): neither looked up nor recorded.
    fn sits_out(&self, token: &str) -> bool {
        self.shared.as_ref().is_some_and(|s| {
            s.secret
                .get()
                .is_some_and(|secret| !s.takes_part(&secret, token))
        })
    }

    /// The cache, the bucket and the entry that stand for (token, provider, keys).
    fn shared_entry(
        &self,
        token: &str,
        id: ProviderId,
        exp: u64,
    ) -> Option<(&SharedTokens, usize, shared_cache::Entry)> {
        let shared = self.shared.as_ref()?;
        let secret = shared.secret.get()?;
        let digest = TokenDigest::of(&secret, token);
        let entry = shared_cache::Entry {
            digest,
            provider: u16::try_from(id).ok()?,
            fingerprint: self.fingerprint(id),
            exp: shared_cache::expiry(exp),
        };
        Some((shared, digest.bucket(shared.buckets), entry))
    }

    /// The provider's view, if it is remote.
    pub fn provider(&self, id: ProviderId) -> Option<&RemoteProvider> {
        self.providers.get(id).and_then(Option::as_ref)
    }

    /// A `KeyStore` for one evaluation at `now_ms`.
    pub fn at(&self, now_ms: u64) -> KeysAt<'_> {
        KeysAt {
            keys: self,
            now: now_ms,
            pending: RefCell::new(None),
        }
    }

    /// Periodic work: reload what other VMs fetched, update gauges, and start a
    /// fetch when one is due and this VM wins the lease.
    pub fn tick(&mut self, now: u64, me: u64, metrics: &Metrics) {
        for id in 0..self.providers.len() {
            let Some(p) = self.providers.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            p.reload(now, metrics.provider(id));
            if p.in_flight.is_some() {
                continue;
            }
            let cfg = p.cfg.clone();
            if let Some(won) = update_state(&p.state_key, |s| s.try_lease(&cfg, me, now)) {
                p.view = won;
                p.start(now, metrics, id);
            }
        }
    }

    /// Before a request is judged: a provider this VM has no keys for yet may
    /// have them in shared data already (fetched by another VM since this
    /// VM's last tick). Without this, a request arriving in that window waited
    /// for "no keys", woke on the reload, and then could not wait again for an
    /// unknown `kid` (seen as a rare 401 in the rotation burst test). Costs a
    /// shared-data read per request only while a provider has no keys (an
    /// IdP down since start), and the record is parsed only when it changed.
    pub fn reload_missing(&mut self, now: u64, metrics: &Metrics) {
        for id in 0..self.providers.len() {
            if let Some(p) = self.providers.get_mut(id).and_then(Option::as_mut) {
                if p.keys.is_none() {
                    p.reload_if_changed(now, metrics.provider(id));
                }
            }
        }
    }

    /// Asks (across all VMs) for a refetch because of an unknown `kid`.
    /// `false` when rate-limited.
    pub fn request_unknown_kid(&mut self, id: ProviderId, now: u64, metrics: &Metrics) -> bool {
        let Some(p) = self.providers.get_mut(id).and_then(Option::as_mut) else {
            return false;
        };
        let cfg = p.cfg.clone();
        // Decided on the current shared record, not this VM's tick-old view, so
        // the refetch is counted once however many workers ask for it.
        let started = std::cell::Cell::new(false);
        match update_state(&p.state_key, |s| {
            let next = s.request_unknown_kid(&cfg, now)?;
            started.set(!s.unknown_kid_in_flight() && next.unknown_kid_in_flight());
            Some(next)
        }) {
            Some(s) => {
                if started.get() {
                    metrics::inc(metrics.provider(id).unknown_kid_refetch);
                }
                p.view = s;
                true
            }
            None => false,
        }
    }

    /// Routes a callout response; `false` if the token is not ours.
    pub fn on_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        now: u64,
        metrics: &Metrics,
    ) -> bool {
        for id in 0..self.providers.len() {
            let Some(p) = self.providers.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            if p.in_flight.as_ref().map(|f| f.token) == Some(token) {
                p.on_response(num_headers, body_size, now, metrics, id);
                return true;
            }
        }
        false
    }
}

impl RemoteProvider {
    /// Re-reads the shared record; reloads the body when another VM fetched.
    fn reload(&mut self, now: u64, m: metrics::ProviderMetrics) {
        let (bytes, cas) = host::shared_get(&self.state_key);
        self.apply_record(bytes.as_deref(), cas, now, m);
    }

    /// `reload` on the request path: a record not written since the last
    /// read (same CAS) is not parsed again. While an IdP is down since start
    /// that parse was most of what every request paid for the missing keys.
    fn reload_if_changed(&mut self, now: u64, m: metrics::ProviderMetrics) {
        let (bytes, cas) = host::shared_get(&self.state_key);
        if cas.is_some() && cas == self.seen_cas {
            return;
        }
        self.apply_record(bytes.as_deref(), cas, now, m);
    }

    /// Takes in the shared record read with `cas`: the key set when another
    /// VM fetched one, the view, the gauges.
    fn apply_record(
        &mut self,
        bytes: Option<&[u8]>,
        cas: Option<u32>,
        now: u64,
        m: metrics::ProviderMetrics,
    ) {
        self.seen_cas = cas;
        let state = CacheState::from_bytes(bytes);
        if state.generation != self.view.generation || (self.keys.is_none() && state.key_count > 0)
        {
            let (body, _) = host::shared_get(&self.body_key);
            if let Some(body) = body {
                match std::str::from_utf8(&body)
                    .ok()
                    .map(|t| (jwk::parse_key_set(t, &self.cfg.jwks_options), fnv(&[t])))
                {
                    Some((Ok(set), fp)) => {
                        self.keys = Some(Arc::new(set));
                        self.keys_fp = fp;
                    }
                    _ => log::warn!(
                        "jwks {}: shared key set could not be read; keeping the previous one",
                        self.name
                    ),
                }
            }
        }
        self.view = state;
        metrics::set(m.keys, u64::from(self.view.key_count));
        metrics::set(m.skipped_keys, u64::from(self.view.skipped_keys));
        // Stale-if-error only once a refresh has actually failed: a refresh that
        // is merely due (or in flight) is not an outage.
        let stale = self.keys.is_some()
            && self.view.failures > 0
            && self.view.freshness(&self.cfg, now) == Freshness::Stale;
        metrics::set(m.stale_keys_in_use, u64::from(stale));
        if stale && !self.stale_logged {
            let age_s = now.saturating_sub(self.view.fetched_at) / 1000;
            log::warn!("jwks {}: refresh failing; serving last good keys fetched {age_s}s ago (stale-if-error)", self.name);
        }
        self.stale_logged = stale;
    }

    /// Starts the fetch this VM just leased.
    fn start(&mut self, now: u64, metrics: &Metrics, id: usize) {
        let stage = match (&self.cfg.target, &self.view.discovered_jwks_uri) {
            (RemoteTarget::Discovery(_), Some(uri)) => Stage::Jwks {
                uri: uri.clone(),
                discovered: true,
            },
            (RemoteTarget::Discovery(_), None) => Stage::Discovery,
            (RemoteTarget::Jwks(t), _) => Stage::Jwks {
                uri: t.uri.clone(),
                discovered: false,
            },
        };
        self.dispatch(stage, now, metrics, id);
    }

    fn dispatch(&mut self, stage: Stage, now: u64, metrics: &Metrics, id: usize) {
        let target = match &stage {
            Stage::Discovery => match &self.cfg.target {
                RemoteTarget::Discovery(t) => Ok(t.clone()),
                RemoteTarget::Jwks(t) => Ok(t.clone()),
            },
            Stage::Jwks { uri, .. } => HttpTarget::parse(uri, "jwks_uri"),
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => {
                return self.fail(
                    now,
                    metrics,
                    id,
                    &format!("bad jwks_uri: {}", e.message),
                    true,
                )
            }
        };
        let headers = vec![
            (":method", "GET"),
            (":path", target.path.as_str()),
            (":authority", target.authority.as_str()),
            ("accept", "application/json"),
            ("user-agent", "jwt-authn-wasm"),
        ];
        match hostcalls::dispatch_http_call(
            &self.cfg.cluster,
            headers,
            None,
            vec![],
            self.cfg.timeout,
        ) {
            Ok(token) => self.in_flight = Some(InFlight { token, stage }),
            Err(e) => self.fail(
                now,
                metrics,
                id,
                &format!(
                    "callout to cluster {:?} refused by the host ({e:?})",
                    self.cfg.cluster
                ),
                false,
            ),
        }
    }

    fn on_response(
        &mut self,
        num_headers: usize,
        body_size: usize,
        now: u64,
        metrics: &Metrics,
        id: usize,
    ) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        // A failed callout (timeout, reset, truncated body) arrives with no
        // headers at all; do not even ask the host for them.
        let status = if num_headers == 0 {
            String::new()
        } else {
            host::call_response_header(":status").unwrap_or_default()
        };
        if status != "200" {
            let what = if status.is_empty() {
                "no response (timeout or connection failure)".to_string()
            } else {
                format!("HTTP status {status}")
            };
            let discovered = matches!(
                flight.stage,
                Stage::Jwks {
                    discovered: true,
                    ..
                }
            );
            return self.fail(now, metrics, id, &what, discovered);
        }
        if body_size > self.cfg.max_jwks_bytes {
            return self.fail(
                now,
                metrics,
                id,
                &format!(
                    "body of {body_size} bytes is over the {} byte limit",
                    self.cfg.max_jwks_bytes
                ),
                false,
            );
        }
        let body = host::call_response_body(body_size);
        let Ok(text) = String::from_utf8(body) else {
            return self.fail(now, metrics, id, "body is not UTF-8", false);
        };
        match flight.stage {
            Stage::Discovery => match discovered_jwks_uri(&text) {
                Ok(uri) => self.dispatch(
                    Stage::Jwks {
                        uri,
                        discovered: true,
                    },
                    now,
                    metrics,
                    id,
                ),
                Err(why) => self.fail(
                    now,
                    metrics,
                    id,
                    &format!("discovery document: {why}"),
                    false,
                ),
            },
            Stage::Jwks { uri, discovered } => {
                match jwk::parse_key_set(&text, &self.cfg.jwks_options) {
                    Ok(set) => {
                        let _ = host::shared_set(&self.body_key, text.as_bytes(), None);
                        let (n, skipped) = (set.keys.len() as u32, set.skipped.len() as u32);
                        for s in &set.skipped {
                            log::warn!(
                                "jwks {}: skipped key #{} (kid {:?}): {}",
                                self.name,
                                s.index,
                                s.kid.as_deref().unwrap_or("-"),
                                s.reason.as_str()
                            );
                        }
                        let cfg = self.cfg.clone();
                        let uri_kept = discovered.then_some(uri);
                        let next = update_state(&self.state_key, |s| {
                            let mut n2 = s.on_success(&cfg, now, n, skipped);
                            n2.discovered_jwks_uri = uri_kept.clone();
                            Some(n2)
                        });
                        if let Some(s) = next {
                            self.view = s;
                        }
                        self.keys = Some(Arc::new(set));
                        self.keys_fp = fnv(&[&text]);
                        self.stale_logged = false;
                        metrics::inc(metrics.provider(id).fetch_success);
                        metrics::set(metrics.provider(id).keys, u64::from(n));
                        metrics::set(metrics.provider(id).skipped_keys, u64::from(skipped));
                        metrics::set(metrics.provider(id).stale_keys_in_use, 0);
                        log::info!(
                            "jwks {}: fetched {n} usable keys ({skipped} skipped)",
                            self.name
                        );
                    }
                    Err(e) => self.fail(
                        now,
                        metrics,
                        id,
                        &format!("unusable key set: {e}"),
                        discovered,
                    ),
                }
            }
        }
    }

    /// Records a failed fetch and schedules the retry; last good keys stay.
    fn fail(&mut self, now: u64, metrics: &Metrics, id: usize, why: &str, forget_discovery: bool) {
        self.in_flight = None;
        let cfg = self.cfg.clone();
        let jitter = host::jitter();
        if let Some(s) = update_state(&self.state_key, |s| {
            let mut n = s.on_failure(&cfg, now, jitter);
            if forget_discovery {
                n.discovered_jwks_uri = None;
            }
            Some(n)
        }) {
            self.view = s;
        }
        metrics::inc(metrics.provider(id).fetch_failed);
        let retry_in = self.view.next_fetch_at.saturating_sub(now);
        let serving = match self.view.freshness(&self.cfg, now) {
            Freshness::Fresh | Freshness::Stale if self.keys.is_some() => "serving last good keys",
            _ => "no usable keys",
        };
        log::warn!(
            "jwks {}: fetch failed ({why}); attempt {} failed, retry in {}ms, {serving}",
            self.name,
            self.view.failures,
            retry_in
        );
    }
}

/// Takes `jwks_uri` out of an OIDC discovery document.
fn discovered_jwks_uri(text: &str) -> Result<String, String> {
    let v = jwt_authn::json::parse_strict(text.as_bytes(), jwt_authn::json::DEFAULT_MAX_DEPTH)
        .map_err(|e| e.to_string())?;
    let uri = v
        .get("jwks_uri")
        .and_then(|u| u.as_str())
        .ok_or("no jwks_uri string")?;
    HttpTarget::parse(uri, "jwks_uri").map_err(|e| e.message)?;
    Ok(uri.to_string())
}

/// The `KeyStore` the engine sees during one evaluation.
pub struct KeysAt<'a> {
    keys: &'a Keys,
    now: u64,
    /// The shared bucket read for the token being verified, so recording its
    /// verdict needs neither a second digest nor a second read.
    pending: RefCell<Option<Pending>>,
}

/// A shared-cache miss awaiting its verdict.
struct Pending {
    token: (usize, usize),
    bucket: usize,
    entry: shared_cache::Entry,
    /// In shared data: the bucket's key and the value read.
    read: Option<(String, Option<Vec<u8>>)>,
}

/// Identity of a token text during one evaluation (the engine passes the same slice).
fn text_id(t: &str) -> (usize, usize) {
    (t.as_ptr() as usize, t.len())
}

impl KeyStore for KeysAt<'_> {
    fn remote_keys(&self, id: ProviderId) -> RemoteKeys {
        let Some(p) = self.keys.provider(id) else {
            return RemoteKeys::Failed;
        };
        match (&p.keys, p.view.freshness(&p.cfg, self.now)) {
            (Some(k), Freshness::Fresh | Freshness::Stale) => RemoteKeys::Ready(k.clone()),
            _ if p.view.cold_start_failed(&p.cfg) || p.view.failures > p.cfg.num_retries => {
                RemoteKeys::Failed
            }
            _ => RemoteKeys::Pending,
        }
    }

    fn may_refetch_unknown_kid(&self, id: ProviderId) -> bool {
        self.keys
            .provider(id)
            .is_some_and(|p| p.view.may_refetch_unknown_kid(&p.cfg, self.now))
    }

    fn cached_token(&self, token: &str) -> Option<CachedToken> {
        let hit = self.keys.verified.try_borrow().ok()?.get(token).cloned();
        if hit.is_some() {
            bump(&self.keys.counts.local_hit);
        }
        hit
    }

    fn signature_known_good(&self, token: &str, id: ProviderId) -> bool {
        if self.keys.sits_out(token) {
            bump(&self.keys.counts.miss);
            return false;
        }
        let Some((shared, bucket, want)) = self.keys.shared_entry(token, id, 0) else {
            bump(&self.keys.counts.miss);
            return false;
        };
        let now = self.now / 1000;
        let (hit, read) = match shared.home() {
            Home::Local => {
                let hit = shared
                    .local
                    .try_borrow()
                    .is_ok_and(|l| l.vouches(bucket, &want, now));
                (hit, None)
            }
            Home::Shared => {
                let key = bucket_key(&shared.prefix, bucket);
                let (value, _) = host::shared_get(&key);
                let hit = shared_cache::lookup(value.as_deref(), &want, now);
                (hit, Some((key, value)))
            }
        };
        shared.record_lookup(hit);
        if hit {
            bump(&self.keys.counts.shared_hit);
        } else {
            bump(&self.keys.counts.miss);
            if let Ok(mut p) = self.pending.try_borrow_mut() {
                *p = Some(Pending {
                    token: text_id(token),
                    bucket,
                    entry: want,
                    read,
                });
            }
        }
        hit
    }

    fn signature_checked(&self, token: &str, id: ProviderId, exp: u64, ok: bool) {
        bump(&self.keys.counts.verifications);
        let pending = self
            .pending
            .try_borrow_mut()
            .ok()
            .and_then(|mut p| p.take());
        if !ok {
            return;
        }
        let Some(shared) = self.keys.shared.as_ref() else {
            return;
        };
        // The digest and bucket the lookup computed for this very token (no
        // second digest), with the entry's expiry now known.
        let (bucket, entry, read) = match pending {
            Some(p) if p.token == text_id(token) && usize::from(p.entry.provider) == id => {
                let exp = shared_cache::expiry(exp);
                (p.bucket, shared_cache::Entry { exp, ..p.entry }, p.read)
            }
            // No lookup to build on: a token that sits out stays out.
            _ if self.keys.sits_out(token) => return,
            _ => match self.keys.shared_entry(token, id, exp) {
                Some((_, bucket, entry)) => (bucket, entry, None),
                None => return,
            },
        };
        let now = self.now / 1000;
        match shared.home() {
            Home::Local => {
                if let Ok(mut l) = shared.local.try_borrow_mut() {
                    l.insert(bucket, entry, now);
                }
            }
            Home::Shared => {
                let (key, value) = read.unwrap_or_else(|| {
                    let key = bucket_key(&shared.prefix, bucket);
                    let (value, _) = host::shared_get(&key);
                    (key, value)
                });
                // Read-modify-write without CAS: a lost race only drops an entry
                // (one more verification somewhere), never admits a token.
                let value = shared_cache::insert(value.as_deref(), entry, now);
                let _ = host::shared_set(&key, &value, None);
            }
        }
    }

    fn host_verify(&self, alg: Alg, key: &KeyMaterial, input: &[u8], sig: &[u8]) -> Option<bool> {
        if !self.keys.host_crypto {
            return None;
        }
        match host_crypto::prepare(alg, key, input, sig) {
            HostCheck::Request(args) => host::foreign_call(host_crypto::FUNCTION, &args)
                .and_then(|answer| host_crypto::read_result(&answer)),
            HostCheck::Verdict(v) => Some(v),
            HostCheck::NotDelegable => None,
        }
    }

    fn remember_token(&self, token: &str, entry: CachedToken) -> bool {
        self.keys
            .verified
            .try_borrow_mut()
            .is_ok_and(|mut c| c.insert(token, entry))
    }

    fn remember_memo(&self, token: &str, memo: Arc<Memo>) {
        if let Ok(mut c) = self.keys.verified.try_borrow_mut() {
            c.set_memo(token, memo);
        }
    }
}

/// How long a request may wait for keys before it is answered anyway.
pub fn wait_budget(cfg: &RemoteJwks) -> u64 {
    let per_try = ms(cfg.timeout)
        .saturating_mul(2)
        .saturating_add(ms(cfg.retry_max).min(ms(cfg.failed_refetch).max(ms(cfg.retry_base)) * 4));
    per_try
        .saturating_mul(u64::from(cfg.num_retries) + 1)
        .saturating_add(1000)
        .min(120_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bucket_key_is_prefix_and_decimal() {
        for n in [0usize, 7, 10, 99, 8191, 1 << 20, usize::MAX] {
            assert_eq!(super::bucket_key("p.", n), format!("p.{n}"));
        }
    }
}
