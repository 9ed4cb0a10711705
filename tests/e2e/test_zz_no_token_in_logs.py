"""Runs last (file order): no Envoy log of the whole suite holds a token.

Every harness Envoy scans its own log when it stops (harness.LOG_SCANS /
LOG_LEAKS). This test adds one Envoy of its own that sees tokens in every
location, good and bad, at wasm debug log level, so it checks something even
when run alone.
"""

import time

import jwt_sign as js
import harness
from harness import Envoy, http_request


def test_envoy_logs_never_contain_a_token(echo, wasm_path):
    key = js.new_key("ES256")
    jwks = js.jwks_text([js.public_jwk(key, kid="k1", alg="ES256")])
    cfg = {
        "providers": {
            "p": {
                "issuer": "https://idp",
                "local_jwks": {"inline_string": jwks},
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                "from_params": ["access_token"],
                "from_cookies": ["session"],
                "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}],
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
    }
    now = int(time.time())
    good = js.sign(key, "ES256", {"iss": "https://idp", "sub": "alice", "exp": now + 300}, kid="k1")
    expired = js.sign(key, "ES256", {"iss": "https://idp", "sub": "alice", "exp": now - 300}, kid="k1")
    before = len(harness.LOG_SCANS)
    # Envoy's own HTTP debug logs print request headers; our module logs through
    # the wasm component, which runs at debug here.
    e = Envoy(cfg, backend_port=echo.port, native=False, component_log_level="wasm:debug").start()
    try:
        for tok in (good, expired, js.tamper_signature(good), good + "x"):
            http_request(e.wasm_url, headers={"authorization": f"Bearer {tok}"})
            http_request(e.wasm_url, path=f"/?access_token={tok}")
            http_request(e.wasm_url, headers={"cookie": f"session={tok}"})
        assert "jwt_authn_wasm" in e.log_text(), "the module logged nothing at all: the scan would prove nothing"
    finally:
        e.stop()
    assert len(harness.LOG_SCANS) == before + 1
    assert not harness.LOG_LEAKS, f"tokens found in Envoy logs: {harness.LOG_LEAKS[:5]}"
