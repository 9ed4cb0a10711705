//! The memo never changes a decision: every request of a sequence is decided
//! by a store that keeps memos (as the filter's per-VM cache does) and by one
//! that keeps nothing, and the two decisions must be equal. The sequences
//! repeat tokens, move them between locations and rules, add second tokens
//! and spoofed headers, step the clock across `nbf`/`exp` and swap key sets.

use super::*;
use crate::config::Config;
use crate::jwk::{parse_key_set, JwksOptions};
use crate::testutil::{hs256, oct_jwks, request, SECRET};
use crate::verified_cache::VerifiedCache;
use serde_json::{json, Value};

const NOW: u64 = 1_700_000_000;

/// A store with a real verified-token cache (memos included) and one remote
/// key set that a test can swap.
struct MemoStore {
    cache: RefCell<VerifiedCache>,
    remote: RefCell<Arc<KeySet>>,
    memos_kept: Cell<usize>,
    keep: bool,
}

impl MemoStore {
    fn new(keep: bool, remote: Arc<KeySet>) -> Self {
        MemoStore {
            cache: RefCell::new(VerifiedCache::new(if keep { 100 } else { 0 }, 7)),
            remote: RefCell::new(remote),
            memos_kept: Cell::new(0),
            keep,
        }
    }
}

impl KeyStore for MemoStore {
    fn remote_keys(&self, _: ProviderId) -> RemoteKeys {
        RemoteKeys::Ready(self.remote.borrow().clone())
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        false
    }
    fn cached_token(&self, token: &str) -> Option<CachedToken> {
        self.cache.borrow().get(token).cloned()
    }
    fn remember_token(&self, token: &str, entry: CachedToken) -> bool {
        assert!(
            entry.memo.is_none(),
            "a memo comes only for a token the cache keeps"
        );
        self.cache.borrow_mut().insert(token, entry)
    }
    fn remember_memo(&self, token: &str, memo: Arc<Memo>) {
        assert!(
            self.cache.borrow().get(token).is_some(),
            "a memo for a token not kept"
        );
        if self.keep {
            self.memos_kept.set(self.memos_kept.get() + 1);
            self.cache.borrow_mut().set_memo(token, memo);
        }
    }
}

/// Key sets parsed here hold HMAC keys (tokens are HS256), which only local
/// configuration may; the "remote" provider's set is handed over directly.
fn hmac_ok() -> JwksOptions {
    JwksOptions {
        allow_hmac: true,
        ..JwksOptions::default()
    }
}

fn oct_set() -> Arc<KeySet> {
    Arc::new(parse_key_set(&oct_jwks(), &hmac_ok()).unwrap())
}

fn tok(iss: &str, extra: &str) -> String {
    hs256(
        SECRET,
        r#"{"alg":"HS256","kid":"k1"}"#,
        &format!(
            r#"{{"iss":"{iss}","sub":"alice","aud":"api","scope":"read write","realm":{{"role":"admin"}}{extra}}}"#
        ),
    )
}

