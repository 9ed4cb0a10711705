"""Self-tests of the e2e harness, run against Envoy's NATIVE jwt_authn listener
(real behaviour, independent of our module), plus the harness plumbing itself
(echo backend, error reporting, validation, stats, access logs)."""

from __future__ import annotations

import json

import jwt_sign as js
import pytest
from harness import EnvoyStartError, envoy_validate, http_request

ISSUER = "https://issuer.example"


def rs256_config() -> dict:
    key = js.key_for("RS256")
    return {
        "providers": {
            "p": {
                "issuer": ISSUER,
                "local_jwks": {"inline_string": js.jwks_text([js.public_jwk(key, "k1", "RS256")])},
                "forward": True,
                "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
    }


def token(**claims) -> str:
    return js.sign(js.key_for("RS256"), "RS256", js.claims(iss=ISSUER, **claims), kid="k1")


@pytest.fixture(scope="module")
def envoy(module_envoy_factory):
    return module_envoy_factory(rs256_config(), access_log_format="%RESPONSE_CODE% %REQ(:PATH)%")


@pytest.mark.native_only
def test_valid_token_reaches_backend(envoy):
    tok = token(sub="alice")
    r = envoy.request("native", "POST", "/hello?x=1", {"authorization": f"Bearer {tok}"}, body=b"abc")
    assert r.status == 200
    echoed = r.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/hello?x=1"
    assert echoed["body_len"] == 3
    assert echoed["headers"]["x-sub"] == "alice"
    assert echoed["headers"]["authorization"] == f"Bearer {tok}"


@pytest.mark.native_only
def test_missing_token_is_401_with_bearer_challenge(envoy):
    r = envoy.request("native", "GET", "/x")
    assert r.status == 401
    assert r.headers["www-authenticate"].startswith("Bearer realm=")
    assert r.text == "Jwt is missing"


@pytest.mark.native_only
def test_expired_token_is_401(envoy):
    r = envoy.request("native", headers={"authorization": f"Bearer {token(exp=1_000_000_000)}"})
    assert r.status == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.text == "Jwt is expired"


@pytest.mark.native_only
def test_tampered_signature_is_401(envoy):
    r = envoy.request("native", headers={"authorization": f"Bearer {js.tamper_signature(token())}"})
    assert r.status == 401
    assert r.text == "Jwt verification fails"


@pytest.mark.native_only
def test_stats_count_native_decisions(envoy):
    before = envoy.stats()
    envoy.request("native")
    envoy.request("native", headers={"authorization": f"Bearer {token()}"})
    after = envoy.stats()
    assert after["http.native.jwt_authn.denied"] == before.get("http.native.jwt_authn.denied", 0) + 1
    assert after["http.native.jwt_authn.allowed"] == before.get("http.native.jwt_authn.allowed", 0) + 1


def test_access_log_lines_are_readable(envoy):
    envoy.request("native", "GET", "/logged-path")
    lines = envoy.access_log("native", contains="/logged-path")
    assert "401 /logged-path" in lines, lines


def test_wasm_listener_runs_the_module(envoy):
    # Smoke check that the wasm listener really runs our module with the
    # plugin config (behaviour in depth: test_differential.py).
    missing = envoy.request("wasm", "GET", "/x")
    assert missing.status == 401
    assert missing.headers["www-authenticate"].startswith("Bearer realm=")
    ok = envoy.request("wasm", "GET", "/x", {"authorization": f"Bearer {token(sub='bob')}"})
    assert ok.status == 200
    assert ok.json()["headers"]["x-sub"] == "bob"


def test_echo_backend_joins_repeated_headers(echo):
    r = http_request(echo.url, "GET", "/a", [("X-Multi", "1"), ("x-multi", "2"), ("X-One", "v")])
    body = r.json()
    assert r.status == 200
    assert body["headers"]["x-multi"] == "1, 2"
    assert body["headers"]["x-one"] == "v"
    assert ["x-multi", "1"] in body["header_list"] and ["x-multi", "2"] in body["header_list"]


def test_written_bootstrap_validates(envoy):
    ok, output = envoy_validate(envoy.config_path)
    assert ok, output


def test_bad_native_config_raises_with_reason(envoy_factory):
    config = {"providers": {"p": {"issuer": ISSUER, "local_jwks": {"inline_string": json.dumps({"keys": []})}}}}
    with pytest.raises(EnvoyStartError) as err:
        envoy_factory(config, wasm=False)
    assert "invalid local jwks" in str(err.value)
    assert "invalid local jwks" in err.value.log


def test_start_expect_config_error_rejects_a_good_config(envoy_factory):
    # The placeholder (and the real filter) accept a valid config, so the
    # helper must refuse to report a config error.
    envoy = envoy_factory(rs256_config(), start=False, native=False)
    with pytest.raises(AssertionError):
        envoy.start_expect_config_error(timeout=15)


def test_wasm_rejects_unparsable_config(envoy_factory):
    # The module must refuse a config it cannot parse (Envoy then exits).
    envoy = envoy_factory({}, start=False, native=False, wasm_config="{not json")
    log = envoy.start_expect_config_error()
    assert "Unable to create Wasm plugin jwt_authn" in log
