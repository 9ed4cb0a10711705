"""Support module for the benchmark, the soak and the fault tests.

One place for what bench.py, soak.py and tests/e2e/test_faults.py share:
  - KeyRing: signing keys that rotate (the published JWKS holds the previous,
    current and next key) and remember which key sets were actually served,
    so a client only calls a token "valid" when the filter has had its key;
  - FlakyJwksServer: a 127.0.0.1 JWKS endpoint that can answer well, or fail
    in one of several ways (500, garbage, oversize, hang, reset, slow, ...);
  - TokenMix + LoadRunner: bounded client threads sending a mix of valid and
    invalid tokens and recording every verdict that breaks the rules;
  - process/admin sampling helpers (VmRSS, /memory, stats) and a least
    squares slope.

Everything binds or connects to 127.0.0.1 only, and every loop here is
bounded in count and in time.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
E2E_DIR = REPO_ROOT / "tests" / "e2e"
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))

import jwt_sign as js  # noqa: E402

ISSUER = "https://issuer.example"
WASM_METRIC_PREFIX = "wasmcustom.jwt_authn_wasm."

# --------------------------------------------------------------------------
# keys


@dataclass(frozen=True)
class RingKey:
    """One signing key of the ring: kid, JWS alg, private key, creation order."""

    kid: str
    alg: str
    private: object
    serial: int

    def public_jwk(self) -> dict:
        return js.public_jwk(self.private, self.kid, self.alg)


class KeyRing:
    """Rotating signing keys, as an IdP that pre-publishes its next key.

    The published set is [previous, current, next]: a new key is published
    one rotation before it signs anything, and a retired key stays published
    for one rotation (grace). Good JWKS bodies handed out by a server are
    recorded with `mark_served`; `valid_signer` then picks a key the filter is
    known to hold: the newest key of the last served body, or, within
    `settle_s` after a body was served (the filter may not have parsed it
    yet), the newest key common to the last two bodies.
    """

    def __init__(self, algs: tuple[str, ...] = ("ES256", "RS256"), settle_s: float = 0.5):
        self._algs = algs
        self._settle_s = settle_s
        self._lock = threading.Lock()
        self._serial = 0
        self._published: list[RingKey] = []
        self._served: list[tuple[float, frozenset[str]]] = []
        self._by_kid: dict[str, RingKey] = {}
        self.rotations = 0
        self.used_kids: Counter[str] = Counter()
        for _ in range(2):
            self._published.append(self._new_key())

    def _new_key(self) -> RingKey:
        with self._lock:
            serial = self._serial
            self._serial += 1
        alg = self._algs[serial % len(self._algs)]
        key = RingKey(kid=f"k{serial}-{alg.lower()}", alg=alg, private=js.new_key(alg), serial=serial)
        with self._lock:
            self._by_kid[key.kid] = key
        return key

    def rotate(self) -> None:
        """Next becomes current, a new next is published, the oldest is retired."""
        fresh = self._new_key()  # key generation outside the lock (RSA is slow)
        with self._lock:
            self._published.append(fresh)
            if len(self._published) > 3:
                self._published.pop(0)
            self.rotations += 1

    def published(self) -> list[RingKey]:
        with self._lock:
            return list(self._published)

    def jwks_text(self, extra: list[dict] | None = None) -> str:
        """The JWKS document to serve now (plus `extra` public JWKs)."""
        return js.jwks_text([k.public_jwk() for k in self.published()] + list(extra or []))

    def mark_served(self, body: str) -> None:
        """Records that a good JWKS body went out (call after it was written)."""
        kids = frozenset(k.get("kid", "") for k in json.loads(body).get("keys", []))
        with self._lock:
            self._served.append((time.monotonic(), kids))
            del self._served[:-2]

    def valid_signer(self) -> RingKey | None:
        """A key the filter holds for sure, or None before any good fetch."""
        with self._lock:
            if not self._served:
                return None
            at, last = self._served[-1]
            kids = set(last)
            if time.monotonic() - at < self._settle_s:
                kids &= self._served[-2][1] if len(self._served) > 1 else set()
            candidates = [self._by_kid[k] for k in kids if k in self._by_kid]
            if not candidates:
                return None
            return max(candidates, key=lambda k: k.serial)


# --------------------------------------------------------------------------
# a JWKS server that can misbehave

FAULT_MODES = ("good", "status500", "garbage", "oversize", "hang", "reset", "slow", "truncated", "empty")


class FlakyJwksServer:
    """HTTP JWKS endpoint on 127.0.0.1 that serves the KeyRing, or fails.

    `schedule` is a list of modes applied to successive requests (cycled);
    modes: good; status500; garbage (200, not JSON); oversize (200, a JSON
    body over `oversize_bytes` that also carries `forged_jwk`, so a filter that
    wrongly accepted it would let forged tokens in); hang (reads the request,
    never answers, closes after `hang_s`); reset (TCP RST); slow (the good
    body dribbled over `slow_s`); truncated (content-length larger than the
    body, then close); empty ({"keys": []}). `hits` counts requests by mode.
    """

    def __init__(
        self,
        ring: KeyRing,
        schedule: list[str] | None = None,
        *,
        forged_jwk: dict | None = None,
        oversize_bytes: int = 300 * 1024,
        hang_s: float = 3.0,
        slow_s: float = 0.4,
    ):
        for mode in schedule or []:
            if mode not in FAULT_MODES:
                raise ValueError(f"unknown mode {mode!r}")
        self.ring = ring
        self.schedule = list(schedule or ["good"])
        self.forged_jwk = forged_jwk
        self.oversize_bytes = oversize_bytes
        self.hang_s = hang_s
        self.slow_s = slow_s
        self.hits: Counter[str] = Counter()
        self._count = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - stdlib naming
                owner._serve(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def next_mode(self) -> str:
        with self._lock:
            mode = self.schedule[self._count % len(self.schedule)]
            self._count += 1
            self.hits[mode] += 1
            return mode

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, length: int | None = None) -> None:
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        mode = self.next_mode()
        if mode in ("good", "slow"):
            text = self.ring.jwks_text()
            data = text.encode()
            if mode == "good":
                self._send(h, 200, data)
            else:
                h.send_response(200)
                h.send_header("content-type", "application/json")
                h.send_header("content-length", str(len(data)))
                h.end_headers()
                chunks = 8
                step = max(1, len(data) // chunks)
                for i in range(0, len(data), step):
                    h.wfile.write(data[i : i + step])
                    h.wfile.flush()
                    time.sleep(self.slow_s / chunks)
            self.ring.mark_served(text)
        elif mode == "status500":
            self._send(h, 500, b"upstream exploded")
        elif mode == "garbage":
            self._send(h, 200, b"\x00\xffnot json at all {{{" + os.urandom(64))
        elif mode == "empty":
            self._send(h, 200, b'{"keys":[]}')
        elif mode == "oversize":
            keys = [k.public_jwk() for k in self.ring.published()]
            if self.forged_jwk is not None:
                keys.append(self.forged_jwk)
            doc = {"keys": keys, "padding": "x" * self.oversize_bytes}
            self._send(h, 200, json.dumps(doc).encode())
        elif mode == "truncated":
            self._send(h, 200, self.ring.jwks_text().encode()[:40], length=4096)
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "hang":
            self._stopping.wait(self.hang_s)
            h.close_connection = True
        elif mode == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()

    def start(self) -> FlakyJwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FlakyJwksServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def remote_provider(uri: str, *, timeout_s: float = 1.0, cache_s: float = 2.0, **fields) -> dict:
    """A jwt_authn provider whose keys come from `uri` (cluster "jwks")."""
    out = {
        "issuer": ISSUER,
        "remote_jwks": {
            "http_uri": {"uri": uri, "cluster": "jwks", "timeout": f"{timeout_s}s"},
            "cache_duration": f"{cache_s}s",
        },
    }
    out.update(fields)
    return out


# --------------------------------------------------------------------------
# token mix


@dataclass(frozen=True)
class Kind:
    """A kind of request: whether it must be allowed, and the reason we expect."""

    name: str
    valid: bool
    reason: str  # the filter's reason code ("allowed", "bad_signature", ...)


KINDS = {
    k.name: k
    for k in (
        Kind("valid", True, "allowed"),
        Kind("bad_signature", False, "bad_signature"),
        Kind("forged_same_kid", False, "bad_signature"),
        Kind("expired", False, "expired"),
        Kind("missing", False, "missing"),
        Kind("malformed", False, "malformed"),
        Kind("wrong_issuer", False, "issuer"),
        Kind("unknown_kid", False, "key_not_found"),
    )
}

DEFAULT_WEIGHTS = {
    "valid": 10,
    "bad_signature": 2,
    "forged_same_kid": 1,
    "expired": 2,
    "missing": 2,
    "malformed": 1,
    "wrong_issuer": 1,
    "unknown_kid": 1,
}


class TokenMix:
    """Builds the Authorization header for each kind, from the ring's keys.

    Tokens are minted per signing key and cached (signing RSA for every
    request would make the client the bottleneck); they live an hour.
    `forged` is an attacker key that is never published (except inside the
    oversize body, which must be refused).
    """

    def __init__(self, ring: KeyRing, weights: dict[str, int] | None = None):
        self.ring = ring
        weights = dict(weights or DEFAULT_WEIGHTS)
        unknown = set(weights) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}")
        # A deterministic, evenly spread sequence of kinds.
        self.sequence: list[str] = []
        total = sum(weights.values())
        for i in range(total):
            for name, w in weights.items():
                if (i * w) // total != ((i + 1) * w) // total:
                    self.sequence.append(name)
        self.forged = js.new_key("ES256")
        self.forged_kid = "forged-attacker"
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def forged_jwk(self) -> dict:
        return js.public_jwk(self.forged, self.forged_kid, "ES256")

    def _token(self, key: RingKey, kind: str) -> str:
        cache_key = (key.kid, kind)
        with self._lock:
            hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        if kind == "valid":
            tok = js.sign(key.private, key.alg, js.claims(iss=ISSUER, lifetime=3600), kid=key.kid)
        elif kind == "bad_signature":
            tok = js.tamper_signature(self._token(key, "valid"))
        elif kind == "forged_same_kid":
            # The published kid and alg, signed by a key the attacker owns.
            forger = self.forged if key.alg == "ES256" else js.key_for(key.alg, "forged")
            tok = js.sign(forger, key.alg, js.claims(iss=ISSUER), kid=key.kid)
        elif kind == "expired":
            tok = js.sign(key.private, key.alg, js.claims(iss=ISSUER, lifetime=-3600), kid=key.kid)
        elif kind == "wrong_issuer":
            tok = js.sign(key.private, key.alg, js.claims(iss="https://evil.example"), kid=key.kid)
        elif kind == "unknown_kid":
            tok = js.sign(self.forged, "ES256", js.claims(iss=ISSUER), kid=self.forged_kid)
        else:
            raise ValueError(kind)
        with self._lock:
            self._cache[cache_key] = tok
        return tok

    def header(self, kind: str) -> tuple[str | None, str | None]:
        """(Authorization value or None, signing kid or None); ("", None) when no key is usable yet."""
        if kind == "missing":
            return None, None
        if kind == "malformed":
            return "Bearer not.a.jwt!", None
        key = self.ring.valid_signer()
        if key is None:
            return "", None
        return "Bearer " + self._token(key, kind), key.kid


# --------------------------------------------------------------------------
# load


@dataclass
class Violation:
    """A verdict that breaks the rules (valid denied, or invalid allowed)."""

    at_s: float
    kind: str
    status: int
    kid: str | None
    body: str


@dataclass
class LoadResult:
    """What the client threads saw."""

    sent: int = 0
    by_kind: dict[str, Counter] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    transport_errors: Counter = field(default_factory=Counter)
    skipped_no_key: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def allowed(self) -> int:
        return sum(c.get(200, 0) for c in self.by_kind.values())

    def denied(self) -> int:
        return sum(n for c in self.by_kind.values() for s, n in c.items() if s != 200)

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(len(lat) * p))], 2) if lat else None

        return {
            "sent": self.sent,
            "elapsed_s": round(self.elapsed_s, 2),
            "rps": round(self.sent / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "by_kind": {k: {str(s): n for s, n in sorted(c.items())} for k, c in sorted(self.by_kind.items())},
            "violations": len(self.violations),
            "violation_samples": [v.__dict__ for v in self.violations[:10]],
            "transport_errors": dict(self.transport_errors),
            "skipped_no_key": self.skipped_no_key,
            "latency_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": lat[-1] if lat else None},
        }


class LoadRunner:
    """Client threads sending the TokenMix to one listener until stopped.

    Bounded: each thread stops after `max_requests / threads` requests or at
    `duration_s`, whichever comes first; `stop()` ends it earlier. Requests use
    keep-alive connections (reopened after any transport error).
    """

    def __init__(
        self,
        base_url: str,
        mix: TokenMix,
        *,
        threads: int = 3,
        duration_s: float = 15.0,
        max_requests: int = 2_000_000,
        timeout_s: float = 15.0,
        path: str = "/",
        keep_latencies: int = 200_000,
    ):
        host, port = base_url.removeprefix("http://").split(":")
        if host != "127.0.0.1":
            raise ValueError("load goes to 127.0.0.1 only")
        self.port = int(port)
        self.mix = mix
        self.threads = threads
        self.duration_s = duration_s
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.path = path
        self.keep_latencies = keep_latencies
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._t0 = 0.0

    def start(self) -> LoadRunner:
        self._t0 = time.monotonic()
        per_thread = max(1, self.max_requests // self.threads)
        for i in range(self.threads):
            t = threading.Thread(target=self._work, args=(i, per_thread), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> LoadResult:
        deadline = self._t0 + self.duration_s + self.timeout_s + 10
        for t in self._workers:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        self.result.elapsed_s = time.monotonic() - self._t0
        return self.result

    def run(self) -> LoadResult:
        """start() then join()."""
        return self.start().join()

    def _record(self, kind: str, status: int, kid: str | None, body: bytes, latency_ms: float) -> None:
        k = KINDS[kind]
        with self._lock:
            r = self.result
            r.sent += 1
            r.by_kind.setdefault(kind, Counter())[status] += 1
            if len(r.latencies_ms) < self.keep_latencies:
                r.latencies_ms.append(latency_ms)
            if kind == "valid" and kid:
                self.mix.ring.used_kids[kid] += 1
            if (k.valid and status != 200) or (not k.valid and status == 200):
                r.violations.append(
                    Violation(
                        round(time.monotonic() - self._t0, 3), kind, status, kid, body[:120].decode("utf-8", "replace")
                    )
                )

    def _work(self, index: int, budget: int) -> None:
        conn: http.client.HTTPConnection | None = None
        seq = self.mix.sequence
        i = index * 7  # threads start at different points of the sequence
        deadline = self._t0 + self.duration_s
        sent = 0
        while sent < budget and not self._stop.is_set() and time.monotonic() < deadline:
            kind = seq[i % len(seq)]
            i += 1
            auth, kid = self.mix.header(kind)
            if auth == "":
                with self._lock:
                    self.result.skipped_no_key += 1
                time.sleep(0.01)
                continue
            sent += 1
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
            headers = {"host": "api.example"}
            if auth is not None:
                headers["authorization"] = auth
            t = time.monotonic()
            try:
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                self._record(kind, resp.status, kid, body, (time.monotonic() - t) * 1000)
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as err:
                with self._lock:
                    self.result.transport_errors[type(err).__name__] += 1
                conn.close()
                conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()


# --------------------------------------------------------------------------
# sampling


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def admin_json(admin_url: str, path: str, timeout: float = 5.0) -> dict:
    """GET a JSON admin endpoint (e.g. "/memory")."""
    host, port = admin_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def wasm_request_counters(stats: dict[str, int]) -> dict[str, int]:
    """The filter's request counters: {"allowed": n, "<reason>": n, ...}."""
    out = {}
    for name, value in stats.items():
        if name.startswith(WASM_METRIC_PREFIX + "requests."):
            rest = name[len(WASM_METRIC_PREFIX + "requests.") :]
            out[rest.removeprefix("denied.")] = value
    return out


def vm_health(stats: dict[str, int]) -> dict[str, int]:
    """Envoy's wasm VM counters that move when a VM fails or is reloaded."""
    keys = ("vm_reload", "vm_reload_failure", "vm_reload_backoff", "vm_reload_success")
    out = {k: v for k, v in stats.items() if k.startswith("wasm.") and k.rsplit(".", 1)[-1] in keys}
    for k in ("wasm.envoy.wasm.runtime.v8.created", "wasm.envoy.wasm.runtime.v8.active", "wasm.wasm_vm_count"):
        if k in stats:
            out[k] = stats[k]
    return out


VM_FAILURE_LOG_MARKERS = ("Function: proxy_on", "wasm trap", "RuntimeError", "Uncaught", "panicked", "VM failed")


def vm_failure_lines(log_text: str) -> list[str]:
    """Envoy log lines saying a wasm call trapped or a VM failed."""
    return [line for line in log_text.splitlines() if any(m in line for m in VM_FAILURE_LOG_MARKERS)]


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    if den == 0:
        return None
    return 60.0 * sum((p[0] - mx) * (p[1] - my) for p in points) / den
