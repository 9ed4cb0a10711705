//! One-line summaries of a validated configuration, so an operator can read
//! back what the filter understood: per provider (issuer, keys, audiences,
//! token locations) and per rule (match, requirement in words).

use jwt_authn::authz::Authorization;
use jwt_authn::config::{
    Bypass, Config, KeySource, PathMatch, Provider, ProviderId, RemoteTarget, Requirement, Rule,
    TokenLocation,
};
use serde_json::Value;

/// Summary lines: one per provider, then one per rule. `raw` is the same
/// configuration as JSON, used only for text the compiled form does not keep
/// (a rule's regex pattern).
pub fn describe(config: &Config, raw: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(format!(
        "configuration ok: {} provider{}, {} rule{}",
        config.providers.len(),
        plural(config.providers.len()),
        config.rules.len(),
        plural(config.rules.len())
    ));
    for p in &config.providers {
        lines.push(provider_line(p));
    }
    for (i, rule) in config.rules.iter().enumerate() {
        let raw_rule = raw.get("rules").and_then(|r| r.get(i));
        lines.push(rule_line(config, i, rule, raw_rule));
    }
    lines
}

/// Warnings about a valid configuration: local keys that were skipped.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for p in &config.providers {
        if let KeySource::Local(set) = &p.keys {
            for s in &set.skipped {
                let kid = s
                    .kid
                    .as_deref()
                    .map(|k| format!(" (kid {k:?})"))
                    .unwrap_or_default();
                out.push(format!(
                    "warning: providers.{}.local_jwks: key {}{kid} skipped: {}",
                    p.name, s.index, s.reason
                ));
            }
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn provider_line(p: &Provider) -> String {
    let issuer = if p.issuer.is_empty() {
        "any".to_string()
    } else {
        p.issuer.clone()
    };
    let keys = match &p.keys {
        KeySource::Local(set) => {
            let list: Vec<String> = set
                .keys
                .iter()
                .map(|k| match &k.kid {
                    Some(kid) => format!("{kid}/{}", k.material.kty()),
                    None => k.material.kty().to_string(),
                })
                .collect();
            format!(
                "local ({} key{}: {})",
                set.keys.len(),
                plural(set.keys.len()),
                list.join(", ")
            )
        }
        KeySource::Remote(r) => match &r.target {
            RemoteTarget::Jwks(t) => {
                format!(
                    "remote {} (cluster {}, refresh {}s)",
                    t.uri,
                    r.cluster,
                    r.cache_duration.as_secs()
                )
            }
            RemoteTarget::Discovery(t) => {
                format!(
                    "discovery {} (cluster {}, refresh {}s)",
                    t.uri,
                    r.cluster,
                    r.cache_duration.as_secs()
                )
            }
        },
    };
    let audiences = if p.audiences.is_empty() {
        "any (not checked)".to_string()
    } else {
        p.audiences.join(", ")
    };
    let locations: Vec<String> = p.locations.iter().map(location_words).collect();
    let mut line = format!(
        "provider {}: issuer {issuer}; keys {keys}; audiences {audiences}; token from {}",
        p.name,
        locations.join(", ")
    );
    if !p.claim_to_headers.is_empty() {
        let h: Vec<String> = p
            .claim_to_headers
            .iter()
            .map(|c| format!("{}={}", c.header_name, c.claim_name))
            .collect();
        line.push_str(&format!("; claim headers {}", h.join(", ")));
    }
    if let Some(h) = &p.forward_payload_header {
        line.push_str(&format!("; payload header {h}"));
    }
    line.push_str(if p.forward {
        "; token forwarded"
    } else {
        "; token removed"
    });
    line
}

fn location_words(l: &TokenLocation) -> String {
    match l {
        TokenLocation::Header { name, value_prefix } if value_prefix.is_empty() => {
            format!("header {name}")
        }
        TokenLocation::Header { name, value_prefix } => format!("header {name} {value_prefix:?}"),
        TokenLocation::Param(n) => format!("query {n}"),
        TokenLocation::Cookie(n) => format!("cookie {n}"),
    }
}

fn rule_line(config: &Config, i: usize, rule: &Rule, raw: Option<&Value>) -> String {
    let m = &rule.route;
    let mut what = match &m.path {
        PathMatch::Prefix(p) => format!("prefix {p:?}"),
        PathMatch::Exact(p) => format!("path {p:?}"),
        PathMatch::SeparatedPrefix(p) => format!("path_separated_prefix {p:?}"),
        PathMatch::Regex(_) => {
            let pattern = raw
                .and_then(|r| r.pointer("/match/safe_regex/regex"))
                .and_then(Value::as_str)
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "(pattern)".into());
            format!("safe_regex {pattern}")
        }
    };
    if !m.case_sensitive {
        what.push_str(" (case-insensitive)");
    }
    if !m.headers.is_empty() {
        let names: Vec<String> = m
            .headers
            .iter()
            .map(|h| {
                if h.invert {
                    format!("not {}", h.name)
                } else {
                    h.name.clone()
                }
            })
            .collect();
        what.push_str(&format!(" and headers [{}]", names.join(", ")));
    }
    if !m.query_parameters.is_empty() {
        let names: Vec<&str> = m.query_parameters.iter().map(|q| q.name.as_str()).collect();
        what.push_str(&format!(" and query [{}]", names.join(", ")));
    }
    let requires = match &rule.requires {
        None => "no verification".to_string(),
        Some(r) => requirement_words(config, r),
    };
    let mut line = format!("rule {i}: {what} -> {requires}");
    if let Some(a) = &rule.authz {
        line.push_str(&format!("; authorize {}", authz_words(a)));
    }
    line
}

