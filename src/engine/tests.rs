use super::*;
use crate::config::Config;
use crate::jwk::{self, JwksOptions};
use crate::testutil::{hs256, oct_jwks, request, token, SECRET};
use serde_json::{json, Value};
use std::collections::HashMap;

const NOW: u64 = 1_700_000_000;

fn config(v: Value) -> Config {
    Config::parse(v.to_string().as_bytes()).unwrap()
}

fn provider(extra: Value) -> Value {
    let mut p = json!({"issuer": "https://idp", "local_jwks": {"inline_string": oct_jwks()}});
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    p
}

fn one_rule(p: Value, requires: Value) -> Config {
    config(
        json!({"providers": {"idp": p}, "rules": [{"match": {"prefix": "/"}, "requires": requires}]}),
    )
}

fn eval(c: &Config, headers: &[(&str, &str)]) -> Decision {
    eval_path(c, "/api", headers)
}

fn eval_path(c: &Config, path: &str, headers: &[(&str, &str)]) -> Decision {
    evaluate(
        c,
        &request("GET", path, headers),
        &NoRemoteKeys,
        &EvalContext {
            now: NOW,
            already_fetched: vec![],
        },
    )
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn reason(d: &Decision) -> Reason {
    d.reason().unwrap()
}

fn allowed(d: &Decision) -> &HeaderChanges {
    match d {
        Decision::Allow { changes, .. } => changes,
        other => panic!("expected allow, got {other:?}"),
    }
}

fn denial(d: &Decision) -> &Denial {
    match d {
        Decision::Deny(x) => x,
        other => panic!("expected deny, got {other:?}"),
    }
}

#[test]
fn good_token_is_allowed_and_removed() {
    let c = one_rule(
        provider(json!({"claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}]})),
        json!({"provider_name": "idp"}),
    );
    let t = token("");
    let d = eval(
        &c,
        &[("authorization", &bearer(&t)), ("x-user-id", "mallory")],
    );
    let ch = allowed(&d);
    assert!(ch.remove.contains(&"authorization".to_string()));
    assert!(
        ch.remove.contains(&"x-user-id".to_string()),
        "spoofed copies go first"
    );
    assert_eq!(ch.set, vec![("x-user-id".to_string(), "alice".to_string())]);
    // Nothing to strip when the client sent no copy: no removal (a host call each).
    let d = eval(&c, &[("authorization", &bearer(&t))]);
    assert_eq!(allowed(&d).remove, vec!["authorization".to_string()]);
}

#[test]
fn forward_keeps_the_token_and_payload_header_is_set() {
    let c = one_rule(
        provider(
            json!({"forward": true, "forward_payload_header": "x-payload", "pad_forward_payload_header": true}),
        ),
        json!({"provider_name": "idp"}),
    );
    let t = token("");
    let d = eval(&c, &[("authorization", &bearer(&t))]);
    let ch = allowed(&d);
    assert!(!ch.remove.contains(&"authorization".to_string()));
    let payload = t.split('.').nth(1).unwrap();
    let (_, v) = ch.set.iter().find(|(k, _)| k == "x-payload").unwrap();
    assert!(v.starts_with(payload) && v.len() % 4 == 0);
}

#[test]
fn missing_bad_and_expired_tokens() {
    let c = one_rule(provider(json!({})), json!({"provider_name": "idp"}));
    let d = eval(&c, &[]);
    assert_eq!(reason(&d), Reason::Missing);
    assert_eq!(
        denial(&d).www_authenticate,
        "Bearer realm=\"http://example.com/api\""
    );
    let mut bad = token("");
    bad.push('A');
    let d = eval(&c, &[("authorization", &bearer(&bad))]);
    assert!(
        matches!(reason(&d), Reason::BadSignature | Reason::Malformed),
        "{d:?}"
    );
    assert_eq!(
        denial(&d).www_authenticate,
        "Bearer realm=\"http://example.com/api\", error=\"invalid_token\""
    );
    let expired = hs256(
        SECRET,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"iss":"https://idp","exp":{}}}"#, NOW - 61),
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&expired))])),
        Reason::Expired
    );
    let skewed = hs256(
        SECRET,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"iss":"https://idp","exp":{}}}"#, NOW - 60),
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&skewed))])),
        Reason::Allowed
    );
    let future = hs256(
        SECRET,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"iss":"https://idp","nbf":{}}}"#, NOW + 61),
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&future))])),
        Reason::NotYetValid
    );
    let other_iss = hs256(SECRET, r#"{"alg":"HS256"}"#, r#"{"iss":"https://evil"}"#);
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&other_iss))])),
        Reason::Issuer
    );
    let none = format!(
        "{}.{}.",
        crate::b64::encode(br#"{"alg":"none"}"#),
        crate::b64::encode(br#"{"iss":"https://idp"}"#)
    );
    assert_ne!(
        reason(&eval(&c, &[("authorization", &bearer(&none))])),
        Reason::Allowed
    );
    let wrong_key = hs256(
        b"another-secret-another-secret-32",
        r#"{"alg":"HS256","kid":"k1"}"#,
        r#"{"iss":"https://idp"}"#,
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&wrong_key))])),
        Reason::BadSignature
    );
}

