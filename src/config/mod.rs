//! Plugin configuration: parsed and validated once, at `on_configure`.
//!
//! The input is the proto3-JSON form of Envoy's `JwtAuthentication`, so an
//! existing `envoy.filters.http.jwt_authn` config moves over unchanged. Every
//! error names the JSON path of the offending field (for example
//! `providers.idp.remote_jwks.http_uri.timeout: invalid duration "5 s"`): the VM
//! refuses the config with that line rather than running with a half-understood
//! policy. Our additions are only under fields named `extensions`.

pub mod duration;
pub mod matcher;
pub(crate) mod raw;

use crate::jwk::{self, JwksOptions, KeySet};
use matcher::{compile_regex, FullRegex, StringMatcher};
use raw::*;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A config rejection: where (JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted JSON path, e.g. `providers.idp.issuer` or `rules[2].match`.
    pub path: String,
    /// What is wrong, short and lowercase.
    pub message: String,
}

impl ConfigError {
    /// Builds an error for `path`.
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Largest plugin configuration accepted, before parsing.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// Default token size limit (extension `extensions.max_token_bytes`).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default entries of the shared verified-token cache (about 2.6 MiB of shared data).
pub const DEFAULT_SHARED_TOKEN_CACHE_SIZE: usize = 65_536;
/// Upper bound of `extensions.shared_token_cache_size`.
pub const MAX_SHARED_TOKEN_CACHE_SIZE: u32 = 1 << 20;

/// Which signature verifier the filter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureBackendChoice {
    /// The host's `verify_signature` (BoringSSL) where it is present and
    /// passes the start-up probe, the built-in verifier for everything else.
    #[default]
    Auto,
    /// Always the built-in (pure-Rust) verifier: hosts without the foreign
    /// function behave like this, and the benchmark forces it to measure them.
    Portable,
}

/// jwt_authn's default clock skew; also used when the field is 0, as jwt_authn does.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
/// jwt_authn's default `remote_jwks.cache_duration`.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
/// jwt_authn's default `async_fetch.failed_refetch_duration`.
pub const DEFAULT_FAILED_REFETCH: Duration = Duration::from_secs(1);
/// Extension default: how long last good keys outlive failing refreshes.
pub const DEFAULT_STALE_IF_ERROR: Duration = Duration::from_secs(24 * 3600);
/// Extension default: spacing of refetches triggered by an unknown `kid`.
pub const DEFAULT_UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(30);
/// Extension default: largest JWKS body accepted.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 256 * 1024;
/// Extension default: shortest RSA modulus accepted (RFC 7518 section 3.3).
pub const DEFAULT_MIN_RSA_BITS: usize = 2048;
/// Default retry back-off base, as Envoy's `RetryPolicy`.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// Default retry back-off cap (10 x base, as Envoy).
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10);

/// Index of a provider in [`Config::providers`].
pub type ProviderId = usize;

/// The validated, ready-to-use configuration.
#[derive(Debug)]
pub struct Config {
    /// Providers in name order (index = [`ProviderId`]).
    pub providers: Vec<Provider>,
    /// Ordered rules; the first whose `match` fits decides.
    pub rules: Vec<Rule>,
    /// Let CORS preflight requests through unverified.
    pub bypass_cors_preflight: bool,
    /// Tokens longer than this are refused before decoding (extension).
    pub max_token_bytes: usize,
    /// Lowercase header names removed from every request before anything else.
    pub strip_headers: Vec<String>,
    /// Lowercase header-name prefixes removed likewise (extension).
    pub strip_header_prefixes: Vec<String>,
    /// `stat_prefix`, kept for metrics names.
    pub stat_prefix: String,
    /// Each provider's token extraction plan (index = [`ProviderId`]).
    pub extraction_plans: Vec<crate::extract::Plan>,
    /// Per rule (same index), the token locations of every provider its
    /// requirement names: where a repeated request's only token is found
    /// without copying, to reuse that token's earlier outcome (`memo`).
    /// `None`: the rule verifies nothing.
    pub rule_plans: Vec<Option<crate::extract::Plan>>,
    /// Where signatures are checked (extension `extensions.signature_backend`).
    pub signature_backend: SignatureBackendChoice,
    /// Entries of the proxy-wide verified-token cache in shared data (extension
    /// `extensions.shared_token_cache_size`; 0 disables it).
    pub shared_token_cache_size: usize,
    /// Verified-token cache capacity: the sum of the providers'
    /// `jwt_cache_config.jwt_cache_size` (each defaults to 100, as jwt_authn).
    pub jwt_cache_size: usize,
}

