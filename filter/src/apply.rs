//! Carries out a decision on the request whose context is effective now.
//!
//! Used from the HTTP context (first pass) and from the root context when a
//! paused request is resumed after a key fetch, so both paths act the same.

use crate::metrics::Metrics;
use jwt_authn::config::Config;
use jwt_authn::decision::{Decision, Denial, HeaderChanges, Verified};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

/// What the caller must do with the stream afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Let the request go on.
    Continue,
    /// A local reply was sent; the request stays stopped.
    Replied,
}

/// Applies an Allow or Deny. (FetchKeys is handled by the caller.)
pub fn apply(config: &Config, metrics: &Metrics, decision: &Decision, path_for_log: &str) -> Next {
    match decision {
        Decision::Allow { changes, verified } => {
            edit_headers(changes);
            publish_identity(config, verified);
            metrics.count(jwt_authn::reason::Reason::Allowed);
            Next::Continue
        }
        Decision::Deny(d) => {
            reply(config, metrics, d, path_for_log);
            Next::Replied
        }
        Decision::FetchKeys { .. } => Next::Continue,
    }
}

fn edit_headers(c: &HeaderChanges) {
    for name in &c.remove {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
    }
    for (name, value) in &c.set {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }
    if let Some(p) = &c.path {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, ":path", Some(p));
    }
}

/// jwt_authn's `payload_in_metadata`, through what proxy-wasm offers: the
/// verified payload is set as a property, which Envoy keeps in filter state
/// under `wasm.<name>` (for RBAC and access logs).
fn publish_identity(config: &Config, verified: &[Verified]) {
    for v in verified {
        let Some(p) = config.providers.get(v.provider) else {
            continue;
        };
        if let Some(name) = &p.payload_in_metadata {
            let json = serde_json::Value::Object(v.claims.object().clone()).to_string();
            let _ = hostcalls::set_property(vec![name.as_str()], Some(json.as_bytes()));
        }
        for (prop, value) in
            jwt_authn::headers::claim_headers(&p.claim_to_filter_state, |c| v.claims.claim_value(c))
        {
            let _ = hostcalls::set_property(vec![prop.as_str()], Some(value.as_bytes()));
        }
    }
}

fn reply(config: &Config, metrics: &Metrics, d: &Denial, path: &str) {
    metrics.count(d.reason);
    let provider = d
        .provider
        .and_then(|id| config.providers.get(id))
        .map(|p| p.name.as_str())
        .unwrap_or("-");
    log::debug!(
        "deny {} ({}) provider={provider} path={path}",
        d.status,
        d.reason.code()
    );
    let headers = vec![
        ("www-authenticate", d.www_authenticate.as_str()),
        ("content-type", "text/plain"),
    ];
    let _ = hostcalls::send_http_response(u32::from(d.status), headers, Some(d.body.as_bytes()));
}
