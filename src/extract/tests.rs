use super::*;
use crate::config::Config;
use crate::testutil::{oct_jwks, request};
use serde_json::json;

fn cfg(provider: serde_json::Value) -> Config {
    let mut p = provider;
    p["local_jwks"] = json!({"inline_string": oct_jwks()});
    Config::parse(json!({"providers": {"p": p}}).to_string().as_bytes()).unwrap()
}

fn tokens(c: &Config, method_path: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let req = request("GET", method_path, headers);
    let ps: Vec<_> = c.providers.iter().enumerate().collect();
    extract(&req, &ps)
        .into_iter()
        .map(|e| e.token.into_owned())
        .collect()
}

#[test]
fn default_locations_bearer_then_access_token() {
    let c = cfg(json!({}));
    assert_eq!(
        tokens(
            &c,
            "/?access_token=q.q.q",
            &[("authorization", "Bearer h.h.h")]
        ),
        vec!["h.h.h", "q.q.q"]
    );
    assert!(
        tokens(&c, "/", &[("authorization", "bearer h.h.h")]).is_empty(),
        "prefix is case-sensitive, as jwt_authn"
    );
    assert!(tokens(&c, "/", &[("authorization", "Basic abc")]).is_empty());
}

#[test]
fn prefix_search_like_jwt_authn() {
    let c = cfg(json!({}));
    // Token starts at the first base64url char after the prefix and runs to the end.
    assert_eq!(
        tokens(&c, "/", &[("authorization", "Bearer   a.b.c")]),
        vec!["a.b.c"]
    );
    assert_eq!(
        tokens(&c, "/", &[("authorization", "x Bearer a.b.c junk")]),
        vec!["a.b.c junk"]
    );
    // Nothing token-like after the prefix: the whole value is the "token" (it will fail to parse).
    assert_eq!(
        tokens(&c, "/", &[("authorization", "Bearer ")]),
        vec!["Bearer "]
    );
}

#[test]
fn every_instance_of_a_repeated_header() {
    let c = cfg(json!({}));
    assert_eq!(
        tokens(
            &c,
            "/",
            &[
                ("authorization", "Bearer a.a.a"),
                ("authorization", "Bearer b.b.b")
            ]
        ),
        vec!["a.a.a", "b.b.b"]
    );
}

#[test]
fn custom_headers_params_cookies() {
    let c = cfg(
        json!({"from_headers": [{"name": "X-Token"}, {"name": "x-auth", "value_prefix": "JWT "}],
                       "from_params": ["t"], "from_cookies": ["session"]}),
    );
    let got = tokens(
        &c,
        "/p?t=p.p.p",
        &[
            ("x-token", "x.x.x"),
            ("x-auth", "JWT y.y.y"),
            ("cookie", "a=1; session=c.c.c"),
        ],
    );
    // Header locations ordered by name+prefix ("x-authJWT " < "x-token"), then params, then cookies.
    assert_eq!(got, vec!["y.y.y", "x.x.x", "p.p.p", "c.c.c"]);
    assert!(
        tokens(&c, "/?access_token=z", &[("authorization", "Bearer z")]).is_empty(),
        "defaults are off once locations are given"
    );
}

#[test]
fn shared_location_lists_every_provider() {
    let c = Config::parse(
        json!({"providers": {"a": {"issuer": "ia", "local_jwks": {"inline_string": oct_jwks()}},
                             "b": {"issuer": "ib", "local_jwks": {"inline_string": oct_jwks()}}}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let req = request("GET", "/", &[("authorization", "Bearer t.t.t")]);
    let ps: Vec<_> = c.providers.iter().enumerate().collect();
    let got = extract(&req, &ps);
    assert_eq!(got.len(), 1, "one location, one token");
    assert_eq!(got[0].providers, vec![0, 1]);
}

#[test]
fn removing_a_param_keeps_the_rest() {
    assert_eq!(
        path_without_param("/a?x=1&access_token=t&y=2", "access_token"),
        "/a?x=1&y=2"
    );
    assert_eq!(
        path_without_param("/a?access_token=t", "access_token"),
        "/a"
    );
    assert_eq!(
        path_without_param("/a?access%5Ftoken=t&b", "access_token"),
        "/a?b"
    );
    assert_eq!(path_without_param("/a?x=1#frag", "x"), "/a#frag");
    assert_eq!(path_without_param("/a", "x"), "/a");
}
