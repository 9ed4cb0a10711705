//! The request flow: rule → requirement → tokens → verification → decision.
//!
//! Mirrors jwt_authn's matcher/verifier/authenticator split. Evaluation is a
//! pure function of (config, request, keys, clock): when remote keys are not
//! there yet it returns `FetchKeys`, and the shell evaluates the same request
//! again once they arrive. Nothing is half-applied in between.
//!
//! Security invariants (each also a test):
//! - every presented token must verify for a requirement to pass (a good token
//!   must not carry a bad one past the filter), except under
//!   `allow_missing_or_failed`, which the operator chose explicitly;
//! - headers that carry identity are stripped from every request first, also
//!   when no rule matches;
//! - any error path denies.

use crate::alg::Alg;
use crate::claims::{Claims, ClaimsError};
use crate::config::{
    Bypass, Config, KeySource, PathMatch, Provider, ProviderId, Requirement, RouteMatch, Rule,
    TokenLocation,
};
use crate::decision::{Decision, Denial, FetchCause, HeaderChanges, Verified};
use crate::extract::{self, Extracted};
use crate::headers;
use crate::jwk::{KeyMaterial, KeySet};
use crate::jws::{JwsError, SignatureBackend, UntrustedJws};
use crate::memo::{self, Memo};
use crate::reason::Reason;
use crate::request::Request;
use crate::verified_cache::CachedToken;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// The state of a remote provider's keys, as the key store sees it.
#[derive(Debug, Clone)]
pub enum RemoteKeys {
    /// Usable keys (possibly stale-but-allowed).
    Ready(Arc<KeySet>),
    /// Nothing usable yet; a fetch is (or will be) under way.
    Pending,
    /// Fetching failed and no usable keys remain.
    Failed,
}

/// Where the engine gets remote keys; the shell implements it over shared data,
/// tests and the CLI over maps. Local keys come from the config itself.
pub trait KeyStore {
    /// Current keys of a remote provider.
    fn remote_keys(&self, provider: ProviderId) -> RemoteKeys;
    /// May a token with an unknown `kid` trigger a refetch now (rate limit)?
    fn may_refetch_unknown_kid(&self, provider: ProviderId) -> bool;
    /// A token that verified before (the verified-token cache): its parse and
    /// the key set that verified it. Claims are still checked every time.
    fn cached_token(&self, _token: &str) -> Option<CachedToken> {
        None
    }
    /// Remembers a token that just verified; whether the cache kept it.
    fn remember_token(&self, _token: &str, _entry: CachedToken) -> bool {
        false
    }
    /// Attaches to a cached token the Allow it just earned (see `memo`); only
    /// called for a token the cache holds.
    fn remember_memo(&self, _token: &str, _memo: Arc<Memo>) {}
    /// Does the proxy-wide cache say this token's signature verified against
    /// `provider`'s current keys (on another worker)? Then only parsing and
    /// the claim checks run here.
    fn signature_known_good(&self, _token: &str, _provider: ProviderId) -> bool {
        false
    }
    /// A signature was checked with real crypto (`ok` = it verified); `exp`
    /// is the token's expiry (0 = none). Lets the shell count checks and share
    /// good verdicts.
    fn signature_checked(&self, _token: &str, _provider: ProviderId, _exp: u64, _ok: bool) {}
    /// A faster signature check offered by the host (see `host_crypto`);
    /// `None` = use the built-in verifier.
    fn host_verify(
        &self,
        _alg: Alg,
        _key: &KeyMaterial,
        _input: &[u8],
        _sig: &[u8],
    ) -> Option<bool> {
        None
    }
}

/// Routes `jws` signature checks through `KeyStore::host_verify`.
struct HostBackend<'a>(&'a dyn KeyStore);

impl SignatureBackend for HostBackend<'_> {
    fn verify(&self, alg: Alg, key: &KeyMaterial, input: &[u8], sig: &[u8]) -> Option<bool> {
        self.0.host_verify(alg, key, input, sig)
    }
}

/// A key store with no remote keys at all (local-only configs, CLI without `--jwks`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRemoteKeys;

