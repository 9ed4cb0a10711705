//! Envoy's `StringMatcher` and `RegexMatcher`, compiled once at config load.
//!
//! Used for `subjects`, route header matchers and rule `safe_regex`. Regexes are
//! anchored (Envoy's `safe_regex` is a full match) and size-bounded so that a
//! config cannot make the VM allocate without limit.

use super::raw::{RawRegexMatcher, RawStringMatcher};
use super::ConfigError;
use regex::{Regex, RegexBuilder};

/// Compiled-program size cap; RE2 in Envoy has a similar program-size guard.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A compiled, full-match regex.
#[derive(Debug, Clone)]
pub struct FullRegex(Regex);

impl FullRegex {
    /// Compiles `pattern` anchored at both ends; `path` names the field in errors.
    pub fn compile(pattern: &str, path: &str) -> Result<Self, ConfigError> {
        RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(FullRegex)
            .map_err(|e| {
                let first_line = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                ConfigError::new(path, format!("invalid regex: {first_line}"))
            })
    }

    /// Whole-string match.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// How a string is compared; mirrors `envoy.type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone)]
pub enum StringMatcher {
    /// Equal (optionally ASCII case-insensitive).
    Exact(String, bool),
    /// Starts with.
    Prefix(String, bool),
    /// Ends with.
    Suffix(String, bool),
    /// Contains.
    Contains(String, bool),
    /// Full-match regex.
    Regex(FullRegex),
}

impl StringMatcher {
    /// Compiles the raw form; exactly one kind must be set.
    pub(crate) fn compile(raw: &RawStringMatcher, path: &str) -> Result<Self, ConfigError> {
        let ic = raw.ignore_case;
        let mut found: Vec<StringMatcher> = Vec::new();
        if let Some(v) = &raw.exact {
            found.push(StringMatcher::Exact(v.clone(), ic));
        }
        if let Some(v) = &raw.prefix {
            if v.is_empty() {
                return Err(ConfigError::new(
                    &format!("{path}.prefix"),
                    "must not be empty",
                ));
            }
            found.push(StringMatcher::Prefix(v.clone(), ic));
        }
        if let Some(v) = &raw.suffix {
            if v.is_empty() {
                return Err(ConfigError::new(
                    &format!("{path}.suffix"),
                    "must not be empty",
                ));
            }
            found.push(StringMatcher::Suffix(v.clone(), ic));
        }
        if let Some(v) = &raw.contains {
            if v.is_empty() {
                return Err(ConfigError::new(
                    &format!("{path}.contains"),
                    "must not be empty",
                ));
            }
            found.push(StringMatcher::Contains(v.clone(), ic));
        }
        if let Some(r) = &raw.safe_regex {
            found.push(StringMatcher::Regex(compile_regex(
                r,
                &format!("{path}.safe_regex"),
            )?));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(ConfigError::new(
                path,
                "one of exact, prefix, suffix, contains, safe_regex is required",
            )),
            _ => Err(ConfigError::new(
                path,
                "only one of exact, prefix, suffix, contains, safe_regex may be set",
            )),
        }
    }

    /// Applies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        fn lower(s: &str) -> String {
            s.to_ascii_lowercase()
        }
        match self {
            StringMatcher::Exact(s, false) => value == s,
            StringMatcher::Exact(s, true) => value.eq_ignore_ascii_case(s),
            StringMatcher::Prefix(s, false) => value.starts_with(s.as_str()),
            StringMatcher::Prefix(s, true) => lower(value).starts_with(&lower(s)),
            StringMatcher::Suffix(s, false) => value.ends_with(s.as_str()),
            StringMatcher::Suffix(s, true) => lower(value).ends_with(&lower(s)),
            StringMatcher::Contains(s, false) => value.contains(s.as_str()),
            StringMatcher::Contains(s, true) => lower(value).contains(&lower(s)),
            StringMatcher::Regex(r) => r.is_match(value),
        }
    }
}

/// Compiles `{regex, google_re2}`; `path` is the JSON path of the matcher.
pub(crate) fn compile_regex(raw: &RawRegexMatcher, path: &str) -> Result<FullRegex, ConfigError> {
    if raw.regex.is_empty() {
        return Err(ConfigError::new(
            &format!("{path}.regex"),
            "must not be empty",
        ));
    }
    FullRegex::compile(&raw.regex, &format!("{path}.regex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(json: &str) -> Result<StringMatcher, ConfigError> {
        let raw: RawStringMatcher = serde_json::from_str(json).unwrap();
        StringMatcher::compile(&raw, "subjects")
    }

    #[test]
    fn each_kind_matches() {
        assert!(m(r#"{"exact":"a"}"#).unwrap().matches("a"));
        assert!(!m(r#"{"exact":"a"}"#).unwrap().matches("A"));
        assert!(m(r#"{"exact":"a","ignore_case":true}"#)
            .unwrap()
            .matches("A"));
        assert!(m(r#"{"prefix":"spiffe://"}"#)
            .unwrap()
            .matches("spiffe://x"));
        assert!(!m(r#"{"prefix":"spiffe://"}"#).unwrap().matches("http://x"));
        assert!(m(r#"{"suffix":"@corp"}"#).unwrap().matches("a@corp"));
        assert!(m(r#"{"contains":"mid"}"#).unwrap().matches("amidb"));
        let r = m(r#"{"safe_regex":{"regex":"user-[0-9]+"}}"#).unwrap();
        assert!(r.matches("user-12"));
        assert!(!r.matches("xuser-12"), "safe_regex is a full match");
    }

    #[test]
    fn errors_name_the_field() {
        let e = m(r#"{"safe_regex":{"regex":"("}}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("subjects.safe_regex.regex: invalid regex"),
            "{e}"
        );
        let e = m(r#"{}"#).unwrap_err();
        assert!(e.to_string().starts_with("subjects: one of"), "{e}");
        let e = m(r#"{"exact":"a","prefix":"b"}"#).unwrap_err();
        assert!(e.to_string().contains("only one"), "{e}");
    }
}