#[test]
fn audience_is_403_and_provider_and_audiences_overrides() {
    let c = one_rule(
        provider(json!({"audiences": ["api"]})),
        json!({"provider_name": "idp"}),
    );
    let t = token(r#""aud":"other""#);
    let d = eval(&c, &[("authorization", &bearer(&t))]);
    assert_eq!((reason(&d), denial(&d).status), (Reason::Audience, 403));
    let good = token(r#""aud":["x","https://api/"]"#);
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&good))])),
        Reason::Allowed
    );
    let c2 = one_rule(
        provider(json!({"audiences": ["api"]})),
        json!({"provider_and_audiences": {"provider_name": "idp", "audiences": ["other"]}}),
    );
    assert_eq!(
        reason(&eval(&c2, &[("authorization", &bearer(&t))])),
        Reason::Allowed
    );
}

#[test]
fn subjects_lifetime_and_require_expiration() {
    let c = one_rule(
        provider(json!({"subjects": {"prefix": "ali"}})),
        json!({"provider_name": "idp"}),
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&token("")))])),
        Reason::Allowed
    );
    let bob = hs256(
        SECRET,
        r#"{"alg":"HS256"}"#,
        r#"{"iss":"https://idp","sub":"bob"}"#,
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&bob))])),
        Reason::Subject
    );
    let c = one_rule(
        provider(json!({"require_expiration": true})),
        json!({"provider_name": "idp"}),
    );
    let no_exp = hs256(SECRET, r#"{"alg":"HS256"}"#, r#"{"iss":"https://idp"}"#);
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&no_exp))])),
        Reason::Lifetime
    );
    let c = one_rule(
        provider(json!({"max_lifetime": "3600s"})),
        json!({"provider_name": "idp"}),
    );
    let long = hs256(
        SECRET,
        r#"{"alg":"HS256"}"#,
        &format!(
            r#"{{"iss":"https://idp","iat":{NOW},"exp":{}}}"#,
            NOW + 7200
        ),
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&long))])),
        Reason::Lifetime
    );
    let short = hs256(
        SECRET,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"iss":"https://idp","iat":{NOW},"exp":{}}}"#, NOW + 600),
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&short))])),
        Reason::Allowed
    );
}

#[test]
fn every_presented_token_must_verify() {
    // A good token must not carry a bad one past the filter (jwt_authn's invariant).
    let c = one_rule(provider(json!({})), json!({"provider_name": "idp"}));
    let good = token("");
    let d = eval_path(
        &c,
        "/api?access_token=bad.bad.bad",
        &[("authorization", &bearer(&good))],
    );
    assert_ne!(reason(&d), Reason::Allowed);
    let d = eval(
        &c,
        &[
            ("authorization", &bearer(&good)),
            ("authorization", "Bearer x.y.z"),
        ],
    );
    assert_ne!(reason(&d), Reason::Allowed);
    let d = eval_path(
        &c,
        &format!("/api?access_token={good}"),
        &[("authorization", &bearer(&good))],
    );
    assert_eq!(reason(&d), Reason::Allowed);
    assert_eq!(
        allowed(&d).path.as_deref(),
        Some("/api"),
        "query token consumed"
    );
}