impl KeyStore for NoRemoteKeys {
    fn remote_keys(&self, _: ProviderId) -> RemoteKeys {
        RemoteKeys::Failed
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        false
    }
}

/// Per-evaluation inputs besides the request.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    /// Unix seconds (host clock, or `--now`).
    pub now: u64,
    /// The waits this request already had, by provider and cause; a request
    /// waits at most once per (provider, cause). Per cause, so that a request
    /// that waited for a cold start may still wait once for an unknown `kid`
    /// (the IdP rotated meanwhile) instead of being refused.
    pub already_fetched: Vec<(ProviderId, FetchCause)>,
}

impl EvalContext {
    /// A context in which no request may wait for keys (the CLI: no fetching).
    pub fn never_wait(now: u64, providers: usize) -> EvalContext {
        let causes = [FetchCause::NoKeys, FetchCause::UnknownKid];
        EvalContext {
            now,
            already_fetched: (0..providers)
                .flat_map(|id| causes.map(|c| (id, c)))
                .collect(),
        }
    }

    /// Whether this request already waited on `provider` for `cause`.
    pub fn waited(&self, provider: ProviderId, cause: FetchCause) -> bool {
        self.already_fetched.contains(&(provider, cause))
    }
}

/// A failed token, with the provider it was judged against when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failure {
    reason: Reason,
    provider: Option<ProviderId>,
}

/// One verified token and what it does to the request on success.
#[derive(Debug, Clone)]
struct Success<'a> {
    provider: ProviderId,
    claims: Arc<Claims>,
    payload_b64: String,
    location: Cow<'a, TokenLocation>,
}

enum Outcome<'a> {
    Pass(Vec<Success<'a>>),
    Fail(Failure),
    Keys(ProviderId, FetchCause),
}

/// Evaluates one request.
pub fn evaluate(
    config: &Config,
    req: &Request,
    keys: &dyn KeyStore,
    ctx: &EvalContext,
) -> Decision {
    let strip = stripped_headers(config, req);
    let allow_plain = |strip: Vec<String>| Decision::Allow {
        changes: HeaderChanges {
            remove: strip,
            ..Default::default()
        },
        verified: Vec::new(),
    };
    if config.bypass_cors_preflight && is_cors_preflight(req) {
        return allow_plain(strip);
    }
    let Some((rule_index, rule)) = config
        .rules
        .iter()
        .enumerate()
        .find(|(_, r)| route_matches(&r.route, req))
    else {
        return allow_plain(strip);
    };
    let Some(requirement) = &rule.requires else {
        return allow_plain(strip);
    };
    // A repeated token: its earlier Allow, if it still stands (see `memo`).
    let sole = config
        .rule_plans
        .get(rule_index)
        .and_then(Option::as_ref)
        .and_then(|plan| extract::sole_header_token(req, plan));
    let mut looked_up = None;
    if let Some((token, location)) = sole {
        let hit = keys.cached_token(token);
        if let Some(m) = hit.as_ref().and_then(|h| h.memo.as_ref()) {
            let current = current_keys(config, keys, m.provider);
            if m.applies(rule_index, location, current.as_ref(), ctx.now) {
                return m.decision(strip);
            }
        }
        looked_up = Some((token, hit));
    }
    let flow = Flow {
        config,
        req,
        keys,
        ctx,
        checks: Cell::new(0),
        passed: RefCell::new(None),
        looked_up: RefCell::new(looked_up),
        verified: RefCell::new(Vec::new()),
    };
    let outcome = flow.requirement(requirement);
    // What the memo of this Allow needs (see `memo`); built only further down,
    // once the cache keeps its token.
    let mut memo_parts = None;
    let decision = match outcome {
        Outcome::Keys(provider, cause) => Decision::FetchKeys { provider, cause },
        Outcome::Fail(f) => deny(req, f.reason, f.provider, None),
        Outcome::Pass(successes) => {
            let token_header = match successes.as_slice() {
                [s] => match (&*s.location, config.providers.get(s.provider)) {
                    (TokenLocation::Header { name, .. }, Some(p)) => {
                        Some((!p.forward).then(|| name.clone()))
                    }
                    _ => None,
                },
                _ => None,
            };
            let decision = finish(config, rule, req, strip, successes);
            // One token, one check, and it passed: keep the Allow for the next time.
            let passed = flow.passed.borrow_mut().take();
            if let (Some((token, location)), Some(token_header), Some(p), 1) =
                (sole, token_header, passed, flow.checks.get())
            {
                memo_parts = Some((token, location, token_header, p));
            }
            decision
        }
    };
    // Newly verified tokens go into the cache whatever the outcome. The cache
    // keeps a token only the second time it is offered (see `verified_cache`),
    // and most tokens are seen once: their Allow is not copied into a memo
    // just to be dropped.
    for (token, entry) in flow.verified.take() {
        let kept = keys.remember_token(&token, entry);
        if !kept
            && memo_parts
                .as_ref()
                .is_some_and(|(t, ..)| crate::verified_cache::same_text(t, &token))
        {
            memo_parts = None;
        }
    }
    if let (Some((token, location, token_header, p)), Decision::Allow { changes, verified }) =
        (memo_parts, &decision)
    {
        if changes.path.is_none() {
            let m = Memo {
                rule: rule_index,
                location,
                provider: p.provider,
                keys: p.keys,
                not_before: p.window.0,
                not_after: p.window.1,
                set: changes.set.clone(),
                token_header,
                verified: verified.clone(),
            };
            keys.remember_memo(token, Arc::new(m));
        }
    }
    decision
}

