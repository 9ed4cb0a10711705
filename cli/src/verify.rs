//! `verify`: replay one request through the filter's own decision code
//! (`jwt_authn::engine::evaluate`) and print the decision as one JSON object.
//!
//! The CLI never goes to the network: remote providers get their keys from
//! `--jwks PROVIDER=FILE` or count as unreachable (`jwks_unavailable`), which
//! is what the filter answers when a fetch failed and nothing is cached.

use crate::args::Args;
use crate::check_config;
use crate::help;
use crate::input::{read_text, read_token};
use crate::outcome::{input, usage, CliError, Outcome, EXIT_NO, EXIT_OK};
use jwt_authn::config::{Config, KeySource, ProviderId, Requirement, TokenLocation};
use jwt_authn::decision::Decision;
use jwt_authn::engine::{self, EvalContext, KeyStore, RemoteKeys};
use jwt_authn::jwk::{parse_key_set, KeySet};
use jwt_authn::reason::Reason;
use jwt_authn::request::Request;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Flags that take a value.
const FLAGS: &[&str] = &[
    "--config", "--token", "--path", "--method", "--header", "--now", "--jwks",
];
/// Most `--header` flags accepted (a request is bounded like a real one).
const MAX_HEADERS: usize = 256;

/// The printed decision. Field order and names are a contract: the e2e suite
/// compares this object with what the filter does in Envoy.
#[derive(Debug, Serialize)]
struct Report {
    decision: &'static str,
    status: u16,
    reason: &'static str,
    provider: Option<String>,
    headers: HeadersReport,
}

/// Header edits: `set` sorted by name, `removed` in the engine's order.
#[derive(Debug, Serialize)]
struct HeadersReport {
    set: BTreeMap<String, String>,
    removed: Vec<String>,
}

/// Remote keys from `--jwks` files; every other remote provider is unreachable.
#[derive(Debug, Default)]
struct FileKeys {
    sets: Vec<(ProviderId, Arc<KeySet>)>,
}

impl KeyStore for FileKeys {
    fn remote_keys(&self, provider: ProviderId) -> RemoteKeys {
        match self.sets.iter().find(|(id, _)| *id == provider) {
            Some((_, set)) => RemoteKeys::Ready(set.clone()),
            None => RemoteKeys::Failed,
        }
    }

    fn may_refetch_unknown_kid(&self, _: ProviderId) -> bool {
        false
    }
}

