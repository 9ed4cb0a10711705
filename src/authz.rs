//! Extension: claim-based authorization on a rule (`rules[i].extensions.authorize`).
//!
//! jwt_authn stops at "the token is valid"; users also need "only tokens with
//! `payments:write` may POST here". A rule may require scopes (all-of and
//! any-of), roles from a configurable claim path, and exact claim values. A
//! verified token that fails them gets 403 `insufficient_scope` (RFC 6750
//! section 3.1). Checks run against the token that satisfied the requirement.

use crate::claims::Claims;
use crate::config::ConfigError;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleExtensions {
    authorize: Option<RawAuthorize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorize {
    #[serde(default)]
    scopes_all: Vec<String>,
    #[serde(default)]
    scopes_any: Vec<String>,
    scope_claim: Option<String>,
    #[serde(default)]
    roles_any: Vec<String>,
    #[serde(default)]
    roles_all: Vec<String>,
    role_claim: Option<String>,
    #[serde(default)]
    claims: serde_json::Map<String, Value>,
}

/// Compiled claim requirements of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    /// Every one of these scopes.
    pub scopes_all: Vec<String>,
    /// At least one of these scopes (if non-empty).
    pub scopes_any: Vec<String>,
    /// Where scopes live; `None` = `scope` then `scp`.
    pub scope_claim: Option<String>,
    /// At least one of these roles (if non-empty).
    pub roles_any: Vec<String>,
    /// Every one of these roles.
    pub roles_all: Vec<String>,
    /// Dotted path of the role claim (default `role`).
    pub role_claim: String,
    /// Exact values (string/number/bool); membership when the claim is an array.
    pub claims: Vec<(String, Value)>,
}

/// A failed authorization: which scopes were missing (for the `scope=` hint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// Scopes the rule wanted and the token lacked (empty when roles/claims failed).
    pub missing_scopes: Vec<String>,
}

impl Authorization {
    /// Reads `rules[i].extensions`; `Ok(None)` when it asks for nothing.
    pub fn from_json(v: &Value, path: &str) -> Result<Option<Authorization>, ConfigError> {
        let raw: RawRuleExtensions = serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            let inner = e.path().to_string();
            let p = if inner == "." {
                path.to_string()
            } else {
                format!("{path}.{inner}")
            };
            ConfigError::new(&p, e.inner().to_string())
        })?;
        let Some(a) = raw.authorize else {
            return Ok(None);
        };
        let apath = format!("{path}.authorize");
        for (field, list) in [("scopes_all", &a.scopes_all), ("scopes_any", &a.scopes_any)] {
            if let Some(i) = list.iter().position(|s| {
                s.is_empty() || s.contains(' ') || s.contains('"') || s.contains('\\')
            }) {
                return Err(ConfigError::new(
                    &format!("{apath}.{field}[{i}]"),
                    "a scope must be non-empty, without spaces, quotes or backslashes",
                ));
            }
        }
        for (field, list) in [("roles_any", &a.roles_any), ("roles_all", &a.roles_all)] {
            if let Some(i) = list.iter().position(String::is_empty) {
                return Err(ConfigError::new(
                    &format!("{apath}.{field}[{i}]"),
                    "must not be empty",
                ));
            }
        }
        for (field, c) in [
            ("scope_claim", &a.scope_claim),
            ("role_claim", &a.role_claim),
        ] {
            if let Some(c) = c {
                if c.is_empty() || c.split('.').any(str::is_empty) {
                    return Err(ConfigError::new(
                        &format!("{apath}.{field}"),
                        format!("invalid claim name {c:?}"),
                    ));
                }
            }
        }
        let mut claims = Vec::new();
        for (k, v) in &a.claims {
            if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                return Err(ConfigError::new(
                    &format!("{apath}.claims.{k}"),
                    "must be a string, number or boolean",
                ));
            }
            claims.push((k.clone(), v.clone()));
        }
        Ok(Some(Authorization {
            scopes_all: a.scopes_all,
            scopes_any: a.scopes_any,
            scope_claim: a.scope_claim,
            roles_any: a.roles_any,
            roles_all: a.roles_all,
            role_claim: a.role_claim.unwrap_or_else(|| "role".into()),
            claims,
        }))
    }

    /// Checks a verified token's claims.
    pub fn check(&self, claims: &Claims) -> Result<(), Denied> {
        let scopes = self.token_scopes(claims);
        let mut missing: Vec<String> = self
            .scopes_all
            .iter()
            .filter(|s| !scopes.contains(s))
            .cloned()
            .collect();
        if !self.scopes_any.is_empty() && !self.scopes_any.iter().any(|s| scopes.contains(s)) {
            missing.extend(self.scopes_any.iter().cloned());
        }
        if !missing.is_empty() {
            return Err(Denied {
                missing_scopes: missing,
            });
        }
        let roles = strings_of(claims.get_path(&self.role_claim));
        let roles_ok = (self.roles_any.is_empty()
            || self.roles_any.iter().any(|r| roles.contains(r)))
            && self.roles_all.iter().all(|r| roles.contains(r));
        let claims_ok = self
            .claims
            .iter()
            .all(|(k, want)| match claims.get_path(k) {
                Some(Value::Array(items)) => items.contains(want),
                Some(v) => v == want,
                None => false,
            });
        if roles_ok && claims_ok {
            Ok(())
        } else {
            Err(Denied {
                missing_scopes: Vec::new(),
            })
        }
    }

    /// Scopes a token carries: a space-delimited string or an array of strings.
    fn token_scopes(&self, claims: &Claims) -> Vec<String> {
        let v = match &self.scope_claim {
            Some(c) => claims.get_path(c),
            None => claims.get_path("scope").or_else(|| claims.get_path("scp")),
        };
        match v {
            Some(Value::String(s)) => s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
            other => strings_of(other),
        }
    }
}

