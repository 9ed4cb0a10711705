"""Remote JWKS (issue 3) end to end: a real Envoy, the real module, and an
identity provider (tests/e2e/jwks_server.py) that fails on demand.

What is pinned down here, each against wall-clock bounds kept short so the
file runs in about a minute:
- cold start: requests that arrive before the first keys wait for them (one
  fetch for all of them) instead of failing;
- rotation: a token with a new kid is verified on its first request after
  one coalesced refetch; further unknown kids are rate-limited (401, no fetch);
- the IdP down at startup fails fast (401 `Jwks remote fetch is failed`) and
  recovers without restarting Envoy;
- the IdP failing after start (500, garbage, hang, reset, oversize) leaves
  the last good keys serving (stale-if-error) until `stale_if_error` runs out;
- one fetch per refresh period for the whole proxy, whatever the worker count;
- OIDC discovery, skipped unusable keys, and documents that are a failure.

Every test also checks that no wasm VM crashed. Measured latencies are
printed at the end of the module ("remote JWKS timings").

Only the wasm listener is started (native=False): Envoy's native filter would
fetch from the same server and skew the request counts.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt_sign as js
import pytest
from harness import Envoy, Response, free_port, http_request, poll_until, wasm_failures
from jwks_server import OIDC_PATH, Hang, JwksServer, KeyRing, Reply, Reset, error, garbage, oversize

PROVIDER = "idp"
ISS = "https://idp.example"
CLUSTER = "jwks"
STATS = "wasmcustom.jwt_authn_wasm"
DENY_UNAVAILABLE = "Jwks remote fetch is failed"
DENY_NO_KEY = "Jwks doesn't have key to match kid or alg from Jwt"
DENY_BAD_SIGNATURE = "Jwt verification fails"
TICK_S = 0.1  # the filter's root-context tick


# --------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def timings(pytestconfig):
    """Collects measured latencies (seconds) and prints them after the module."""
    found: dict[str, float] = {}
    yield found
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None and found:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line("remote JWKS timings: " + ", ".join(f"{k}={v * 1000:.0f}ms" for k, v in found.items()))


def claims(iss: str = ISS, sub: str = "alice", ttl: int = 600) -> dict:
    return {"iss": iss, "sub": sub, "exp": int(time.time()) + ttl}


def provider(
    jwks_url: str,
    *,
    issuer: str = ISS,
    timeout: str = "2s",
    cache_duration: str = "300s",
    failed_refetch: str | None = None,
    retry_policy: dict | None = None,
    extensions: dict | None = None,
) -> dict:
    """One remote_jwks provider (proto3-JSON of jwt_authn's JwtProvider)."""
    remote: dict = {
        "http_uri": {"uri": jwks_url, "cluster": CLUSTER, "timeout": timeout},
        "cache_duration": cache_duration,
    }
    if failed_refetch is not None:
        remote["async_fetch"] = {"failed_refetch_duration": failed_refetch}
    if retry_policy is not None:
        remote["retry_policy"] = retry_policy
    p: dict = {
        "issuer": issuer,
        "remote_jwks": remote,
        "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}],
    }
    if extensions is not None:
        p["extensions"] = extensions
    return p


def single(p: dict, name: str = PROVIDER) -> dict:
    """A config where every path requires provider `name`."""
    return {"providers": {name: p}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": name}}]}


def start(envoy_factory, config: dict, jwks_port: int, concurrency: int = 1) -> Envoy:
    return envoy_factory(
        config, native=False, concurrency=concurrency, extra_clusters={CLUSTER: ("127.0.0.1", jwks_port)}
    )


def get(envoy: Envoy, token: str | None, path: str = "/") -> Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return http_request(envoy.wasm_url, path=path, headers=headers, timeout=15.0)


def stat(envoy: Envoy, name: str) -> int:
    """A module metric without the wasmcustom.jwt_authn_wasm prefix (must exist)."""
    if name.startswith("requests."):
        time.sleep(0.3)  # request counters are published on the filter's 100 ms tick
    stats = envoy.stats()
    full = f"{STATS}.{name}"
    assert full in stats, f"metric {full} is not defined"
    return stats[full]


def jwks_stat(envoy: Envoy, name: str, prov: str = PROVIDER) -> int:
    return stat(envoy, f"jwks.{prov}.{name}")


def assert_healthy(envoy: Envoy) -> None:
    """No wasm VM failed (Envoy's own wasm counters, crash lines in the log)."""
    assert any(name.endswith(".vm_reload_failure") for name in envoy.stats()), "Envoy's wasm stats are missing"
    problems = wasm_failures(envoy)
    assert not problems, "wasm VM failures:\n" + "\n".join(problems[:20])


def timed_get(envoy: Envoy, token: str, path: str = "/") -> tuple[float, float, Response]:
    """(sent, done, response) with time.monotonic() stamps."""
    sent = time.monotonic()
    resp = get(envoy, token, path)
    return sent, time.monotonic(), resp


def burst(envoy: Envoy, token: str, n: int) -> list[tuple[float, float, Response]]:
    """n requests at once, each on its own connection (so spread over workers)."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: timed_get(envoy, token), range(n)))


# --------------------------------------------------------------------------
# 0. the test server itself (no Envoy): the outages below are only as real as these


def test_jwks_server_behaviours_are_what_the_outage_tests_rely_on():
    ring = KeyRing()
    ring.add("k1")
    with JwksServer(max_hang=5.0) as srv:
        good = ring.jwks_text()
        srv.set("/seq", error(500), garbage(), Reply(200, good, delay=0.3))
        assert http_request(srv.url, path="/seq").status == 500
        resp = http_request(srv.url, path="/seq")
        assert resp.status == 200
        with pytest.raises(ValueError):
            json.loads(resp.body)
        t0 = time.monotonic()
        resp = http_request(srv.url, path="/seq")
        assert resp.status == 200 and json.loads(resp.body) == json.loads(good)
        assert time.monotonic() - t0 >= 0.3
        assert http_request(srv.url, path="/seq").status == 200, "the last behaviour stays"
        assert http_request(srv.url, path="/nothing").status == 404

        big = oversize(good)
        assert len(big.data) == 300 * 1024 and json.loads(big.data) == json.loads(good)

        srv.set("/reset", Reset())
        with pytest.raises(ConnectionResetError):
            http_request(srv.url, path="/reset", timeout=2.0)

        # A hung request ends when the client gives up...
        srv.set("/hang", Hang())
        with pytest.raises(TimeoutError):
            http_request(srv.url, path="/hang", timeout=0.3)
        poll_until(lambda: srv.open_connections() == 0, timeout=2.0, what="hang handler to end")
        # ...or when the server stops (a client that never gives up).
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/hang")
        srv.wait_for_hits("/hang", 2, timeout=2.0)
        kinds = [(h.path, h.kind, h.answered is None) for h in srv.hits()]
        assert kinds == [
            ("/seq", "reply", False),
            ("/seq", "reply", False),
            ("/seq", "reply", False),
            ("/seq", "reply", False),
            ("/nothing", "reply", False),
            ("/reset", "reset", True),
            ("/hang", "hang", True),
            ("/hang", "hang", True),
        ]
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 2.0, "stop() waited for the hanging handler"
    assert srv.open_connections() == 0
    conn.close()


# --------------------------------------------------------------------------
# 1. cold start


def test_cold_start_requests_wait_for_the_first_fetch_and_share_it(envoy_factory, timings):
    delay = 1.5
    ring = KeyRing()
    ring.add("k1")
    token = ring.sign("k1", claims())
    with JwksServer() as srv:
        srv.publish("/jwks", ring, delay=delay)
        envoy = start(envoy_factory, single(provider(srv.url + "/jwks", timeout="5s")), srv.port, concurrency=2)
        results = burst(envoy, token, 6)

        hits = srv.hits("/jwks")
        assert len(hits) == 1, f"one fetch for all waiting requests, got {len(hits)}"
        answered = hits[0].answered
        assert answered is not None
        for sent, done, resp in results:
            assert resp.status == 200, resp.text
            assert resp.echoed_headers()["x-user"] == "alice"
            # Precondition: the request really arrived before any key existed.
            assert sent < answered, "Envoy became ready too late for a cold-start test"
            # It was held until the JWKS answer, not failed early.
            assert done > answered
        timings["cold_start_latency"] = results[0][1] - results[0][0]
        timings["cold_start_after_jwks_answer"] = max(done for _, done, _ in results) - answered
        assert stat(envoy, "requests.allowed") == len(results)
        assert jwks_stat(envoy, "fetch_success") == 1
        assert jwks_stat(envoy, "keys") == 1
        assert srv.count("/jwks") == 1
        assert_healthy(envoy)


def test_cold_start_request_may_still_wait_once_for_a_kid_the_first_answer_lacks(envoy_factory):
    """The IdP rotated while the proxy's first fetch was in flight, so the first
    answer lacks the token's kid: the request that waited for the cold start
    waits once more, for the unknown-kid refetch, instead of getting a 401
    (a request waits at most once per provider and cause)."""
    ring = KeyRing()
    ring.add("k1")
    before_rotation = ring.jwks_text()
    ring.add("k2")
    token = ring.sign("k2", claims())
    with JwksServer() as srv:
        srv.set("/jwks", Reply(200, before_rotation, delay=1.5), Reply(200, ring.jwks_text()))
        envoy = start(envoy_factory, single(provider(srv.url + "/jwks", timeout="5s")), srv.port)
        sent, done, resp = timed_get(envoy, token)

        assert resp.status == 200, resp.text
        assert resp.echoed_headers()["x-user"] == "alice"
        hits = srv.hits("/jwks")
        assert len(hits) == 2, f"cold-start fetch plus one unknown-kid refetch, got {len(hits)}"
        first_answered = hits[0].answered
        assert first_answered is not None
        # Precondition: the request arrived before any key existed.
        assert sent < first_answered, "Envoy became ready too late for a cold-start test"
        assert done > first_answered
        assert jwks_stat(envoy, "unknown_kid_refetch") == 1
        assert jwks_stat(envoy, "requests_paused") == 2
        assert stat(envoy, "requests.allowed") == 1
        assert_healthy(envoy)


# --------------------------------------------------------------------------
# 2. rotation


def test_rotation_new_kid_is_fetched_once_then_unknown_kids_are_rate_limited(envoy_factory, timings):
    interval = 3.0
    ring = KeyRing()
    ring.add("k1")
    with JwksServer() as srv:
        srv.publish("/jwks", ring)
        cfg = single(provider(srv.url + "/jwks", extensions={"unknown_kid_refetch_interval": f"{interval:g}s"}))
        envoy = start(envoy_factory, cfg, srv.port)
        assert get(envoy, ring.sign("k1", claims())).status == 200
        assert srv.count("/jwks") == 1

        # The IdP rotates in k2; tokens signed by it arrive at once on several
        # connections: all wait for one shared refetch.
        ring.add("k2")
        srv.publish("/jwks", ring)
        results = burst(envoy, ring.sign("k2", claims(sub="bob")), 6)
        first_unknown = min(sent for sent, _, _ in results)
        for _, _, resp in results:
            assert resp.status == 200, resp.text
            assert resp.echoed_headers()["x-user"] == "bob"
        timings["rotation_latency"] = max(done - sent for sent, done, _ in results)
        assert srv.count("/jwks") == 2
        assert jwks_stat(envoy, "unknown_kid_refetch") == 1
        assert jwks_stat(envoy, "fetch_success") == 2
        assert jwks_stat(envoy, "keys") == 2
        # Old tokens keep working.
        assert get(envoy, ring.sign("k1", claims())).status == 200

        # k3 is published too, but within the interval an unknown kid gets no
        # new fetch: 401 at once, and the server sees nothing.
        ring.add("k3")
        srv.publish("/jwks", ring)
        k3 = ring.sign("k3", claims(sub="carol"))
        sent, done, resp = timed_get(envoy, k3)
        assert resp.status == 401
        assert resp.text == DENY_NO_KEY
        assert done - first_unknown < interval, "test too slow to observe the rate limit"
        assert srv.count("/jwks") == 2
        assert jwks_stat(envoy, "unknown_kid_refetch") == 1
        assert stat(envoy, "requests.denied.key_not_found") >= 1

        # Once the interval has passed, the next unknown kid refetches again.
        def k3_passes():
            r = get(envoy, k3)
            return r if r.status == 200 else None

        resp = poll_until(k3_passes, timeout=interval + 4, interval=0.2, what="k3 accepted after the interval")
        assert time.monotonic() - first_unknown >= interval - 0.2
        assert resp.echoed_headers()["x-user"] == "carol"
        assert srv.count("/jwks") == 3
        assert jwks_stat(envoy, "unknown_kid_refetch") == 2
        assert_healthy(envoy)


def test_unknown_kid_burst_across_workers_is_one_refetch_counted_once(envoy_factory):
    # Minimal check of the per-proxy coalescing: 8 connections spread over 4
    # workers all present a new kid while the (slow) refetch is in flight.
    ring = KeyRing()
    ring.add("k1")
    with JwksServer() as srv:
        srv.publish("/jwks", ring)
        envoy = start(envoy_factory, single(provider(srv.url + "/jwks")), srv.port, concurrency=4)
        assert get(envoy, ring.sign("k1", claims())).status == 200
        ring.add("k2")
        srv.publish("/jwks", ring, delay=0.5)
        results = burst(envoy, ring.sign("k2", claims(sub="bob")), 8)
        assert [resp.status for _, _, resp in results] == [200] * 8
        assert srv.count("/jwks") == 2, "one refetch for the whole proxy"
        assert jwks_stat(envoy, "fetch_success") == 2
        # The counter counts refetches, not workers that asked for the same one.
        assert jwks_stat(envoy, "unknown_kid_refetch") == 1
        assert_healthy(envoy)


# --------------------------------------------------------------------------
# 3. IdP down at startup


@pytest.mark.parametrize("outage", ["http_500", "connection_refused"])
def test_idp_down_at_startup_fails_fast_then_recovers_without_restart(envoy_factory, timings, outage):
    ring = KeyRing()
    ring.add("k1")
    token = ring.sign("k1", claims())
    retry = {"num_retries": 1, "retry_back_off": {"base_interval": "0.2s", "max_interval": "0.5s"}}
    srv: JwksServer | None = None
    if outage == "http_500":
        srv = JwksServer().start()
        srv.set("/jwks", error(500))
        port = srv.port
    else:
        port = free_port()  # nothing listens there yet
    try:
        cfg = single(provider(f"http://127.0.0.1:{port}/jwks", timeout="1s", retry_policy=retry))
        envoy = start(envoy_factory, cfg, port)

        sent, done, resp = timed_get(envoy, token)
        assert resp.status == 401, resp.text
        assert resp.text == DENY_UNAVAILABLE
        assert done - sent < 3.0
        timings[f"startup_{outage}_deny_latency"] = done - sent
        # Requests after the failed first cycle are answered at once.
        sent, done, resp = timed_get(envoy, token)
        assert (resp.status, resp.text) == (401, DENY_UNAVAILABLE)
        assert done - sent < 1.0
        assert jwks_stat(envoy, "fetch_failed") >= 2  # 1 + num_retries
        assert jwks_stat(envoy, "fetch_success") == 0
        assert stat(envoy, "requests.denied.jwks_unavailable") >= 2
        if srv is not None:
            assert srv.count("/jwks") >= 2

        # The IdP comes up; the same Envoy recovers within the back-off cap.
        if srv is None:
            srv = JwksServer(port=port).start()
        up = time.monotonic()
        srv.publish("/jwks", ring)

        def passes():
            r = get(envoy, token)
            return r if r.status == 200 else None

        poll_until(passes, timeout=5.0, interval=0.05, what="requests to pass once the IdP is up")
        recovery = time.monotonic() - up
        timings[f"startup_{outage}_recovery"] = recovery
        assert recovery < 0.5 + 2 * TICK_S + 1.0  # max_interval + ticks + slack
        assert jwks_stat(envoy, "fetch_success") == 1
        assert_healthy(envoy)
    finally:
        if srv is not None:
            srv.stop()


# --------------------------------------------------------------------------
# 4. IdP down after start: stale-if-error


def test_idp_failing_after_start_keeps_serving_last_good_keys(envoy_factory, timings):
    ring = KeyRing()
    ring.add("k1")
    token = ring.sign("k1", claims())
    tampered = js.tamper_signature(token)
    with JwksServer() as srv:
        good = srv.publish("/jwks", ring)
        cfg = single(provider(srv.url + "/jwks", timeout="1s", cache_duration="1s", failed_refetch="0.25s"))
        envoy = start(envoy_factory, cfg, srv.port)
        srv.wait_answered("/jwks", 1, timeout=5)
        assert get(envoy, token).status == 200

        phases = [
            ("http_500", error(500)),
            ("garbage", garbage()),
            ("hang", Hang()),
            ("reset", Reset()),
            ("oversize", oversize(good)),
        ]
        statuses: list[tuple[str, int]] = []
        stale_seen = False
        # Successful fetches when the outage has begun. With a 1 s
        # cache_duration a refresh may legitimately succeed just before the
        # first phase is switched on; fetches are serialized (one lease), so
        # once the first failure is counted, every earlier fetch has finished.
        success_at_outage: int | None = None
        for name, behaviour in phases:
            before = srv.count("/jwks")
            failed_before = jwks_stat(envoy, "fetch_failed")
            srv.set("/jwks", behaviour)
            # Valid traffic goes on until the filter has tried (and failed on)
            # this behaviour at least once.
            deadline = time.monotonic() + 6.0
            while True:
                resp = get(envoy, token)
                statuses.append((name, resp.status))
                stale_seen = stale_seen or jwks_stat(envoy, "stale_keys_in_use") == 1
                if srv.count("/jwks") > before and jwks_stat(envoy, "fetch_failed") > failed_before:
                    break
                assert time.monotonic() < deadline, f"phase {name}: no failed fetch within 6s"
                time.sleep(0.05)
            kinds = {h.kind for h in srv.hits("/jwks")[before:]}
            assert kinds == {type(behaviour).__name__.lower()}, (name, kinds)
            if success_at_outage is None:
                success_at_outage = jwks_stat(envoy, "fetch_success")

        bad = [(name, status) for name, status in statuses if status != 200]
        assert not bad, f"valid tokens were refused while the IdP failed: {bad}"
        assert stale_seen or jwks_stat(envoy, "stale_keys_in_use") == 1
        assert jwks_stat(envoy, "stale_keys_in_use") == 1
        assert jwks_stat(envoy, "fetch_failed") >= len(phases)
        assert success_at_outage is not None and success_at_outage >= 1
        assert jwks_stat(envoy, "fetch_success") == success_at_outage, "a fetch succeeded during the outage"
        assert jwks_stat(envoy, "keys") == 1
        assert "serving last good keys" in envoy.log_text()
        # Stale keys still verify signatures: a tampered token is refused.
        resp = get(envoy, tampered)
        assert (resp.status, resp.text) == (401, DENY_BAD_SIGNATURE)

        # The IdP recovers: fresh keys, gauge back to 0.
        up = time.monotonic()
        srv.publish("/jwks", ring)
        poll_until(
            lambda: jwks_stat(envoy, "fetch_success") == success_at_outage + 1
            and jwks_stat(envoy, "stale_keys_in_use") == 0,
            timeout=4.0,
            what="a successful refresh after the outage",
        )
        timings["stale_refresh_recovery"] = time.monotonic() - up
        assert get(envoy, token).status == 200
        assert_healthy(envoy)


def test_stale_keys_expire_after_stale_if_error_and_recover(envoy_factory, timings):
    cache_s, stale_s = 1.0, 3.0
    ring = KeyRing()
    ring.add("k1")
    token = ring.sign("k1", claims())
    with JwksServer() as srv:
        srv.publish("/jwks", ring)
        cfg = single(
            provider(
                srv.url + "/jwks",
                timeout="1s",
                cache_duration=f"{cache_s:g}s",
                failed_refetch="0.25s",
                extensions={"stale_if_error": f"{stale_s:g}s"},
            )
        )
        envoy = start(envoy_factory, cfg, srv.port)
        fetched = srv.wait_answered("/jwks", 1, timeout=5)[0].answered
        srv.set("/jwks", error(503))

        log: list[tuple[float, float, Response]] = []
        deadline = fetched + cache_s + stale_s + 4.0
        while time.monotonic() < deadline:
            log.append(timed_get(envoy, token))
            if log[-1][2].status != 200:
                break
            time.sleep(0.05)
        ok = [entry for entry in log if entry[2].status == 200]
        assert ok and log[-1][2].status == 401, f"keys never expired (last: {log[-1][2].status})"
        assert log[-1][2].text == DENY_UNAVAILABLE
        last_ok_sent = ok[-1][0]
        first_denied_done = log[-1][1]
        # Keys served through cache_duration + stale_if_error, and not longer.
        assert first_denied_done - fetched >= cache_s + stale_s - 0.05
        assert last_ok_sent - fetched < cache_s + stale_s + 0.5
        timings["stale_keys_served_for"] = last_ok_sent - fetched
        assert stat(envoy, "requests.denied.jwks_unavailable") >= 1
        poll_until(lambda: jwks_stat(envoy, "stale_keys_in_use") == 0, timeout=1.0, what="stale gauge back to 0")
        assert "serving last good keys" in envoy.log_text()

        # The IdP recovers: requests pass again (retry back-off capped at cache_duration).
        up = time.monotonic()
        srv.publish("/jwks", ring)

        def passes():
            r = get(envoy, token)
            return r if r.status == 200 else None

        poll_until(passes, timeout=5.0, interval=0.05, what="requests to pass after recovery")
        recovery = time.monotonic() - up
        timings["expired_recovery"] = recovery
        assert recovery < cache_s + 2 * TICK_S + 1.0
        assert_healthy(envoy)


def test_healthy_refresh_is_not_reported_as_stale(envoy_factory):
    # A refresh that is merely in flight (here: a slow but healthy IdP) is not
    # an outage: no stale-if-error warning, stale_keys_in_use stays 0.
    ring = KeyRing()
    ring.add("k1")
    token = ring.sign("k1", claims())
    with JwksServer() as srv:
        srv.publish("/jwks", ring, delay=0.4)
        envoy = start(envoy_factory, single(provider(srv.url + "/jwks", cache_duration="1s")), srv.port)
        srv.wait_answered("/jwks", 1, timeout=5)
        gauge_max = 0
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            assert get(envoy, token).status == 200
            gauge_max = max(gauge_max, jwks_stat(envoy, "stale_keys_in_use"))
            time.sleep(0.02)
        assert srv.count("/jwks") >= 3, "refreshes happened"
        assert jwks_stat(envoy, "fetch_failed") == 0
        stale_lines = [line for line in envoy.log_text().splitlines() if "serving last good keys" in line]
        assert not stale_lines, "healthy refreshes reported as stale:\n" + "\n".join(stale_lines[:5])
        assert gauge_max == 0
        assert_healthy(envoy)


# --------------------------------------------------------------------------
# 5. one fetch per proxy


def test_four_workers_fetch_once_per_refresh_period(envoy_factory, timings):
    period, traffic_s = 2.0, 6.0
    ring = KeyRing()
    ring.add("k1")
    token = ring.sign("k1", claims())
    with JwksServer() as srv:
        srv.publish("/jwks", ring)
        began = time.monotonic()
        cfg = single(provider(srv.url + "/jwks", cache_duration=f"{period:g}s"))
        envoy = start(envoy_factory, cfg, srv.port, concurrency=4)
        srv.wait_answered("/jwks", 1, timeout=5)

        statuses: list[int] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + traffic_s

        def client() -> None:
            for _ in range(10_000):  # bounded; stops at stop_at
                if time.monotonic() >= stop_at:
                    return
                status = get(envoy, token).status
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=traffic_s + 20)
        window = time.monotonic() - began

        assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, statuses {set(statuses)}"
        fetches = srv.hits("/jwks")
        assert traffic_s / period <= len(fetches) <= window / period + 2, (len(fetches), window)
        gaps = [b.arrived - a.arrived for a, b in zip(fetches, fetches[1:])]
        assert all(g >= period * 0.75 for g in gaps), f"fetches closer than the period: {gaps}"
        # The module's counter (summed over the 4 workers) agrees with the server.
        poll_until(
            lambda: jwks_stat(envoy, "fetch_success") == srv.count("/jwks"),
            timeout=3.0,
            what="fetch_success == server request count",
        )
        assert jwks_stat(envoy, "fetch_failed") == 0
        assert stat(envoy, "requests.allowed") == len(statuses)
        assert_healthy(envoy)


# --------------------------------------------------------------------------
# 6. OIDC discovery


def test_oidc_discovery_finds_the_jwks(envoy_factory):
    ring = KeyRing()
    ring.add("k1")
    with JwksServer() as srv:
        srv.serve_discovery("/keys")
        srv.publish("/keys", ring)
        cfg = single(
            {
                "issuer": srv.url,
                "extensions": {"oidc_discovery": {"cluster": CLUSTER, "timeout": "2s"}},
                "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}],
            }
        )
        envoy = start(envoy_factory, cfg, srv.port)
        resp = get(envoy, ring.sign("k1", claims(iss=srv.url)))
        assert resp.status == 200, resp.text
        assert resp.echoed_headers()["x-user"] == "alice"

        hits = srv.hits()
        assert [h.path for h in hits] == [OIDC_PATH, "/keys"]
        assert hits[0].answered is not None and hits[0].answered <= hits[1].arrived
        assert jwks_stat(envoy, "fetch_success") == 1
        assert jwks_stat(envoy, "keys") == 1
        # A token from another issuer is still refused.
        other = get(envoy, ring.sign("k1", claims(iss="https://elsewhere.example")))
        assert other.status == 401
        assert_healthy(envoy)


# --------------------------------------------------------------------------
# 7. unusable keys are skipped


def test_unusable_keys_are_skipped_and_counted(envoy_factory):
    ring = KeyRing()
    good = ring.add("good")
    weak = js.new_key("RS256", rsa_bits=1024)
    weak_jwk = js.public_jwk(weak, kid="weak", alg="RS256")
    good_jwk = js.public_jwk(good, kid="good", alg="ES256")
    p384 = js.public_jwk(js.new_key("ES384"), kid="wrongcurve", alg="ES256")
    extra = [
        weak_jwk,
        {"kty": "XYZ", "kid": "odd", "x": "AAAA"},
        {"kty": "EC", "crv": "P-256", "kid": "bad64", "x": "@@not*base64@@", "y": good_jwk["y"]},
        # P-384 coordinates labelled P-256: not a point of the named curve.
        {**p384, "crv": "P-256"},
    ]
    with JwksServer() as srv:
        srv.publish("/jwks", ring, extra=extra)
        envoy = start(envoy_factory, single(provider(srv.url + "/jwks")), srv.port)
        assert get(envoy, ring.sign("good", claims())).status == 200
        assert jwks_stat(envoy, "keys") == 1
        assert jwks_stat(envoy, "skipped_keys") == len(extra)
        assert jwks_stat(envoy, "fetch_success") >= 1

        resp = get(envoy, js.sign(weak, "RS256", claims(), kid="weak"))
        assert resp.status == 401
        assert resp.text == DENY_NO_KEY
        assert get(envoy, ring.sign("good", claims())).status == 200

        log = envoy.log_text()
        assert log.count("skipped key") >= len(extra)
        # Key material never reaches the log.
        assert weak_jwk["n"][:32] not in log
        assert good_jwk["x"] not in log
        assert_healthy(envoy)


# --------------------------------------------------------------------------
# 8. documents that are a fetch failure


def test_bad_documents_at_startup_are_fetch_failures(envoy_factory):
    ring = KeyRing()
    ring.add("k1")
    weak = js.new_key("RS256", rsa_bits=1024)
    with JwksServer() as srv:
        good = ring.jwks_text()
        srv.set("/big", oversize(good))
        srv.serve("/garbage", garbage().body)
        srv.serve("/empty", '{"keys": []}')
        srv.serve("/weak-only", js.jwks_text([js.public_jwk(weak, kid="weak", alg="RS256")]))
        srv.publish("/ok", ring)
        # "/missing" is not served: 404.
        cases = {
            "big": ("/big", {}),
            # Same oversize document with a higher limit: it is the size, not the content.
            "bigok": ("/big", {"max_jwks_bytes": 1024 * 1024}),
            "garbage": ("/garbage", {}),
            "empty": ("/empty", {}),
            "weakonly": ("/weak-only", {}),
            "missing": ("/missing", {}),
            "ok": ("/ok", {}),
        }
        providers = {}
        rules = []
        for name, (path, ext) in cases.items():
            providers[name] = provider(srv.url + path, issuer=f"https://{name}.example", extensions=ext or None)
            rules.append({"match": {"prefix": f"/p/{name}/"}, "requires": {"provider_name": name}})
        envoy = start(envoy_factory, {"providers": providers, "rules": rules}, srv.port)

        passing = {"bigok", "ok"}
        for name in cases:
            token = ring.sign("k1", claims(iss=f"https://{name}.example"))
            resp = get(envoy, token, path=f"/p/{name}/x")
            if name in passing:
                assert resp.status == 200, (name, resp.status, resp.text)
                assert jwks_stat(envoy, "fetch_success", name) == 1
            else:
                assert (resp.status, resp.text) == (401, DENY_UNAVAILABLE), name
                assert jwks_stat(envoy, "fetch_failed", name) >= 1, name
                assert jwks_stat(envoy, "fetch_success", name) == 0, name
                assert jwks_stat(envoy, "keys", name) == 0, name
        assert stat(envoy, "requests.denied.jwks_unavailable") >= len(cases) - len(passing)
        assert srv.count("/big") >= 2
        assert srv.count("/missing") >= 1
        assert_healthy(envoy)