/// One JWT issuer and how to treat its tokens.
#[derive(Debug)]
pub struct Provider {
    /// The key in `providers`.
    pub name: String,
    /// Required `iss`; empty means any issuer.
    pub issuer: String,
    /// Allowed `aud` values; empty means `aud` is not checked.
    pub audiences: Vec<String>,
    /// Constraint on `sub`.
    pub subjects: Option<StringMatcher>,
    /// Reject tokens without `exp`.
    pub require_expiration: bool,
    /// Longest allowed `exp - iat` (and `exp - now`).
    pub max_lifetime: Option<Duration>,
    /// Where keys come from.
    pub keys: KeySource,
    /// Keep the token in the request after verification.
    pub forward: bool,
    /// Where to look for tokens, in order.
    pub locations: Vec<TokenLocation>,
    /// Header receiving the base64url payload on success.
    pub forward_payload_header: Option<String>,
    /// Pad that payload to a multiple of 4.
    pub pad_forward_payload_header: bool,
    /// Claims copied into request headers on success.
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Leeway for `exp`/`nbf`.
    pub clock_skew_secs: u64,
    /// Filter-state name for the verified payload (jwt_authn's `payload_in_metadata`).
    pub payload_in_metadata: Option<String>,
    /// Extension: claims published one by one as filter state (`wasm.<name>`).
    pub claim_to_filter_state: Vec<ClaimToHeader>,
}

/// Key source: pluggable, so the verification path does not care where keys live.
#[derive(Debug)]
pub enum KeySource {
    /// Parsed at load from `local_jwks`.
    Local(Arc<KeySet>),
    /// Fetched at run time (`remote_jwks` or the OIDC discovery extension).
    Remote(Box<RemoteJwks>),
}

/// Everything the fetcher needs for one remote provider.
#[derive(Debug, Clone)]
pub struct RemoteJwks {
    /// What to fetch first: the JWKS itself, or a discovery document.
    pub target: RemoteTarget,
    /// Envoy cluster for the callout.
    pub cluster: String,
    /// Callout timeout.
    pub timeout: Duration,
    /// Refresh period.
    pub cache_duration: Duration,
    /// jwt_authn's `async_fetch.failed_refetch_duration` (back-off floor).
    pub failed_refetch: Duration,
    /// Retries within one fetch attempt cycle (`retry_policy.num_retries`).
    pub num_retries: u32,
    /// Back-off base (`retry_policy.retry_back_off.base_interval`).
    pub retry_base: Duration,
    /// Back-off cap (`retry_policy.retry_back_off.max_interval`).
    pub retry_max: Duration,
    /// Extension: last good keys stay usable this long after they are due.
    pub stale_if_error: Duration,
    /// Extension: minimum spacing of unknown-`kid` refetches.
    pub unknown_kid_refetch_interval: Duration,
    /// Extension: body size cap.
    pub max_jwks_bytes: usize,
    /// Parsing options for fetched sets.
    pub jwks_options: JwksOptions,
}

/// The first document a remote provider fetches.
#[derive(Debug, Clone)]
pub enum RemoteTarget {
    /// A JWKS URI.
    Jwks(HttpTarget),
    /// An OIDC discovery document whose `jwks_uri` is fetched next.
    Discovery(HttpTarget),
}

/// A URI split for `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The full URI as configured.
    pub uri: String,
    /// `:authority`.
    pub authority: String,
    /// `:path` (with query).
    pub path: String,
}

impl HttpTarget {
    /// Splits an `http(s)://authority/path` URI; `path` names the field in errors.
    pub fn parse(uri: &str, field: &str) -> Result<Self, ConfigError> {
        let rest = uri
            .strip_prefix("http://")
            .or_else(|| uri.strip_prefix("https://"))
            .ok_or_else(|| {
                ConfigError::new(
                    field,
                    format!(
                        "uri must start with http:// or https:// (got {:?})",
                        truncate(uri)
                    ),
                )
            })?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes().get(i) == Some(&b'/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() || authority.contains(['@', ' ', '#']) {
            return Err(ConfigError::new(
                field,
                format!("uri has no valid host (got {:?})", truncate(uri)),
            ));
        }
        Ok(HttpTarget {
            uri: uri.to_string(),
            authority: authority.to_string(),
            path,
        })
    }
}

/// Where a token may be found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TokenLocation {
    /// Header (lowercase name) with an optional value prefix such as "Bearer ".
    Header { name: String, value_prefix: String },
    /// Query parameter.
    Param(String),
    /// Cookie.
    Cookie(String),
}

/// How a claim becomes a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimFormat {
    /// jwt_authn's encoding (strings as-is, numbers, booleans; arrays/objects as base64url JSON).
    Envoy,
    /// Extension: arrays of scalars joined with the separator.
    Join(String),
}

/// One `claim_to_headers` entry.
#[derive(Debug, Clone)]
pub struct ClaimToHeader {
    /// Lowercase header name.
    pub header_name: String,
    /// Dotted claim path, e.g. `realm.role`.
    pub claim_name: String,
    /// Encoding.
    pub format: ClaimFormat,
}

/// One entry of `rules`.
#[derive(Debug)]
pub struct Rule {
    /// When the rule applies.
    pub route: RouteMatch,
    /// What it requires; `None` means no verification.
    pub requires: Option<Requirement>,
    /// Extension: claim-based authorization after verification (raw until compiled by `authz`).
    pub authz: Option<crate::authz::Authorization>,
}

/// `RouteMatch` subset jwt_authn honours.
#[derive(Debug)]
pub struct RouteMatch {
    /// Path condition.
    pub path: PathMatch,
    /// `case_sensitive` (default true) for prefix/path.
    pub case_sensitive: bool,
    /// All must match.
    pub headers: Vec<HeaderMatch>,
    /// All must match.
    pub query_parameters: Vec<QueryMatch>,
}

