//! `jwt-idp serve`: routes requests to the login, JWKS, discovery and rotation
//! handlers, and runs the listener and the key-maintenance clock. Routing is a
//! pure function of (request, peer, time) so it is tested without sockets.

use std::fmt;
use std::io::{BufReader, BufWriter, Read as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use serde_json::json;
#[cfg(test)]
use serde_json::Value;

use crate::http::{self, Body, Request, Response};
use crate::keys::Alg;
use crate::keystore::{KeyStore, Retire, StoreError};
use crate::login::{parse_credentials, MAX_BODY};
use crate::mint::{mint, TokenSpec};
use crate::unix_now;
use crate::users::UserDb;

/// How long clients may cache the JWKS. Short, because a rotated-in key signs
/// at once and verifiers only see it after their cached copy expires.
pub const JWKS_MAX_AGE: u64 = 60;
/// Concurrent connections served; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// At most this much of a refused body is drained before closing.
const LINGER_BYTES: usize = 1024 * 1024;
/// Deadline for reading one whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of `jwt-idp serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Directory of the signing keys.
    pub key_dir: PathBuf,
    /// Users file.
    pub users: PathBuf,
    /// Address to listen on (loopback by default).
    pub listen: String,
    /// `iss` of issued tokens; also the base of the discovery URLs.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Lifetime of issued tokens in seconds.
    pub token_ttl: u64,
    /// Algorithm of keys created by the server (first key and rotations).
    pub alg: Alg,
    /// RSA modulus size for RS256 keys.
    pub rsa_bits: usize,
    /// Rotate the active key when it is this many seconds old.
    pub rotate_every: Option<u64>,
    /// How long a rotated-out key stays published.
    pub grace: u64,
}

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The key directory could not be read or a first key not created.
    Store(StoreError),
    /// The listen address could not be bound.
    Bind(std::io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Store(e) => write!(f, "{e}"),
            ServeError::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Store(e) => Some(e),
            ServeError::Bind(e) => Some(e),
        }
    }
}

/// The server's state shared by all connections.
pub struct App {
    config: ServeConfig,
    users: UserDb,
    store: Mutex<KeyStore>,
}

fn error(status: u16, code: &str, description: &str) -> Response {
    Response::json(
        status,
        &json!({ "error": code, "error_description": description }),
    )
}

fn not_allowed(allow: &'static str) -> Response {
    error(405, "method_not_allowed", "method not allowed").with_header("allow", allow)
}

impl App {
    /// Opens the key directory, creating a first key when it has none.
    pub fn new(config: ServeConfig, users: UserDb, now: u64) -> Result<Self, StoreError> {
        let mut store = KeyStore::open(&config.key_dir)?;
        if store.active().is_err() {
            store.generate(config.alg, config.rsa_bits, now, Retire::Keep)?;
        }
        Ok(App {
            config,
            users,
            store: Mutex::new(store),
        })
    }

    /// A panic elsewhere must not take the key store down with it.
    fn store(&self) -> MutexGuard<'_, KeyStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kid and algorithm of the active key (public facts, for the startup log).
    pub fn active_key(&self) -> Option<(String, Alg)> {
        let store = self.store();
        store
            .active()
            .ok()
            .map(|(kid, key)| (kid.to_owned(), key.alg()))
    }

    fn issuer_url(&self, path: &str) -> String {
        format!("{}{path}", self.config.issuer.trim_end_matches('/'))
    }

    /// Answers one request from `peer` at time `now`.
    pub fn handle(&self, req: &Request, peer: IpAddr, now: u64) -> Response {
        let get = matches!(req.method.as_str(), "GET" | "HEAD");
        let post = req.method == "POST";
        match req.path.as_str() {
            "/healthz" if get => Response::json(200, &json!({ "status": "ok" })),
            "/healthz" => not_allowed("GET, HEAD"),
            "/.well-known/jwks.json" if get => Response::json(200, &self.store().jwks(now))
                .with_header("cache-control", format!("public, max-age={JWKS_MAX_AGE}")),
            "/.well-known/jwks.json" => not_allowed("GET, HEAD"),
            "/.well-known/openid-configuration" if get => self.discovery(now),
            "/.well-known/openid-configuration" => not_allowed("GET, HEAD"),
            "/login" if post => self.login(req, now),
            "/login" => not_allowed("POST"),
            "/rotate" if post => self.rotate(peer, now),
            "/rotate" => not_allowed("POST"),
            _ => error(404, "not_found", "no such endpoint"),
        }
    }

