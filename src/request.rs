//! A host-independent view of one HTTP request's headers.
//!
//! The shell copies Envoy's header map into this once per request; every core
//! step (rule matching, extraction, CORS bypass, realm URL) reads from it.

/// Request headers as the core sees them. Names are lowercase (HTTP/2 style,
/// as Envoy presents them); pseudo-headers `:method`, `:path`, `:authority`,
/// `:scheme` are included.
///
/// Stored as one text buffer plus spans. Built from the host's map it reuses
/// the host's buffer in place: one UTF-8 check, no copy (this runs on every
/// request). `:path` is found once, when the view is built.
#[derive(Debug, Clone, Default)]
pub struct Request {
    text: String,
    /// (name start, name end, value start, value end) in `text`.
    spans: Vec<(u32, u32, u32, u32)>,
    /// Span of the first `:path` value.
    path: (u32, u32),
}

/// The values of one header name, in order (see [`Request::header_all`]).
#[derive(Debug, Clone)]
pub struct Values<'a, 'n> {
    req: &'a Request,
    name: &'n [u8],
    next: usize,
}

impl<'a> Iterator for Values<'a, '_> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.req.text.as_bytes();
        while let Some(&(a, b, c, d)) = self.req.spans.get(self.next) {
            self.next += 1;
            if b.wrapping_sub(a) as usize == self.name.len()
                && bytes.get(a as usize..b as usize) == Some(self.name)
            {
                return Some(self.req.span(c, d));
            }
        }
        None
    }
}