fn name(config: &Config, id: ProviderId) -> String {
    config
        .providers
        .get(id)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| format!("#{id}"))
}

fn names(config: &Config, ids: &[ProviderId]) -> String {
    ids.iter()
        .map(|id| name(config, *id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A requirement in words, e.g. `any of (provider a; provider b; no token)`.
pub fn requirement_words(config: &Config, r: &Requirement) -> String {
    match r {
        Requirement::AllowAll => "no verification (empty requirement)".into(),
        Requirement::Provider { id, audiences: None } => format!("provider {}", name(config, *id)),
        Requirement::Provider { id, audiences: Some(a) } => {
            format!("provider {} with audiences {}", name(config, *id), a.join(", "))
        }
        Requirement::All(children) => {
            let parts: Vec<String> = children.iter().map(|c| requirement_words(config, c)).collect();
            format!("all of ({})", parts.join("; "))
        }
        Requirement::Any { children, bypass } => {
            let mut parts: Vec<String> = children.iter().map(|c| requirement_words(config, c)).collect();
            match bypass {
                Some((Bypass::AllowMissing, _)) => parts.push("no token (allow_missing)".into()),
                Some((Bypass::AllowMissingOrFailed, _)) => parts.push("no or failed token (allow_missing_or_failed)".into()),
                None => {}
            }
            format!("any of ({})", parts.join("; "))
        }
        Requirement::Bypass(Bypass::AllowMissing, ids) => {
            format!("token optional (allow_missing: a token present must verify against {})", names(config, ids))
        }
        Requirement::Bypass(Bypass::AllowMissingOrFailed, ids) => format!(
            "every request passes (allow_missing_or_failed: tokens of {} are verified only to set headers)",
            names(config, ids)
        ),
    }
}

fn authz_words(a: &Authorization) -> String {
    let mut parts = Vec::new();
    let scope_claim = a.scope_claim.as_deref().unwrap_or("scope|scp");
    if !a.scopes_all.is_empty() {
        parts.push(format!(
            "all scopes [{}] in {scope_claim}",
            a.scopes_all.join(" ")
        ));
    }
    if !a.scopes_any.is_empty() {
        parts.push(format!(
            "any scope [{}] in {scope_claim}",
            a.scopes_any.join(" ")
        ));
    }
    if !a.roles_all.is_empty() {
        parts.push(format!(
            "all roles [{}] in {}",
            a.roles_all.join(", "),
            a.role_claim
        ));
    }
    if !a.roles_any.is_empty() {
        parts.push(format!(
            "any role [{}] in {}",
            a.roles_any.join(", "),
            a.role_claim
        ));
    }
    for (k, v) in &a.claims {
        parts.push(format!("{k} = {v}"));
    }
    if parts.is_empty() {
        "(nothing)".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requirements_in_words() {
        let raw = json!({
            "providers": {
                "a": {"remote_jwks": {"http_uri": {"uri": "https://a/jwks", "cluster": "a", "timeout": "1s"}}},
                "b": {"remote_jwks": {"http_uri": {"uri": "https://b/jwks", "cluster": "b", "timeout": "1s"}}, "audiences": ["x"]}
            },
            "rules": [
                {"match": {"safe_regex": {"regex": "/v[0-9]+/.*"}}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"allow_missing": {}}]}}},
                {"match": {"prefix": "/all", "headers": [{"name": "x-env", "exact_match": "prod"}]}, "requires": {"requires_all": {"requirements": [{"provider_name": "a"}, {"provider_and_audiences": {"provider_name": "b", "audiences": ["y"]}}]}}},
                {"match": {"path": "/open"}, "requires": {"allow_missing_or_failed": {}}},
                {"match": {"prefix": "/"}}
            ]
        });
        let config = Config::parse(raw.to_string().as_bytes()).unwrap();
        let lines = describe(&config, &raw);
        assert_eq!(lines[0], "configuration ok: 2 providers, 4 rules");
        assert_eq!(
            lines[1],
            "provider a: issuer any; keys remote https://a/jwks (cluster a, refresh 600s); audiences any (not checked); \
             token from header authorization \"Bearer \", query access_token; token removed"
        );
        assert!(lines[2].contains("audiences x;"), "{}", lines[2]);
        assert_eq!(
            lines[3],
            "rule 0: safe_regex \"/v[0-9]+/.*\" -> any of (provider a; no token (allow_missing))"
        );
        assert_eq!(lines[4], "rule 1: prefix \"/all\" and headers [x-env] -> all of (provider a; provider b with audiences y)");
        assert!(
            lines[5].starts_with("rule 2: path \"/open\" -> every request passes"),
            "{}",
            lines[5]
        );
        assert_eq!(lines[6], "rule 3: prefix \"/\" -> no verification");
    }
}