/// The key set a provider verifies with right now, if it has one.
fn current_keys(config: &Config, keys: &dyn KeyStore, id: ProviderId) -> Option<Arc<KeySet>> {
    match &config.providers.get(id)?.keys {
        KeySource::Local(set) => Some(set.clone()),
        KeySource::Remote(_) => match keys.remote_keys(id) {
            RemoteKeys::Ready(set) => Some(set),
            RemoteKeys::Pending | RemoteKeys::Failed => None,
        },
    }
}

fn finish(
    config: &Config,
    rule: &Rule,
    req: &Request,
    strip: Vec<String>,
    successes: Vec<Success>,
) -> Decision {
    if let Some(authz) = &rule.authz {
        if successes.is_empty() {
            return deny(req, Reason::Missing, None, None);
        }
        let mut missing: Option<Vec<String>> = None;
        let mut ok = false;
        for s in &successes {
            match authz.check(&s.claims) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(d) => {
                    missing.get_or_insert(d.missing_scopes);
                }
            }
        }
        if !ok {
            let provider = successes.first().map(|s| s.provider);
            return deny(req, Reason::InsufficientScope, provider, missing);
        }
    }
    let mut changes = HeaderChanges {
        remove: strip,
        ..Default::default()
    };
    // Only rewritten (and so only copied) when a token leaves the query string.
    let mut path: Option<String> = None;
    for s in &successes {
        let Some(p) = config.providers.get(s.provider) else {
            continue;
        };
        if let Some(h) = &p.forward_payload_header {
            set_header(
                &mut changes,
                h,
                headers::forward_payload_value(&s.payload_b64, p.pad_forward_payload_header),
            );
        }
        for (h, v) in headers::claim_headers(&p.claim_to_headers, |c| s.claims.claim_value(c)) {
            set_header(&mut changes, &h, v);
        }
        if !p.forward {
            match &*s.location {
                TokenLocation::Header { name, .. } => {
                    if !changes.remove.contains(name) {
                        changes.remove.push(name.clone());
                    }
                    changes.set.retain(|(k, _)| k != name);
                }
                TokenLocation::Param(name) => {
                    let current = path.as_deref().unwrap_or(req.path());
                    let next = extract::path_without_param(current, name);
                    changes.path = Some(next.clone());
                    path = Some(next);
                }
                // As jwt_authn: a cookie is not removed (other cookies share the header).
                TokenLocation::Cookie(_) => {}
            }
        }
    }
    let verified = successes
        .into_iter()
        .map(|s| Verified {
            provider: s.provider,
            claims: s.claims,
        })
        .collect();
    Decision::Allow { changes, verified }
}

