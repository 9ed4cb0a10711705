"""A programmable JWKS / OIDC server for the remote-key end-to-end tests.

The filter's remote key cache is only as well tested as the failures we can
make an identity provider produce on demand. This server binds 127.0.0.1 (a
free port unless one is given), and every path has a behaviour that a test
switches while Envoy is running:

- `Reply(status, body, delay=...)`: a document (also errors, garbage, slow
  answers, oversize bodies; see `garbage()`, `oversize()`, `error()`);
- `Hang()`: read the request and never answer (until the client goes away,
  the server stops, or `max_seconds`, so no thread outlives a test for long);
- `Reset()`: drop the connection with a TCP RST instead of answering.

`set(path, first, second, ..., last)` plays the behaviours in order, one per
request, and then keeps the last. `KeyRing` holds private keys by kid and
publishes their public JWKS (rotation is `add` / `remove` + `publish`).
Every request is recorded (`hits(path)`, with arrival and answer times on
`time.monotonic()`), under a lock, so tests can assert exactly how often and
when the filter fetched.

Use as a context manager; `stop()` ends hanging handlers and closes kept-alive
connections so the process leaves no threads behind.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt_sign as js

DEFAULT_MAX_HANG_S = 30.0
STOP_TIMEOUT_S = 5.0
OIDC_PATH = "/.well-known/openid-configuration"


# --------------------------------------------------------------------------
# behaviours


@dataclass(frozen=True)
class Reply:
    """Answer with `status` and `body` after `delay` seconds."""

    status: int = 200
    body: str | bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0

    @property
    def data(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Hang:
    """Accept and read the request, then never answer (bounded)."""

    max_seconds: float = DEFAULT_MAX_HANG_S


@dataclass(frozen=True)
class Reset:
    """Close the connection with a TCP reset instead of answering."""


Behaviour = Reply | Hang | Reset


def error(status: int = 500, body: str = "internal error") -> Reply:
    """An HTTP error from the IdP."""
    return Reply(status, body, content_type="text/plain")


def garbage() -> Reply:
    """A 200 whose body is not JSON at all."""
    return Reply(200, "<html><body>502 Bad Gateway</body></html>{", content_type="text/html")


def oversize(jwks_text: str, size: int = 300 * 1024) -> Reply:
    """A 200 with a *valid* JWKS padded with JSON whitespace to `size` bytes.

    Valid on purpose: only the size limit can make a filter reject it.
    """
    pad = max(0, size - len(jwks_text))
    return Reply(200, jwks_text[:-1] + " " * pad + jwks_text[-1:])


def discovery_document(issuer: str, jwks_uri: str) -> str:
    """A minimal OIDC discovery document (OpenID Connect Discovery 1.0, 3)."""
    return json.dumps(
        {
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "authorization_endpoint": issuer + "/authorize",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        }
    )


# --------------------------------------------------------------------------
# keys


class KeyRing:
    """Private keys by kid; the published JWKS holds their public halves."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, object]] = {}

    def add(self, kid: str, alg: str = "ES256", key=None):
        """Adds (or replaces) a key; returns the private key."""
        key = key if key is not None else js.new_key(alg)
        self._keys[kid] = (alg, key)
        return key

    def remove(self, kid: str) -> None:
        self._keys.pop(kid, None)

    def kids(self) -> list[str]:
        return list(self._keys)

    def public_jwks(self) -> list[dict]:
        return [js.public_jwk(key, kid=kid, alg=alg) for kid, (alg, key) in self._keys.items()]

    def jwks_text(self, extra: list[dict] | None = None) -> str:
        return js.jwks_text(self.public_jwks() + list(extra or []))

    def sign(self, kid: str, payload: dict) -> str:
        """A token signed by the key `kid` (which need not be published)."""
        alg, key = self._keys[kid]
        return js.sign(key, alg, payload, kid=kid)


# --------------------------------------------------------------------------
# the server


@dataclass
class Hit:
    """One request the server received."""

    path: str
    kind: str
    # time.monotonic() when the request arrived / when the answer started
    # being written (None: not answered, e.g. hang, reset, still delayed).
    arrived: float
    answered: float | None = None


