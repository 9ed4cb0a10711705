//! A deliberately small HTTP/1.1 wire layer: one request per connection, a
//! bounded head, a body read only up to a limit announced by `Content-Length`,
//! and `Connection: close` on every answer. Small enough to audit, and it never
//! allocates on the client's word (a general-purpose server crate sized its
//! drain buffer from `Content-Length`).

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::time::{Duration, Instant};

/// Bound on the request line plus headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// Bound on the number of header lines.
pub const MAX_HEADERS: usize = 64;

/// Why a request could not be read; each maps to one status in [`HttpError::status`].
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// The connection failed or timed out before a full request arrived.
    Io(io::Error),
    /// The peer closed the connection without sending anything.
    Closed,
    /// The request line or a header is not HTTP/1.x syntax.
    BadSyntax,
    /// The head is longer than [`MAX_HEAD`] or has more than [`MAX_HEADERS`] headers.
    HeadTooLarge,
    /// `Transfer-Encoding` was used; only `Content-Length` bodies are accepted.
    LengthRequired,
    /// The whole request took longer than the deadline.
    Timeout,
}

impl HttpError {
    /// The status to answer with, or `None` when the connection is unusable.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Io(_) | HttpError::Closed => None,
            HttpError::BadSyntax => Some(400),
            HttpError::HeadTooLarge => Some(431),
            HttpError::LengthRequired => Some(411),
            HttpError::Timeout => Some(408),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "connection: {e}"),
            HttpError::Closed => f.write_str("connection closed"),
            HttpError::BadSyntax => f.write_str("malformed request"),
            HttpError::HeadTooLarge => f.write_str("request head too large"),
            HttpError::LengthRequired => f.write_str("content-length required"),
            HttpError::Timeout => f.write_str("request timeout"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The request body, or the fact that it was refused unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The body, at most the caller's limit.
    Bytes(Vec<u8>),
    /// `Content-Length` exceeded the limit; nothing was read (answer 413).
    TooLarge,
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method, as sent (case-sensitive per RFC 9110).
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Headers with lowercased names, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Request {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One response; `Content-Length` and `Connection: close` are added on write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Reads one line (up to `\n`) without letting it grow past `budget` bytes.
fn read_line(
    reader: &mut impl BufRead,
    budget: &mut usize,
    deadline: Instant,
) -> Result<Vec<u8>, HttpError> {
    let mut line = Vec::new();
    loop {
        if Instant::now() > deadline {
            return Err(HttpError::Timeout);
        }
        let available = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) => match read_error(e) {
                None => continue,
                Some(err) => return Err(err),
            },
        };
        if available.is_empty() {
            return if line.is_empty() {
                Err(HttpError::Closed)
            } else {
                Err(HttpError::BadSyntax)
            };
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        if chunk.len() > *budget {
            return Err(HttpError::HeadTooLarge);
        }
        *budget -= chunk.len();
        line.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if done {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(line);
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads one request. The body is read only when `Content-Length` is at most
/// `max_body`; `timeout` bounds the whole request, not each read.
pub fn read_request(
    reader: &mut impl BufRead,
    max_body: usize,
    timeout: Duration,
) -> Result<Request, HttpError> {
    let deadline = Instant::now() + timeout;
    let mut budget = MAX_HEAD;
    let line = read_line(reader, &mut budget, deadline)?;
    let line = String::from_utf8(line).map_err(|_| HttpError::BadSyntax)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadSyntax);
    };
    if !is_token(method) || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(HttpError::BadSyntax);
    }
    let path = target.split('?').next().unwrap_or_default().to_owned();

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget, deadline)?;
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(HttpError::HeadTooLarge);
        }
        let line = String::from_utf8(line).map_err(|_| HttpError::BadSyntax)?;
        let (name, value) = line.split_once(':').ok_or(HttpError::BadSyntax)?;
        if !is_token(name) {
            return Err(HttpError::BadSyntax);
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }

    if headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err(HttpError::LengthRequired);
    }
    let mut length: Option<u64> = None;
    for (_, value) in headers.iter().filter(|(n, _)| n == "content-length") {
        let parsed: u64 = value.parse().map_err(|_| HttpError::BadSyntax)?;
        if length.is_some_and(|l| l != parsed) {
            return Err(HttpError::BadSyntax);
        }
        length = Some(parsed);
    }
    let length = length.unwrap_or(0);
    let body = if length > max_body as u64 {
        Body::TooLarge
    } else {
        let mut buf = Vec::with_capacity(length as usize);
        let mut limited = reader.by_ref().take(length);
        loop {
            if Instant::now() > deadline {
                return Err(HttpError::Timeout);
            }
            let mut chunk = [0_u8; 1024];
            match limited.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => match read_error(e) {
                    None => continue,
                    Some(err) => return Err(err),
                },
            }
        }
        if (buf.len() as u64) < length {
            return Err(HttpError::BadSyntax);
        }
        Body::Bytes(buf)
    };
    Ok(Request {
        method: method.to_owned(),
        path,
        headers,
        body,
    })
}

