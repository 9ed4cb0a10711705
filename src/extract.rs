//! Where tokens come from, with jwt_authn's exact extraction rules.
//!
//! Mirrors Envoy's `extractor.cc`: header locations first (ordered by header
//! name + prefix), then query parameters (by name), then cookies (by name);
//! every instance of a repeated header yields a token; a `value_prefix` is
//! searched anywhere in the value and the token starts at the next base64url
//! character. Keeping the same order matters: tokens are verified last-first
//! and the first failure decides the reported reason, as in jwt_authn.

use crate::config::{Provider, ProviderId, TokenLocation};
use crate::request::Request;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A token found in a request, with the providers whose locations it sits in.
/// Borrowed from the request and the plan where it can be (a header token is
/// never copied); a decoded query parameter or cookie is owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted<'a> {
    /// The raw token text (not yet size-checked or decoded).
    pub token: Cow<'a, str>,
    /// The location it came from (used to remove it on success).
    pub location: Cow<'a, TokenLocation>,
    /// Providers that configured this location (for the issuer check).
    pub providers: Cow<'a, [ProviderId]>,
}

impl Extracted<'_> {
    /// The same, owning everything.
    pub fn into_owned(self) -> Extracted<'static> {
        Extracted {
            token: Cow::Owned(self.token.into_owned()),
            location: Cow::Owned(self.location.into_owned()),
            providers: Cow::Owned(self.providers.into_owned()),
        }
    }
}

/// base64url alphabet plus '.', as jwt_authn scans for the token start.
fn is_jwt_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// Where a set of providers looks for tokens, in jwt_authn's order (header
/// locations sorted by name + prefix, then query parameters, then cookies).
/// Built once per provider at configuration time, so extraction on the
/// request path only reads headers.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// (header name, value prefix, providers, the location they make).
    headers: Vec<(String, String, Vec<ProviderId>, TokenLocation)>,
    /// (name, providers, location), likewise.
    params: Vec<(String, Vec<ProviderId>, TokenLocation)>,
    cookies: Vec<(String, Vec<ProviderId>, TokenLocation)>,
}

/// The plan for these providers' locations.
pub fn plan(providers: &[(ProviderId, &Provider)]) -> Plan {
    let mut headers: BTreeMap<(String, String), Vec<ProviderId>> = BTreeMap::new();
    let mut params: BTreeMap<String, Vec<ProviderId>> = BTreeMap::new();
    let mut cookies: BTreeMap<String, Vec<ProviderId>> = BTreeMap::new();
    for (id, p) in providers {
        for loc in &p.locations {
            let slot = match loc {
                TokenLocation::Header { name, value_prefix } => {
                    // jwt_authn keys header locations by name + prefix concatenated.
                    headers
                        .entry((format!("{name}{value_prefix}"), name.clone()))
                        .or_default()
                }
                TokenLocation::Param(n) => params.entry(n.clone()).or_default(),
                TokenLocation::Cookie(n) => cookies.entry(n.clone()).or_default(),
            };
            if !slot.contains(id) {
                slot.push(*id);
            }
        }
    }
    Plan {
        headers: headers
            .into_iter()
            .map(|((key, name), ids)| {
                let prefix = key.get(name.len()..).unwrap_or("").to_string();
                let location = TokenLocation::Header {
                    name: name.clone(),
                    value_prefix: prefix.clone(),
                };
                (name, prefix, ids, location)
            })
            .collect(),
        params: params
            .into_iter()
            .map(|(n, ids)| (n.clone(), ids, TokenLocation::Param(n)))
            .collect(),
        cookies: cookies
            .into_iter()
            .map(|(n, ids)| (n.clone(), ids, TokenLocation::Cookie(n)))
            .collect(),
    }
}

/// Extracts every token the given providers' locations find, in jwt_authn's order.
pub fn extract(req: &Request, providers: &[(ProviderId, &Provider)]) -> Vec<Extracted<'static>> {
    extract_with(req, &plan(providers))
        .into_iter()
        .map(Extracted::into_owned)
        .collect()
}

/// The token in one header value for a location's `value_prefix`: the whole
/// value without a prefix; else the text from the first base64url character
/// after the prefix (the whole value when nothing token-like follows it);
/// `None` when the prefix is not in the value.
fn header_token<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(value);
    }
    // The prefix almost always starts the value: skip the substring search.
    let pos = if value.starts_with(prefix) {
        0
    } else {
        value.find(prefix)?
    };
    let after = value.get(pos + prefix.len()..).unwrap_or("");
    Some(match after.find(is_jwt_char) {
        Some(start) => after.get(start..).unwrap_or(after),
        // As jwt_authn: nothing token-like after the prefix → the whole value.
        None => value,
    })
}

/// Extracts every token a prepared plan finds.
pub fn extract_with<'a>(req: &'a Request, plan: &'a Plan) -> Vec<Extracted<'a>> {
    let mut out = Vec::new();
    for (name, prefix, ids, location) in &plan.headers {
        for value in req.header_all(name) {
            let Some(token) = header_token(value, prefix) else {
                continue;
            };
            out.push(Extracted {
                token: Cow::Borrowed(token),
                location: Cow::Borrowed(location),
                providers: Cow::Borrowed(ids),
            });
        }
    }
    for (name, ids, location) in &plan.params {
        if let Some(v) = req.query_param(name) {
            out.push(Extracted {
                token: Cow::Owned(v),
                location: Cow::Borrowed(location),
                providers: Cow::Borrowed(ids),
            });
        }
    }
    for (name, ids, location) in &plan.cookies {
        if let Some(v) = req.cookie(name) {
            out.push(Extracted {
                token: Cow::Owned(v),
                location: Cow::Borrowed(location),
                providers: Cow::Borrowed(ids),
            });
        }
    }
    out
}

/// The request's only token, when it sits in a header: borrowed from the
/// request, with the index of its header location in the plan. `None` when
/// the plan's locations hold no token or more than one, or the token is in a
/// query parameter or cookie (taking it out of those rewrites the request).
/// Sees exactly what [`extract_with`] finds, so an outcome remembered for this
/// (token, location) stands for what a full evaluation would see.
pub fn sole_header_token<'r>(req: &'r Request, plan: &Plan) -> Option<(&'r str, usize)> {
    if req.query().is_some()
        && plan
            .params
            .iter()
            .any(|(n, ..)| req.query_param(n).is_some())
    {
        return None;
    }
    if !plan.cookies.is_empty() && plan.cookies.iter().any(|(n, ..)| req.cookie(n).is_some()) {
        return None;
    }
    let mut found = None;
    for (i, (name, prefix, ..)) in plan.headers.iter().enumerate() {
        for value in req.header_all(name) {
            if let Some(token) = header_token(value, prefix) {
                if found.is_some() {
                    return None;
                }
                found = Some((token, i));
            }
        }
    }
    found
}

/// Removes query parameter `name` from a `:path`, keeping everything else byte for byte.
pub fn path_without_param(path: &str, name: &str) -> String {
    let (base, rest) = match path.split_once('?') {
        Some(x) => x,
        None => return path.to_string(),
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map(|(k, _)| k).unwrap_or(pair);
            !param_key_is(k, name)
        })
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Compares a raw (percent-encoded) key with a decoded name, as the extractor would.
fn param_key_is(raw_key: &str, name: &str) -> bool {
    crate::request::percent_decode(raw_key) == name
}

#[cfg(test)]
mod tests;