class JwksServer:
    """Threaded HTTP/1.1 server with per-path programmable behaviour."""

    def __init__(self, port: int = 0, max_hang: float = DEFAULT_MAX_HANG_S):
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._behaviours: dict[str, list[Behaviour]] = {}
        self._hits: list[Hit] = []
        self._connections: set[socket.socket] = set()
        self._max_hang = max_hang
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._started = False

    # -- programming ----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, path: str, *behaviours: Behaviour) -> None:
        """Plays `behaviours` in order, one per request; the last one stays."""
        if not behaviours:
            raise ValueError("set() needs at least one behaviour")
        with self._lock:
            self._behaviours[path] = list(behaviours)

    def serve(self, path: str, body: str, status: int = 200, delay: float = 0.0) -> None:
        """Shorthand for set(path, Reply(status, body, delay=delay))."""
        self.set(path, Reply(status, body, delay=delay))

    def publish(self, path: str, ring: KeyRing, extra: list[dict] | None = None, delay: float = 0.0) -> str:
        """Serves the ring's public JWKS at `path`; returns the document."""
        text = ring.jwks_text(extra)
        self.serve(path, text, delay=delay)
        return text

    def serve_discovery(self, jwks_path: str, path: str = OIDC_PATH) -> str:
        """Serves a discovery document (issuer = this server) pointing at jwks_path."""
        doc = discovery_document(self.url, self.url + jwks_path)
        self.serve(path, doc)
        return doc

    # -- observation --------------------------------------------------------

    def hits(self, path: str | None = None) -> list[Hit]:
        """Requests so far (for one path, or all), oldest first."""
        with self._lock:
            return [Hit(h.path, h.kind, h.arrived, h.answered) for h in self._hits if path is None or h.path == path]

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for h in self._hits if h.path == path)

    def wait_for_hits(self, path: str, n: int, timeout: float) -> list[Hit]:
        """Blocks until `path` saw at least n requests; raises AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            hits = self.hits(path)
            if len(hits) >= n:
                return hits
            if time.monotonic() >= deadline:
                raise AssertionError(f"{path}: {len(hits)} requests after {timeout}s, wanted {n}")
            time.sleep(0.02)

    def wait_answered(self, path: str, n: int, timeout: float) -> list[Hit]:
        """Like wait_for_hits, but the n-th request must also have been answered."""
        deadline = time.monotonic() + timeout
        while True:
            hits = self.hits(path)
            if len(hits) >= n and hits[n - 1].answered is not None:
                return hits
            if time.monotonic() >= deadline:
                raise AssertionError(f"{path}: request #{n} not answered after {timeout}s ({len(hits)} seen)")
            time.sleep(0.02)

    def open_connections(self) -> int:
        """Client connections currently held by handler threads."""
        with self._lock:
            return len(self._connections)

    # -- internals -----------------------------------------------------------

    def _next(self, path: str) -> Behaviour:
        with self._lock:
            queue = self._behaviours.get(path)
            if not queue:
                return Reply(404, "not found", content_type="text/plain")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _record(self, path: str, kind: str) -> Hit:
        hit = Hit(path, kind, time.monotonic())
        with self._lock:
            self._hits.append(hit)
        return hit

    def _answered(self, hit: Hit) -> None:
        with self._lock:
            hit.answered = time.monotonic()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handler_class(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Idle kept-alive connections end on their own.
            timeout = 60

            def setup(self):
                super().setup()
                owner._track(self.connection, True)

            def finish(self):
                owner._track(self.connection, False)
                try:
                    super().finish()
                except OSError:
                    pass

            def do_GET(self):  # noqa: N802 - stdlib naming
                path = self.path.split("?", 1)[0]
                behaviour = owner._next(path)
                hit = owner._record(path, type(behaviour).__name__.lower())
                if isinstance(behaviour, Hang):
                    self._hang(min(behaviour.max_seconds, owner._max_hang))
                elif isinstance(behaviour, Reset):
                    self._reset()
                else:
                    self._reply(behaviour, hit)

            def _reply(self, r: Reply, hit: Hit) -> None:
                if r.delay > 0 and owner._stopping.wait(r.delay):
                    self.close_connection = True
                    return
                data = r.data
                # Stamped before writing: a client can never see the effect of
                # this answer earlier than `answered`.
                owner._answered(hit)
                try:
                    self.send_response(r.status)
                    self.send_header("content-type", r.content_type)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True

            def _hang(self, max_seconds: float) -> None:
                # Wait without answering until the client closes, the server
                # stops, or max_seconds pass.
                self.close_connection = True
                deadline = time.monotonic() + max_seconds
                while not owner._stopping.is_set() and time.monotonic() < deadline:
                    try:
                        readable, _, _ = select.select([self.connection], [], [], 0.1)
                        if readable and not self.connection.recv(1, socket.MSG_PEEK):
                            return  # client went away
                    except OSError:
                        return

            def _reset(self) -> None:
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        return Handler

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> "JwksServer":
        self._thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stops serving, ends hanging/delayed handlers and closes open connections."""
        self._stopping.set()
        if self._started:
            self._server.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._started:
            self._thread.join(timeout=STOP_TIMEOUT_S)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._lock:
                if not self._connections:
                    break
            time.sleep(0.02)

    def __enter__(self) -> "JwksServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