/// The path part of a route match.
#[derive(Debug)]
pub enum PathMatch {
    /// Path (with query) starts with.
    Prefix(String),
    /// Path (without query) equals.
    Exact(String),
    /// Path (without query) fully matches.
    Regex(FullRegex),
    /// Prefix ending at a path-segment boundary.
    SeparatedPrefix(String),
}

/// A header condition of a route match.
#[derive(Debug)]
pub struct HeaderMatch {
    /// Lowercase header name.
    pub name: String,
    /// `None` = present match.
    pub matcher: Option<StringMatcher>,
    /// For present matches: whether the header must be present.
    pub present: bool,
    /// Negate the result.
    pub invert: bool,
    /// Match a missing header as "".
    pub treat_missing_as_empty: bool,
}

/// A query-parameter condition of a route match.
#[derive(Debug)]
pub struct QueryMatch {
    /// Parameter name.
    pub name: String,
    /// `None` = present match.
    pub matcher: Option<StringMatcher>,
}

/// jwt_authn's `JwtRequirement`, with provider names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `provider_name` / `provider_and_audiences`.
    Provider {
        /// The provider.
        id: ProviderId,
        /// Audience override from `provider_and_audiences`.
        audiences: Option<Vec<String>>,
    },
    /// `requires_any`: regular children, then at most one bypass over their providers.
    Any {
        /// Provider/any/all children, in order.
        children: Vec<Requirement>,
        /// `allow_missing` / `allow_missing_or_failed` among the children.
        bypass: Option<(Bypass, Vec<ProviderId>)>,
    },
    /// `requires_all`.
    All(Vec<Requirement>),
    /// Top-level `allow_missing` / `allow_missing_or_failed`, over all providers.
    Bypass(Bypass, Vec<ProviderId>),
    /// An empty requirement object: everything passes.
    AllowAll,
}

impl Requirement {
    /// Adds every provider this requirement can verify a token with (once each).
    pub fn provider_ids(&self, out: &mut Vec<ProviderId>) {
        let mut add = |id: &ProviderId| {
            if !out.contains(id) {
                out.push(*id);
            }
        };
        match self {
            Requirement::Provider { id, .. } => add(id),
            Requirement::Bypass(_, ids) => ids.iter().for_each(add),
            Requirement::Any { children, bypass } => {
                if let Some((_, ids)) = bypass {
                    ids.iter().for_each(add);
                }
                for c in children {
                    c.provider_ids(out);
                }
            }
            Requirement::All(children) => {
                for c in children {
                    c.provider_ids(out);
                }
            }
            Requirement::AllowAll => {}
        }
    }
}

/// The two permissive requirement kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// Pass when no token is present; a present token must verify.
    AllowMissing,
    /// Always pass; present tokens are still verified (for headers).
    AllowMissingOrFailed,
}

fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// True for an RFC 7230 token (a legal header name).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Config {
    /// Parses and validates the plugin configuration.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::new(
                "",
                format!("configuration is larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ConfigError::new("", "configuration is not UTF-8"))?;
        if text.trim().is_empty() {
            return Err(ConfigError::new("", "configuration is empty"));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::new(&path, without_position(&e.inner().to_string()))
        })?;
        de.end().map_err(|e| {
            ConfigError::new("", format!("trailing data after the configuration: {e}"))
        })?;
        compile(raw)
    }

    /// Looks a provider up by name.
    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.providers.iter().position(|p| p.name == name)
    }
}

