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
use std::collections::BTreeMap;

/// A token found in a request, with the providers whose locations it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The raw token text (not yet size-checked or decoded).
    pub token: String,
    /// The location it came from (used to remove it on success).
    pub location: TokenLocation,
    /// Providers that configured this location (for the issuer check).
    pub providers: Vec<ProviderId>,
}

/// base64url alphabet plus '.', as jwt_authn scans for the token start.
fn is_jwt_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// Location key → providers, ordered as jwt_authn iterates them.
struct Locations {
    headers: BTreeMap<(String, String), Vec<ProviderId>>,
    params: BTreeMap<String, Vec<ProviderId>>,
    cookies: BTreeMap<String, Vec<ProviderId>>,
}

fn collect(providers: &[(ProviderId, &Provider)]) -> Locations {
    let mut l = Locations {
        headers: BTreeMap::new(),
        params: BTreeMap::new(),
        cookies: BTreeMap::new(),
    };
    for (id, p) in providers {
        for loc in &p.locations {
            let slot = match loc {
                TokenLocation::Header { name, value_prefix } => {
                    // jwt_authn keys header locations by name + prefix concatenated.
                    l.headers
                        .entry((format!("{name}{value_prefix}"), name.clone()))
                        .or_default()
                }
                TokenLocation::Param(n) => l.params.entry(n.clone()).or_default(),
                TokenLocation::Cookie(n) => l.cookies.entry(n.clone()).or_default(),
            };
            if !slot.contains(id) {
                slot.push(*id);
            }
        }
    }
    l
}

/// Extracts every token the given providers' locations find, in jwt_authn's order.
pub fn extract(req: &Request, providers: &[(ProviderId, &Provider)]) -> Vec<Extracted> {
    let l = collect(providers);
    let mut out = Vec::new();
    for ((key, name), ids) in &l.headers {
        let prefix = &key[name.len()..];
        for value in req.header_all(name) {
            let token = if prefix.is_empty() {
                value.to_string()
            } else {
                let Some(pos) = value.find(prefix) else {
                    continue;
                };
                let after = &value[pos + prefix.len()..];
                match after.find(is_jwt_char) {
                    Some(start) => after[start..].to_string(),
                    // As jwt_authn: nothing token-like after the prefix → the whole value.
                    None => value.to_string(),
                }
            };
            out.push(Extracted {
                token,
                location: TokenLocation::Header {
                    name: name.clone(),
                    value_prefix: prefix.to_string(),
                },
                providers: ids.clone(),
            });
        }
    }
    for (name, ids) in &l.params {
        if let Some(v) = req.query_param(name) {
            out.push(Extracted {
                token: v,
                location: TokenLocation::Param(name.clone()),
                providers: ids.clone(),
            });
        }
    }
    for (name, ids) in &l.cookies {
        if let Some(v) = req.cookie(name) {
            out.push(Extracted {
                token: v,
                location: TokenLocation::Cookie(name.clone()),
                providers: ids.clone(),
            });
        }
    }
    out
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
