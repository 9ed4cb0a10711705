"""Faults under load: a flapping, rotating JWKS endpoint and hostile requests.

test_jwks_flapping_under_load: while client threads send a mix of valid and
invalid tokens for ~15 s, the JWKS endpoint answers each fetch from a
schedule of faults (500, garbage, oversize, hang, connection reset, slow,
truncated, empty key set, interleaved with good answers, then a long outage)
and rotates its keys every 3 s (the previous key stays published for one
rotation). The invariants:
  - no request with an invalid / expired / missing / forged token gets 200,
    ever (the oversize body carries the attacker's key: a filter that used
    it would let the forged tokens in);
  - valid tokens signed with a key the filter has fetched keep passing
    through every fault (last good keys);
  - the VM never fails: Envoy's wasm reload counters stay 0, no VM is
    re-created, no trap in the log, and the filter's request counters keep
    counting second after second.

test_hostile_requests_change_nothing: 64 KiB of request headers (many or
one), a 1 MiB body, HTTP/2 with prior knowledge (curl), also with 60 KiB of
headers (Envoy's HTTP/2 codec drops the connection above 64 KiB), give every
token kind the same verdict as a plain HTTP/1.1 request, on the wasm listener
and on the native one. test_repeated_authorization_headers: many or mixed
`authorization` headers give the native verdict and never let an invalid
token in (HTTP/1.1 and HTTP/2).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt_sign as js
import pytest
from harness import BenchEnvoy, http_request

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import loadkit  # noqa: E402

LOAD_S = 15.0
ROTATE_EVERY_S = 3.0
# Applied to successive JWKS fetches (the filter refetches about once a
# second): every fault within the first 10 fetches, between good answers,
# then a long outage in which the keys go stale and must still be served.
FLAP_SCHEDULE = [
    "good", "status500", "garbage", "oversize", "hang", "good", "reset", "slow", "truncated", "empty", "good",
    "status500", "hang", "garbage", "reset", "oversize", "empty", "truncated", "status500", "good",
]  # fmt: skip


def counters_total(envoy: BenchEnvoy) -> int:
    return sum(loadkit.wasm_request_counters(envoy.stats()).values())


def send_each(envoy: BenchEnvoy, mix: loadkit.TokenMix, statuses: dict[str, list]) -> None:
    """One request per kind in `statuses`; a transport failure is recorded as its exception name."""
    for kind, seen in statuses.items():
        auth, _ = mix.header(kind)
        if auth == "":
            continue
        headers = {"authorization": auth} if auth else {}
        try:
            seen.append(http_request(envoy.wasm_url, headers=headers, timeout=8).status)
        except OSError as err:
            seen.append(type(err).__name__)


def _remote_config(server) -> dict:
    """One remote provider on the flaky JWKS server (1 s timeout and refresh), required everywhere."""
    return {
        "providers": {"idp": loadkit.remote_provider(server.uri, timeout_s=1.0, cache_s=1.0)},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }


@pytest.mark.parametrize("mode", [m for m in loadkit.FAULT_MODES if m != "good"])
def test_each_jwks_fault_alone(echo, wasm_path, envoy_bin, mode):
    """One fault at a time (after one good fetch): keys kept, VM alive.

    Pinpoints which fault breaks the filter when the load test fails.
    """
    ring = loadkit.KeyRing(algs=("ES256",))
    mix = loadkit.TokenMix(ring)
    server = loadkit.FlakyJwksServer(ring, ["good", mode, mode, mode], forged_jwk=mix.forged_jwk(), hang_s=2.0).start()
    cfg = _remote_config(server)
    envoy = BenchEnvoy(
        cfg,
        backend_port=echo.port,
        native=False,
        extra_clusters={"jwks": ("127.0.0.1", server.port)},
        wasm_path=wasm_path,
        envoy_bin=envoy_bin,
    )
    statuses: dict[str, list[int]] = {"valid": [], "missing": [], "unknown_kid": []}
    try:
        envoy.start()
        # Requests all along (a few per 100 ms), until the fault was served twice, bounded.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and server.hits[mode] < 2:
            send_each(envoy, mix, statuses)
            time.sleep(0.1)
        time.sleep(1.5)  # the last fault reaches the filter (a hang only after its 1 s timeout)
        send_each(envoy, mix, statuses)
        stats = envoy.stats()
        log = envoy.log_text()
    finally:
        envoy.cleanup()
        server.stop()

    assert server.hits[mode] >= 2, f"the {mode} fault was not served twice: {dict(server.hits)}"
    crashes = loadkit.vm_failure_lines(log)
    assert crashes == [], f"the VM failed on JWKS fault {mode!r}: {crashes[:3]}"
    assert set(statuses["valid"]) == {200}, f"valid tokens after {mode}: {statuses['valid']}"
    assert set(statuses["missing"]) == {401}, statuses["missing"]
    assert set(statuses["unknown_kid"]) == {401}, statuses["unknown_kid"]
    counter = "fetch_success" if mode == "slow" else "fetch_failed"  # slow but in time is a success
    assert sum(v for k, v in stats.items() if k.endswith(f"jwks.idp.{counter}")) >= 2, stats


def test_jwks_flapping_under_load(echo, wasm_path, envoy_bin):
    ring = loadkit.KeyRing(algs=("ES256", "RS256"))
    mix = loadkit.TokenMix(ring)
    server = loadkit.FlakyJwksServer(ring, FLAP_SCHEDULE, forged_jwk=mix.forged_jwk(), hang_s=3.0, slow_s=0.4).start()
    cfg = _remote_config(server)
    envoy = BenchEnvoy(
        cfg,
        backend_port=echo.port,
        native=False,
        concurrency=2,
        extra_clusters={"jwks": ("127.0.0.1", server.port)},
        wasm_path=wasm_path,
        envoy_bin=envoy_bin,
    )
    stop = threading.Event()
    try:
        envoy.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            auth, _ = mix.header("valid")
            if auth and http_request(envoy.wasm_url, headers={"authorization": auth}).status == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the filter never accepted a valid token after the first good fetch\n" + envoy.log_tail())
        health_before = loadkit.vm_health(envoy.stats())

        def rotate():
            end = time.monotonic() + LOAD_S + 1
            while not stop.wait(ROTATE_EVERY_S) and time.monotonic() < end:
                ring.rotate()

        totals: list[tuple[float, int]] = []

        def monitor():
            end = time.monotonic() + LOAD_S + 5
            while not stop.wait(1.0) and time.monotonic() < end:
                totals.append((time.monotonic(), counters_total(envoy)))

        threads = [threading.Thread(target=rotate, daemon=True), threading.Thread(target=monitor, daemon=True)]
        for t in threads:
            t.start()
        result = loadkit.LoadRunner(envoy.wasm_url, mix, threads=4, duration_s=LOAD_S, max_requests=200_000).run()
        stop.set()
        for t in threads:
            t.join(timeout=10)
        assert envoy.alive(), "envoy exited under load\n" + envoy.log_tail()
        stats = envoy.stats()
        log = envoy.log_text()
    finally:
        stop.set()
        envoy.cleanup()
        server.stop()

    # The VM never failed and kept counting (checked first: a dead VM explains any 503 below).
    health_after = loadkit.vm_health(stats)
    assert {k: v for k, v in health_after.items() if "vm_reload" in k and v} == {}, health_after
    assert health_after.get("wasm.envoy.wasm.runtime.v8.created") == health_before.get(
        "wasm.envoy.wasm.runtime.v8.created"
    )
    crashes = loadkit.vm_failure_lines(log)
    assert crashes == [], f"a wasm VM failed under JWKS faults: {crashes[:3]}"
    assert len(totals) >= 10, totals
    during = [n for t, n in totals][: int(LOAD_S) - 1]
    stalls = [i for i in range(2, len(during)) if during[i] <= during[i - 2]]
    assert not stalls, f"filter counters stopped moving (2 s windows ending at samples {stalls}): {during}"

    summary = result.summary()
    assert not result.violations, f"verdicts broken under JWKS faults: {summary['violation_samples']}"
    assert not result.transport_errors, f"transport errors: {dict(result.transport_errors)}"
    valid_ok = result.by_kind.get("valid", {}).get(200, 0)
    assert valid_ok > 200, f"too few valid requests passed: {summary['by_kind']}"
    for kind in loadkit.KINDS:
        assert result.by_kind.get(kind), f"token kind {kind} was never sent: {summary['by_kind']}"

    # The faults really happened, and the keys really rotated under the filter.
    missing_modes = [m for m in loadkit.FAULT_MODES if server.hits[m] == 0]
    assert not missing_modes, f"JWKS modes never exercised: {missing_modes} (hits {dict(server.hits)})"
    fetch_failed = sum(v for k, v in stats.items() if k.endswith("jwks.idp.fetch_failed"))
    fetch_success = sum(v for k, v in stats.items() if k.endswith("jwks.idp.fetch_success"))
    assert fetch_failed >= 6 and fetch_success >= 3, (fetch_failed, fetch_success, dict(server.hits))
    assert ring.rotations >= 3
    assert sum(1 for n in ring.used_kids.values() if n) >= 2, f"valid tokens used keys {dict(ring.used_kids)}"


# --------------------------------------------------------------------------
# hostile requests: same verdicts as plain HTTP/1.1


PAD_64K = [(f"x-pad-{i:02d}", "p" * 1024) for i in range(64)]
# Over HTTP/2, Envoy 1.40 closes the connection (before any filter, native
# or wasm) once a header block passes 64 KiB, whatever max_request_headers_kb
# says; 60 KiB of headers is the largest round size that reaches the filters.
PAD_60K = PAD_64K[:60]
# Just under 64 KiB: Python's echo upstream refuses header lines over 64 KiB.
BIG_HEADER = [("x-big", "b" * (64 * 1024 - 64))]
BODY_1M = b"z" * (1 << 20)


@pytest.fixture(scope="module")
def hostile_env(echo, wasm_path, envoy_bin):
    es, rs = js.new_key("ES256"), js.new_key("RS256")
    jwks = js.jwks_text([js.public_jwk(es, "es", "ES256"), js.public_jwk(rs, "rs", "RS256")])
    cfg = {
        "providers": {
            "a": {
                "issuer": loadkit.ISSUER,
                "local_jwks": {"inline_string": jwks},
                "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}],
    }
    valid = js.sign(es, "ES256", js.claims(iss=loadkit.ISSUER), kid="es")
    tokens = {
        "valid": valid,
        "valid_rs256": js.sign(rs, "RS256", js.claims(iss=loadkit.ISSUER), kid="rs"),
        "bad_signature": js.tamper_signature(valid),
        "expired": js.sign(es, "ES256", js.claims(iss=loadkit.ISSUER, lifetime=-3600), kid="es"),
        "wrong_issuer": js.sign(es, "ES256", js.claims(iss="https://evil.example"), kid="es"),
        "malformed": "not.a.jwt!",
        "huge": "A" * (32 * 1024),  # over the 8 KiB token limit, under HTTP/2's 64 KiB block
        "missing": None,
    }
    envoy = BenchEnvoy(
        cfg, backend_port=echo.port, max_request_headers_kb=256, wasm_path=wasm_path, envoy_bin=envoy_bin
    ).start()
    try:
        yield envoy, tokens, loadkit.vm_health(envoy.stats())
    finally:
        envoy.cleanup()


def expected_status(kind: str) -> int:
    return 200 if kind.startswith("valid") else 401


def auth_headers(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("authorization", f"Bearer {token}")]


def h1(envoy, side, token, extra=(), body=None):
    method = "POST" if body is not None else "GET"
    return http_request(envoy.url(side), method, "/p", [*auth_headers(token), *extra], body, timeout=30)


def h2(envoy, side, token, extra=()) -> tuple[int, str, str]:
    """(status, body, http_version) of one HTTP/2 prior-knowledge request via curl."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl (with HTTP/2) is needed for the HTTP/2 checks")
    cmd = [
        curl,
        "-sS",
        "--http2-prior-knowledge",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code} %{http_version}",
    ]
    for name, value in [*auth_headers(token), *extra]:
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(envoy.url(side) + "/p")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    body, _, last = out.stdout.rpartition("\n")
    status, version = last.split()
    return int(status), body, version