/// serde_json appends " at line L column C"; the JSON path already says where.
fn without_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    let names: BTreeMap<&str, ProviderId> = raw
        .providers
        .keys()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, p) in &raw.providers {
        providers.push(compile_provider(name, p)?);
    }
    let all: Vec<ProviderId> = (0..providers.len()).collect();
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        let m = r
            .route_match
            .as_ref()
            .ok_or_else(|| ConfigError::new(&format!("{path}.match"), "is required"))?;
        let route = compile_route(m, &format!("{path}.match"))?;
        let requires = match &r.requires {
            None => None,
            Some(req) => Some(compile_requirement(
                req,
                &format!("{path}.requires"),
                &names,
                &all,
                true,
            )?),
        };
        let authz = match &r.extensions {
            None => None,
            Some(v) => crate::authz::Authorization::from_json(v, &format!("{path}.extensions"))?,
        };
        rules.push(Rule {
            route,
            requires,
            authz,
        });
    }

    let ext = &raw.extensions;
    let max_token_bytes = match ext.max_token_bytes {
        None => DEFAULT_MAX_TOKEN_BYTES,
        Some(n) if (16..=65536).contains(&n) => n as usize,
        Some(n) => {
            return Err(ConfigError::new(
                "extensions.max_token_bytes",
                format!("must be between 16 and 65536 (got {n})"),
            ))
        }
    };
    let mut strip_headers: Vec<String> = Vec::new();
    for p in &providers {
        if let Some(h) = &p.forward_payload_header {
            strip_headers.push(h.clone());
        }
        strip_headers.extend(p.claim_to_headers.iter().map(|c| c.header_name.clone()));
    }
    for (i, h) in ext.strip_headers.iter().enumerate() {
        if !is_header_name(h) {
            return Err(ConfigError::new(
                &format!("extensions.strip_headers[{i}]"),
                format!("invalid header name {:?}", truncate(h)),
            ));
        }
        strip_headers.push(h.to_ascii_lowercase());
    }
    strip_headers.sort();
    strip_headers.dedup();
    let mut strip_header_prefixes = Vec::new();
    for (i, h) in ext.strip_header_prefixes.iter().enumerate() {
        if !is_header_name(h) || h.starts_with(':') {
            return Err(ConfigError::new(
                &format!("extensions.strip_header_prefixes[{i}]"),
                format!("invalid header name prefix {:?}", truncate(h)),
            ));
        }
        strip_header_prefixes.push(h.to_ascii_lowercase());
    }
    let signature_backend = match ext.signature_backend.as_deref() {
        None | Some("auto") => SignatureBackendChoice::Auto,
        Some("portable") => SignatureBackendChoice::Portable,
        Some(other) => {
            return Err(ConfigError::new(
                "extensions.signature_backend",
                format!(
                    "must be \"auto\" or \"portable\" (got {:?})",
                    truncate(other)
                ),
            ))
        }
    };
    let shared_token_cache_size = match ext.shared_token_cache_size {
        None => DEFAULT_SHARED_TOKEN_CACHE_SIZE,
        Some(n) if n <= MAX_SHARED_TOKEN_CACHE_SIZE => n as usize,
        Some(n) => {
            return Err(ConfigError::new(
                "extensions.shared_token_cache_size",
                format!("must be at most {MAX_SHARED_TOKEN_CACHE_SIZE} (got {n})"),
            ))
        }
    };
    let extraction_plans = providers
        .iter()
        .enumerate()
        .map(|(id, p)| crate::extract::plan(&[(id, p)]))
        .collect();
    let rule_plans = rules
        .iter()
        .map(|r| {
            let mut ids = Vec::new();
            r.requires.as_ref()?.provider_ids(&mut ids);
            let named: Vec<(ProviderId, &Provider)> = ids
                .iter()
                .filter_map(|id| providers.get(*id).map(|p| (*id, p)))
                .collect();
            (!named.is_empty()).then(|| crate::extract::plan(&named))
        })
        .collect();
    Ok(Config {
        extraction_plans,
        rule_plans,
        providers,
        rules,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        signature_backend,
        shared_token_cache_size,
        max_token_bytes,
        strip_headers,
        strip_header_prefixes,
        stat_prefix: raw.stat_prefix.clone().unwrap_or_default(),
        jwt_cache_size: raw
            .providers
            .values()
            .map(|p| match &p.jwt_cache_config {
                Some(c) if c.jwt_cache_size > 0 => c.jwt_cache_size as usize,
                _ => crate::verified_cache::DEFAULT_CAPACITY,
            })
            .sum::<usize>()
            .min(10_000),
    })
}

