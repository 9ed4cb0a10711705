use super::*;
use crate::testutil::oct_jwks;
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<Config, ConfigError> {
    Config::parse(v.to_string().as_bytes())
}

fn err(v: serde_json::Value) -> String {
    parse(v).unwrap_err().to_string()
}

fn remote() -> serde_json::Value {
    json!({"http_uri": {"uri": "https://idp.example.com/.well-known/jwks.json", "cluster": "idp", "timeout": "5s"}})
}

#[test]
fn a_jwt_authn_config_loads_with_its_defaults() {
    let c = parse(json!({
        "providers": {
            "idp": {"issuer": "https://idp", "audiences": ["api"], "remote_jwks": remote(),
                     "claim_to_headers": [{"header_name": "X-User-Id", "claim_name": "sub"}],
                     "forward_payload_header": "x-jwt-payload"},
            "local": {"local_jwks": {"inline_string": oct_jwks()}, "from_headers": [{"name": "x-token"}],
                      "from_params": ["tok"], "from_cookies": ["session"], "clock_skew_seconds": 5}
        },
        "rules": [
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "idp"}},
            {"match": {"path": "/x"}, "requires": {"requires_any": {"requirements": [{"provider_name": "idp"}, {"allow_missing": {}}]}}},
            {"match": {"safe_regex": {"regex": "/v[0-9]+/.*"}}},
        ],
        "bypass_cors_preflight": true
    }))
    .unwrap();
    let idp = &c.providers[c.provider_id("idp").unwrap()];
    assert_eq!(idp.clock_skew_secs, 60);
    assert_eq!(
        idp.locations,
        vec![
            TokenLocation::Header {
                name: "authorization".into(),
                value_prefix: "Bearer ".into()
            },
            TokenLocation::Param("access_token".into())
        ]
    );
    let KeySource::Remote(r) = &idp.keys else {
        panic!("remote")
    };
    assert_eq!(r.cache_duration, DEFAULT_CACHE_DURATION);
    assert_eq!(r.timeout, Duration::from_secs(5));
    assert_eq!(r.stale_if_error, DEFAULT_STALE_IF_ERROR);
    let RemoteTarget::Jwks(t) = &r.target else {
        panic!("jwks target")
    };
    assert_eq!(
        (t.authority.as_str(), t.path.as_str()),
        ("idp.example.com", "/.well-known/jwks.json")
    );
    let local = &c.providers[c.provider_id("local").unwrap()];
    assert_eq!(local.clock_skew_secs, 5);
    assert_eq!(local.locations.len(), 3);
    assert_eq!(
        c.strip_headers,
        vec!["x-jwt-payload".to_string(), "x-user-id".to_string()]
    );
    assert_eq!(c.max_token_bytes, DEFAULT_MAX_TOKEN_BYTES);
    assert!(matches!(
        c.rules[1].requires,
        Some(Requirement::Any {
            bypass: Some((Bypass::AllowMissing, _)),
            ..
        })
    ));
    assert!(c.rules[2].requires.is_none());
}

#[test]
fn clock_skew_zero_means_default_as_in_jwt_authn() {
    let c = parse(json!({"providers": {"p": {"local_jwks": {"inline_string": oct_jwks()}, "clock_skew_seconds": 0}}})).unwrap();
    assert_eq!(c.providers[0].clock_skew_secs, 60);
}

