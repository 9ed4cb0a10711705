//! The JSON shape of the plugin configuration, field for field.
//!
//! These structs mirror `envoy.extensions.filters.http.jwt_authn.v3` in
//! proto3-JSON form (snake_case names) so an existing jwt_authn config loads
//! unchanged. `deny_unknown_fields` everywhere: a typo must fail at load, not
//! silently disable a check. Our own additions live only under fields named
//! `extensions`. Semantic checks happen in `config::compile`.
//!
//! Some jwt_authn fields are accepted so configs load, but have no effect in a
//! wasm filter (e.g. `clear_route_cache`, `header_in_metadata`); the README lists
//! them. Hence fields that are never read.
#![allow(dead_code)]

use super::duration::ProtoDuration;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub bypass_cors_preflight: bool,
    #[serde(default)]
    pub stat_prefix: Option<String>,
    #[serde(default)]
    pub extensions: RawGlobalExtensions,
}

/// Extension (not in jwt_authn): settings for the whole filter.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobalExtensions {
    pub max_token_bytes: Option<u32>,
    #[serde(default)]
    pub strip_headers: Vec<String>,
    #[serde(default)]
    pub strip_header_prefixes: Vec<String>,
    pub signature_backend: Option<String>,
    pub shared_token_cache_size: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub subjects: Option<RawStringMatcher>,
    #[serde(default)]
    pub require_expiration: bool,
    pub max_lifetime: Option<ProtoDuration>,
    pub remote_jwks: Option<RawRemoteJwks>,
    pub local_jwks: Option<RawDataSource>,
    #[serde(default)]
    pub forward: bool,
    #[serde(default)]
    pub from_headers: Vec<RawJwtHeader>,
    #[serde(default)]
    pub from_params: Vec<String>,
    #[serde(default)]
    pub from_cookies: Vec<String>,
    #[serde(default)]
    pub forward_payload_header: String,
    #[serde(default)]
    pub pad_forward_payload_header: bool,
    #[serde(default)]
    pub payload_in_metadata: String,
    #[serde(default)]
    pub header_in_metadata: String,
    #[serde(default)]
    pub failed_status_in_metadata: String,
    #[serde(default)]
    pub normalize_payload_in_metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub clock_skew_seconds: Option<u32>,
    #[serde(default)]
    pub jwt_cache_config: Option<RawJwtCacheConfig>,
    #[serde(default)]
    pub claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default)]
    pub clear_route_cache: bool,
    #[serde(default)]
    pub extensions: RawProviderExtensions,
}

/// Extension (not in jwt_authn): per-provider settings.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProviderExtensions {
    /// Serve last good remote keys this long after refreshes start failing.
    pub stale_if_error: Option<ProtoDuration>,
    /// Minimum spacing of refetches triggered by an unknown `kid`.
    pub unknown_kid_refetch_interval: Option<ProtoDuration>,
    /// JWKS bodies above this are a fetch failure.
    pub max_jwks_bytes: Option<u32>,
    /// RSA keys shorter than this are skipped.
    pub min_rsa_bits: Option<u32>,
    /// Find the JWKS through `<issuer>/.well-known/openid-configuration`.
    pub oidc_discovery: Option<RawOidcDiscovery>,
    /// Claims published as filter state (`wasm.<name>`) for RBAC and access logs.
    #[serde(default)]
    pub claim_to_filter_state: Vec<RawClaimToFilterState>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaimToFilterState {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub claim_name: String,
    #[serde(default)]
    pub extensions: RawClaimHeaderExtensions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidcDiscovery {
    pub cluster: String,
    pub timeout: Option<ProtoDuration>,
    #[serde(default)]
    pub uri: Option<String>,
    pub cache_duration: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwtCacheConfig {
    #[serde(default)]
    pub jwt_cache_size: u32,
    #[serde(default)]
    pub jwt_max_token_size: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwtHeader {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value_prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaimToHeader {
    #[serde(default)]
    pub header_name: String,
    #[serde(default)]
    pub claim_name: String,
    #[serde(default)]
    pub extensions: RawClaimHeaderExtensions,
}

/// Extension: how a claim is written into its header.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaimHeaderExtensions {
    /// "envoy" (default, jwt_authn's encoding) or "join".
    pub format: Option<String>,
    /// Separator for "join" (default ",").
    pub separator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDataSource {
    pub inline_string: Option<String>,
    pub inline_bytes: Option<String>,
    pub filename: Option<String>,
    pub environment_variable: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoteJwks {
    pub http_uri: Option<RawHttpUri>,
    pub cache_duration: Option<ProtoDuration>,
    pub async_fetch: Option<RawAsyncFetch>,
    pub retry_policy: Option<RawRetryPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpUri {
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub cluster: String,
    pub timeout: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAsyncFetch {
    #[serde(default)]
    pub fast_listener: bool,
    pub failed_refetch_duration: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetryPolicy {
    pub retry_back_off: Option<RawBackoff>,
    pub num_retries: Option<u32>,
    #[serde(default)]
    pub retry_on: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackoff {
    pub base_interval: Option<ProtoDuration>,
    pub max_interval: Option<ProtoDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(rename = "match")]
    pub route_match: Option<RawRouteMatch>,
    pub requires: Option<RawRequirement>,
    #[serde(default)]
    pub requirement_name: Option<String>,
    #[serde(default)]
    pub extensions: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteMatch {
    pub prefix: Option<String>,
    pub path: Option<String>,
    pub safe_regex: Option<RawRegexMatcher>,
    pub path_separated_prefix: Option<String>,
    pub case_sensitive: Option<bool>,
    #[serde(default)]
    pub headers: Vec<RawHeaderMatcher>,
    #[serde(default)]
    pub query_parameters: Vec<RawQueryParameterMatcher>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegexMatcher {
    #[serde(default)]
    pub regex: String,
    #[serde(default)]
    pub google_re2: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStringMatcher {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub contains: Option<String>,
    pub safe_regex: Option<RawRegexMatcher>,
    #[serde(default)]
    pub ignore_case: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaderMatcher {
    #[serde(default)]
    pub name: String,
    pub exact_match: Option<String>,
    pub prefix_match: Option<String>,
    pub suffix_match: Option<String>,
    pub contains_match: Option<String>,
    pub safe_regex_match: Option<RawRegexMatcher>,
    pub present_match: Option<bool>,
    pub string_match: Option<RawStringMatcher>,
    #[serde(default)]
    pub invert_match: bool,
    #[serde(default)]
    pub treat_missing_header_as_empty: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueryParameterMatcher {
    #[serde(default)]
    pub name: String,
    pub string_match: Option<RawStringMatcher>,
    pub present_match: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequirement {
    pub provider_name: Option<String>,
    pub provider_and_audiences: Option<RawProviderAndAudiences>,
    pub requires_any: Option<RawRequirementList>,
    pub requires_all: Option<RawRequirementList>,
    pub allow_missing_or_failed: Option<RawEmpty>,
    pub allow_missing: Option<RawEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProviderAndAudiences {
    #[serde(default)]
    pub provider_name: String,
    #[serde(default)]
    pub audiences: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequirementList {
    #[serde(default)]
    pub requirements: Vec<RawRequirement>,
}

/// `google.protobuf.Empty`: only `{}` is accepted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEmpty {}