fn compile_provider(name: &str, p: &RawProvider) -> Result<Provider, ConfigError> {
    let path = format!("providers.{name}");
    if name.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "provider names must not be empty",
        ));
    }
    let ext = &p.extensions;
    let min_rsa_bits = match ext.min_rsa_bits {
        None => DEFAULT_MIN_RSA_BITS,
        Some(n) if (1024..=16384).contains(&n) => n as usize,
        Some(n) => {
            return Err(ConfigError::new(
                &format!("{path}.extensions.min_rsa_bits"),
                format!("must be between 1024 and 16384 (got {n})"),
            ))
        }
    };
    let max_jwks_bytes = match ext.max_jwks_bytes {
        None => DEFAULT_MAX_JWKS_BYTES,
        Some(n) if (1024..=4 * 1024 * 1024).contains(&n) => n as usize,
        Some(n) => {
            return Err(ConfigError::new(
                &format!("{path}.extensions.max_jwks_bytes"),
                format!("must be between 1024 and 4194304 (got {n})"),
            ))
        }
    };
    let keys = match (&p.local_jwks, &p.remote_jwks, &ext.oidc_discovery) {
        (Some(local), None, None) => {
            let lpath = format!("{path}.local_jwks");
            let text = local_jwks_text(local, &lpath)?;
            let opts = JwksOptions {
                min_rsa_bits,
                allow_hmac: true,
                max_bytes: max_jwks_bytes.max(text.len().min(MAX_CONFIG_BYTES)),
                ..JwksOptions::default()
            };
            let set = jwk::parse_key_set(&text, &opts)
                .map_err(|e| ConfigError::new(&format!("{lpath}.inline_string"), e.to_string()))?;
            KeySource::Local(Arc::new(set))
        }
        (None, Some(remote), None) => KeySource::Remote(Box::new(compile_remote(
            remote,
            &format!("{path}.remote_jwks"),
            ext,
            min_rsa_bits,
            max_jwks_bytes,
        )?)),
        (None, None, Some(disc)) => {
            let dpath = format!("{path}.extensions.oidc_discovery");
            if p.issuer.is_empty() {
                return Err(ConfigError::new(
                    &format!("{path}.issuer"),
                    "is required with extensions.oidc_discovery",
                ));
            }
            if disc.cluster.is_empty() {
                return Err(ConfigError::new(&format!("{dpath}.cluster"), "is required"));
            }
            let uri = match &disc.uri {
                Some(u) => u.clone(),
                None => format!(
                    "{}/.well-known/openid-configuration",
                    p.issuer.trim_end_matches('/')
                ),
            };
            let target = HttpTarget::parse(&uri, &format!("{dpath}.uri"))?;
            let timeout = disc.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(5));
            if timeout.is_zero() {
                return Err(ConfigError::new(
                    &format!("{dpath}.timeout"),
                    "must be greater than 0s",
                ));
            }
            KeySource::Remote(Box::new(RemoteJwks {
                cache_duration: nonzero_or(disc.cache_duration, DEFAULT_CACHE_DURATION),
                ..remote_base(
                    RemoteTarget::Discovery(target),
                    &disc.cluster,
                    timeout,
                    ext,
                    min_rsa_bits,
                    max_jwks_bytes,
                )
            }))
        }
        (None, None, None) => {
            return Err(ConfigError::new(
                &path,
                "one of remote_jwks, local_jwks (or extensions.oidc_discovery) is required",
            ))
        }
        _ => {
            return Err(ConfigError::new(
                &path,
                "only one of remote_jwks, local_jwks, extensions.oidc_discovery may be set",
            ))
        }
    };

    let subjects = match &p.subjects {
        None => None,
        Some(s) => Some(StringMatcher::compile(s, &format!("{path}.subjects"))?),
    };

    let mut locations = Vec::new();
    for (i, h) in p.from_headers.iter().enumerate() {
        if !is_header_name(&h.name) {
            return Err(ConfigError::new(
                &format!("{path}.from_headers[{i}].name"),
                format!("invalid header name {:?}", truncate(&h.name)),
            ));
        }
        locations.push(TokenLocation::Header {
            name: h.name.to_ascii_lowercase(),
            value_prefix: h.value_prefix.clone(),
        });
    }
    for (i, q) in p.from_params.iter().enumerate() {
        if q.is_empty() {
            return Err(ConfigError::new(
                &format!("{path}.from_params[{i}]"),
                "must not be empty",
            ));
        }
        locations.push(TokenLocation::Param(q.clone()));
    }
    for (i, c) in p.from_cookies.iter().enumerate() {
        if c.is_empty()
            || !c
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'=' && b != b';')
        {
            return Err(ConfigError::new(
                &format!("{path}.from_cookies[{i}]"),
                format!("invalid cookie name {:?}", truncate(c)),
            ));
        }
        locations.push(TokenLocation::Cookie(c.clone()));
    }
    if locations.is_empty() {
        locations.push(TokenLocation::Header {
            name: "authorization".into(),
            value_prefix: "Bearer ".into(),
        });
        locations.push(TokenLocation::Param("access_token".into()));
    }

    let forward_payload_header = if p.forward_payload_header.is_empty() {
        None
    } else if is_header_name(&p.forward_payload_header) {
        Some(p.forward_payload_header.to_ascii_lowercase())
    } else {
        return Err(ConfigError::new(
            &format!("{path}.forward_payload_header"),
            format!(
                "invalid header name {:?}",
                truncate(&p.forward_payload_header)
            ),
        ));
    };

    let mut claim_to_headers = Vec::new();
    for (i, c) in p.claim_to_headers.iter().enumerate() {
        let cpath = format!("{path}.claim_to_headers[{i}]");
        if !is_header_name(&c.header_name) {
            return Err(ConfigError::new(
                &format!("{cpath}.header_name"),
                format!("invalid header name {:?}", truncate(&c.header_name)),
            ));
        }
        let format = claim_format(&c.claim_name, &c.extensions, &cpath)?;
        claim_to_headers.push(ClaimToHeader {
            header_name: c.header_name.to_ascii_lowercase(),
            claim_name: c.claim_name.clone(),
            format,
        });
    }
    let mut claim_to_filter_state = Vec::new();
    for (i, c) in ext.claim_to_filter_state.iter().enumerate() {
        let cpath = format!("{path}.extensions.claim_to_filter_state[{i}]");
        if c.name.is_empty()
            || !c
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err(ConfigError::new(
                &format!("{cpath}.name"),
                format!(
                    "invalid filter state name {:?} (letters, digits, '_', '.', '-')",
                    truncate(&c.name)
                ),
            ));
        }
        let format = claim_format(&c.claim_name, &c.extensions, &cpath)?;
        claim_to_filter_state.push(ClaimToHeader {
            header_name: c.name.clone(),
            claim_name: c.claim_name.clone(),
            format,
        });
    }

    let clock_skew_secs = match p.clock_skew_seconds {
        None | Some(0) => DEFAULT_CLOCK_SKEW_SECS,
        Some(n) => u64::from(n),
    };
    let max_lifetime = p.max_lifetime.map(|d| d.0);
    if let Some(d) = max_lifetime {
        if d.is_zero() {
            return Err(ConfigError::new(
                &format!("{path}.max_lifetime"),
                "must be greater than 0s",
            ));
        }
    }
    for (i, a) in p.audiences.iter().enumerate() {
        if a.is_empty() {
            return Err(ConfigError::new(
                &format!("{path}.audiences[{i}]"),
                "must not be empty",
            ));
        }
    }
    Ok(Provider {
        name: name.to_string(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        subjects,
        require_expiration: p.require_expiration,
        max_lifetime,
        keys,
        forward: p.forward,
        locations,
        forward_payload_header,
        pad_forward_payload_header: p.pad_forward_payload_header,
        claim_to_headers,
        clock_skew_secs,
        payload_in_metadata: (!p.payload_in_metadata.is_empty())
            .then(|| p.payload_in_metadata.clone()),
        claim_to_filter_state,
    })
}