#[test]
fn requires_any_all_and_bypasses() {
    let p2 = json!({"issuer": "https://idp2", "local_jwks": {"inline_string": oct_jwks()}, "from_headers": [{"name": "x-jwt"}]});
    let cfg = |requires: Value| {
        config(
            json!({"providers": {"idp": provider(json!({})), "idp2": p2.clone()}, "rules": [{"match": {"prefix": "/"}, "requires": requires}]}),
        )
    };
    let t1 = token("");
    let t2 = hs256(SECRET, r#"{"alg":"HS256"}"#, r#"{"iss":"https://idp2"}"#);
    let any = cfg(
        json!({"requires_any": {"requirements": [{"provider_name": "idp"}, {"provider_name": "idp2"}]}}),
    );
    assert_eq!(reason(&eval(&any, &[("x-jwt", &t2)])), Reason::Allowed);
    assert_eq!(
        reason(&eval(&any, &[("authorization", &bearer(&t1))])),
        Reason::Allowed
    );
    assert_eq!(reason(&eval(&any, &[])), Reason::Missing);
    let all = cfg(
        json!({"requires_all": {"requirements": [{"provider_name": "idp"}, {"provider_name": "idp2"}]}}),
    );
    assert_eq!(reason(&eval(&all, &[("x-jwt", &t2)])), Reason::Missing);
    assert_eq!(
        reason(&eval(
            &all,
            &[("x-jwt", &t2), ("authorization", &bearer(&t1))]
        )),
        Reason::Allowed
    );
    let any_missing = cfg(
        json!({"requires_any": {"requirements": [{"provider_name": "idp"}, {"allow_missing": {}}]}}),
    );
    assert_eq!(reason(&eval(&any_missing, &[])), Reason::Allowed);
    assert_eq!(
        reason(&eval(
            &any_missing,
            &[("authorization", "Bearer bad.bad.bad")]
        )),
        Reason::Malformed
    );
    let missing = cfg(json!({"allow_missing": {}}));
    assert_eq!(reason(&eval(&missing, &[])), Reason::Allowed);
    assert_ne!(
        reason(&eval(&missing, &[("x-jwt", "bad.bad.bad")])),
        Reason::Allowed
    );
    assert_eq!(reason(&eval(&missing, &[("x-jwt", &t2)])), Reason::Allowed);
    let failed = cfg(json!({"allow_missing_or_failed": {}}));
    assert_eq!(
        reason(&eval(&failed, &[("x-jwt", "bad.bad.bad")])),
        Reason::Allowed
    );
    let d = eval(&failed, &[("authorization", &bearer(&t1))]);
    assert!(
        allowed(&d).remove.contains(&"authorization".to_string()),
        "verified tokens are still consumed"
    );
}

#[test]
fn rules_first_match_wins_and_unmatched_paths_pass() {
    let c = config(
        json!({"providers": {"idp": provider(json!({"claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}]}))},
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"path": "/exact"}, "requires": {"provider_name": "idp"}},
            {"match": {"safe_regex": {"regex": "/v[0-9]+/.*"}}, "requires": {"provider_name": "idp"}},
            {"match": {"prefix": "/h", "headers": [{"name": "x-tenant", "string_match": {"exact": "a"}}]}, "requires": {"provider_name": "idp"}},
            {"match": {"prefix": "/h", "headers": [{"name": "x-flag", "present_match": true}]}, "requires": {"provider_name": "idp"}},
        ]}),
    );
    let spoof = [("x-user-id", "root")];
    let d = eval_path(&c, "/public/x", &spoof);
    assert!(
        allowed(&d).remove.contains(&"x-user-id".to_string()),
        "stripped even without verification"
    );
    assert_eq!(reason(&eval_path(&c, "/other", &[])), Reason::Allowed);
    assert_eq!(reason(&eval_path(&c, "/exact?q=1", &[])), Reason::Missing);
    assert_eq!(reason(&eval_path(&c, "/exact/no", &[])), Reason::Allowed);
    assert_eq!(reason(&eval_path(&c, "/v2/items", &[])), Reason::Missing);
    assert_eq!(reason(&eval_path(&c, "/vx/items", &[])), Reason::Allowed);
    assert_eq!(
        reason(&eval_path(&c, "/h", &[("x-tenant", "a")])),
        Reason::Missing
    );
    assert_eq!(
        reason(&eval_path(&c, "/h", &[("x-tenant", "b")])),
        Reason::Allowed
    );
    assert_eq!(
        reason(&eval_path(&c, "/h", &[("x-flag", "")])),
        Reason::Missing
    );
}

#[test]
fn cors_preflight_bypass() {
    let c = config(
        json!({"providers": {"idp": provider(json!({}))}, "bypass_cors_preflight": true,
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]}),
    );
    let pre = request(
        "OPTIONS",
        "/x",
        &[
            ("origin", "https://a"),
            ("access-control-request-method", "POST"),
        ],
    );
    let ctx = EvalContext {
        now: NOW,
        already_fetched: vec![],
    };
    assert_eq!(
        reason(&evaluate(&c, &pre, &NoRemoteKeys, &ctx)),
        Reason::Allowed
    );
    let not_pre = request("OPTIONS", "/x", &[("origin", "https://a")]);
    assert_eq!(
        reason(&evaluate(&c, &not_pre, &NoRemoteKeys, &ctx)),
        Reason::Missing
    );
}

#[test]
fn strip_prefix_extension() {
    let c = config(json!({"extensions": {"strip_header_prefixes": ["x-user-"]}}));
    let d = eval(&c, &[("x-user-role", "admin"), ("x-other", "1")]);
    assert_eq!(allowed(&d).remove, vec!["x-user-role".to_string()]);
}

#[test]
fn token_size_limit_applies_before_decoding() {
    let c = config(
        json!({"providers": {"idp": provider(json!({}))}, "extensions": {"max_token_bytes": 64},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]}),
    );
    assert_eq!(
        reason(&eval(&c, &[("authorization", &bearer(&token("")))])),
        Reason::TooLarge
    );
}