#[test]
fn errors_name_the_json_path() {
    let mut r = remote();
    r["http_uri"]["timeout"] = json!("5 s");
    assert_eq!(
        err(json!({"providers": {"idp": {"remote_jwks": r}}})),
        "providers.idp.remote_jwks.http_uri.timeout: invalid duration \"5 s\""
    );
    let e = err(
        json!({"providers": {"idp": {"issuer": "x", "remote_jwks": remote(), "isuer": "typo"}}}),
    );
    assert!(
        e.starts_with("providers.idp.isuer: unknown field `isuer`, expected one of `issuer`"),
        "{e}"
    );
    let e = err(json!({"providers": {"idp": {"forward": "yes", "remote_jwks": remote()}}}));
    assert!(e.starts_with("providers.idp.forward: invalid type"), "{e}");
    assert_eq!(
        err(json!({"providers": {"idp": {}}})),
        "providers.idp: one of remote_jwks, local_jwks (or extensions.oidc_discovery) is required"
    );
    assert_eq!(
        err(
            json!({"providers": {"idp": {"remote_jwks": remote()}}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "nope"}}]})
        ),
        "rules[0].requires.provider_name: unknown provider \"nope\""
    );
    let e = err(json!({"providers": {"idp": {"remote_jwks": remote()}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "idp"}, {"provider_and_audiences": {"provider_name": "x"}}]}}}]}));
    assert_eq!(e, "rules[0].requires.requires_any.requirements[1].provider_and_audiences.provider_name: unknown provider \"x\"");
    let e = err(json!({"rules": [{"match": {"safe_regex": {"regex": "(["}}}]}));
    assert!(
        e.starts_with("rules[0].match.safe_regex.regex: invalid regex"),
        "{e}"
    );
    let e = err(json!({"rules": [{"requires": {}}]}));
    assert_eq!(e, "rules[0].match: is required");
    let mut r = remote();
    r["http_uri"].as_object_mut().unwrap().remove("timeout");
    assert_eq!(
        err(json!({"providers": {"idp": {"remote_jwks": r}}})),
        "providers.idp.remote_jwks.http_uri.timeout: is required"
    );
    let mut r = remote();
    r["http_uri"]["uri"] = json!("ftp://x/y");
    assert!(err(json!({"providers": {"idp": {"remote_jwks": r}}}))
        .starts_with("providers.idp.remote_jwks.http_uri.uri: uri must start with"));
    let e = err(json!({"providers": {"idp": {"local_jwks": {"inline_string": "{\"keys\": 5}"}}}}));
    assert!(
        e.starts_with("providers.idp.local_jwks.inline_string: "),
        "{e}"
    );
    let e = err(
        json!({"providers": {"idp": {"remote_jwks": remote(), "claim_to_headers": [{"header_name": "bad header", "claim_name": "sub"}]}}}),
    );
    assert!(
        e.starts_with("providers.idp.claim_to_headers[0].header_name: invalid header name"),
        "{e}"
    );
    let e = err(
        json!({"rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [{"allow_missing": {}}]}}}]}),
    );
    assert_eq!(
        e,
        "rules[0].requires.requires_all.requirements: needs at least 2 requirements"
    );
    let e = err(
        json!({"rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing": {"x": 1}}}]}),
    );
    assert!(
        e.starts_with("rules[0].requires.allow_missing.x: unknown field `x`"),
        "{e}"
    );
    let e = err(json!({"providers": {"idp": {"local_jwks": {"filename": "/etc/jwks.json"}}}}));
    assert!(
        e.starts_with("providers.idp.local_jwks.filename: not supported"),
        "{e}"
    );
    assert!(Config::parse(b"")
        .unwrap_err()
        .to_string()
        .contains("empty"));
    assert!(Config::parse(b"{} {}").is_err());
    assert!(Config::parse(b"[1]").is_err());
    assert!(Config::parse(&[0xff, 0xfe]).is_err());
}

#[test]
fn extensions_are_validated_too() {
    let e = err(json!({"extensions": {"max_token_bytes": 1}}));
    assert!(
        e.starts_with("extensions.max_token_bytes: must be between"),
        "{e}"
    );
    let e = err(
        json!({"providers": {"idp": {"remote_jwks": remote(), "extensions": {"stale_if_error": "1d"}}}}),
    );
    assert_eq!(
        e,
        "providers.idp.extensions.stale_if_error: invalid duration \"1d\""
    );
    let e = err(
        json!({"providers": {"idp": {"remote_jwks": remote(), "claim_to_headers": [{"header_name": "x-r", "claim_name": "roles", "extensions": {"format": "csv"}}]}}}),
    );
    assert!(
        e.starts_with("providers.idp.claim_to_headers[0].extensions.format: unknown format"),
        "{e}"
    );
    let c = parse(json!({"extensions": {"max_token_bytes": 4096, "strip_headers": ["X-Internal"], "strip_header_prefixes": ["x-user-"]}})).unwrap();
    assert_eq!(c.max_token_bytes, 4096);
    assert_eq!(c.strip_headers, vec!["x-internal".to_string()]);
    assert_eq!(c.strip_header_prefixes, vec!["x-user-".to_string()]);
}