/// Validates a claim path and its (extension) output format.
fn claim_format(
    claim_name: &str,
    ext: &RawClaimHeaderExtensions,
    cpath: &str,
) -> Result<ClaimFormat, ConfigError> {
    if claim_name.is_empty() || claim_name.split('.').any(str::is_empty) {
        return Err(ConfigError::new(
            &format!("{cpath}.claim_name"),
            format!("invalid claim name {:?}", truncate(claim_name)),
        ));
    }
    match ext.format.as_deref() {
        None | Some("envoy") => {
            if ext.separator.is_some() {
                return Err(ConfigError::new(
                    &format!("{cpath}.extensions.separator"),
                    "only applies to format \"join\"",
                ));
            }
            Ok(ClaimFormat::Envoy)
        }
        Some("join") => {
            let sep = ext.separator.clone().unwrap_or_else(|| ",".into());
            if sep.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) || sep.len() > 8 {
                return Err(ConfigError::new(
                    &format!("{cpath}.extensions.separator"),
                    "must be at most 8 characters without CR, LF or NUL",
                ));
            }
            Ok(ClaimFormat::Join(sep))
        }
        Some(other) => Err(ConfigError::new(
            &format!("{cpath}.extensions.format"),
            format!(
                "unknown format {:?} (expected \"envoy\" or \"join\")",
                truncate(other)
            ),
        )),
    }
}

fn nonzero_or(d: Option<duration::ProtoDuration>, default: Duration) -> Duration {
    match d {
        Some(d) if !d.0.is_zero() => d.0,
        _ => default,
    }
}

fn local_jwks_text(ds: &RawDataSource, path: &str) -> Result<String, ConfigError> {
    if ds.filename.is_some() {
        return Err(ConfigError::new(
            &format!("{path}.filename"),
            "not supported in a wasm filter (it has no file system access); use inline_string",
        ));
    }
    if ds.environment_variable.is_some() {
        return Err(ConfigError::new(
            &format!("{path}.environment_variable"),
            "not supported in a wasm filter; use inline_string",
        ));
    }
    match (&ds.inline_string, &ds.inline_bytes) {
        (Some(s), None) => Ok(s.clone()),
        (None, Some(b)) => {
            let bytes = decode_std_base64(b).ok_or_else(|| {
                ConfigError::new(&format!("{path}.inline_bytes"), "invalid base64")
            })?;
            String::from_utf8(bytes)
                .map_err(|_| ConfigError::new(&format!("{path}.inline_bytes"), "not UTF-8"))
        }
        (None, None) => Err(ConfigError::new(path, "inline_string is required")),
        _ => Err(ConfigError::new(
            path,
            "only one of inline_string, inline_bytes may be set",
        )),
    }
}

/// proto3-JSON `bytes` are standard base64 (padding optional); URL-safe is also allowed.
fn decode_std_base64(s: &str) -> Option<Vec<u8>> {
    let t: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    crate::b64::decode_strict(&t).ok()
}