/// Sets a header; a second token writing the same header appends `, value`,
/// as Envoy's `addCopy` does for jwt_authn.
fn set_header(changes: &mut HeaderChanges, name: &str, value: String) {
    match changes.set.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => {
            v.push_str(", ");
            v.push_str(&value);
        }
        None => changes.set.push((name.to_string(), value)),
    }
}

/// Builds the local reply for a reason.
pub fn deny(
    req: &Request,
    reason: Reason,
    provider: Option<ProviderId>,
    missing_scopes: Option<Vec<String>>,
) -> Decision {
    let realm = req.realm_uri();
    let www_authenticate = match reason {
        Reason::Missing => format!("Bearer realm=\"{realm}\""),
        Reason::InsufficientScope => {
            let mut v = format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\"");
            if let Some(scopes) = missing_scopes.filter(|s| !s.is_empty()) {
                v.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
            }
            v
        }
        _ => format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
    };
    Decision::Deny(Denial {
        reason,
        status: reason.status(),
        body: reason.body().to_string(),
        www_authenticate,
        provider,
    })
}

/// Identity headers a client must never be able to set, present in this
/// request (only those: every removal is a host call on the hot path).
fn stripped_headers(config: &Config, req: &Request) -> Vec<String> {
    let mut out: Vec<String> = config
        .strip_headers
        .iter()
        .filter(|h| req.header(h).is_some())
        .cloned()
        .collect();
    if !config.strip_header_prefixes.is_empty() {
        for (name, _) in req.headers() {
            if config
                .strip_header_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
                && !out.iter().any(|o| o == name)
            {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Envoy's CORS preflight test: OPTIONS with non-empty `origin` and
/// `access-control-request-method`.
fn is_cors_preflight(req: &Request) -> bool {
    req.method() == "OPTIONS"
        && req.header("origin").is_some_and(|v| !v.is_empty())
        && req
            .header("access-control-request-method")
            .is_some_and(|v| !v.is_empty())
}

/// jwt_authn's route matcher: prefix on the full path, exact/regex on the path
/// without query; then every header and query condition.
pub fn route_matches(m: &RouteMatch, req: &Request) -> bool {
    let path_ok = match &m.path {
        PathMatch::Prefix(p) => starts_with(req.path(), p, m.case_sensitive),
        PathMatch::Exact(p) => {
            let path = req.path_only();
            if m.case_sensitive {
                path == p
            } else {
                path.eq_ignore_ascii_case(p)
            }
        }
        PathMatch::Regex(r) => r.is_match(req.path_only()),
        PathMatch::SeparatedPrefix(p) => {
            let path = req.path_only();
            starts_with(path, p, m.case_sensitive)
                && (path.len() == p.len() || path.as_bytes().get(p.len()) == Some(&b'/'))
        }
    };
    path_ok
        && m.headers.iter().all(|h| {
            let value = req.header(&h.name);
            let result = match (&h.matcher, value) {
                (None, v) => v.is_some() == h.present,
                (Some(sm), Some(v)) => sm.matches(v),
                (Some(sm), None) => h.treat_missing_as_empty && sm.matches(""),
            };
            result != h.invert
        })
        && m.query_parameters
            .iter()
            .all(|q| match (&q.matcher, req.query_param(&q.name)) {
                (None, v) => v.is_some(),
                (Some(sm), Some(v)) => sm.matches(&v),
                (Some(_), None) => false,
            })
}

fn starts_with(s: &str, prefix: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        s.starts_with(prefix)
    } else {
        s.len() >= prefix.len()
            && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    }
}

struct Flow<'a> {
    config: &'a Config,
    req: &'a Request,
    keys: &'a dyn KeyStore,
    ctx: &'a EvalContext,
    /// Tokens checked so far (`authenticate` calls).
    checks: Cell<u32>,
    /// The last token that passed: what a memo of this evaluation needs.
    passed: RefCell<Option<Passed>>,
    /// The verified-token cache's answer for the sole token, already asked
    /// for (so a token is looked up, and counted, once per request).
    looked_up: RefCell<Option<(&'a str, Option<CachedToken>)>>,
    /// Tokens that verified in this evaluation, for the cache.
    verified: RefCell<Vec<(Cow<'a, str>, CachedToken)>>,
}

/// A token check that passed: its provider, the key set and the time window.
struct Passed {
    provider: ProviderId,
    keys: Arc<KeySet>,
    window: (u64, u64),
}

impl<'a> Flow<'a> {
    fn providers(&self, ids: &[ProviderId]) -> Vec<(ProviderId, &'a Provider)> {
        ids.iter()
            .filter_map(|id| self.config.providers.get(*id).map(|p| (*id, p)))
            .collect()
    }

    fn requirement(&self, r: &'a Requirement) -> Outcome<'a> {
        match r {
            Requirement::AllowAll => Outcome::Pass(Vec::new()),
            Requirement::Provider { id, audiences } => {
                let tokens = match self.config.extraction_plans.get(*id) {
                    Some(plan) => extract::extract_with(self.req, plan),
                    None => extract::extract(self.req, &self.providers(&[*id])),
                };
                if tokens.is_empty() {
                    return Outcome::Fail(Failure {
                        reason: Reason::Missing,
                        provider: Some(*id),
                    });
                }
                let mut ok = Vec::new();
                // Last extracted first, as jwt_authn; every token must verify.
                for t in tokens.iter().rev() {
                    match self.authenticate(t, Some(*id), audiences.as_deref()) {
                        Ok(s) => ok.push(s),
                        Err(Stop::Fail(f)) => return Outcome::Fail(f),
                        Err(Stop::Keys(p, c)) => return Outcome::Keys(p, c),
                    }
                }
                Outcome::Pass(ok)
            }
            Requirement::All(children) => {
                let mut ok = Vec::new();
                for c in children {
                    match self.requirement(c) {
                        Outcome::Pass(s) => ok.extend(s),
                        other => return other,
                    }
                }
                Outcome::Pass(ok)
            }
            Requirement::Any { children, bypass } => {
                // As jwt_authn: the first child that passes wins; otherwise the
                // last failure that is not "missing" is reported.
                let mut last: Option<Failure> = None;
                for c in children {
                    match self.requirement(c) {
                        Outcome::Pass(s) => return Outcome::Pass(s),
                        Outcome::Keys(p, c) => return Outcome::Keys(p, c),
                        Outcome::Fail(f) => {
                            if f.reason != Reason::Missing || last.is_none() {
                                last = Some(f);
                            }
                        }
                    }
                }
                if let Some((kind, ids)) = bypass {
                    match self.bypass(*kind, ids) {
                        Outcome::Fail(f) if f.reason == Reason::Missing => {}
                        other => return other,
                    }
                }
                Outcome::Fail(last.unwrap_or(Failure {
                    reason: Reason::Missing,
                    provider: None,
                }))
            }
            Requirement::Bypass(kind, ids) => self.bypass(*kind, ids),
        }
    }

    fn bypass(&self, kind: Bypass, ids: &[ProviderId]) -> Outcome<'a> {
        let tokens = extract::extract(self.req, &self.providers(ids));
        let mut ok = Vec::new();
        for t in tokens.iter().rev() {
            match self.authenticate(t, None, None) {
                Ok(s) => ok.push(s),
                Err(Stop::Keys(p, c)) => return Outcome::Keys(p, c),
                Err(Stop::Fail(f)) => {
                    // allow_missing: a presented token must be valid. (Stricter than
                    // jwt_authn, which lets a later good token mask an earlier bad one.)
                    if kind == Bypass::AllowMissing {
                        return Outcome::Fail(f);
                    }
                }
            }
        }
        Outcome::Pass(ok)
    }

    /// One token against one provider (or, for the bypass kinds, the provider
    /// its issuer selects). Order as jwt_authn: parse, issuer, time, subject,
    /// audience, then keys and signature.
    fn authenticate(
        &self,
        t: &Extracted<'a>,
        provider: Option<ProviderId>,
        audiences: Option<&[String]>,
    ) -> Result<Success<'a>, Stop> {
        let fail = |reason: Reason, p: Option<ProviderId>| {
            Stop::Fail(Failure {
                reason,
                provider: p,
            })
        };
        self.checks.set(self.checks.get().saturating_add(1));
        if t.token.len() > self.config.max_token_bytes {
            return Err(fail(Reason::TooLarge, provider));
        }
        let payload_b64 = |id: ProviderId| match self.config.providers.get(id) {
            // Only copied out when a provider forwards it.
            Some(p) if p.forward_payload_header.is_some() => {
                t.token.split('.').nth(1).unwrap_or("").to_string()
            }
            _ => String::new(),
        };

        // Fast path: this very token verified before, against the key set its
        // provider has now. Only parsing and the signature are skipped.
        if let Some(hit) = self.cached_token(&t.token) {
            if let Ok(id) = self.select_provider(t, provider, &hit.claims) {
                let same_keys = current_keys(self.config, self.keys, id)
                    .is_some_and(|k| Arc::ptr_eq(&k, &hit.keys));
                if id == hit.provider && same_keys {
                    self.judge_claims(id, &hit.claims, audiences)?;
                    self.record_pass(id, hit.keys, &hit.claims);
                    let (claims, location) = (hit.claims, t.location.clone());
                    return Ok(Success {
                        provider: id,
                        claims,
                        payload_b64: payload_b64(id),
                        location,
                    });
                }
            }
        }

        let jws = UntrustedJws::parse(&t.token, self.config.max_token_bytes)
            .map_err(|e| fail(jws_reason(&e), provider))?;
        let claims = Claims::from_json(jws.untrusted_payload())
            .map_err(|e| fail(claims_reason(&e), provider))?;
        let id = self.select_provider(t, provider, &claims)?;
        self.judge_claims(id, &claims, audiences)?;

        let p = self
            .config
            .providers
            .get(id)
            .ok_or_else(|| fail(Reason::Issuer, Some(id)))?;
        let set: Arc<KeySet> = match &p.keys {
            KeySource::Local(set) => set.clone(),
            KeySource::Remote(_) => match self.keys.remote_keys(id) {
                RemoteKeys::Ready(set) => set,
                RemoteKeys::Pending if !self.ctx.waited(id, FetchCause::NoKeys) => {
                    return Err(Stop::Keys(id, FetchCause::NoKeys));
                }
                RemoteKeys::Pending | RemoteKeys::Failed => {
                    return Err(fail(Reason::JwksUnavailable, Some(id)))
                }
            },
        };
        let verdict = if self.keys.signature_known_good(&t.token, id) {
            Ok(())
        } else {
            let v = jws.verify_with(&set, &HostBackend(self.keys)).map(|_| ());
            if matches!(v, Ok(()) | Err(JwsError::BadSignature)) {
                self.keys
                    .signature_checked(&t.token, id, claims.exp, v.is_ok());
            }
            v
        };
        match verdict {
            Ok(()) => {
                self.record_pass(id, set.clone(), &claims);
                let claims = Arc::new(claims);
                let entry = CachedToken {
                    provider: id,
                    keys: set,
                    claims: claims.clone(),
                    memo: None,
                };
                // Kept until the evaluation ends, so that the Allow it may
                // earn goes into the cache with it (one insert, no second lookup).
                self.verified.borrow_mut().push((t.token.clone(), entry));
                Ok(Success {
                    provider: id,
                    claims,
                    payload_b64: payload_b64(id),
                    location: t.location.clone(),
                })
            }
            Err(JwsError::KeyNotFound)
                if matches!(p.keys, KeySource::Remote(_))
                    && jws.header().kid.is_some()
                    && !self.ctx.waited(id, FetchCause::UnknownKid)
                    && self.keys.may_refetch_unknown_kid(id) =>
            {
                Err(Stop::Keys(id, FetchCause::UnknownKid))
            }
            Err(e) => Err(fail(jws_reason(&e), Some(id))),
        }
    }

    /// The provider that judges a token: the required one (whose issuer must
    /// match), or, for the bypass kinds, the one its issuer selects among the
    /// providers configured for the token's location (jwt_authn's rule).
    fn select_provider(
        &self,
        t: &Extracted,
        provider: Option<ProviderId>,
        claims: &Claims,
    ) -> Result<ProviderId, Stop> {
        let fail = |p: Option<ProviderId>| {
            Stop::Fail(Failure {
                reason: Reason::Issuer,
                provider: p,
            })
        };
        match provider {
            Some(id) => {
                let p = self
                    .config
                    .providers
                    .get(id)
                    .ok_or_else(|| fail(Some(id)))?;
                if !p.issuer.is_empty() && p.issuer != claims.iss {
                    return Err(fail(Some(id)));
                }
                Ok(id)
            }
            None => {
                let at_location = self.providers(&t.providers);
                at_location
                    .iter()
                    .find(|(_, p)| p.issuer == claims.iss)
                    .or_else(|| at_location.iter().find(|(_, p)| p.issuer.is_empty()))
                    .map(|(id, _)| *id)
                    .ok_or_else(|| fail(None))
            }
        }
    }

    /// jwt_authn's claim checks, in its order: time, lifetime, subject, audience.
    fn judge_claims(
        &self,
        id: ProviderId,
        claims: &Claims,
        audiences: Option<&[String]>,
    ) -> Result<(), Stop> {
        let p = self.config.providers.get(id).ok_or(Stop::Fail(Failure {
            reason: Reason::Issuer,
            provider: Some(id),
        }))?;
        let judge = |r: Result<(), ClaimsError>| {
            r.map_err(|e| {
                Stop::Fail(Failure {
                    reason: claims_reason(&e),
                    provider: Some(id),
                })
            })
        };
        judge(claims.check_time(self.ctx.now, p.clock_skew_secs))?;
        judge(claims.check_lifetime(p.require_expiration, p.max_lifetime.map(|d| d.as_secs())))?;
        judge(claims.check_subject(p.subjects.as_ref()))?;
        judge(claims.check_audience(audiences.unwrap_or(&p.audiences)))
    }

    /// The verified-token cache's entry for a token (asked once per request).
    fn cached_token(&self, token: &str) -> Option<CachedToken> {
        let asked = self
            .looked_up
            .borrow_mut()
            .take_if(|(t, _)| crate::verified_cache::same_text(t, token))
            .map(|(_, hit)| hit);
        asked.unwrap_or_else(|| self.keys.cached_token(token))
    }

    /// Records a passing check (see `Flow::passed`).
    fn record_pass(&self, provider: ProviderId, keys: Arc<KeySet>, claims: &Claims) {
        let skew = self
            .config
            .providers
            .get(provider)
            .map_or(0, |p| p.clock_skew_secs);
        *self.passed.borrow_mut() = Some(Passed {
            provider,
            keys,
            window: memo::window(claims.nbf, claims.exp, skew),
        });
    }
}

enum Stop {
    Fail(Failure),
    Keys(ProviderId, FetchCause),
}

fn jws_reason(e: &JwsError) -> Reason {
    match e {
        JwsError::TooLarge => Reason::TooLarge,
        JwsError::AlgNotAllowed(_) => Reason::AlgNotAllowed,
        JwsError::KeyNotFound => Reason::KeyNotFound,
        JwsError::BadSignature => Reason::BadSignature,
        _ => Reason::Malformed,
    }
}

fn claims_reason(e: &ClaimsError) -> Reason {
    match e {
        ClaimsError::Malformed(_) => Reason::Malformed,
        ClaimsError::Expired => Reason::Expired,
        ClaimsError::NotYetValid => Reason::NotYetValid,
        ClaimsError::Issuer => Reason::Issuer,
        ClaimsError::Audience => Reason::Audience,
        ClaimsError::Subject => Reason::Subject,
        ClaimsError::Lifetime => Reason::Lifetime,
    }
}

#[cfg(test)]
mod memo_tests;
#[cfg(test)]
mod tests;