/// Runs `jwt-authn verify ...`.
pub fn run(args: &[String]) -> Result<Outcome, CliError> {
    let a = Args::parse(args, FLAGS)?;
    if a.help {
        return Ok(Outcome::out(help::VERIFY.to_string(), EXIT_OK));
    }
    if !a.positionals.is_empty() {
        return Err(usage(
            "verify takes no positional arguments (use --token TOKEN)",
        ));
    }
    let config_file = a
        .one("--config")?
        .ok_or_else(|| usage("--config FILE is required"))?;
    let config = check_config::load(config_file)?;
    let now = match a.one("--now")? {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| usage("--now must be Unix seconds (a non-negative integer)"))?,
        None => unix_now(),
    };
    let mut warnings = String::new();
    let keys = load_keys(&config, &a.all("--jwks"), &mut warnings)?;
    let mut headers = base_headers(a.one("--method")?, a.one("--path")?, &a.all("--header"))?;
    if let Some(arg) = a.one("--token")? {
        let token = read_token(arg)?;
        place_token(&config, &mut headers, &token);
    }
    let req = Request::new(headers);
    let ctx = EvalContext::never_wait(now, config.providers.len());
    let decision = match engine::evaluate(&config, &req, &keys, &ctx) {
        // Cannot happen with every provider marked as fetched; deny as the filter would.
        Decision::FetchKeys { provider, .. } => {
            engine::deny(&req, Reason::JwksUnavailable, Some(provider), None)
        }
        d => d,
    };
    let (report, code) = report(&config, decision);
    let json = serde_json::to_string(&report).map_err(|_| input("cannot encode the result"))?;
    Ok(Outcome {
        stdout: format!("{json}\n"),
        stderr: warnings,
        code,
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn provider_name(config: &Config, id: Option<ProviderId>) -> Option<String> {
    id.and_then(|id| config.providers.get(id))
        .map(|p| p.name.clone())
}

fn report(config: &Config, decision: Decision) -> (Report, u8) {
    match decision {
        Decision::Allow { changes, verified } => {
            let mut set: BTreeMap<String, String> = changes.set.into_iter().collect();
            if let Some(path) = changes.path {
                set.insert(":path".into(), path);
            }
            let report = Report {
                decision: "allow",
                status: Reason::Allowed.status(),
                reason: Reason::Allowed.code(),
                provider: provider_name(config, verified.first().map(|v| v.provider)),
                headers: HeadersReport {
                    set,
                    removed: changes.remove,
                },
            };
            (report, EXIT_OK)
        }
        Decision::Deny(d) => {
            let set = BTreeMap::from([("www-authenticate".to_string(), d.www_authenticate)]);
            let report = Report {
                decision: "deny",
                status: d.status,
                reason: d.reason.code(),
                provider: provider_name(config, d.provider),
                headers: HeadersReport {
                    set,
                    removed: Vec::new(),
                },
            };
            (report, EXIT_NO)
        }
        Decision::FetchKeys { provider, .. } => {
            let reason = Reason::JwksUnavailable;
            let report = Report {
                decision: "deny",
                status: reason.status(),
                reason: reason.code(),
                provider: provider_name(config, Some(provider)),
                headers: HeadersReport {
                    set: BTreeMap::new(),
                    removed: Vec::new(),
                },
            };
            (report, EXIT_NO)
        }
    }
}

/// Reads `--jwks PROVIDER=FILE` key sets with the provider's own fetch
/// options (size cap, RSA minimum, no HMAC), as if the filter had fetched them.
fn load_keys(config: &Config, specs: &[&str], warnings: &mut String) -> Result<FileKeys, CliError> {
    let mut keys = FileKeys::default();
    for spec in specs {
        let (name, file) = spec
            .split_once('=')
            .ok_or_else(|| usage("--jwks must be PROVIDER=FILE"))?;
        let id = config.provider_id(name).ok_or_else(|| {
            usage(format!(
                "--jwks: no provider named {name:?} in the configuration"
            ))
        })?;
        if keys.sets.iter().any(|(k, _)| *k == id) {
            return Err(usage(format!("--jwks {name}: given twice")));
        }
        let opts = match config.providers.get(id).map(|p| &p.keys) {
            Some(KeySource::Remote(r)) => r.jwks_options,
            _ => {
                return Err(usage(format!(
                    "--jwks {name}: the provider has local_jwks; --jwks is for remote providers"
                )))
            }
        };
        let text = read_text(file)?;
        let set = parse_key_set(&text, &opts).map_err(|e| {
            input(format!(
                "--jwks {name}: {file}: {e} (the filter would count this fetch as failed)"
            ))
        })?;
        for s in &set.skipped {
            let kid = s
                .kid
                .as_deref()
                .map(|k| format!(" (kid {k:?})"))
                .unwrap_or_default();
            warnings.push_str(&format!(
                "warning: --jwks {name}: key {}{kid} skipped: {}\n",
                s.index, s.reason
            ));
        }
        keys.sets.push((id, Arc::new(set)));
    }
    Ok(keys)
}

/// Pseudo-headers plus `--header` values. `host` becomes `:authority` (as
/// Envoy's HTTP/1 codec does); `:method`, `:path`, `:authority`, `:scheme`
/// given as headers override the defaults and the flags.
fn base_headers(
    method: Option<&str>,
    path: Option<&str>,
    extra: &[&str],
) -> Result<Vec<(String, String)>, CliError> {
    if extra.len() > MAX_HEADERS {
        return Err(usage(format!("at most {MAX_HEADERS} --header flags")));
    }
    let mut method = method.unwrap_or("GET").to_string();
    let mut path = path.unwrap_or("/").to_string();
    let mut authority = "localhost".to_string();
    let mut scheme = "http".to_string();
    let mut rest = Vec::new();
    for h in extra {
        let (name, value) = split_header(h)?;
        match name.as_str() {
            ":method" => method = value,
            ":path" => path = value,
            ":authority" | "host" => authority = value,
            ":scheme" => scheme = value,
            n if n.starts_with(':') => {
                return Err(usage(format!("--header: unknown pseudo-header {n:?}")))
            }
            _ => rest.push((name, value)),
        }
    }
    for (what, v) in [("--method", &method), ("--path", &path)] {
        if v.is_empty() || !clean_value(v) || v.contains(' ') {
            return Err(usage(format!(
                "{what} must be non-empty, without spaces or control characters"
            )));
        }
    }
    let mut headers = vec![
        (":method".to_string(), method),
        (":path".to_string(), path),
        (":authority".to_string(), authority),
        (":scheme".to_string(), scheme),
    ];
    headers.extend(rest);
    Ok(headers)
}

fn clean_value(v: &str) -> bool {
    !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// `name: value` (a leading ':' belongs to the name); the name is lowercased
/// and the value trimmed, as an HTTP parser would.
fn split_header(h: &str) -> Result<(String, String), CliError> {
    let colon = h.get(1..).and_then(|rest| rest.find(':')).map(|i| i + 1);
    let Some(i) = colon else {
        return Err(usage("--header must be 'name: value'"));
    };
    let name = h[..i].trim().to_ascii_lowercase();
    let value = h[i + 1..].trim().to_string();
    let bare = name.strip_prefix(':').unwrap_or(&name);
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if bare.is_empty() || !bare.bytes().all(token_char) {
        return Err(usage("--header: invalid header name"));
    }
    if !clean_value(&value) {
        return Err(usage("--header: values must not contain CR, LF or NUL"));
    }
    Ok((name, value))
}

/// The first provider a requirement would look at, depth first.
fn first_provider(r: &Requirement) -> Option<ProviderId> {
    match r {
        Requirement::Provider { id, .. } => Some(*id),
        Requirement::All(children) => children.iter().find_map(first_provider),
        Requirement::Any { children, bypass } => children
            .iter()
            .find_map(first_provider)
            .or_else(|| bypass.as_ref().and_then(|(_, ids)| ids.first().copied())),
        Requirement::Bypass(_, ids) => ids.first().copied(),
        Requirement::AllowAll => None,
    }
}

/// Where `--token` goes: the first location of the first provider of the
/// first rule matching the request; `authorization: Bearer` otherwise.
fn token_location(config: &Config, headers: &[(String, String)]) -> TokenLocation {
    let req = Request::new(headers.to_vec());
    config
        .rules
        .iter()
        .find(|r| engine::route_matches(&r.route, &req))
        .and_then(|r| r.requires.as_ref())
        .and_then(first_provider)
        .and_then(|id| config.providers.get(id))
        .and_then(|p| p.locations.first().cloned())
        .unwrap_or(TokenLocation::Header {
            name: "authorization".into(),
            value_prefix: "Bearer ".into(),
        })
}

fn place_token(config: &Config, headers: &mut Vec<(String, String)>, token: &str) {
    match token_location(config, headers) {
        TokenLocation::Header { name, value_prefix } => {
            headers.push((name, format!("{value_prefix}{token}")))
        }
        TokenLocation::Cookie(name) => headers.push(("cookie".into(), format!("{name}={token}"))),
        TokenLocation::Param(name) => {
            if let Some((_, path)) = headers.iter_mut().find(|(k, _)| k == ":path") {
                *path = with_query_param(path, &name, token);
            }
        }
    }
}

/// Appends `name=value` (percent-encoded) to a path's query, before any fragment.
fn with_query_param(path: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match path.find('#') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    let sep = if base.contains('?') { "&" } else { "?" };
    format!(
        "{base}{sep}{}={}{fragment}",
        percent_encode(name),
        percent_encode(value)
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_like_http() {
        assert_eq!(
            split_header("X-A:  b c ").unwrap(),
            ("x-a".to_string(), "b c".to_string())
        );
        assert_eq!(
            split_header(":authority: h:8080").unwrap(),
            (":authority".to_string(), "h:8080".to_string())
        );
        assert!(split_header("novalue").is_err());
        assert!(split_header("bad name: v").is_err());
        assert!(split_header("a: b\r\nc: d").is_err());
    }

    #[test]
    fn host_and_pseudo_headers_override_defaults() {
        let h = base_headers(
            Some("POST"),
            Some("/x"),
            &["host: h", ":scheme: https", "x: 1"],
        )
        .unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get(":method"), Some("POST"));
        assert_eq!(get(":authority"), Some("h"));
        assert_eq!(get(":scheme"), Some("https"));
        assert_eq!(get("host"), None);
        assert_eq!(get("x"), Some("1"));
        assert!(base_headers(None, None, &[":status: 200"]).is_err());
        assert!(base_headers(None, Some("/a b"), &[]).is_err());
    }

    #[test]
    fn query_tokens_are_appended_before_the_fragment() {
        assert_eq!(with_query_param("/a", "tok", "x.y"), "/a?tok=x.y");
        assert_eq!(
            with_query_param("/a?b=1#f", "tok", "x y"),
            "/a?b=1&tok=x%20y#f"
        );
    }
}