def check_upstream(resp_body: str, extra_len: int | None = None) -> None:
    import json

    echoed = json.loads(resp_body)
    assert echoed["headers"].get("x-sub") == "user-1", echoed["headers"].get("x-sub")
    if extra_len is not None:
        assert echoed["body_len"] == extra_len


@pytest.mark.parametrize("side", ["wasm", "native"])
@pytest.mark.parametrize(
    "kind", ["valid", "valid_rs256", "bad_signature", "expired", "wrong_issuer", "malformed", "huge", "missing"]
)
def test_hostile_requests_change_nothing(hostile_env, side, kind):
    envoy, tokens, _ = hostile_env
    token = tokens[kind]
    want = expected_status(kind)
    allowed = want == 200

    plain = h1(envoy, side, token)
    assert plain.status == want, plain.text
    if allowed:
        check_upstream(plain.text)

    for name, extra in (("64 KiB in 64 headers", PAD_64K), ("one 64 KiB header", BIG_HEADER)):
        r = h1(envoy, side, token, extra)
        assert r.status == want, f"{name}: {r.status} {r.text[:200]}"
        if allowed:
            check_upstream(r.text)

    r = h1(envoy, side, token, body=BODY_1M)
    assert r.status == want, f"1 MiB body: {r.status} {r.text[:200]}"
    if allowed:
        check_upstream(r.text, extra_len=len(BODY_1M))

    h2_variants = [("h2", ())]
    if len(token or "") < 8192:  # the 64 KiB token plus padding would pass the codec's limit
        h2_variants.append(("h2 + 60 KiB headers", PAD_60K))
    for name, extra in h2_variants:
        status, body, version = h2(envoy, side, token, extra)
        assert version == "2", f"{name}: curl spoke HTTP/{version}"
        assert status == want, f"{name}: {status} {body[:200]}"
        if allowed:
            check_upstream(body)