fn compile_remote(
    r: &RawRemoteJwks,
    path: &str,
    ext: &RawProviderExtensions,
    min_rsa_bits: usize,
    max_jwks_bytes: usize,
) -> Result<RemoteJwks, ConfigError> {
    let hu = r
        .http_uri
        .as_ref()
        .ok_or_else(|| ConfigError::new(&format!("{path}.http_uri"), "is required"))?;
    let hpath = format!("{path}.http_uri");
    if hu.uri.is_empty() {
        return Err(ConfigError::new(&format!("{hpath}.uri"), "is required"));
    }
    let target = HttpTarget::parse(&hu.uri, &format!("{hpath}.uri"))?;
    if hu.cluster.is_empty() {
        return Err(ConfigError::new(&format!("{hpath}.cluster"), "is required"));
    }
    let timeout = hu
        .timeout
        .ok_or_else(|| ConfigError::new(&format!("{hpath}.timeout"), "is required"))?
        .0;
    if timeout.is_zero() {
        return Err(ConfigError::new(
            &format!("{hpath}.timeout"),
            "must be greater than 0s",
        ));
    }
    let cache_duration = nonzero_or(r.cache_duration, DEFAULT_CACHE_DURATION);
    let af = r.async_fetch.as_ref();
    let failed_refetch = nonzero_or(
        af.and_then(|a| a.failed_refetch_duration),
        DEFAULT_FAILED_REFETCH,
    );
    let rp = r.retry_policy.as_ref();
    let num_retries = rp
        .and_then(|p| p.num_retries)
        .unwrap_or(if rp.is_some() { 1 } else { 0 });
    if num_retries > 10 {
        return Err(ConfigError::new(
            &format!("{path}.retry_policy.num_retries"),
            format!("must be at most 10 (got {num_retries})"),
        ));
    }
    let bo = rp.and_then(|p| p.retry_back_off.as_ref());
    let retry_base = nonzero_or(bo.and_then(|b| b.base_interval), DEFAULT_RETRY_BASE);
    let retry_max = match bo.and_then(|b| b.max_interval) {
        Some(m) if !m.0.is_zero() => m.0,
        _ => retry_base * 10,
    };
    if retry_max < retry_base {
        return Err(ConfigError::new(
            &format!("{path}.retry_policy.retry_back_off.max_interval"),
            "must not be less than base_interval",
        ));
    }
    Ok(RemoteJwks {
        cache_duration,
        failed_refetch,
        num_retries,
        retry_base,
        retry_max,
        ..remote_base(
            RemoteTarget::Jwks(target),
            &hu.cluster,
            timeout,
            ext,
            min_rsa_bits,
            max_jwks_bytes,
        )
    })
}

/// Settings every remote provider has (`remote_jwks` or the discovery
/// extension), with jwt_authn's defaults where the config says nothing.
fn remote_base(
    target: RemoteTarget,
    cluster: &str,
    timeout: Duration,
    ext: &RawProviderExtensions,
    min_rsa_bits: usize,
    max_jwks_bytes: usize,
) -> RemoteJwks {
    RemoteJwks {
        target,
        cluster: cluster.to_string(),
        timeout,
        cache_duration: DEFAULT_CACHE_DURATION,
        failed_refetch: DEFAULT_FAILED_REFETCH,
        num_retries: 0,
        retry_base: DEFAULT_RETRY_BASE,
        retry_max: DEFAULT_RETRY_MAX,
        stale_if_error: ext
            .stale_if_error
            .map(|d| d.0)
            .unwrap_or(DEFAULT_STALE_IF_ERROR),
        unknown_kid_refetch_interval: ext
            .unknown_kid_refetch_interval
            .map(|d| d.0)
            .unwrap_or(DEFAULT_UNKNOWN_KID_REFETCH),
        max_jwks_bytes,
        jwks_options: JwksOptions {
            min_rsa_bits,
            allow_hmac: false,
            max_bytes: max_jwks_bytes,
            ..JwksOptions::default()
        },
    }
}

fn compile_route(m: &RawRouteMatch, path: &str) -> Result<RouteMatch, ConfigError> {
    let mut specs = Vec::new();
    if let Some(p) = &m.prefix {
        specs.push(PathMatch::Prefix(p.clone()));
    }
    if let Some(p) = &m.path {
        specs.push(PathMatch::Exact(p.clone()));
    }
    if let Some(r) = &m.safe_regex {
        specs.push(PathMatch::Regex(compile_regex(
            r,
            &format!("{path}.safe_regex"),
        )?));
    }
    if let Some(p) = &m.path_separated_prefix {
        if !p.starts_with('/') || (p.len() > 1 && p.ends_with('/')) || p.contains(['?', '#']) {
            return Err(ConfigError::new(
                &format!("{path}.path_separated_prefix"),
                "must start with '/', not end with '/', and hold no '?' or '#'",
            ));
        }
        specs.push(PathMatch::SeparatedPrefix(p.clone()));
    }
    let spec = match specs.len() {
        1 => specs.remove(0),
        0 => {
            return Err(ConfigError::new(
                path,
                "one of prefix, path, safe_regex, path_separated_prefix is required",
            ))
        }
        _ => {
            return Err(ConfigError::new(
                path,
                "only one of prefix, path, safe_regex, path_separated_prefix may be set",
            ))
        }
    };
    let mut headers = Vec::new();
    for (i, h) in m.headers.iter().enumerate() {
        headers.push(compile_header_match(h, &format!("{path}.headers[{i}]"))?);
    }
    let mut query_parameters = Vec::new();
    for (i, q) in m.query_parameters.iter().enumerate() {
        let qpath = format!("{path}.query_parameters[{i}]");
        if q.name.is_empty() {
            return Err(ConfigError::new(&format!("{qpath}.name"), "is required"));
        }
        let matcher = match (&q.string_match, q.present_match) {
            (Some(s), None) => Some(StringMatcher::compile(s, &format!("{qpath}.string_match"))?),
            (None, _) => None,
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    &qpath,
                    "only one of string_match, present_match may be set",
                ))
            }
        };
        query_parameters.push(QueryMatch {
            name: q.name.clone(),
            matcher,
        });
    }
    Ok(RouteMatch {
        path: spec,
        case_sensitive: m.case_sensitive.unwrap_or(true),
        headers,
        query_parameters,
    })
}