/// A string claim as a one-element list, an array's string members, else nothing.
fn strings_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn authz(v: Value) -> Authorization {
        Authorization::from_json(&json!({ "authorize": v }), "rules[0].extensions")
            .unwrap()
            .unwrap()
    }
    fn claims(v: Value) -> Claims {
        Claims::from_value(v).unwrap()
    }

    #[test]
    fn scopes_string_or_array() {
        let a = authz(json!({"scopes_all": ["payments:write"]}));
        assert!(a
            .check(&claims(json!({"scope": "read payments:write"})))
            .is_ok());
        assert!(a.check(&claims(json!({"scp": ["payments:write"]}))).is_ok());
        assert_eq!(
            a.check(&claims(json!({"scope": "read"}))),
            Err(Denied {
                missing_scopes: vec!["payments:write".into()]
            })
        );
        assert!(a.check(&claims(json!({}))).is_err(), "missing scope claim");
        let any = authz(json!({"scopes_any": ["a", "b"], "scope_claim": "perms"}));
        assert!(any.check(&claims(json!({"perms": "x b"}))).is_ok());
        assert!(
            any.check(&claims(json!({"scope": "a"}))).is_err(),
            "custom scope claim only"
        );
    }

    #[test]
    fn roles_from_nested_paths() {
        let a = authz(json!({"roles_any": ["admin"], "role_claim": "realm_access.roles"}));
        assert!(a
            .check(&claims(
                json!({"realm_access": {"roles": ["user", "admin"]}})
            ))
            .is_ok());
        assert!(a
            .check(&claims(json!({"realm_access": {"roles": "admin"}})))
            .is_ok());
        assert!(a
            .check(&claims(json!({"realm_access": {"roles": ["user"]}})))
            .is_err());
        assert!(a.check(&claims(json!({"role": "admin"}))).is_err());
    }

    #[test]
    fn exact_claims_and_membership() {
        let a = authz(json!({"claims": {"tenant": "acme", "email_verified": true, "level": 3}}));
        assert!(a
            .check(&claims(
                json!({"tenant": "acme", "email_verified": true, "level": 3})
            ))
            .is_ok());
        assert!(a
            .check(&claims(
                json!({"tenant": ["x", "acme"], "email_verified": true, "level": 3})
            ))
            .is_ok());
        assert!(a
            .check(&claims(
                json!({"tenant": "acme", "email_verified": "true", "level": 3})
            ))
            .is_err());
        assert!(a
            .check(&claims(json!({"tenant": "acme", "email_verified": true})))
            .is_err());
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = Authorization::from_json(
            &json!({"authorize": {"scopes_all": ["a b"]}}),
            "rules[1].extensions",
        )
        .unwrap_err();
        assert_eq!(e.path, "rules[1].extensions.authorize.scopes_all[0]");
        let e =
            Authorization::from_json(&json!({"authorise": {}}), "rules[1].extensions").unwrap_err();
        assert!(e.to_string().contains("unknown field `authorise`"), "{e}");
        let e = Authorization::from_json(
            &json!({"authorize": {"claims": {"x": [1]}}}),
            "rules[0].extensions",
        )
        .unwrap_err();
        assert_eq!(e.path, "rules[0].extensions.authorize.claims.x");
        assert_eq!(Authorization::from_json(&json!({}), "r").unwrap(), None);
    }
}