    fn discovery(&self, now: u64) -> Response {
        let algs = self.store().published_algs(now);
        let doc = json!({
            "issuer": self.config.issuer,
            "jwks_uri": self.issuer_url("/.well-known/jwks.json"),
            "token_endpoint": self.issuer_url("/login"),
            "grant_types_supported": ["password"],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "role", "scope"],
        });
        Response::json(200, &doc).with_header("cache-control", "public, max-age=300")
    }

    fn login(&self, req: &Request, now: u64) -> Response {
        let body = match &req.body {
            Body::Bytes(b) => b,
            Body::TooLarge => {
                return error(413, "invalid_request", "request body too large");
            }
        };
        let creds = match parse_credentials(req.header("content-type"), body) {
            Ok(c) => c,
            Err(e) => return error(400, "invalid_request", &e.to_string()),
        };
        let Some(user) = self.users.authenticate(&creds.username, &creds.password) else {
            return error(401, "invalid_grant", "invalid username or password");
        };
        let spec = TokenSpec {
            issuer: self.config.issuer.clone(),
            audience: self.config.audience.clone(),
            subject: user.sub.clone(),
            role: user.role.clone(),
            scope: user.scope.clone(),
            ttl: self.config.token_ttl,
            now,
            extra: Vec::new(),
        };
        let token = match mint(&self.store(), &spec) {
            Ok(t) => t,
            Err(_) => return error(500, "server_error", "cannot issue token"),
        };
        Response::json(
            200,
            &json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.config.token_ttl,
            }),
        )
        .with_header("cache-control", "no-store")
        .with_header("pragma", "no-cache")
    }

    fn rotate(&self, peer: IpAddr, now: u64) -> Response {
        if !peer.is_loopback() {
            return error(403, "forbidden", "rotation is allowed from loopback only");
        }
        let mut store = self.store();
        match store.generate(
            self.config.alg,
            self.config.rsa_bits,
            now,
            Retire::After(self.config.grace),
        ) {
            Ok(kid) => Response::json(200, &json!({ "kid": kid })),
            Err(_) => error(500, "server_error", "rotation failed"),
        }
    }

    /// Picks up key changes made by the CLI, rotates the active key when
    /// `--rotate-every` says so and drops keys whose grace period has ended.
    /// Returns the new kid after a rotation.
    pub fn maintain(&self, now: u64) -> Result<Option<String>, StoreError> {
        let mut store = self.store();
        if store.reload_if_changed()? && store.active().is_err() {
            // The directory was emptied under us: never serve without a key.
            store.generate(self.config.alg, self.config.rsa_bits, now, Retire::Keep)?;
        }
        let due = match (self.config.rotate_every, store.active_created_at()) {
            (Some(every), Some(created)) => now >= created.saturating_add(every),
            _ => false,
        };
        let rotated = if due {
            Some(store.generate(
                self.config.alg,
                self.config.rsa_bits,
                now,
                Retire::After(self.config.grace),
            )?)
        } else {
            None
        };
        store.prune(now)?;
        Ok(rotated)
    }
}