#[test]
fn signature_backend_and_shared_cache_extensions() {
    let c = parse(json!({})).unwrap();
    assert_eq!(c.signature_backend, SignatureBackendChoice::Auto);
    assert_eq!(c.shared_token_cache_size, DEFAULT_SHARED_TOKEN_CACHE_SIZE);
    let c = parse(
        json!({"extensions": {"signature_backend": "portable", "shared_token_cache_size": 0}}),
    )
    .unwrap();
    assert_eq!(c.signature_backend, SignatureBackendChoice::Portable);
    assert_eq!(c.shared_token_cache_size, 0);
    let e = err(json!({"extensions": {"signature_backend": "boringssl"}}));
    assert!(
        e.starts_with("extensions.signature_backend: must be \"auto\" or \"portable\""),
        "{e}"
    );
    let e = err(json!({"extensions": {"shared_token_cache_size": 2_000_000}}));
    assert!(
        e.starts_with("extensions.shared_token_cache_size: must be at most"),
        "{e}"
    );
    let e = err(json!({"extensions": {"shared_token_cache_size": -1}}));
    assert!(e.starts_with("extensions.shared_token_cache_size"), "{e}");
}

#[test]
fn oidc_discovery_extension() {
    let c = parse(json!({"providers": {"idp": {"issuer": "https://idp.example.com/", "extensions": {"oidc_discovery": {"cluster": "idp"}}}}})).unwrap();
    let KeySource::Remote(r) = &c.providers[0].keys else {
        panic!("remote")
    };
    let RemoteTarget::Discovery(t) = &r.target else {
        panic!("discovery")
    };
    assert_eq!(t.path, "/.well-known/openid-configuration");
    let e =
        err(json!({"providers": {"idp": {"extensions": {"oidc_discovery": {"cluster": "idp"}}}}}));
    assert_eq!(
        e,
        "providers.idp.issuer: is required with extensions.oidc_discovery"
    );
    let e = err(
        json!({"providers": {"idp": {"issuer": "https://x", "remote_jwks": remote(), "extensions": {"oidc_discovery": {"cluster": "idp"}}}}}),
    );
    assert!(e.contains("only one of"), "{e}");
}

#[test]
fn http_target_split() {
    let t = HttpTarget::parse("http://127.0.0.1:8081/jwks?x=1", "f").unwrap();
    assert_eq!(
        (t.authority.as_str(), t.path.as_str()),
        ("127.0.0.1:8081", "/jwks?x=1")
    );
    let t = HttpTarget::parse("https://idp", "f").unwrap();
    assert_eq!(t.path, "/");
    let t = HttpTarget::parse("https://idp?x", "f").unwrap();
    assert_eq!((t.authority.as_str(), t.path.as_str()), ("idp", "/?x"));
    assert!(HttpTarget::parse("https:///x", "f").is_err());
    assert!(HttpTarget::parse("https://u@h/x", "f").is_err());
}

#[test]
fn hostile_configs_never_panic() {
    let deep = "[".repeat(100_000);
    assert!(Config::parse(deep.as_bytes()).is_err());
    let big = vec![b' '; MAX_CONFIG_BYTES + 1];
    assert!(Config::parse(&big)
        .unwrap_err()
        .to_string()
        .contains("larger than"));
    for s in [
        "{\"providers\":null}",
        "{\"rules\":[null]}",
        "{\"providers\":{\"\":{}}}",
        "{\"rules\":[{\"match\":{\"prefix\":\"/\",\"headers\":[{\"name\":\"\"}]}}]}",
    ] {
        assert!(Config::parse(s.as_bytes()).is_err(), "{s}");
    }
}