@pytest.mark.parametrize(
    "case",
    [
        ("valid", "valid"),
        ("valid", "bad_signature"),
        ("bad_signature", "valid"),
        ("expired", "valid"),
        ("valid", "malformed"),
    ],
    ids="+".join,
)
@pytest.mark.parametrize("proto", ["h1", "h2"])
def test_repeated_authorization_headers(hostile_env, case, proto):
    """Two authorization headers (and 50 copies): native's verdict, never 200 with an invalid one."""
    envoy, tokens, _ = hostile_env
    first, second = (tokens[k] for k in case)
    variants = {
        "pair": [("authorization", f"Bearer {first}"), ("authorization", f"Bearer {second}")],
        "fifty": [("authorization", f"Bearer {first}")] * 25 + [("authorization", f"Bearer {second}")] * 25,
    }
    for name, headers in variants.items():
        got = {}
        for side in ("wasm", "native"):
            if proto == "h1":
                got[side] = h1(envoy, side, None, headers).status
            else:
                got[side] = h2(envoy, side, None, headers)[0]
        assert got["wasm"] == got["native"], f"{name}: wasm {got['wasm']} vs native {got['native']}"
        if "valid" not in case[0] or "valid" not in case[1]:
            assert got["wasm"] != 200, f"{name}: an invalid token among several was let in"


def test_hostile_requests_did_not_hurt_the_vm(hostile_env):
    """Runs last in this module: nothing above crashed or reloaded the VM."""
    envoy, _, before = hostile_env
    assert envoy.alive()
    after = loadkit.vm_health(envoy.stats())
    assert {k: v for k, v in after.items() if "vm_reload" in k and v} == {}
    assert after.get("wasm.envoy.wasm.runtime.v8.created") == before.get("wasm.envoy.wasm.runtime.v8.created")
    assert loadkit.vm_failure_lines(envoy.log_text()) == []