fn compile_header_match(h: &RawHeaderMatcher, path: &str) -> Result<HeaderMatch, ConfigError> {
    if !is_header_name(h.name.trim_start_matches(':')) {
        return Err(ConfigError::new(
            &format!("{path}.name"),
            format!("invalid header name {:?}", truncate(&h.name)),
        ));
    }
    let mut kinds: Vec<(Option<StringMatcher>, bool)> = Vec::new();
    // The deprecated shorthands of HeaderMatcher, each one StringMatcher kind.
    type Make = fn(String, bool) -> StringMatcher;
    let shorthands: [(&Option<String>, Make); 4] = [
        (&h.exact_match, StringMatcher::Exact),
        (&h.prefix_match, StringMatcher::Prefix),
        (&h.suffix_match, StringMatcher::Suffix),
        (&h.contains_match, StringMatcher::Contains),
    ];
    for (value, make) in shorthands {
        if let Some(v) = value {
            kinds.push((Some(make(v.clone(), false)), true));
        }
    }
    if let Some(r) = &h.safe_regex_match {
        kinds.push((
            Some(StringMatcher::Regex(compile_regex(
                r,
                &format!("{path}.safe_regex_match"),
            )?)),
            true,
        ));
    }
    if let Some(s) = &h.string_match {
        kinds.push((
            Some(StringMatcher::compile(s, &format!("{path}.string_match"))?),
            true,
        ));
    }
    if let Some(p) = h.present_match {
        kinds.push((None, p));
    }
    let (matcher, present) = match kinds.len() {
        0 => (None, true),
        1 => kinds.remove(0),
        _ => return Err(ConfigError::new(path, "only one match kind may be set")),
    };
    Ok(HeaderMatch {
        name: h.name.to_ascii_lowercase(),
        matcher,
        present,
        invert: h.invert_match,
        treat_missing_as_empty: h.treat_missing_header_as_empty,
    })
}

fn compile_requirement(
    r: &RawRequirement,
    path: &str,
    names: &BTreeMap<&str, ProviderId>,
    all: &[ProviderId],
    top: bool,
) -> Result<Requirement, ConfigError> {
    let set = [
        r.provider_name.is_some(),
        r.provider_and_audiences.is_some(),
        r.requires_any.is_some(),
        r.requires_all.is_some(),
        r.allow_missing_or_failed.is_some(),
        r.allow_missing.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set > 1 {
        return Err(ConfigError::new(path, "only one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed may be set"));
    }
    let lookup = |name: &str, p: &str| -> Result<ProviderId, ConfigError> {
        names
            .get(name)
            .copied()
            .ok_or_else(|| ConfigError::new(p, format!("unknown provider {:?}", truncate(name))))
    };
    if let Some(n) = &r.provider_name {
        return Ok(Requirement::Provider {
            id: lookup(n, &format!("{path}.provider_name"))?,
            audiences: None,
        });
    }
    if let Some(pa) = &r.provider_and_audiences {
        let id = lookup(
            &pa.provider_name,
            &format!("{path}.provider_and_audiences.provider_name"),
        )?;
        return Ok(Requirement::Provider {
            id,
            audiences: Some(pa.audiences.clone()),
        });
    }
    if let Some(list) = &r.requires_all {
        let lpath = format!("{path}.requires_all.requirements");
        if list.requirements.len() < 2 {
            return Err(ConfigError::new(&lpath, "needs at least 2 requirements"));
        }
        let mut children = Vec::new();
        for (i, c) in list.requirements.iter().enumerate() {
            children.push(compile_requirement(
                c,
                &format!("{lpath}[{i}]"),
                names,
                all,
                false,
            )?);
        }
        return Ok(Requirement::All(children));
    }
    if let Some(list) = &r.requires_any {
        let lpath = format!("{path}.requires_any.requirements");
        if list.requirements.len() < 2 {
            return Err(ConfigError::new(&lpath, "needs at least 2 requirements"));
        }
        let mut children = Vec::new();
        let mut used = Vec::new();
        let mut bypass: Option<Bypass> = None;
        for (i, c) in list.requirements.iter().enumerate() {
            let compiled = compile_requirement(c, &format!("{lpath}[{i}]"), names, all, false)?;
            match compiled {
                Requirement::Bypass(kind, _) => {
                    // As jwt_authn: keep one; allow_missing_or_failed wins over allow_missing.
                    if bypass != Some(Bypass::AllowMissingOrFailed) {
                        bypass = Some(kind);
                    }
                }
                other => {
                    if let Requirement::Provider { id, .. } = &other {
                        used.push(*id);
                    }
                    children.push(other);
                }
            }
        }
        return Ok(Requirement::Any {
            children,
            bypass: bypass.map(|b| (b, used)),
        });
    }
    let _ = top;
    if r.allow_missing_or_failed.is_some() {
        return Ok(Requirement::Bypass(
            Bypass::AllowMissingOrFailed,
            all.to_vec(),
        ));
    }
    if r.allow_missing.is_some() {
        return Ok(Requirement::Bypass(Bypass::AllowMissing, all.to_vec()));
    }
    Ok(Requirement::AllowAll)
}

#[cfg(test)]
mod tests;