/// Writes `response`; `head_only` leaves the body out (for HEAD).
pub fn write_response(
    writer: &mut impl Write,
    response: &Response,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        // Values are ours, but never let one split the head.
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        head.push_str(name);
        head.push_str(": ");
        head.push_str(&value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    if !head_only {
        writer.write_all(&response.body)?;
    }
    writer.flush()
}

/// A socket read error: `None` when the read should simply be retried
/// (interrupted), else what the caller returns (a read timeout is `Timeout`).
fn read_error(e: io::Error) -> Option<HttpError> {
    match e.kind() {
        io::ErrorKind::Interrupted => None,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Some(HttpError::Timeout),
        _ => Some(HttpError::Io(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(raw: &[u8]) -> Result<Request, HttpError> {
        read_request(&mut Cursor::new(raw.to_vec()), 100, Duration::from_secs(5))
    }

    #[test]
    fn parses_a_post_with_body_and_strips_the_query() {
        let req = read(
            b"POST /login?token=secret HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nbodyEXTRA",
        )
        .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/login");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.body, Body::Bytes(b"body".to_vec()));
        let req = read(b"GET /healthz HTTP/1.0\n\n").unwrap();
        assert_eq!(req.body, Body::Bytes(Vec::new()));
    }

    #[test]
    fn oversize_body_is_not_read() {
        let req = read(b"POST /login HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n").unwrap();
        assert_eq!(req.body, Body::TooLarge);
    }

    #[test]
    fn malformed_requests_map_to_statuses() {
        let long_header = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let many_headers = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        let cases: Vec<(Vec<u8>, Option<u16>)> = vec![
            (b"".to_vec(), None),
            (b"GET /\r\n\r\n".to_vec(), Some(400)),
            (b"GET / HTTP/1.1 x\r\n\r\n".to_vec(), Some(400)),
            (b"GET x HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
            (b"G(T / HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
            (b"GET / HTTP/2\r\n\r\n".to_vec(), Some(400)),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n".to_vec(), Some(400)),
            (b"GET / HTTP/1.1\r\nbad name: v\r\n\r\n".to_vec(), Some(400)),
            (b"GET / HTTP/1.1\r\n\xff: v\r\n\r\n".to_vec(), Some(400)),
            (b"GET / HTTP/1.1\r\nHost: x".to_vec(), Some(400)),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
                Some(400),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
                Some(400),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort".to_vec(),
                Some(400),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
                Some(411),
            ),
            (long_header.into_bytes(), Some(431)),
            (many_headers.into_bytes(), Some(431)),
        ];
        for (raw, status) in cases {
            let err = read(&raw).unwrap_err();
            assert_eq!(
                err.status(),
                status,
                "{:?}: {err}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn expired_deadline_is_a_timeout() {
        let err = read_request(
            &mut Cursor::new(b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            10,
            Duration::ZERO,
        );
        // A zero timeout may still see the first line if the clock has not moved.
        if let Err(e) = err {
            assert!(matches!(e, HttpError::Timeout), "{e}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet = b"GETPOST /:\r\n HTTP/1.1Content-Length: 0123456789\xff";
        for _ in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 120) as usize;
            let raw: Vec<u8> = (0..len)
                .map(|i| alphabet[((state >> (i % 50)) as usize ^ i) % alphabet.len()])
                .collect();
            let _ = read(&raw);
        }
    }

    #[test]
    fn response_is_written_with_length_and_close() {
        let mut out = Vec::new();
        let resp = Response::json(200, &serde_json::json!({"a": 1}))
            .with_header("cache-control", "no-store\r\nx-injected: 1");
        write_response(&mut out, &resp, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n"));
        assert!(text.contains("cache-control: no-storex-injected: 1\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"a\":1}"));
        let mut out = Vec::new();
        write_response(&mut out, &resp, true).unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("\r\n\r\n"));
    }
}