/// Strips control characters and bounds the length so a request path cannot
/// forge log lines.
fn loggable(path: &str) -> String {
    path.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn serve_connection(app: &App, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(stream);
    let (method, path, response) = match http::read_request(&mut reader, MAX_BODY, REQUEST_TIMEOUT)
    {
        Ok(req) => {
            let resp = app.handle(&req, peer, unix_now());
            (req.method, req.path, resp)
        }
        Err(e) => match e.status() {
            Some(status) => (
                "-".to_owned(),
                "-".to_owned(),
                error(status, "invalid_request", &e.to_string()),
            ),
            None => return,
        },
    };
    let _ = http::write_response(&mut writer, &response, method == "HEAD");
    if response.status == 413 {
        // The client may still be sending the body we refused: read and drop a
        // bounded amount so that closing does not reset the connection before
        // it has read the 413.
        if let Ok(stream) = writer.into_inner() {
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut sink = [0_u8; 8192];
            for _ in 0..(LINGER_BYTES / sink.len()) {
                match reader.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
    eprintln!(
        "jwt-idp: {} {} {}",
        loggable(&method),
        loggable(&path),
        response.status
    );
}

/// Decrements the connection count when a connection thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the server until the process is stopped.
pub fn serve(config: ServeConfig, users: UserDb) -> Result<(), ServeError> {
    let listen = config.listen.clone();
    let issuer = config.issuer.clone();
    let user_count = users.len();
    if users.is_empty() {
        eprintln!("jwt-idp: warning: the users file lists no user; every login will fail");
    }
    let app = Arc::new(App::new(config, users, unix_now()).map_err(ServeError::Store)?);
    let listener = TcpListener::bind(&listen).map_err(ServeError::Bind)?;
    let local: Option<SocketAddr> = listener.local_addr().ok();
    let (kid, alg) = app
        .active_key()
        .map_or(("-".to_owned(), "-".to_owned()), |(k, a)| {
            (k, a.to_string())
        });
    eprintln!(
        "jwt-idp: listening on http://{} (issuer {issuer}, {user_count} users, active key {kid} {alg})",
        local.map_or(listen.clone(), |a| a.to_string()),
    );

    let maintainer = Arc::clone(&app);
    thread::spawn(move || loop {
        thread::sleep(Duration::from_secs(1));
        match maintainer.maintain(unix_now()) {
            Ok(Some(kid)) => eprintln!("jwt-idp: rotated, active key {kid}"),
            Ok(None) => {}
            Err(e) => eprintln!("jwt-idp: key maintenance failed: {e}"),
        }
    });

    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // Out of file descriptors and similar: back off instead of spinning.
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut writer = BufWriter::new(stream);
            let _ = http::write_response(
                &mut writer,
                &error(503, "unavailable", "too many connections"),
                false,
            );
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        let app = Arc::clone(&app);
        let spawned = thread::Builder::new().spawn(move || {
            let _slot = slot;
            serve_connection(&app, stream);
        });
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::keys::tests::verify_with_jwk;
    use crate::keystore::published_kids;
    use crate::users::tests::sample_db;
    use std::io::Write as _;
    use std::net::Ipv4Addr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const NOW: u64 = 1_700_000_000;

    fn app(tag: &str, rotate_every: Option<u64>) -> (App, PathBuf) {
        let dir = std::env::temp_dir().join(format!("jwt-idp-srv-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = ServeConfig {
            key_dir: dir.clone(),
            users: PathBuf::from("unused"),
            listen: "127.0.0.1:0".into(),
            issuer: "http://127.0.0.1:8081/".into(),
            audience: "demo-api".into(),
            token_ttl: 300,
            alg: Alg::Es256,
            rsa_bits: 2048,
            rotate_every,
            grace: 60,
        };
        (App::new(config, sample_db(), NOW).unwrap(), dir)
    }

    fn req(method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: ct
                .map(|c| vec![("content-type".to_owned(), c.to_owned())])
                .unwrap_or_default(),
            body: Body::Bytes(body.to_vec()),
        }
    }

    fn body(resp: &Response) -> Value {
        serde_json::from_slice(&resp.body).unwrap()
    }

    fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
        resp.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn login(app: &App, user: &str, pw: &str) -> Response {
        let b = json!({"username": user, "password": pw}).to_string();
        app.handle(
            &req("POST", "/login", Some("application/json"), b.as_bytes()),
            LOOPBACK,
            NOW,
        )
    }

    #[test]
    fn login_issues_a_token_verifiable_with_the_jwks() {
        let (app, dir) = app("login", None);
        let resp = login(&app, "alice", "alice-pass");
        assert_eq!(resp.status, 200);
        assert_eq!(header(&resp, "cache-control"), Some("no-store"));
        let b = body(&resp);
        assert_eq!(b["token_type"], "Bearer");
        assert_eq!(b["expires_in"], 300);
        let token = b["access_token"].as_str().unwrap();
        let jwks = body(&app.handle(
            &req("GET", "/.well-known/jwks.json", None, b""),
            LOOPBACK,
            NOW,
        ));
        let claims = verify_with_jwk(token, &jwks["keys"][0]).unwrap();
        assert_eq!(claims["sub"], "alice-id");
        assert_eq!(claims["role"], "admin");
        assert_eq!(claims["scope"], "payments:write orders:read");
        assert_eq!(claims["iss"], "http://127.0.0.1:8081/");
        assert_eq!(claims["aud"], "demo-api");
        assert_eq!(claims["iat"], NOW as i64);
        assert_eq!(claims["exp"], (NOW + 300) as i64);
        assert!(claims["jti"].is_string());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_credentials_and_bodies_are_refused() {
        let (app, dir) = app("refuse", None);
        for (user, pw) in [("alice", "wrong"), ("nobody", "alice-pass"), ("", "")] {
            let resp = login(&app, user, pw);
            assert_eq!(resp.status, 401, "{user}");
            assert_eq!(body(&resp)["error"], "invalid_grant");
        }
        for (ct, b) in [
            (Some("application/json"), &b"{"[..]),
            (Some("application/json"), &br#"{"username":"alice"}"#[..]),
            (
                Some("application/x-www-form-urlencoded"),
                &b"username=%zz"[..],
            ),
            (Some("image/png"), &b"\x89PNG"[..]),
        ] {
            let resp = app.handle(&req("POST", "/login", ct, b), LOOPBACK, NOW);
            assert_eq!(resp.status, 400, "{ct:?}");
            assert_eq!(body(&resp)["error"], "invalid_request");
        }
        let mut big = req("POST", "/login", Some("application/json"), b"");
        big.body = Body::TooLarge;
        assert_eq!(app.handle(&big, LOOPBACK, NOW).status, 413);
        let form = app.handle(
            &req(
                "POST",
                "/login",
                Some("application/x-www-form-urlencoded"),
                b"username=alice&password=alice-pass",
            ),
            LOOPBACK,
            NOW,
        );
        assert_eq!(form.status, 200);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn discovery_points_at_the_issuer() {
        let (app, dir) = app("disco", None);
        let resp = app.handle(
            &req("GET", "/.well-known/openid-configuration", None, b""),
            LOOPBACK,
            NOW,
        );
        assert_eq!(resp.status, 200);
        let d = body(&resp);
        assert_eq!(d["issuer"], "http://127.0.0.1:8081/");
        assert_eq!(d["jwks_uri"], "http://127.0.0.1:8081/.well-known/jwks.json");
        assert_eq!(d["token_endpoint"], "http://127.0.0.1:8081/login");
        assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn routing_statuses() {
        let (app, dir) = app("routes", None);
        let cases = [
            ("GET", "/healthz", 200),
            ("HEAD", "/healthz", 200),
            ("POST", "/healthz", 405),
            ("GET", "/login", 405),
            ("GET", "/rotate", 405),
            ("DELETE", "/.well-known/jwks.json", 405),
            ("GET", "/nope", 404),
            ("GET", "/.well-known/jwks.json/", 404),
        ];
        for (method, path, status) in cases {
            let resp = app.handle(&req(method, path, None, b""), LOOPBACK, NOW);
            assert_eq!(resp.status, status, "{method} {path}");
        }
        let jwks = app.handle(
            &req("GET", "/.well-known/jwks.json", None, b""),
            LOOPBACK,
            NOW,
        );
        assert_eq!(header(&jwks, "cache-control"), Some("public, max-age=60"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rotate_endpoint_is_loopback_only_and_keeps_the_old_key_for_the_grace() {
        let (app, dir) = app("rot", None);
        let jwks = |now| {
            body(&app.handle(
                &req("GET", "/.well-known/jwks.json", None, b""),
                LOOPBACK,
                now,
            ))
        };
        let old = published_kids(&jwks(NOW));
        assert_eq!(old.len(), 1);
        let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            app.handle(&req("POST", "/rotate", None, b""), remote, NOW)
                .status,
            403
        );
        let resp = app.handle(&req("POST", "/rotate", None, b""), LOOPBACK, NOW);
        assert_eq!(resp.status, 200);
        let new = body(&resp)["kid"].as_str().unwrap().to_owned();
        assert_eq!(
            published_kids(&jwks(NOW + 59)),
            vec![old[0].clone(), new.clone()]
        );
        assert_eq!(published_kids(&jwks(NOW + 60)), vec![new.clone()]);
        // New tokens carry the new kid.
        let token = body(&login(&app, "alice", "alice-pass"))["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let header = jwt_compact::UntrustedToken::new(&token).unwrap();
        assert_eq!(header.header().key_id.as_deref(), Some(new.as_str()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn maintenance_rotates_on_schedule_and_prunes() {
        let (app, dir) = app("maint", Some(100));
        let first = app.active_key().unwrap().0;
        assert_eq!(app.maintain(NOW + 99).unwrap(), None);
        let second = app.maintain(NOW + 100).unwrap().unwrap();
        assert_ne!(first, second);
        assert_eq!(app.active_key().unwrap().0, second);
        assert_eq!(app.store().metas().count(), 2);
        // Grace is 60 s: the first key is dropped at NOW + 160.
        assert_eq!(app.maintain(NOW + 159).unwrap(), None);
        assert_eq!(app.store().metas().count(), 2);
        assert_eq!(app.maintain(NOW + 160).unwrap(), None);
        assert_eq!(app.store().metas().count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn serves_over_a_real_loopback_socket() {
        let (app, dir) = app("socket", None);
        let app = Arc::new(app);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server_app = Arc::clone(&app);
        let server = thread::spawn(move || {
            for _ in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                serve_connection(&server_app, stream);
            }
        });
        let exchange = |raw: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(raw).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("{\"status\":\"ok\"}"), "{ok}");
        let big = exchange(b"POST /login HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");
        assert!(big.starts_with("HTTP/1.1 413 "), "{big}");
        server.join().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
