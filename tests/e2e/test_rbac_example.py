"""The shipped example examples/rbac/envoy.yaml, run as-is in a real Envoy.

Only what cannot work on a test machine is swapped: ports (free ones), the
module path, and the remote JWKS (replaced by local keys of a test key, so the
test needs no IdP). The RBAC filter, the filter-state names and the access log
format are the example's own.
"""

import json
import time
from pathlib import Path

import yaml

import jwt_sign as js
from harness import Envoy, http_request

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rbac" / "envoy.yaml"
ISS = "http://127.0.0.1:8081"


class ExampleEnvoy(Envoy):
    """Runs the example bootstrap with test ports and local keys."""

    def __init__(self, jwks_text: str, **kw):
        super().__init__({}, native=False, **kw)
        self.jwks_text = jwks_text

    def bootstrap(self) -> dict:
        doc = yaml.safe_load(EXAMPLE.read_text())
        doc["admin"]["address"]["socket_address"]["port_value"] = 0
        listener = doc["static_resources"]["listeners"][0]
        listener["name"] = "wasm"  # the harness waits for a listener of this name
        listener["address"]["socket_address"]["port_value"] = 0
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        # Write the access log to a file the test can read.
        fmt = hcm["access_log"][0]["typed_config"]["log_format"]
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": str(self.access_log_path("wasm")),
                    "log_format": fmt,
                },
            }
        ]
        wasm = hcm["http_filters"][0]["typed_config"]["config"]
        wasm["vm_config"]["code"]["local"]["filename"] = str(self.wasm_path)
        plugin = json.loads(wasm["configuration"]["value"])
        provider = plugin["providers"]["demo_idp"]
        del provider["remote_jwks"]
        provider["local_jwks"] = {"inline_string": self.jwks_text}
        wasm["configuration"]["value"] = json.dumps(plugin)
        for c in doc["static_resources"]["clusters"]:
            if c["name"] == "backend":
                addr = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                addr["socket_address"]["port_value"] = self.backend_port
        return doc


def token(key, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISS, "aud": "demo-api", "iat": now, "exp": now + 300, **claims}
    return js.sign(key, "ES256", payload, kid="k1")


def test_rbac_after_the_module_uses_the_verified_role_and_the_log_prints_the_subject(echo):
    key = js.new_key("ES256")
    jwks = js.jwks_text([js.public_jwk(key, kid="k1", alg="ES256")])
    envoy = ExampleEnvoy(jwks, backend_port=echo.port).start()
    try:
        admin = token(key, sub="alice", role="admin")
        merchant = token(key, sub="bob", role="merchant")
        url = envoy.wasm_url
        assert http_request(url, path="/admin/panel", headers={"authorization": f"Bearer {admin}"}).status == 200
        r = http_request(url, path="/admin/panel", headers={"authorization": f"Bearer {merchant}"})
        assert r.status == 403 and "RBAC" in r.text
        # No token: the module answers first (401); RBAC never sees the request.
        assert http_request(url, path="/admin/panel").status == 401
        # A client cannot plant the role: a header or a bad token gives no filter state.
        r = http_request(url, path="/admin/panel", headers={"authorization": f"Bearer {js.tamper_signature(admin)}"})
        assert r.status == 401
        # Non-admin paths pass for any verified user.
        assert http_request(url, path="/api/orders", headers={"authorization": f"Bearer {merchant}"}).status == 200

        log_path = envoy.access_log_path("wasm")
        deadline = time.monotonic() + 5
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = log_path.read_text().splitlines() if log_path.exists() else []
            if len(lines) >= 5:
                break
            time.sleep(0.05)
        assert "GET /admin/panel 200 sub=alice role=admin" in lines
        assert "GET /admin/panel 403 sub=bob role=merchant" in lines
        assert "GET /admin/panel 401 sub=- role=-" in lines
        assert "GET /api/orders 200 sub=bob role=merchant" in lines
    finally:
        envoy.stop()


def test_the_example_config_is_valid_for_envoy():
    from harness import envoy_validate

    doc = yaml.safe_load(EXAMPLE.read_text())
    wasm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
    wasm["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(ROOT / "dist" / "jwt-authn.wasm")
    path = Path(__file__).parent / ".rbac-example-validate.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        ok, out = envoy_validate(path)
        assert ok, out[-2000:]
    finally:
        path.unlink()
