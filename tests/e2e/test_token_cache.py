"""Issue 9 end to end: the proxy-wide verified-token cache and the host
signature path, each against a real Envoy and the real module.

- One signature check per distinct token per proxy: with four workers, a
  token verified on one worker is taken from shared data on the others
  (`signature_verifications` counts the crypto, `token_cache.*` the hits).
  Without the shared layer the same traffic needs more checks, which is what
  native jwt_authn's per-worker cache does.
- The cache dies with the key set: after a JWKS change the same tokens are
  checked again, and tokens whose key left the set are refused, cache or not.
- Where it lives: a worker that serves its configuration alone keeps the
  cache in its own memory (gauge `token_cache.in_vm_memory`), with the same
  hits; when a second worker starts serving, the first publishes what it
  holds to shared data and the newcomer verifies none of it again.
- When it does not hit (every token new), only 1 new token in 16 takes part
  (gauge `token_cache.sampled`), and all of them again once it hits.
- The host's `verify_signature` (BoringSSL) and the built-in verifier
  (`extensions.signature_backend: portable`) agree on every token of a
  table of valid and broken signatures, for every algorithm.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import jwt_sign as js
from harness import Envoy, http_request, poll_until, wasm_failures
from jwks_server import JwksServer, KeyRing

ISS = "https://issuer.example"
STATS = "wasmcustom.jwt_authn_wasm"
FLUSH_S = 3.0  # counters are published on the 100 ms tick; generous bound


def stat(envoy: Envoy, name: str) -> int:
    return envoy.stats().get(f"{STATS}.{name}", 0)


def get(envoy: Envoy, token: str) -> int:
    # A new connection per request, so requests spread over the workers.
    return http_request(envoy.wasm_url, headers={"authorization": f"Bearer {token}"}, timeout=15.0).status


def local_config(jwks: str, extensions: dict | None = None) -> dict:
    cfg: dict = {
        "providers": {
            "idp": {
                "issuer": ISS,
                "local_jwks": {"inline_string": jwks},
                "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}],
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }
    if extensions:
        cfg["extensions"] = extensions
    return cfg


def assert_healthy(envoy: Envoy) -> None:
    problems = wasm_failures(envoy)
    assert not problems, "wasm VM failures:\n" + "\n".join(problems[:20])


def send_rounds(envoy: Envoy, tokens: list[str], rounds: int) -> None:
    for _ in range(rounds):
        for t in tokens:
            assert get(envoy, t) == 200


def test_one_signature_check_per_distinct_token_per_proxy(envoy_factory):
    key = js.new_key("ES256")
    cfg = local_config(js.jwks_text([js.public_jwk(key, "k1", "ES256")]))
    tokens = [js.sign(key, "ES256", js.claims(iss=ISS, sub=f"u{i}"), kid="k1") for i in range(40)]
    envoy = envoy_factory(cfg, native=False, concurrency=4)
    # Round 1: every token is new to the proxy.
    send_rounds(envoy, tokens, 1)
    poll_until(lambda: stat(envoy, "signature_verifications") == 40, FLUSH_S, what="40 checks")
    # Rounds 2-4 spread over other connections (and workers): no new check.
    send_rounds(envoy, tokens, 3)
    hits = poll_until(
        lambda: (n := stat(envoy, "token_cache.local_hit") + stat(envoy, "token_cache.shared_hit")) >= 120 and n,
        FLUSH_S,
        what="120 cache hits",
    )
    assert hits == 120
    assert stat(envoy, "signature_verifications") == 40, "one check per distinct token per proxy"
    assert stat(envoy, "token_cache.shared_hit") > 0, "other workers took the verdict from shared data"
    assert stat(envoy, "token_cache.miss") == 40
    assert stat(envoy, "wasm_memory_bytes") > 0
    assert stat(envoy, "token_cache.in_vm_memory") == 0, "four workers serve: shared data"
    assert_healthy(envoy)


def test_without_the_shared_layer_workers_check_again(envoy_factory):
    # The control: same traffic, shared cache off. Each worker verifies on its
    # own (as native jwt_authn's per-worker cache does), so more checks.
    key = js.new_key("ES256")
    cfg = local_config(js.jwks_text([js.public_jwk(key, "k1", "ES256")]), {"shared_token_cache_size": 0})
    tokens = [js.sign(key, "ES256", js.claims(iss=ISS, sub=f"u{i}"), kid="k1") for i in range(40)]
    envoy = envoy_factory(cfg, native=False, concurrency=4)
    send_rounds(envoy, tokens, 4)
    poll_until(
        lambda: stat(envoy, "token_cache.local_hit") + stat(envoy, "signature_verifications") == 160,
        FLUSH_S,
        what="all 160 requests counted",
    )
    assert stat(envoy, "token_cache.shared_hit") == 0
    assert stat(envoy, "signature_verifications") > 40


class KeepAlive:
    """One keep-alive connection: every request on it goes to the same worker."""

    def __init__(self, base_url: str):
        u = urllib.parse.urlsplit(base_url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15.0)

    def get(self, token: str) -> int:
        self.conn.request("GET", "/", headers={"authorization": f"Bearer {token}"})
        resp = self.conn.getresponse()
        resp.read()
        return resp.status

    def close(self) -> None:
        self.conn.close()


def test_a_lone_worker_keeps_the_cache_in_its_memory(envoy_factory):
    key = js.new_key("ES256")
    cfg = local_config(js.jwks_text([js.public_jwk(key, "k1", "ES256")]))
    tokens = [js.sign(key, "ES256", js.claims(iss=ISS, sub=f"u{i}"), kid="k1") for i in range(40)]
    envoy = envoy_factory(cfg, native=False, concurrency=1)
    # The worker joins the roster on its first request.
    assert get(envoy, js.sign(key, "ES256", js.claims(iss=ISS, sub="first"), kid="k1")) == 200
    # Envoy's main-thread VM and its configuration canary never serve: after
    # a second alone, the worker keeps the verdicts in its own memory.
    poll_until(lambda: stat(envoy, "token_cache.in_vm_memory") == 1, 5.0, what="cache in the VM")
    send_rounds(envoy, tokens, 2)
    # Round 2 misses the per-VM cache (a token enters it on its second
    # offer) and hits the proxy-wide one, here in the VM.
    poll_until(lambda: stat(envoy, "token_cache.shared_hit") >= 40, FLUSH_S, what="40 hits")
    time.sleep(0.3)
    assert stat(envoy, "signature_verifications") == 41, "one check per token"
    assert stat(envoy, "token_cache.shared_hit") == 40
    assert stat(envoy, "token_cache.in_vm_memory") == 1
    assert_healthy(envoy)


def test_a_second_worker_takes_over_what_the_first_verified_alone(envoy_factory):
    key = js.new_key("ES256")
    cfg = local_config(js.jwks_text([js.public_jwk(key, "k1", "ES256")]))
    tokens = [js.sign(key, "ES256", js.claims(iss=ISS, sub=f"u{i}"), kid="k1") for i in range(30)]
    probes = [js.sign(key, "ES256", js.claims(iss=ISS, sub=f"probe{i}"), kid="k1") for i in range(200)]
    envoy = envoy_factory(cfg, native=False, concurrency=2)
    first = KeepAlive(envoy.wasm_url)
    try:
        assert first.get(js.sign(key, "ES256", js.claims(iss=ISS, sub="first"), kid="k1")) == 200
        poll_until(lambda: stat(envoy, "token_cache.in_vm_memory") == 1, 5.0, what="first worker alone")
        assert [first.get(t) for t in tokens] == [200] * len(tokens)
        poll_until(lambda: stat(envoy, "signature_verifications") == 31, FLUSH_S, what="31 checks")
        # New connections until one lands on the other worker: it joins, and
        # on its next tick the first worker publishes its buckets.
        sent = 0
        for p in probes:
            assert get(envoy, p) == 200
            sent += 1
            time.sleep(0.05)
            if stat(envoy, "token_cache.in_vm_memory") == 0:
                break
        assert stat(envoy, "token_cache.in_vm_memory") == 0, "the second worker never served"
        time.sleep(0.3)
        checks = stat(envoy, "signature_verifications")
        assert checks == 31 + sent
        # Every token the first worker verified alone, on fresh connections
        # (half of them on the second worker): not one new check.
        send_rounds(envoy, tokens, 2)
        time.sleep(FLUSH_S / 3)
        assert stat(envoy, "signature_verifications") == checks
    finally:
        first.close()
    assert_healthy(envoy)


def test_a_cache_that_does_not_hit_samples_new_tokens_until_it_hits(envoy_factory):
    key = js.new_key("ES256")
    # 128 entries: a window of 4,096 lookups decides (the minimum).
    cfg = local_config(js.jwks_text([js.public_jwk(key, "k1", "ES256")]), {"shared_token_cache_size": 128})
    fresh = [js.sign(key, "ES256", js.claims(iss=ISS, sub=f"n{i}"), kid="k1") for i in range(4400)]
    envoy = envoy_factory(cfg, native=False, concurrency=1)

    def send_all(tokens: list[str]) -> list[int]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda t: get(envoy, t), tokens))

    assert send_all(fresh) == [200] * len(fresh)
    poll_until(lambda: stat(envoy, "token_cache.sampled") == 1, FLUSH_S, what="sampling")
    checks = stat(envoy, "signature_verifications")
    # Tokens that keep coming back: the subset among them hits, and the
    # cache takes every token again within one subset window.
    again = fresh[:128]
    for _ in range(40):
        assert send_all(again) == [200] * len(again)
        if stat(envoy, "token_cache.sampled") == 0:
            break
    assert stat(envoy, "token_cache.sampled") == 0, "back to every token"
    assert stat(envoy, "signature_verifications") > checks
    assert_healthy(envoy)


def test_shared_verdicts_die_with_the_key_set(envoy_factory):
    ring = KeyRing()
    ring.add("k1")
    with JwksServer() as srv:
        srv.publish("/jwks", ring)
        cfg = {
            "providers": {
                "idp": {
                    "issuer": ISS,
                    "remote_jwks": {
                        "http_uri": {"uri": srv.url + "/jwks", "cluster": "jwks", "timeout": "2s"},
                        "cache_duration": "1s",
                    },
                }
            },
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
        }
        envoy = envoy_factory(cfg, native=False, concurrency=2, extra_clusters={"jwks": ("127.0.0.1", srv.port)})
        tokens = [ring.sign("k1", js.claims(iss=ISS, sub=f"u{i}")) for i in range(5)]
        send_rounds(envoy, tokens, 2)
        poll_until(lambda: stat(envoy, "signature_verifications") == 5, FLUSH_S, what="5 checks")
        # Same k1, one more key: a new key set, so every token is checked again once.
        ring.add("k2")
        srv.publish("/jwks", ring)
        fetched = stat(envoy, "jwks.idp.fetch_success")
        poll_until(lambda: stat(envoy, "jwks.idp.fetch_success") > fetched, 5.0, what="refetch")
        time.sleep(0.3)  # every VM reloads the new set on its next tick
        send_rounds(envoy, tokens, 2)
        poll_until(lambda: stat(envoy, "signature_verifications") >= 10, FLUSH_S, what="re-checks")
        time.sleep(0.3)
        assert stat(envoy, "signature_verifications") == 10, "each token checked again once, then cached"
        # k1 leaves the set: its tokens are refused although they were cached.
        ring.remove("k1")
        srv.publish("/jwks", ring)
        fetched = stat(envoy, "jwks.idp.fetch_success")
        poll_until(lambda: stat(envoy, "jwks.idp.fetch_success") > fetched, 5.0, what="refetch")
        time.sleep(0.3)
        assert [get(envoy, t) for t in tokens] == [401] * len(tokens)
        assert get(envoy, ring.sign("k2", js.claims(iss=ISS))) == 200
        assert_healthy(envoy)


# --------------------------------------------------------------------------
# host verify_signature vs the built-in verifier

ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512", "EdDSA")


def _with_sig(token: str, sig: bytes) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{js.b64url(sig)}"


def _ec_order(alg: str) -> int:
    return {
        "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        "ES384": int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
        ),
        "ES512": int("01FF" + "FFFFFFFF" * 7 + "FFFFFFFA" + "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16),
    }[alg]


def signature_table() -> tuple[str, list[tuple[str, str, bool]]]:
    """(jwks text, [(label, token, should pass)]) over every algorithm."""
    keys, cases = [], []
    for alg in ALGS:
        key, other = js.new_key(alg), js.new_key(alg)
        kid = alg.lower()
        keys.append(js.public_jwk(key, kid, alg))
        for i in range(10):
            good = js.sign(key, alg, js.claims(iss=ISS, sub=f"{alg}-{i}"), kid=kid)
            sig = js.b64url_decode(good.split(".")[2])
            cases.append((f"{alg} valid {i}", good, True))
            cases.append((f"{alg} bit flip {i}", js.tamper_signature(good), False))
            cases.append((f"{alg} payload changed {i}", js.tamper_payload(good, sub="mallory"), False))
            flipped = bytearray(sig)
            flipped[i] ^= 0x80
            cases.append((f"{alg} byte {i} flipped", _with_sig(good, bytes(flipped)), False))
        good = js.sign(key, alg, js.claims(iss=ISS), kid=kid)
        sig = js.b64url_decode(good.split(".")[2])
        wrong_key = js.sign(other, alg, js.claims(iss=ISS), kid=kid)
        cases += [
            (f"{alg} other key", wrong_key, False),
            (f"{alg} truncated", _with_sig(good, sig[:-1]), False),
            (f"{alg} one byte longer", _with_sig(good, sig + b"\0"), False),
            (f"{alg} all zero", _with_sig(good, bytes(len(sig))), False),
            (f"{alg} all ones", _with_sig(good, b"\xff" * len(sig)), False),
        ]
        if alg.startswith("ES"):
            half = len(sig) // 2
            r, s = int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
            n = _ec_order(alg)
            for label, rr, ss in (("r=0", 0, s), ("s=0", r, 0), ("s=n", r, n), ("r=n", n, s), ("r+n", r + n, s)):
                if rr.bit_length() <= half * 8 and ss.bit_length() <= half * 8:
                    raw = rr.to_bytes(half, "big") + ss.to_bytes(half, "big")
                    cases.append((f"{alg} {label}", _with_sig(good, raw), False))
            # High-S (n - s) is a valid ECDSA signature; both sides must agree on it.
            cases.append((f"{alg} high-s", _with_sig(good, sig[:half] + (n - s).to_bytes(half, "big")), None))
    return js.jwks_text(keys), cases


def test_host_and_portable_verifiers_agree(envoy_factory):
    jwks, cases = signature_table()
    verdicts: dict[str, list[int]] = {}
    for backend in ("auto", "portable"):
        envoy = envoy_factory(local_config(jwks, {"signature_backend": backend}), native=False)
        verdicts[backend] = [get(envoy, token) for _, token, _ in cases]
        log = envoy.log_text()
        if backend == "auto":
            assert "signatures: host verify_signature" in log, "the host path was probed and taken"
        else:
            assert "signatures: built-in (signature_backend: portable)" in log
        assert_healthy(envoy)
        envoy.stop()
    disagree = [label for (label, _, _), a, p in zip(cases, verdicts["auto"], verdicts["portable"]) if a != p]
    assert not disagree, f"host and built-in verifiers disagree on: {disagree}"
    wrong = [
        (label, got)
        for (label, _, expect), got in zip(cases, verdicts["auto"])
        if expect is not None and got != (200 if expect else 401)
    ]
    assert not wrong, f"unexpected verdicts: {wrong}"
    assert len(cases) > 300