fn prov(iss: &str, extra: Value) -> Value {
    let mut p = json!({"issuer": iss, "local_jwks": {"inline_string": oct_jwks()},
        "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"},
                             {"header_name": "x-role", "claim_name": "realm.role"},
                             {"header_name": "x-none", "claim_name": "missing"}]});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn configs() -> Vec<(&'static str, Config)> {
    let remote = json!({"issuer": "https://remote", "remote_jwks": {"http_uri": {"uri": "http://127.0.0.1:9/jwks", "cluster": "jwks", "timeout": "1s"}},
        "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}]});
    let cases = vec![
        (
            "provider",
            json!({"providers": {"a": prov("https://a", json!({}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]}),
        ),
        (
            "forward+payload",
            json!({"providers": {"a": prov("https://a", json!({"forward": true, "forward_payload_header": "x-payload", "pad_forward_payload_header": true, "clock_skew_seconds": 5}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]}),
        ),
        (
            "audiences",
            json!({"providers": {"a": prov("https://a", json!({"audiences": ["other"]}))},
            "rules": [{"match": {"prefix": "/in"}, "requires": {"provider_and_audiences": {"provider_name": "a", "audiences": ["api"]}}},
                      {"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]}),
        ),
        (
            "any-two-issuers",
            json!({"providers": {"a": prov("https://a", json!({})), "b": prov("https://b", json!({"forward": true}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}}]}),
        ),
        (
            "istio-allow-missing",
            json!({"providers": {"a": prov("https://a", json!({"from_headers": [{"name": "x-jwt", "value_prefix": "Token "}, {"name": "authorization", "value_prefix": "Bearer "}]}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"allow_missing": {}}]}}}]}),
        ),
        (
            "all",
            json!({"providers": {"a": prov("https://a", json!({})), "b": prov("https://b", json!({"from_headers": [{"name": "x-jwt"}]}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}}]}),
        ),
        (
            "allow-missing-or-failed",
            json!({"providers": {"a": prov("https://a", json!({})), "b": prov("https://b", json!({}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing_or_failed": {}}}]}),
        ),
        (
            "param-and-cookie",
            json!({"providers": {"a": prov("https://a", json!({"from_params": ["token"], "from_cookies": ["jwt"]}))},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}]}),
        ),
        (
            "authz",
            json!({"providers": {"a": prov("https://a", json!({}))},
            "rules": [{"match": {"prefix": "/admin"}, "requires": {"provider_name": "a"},
                       "extensions": {"authorize": {"scopes_all": ["admin"]}}},
                      {"match": {"prefix": "/"}, "requires": {"provider_name": "a"},
                       "extensions": {"authorize": {"scopes_all": ["read"]}}}]}),
        ),
        (
            "remote",
            json!({"providers": {"r": remote},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "r"}}]}),
        ),
    ];
    cases
        .into_iter()
        .map(|(n, v)| (n, Config::parse(v.to_string().as_bytes()).unwrap()))
        .collect()
}

/// One request of a sequence: path, headers, seconds after NOW.
type Step = (String, Vec<(String, String)>, u64);

/// The sequence, repeats included.
fn steps() -> Vec<Step> {
    let a = tok("https://a", "");
    let b = tok("https://b", "");
    let r = tok("https://remote", "");
    let short = tok("https://a", &format!(r#","exp":{}"#, NOW + 10));
    let later = tok("https://a", &format!(r#","nbf":{}"#, NOW + 100));
    let bearer = |t: &str| ("authorization".to_string(), format!("Bearer {t}"));
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut out = Vec::new();
    let mut push = |path: &str, headers: Vec<(String, String)>, dt: u64| {
        out.push((path.to_string(), headers, dt));
    };
    for _ in 0..3 {
        push("/api", vec![bearer(&a)], 0);
    }
    push("/api", vec![bearer(&a), h("x-user-id", "mallory")], 0);
    push("/api", vec![bearer(&a), h("x-role", "root")], 1);
    push("/in/x", vec![bearer(&a)], 0);
    push("/in/x", vec![bearer(&a)], 0);
    push("/admin", vec![bearer(&a)], 0);
    push("/admin", vec![bearer(&a)], 0);
    push("/api", vec![bearer(&a)], 0);
    push("/api", vec![bearer(&b)], 0);
    push("/api", vec![bearer(&b)], 0);
    push("/api", vec![bearer(&a), bearer(&b)], 0);
    push("/api", vec![bearer(&a), bearer(&a)], 0);
    push("/api", vec![h("x-jwt", &format!("Token {a}"))], 0);
    push("/api", vec![h("x-jwt", &format!("Token {a}"))], 0);
    push("/api", vec![h("x-jwt", &a), bearer(&a)], 0);
    push("/api", vec![h("x-jwt", &a), bearer(&a)], 0);
    push("/api?token=x", vec![bearer(&a)], 0);
    push(&format!("/api?token={a}"), vec![], 0);
    push("/api", vec![h("cookie", &format!("jwt={a}"))], 0);
    push("/api", vec![], 0);
    push("/api", vec![bearer(&r)], 0);
    push("/api", vec![bearer(&r)], 0);
    // Across the end of the window (exp + skew) and the start (nbf - skew).
    for dt in [0, 0, 69, 70, 71, 75, 70, 0] {
        push("/api", vec![bearer(&short)], dt);
    }
    for dt in [0, 39, 40, 41, 40, 39] {
        push("/api", vec![bearer(&later)], dt);
    }
    out
}

#[test]
fn memos_never_change_a_decision() {
    let mut reused = 0;
    let mut memos = 0;
    for (name, c) in configs() {
        let keys = oct_set();
        let kept = MemoStore::new(true, keys.clone());
        let fresh = MemoStore::new(false, keys);
        let mut run = |i: usize, path: &str, headers: &[(String, String)], dt: u64| {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let req = request("GET", path, &pairs);
            let ctx = EvalContext {
                now: NOW + dt,
                already_fetched: EvalContext::never_wait(0, c.providers.len()).already_fetched,
            };
            let before = kept.memos_kept.get();
            let with = evaluate(&c, &req, &kept, &ctx);
            let without = evaluate(&c, &req, &fresh, &ctx);
            assert_eq!(with, without, "{name}: step {i} {path} {headers:?} +{dt}s");
            if matches!(with, Decision::Allow { .. }) && kept.memos_kept.get() == before {
                reused += 1;
            }
        };
        for (i, (path, headers, dt)) in steps().iter().enumerate() {
            run(i, path, headers, *dt);
        }
        // New key sets, equal or not: a memo never outlives the set that verified.
        *kept.remote.borrow_mut() = oct_set();
        *fresh.remote.borrow_mut() = kept.remote.borrow().clone();
        for (i, (path, headers, dt)) in steps().iter().enumerate().take(24) {
            run(100 + i, path, headers, *dt);
        }
        let other = Arc::new(
            parse_key_set(
                &format!(
                    r#"{{"keys":[{{"kty":"oct","kid":"k1","alg":"HS256","k":"{}"}}]}}"#,
                    crate::b64::encode(b"another secret of thirty-two by.")
                ),
                &hmac_ok(),
            )
            .unwrap(),
        );
        *kept.remote.borrow_mut() = other.clone();
        *fresh.remote.borrow_mut() = other;
        for (i, (path, headers, dt)) in steps().iter().enumerate().take(24) {
            run(200 + i, path, headers, *dt);
        }
        memos += kept.memos_kept.get();
    }
    // Not vacuous: memos were kept and reused, many times.
    assert!(memos >= 20, "only {memos} memos kept");
    assert!(reused >= 40, "only {reused} decisions came from a memo");
}

#[test]
fn a_memo_is_used_only_where_it_was_earned() {
    let (_, c) = configs().remove(0);
    let store = MemoStore::new(true, oct_set());
    let t = tok("https://a", &format!(r#","exp":{}"#, NOW + 100));
    let ctx = EvalContext {
        now: NOW,
        ..Default::default()
    };
    let auth = format!("Bearer {t}");
    let req = request("GET", "/api", &[("authorization", &auth)]);
    // The cache admits a token the second time it verifies; only then is its
    // Allow made into a memo.
    allowed_set(&evaluate(&c, &req, &store, &ctx));
    assert!(store.cache.borrow().get(&t).is_none());
    assert_eq!(
        store.memos_kept.get(),
        0,
        "no memo for a token the cache did not keep"
    );
    allowed_set(&evaluate(&c, &req, &store, &ctx));
    assert_eq!(
        store.memos_kept.get(),
        1,
        "the Allow is kept with the token"
    );
    let hit = store
        .cache
        .borrow()
        .get(&t)
        .and_then(|e| e.memo.clone())
        .unwrap();
    assert_eq!((hit.rule, hit.location), (0, 0));
    assert_eq!(hit.token_header.as_deref(), Some("authorization"));
    // The third time it is reused: nothing new is offered.
    allowed_set(&evaluate(&c, &req, &store, &ctx));
    assert_eq!(store.memos_kept.get(), 1);
    // Outside its window the full path runs (and denies).
    let late = EvalContext {
        now: NOW + 161,
        ..Default::default()
    };
    assert!(matches!(
        evaluate(&c, &req, &store, &late),
        Decision::Deny(_)
    ));
}

fn allowed_set(d: &Decision) -> Vec<(String, String)> {
    match d {
        Decision::Allow { changes, .. } => changes.set.clone(),
        other => panic!("expected allow, got {other:?}"),
    }
}