/// A host-map offset as a span offset (host sizes are u32, so it fits).
fn off(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Request {
    /// Builds a view; names are lowercased so lookups never depend on the client's casing.
    pub fn new(headers: Vec<(String, String)>) -> Self {
        let mut r = Request {
            text: String::with_capacity(headers.iter().map(|(k, v)| k.len() + v.len()).sum()),
            spans: Vec::with_capacity(headers.len()),
            path: (0, 0),
        };
        for (k, v) in &headers {
            r.push(k, v);
        }
        r.find_path();
        r
    }

    fn push(&mut self, name: &str, value: &str) {
        let a = self.text.len();
        self.text.push_str(name);
        self.text[a..].make_ascii_lowercase();
        let b = self.text.len();
        self.text.push_str(value);
        self.spans
            .push((off(a), off(b), off(b), off(self.text.len())));
    }

    fn find_path(&mut self) {
        let bytes = self.text.as_bytes();
        self.path = self
            .spans
            .iter()
            .find(|&&(a, b, _, _)| bytes.get(a as usize..b as usize) == Some(b":path"))
            .map_or((0, 0), |&(_, _, c, d)| (c, d));
    }

    /// Builds a view from a proxy-wasm serialized header map (what
    /// `proxy_get_header_map_pairs` returns): `u32` count, then per pair `u32`
    /// name and value sizes, then each name and value followed by a NUL (all
    /// little-endian). Bytes that are not UTF-8 become U+FFFD. `None` when the
    /// buffer is not such a map.
    pub fn from_host_pairs(mut buf: Vec<u8>) -> Option<Request> {
        let u32_at = |buf: &[u8], at: usize| -> Option<usize> {
            let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
            usize::try_from(u32::from_le_bytes(b)).ok()
        };
        let count = u32_at(&buf, 0)?;
        // Each pair takes at least 8 size bytes and 2 NULs: reject absurd counts
        // before allocating for them.
        if count > buf.len() / 10 {
            return None;
        }
        let data_start = 4usize.checked_add(count.checked_mul(8)?)?;
        let mut spans = Vec::with_capacity(count);
        let mut data = data_start;
        for i in 0..count {
            let klen = u32_at(&buf, 4 + i * 8)?;
            let vlen = u32_at(&buf, 8 + i * 8)?;
            let name_end = data.checked_add(klen)?;
            let value_end = name_end.checked_add(1)?.checked_add(vlen)?;
            // Each name and value must be followed by its NUL.
            if buf.get(name_end) != Some(&0) || buf.get(value_end) != Some(&0) {
                return None;
            }
            buf.get_mut(data..name_end)?.make_ascii_lowercase();
            spans.push((off(data), off(name_end), off(name_end + 1), off(value_end)));
            data = value_end + 1;
        }
        // The binary size table becomes spaces, so names and values (with
        // their NUL separators) are checked as UTF-8 in place, spans unchanged.
        buf.get_mut(..data_start)?.fill(b' ');
        match String::from_utf8(buf) {
            Ok(text) => {
                let mut r = Request {
                    text,
                    spans,
                    path: (0, 0),
                };
                r.find_path();
                Some(r)
            }
            Err(e) => {
                // Rare: some value is not UTF-8. Convert pair by pair.
                let bytes = e.into_bytes();
                let text = |a: u32, b: u32| {
                    let slice = bytes.get(a as usize..b as usize).unwrap_or_default();
                    String::from_utf8_lossy(slice).into_owned()
                };
                let mut r = Request::default();
                for &(a, b, c, d) in &spans {
                    r.push(&text(a, b), &text(c, d));
                }
                r.find_path();
                Some(r)
            }
        }
    }

    fn span(&self, a: u32, b: u32) -> &str {
        self.text.get(a as usize..b as usize).unwrap_or("")
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|&(a, b, c, d)| (self.span(a, b), self.span(c, d)))
    }

    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).next()
    }

    /// Every value of a header, in order. Names are compared as bytes, so
    /// headers that do not match are never sliced.
    pub fn header_all<'a, 'n>(&'a self, name: &'n str) -> Values<'a, 'n> {
        Values {
            req: self,
            name: name.as_bytes(),
            next: 0,
        }
    }

    /// All headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs()
    }

    /// `:method`.
    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or("")
    }

    /// `:path`, with the query string.
    pub fn path(&self) -> &str {
        self.span(self.path.0, self.path.1)
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

/// Serializes header pairs in the host's map format, the inverse of
/// [`Request::from_host_pairs`], for tests and tools that stand in for the
/// host. (A length over `u32::MAX` is written as `u32::MAX`, which
/// `from_host_pairs` then refuses.)
pub fn host_map(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = size(pairs.len()).to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&size(k.len()));
        out.extend_from_slice(&size(v.len()));
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
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
    fn reads_the_host_map_format() {
        let buf = host_map(&[
            (b":path", b"/a?b"),
            (b"Authorization", b"Bearer x"),
            (b"x-bin", b"\xff\xfeok"),
            (b"empty", b""),
        ]);
        let r = Request::from_host_pairs(buf).unwrap();
        assert_eq!(r.path(), "/a?b");
        assert_eq!(r.header("authorization"), Some("Bearer x"));
        assert_eq!(r.header("x-bin"), Some("\u{fffd}\u{fffd}ok"));
        assert_eq!(r.header("empty"), Some(""));
        assert_eq!(r.headers().count(), 4);
        // All UTF-8 (the usual case, no copy): names still come out lowercase.
        let r = Request::from_host_pairs(host_map(&[(b"X-Up", b"v\xc3\xa9"), (b":path", b"/")]))
            .unwrap();
        assert_eq!(r.header("x-up"), Some("v\u{e9}"));
        assert_eq!(
            r.headers().collect::<Vec<_>>(),
            vec![("x-up", "v\u{e9}"), (":path", "/")]
        );
        assert_eq!(
            Request::from_host_pairs(host_map(&[]))
                .unwrap()
                .headers()
                .count(),
            0
        );
    }

    #[test]
    fn malformed_host_maps_are_refused_without_panic() {
        let good = host_map(&[(b"a", b"b"), (b"cc", b"dd")]);
        // Every truncation, and each NUL replaced.
        for cut in 0..good.len() {
            assert!(
                Request::from_host_pairs(good[..cut].to_vec()).is_none(),
                "cut {cut}"
            );
        }
        for (i, b) in good.iter().enumerate() {
            if *b == 0 && i >= 20 {
                let mut bad = good.clone();
                bad[i] = b'x';
                assert!(Request::from_host_pairs(bad).is_none(), "nul {i}");
            }
        }
        // Sizes that overflow or point past the end; a huge count.
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Request::from_host_pairs(huge).is_none());
        let mut many = good;
        many[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Request::from_host_pairs(many).is_none());
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