#[test]
fn authorization_extension_gives_403_with_scope_hint() {
    let c = config(json!({"providers": {"idp": provider(json!({}))},
        "rules": [{"match": {"prefix": "/payments"}, "requires": {"provider_name": "idp"},
                   "extensions": {"authorize": {"scopes_all": ["payments:write"]}}}]}));
    let ok = token(r#""scope":"payments:write read""#);
    assert_eq!(
        reason(&eval_path(
            &c,
            "/payments",
            &[("authorization", &bearer(&ok))]
        )),
        Reason::Allowed
    );
    let no = token(r#""scope":"read""#);
    let d = eval_path(&c, "/payments", &[("authorization", &bearer(&no))]);
    let den = denial(&d);
    assert_eq!((den.reason, den.status), (Reason::InsufficientScope, 403));
    assert_eq!(den.www_authenticate, "Bearer realm=\"http://example.com/payments\", error=\"insufficient_scope\", scope=\"payments:write\"");
}

struct FakeStore {
    keys: HashMap<ProviderId, RemoteKeys>,
    refetch_ok: bool,
}

impl KeyStore for FakeStore {
    fn remote_keys(&self, p: ProviderId) -> RemoteKeys {
        self.keys.get(&p).cloned().unwrap_or(RemoteKeys::Pending)
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        self.refetch_ok
    }
}

#[test]
fn remote_keys_pause_then_verify_and_refetch_unknown_kid_once() {
    let c = config(
        json!({"providers": {"idp": {"issuer": "https://idp", "remote_jwks": {"http_uri": {"uri": "http://idp/jwks", "cluster": "idp", "timeout": "1s"}}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]}),
    );
    let req = request("GET", "/", &[("authorization", &bearer(&token("")))]);
    let pending = FakeStore {
        keys: HashMap::new(),
        refetch_ok: true,
    };
    let fresh = EvalContext {
        now: NOW,
        already_fetched: vec![],
    };
    assert_eq!(
        evaluate(&c, &req, &pending, &fresh),
        Decision::FetchKeys {
            provider: 0,
            cause: FetchCause::NoKeys
        }
    );
    let waited = EvalContext {
        now: NOW,
        already_fetched: vec![(0, FetchCause::NoKeys)],
    };
    assert_eq!(
        reason(&evaluate(&c, &req, &pending, &waited)),
        Reason::JwksUnavailable
    );
    let failed = FakeStore {
        keys: HashMap::from([(0, RemoteKeys::Failed)]),
        refetch_ok: true,
    };
    let d = evaluate(&c, &req, &failed, &fresh);
    assert_eq!(
        (reason(&d), denial(&d).body.as_str()),
        (Reason::JwksUnavailable, "Jwks remote fetch is failed")
    );

    // Remote sets never carry HMAC keys; use an EC key set under another kid to model rotation.
    let other = jwk::parse_key_set(
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"old","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
        &JwksOptions::default(),
    )
    .unwrap();
    let rotated = FakeStore {
        keys: HashMap::from([(0, RemoteKeys::Ready(Arc::new(other)))]),
        refetch_ok: true,
    };
    assert_eq!(
        evaluate(&c, &req, &rotated, &fresh),
        Decision::FetchKeys {
            provider: 0,
            cause: FetchCause::UnknownKid
        }
    );
    // A request that waited for the cold start may still wait once for the
    // unknown kid (the IdP rotated meanwhile); after that wait it is refused.
    assert_eq!(
        evaluate(&c, &req, &rotated, &waited),
        Decision::FetchKeys {
            provider: 0,
            cause: FetchCause::UnknownKid
        }
    );
    let waited_both = EvalContext {
        now: NOW,
        already_fetched: vec![(0, FetchCause::NoKeys), (0, FetchCause::UnknownKid)],
    };
    assert_eq!(
        reason(&evaluate(&c, &req, &rotated, &waited_both)),
        Reason::KeyNotFound
    );
    let waited_kid = EvalContext {
        now: NOW,
        already_fetched: vec![(0, FetchCause::UnknownKid)],
    };
    assert_eq!(
        reason(&evaluate(&c, &req, &rotated, &waited_kid)),
        Reason::KeyNotFound
    );
    assert_eq!(
        reason(&evaluate(
            &c,
            &req,
            &rotated,
            &EvalContext::never_wait(NOW, 1)
        )),
        Reason::KeyNotFound
    );
    let limited = FakeStore {
        refetch_ok: false,
        ..rotated
    };
    assert_eq!(
        reason(&evaluate(&c, &req, &limited, &fresh)),
        Reason::KeyNotFound
    );
}

#[test]
fn hostile_requests_never_panic() {
    let c = one_rule(
        provider(
            json!({"from_cookies": ["c"], "from_params": ["p"], "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}]}),
        ),
        json!({"provider_name": "idp"}),
    );
    let long = "a".repeat(100_000);
    let nested = format!(
        "{}.{}.x",
        crate::b64::encode(br#"{"alg":"HS256"}"#),
        crate::b64::encode("[".repeat(5000).as_bytes())
    );
    for v in [
        "",
        "Bearer",
        "Bearer .",
        "Bearer ..",
        "Bearer a.b.c.d.e",
        "Bearer \u{7f}\u{0}",
        long.as_str(),
        nested.as_str(),
    ] {
        let _ = eval_path(
            &c,
            "/?p=%&p=%zz&&=",
            &[("authorization", v), ("cookie", ";;=;c=\"")],
        );
    }
}

/// A store that records what the engine asks the verified-token cache.
#[derive(Default)]
struct CacheSpy {
    remembered: std::cell::RefCell<Vec<(String, CachedToken)>>,
    serve_hits: bool,
}

impl KeyStore for CacheSpy {
    fn remote_keys(&self, _: ProviderId) -> RemoteKeys {
        RemoteKeys::Failed
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        false
    }
    fn cached_token(&self, token: &str) -> Option<CachedToken> {
        if !self.serve_hits {
            return None;
        }
        self.remembered
            .borrow()
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, e)| e.clone())
    }
    fn remember_token(&self, token: &str, entry: CachedToken) -> bool {
        self.remembered
            .borrow_mut()
            .push((token.to_string(), entry));
        true
    }
}

/// A key store whose proxy-wide cache vouches for every token (or none), and
/// which records the signature checks it is told about.
#[derive(Default)]
struct SharedSpy {
    vouch: bool,
    checked: std::cell::RefCell<Vec<(u64, bool)>>,
}

impl KeyStore for SharedSpy {
    fn remote_keys(&self, _: ProviderId) -> RemoteKeys {
        RemoteKeys::Failed
    }
    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        false
    }
    fn signature_known_good(&self, _token: &str, _provider: ProviderId) -> bool {
        self.vouch
    }
    fn signature_checked(&self, _token: &str, _provider: ProviderId, exp: u64, ok: bool) {
        self.checked.borrow_mut().push((exp, ok));
    }
}

#[test]
fn shared_verdicts_skip_only_the_signature() {
    let c = one_rule(provider(json!({})), json!({"provider_name": "idp"}));
    let good = token("");
    let mut bad = token("");
    bad.pop();
    bad.push(if good.ends_with('A') { 'B' } else { 'A' });
    let run = |store: &SharedSpy, t: &str| {
        evaluate(
            &c,
            &request("GET", "/api", &[("authorization", &bearer(t))]),
            store,
            &EvalContext {
                now: NOW,
                ..Default::default()
            },
        )
    };
    // No shared verdict: real checks, each reported with its outcome and exp.
    let plain = SharedSpy::default();
    allowed(&run(&plain, &good));
    assert_eq!(denial(&run(&plain, &bad)).reason, Reason::BadSignature);
    let checked = plain.checked.borrow().clone();
    assert_eq!(checked.len(), 2);
    assert!(checked[0].1 && !checked[1].1);
    assert!(checked[0].0 > NOW, "exp is passed on");
    // A shared verdict stands for the signature (the shell only vouches for
    // tokens that verified against the same keys), nothing else.
    let vouching = SharedSpy {
        vouch: true,
        ..Default::default()
    };
    allowed(&run(&vouching, &bad));
    assert!(
        vouching.checked.borrow().is_empty(),
        "no crypto on a shared hit"
    );
    let expired = crate::testutil::hs256(
        crate::testutil::SECRET,
        r#"{"alg":"HS256","kid":"k1"}"#,
        &format!(
            r#"{{"iss":"https://idp","sub":"alice","exp":{}}}"#,
            NOW - 1000
        ),
    );
    assert_eq!(denial(&run(&vouching, &expired)).reason, Reason::Expired);
    let wrong_iss = crate::testutil::hs256(
        crate::testutil::SECRET,
        r#"{"alg":"HS256","kid":"k1"}"#,
        r#"{"iss":"https://elsewhere","sub":"alice","exp":2000000000}"#,
    );
    assert_eq!(denial(&run(&vouching, &wrong_iss)).reason, Reason::Issuer);
}

#[test]
fn only_verified_tokens_are_cached_and_claims_are_checked_on_every_hit() {
    let c = one_rule(
        provider(json!({"audiences": ["api"]})),
        json!({"provider_name": "idp"}),
    );
    let spy = CacheSpy {
        serve_hits: true,
        ..Default::default()
    };
    let good = token(r#""aud":"api""#);
    let mut bad = token(r#""aud":"api""#);
    bad.truncate(bad.len() - 2);
    bad.push_str("AA");
    let at = |now: u64| EvalContext {
        now,
        already_fetched: vec![],
    };
    let req = |t: &str| request("GET", "/", &[("authorization", &bearer(t))]);
    assert_eq!(
        reason(&evaluate(&c, &req(&good), &spy, &at(NOW))),
        Reason::Allowed
    );
    assert_ne!(
        reason(&evaluate(&c, &req(&bad), &spy, &at(NOW))),
        Reason::Allowed
    );
    let remembered: Vec<String> = spy
        .remembered
        .borrow()
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(
        remembered,
        vec![good.clone()],
        "only the good token is remembered"
    );
    // A hit still gets every claim check: time (exp 2000000000 + 60 s skew)...
    assert_eq!(
        reason(&evaluate(&c, &req(&good), &spy, &at(NOW))),
        Reason::Allowed
    );
    assert_eq!(
        reason(&evaluate(&c, &req(&good), &spy, &at(2_000_000_061))),
        Reason::Expired
    );
    // ...and audience under another requirement.
    let other = one_rule(
        provider(json!({"audiences": ["api"]})),
        json!({"provider_and_audiences": {"provider_name": "idp", "audiences": ["admin"]}}),
    );
    assert_eq!(
        reason(&evaluate(&other, &req(&good), &spy, &at(NOW))),
        Reason::Audience
    );
}

#[test]
fn a_cached_verdict_is_never_used_with_another_key_set() {
    // Two configs, same provider name and same key text, but each parsed on
    // its own: a verdict from one must not serve the other.
    let a = one_rule(provider(json!({})), json!({"provider_name": "idp"}));
    let b = one_rule(provider(json!({})), json!({"provider_name": "idp"}));
    let spy = CacheSpy {
        serve_hits: true,
        ..Default::default()
    };
    let good = token("");
    let at = EvalContext {
        now: NOW,
        already_fetched: vec![],
    };
    let req = request("GET", "/", &[("authorization", &bearer(&good))]);
    assert_eq!(reason(&evaluate(&a, &req, &spy, &at)), Reason::Allowed);
    assert_eq!(reason(&evaluate(&b, &req, &spy, &at)), Reason::Allowed);
    assert_eq!(
        spy.remembered.borrow().len(),
        2,
        "b verified again instead of trusting a's verdict"
    );
}
