//! A host-independent view of one HTTP request's headers.
//!
//! The shell copies Envoy's header map into this once per request; every core
//! step (rule matching, extraction, CORS bypass, realm URL) reads from it.

/// Request headers as the core sees them. Names are lowercase (HTTP/2 style,
/// as Envoy presents them); pseudo-headers `:method`, `:path`, `:authority`,
/// `:scheme` are included.
#[derive(Debug, Clone, Default)]
pub struct Request {
    headers: Vec<(String, String)>,
}

impl Request {
    /// Builds a view; names are lowercased so lookups never depend on the client's casing.
    pub fn new(headers: Vec<(String, String)>) -> Self {
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Request { headers }
    }

    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All headers.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// `:method`.
    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or("")
    }

    /// `:path`, with the query string.
    pub fn path(&self) -> &str {
        self.header(":path").unwrap_or("")
    }

    /// `:path` without query string or fragment.
    pub fn path_only(&self) -> &str {
        let p = self.path();
        match p.find(['?', '#']) {
            Some(i) => &p[..i],
            None => p,
        }
    }

    /// The query string (after '?', before '#'), if any.
    pub fn query(&self) -> Option<&str> {
        let p = self.path();
        let q = &p[p.find('?')? + 1..];
        Some(match q.find('#') {
            Some(i) => &q[..i],
            None => q,
        })
    }

    /// The URL used as `realm` in `www-authenticate`, built like Envoy's
    /// `buildOriginalUri`: scheme (from `x-forwarded-proto`, else `:scheme`),
    /// host, path without the query string.
    pub fn realm_uri(&self) -> String {
        let scheme = self
            .header("x-forwarded-proto")
            .or_else(|| self.header(":scheme"))
            .unwrap_or("http");
        let host = self
            .header(":authority")
            .or_else(|| self.header("host"))
            .unwrap_or("");
        let mut out = format!("{scheme}://{host}{}", self.path_only());
        // The value goes inside a quoted-string: drop what would break it.
        out.retain(|c| c != '"' && c != '\\' && !c.is_control());
        // Bounded, and cut on a character boundary: a client-sent multi-byte
        // character straddling the limit must not panic (found by fuzzing).
        let mut cut = out.len().min(2048);
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out
    }

    /// First value of query parameter `name`, percent-decoded (as Envoy's
    /// `QueryParamsMulti::getFirstValue`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        for pair in self.query()?.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if percent_decode(k) == name {
                return Some(percent_decode(v));
            }
        }
        None
    }

    /// First cookie named `name` across all `cookie` headers, surrounding quotes removed.
    pub fn cookie(&self, name: &str) -> Option<String> {
        for header in self.header_all("cookie") {
            for part in header.split(';') {
                let part = part.trim_start_matches(' ');
                if let Some((k, v)) = part.split_once('=') {
                    if k == name {
                        let v = v.trim_end();
                        let v = v
                            .strip_prefix('"')
                            .and_then(|s| s.strip_suffix('"'))
                            .unwrap_or(v);
                        return Some(v.to_string());
                    }
                }
            }
        }
        None
    }
}

/// Percent-decoding as URL query decoding does; invalid escapes stay literal.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(h: &[(&str, &str)]) -> Request {
        Request::new(
            h.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn query_and_cookies() {
        let r = req(&[
            (":path", "/a/b?x=1&access_token=a%2Eb&x=2#f"),
            ("Cookie", "a=1; tok=\"v.w\""),
            ("cookie", "tok=other"),
        ]);
        assert_eq!(r.path_only(), "/a/b");
        assert_eq!(r.query(), Some("x=1&access_token=a%2Eb&x=2"));
        assert_eq!(r.query_param("access_token").as_deref(), Some("a.b"));
        assert_eq!(r.query_param("x").as_deref(), Some("1"));
        assert_eq!(r.query_param("y"), None);
        assert_eq!(r.cookie("tok").as_deref(), Some("v.w"));
        assert_eq!(r.cookie("zzz"), None);
    }

    #[test]
    fn percent_decode_edges() {
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("a%zz"), "a%zz");
    }

    #[test]
    fn realm_like_envoy() {
        let r = req(&[
            (":scheme", "http"),
            (":authority", "h:1"),
            (":path", "/p?q=1"),
        ]);
        assert_eq!(r.realm_uri(), "http://h:1/p");
        let r = req(&[
            (":scheme", "http"),
            ("x-forwarded-proto", "https"),
            (":authority", "h"),
            (":path", "/\"x"),
        ]);
        assert_eq!(r.realm_uri(), "https://h/x");
        let long = format!("/{}", "é".repeat(1100));
        let r = req(&[(":scheme", "http"), (":authority", "h"), (":path", &long)]);
        let realm = r.realm_uri();
        assert!(realm.len() <= 2048 && realm.starts_with("http://h/é"));
    }
}
