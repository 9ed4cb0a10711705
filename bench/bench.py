#!/usr/bin/env python3
"""Benchmark: our wasm filter against Envoy's native jwt_authn, side by side.

One Envoy (--concurrency 1) serves these listeners, whose routes all answer
with a local direct_response (so no upstream is measured):
  baseline       no filter at all
  noop_wasm      a no-op proxy-wasm filter in V8 (bench/noop-filter: reads one
                 header, sets one): the fixed cost of any wasm filter
  native         envoy.filters.http.jwt_authn, config C (no token cache)
  native_cached  native with jwt_cache_config {jwt_cache_size: 100} added to
                 every provider (Envoy enables its verified-token cache only
                 when jwt_cache_config is present; size 0 means its default 100)
  wasm           our module, config C (plus a small shared token cache, see
                 below; it always keeps its verified-token caches)
  wasm_portable  our module with extensions.signature_backend "portable": no
                 host verify_signature, the pure-Rust verifiers in the VM
  ffi_floor      distinct-token scenarios only: a filter that only checks the
                 signature through the host's verify_signature
                 (bench/ffi-floor): no claims, caches or headers. What any
                 wasm filter that checks each new token pays at least
Config C is realistic: every provider checks `audiences` and copies `sub` to
the x-user-id request header (claim_to_headers); tokens carry both claims.

wrk (1 thread, pinned to the other core) drives each listener in turn.
Scenarios: a valid RS256 / ES256 / EdDSA token repeated (local_jwks), a bad
signature, no token, a valid RS256 token whose key comes from a local
remote_jwks server (fetched before measuring), and distinct valid RS256 /
ES256 / EdDSA tokens (--pool-size of them, round-robin) where no cache ever
hits. For that last kind the wasm listeners set
extensions.shared_token_cache_size to 128 entries (16 buckets of 8): a pool
of 5,000 (~40x that size, 50x the per-VM caches) never hits, and a lookup +
insert costs the same in a small cache as in the default one (65,536). Per
run, the module's cache counters prove it.

Then "many_workers": a second Envoy with --concurrency 4 (restarted per run
so every cache starts empty), listeners native, native_cached (cache sized to
hold every token) and wasm (same config, default shared cache), and wrk with
32 connections (Envoy spreads connections over its workers) sending N
distinct valid RS256 tokens (default 20,000) 4 times: round r sends tokens
0..N-1 in order, and wrk stops after exactly 4N requests. Our module keeps
verified tokens in proxy-wasm shared data, so one signature check per
distinct token per proxy: its counters give verifications per token.

Runs are interleaved (run 1 of every cell, then run 2 in reverse order, ...:
A B, B A, so load from outside and drifts in the host's speed cancel in the
per-run ratios) and each cell's result is the
median of its runs, with min-max shown. Every run checks the verdicts (all
2xx for valid tokens, all 401 otherwise), so a number is never reported for
a filter that answered wrongly. A "Goals" section compares each goal's
ratio (median of paired per-run ratios, min-max) with its target.

--corun measures each goal's pair at the same time instead of in turn: two
identical Envoys, both workers on CPU 0 (wrk on CPU 1), one wrk per side, the
sides swapped every other round. A change in the host's speed, which on a
shared VM can be tens of percent within seconds and shows as no CPU steal,
then hits both sides of a pair alike. Per scenario the pair is ours against
what its goal compares it with (a repeated token: noop_wasm, measured with
the same token; otherwise native); each side gets about half of CPU 0, so
requests/s are about half of a solo run, and the ratios are what count.
Writes bench/results/corun.{md,json}; many_workers is not part of it.

Output: markdown to stdout and bench/results/latest.md, data in
bench/results/latest.json (--smoke: a temporary directory). Usage:
scripts/bench.sh [--duration 10] [--runs 3] [--smoke]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gzip
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

# bench/ (loadkit) and tests/e2e/ (harness, jwt_sign) are plain directories.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests" / "e2e")]

import jwt_sign as js  # noqa: E402
import loadkit  # noqa: E402
from harness import (  # noqa: E402
    DIST_DIR,
    WASM_TYPE,
    BenchEnvoy,
    EnvoyStartError,
    JwksServer,
    default_wasm_path,
    envoy_binary,
    http_request,
)

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk_report.lua"
ISSUER = loadkit.ISSUER
AUDIENCE = "bench-api"
USER_HEADER = "x-user-id"
TARGETS = ("baseline", "noop_wasm", "native", "native_cached", "wasm", "wasm_portable", "ffi_floor")
# Within a scenario, targets run in this order: the pairs the goals compare
# (wasm and noop_wasm, wasm and native, wasm_portable and native) measured
# back to back.
MEASURE_ORDER = ("baseline", "noop_wasm", "wasm", "native", "ffi_floor", "wasm_portable", "native_cached")
# Targets that check no token: measured once per run, in the first scenario.
REFERENCE_TARGETS = ("baseline", "noop_wasm")
WASM_TARGETS = ("wasm", "wasm_portable")
# (path, token kind, expect allowed). A "*_pool" kind is --pool-size distinct
# valid tokens sent round-robin: far more than the caches of any listener
# hold (native_cached 100, wasm 100 per VM + 128 shared), so every request
# pays for a signature check.
SCENARIOS = {
    "rs256_valid": ("/", "rs", True),
    "es256_valid": ("/", "es", True),
    "eddsa_valid": ("/", "ed", True),
    "bad_signature": ("/", "rs_bad", False),
    "missing_token": ("/", None, False),
    "remote_jwks_rs256": ("/remote", "remote", True),
    "rs256_unique_tokens": ("/", "rs_pool", True),
    "es256_unique_tokens": ("/", "es_pool", True),
    "eddsa_unique_tokens": ("/", "ed_pool", True),
}
# The second Envoy (--concurrency 4); a scenario name so --scenarios selects it.
MANY_WORKERS = "many_workers"
MW_TARGETS = ("native", "native_cached", "wasm")
ALL_SCENARIOS = (*SCENARIOS, MANY_WORKERS)
POOL_SIZE = 5000
# many_workers warms its Envoy up with this many tokens of the RS256 pool.
MW_WARM_TOKENS = 1000
# Shared token cache entries for the wasm listeners of the 1-worker Envoy (see
# the module docstring). Between two sends of a pool token ~POOL_SIZE / 16
# others land in its bucket of 8, each replacing one of the 8 slots: it is
# gone but for a chance of (7/8)^62 ~ 3e-4 (the smallest pool allowed, 4x the
# cache, still leaves only (7/8)^32 ~ 1.4%).
SMALL_SHARED_CACHE = 128
# The caches only store verified tokens: for denials native_cached == native.
CACHE_SCENARIOS = {s for s, (_, _, allowed) in SCENARIOS.items() if allowed}
# The portable path matters where signatures are checked: distinct tokens.
PORTABLE_SCENARIOS = {"rs256_unique_tokens", "es256_unique_tokens"}
# The host-verify floor knows RS256 and ES256 keys only.
FLOOR_SCENARIOS = PORTABLE_SCENARIOS
UNIQUE_SCENARIOS = {s for s, (_, kind, _) in SCENARIOS.items() if kind and kind.endswith("_pool")}

# The module's metrics (Envoy adds "wasmcustom."); absent ones read as n/a.
METRIC_PREFIX = loadkit.WASM_METRIC_PREFIX
CACHE_COUNTERS = {
    "verifications": "signature_verifications",
    "shared_hit": "token_cache.shared_hit",
    "local_hit": "token_cache.local_hit",
    "miss": "token_cache.miss",
}
MEMORY_GAUGE = METRIC_PREFIX + "wasm_memory_bytes"
# The module publishes those counters on a 100 ms tick per VM: wait this long
# after a run before reading them, so the run's last counts are in.
COUNTER_FLUSH_S = 0.3

# Goals of the performance issue: (id, text, kind, target, stretch). Ratio
# goals compare paired per-run requests/s (see goal_rows for the pairs).
GOALS = (
    ("distinct_rs256", "Distinct RS256 tokens: wasm / native (no cache)", "ratio", 0.95, 1.0),
    ("distinct_es256", "Distinct ES256 tokens: wasm / native (no cache)", "ratio", 0.95, 1.0),
    ("repeated_rs256", "Repeated RS256 token: wasm / noop_wasm", "ratio", 0.95, None),
    ("repeated_es256", "Repeated ES256 token: wasm / noop_wasm", "ratio", 0.95, None),
    ("repeated_eddsa", "Repeated EdDSA token: wasm / noop_wasm", "ratio", 0.95, None),
    ("repeated_remote", "Repeated RS256 token, remote JWKS: wasm / noop_wasm", "ratio", 0.95, None),
    ("many_workers", "4 workers, tokens reused across workers: wasm / native_cached", "ratio", 1.0, 1.2),
    ("mw_verifications", "4 workers: signature verifications per distinct token (wasm)", "at_most", 1.01, None),
    ("portable_rs256", "Portable fallback, distinct RS256: wasm_portable / native", "ratio", 0.3, None),
    ("jwks_callouts", "Requests waiting for a JWKS callout during measurement (wasm, steady state)", "at_most", 0, None),
)


def claims_for(i: int | None = None, prefix: str = "t") -> dict:
    """A bench token's payload: issuer, audience, subject, a day of lifetime."""
    extra = {} if i is None else {"jti": f"{prefix}{i}"}
    sub = "user-1" if i is None else f"user-{i}"
    return js.claims(iss=ISSUER, sub=sub, aud=AUDIENCE, lifetime=24 * 3600, **extra)


def build_config(jwks_port: int, pool_size: int) -> tuple[dict, dict, dict[str, str], dict[str, list[str]], dict]:
    """(config, config with native jwt cache, tokens by kind, token pools by kind, private keys by alg)."""
    rs, es, ed, remote = js.new_key("RS256"), js.new_key("ES256"), js.new_key("EdDSA"), js.new_key("RS256")
    local_jwks = js.jwks_text(
        [js.public_jwk(rs, "rs", "RS256"), js.public_jwk(es, "es", "ES256"), js.public_jwk(ed, "ed", "EdDSA")]
    )
    # Full claim checks and header injection, the same on every listener.
    common = {"audiences": [AUDIENCE], "claim_to_headers": [{"header_name": USER_HEADER, "claim_name": "sub"}]}
    cfg = {
        "providers": {
            "local": {"issuer": ISSUER, **copy.deepcopy(common), "local_jwks": {"inline_string": local_jwks}},
            "remote": {
                "issuer": ISSUER,
                **copy.deepcopy(common),
                "remote_jwks": {
                    "http_uri": {"uri": f"http://127.0.0.1:{jwks_port}/jwks", "cluster": "jwks", "timeout": "5s"},
                    "cache_duration": "600s",
                },
            },
        },
        "rules": [
            {"match": {"prefix": "/remote"}, "requires": {"provider_name": "remote"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "local"}},
        ],
    }
    cached = with_native_cache(cfg, 100)
    claims = claims_for()
    rs_tok = js.sign(rs, "RS256", claims, kid="rs")
    tokens = {
        "rs": rs_tok,
        "es": js.sign(es, "ES256", claims, kid="es"),
        "ed": js.sign(ed, "EdDSA", claims, kid="ed"),
        "rs_bad": js.tamper_signature(rs_tok),
        "remote": js.sign(remote, "RS256", claims, kid="remote"),
        "_remote_jwks": js.jwks_text([js.public_jwk(remote, "remote", "RS256")]),
    }
    pools = {
        f"{kind}_pool": [js.sign(key, alg, claims_for(i), kid=kind) for i in range(pool_size)]
        for kind, key, alg in (("rs", rs, "RS256"), ("es", es, "ES256"), ("ed", ed, "EdDSA"))
    }
    return cfg, cached, tokens, pools, {"RS256": rs, "ES256": es}


def floor_config(keys: dict) -> str:
    """bench/ffi-floor's configuration: `<alg> <base64url SPKI DER>` lines."""
    lines = []
    for alg, key in keys.items():
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        lines.append(f"{alg} {js.b64url(der)}")
    return "\n".join(lines)


def with_native_cache(cfg: dict, size: int) -> dict:
    """cfg with jwt_cache_config {jwt_cache_size: size} on every provider."""
    out = copy.deepcopy(cfg)
    for p in out["providers"].values():
        p["jwt_cache_config"] = {"jwt_cache_size": size}
    return out


def with_extensions(cfg: dict, **ext) -> dict:
    """cfg plus our own top-level `extensions` (the wasm listeners only: native refuses them)."""
    out = copy.deepcopy(cfg)
    out.setdefault("extensions", {}).update(ext)
    return out


def wasm_filter_entry(plugin: str, root_id: str, vm_id: str, module: Path, configuration: str | None) -> dict:
    """An envoy.filters.http.wasm entry (V8) for `module`. A distinct vm_id
    gives a listener its own VMs and its own shared data (so its own shared
    token cache)."""
    cfg: dict = {
        "name": plugin,
        "root_id": root_id,
        "fail_open": False,
        "vm_config": {
            "vm_id": vm_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(module)}},
        },
    }
    if configuration is not None:
        cfg["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration}
    return {"name": "envoy.filters.http.wasm", "typed_config": {"@type": WASM_TYPE, "config": cfg}}


class SideBySideEnvoy(BenchEnvoy):
    """BenchEnvoy plus more wasm listeners: name -> filter entry (wasm_filter_entry)."""

    def __init__(self, plugin_config: dict, *, extra_wasm: dict[str, dict] | None = None, **kwargs):
        super().__init__(plugin_config, **kwargs)
        self.extra_wasm = dict(extra_wasm or {})

    def listener_names(self) -> list[str]:
        return super().listener_names() + list(self.extra_wasm)

    def bootstrap(self) -> dict:
        boot = super().bootstrap()
        listeners = boot["static_resources"]["listeners"]
        for name, entry in self.extra_wasm.items():
            listener = self._hcm_listener(name, entry, [])
            hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
            if self.direct_response:
                for vhost in hcm["route_config"]["virtual_hosts"]:
                    for route in vhost["routes"]:
                        route.pop("route", None)
                        route["direct_response"] = {"status": 200, "body": {"inline_string": self.response_body}}
            listeners.append(listener)
        return boot


# --------------------------------------------------------------------------
# load


def run_wrk(
    url: str,
    auth: str | None,
    *,
    tokens_file: Path | None,
    duration: int,
    connections: int,
    max_requests: int,
    cpu: str | None,
    threads: int = 1,
    exact: bool = False,
) -> dict:
    """One wrk run (bounded by `duration` and by `max_requests` per thread);
    returns its WRK_JSON record plus "rps"."""
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    env = dict(
        os.environ,
        WRK_AUTH=auth or "",
        WRK_TOKENS_FILE=str(tokens_file or ""),
        WRK_MAX_REQUESTS=str(max_requests),
        WRK_THREADS=str(threads),
        WRK_EXACT="1" if exact else "0",
    )
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(duration + 30, proc.kill)
    watchdog.start()
    out: list[str] = []
    done_threads = 0
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("WRK_THREAD_DONE"):
                # wrk would sleep until -d has passed: every thread reached its
                # cap, so end it now (it then reports the real run time).
                done_threads += 1
                if done_threads == threads and proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    for line in out:
        if line.startswith("WRK_JSON "):
            rec = json.loads(line[len("WRK_JSON ") :])
            rec["rps"] = rec["requests"] / (rec["duration_us"] / 1e6) if rec["duration_us"] else 0.0
            return rec
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}): {''.join(out)[-500:]} {err[-500:]}")


def check_verdicts(rec: dict, allowed: bool) -> str | None:
    """Why a run's responses are not what the scenario expects (None if fine)."""
    e = rec["errors"]
    transport = e["connect"] + e["read"] + e["write"] + e["timeout"]
    if transport:
        return f"{transport} transport errors"
    if not rec["requests"]:
        return "no request completed (zero throughput)"
    if allowed and e["status"]:
        return f"{e['status']} of {rec['requests']} requests denied"
    if not allowed and e["status"] != rec["requests"]:
        return f"{rec['requests'] - e['status']} of {rec['requests']} requests allowed"
    return None


# --------------------------------------------------------------------------
# counters


def cache_counters(stats: dict[str, int]) -> dict[str, int | None]:
    """The module's verification and token-cache counters (None when absent)."""
    return {k: stats.get(METRIC_PREFIX + name) for k, name in CACHE_COUNTERS.items()}


def counter_delta(before: dict[str, int | None], after: dict[str, int | None]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for k, v in after.items():
        b = before.get(k)
        out[k] = v - b if v is not None and b is not None else None
    return out


def module_paused_requests(stats: dict[str, int]) -> int:
    """Requests the module paused to wait for a JWKS fetch so far (all providers)."""
    return sum(v for k, v in stats.items() if k.startswith(METRIC_PREFIX + "jwks.") and k.endswith(".requests_paused"))


def module_jwks_fetches(stats: dict[str, int]) -> int:
    """The module's JWKS fetch attempts so far (all providers)."""
    return sum(
        v
        for k, v in stats.items()
        if k.startswith(METRIC_PREFIX + "jwks.") and (k.endswith(".fetch_success") or k.endswith(".fetch_failed"))
    )


def native_counter(stats: dict[str, int], listener: str, name: str) -> int | None:
    """A native jwt_authn counter of one listener (http.<listener>.jwt_authn.<name>)."""
    return stats.get(f"http.{listener}.jwt_authn.{name}")


# --------------------------------------------------------------------------
# summaries


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt_rps(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def fmt_mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / (1 << 20):.1f} MiB"


def summarize(cells: dict) -> dict:
    out = {}
    for key, runs in cells.items():
        if not runs:
            continue
        rps = [r["rps"] for r in runs]
        p50 = [r["latency_us"]["p50"] for r in runs]
        p99 = [r["latency_us"]["p99"] for r in runs]
        out[key] = {
            "runs": len(runs),
            "rps_median": median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50_us_median": median(p50),
            "p99_us_median": median(p99),
            "p99_us_min": min(p99),
            "p99_us_max": max(p99),
        }
    return out


def paired(a: list[dict], b: list[dict], field: str = "rps") -> list[float]:
    """Per-run ratios a/b: run i of one against run i of the other, measured
    in the same round, so load from outside the benchmark cancels out better
    than in a ratio of medians."""
    out = []
    for x, y in zip(a, b, strict=False):
        vx = x["rps"] if field == "rps" else x["latency_us"]["p99"]
        vy = y["rps"] if field == "rps" else y["latency_us"]["p99"]
        if vx and vy:
            out.append(vx / vy)
    return out


def paired_cpu(a: list[dict], b: list[dict]) -> list[float]:
    """Per-run ratios of worker CPU per request, b/a (so above 1 means `a`
    costs less, the same sense as a throughput ratio a/b)."""
    out = []
    for x, y in zip(a, b, strict=False):
        cx, cy = x.get("cpu_us_per_request"), y.get("cpu_us_per_request")
        if cx and cy:
            out.append(cy / cx)
    return out


def fmt_paired(xs: list[float]) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def cache_hit_share(runs: list[dict]) -> float | None:
    """Share of requests answered from a token cache over a cell's runs (None: no counters)."""
    hits = total = 0
    for r in runs:
        c = r.get("counters") or {}
        if c.get("shared_hit") is None and c.get("local_hit") is None:
            return None
        hits += (c.get("shared_hit") or 0) + (c.get("local_hit") or 0)
        total += r["requests"]
    return hits / total if total else None


def noop_runs(cells: dict, s: str, meta: dict) -> list[dict]:
    """The no-op filter's runs to pair with scenario s: its own (--corun
    measures one per repeated-token scenario), else the reference
    scenario's; never that one in a co-run, where it ran at another moment."""
    own = cells.get((s, "noop_wasm"))
    if own or meta.get("corun"):
        return own or []
    return cells.get((meta.get("reference_scenario"), "noop_wasm"), [])


def goal_rows(cells: dict, mw: dict, meta: dict) -> list[dict]:
    """Every goal with its measured value (median of per-run values), min-max and verdict."""

    def cell(s: str, t: str) -> list[dict]:
        return cells.get((s, t), [])

    def noop_of(s: str) -> list[dict]:
        return noop_runs(cells, s, meta)

    pairs: dict[str, tuple[list[dict], list[dict]]] = {
        "distinct_rs256": (cell("rs256_unique_tokens", "wasm"), cell("rs256_unique_tokens", "native")),
        "distinct_es256": (cell("es256_unique_tokens", "wasm"), cell("es256_unique_tokens", "native")),
        "repeated_rs256": (cell("rs256_valid", "wasm"), noop_of("rs256_valid")),
        "repeated_es256": (cell("es256_valid", "wasm"), noop_of("es256_valid")),
        "repeated_eddsa": (cell("eddsa_valid", "wasm"), noop_of("eddsa_valid")),
        "repeated_remote": (cell("remote_jwks_rs256", "wasm"), noop_of("remote_jwks_rs256")),
        "many_workers": (mw.get("runs", {}).get("wasm", []), mw.get("runs", {}).get("native_cached", [])),
        "portable_rs256": (cell("rs256_unique_tokens", "wasm_portable"), cell("rs256_unique_tokens", "native")),
    }
    cpu_values = {gid: paired_cpu(a, b) for gid, (a, b) in pairs.items()}
    values: dict[str, list[float]] = {gid: paired(a, b) for gid, (a, b) in pairs.items()}
    values["mw_verifications"] = [
        r["counters"]["verifications"] / mw["tokens"]
        for r in mw.get("runs", {}).get("wasm", [])
        if (r.get("counters") or {}).get("verifications") is not None
    ]
    if meta.get("module_paused_during_measurement") is not None:
        values["jwks_callouts"] = [float(meta["module_paused_during_measurement"])]
    notes = {
        "distinct_rs256": hit_note(cell("rs256_unique_tokens", "wasm")),
        "distinct_es256": hit_note(cell("es256_unique_tokens", "wasm")),
        "portable_rs256": hit_note(cell("rs256_unique_tokens", "wasm_portable")),
        "mw_verifications": "counter `jwt_authn_wasm.signature_verifications` / distinct tokens, per run",
        "jwks_callouts": (
            f"counter `jwks.<provider>.requests_paused`; background refreshes by the module in that window: "
            f"{meta['module_jwks_fetches_during_measurement']}, JWKS server hits (native and module): "
            f"{meta.get('jwks_hits_during_measurement', 'n/a')}"
            if meta.get("module_jwks_fetches_during_measurement") is not None
            else ""
        ),
    }
    if mw.get("runs", {}).get("wasm") and not values["mw_verifications"]:
        notes["mw_verifications"] = "counter `jwt_authn_wasm.signature_verifications` absent"
    rows = []
    for gid, text, kind, target, stretch in GOALS:
        xs = values.get(gid, [])
        row = {"id": gid, "goal": text, "kind": kind, "target": target, "stretch": stretch, "values": xs}
        cxs = cpu_values.get(gid, [])
        row["cpu_values"] = cxs
        row["cpu_value"] = statistics.median(cxs) if cxs else None
        if cxs and kind == "ratio":
            row["cpu_verdict"] = "met" if row["cpu_value"] >= target else "not met"
        else:
            row["cpu_verdict"] = "-"
        if not xs:
            row.update(value=None, verdict="n/a")
        else:
            v = statistics.median(xs)
            row.update(value=v, min=min(xs), max=max(xs))
            if kind == "ratio":
                ok = v >= target
                row["verdict"] = ("met, stretch too" if stretch and v >= stretch else "met") if ok else "not met"
            else:
                row["verdict"] = "met" if v <= target else "not met"
        row["note"] = notes.get(gid, "")
        rows.append(row)
    return rows


def hit_note(runs: list[dict]) -> str:
    share = cache_hit_share(runs)
    if share is None:
        return "cache counters n/a" if runs else ""
    flag = " (too many: not a distinct-token measurement)" if share > 0.01 else ""
    return f"token cache hits {share * 100:.2f} %{flag}"


def ratio_digits(row: dict, v: float) -> int:
    """2, or 3 where 2 would print a value on the wrong side of its target
    (or stretch) as equal to it: 0.949 is not met, 0.95 reads as met."""
    marks = [m for m in (row.get("target"), row.get("stretch")) if isinstance(m, (int, float))]
    return 3 if any(f"{v:.2f}" == f"{m:.2f}" and v != m for m in marks) else 2


def fmt_goal_value(row: dict) -> str:
    if row["value"] is None:
        return "n/a"
    if row["id"] == "jwks_callouts":
        digits = 0
    elif row["id"] == "mw_verifications":
        digits = 3
    else:
        digits = ratio_digits(row, row["value"])
    v = f"{row['value']:.{digits}f}"
    if len(row["values"]) > 1 and row["min"] != row["max"]:
        v += f" ({row['min']:.{digits}f}-{row['max']:.{digits}f})"
    return v


def fmt_steal(cells: dict, mw: dict) -> str:
    """Median and max share of the machine's CPU stolen by the hypervisor per run."""
    runs = [r for rs in cells.values() for r in rs] + [r for rs in mw.get("runs", {}).values() for r in rs]
    xs = [r["steal_share"] for r in runs if r.get("steal_share") is not None]
    if not xs:
        return "n/a"
    return f"median {statistics.median(xs) * 100:.1f} %, max {max(xs) * 100:.1f} %"


def fmt_cpu(runs: list[dict]) -> str:
    xs = [r["cpu_us_per_request"] for r in runs if r.get("cpu_us_per_request")]
    return f"{statistics.median(xs):.1f}" if xs else "n/a"


def fmt_goal_cpu(row: dict) -> str:
    xs = row.get("cpu_values") or []
    if not xs:
        return "-"
    digits = ratio_digits(row, statistics.median(xs))
    v = f"{statistics.median(xs):.{digits}f}"
    if len(xs) > 1:
        v += f" ({min(xs):.{digits}f}-{max(xs):.{digits}f})"
    return v


def fmt_goal_target(row: dict) -> str:
    if row["kind"] == "ratio":
        t = f">= {row['target']:.2f}"
        return t + (f" (stretch {row['stretch']:.1f})" if row["stretch"] else "")
    if row["id"] == "jwks_callouts":
        return "0"
    return "1.0 (<= 1.01)" if row["id"] == "mw_verifications" else f"<= {row['target']}"


# --------------------------------------------------------------------------
# report


def scenario_table(title: str, scenarios: list[str], columns: list[str], value) -> list[str]:
    """A Markdown section: a row per scenario, a column per target, `value(scenario, target)` in each cell."""
    head = ["", title, "", "| scenario | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    return head + ["| " + " | ".join([s, *(value(s, t) for t in columns)]) + " |" for s in scenarios]


def render_markdown(
    meta: dict,
    summary: dict,
    cells: dict,
    scenarios: list[str],
    targets: list[str],
    goals: list[dict],
    mw: dict,
) -> str:
    ref = meta.get("reference_scenario")
    lines = [
        "# jwt-authn-wasm benchmark" + (" (SMOKE: 1 s runs, numbers meaningless)" if meta.get("smoke") else ""),
        "",
        f"- date: {meta['date']}; host: {meta['cpu']} ({meta['cores']} cores); "
        f"load average before: {meta['loadavg_before']}, after: {meta.get('loadavg_after', '?')}",
        (
            f"- Envoy {meta['envoy_version']} `--concurrency 1`, V8; wrk 1 thread, {meta['connections']} connections, "
            f"{meta['duration_s']} s per run (every other round in reverse order), "
            f"median of {meta['runs']} runs (min-max), "
            f"{meta['warmup_s']} s warm-up per cell; CPU pinning: {meta['pinning']}"
        ),
        f"- module: `{meta['module']}` {meta['module_bytes']:,} bytes ({meta['module_gzip_bytes']:,} gzipped)"
        + (f"; no-op module {meta['noop_module_bytes']:,} bytes" if meta.get("noop_module_bytes") else ""),
        "- every route is an Envoy `direct_response` (no upstream); same tokens everywhere; every provider checks "
        f"`audiences` and copies `sub` to `{USER_HEADER}` (claim_to_headers)",
        "- `native_cached` = native with `jwt_cache_config: {jwt_cache_size: 100}` (native's default has no token "
        "cache); `noop_wasm` = a no-op wasm filter (reads one header, sets one); `wasm_portable` = ours with "
        '`extensions.signature_backend: "portable"` (no host `verify_signature`); `ffi_floor` = a filter that only '
        "checks the signature through the host's `verify_signature` (no claims, caches, headers or counters: "
        "the least a filter checking each new token pays)",
        f"- `*_unique_tokens`: {meta['pool_size']} distinct valid tokens round-robin; the wasm listeners here set "
        f"`extensions.shared_token_cache_size: {SMALL_SHARED_CACHE}` so that no cache hits (hit share below)",
        *(
            [
                "- **co-run** (`--corun`): each pair (ours and what its goal compares it with; for a repeated token "
                "`noop_wasm` runs with the same token) is measured at the same time, on two identical Envoys whose "
                "workers share CPU 0, one wrk per side on CPU 1, the Envoys traded every other run. A change in the "
                "host's speed hits both sides of a pair alike. Each side gets about half of CPU 0, so requests/s "
                "are about half of a solo run: the ratios are what count, the CPU-time ones first (they do not "
                "depend on how the CPU was shared)"
            ]
            if meta.get("corun")
            else []
        ),
        "",
        "## Goals",
        "",
        "Ratios are medians of per-run ratios (run i of one target / run i of the other, measured in the same "
        "round), with their min-max. *Throughput* is requests/s; *CPU time* is the inverse ratio of the Envoy "
        "workers' CPU microseconds per request in the same runs (from /proc), which a noisy neighbour that "
        "steals the CPU does not move (steal during the runs: "
        f"{fmt_steal(cells, mw)}).",
        "",
        "| goal | throughput | CPU time | target | verdict (throughput / CPU time) | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for g in goals:
        lines.append(
            f"| {g['goal']} | {fmt_goal_value(g)} | {fmt_goal_cpu(g)} | {fmt_goal_target(g)} | "
            f"{g['verdict']} / {g['cpu_verdict']} | {g['note']} |"
        )
    res = meta.get("resources", {})
    lines += [
        "",
        "| resource | value |",
        "|---|---|",
        f"| module size | {meta['module_bytes']:,} bytes ({meta['module_gzip_bytes']:,} gzipped) |",
        f"| per-VM memory (`jwt_authn_wasm.wasm_memory_bytes`), 1-worker Envoy at the end | "
        f"{fmt_mib(res.get('wasm_memory_bytes'))} |",
        f"| per-VM memory, 4-worker Envoy after a many_workers run | {fmt_mib(res.get('mw_wasm_memory_bytes'))} |",
        f"| Envoy RSS, 1-worker Envoy (all {len(meta.get('listeners', []))} listeners) at the end | "
        f"{fmt_mib(res.get('rss_bytes'))} |",
        f"| Envoy RSS, 4-worker Envoy after a many_workers run (3 listeners) | {fmt_mib(res.get('mw_rss_bytes'))} "
        f"(of which {fmt_mib(res.get('mw_wasm_rss_growth_bytes'))} grown during the wasm run) |",
        f"| JWKS server hits during measurement / in total | {meta.get('jwks_hits_during_measurement', 'n/a')} / "
        f"{meta.get('jwks_hits_total', 'n/a')} |",
        "",
        "## Throughput, one worker (requests/s)",
        "",
    ]

    def cell(s: str, t: str) -> dict | None:
        return summary.get((s, t))

    if scenarios:
        lines += [
            "| scenario | "
            + " | ".join(targets)
            + " | wasm/native | wasm/native_cached | wasm/noop_wasm | wasm/baseline | portable/native"
            + " | wasm/ffi_floor | ffi_floor/native |",
            "|---|" + "---:|" * (len(targets) + 7),
        ]
        for s in scenarios:
            row = [s]
            for t in targets:
                c = cell(s, t)
                row.append(
                    "n/a"
                    if c is None
                    else f"{fmt_rps(c['rps_median'])} ({fmt_rps(c['rps_min'])}-{fmt_rps(c['rps_max'])})"
                )
            w = cells.get((s, "wasm"), [])
            row.append(fmt_paired(paired(w, cells.get((s, "native"), []))))
            row.append(fmt_paired(paired(w, cells.get((s, "native_cached"), []))))
            row.append(fmt_paired(paired(w, noop_runs(cells, s, meta))))
            row.append(fmt_paired(paired(w, cells.get((ref, "baseline"), []))))
            row.append(fmt_paired(paired(cells.get((s, "wasm_portable"), []), cells.get((s, "native"), []))))
            row.append(fmt_paired(paired(w, cells.get((s, "ffi_floor"), []))))
            row.append(fmt_paired(paired(cells.get((s, "ffi_floor"), []), cells.get((s, "native"), []))))
            lines.append("| " + " | ".join(row) + " |")
        lines += [
            "",
            "## Latency, one worker (ms, p50 / p99, median of runs; closed loop, so p50 includes queueing)",
            "",
            "| scenario | " + " | ".join(targets) + " | wasm/native p99 |",
            "|---|" + "---:|" * (len(targets) + 1),
        ]
        for s in scenarios:
            row = [s]
            for t in targets:
                c = cell(s, t)
                row.append("n/a" if c is None else f"{fmt_ms(c['p50_us_median'])} / {fmt_ms(c['p99_us_median'])}")
            row.append(fmt_paired(paired(cells.get((s, "wasm"), []), cells.get((s, "native"), []), "p99")))
            lines.append("| " + " | ".join(row) + " |")
        others = [t for t in targets if t != "baseline"]
        b = summary.get((ref, "baseline"))

        def added_cpu(s: str, t: str) -> str:
            c = cell(s, t)
            if c is None or b is None or not c["rps_median"]:
                return "n/a"
            return f"{1e6 / c['rps_median'] - 1e6 / b['rps_median']:.1f}"

        def measured_cpu(s: str, t: str) -> str:
            xs = [r["cpu_us_per_request"] for r in cells.get((s, t), []) if r.get("cpu_us_per_request")]
            return f"{statistics.median(xs):.1f}" if xs else "n/a"

        def hit_share(s: str, t: str) -> str:
            runs = cells.get((s, t), [])
            share = cache_hit_share(runs)
            return "-" if not runs else ("n/a" if share is None else f"{share * 100:.2f} %")

        if b is not None:
            lines += scenario_table(
                "## Added CPU per request (us) = 1/rps - 1/rps(baseline), one saturated worker",
                scenarios,
                others,
                added_cpu,
            )
        lines += scenario_table(
            "## Measured CPU per request (us): Envoy's worker threads, from /proc, median of runs",
            scenarios,
            targets,
            measured_cpu,
        )
        unique = [s for s in scenarios if s in UNIQUE_SCENARIOS]
        wasm_targets = [t for t in WASM_TARGETS if t in targets]
        if unique and wasm_targets:
            lines += scenario_table(
                "## Token cache during the distinct-token runs (share of requests answered from a cache; "
                "should be ~0)",
                unique,
                wasm_targets,
                hit_share,
            )
    else:
        lines.append("(not run)")
    lines += render_many_workers(mw)
    if meta.get("stats"):
        lines += ["", "## Counters after the run (1-worker Envoy)", ""]
        for k, v in meta["stats"].items():
            lines.append(f"- `{k}`: {v}")
    if meta.get("problems"):
        lines += ["", "## PROBLEMS (verdicts not as expected; numbers above are not trustworthy)", ""]
        lines += [f"- {p}" for p in meta["problems"]]
    return "\n".join(lines) + "\n"


def render_many_workers(mw: dict) -> list[str]:
    lines = ["", "## Many workers (Envoy `--concurrency 4`, tokens reused across workers)", ""]
    if not mw.get("runs"):
        return lines + ["(not run)"]
    lines += [
        f"{mw['tokens']:,} distinct valid RS256 tokens, each sent {mw['sends']} times (round r = tokens 0..N-1 in "
        f"order), wrk {mw['threads']} thread(s) x {mw['connections']} connections, exactly "
        f"{mw['tokens'] * mw['sends']:,} requests per run; Envoy restarted per run so caches start empty; "
        f"no CPU pinning. `native_cached` has `jwt_cache_size: {mw['native_cache_size']}` (room for every token, "
        "per worker); `wasm` has the same config (its shared cache at the default size). "
        f"Median of {mw['runs_done']} runs (min-max).",
        "",
        "| target | requests/s | p50 / p99 ms | wasm/this | worker CPU us/request | wasm/this by CPU time "
        "| requests (wrk / Envoy) | signature verifications "
        "per token | cache hits shared / local / misses | native jwt_cache_hit / miss | Envoy RSS after (growth) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    wasm_runs = mw["runs"].get("wasm", [])
    for t in MW_TARGETS:
        runs = mw["runs"].get(t, [])
        if not runs:
            continue
        rps = [r["rps"] for r in runs]
        p50 = median([r["latency_us"]["p50"] for r in runs])
        p99 = median([r["latency_us"]["p99"] for r in runs])
        last = runs[-1]
        c = last.get("counters") or {}
        ver = [(r.get("counters") or {}).get("verifications") for r in runs]
        ver = [v for v in ver if v is not None]
        if t == "wasm":
            per_tok = f"{median(ver) / mw['tokens']:.3f}" if ver else "n/a"
            hits = " / ".join("n/a" if c.get(k) is None else f"{c[k]:,}" for k in ("shared_hit", "local_hit", "miss"))
            native = "-"
        else:
            per_tok = "-"
            hits = "-"
            h, m = last.get("native_hit"), last.get("native_miss")
            native = f"{h:,} / {m:,}" if h is not None and m is not None else "n/a"
            if m is not None and t == "native_cached":
                per_tok = f"({m / mw['tokens']:.2f} misses)"
        lines.append(
            f"| {t} | {fmt_rps(median(rps))} ({fmt_rps(min(rps))}-{fmt_rps(max(rps))}) | {fmt_ms(p50)} / {fmt_ms(p99)} "
            f"| {fmt_paired(paired(wasm_runs, runs)) if t != 'wasm' else '-'} "
            f"| {fmt_cpu(runs)} | {fmt_paired(paired_cpu(wasm_runs, runs)) if t != 'wasm' else '-'} "
            f"| {last['requests']:,} / {last.get('envoy_requests', 'n/a'):,} | {per_tok} | {hits} | {native} "
            f"| {fmt_mib(last.get('rss_bytes'))} (+{fmt_mib(last.get('rss_growth_bytes'))}) |"
        )
    lines.append("")
    lines.append(
        "Counters, requests and RSS are those of the last run (Envoy's count is `downstream_rq_total`; the "
        "targets run in this order in one Envoy, so RSS accumulates: growth is what this target's run added)."
    )
    return lines


# --------------------------------------------------------------------------
# environment


def envoy_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    for part in out.split("/"):
        if part.count(".") == 2 and part[0].isdigit():
            return part
    return out.strip()[:60]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def shown_path(p: Path) -> str:
    return str(p.relative_to(loadkit.REPO_ROOT) if p.is_relative_to(loadkit.REPO_ROOT) else p)


def worker_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by an Envoy's worker threads
    (`wrk:worker_N`), from /proc: the work its filters did, whether or not
    the machine let it run (a throughput dip from a noisy neighbour does not
    move it)."""
    if pid is None:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            if name.startswith("wrk:worker"):
                fields = stat[stat.rindex(")") + 2 :].split()
                total += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return total / hz


def machine_cpu() -> tuple[int, int] | None:
    """(steal, total) jiffies of the whole machine (/proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def cpu_accounting(pid: int | None, run) -> dict:
    """Runs `run()` (a wrk run, returning its record) and adds the Envoy
    workers' CPU microseconds per request and the machine's steal share."""
    c0, m0 = worker_cpu_s(pid), machine_cpu()
    rec = run()
    add_accounting(rec, (c0, worker_cpu_s(pid)), (m0, machine_cpu()))
    return rec


def add_accounting(rec: dict, cpu: tuple[float | None, float | None], machine: tuple) -> None:
    """Adds to a wrk record its Envoy's worker CPU per request (from the
    (before, after) worker CPU seconds) and the machine's steal share."""
    (c0, c1), (m0, m1) = cpu, machine
    if c0 is not None and c1 is not None and rec.get("requests"):
        rec["cpu_us_per_request"] = (c1 - c0) * 1e6 / rec["requests"]
    if m0 and m1 and m1[1] > m0[1]:
        rec["steal_share"] = (m1[0] - m0[0]) / (m1[1] - m0[1])


def corun_pairs(scenarios: list[str], targets: list[str]) -> list[tuple[str, str, str]]:
    """--corun's pairs (scenario, ours, reference): per scenario, ours against
    what its goal compares it with (a repeated valid token: the no-op filter;
    otherwise native jwt_authn)."""
    out = []
    for s in scenarios:
        partner = "noop_wasm" if s in CACHE_SCENARIOS and s not in UNIQUE_SCENARIOS else "native"
        if "wasm" in targets and partner in targets:
            out.append((s, "wasm", partner))
    return out


def rss_bytes(pid: int | None) -> int | None:
    kib = loadkit.rss_kib(pid) if pid is not None else None
    return kib * 1024 if kib is not None else None


# --------------------------------------------------------------------------
# main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per cell (default 3)")
    ap.add_argument(
        "--warmup", type=int, default=2, help="seconds of unmeasured warm-up per cell (default 2, 0 = none)"
    )
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--max-requests", type=int, default=5_000_000, help="request cap per wrk run (default 5e6)")
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help="comma list, default all")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma list, default all")
    ap.add_argument("--no-pin", action="store_true", help="do not pin Envoy and wrk to separate CPUs")
    ap.add_argument(
        "--corun",
        action="store_true",
        help="measure each goal pair at the same time on two Envoys sharing CPU 0 (see above); "
        "writes corun.{md,json}",
    )
    ap.add_argument("--out", default=None, help="directory for latest.md / latest.json (default bench/results)")
    ap.add_argument("--module", "--wasm", dest="module", default=None, help="module (default dist/jwt-authn.wasm)")
    ap.add_argument("--noop-module", default=None, help="no-op module (default dist/noop.wasm, $DIST_DIR honoured)")
    ap.add_argument(
        "--floor-module", default=None, help="ffi_floor module (default dist/ffi-floor.wasm, $DIST_DIR honoured)"
    )
    ap.add_argument("--pool-size", type=int, default=POOL_SIZE, help=f"tokens per *_unique_tokens pool ({POOL_SIZE})")
    ap.add_argument("--mw-tokens", type=int, default=20_000, help="many_workers: distinct tokens (20000)")
    ap.add_argument("--mw-sends", type=int, default=4, help="many_workers: sends per token (4)")
    ap.add_argument("--mw-connections", type=int, default=32, help="many_workers: wrk connections (32)")
    ap.add_argument("--mw-threads", type=int, default=1, help="many_workers: wrk threads (1)")
    ap.add_argument("--mw-concurrency", type=int, default=4, help="many_workers: Envoy workers (4)")
    ap.add_argument("--mw-timeout", type=int, default=120, help="many_workers: time bound per wrk run, s (120)")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="check that everything works: every cell once for 1 s, many_workers with 2,000 tokens, "
        "outputs in a temporary directory; exit 1 on a wrong verdict, zero throughput or missing output",
    )
    args = ap.parse_args(argv)

    if args.smoke:
        args.duration, args.runs, args.warmup = 1, 1, 0
        args.mw_tokens, args.mw_timeout = min(args.mw_tokens, 2000), 30
    if not 1 <= args.duration <= 600 or not 1 <= args.runs <= 20 or not 0 <= args.warmup <= 60:
        ap.error("--duration must be in [1, 600], --runs in [1, 20], --warmup in [0, 60]")
    if not 4 * SMALL_SHARED_CACHE <= args.pool_size <= 200_000:
        ap.error(f"--pool-size must be in [{4 * SMALL_SHARED_CACHE}, 200000]")
    if not 1 <= args.mw_tokens <= 200_000 or not 1 <= args.mw_sends <= 16 or not 1 <= args.mw_timeout <= 600:
        ap.error("--mw-tokens must be in [1, 200000], --mw-sends in [1, 16], --mw-timeout in [1, 600]")
    if not 1 <= args.mw_threads <= args.mw_connections or not 1 <= args.mw_concurrency <= 64:
        ap.error("--mw-threads must be in [1, --mw-connections], --mw-concurrency in [1, 64]")
    if (args.mw_tokens * args.mw_sends) % args.mw_threads:
        ap.error("--mw-tokens x --mw-sends must be a multiple of --mw-threads (exact request count)")
    requested = [s for s in args.scenarios.split(",") if s]
    targets = [t for t in args.targets.split(",") if t]
    for s in requested:
        if s not in ALL_SCENARIOS:
            ap.error(f"unknown scenario {s!r} (known: {', '.join(ALL_SCENARIOS)})")
    for t in targets:
        if t not in TARGETS:
            ap.error(f"unknown target {t!r} (known: {', '.join(TARGETS)})")
    scenarios = [s for s in requested if s in SCENARIOS]
    mw_targets = [t for t in MW_TARGETS if t in targets] if MANY_WORKERS in requested else []
    if shutil.which("wrk") is None:
        print("bench: wrk not found (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    module = Path(args.module) if args.module else default_wasm_path()
    noop_module = Path(args.noop_module) if args.noop_module else DIST_DIR / "noop.wasm"
    floor_module = Path(args.floor_module) if args.floor_module else DIST_DIR / "ffi-floor.wasm"
    if not module.is_file():
        print(f"bench: {module} missing: run `make build`", file=sys.stderr)
        return 2
    if "noop_wasm" in targets and scenarios and not noop_module.is_file():
        print(f"bench: {noop_module} missing: run `scripts/build-wasm.sh noop`", file=sys.stderr)
        return 2
    if "ffi_floor" in targets and FLOOR_SCENARIOS & set(scenarios) and not floor_module.is_file():
        print(f"bench: {floor_module} missing: run `scripts/build-wasm.sh ffi-floor`", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
    elif args.smoke:
        out = Path(tempfile.mkdtemp(prefix="jwt-authn-bench-smoke-"))
    else:
        out = BENCH_DIR / "results"
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None

    # Reference targets check no token: one scenario stands for all (the first;
    # same header size as RS256 by default).
    ref = scenarios[0] if scenarios else None
    cells_todo: list[tuple[str, str]] = []
    if args.corun:
        mw_targets = []
        cells_todo = [(s, t) for s, a, b in corun_pairs(scenarios, targets) for t in (a, b)]
        if not cells_todo:
            ap.error("--corun needs target wasm and native or noop_wasm, and a scenario that pairs them")
    for s in scenarios if not args.corun else []:
        for t in sorted(targets, key=MEASURE_ORDER.index):
            if t in REFERENCE_TARGETS and s != ref:
                continue
            if t == "native_cached" and s not in CACHE_SCENARIOS:
                continue
            if t == "wasm_portable" and s not in PORTABLE_SCENARIOS:
                continue
            if t == "ffi_floor" and s not in FLOOR_SCENARIOS:
                continue
            cells_todo.append((s, t))
    main_targets = sorted({t for _, t in cells_todo}, key=TARGETS.index)

    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "smoke": args.smoke,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "envoy_version": envoy_version(envoy_binary()),
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": args.runs,
        "warmup_s": args.warmup,
        "pool_size": args.pool_size,
        "pinning": ("both Envoys on CPU 0" if args.corun else "Envoy on CPU 0") + ", wrk on CPU 1" if pin else "none",
        "corun": args.corun,
        "module": shown_path(module),
        "module_bytes": module.stat().st_size,
        "module_gzip_bytes": len(gzip.compress(module.read_bytes(), 9)),
        "noop_module": shown_path(noop_module) if noop_module.is_file() else None,
        "noop_module_bytes": noop_module.stat().st_size if noop_module.is_file() else None,
        "floor_module_bytes": floor_module.stat().st_size if floor_module.is_file() else None,
        "reference_scenario": ref,
        "listeners": main_targets,
        "resources": {},
        "problems": [],
    }
    if os.getloadavg()[0] > 1.0:
        print(
            f"bench: warning: load average {meta['loadavg_before']} before starting; numbers will be noisy",
            file=sys.stderr,
        )
    mw_requests = args.mw_tokens * args.mw_sends
    est_mw = len(mw_targets) * args.runs * (args.warmup + mw_requests / 8000 + 1) + (3 * args.runs if mw_targets else 0)
    per_cell = args.runs * args.duration / 2 + 2 * args.warmup if args.corun else args.runs * args.duration + args.warmup
    est = len(cells_todo) * per_cell + est_mw
    print(
        f"bench: {len(cells_todo)} cells x {args.runs} runs x {args.duration} s (+ warm-up), many_workers "
        f"{len(mw_targets)} targets x {args.runs} runs: ~{est / 60:.1f} min plus token generation",
        file=sys.stderr,
    )

    workdir = Path(tempfile.mkdtemp(prefix="jwt-authn-bench-"))
    jwks = JwksServer().start()
    cells: dict[tuple[str, str], list[dict]] = {c: [] for c in cells_todo}
    mw: dict = {}
    try:
        # Private copies: dist/ may be rebuilt while this runs (Envoy reads
        # the module again at every start).
        module_copy = workdir / "jwt-authn.wasm"
        shutil.copyfile(module, module_copy)
        noop_copy = workdir / "noop.wasm"
        if noop_module.is_file():
            shutil.copyfile(noop_module, noop_copy)
        floor_copy = workdir / "ffi-floor.wasm"
        if floor_module.is_file():
            shutil.copyfile(floor_module, floor_copy)
        t0 = time.monotonic()
        cfg, cached, tokens, pools, keys = build_config(jwks.port, args.pool_size)
        rs_key = keys["RS256"]
        jwks.documents["/jwks"] = (200, tokens.pop("_remote_jwks"))
        pool_files: dict[str, Path] = {}
        for kind, pool in pools.items():
            pool_files[kind] = workdir / f"{kind}.txt"
            pool_files[kind].write_text("\n".join(pool) + "\n")
        mw_file = None
        if mw_targets:
            mw_file = workdir / "many_workers.txt"
            mw_file.write_text(
                "\n".join(js.sign(rs_key, "RS256", claims_for(i, "mw"), kid="rs") for i in range(args.mw_tokens))
                + "\n"
            )
        print(f"bench: tokens generated in {time.monotonic() - t0:.1f} s", file=sys.stderr)

        if cells_todo:
            status = run_main(
                args, meta, cells, cells_todo, cfg, cached, tokens, pools, pool_files, jwks, pin, module_copy, noop_copy,
                floor=(floor_copy, floor_config(keys)),
            )
            if status:
                return status
        if mw_targets and mw_file is not None:
            # Warm-up tokens (1,000 of the RS256 pool) also occupy the shared
            # cache; more of them would only crowd the measured ones.
            mw_warm = workdir / "many_workers_warm.txt"
            mw_warm.write_text("\n".join(pools["rs_pool"][:MW_WARM_TOKENS]) + "\n")
            mw = run_many_workers(args, meta, mw_targets, cfg, mw_warm, mw_file, module_copy, jwks)
        meta["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        jwks.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarize(cells)
    goals = goal_rows(cells, mw, meta)
    for (s, t), runs in cells.items():
        if any(not r["rps"] for r in runs):
            meta["problems"].append(f"{s} on {t}: zero throughput in a run")
    md = render_markdown(meta, summary, cells, scenarios, main_targets, goals, mw)
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": meta,
        "goals": goals,
        "cells": [{"scenario": s, "target": t, **summary[(s, t)], "raw": cells[(s, t)]} for (s, t) in cells],
        "many_workers": mw,
    }
    stem = "corun" if args.corun else "latest"
    (out / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / f"{stem}.md").write_text(md)
    print(md)
    if args.smoke:
        problems = smoke_problems(out, stem, cells_todo, mw_targets, data)
        meta["problems"] += problems
        print(f"bench: smoke outputs in {out}", file=sys.stderr)
    if meta["problems"]:
        print("bench: PROBLEMS:\n  " + "\n  ".join(meta["problems"]), file=sys.stderr)
        return 1
    return 0


def smoke_problems(
    out: Path, stem: str, cells_todo: list[tuple[str, str]], mw_targets: list[str], data: dict
) -> list[str]:
    """What a smoke run must have produced: both outputs (`stem`.md and
    .json), every cell and many_workers target with throughput, and a row
    for every goal."""
    problems = []
    for name in (f"{stem}.md", f"{stem}.json"):
        p = out / name
        if not p.is_file() or p.stat().st_size == 0:
            problems.append(f"output {p} missing")
    try:
        back = json.loads((out / f"{stem}.json").read_text())
    except (OSError, ValueError) as err:
        return problems + [f"{stem}.json unreadable: {err}"]
    got = {(c["scenario"], c["target"]): c for c in back.get("cells", [])}
    for key in cells_todo:
        if key not in got or not got[key].get("rps_median"):
            problems.append(f"{key[0]} on {key[1]}: no throughput in the output")
    for t in mw_targets:
        runs = data.get("many_workers", {}).get("runs", {}).get(t, [])
        if not runs or not all(r["rps"] for r in runs):
            problems.append(f"many_workers on {t}: no throughput in the output")
    if len(back.get("goals", [])) != len(GOALS):
        problems.append("goals missing from the output")
    return problems


def run_main(
    args, meta, cells, cells_todo, cfg, cached, tokens, pools, pool_files, jwks, pin, module, noop_module,
    floor: tuple[Path, str] | None = None,
) -> int:
    """The 1-worker Envoy (two of them with --corun): verdict check, warm-up,
    interleaved runs. Fills `cells` and `meta`; returns non-zero when the
    verdict check failed."""
    targets = set(meta["listeners"])
    small = {"shared_token_cache_size": SMALL_SHARED_CACHE}
    extra_wasm = {}
    if "noop_wasm" in targets:
        extra_wasm["noop_wasm"] = wasm_filter_entry("noop_wasm", "noop", "noop", noop_module, None)
    if "ffi_floor" in targets and floor is not None:
        extra_wasm["ffi_floor"] = wasm_filter_entry("ffi_floor", "ffi_floor", "ffi_floor", floor[0], floor[1])
    if "wasm_portable" in targets:
        portable = json.dumps(with_extensions(cfg, signature_backend="portable", **small))
        extra_wasm["wasm_portable"] = wasm_filter_entry(
            "jwt_authn_portable", "jwt_authn", "jwt_authn_portable", module, portable
        )
    envoys = [
        SideBySideEnvoy(
            cfg,
            wasm_config=with_extensions(cfg, **small),
            wasm="wasm" in targets,
            native="native" in targets,
            direct_response=True,
            baseline="baseline" in targets,
            extra_native={"native_cached": cached} if "native_cached" in targets else {},
            extra_wasm=extra_wasm,
            concurrency=1,
            log_level="warning",
            extra_clusters={"jwks": ("127.0.0.1", jwks.port)},
            wasm_path=module,
        )
        for _ in range(2 if args.corun else 1)
    ]
    try:
        for envoy in envoys:
            try:
                envoy.start()
            except EnvoyStartError as err:
                print(
                    f"bench: Envoy did not start: {str(err)[:3000]}\n(a module without the `extensions` fields "
                    "signature_backend / shared_token_cache_size refuses the wasm and wasm_portable configs)",
                    file=sys.stderr,
                )
                return 1
            if pin and envoy.pid is not None:
                subprocess.run(
                    ["taskset", "-a", "-cp", "0", str(envoy.pid)], capture_output=True, timeout=10, check=True
                )
        wrk_cpu = "1" if pin else None

        def auth_for(scenario: str) -> str | None:
            """The Authorization value (for a pool: its last token, the one a
            run reaches last, so the verdict check leaves no cache hit behind)."""
            kind = SCENARIOS[scenario][1]
            if kind is None:
                return None
            return f"Bearer {pools[kind][-1] if kind in pools else tokens[kind]}"

        # Correctness first (this also warms the remote JWKS on every listener).
        for envoy in envoys:
            for s, t in cells_todo:
                path, _, allowed = SCENARIOS[s]
                auth = auth_for(s)
                headers = {"authorization": auth} if auth else {}
                want = 200 if (allowed or t in REFERENCE_TARGETS) else 401
                got = None
                for _ in range(50):  # remote keys: the first requests may wait for the fetch
                    got = http_request(envoy.url(t), path=path, headers=headers).status
                    if got == want:
                        break
                    time.sleep(0.1)
                if got != want:
                    meta["problems"].append(f"{s} on {t}: status {got}, expected {want}")
        if meta["problems"]:
            print("bench: verdict check failed:\n  " + "\n  ".join(meta["problems"]), file=sys.stderr)
            return 1

        def wrk_for(envoy, s: str, t: str, duration: int):
            """The wrk run of target `t` in scenario `s`, as a callable."""
            path, kind, _ = SCENARIOS[s]
            return lambda: run_wrk(
                envoy.url(t) + path,
                auth_for(s),
                tokens_file=pool_files.get(kind or ""),
                duration=duration,
                connections=args.connections,
                max_requests=args.max_requests,
                cpu=wrk_cpu,
            )

        def counters_before(envoy, t: str) -> dict | None:
            return cache_counters(envoy.stats()) if t in WASM_TARGETS else None

        def finish(rec: dict, envoy, s: str, t: str, before: dict | None) -> dict:
            """Adds the run's cache counters and checks its verdicts."""
            if before is not None:
                rec["counters"] = counter_delta(before, cache_counters(envoy.stats()))
            problem = check_verdicts(rec, SCENARIOS[s][2] or t in REFERENCE_TARGETS)
            if problem:
                meta["problems"].append(f"{s} on {t}: {problem}")
            return rec

        def measure(s: str, t: str, duration: int, envoy=envoys[0]) -> dict:
            before = counters_before(envoy, t)
            rec = cpu_accounting(envoy.pid, wrk_for(envoy, s, t, duration))
            if before is not None:
                time.sleep(COUNTER_FLUSH_S)
            return finish(rec, envoy, s, t, before)

        def measure_pair(s: str, ta: str, tb: str, duration: int, swap: bool) -> tuple[dict, dict]:
            """--corun: `ta` on one Envoy and `tb` on the other at the same time
            (`swap` trades the Envoys), each with its own wrk."""
            ea, eb = (envoys[1], envoys[0]) if swap else (envoys[0], envoys[1])
            before = (counters_before(ea, ta), counters_before(eb, tb))
            runs = (wrk_for(ea, s, ta, duration), wrk_for(eb, s, tb, duration))
            results: list = [None, None]

            def go(i: int) -> None:
                try:
                    results[i] = runs[i]()
                except Exception as err:  # noqa: BLE001 - re-raised below, on the main thread
                    results[i] = err

            c0, m0 = (worker_cpu_s(ea.pid), worker_cpu_s(eb.pid)), machine_cpu()
            threads = [threading.Thread(target=go, args=(i,)) for i in (0, 1)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            c1, m1 = (worker_cpu_s(ea.pid), worker_cpu_s(eb.pid)), machine_cpu()
            for r in results:
                if isinstance(r, Exception):
                    raise r
            for i in (0, 1):
                add_accounting(results[i], (c0[i], c1[i]), (m0, m1))
            if before != (None, None):
                time.sleep(COUNTER_FLUSH_S)
            return finish(results[0], ea, s, ta, before[0]), finish(results[1], eb, s, tb, before[1])

        def report(run: int, s: str, t: str, rec: dict) -> None:
            rec["loadavg_1m"] = round(os.getloadavg()[0], 2)
            cells[(s, t)].append(rec)
            print(
                f"  run {run + 1}/{args.runs} {s:<20} {t:<14} {rec['rps']:>10,.0f} rps  "
                f"p50 {rec['latency_us']['p50'] / 1000:6.2f} ms  p99 {rec['latency_us']['p99'] / 1000:6.2f} ms",
                file=sys.stderr,
            )

        if args.warmup > 0:
            for envoy in envoys:
                for s, t in cells_todo:
                    measure(s, t, args.warmup, envoy)
        # Steady state from here: no request may wait for a JWKS fetch (background
        # refreshes may still run, every cache_duration).
        hits0 = sum(jwks.hits.values())
        stats0 = [envoy.stats() for envoy in envoys]
        fetches0 = sum(module_jwks_fetches(st) for st in stats0)
        paused0 = sum(module_paused_requests(st) for st in stats0)
        # --corun's cells_todo lists each pair's two cells one after the other.
        pairs = [(s, ta, tb) for (s, ta), (_, tb) in zip(cells_todo[::2], cells_todo[1::2])] if args.corun else []
        for run in range(args.runs):
            # Every other run goes backwards (A B, then B A): the host's speed
            # drifts (even with no CPU steal), and a fixed order would hand
            # whichever target runs later in the round the same side of every
            # drift. --corun runs a pair's sides at once, so no order favours
            # either; it trades the two Envoys instead.
            if args.corun:
                for s, ta, tb in pairs:
                    ra, rb = measure_pair(s, ta, tb, args.duration, swap=run % 2 == 1)
                    report(run, s, ta, ra)
                    report(run, s, tb, rb)
                continue
            for s, t in cells_todo if run % 2 == 0 else reversed(cells_todo):
                report(run, s, t, measure(s, t, args.duration))
        stats = [envoy.stats() for envoy in envoys]
        meta["jwks_hits_during_measurement"] = sum(jwks.hits.values()) - hits0
        meta["module_jwks_fetches_during_measurement"] = sum(module_jwks_fetches(st) for st in stats) - fetches0
        meta["module_paused_during_measurement"] = sum(module_paused_requests(st) for st in stats) - paused0
        meta["jwks_hits_total"] = sum(jwks.hits.values())
        if not all(envoy.alive() for envoy in envoys):
            meta["problems"].append("envoy exited during the benchmark")
        envoy = envoys[0]
        meta["resources"]["rss_bytes"] = rss_bytes(envoy.pid)
        meta["resources"]["wasm_memory_bytes"] = stats[0].get(MEMORY_GAUGE)
        keep = ("jwt_cache_hit", "jwt_cache_miss", "jwks_fetch_success", "jwks_fetch_failed")
        meta["stats"] = {
            k: v for k, v in sorted(stats[0].items()) if k.startswith("http.native") and k.rsplit(".", 1)[-1] in keep
        }
        meta["stats"].update({f"wasm.{k}": v for k, v in loadkit.wasm_request_counters(stats[0]).items() if v})
        meta["stats"].update(
            {f"wasm.{CACHE_COUNTERS[k]}": v for k, v in cache_counters(stats[0]).items() if v is not None}
        )
        meta["stats"].update(loadkit.vm_health(stats[0]))
        for envoy in envoys:
            failures = loadkit.vm_failure_lines(envoy.log_text())
            if failures:
                meta["problems"].append(f"wasm VM failure in the Envoy log: {failures[0][:200]}")
    finally:
        for envoy in envoys:
            envoy.cleanup()
    return 0


def run_many_workers(args, meta, targets, cfg, warm_file, mw_file, module, jwks) -> dict:
    """The --concurrency 4 Envoy, restarted per run: every target gets
    exactly tokens x sends requests. Returns the many_workers record."""
    n, sends = args.mw_tokens, args.mw_sends
    total = n * sends
    big = with_native_cache(cfg, max(100, n))
    mw: dict = {
        "tokens": n,
        "sends": sends,
        "threads": args.mw_threads,
        "connections": args.mw_connections,
        "concurrency": args.mw_concurrency,
        "native_cache_size": max(100, n),
        "runs_done": 0,
        "runs": {t: [] for t in targets},
    }
    per_thread = total // args.mw_threads
    for run in range(args.runs):
        envoy = BenchEnvoy(
            cfg,
            wasm_config=big,
            wasm="wasm" in targets,
            native="native" in targets,
            direct_response=True,
            extra_native={"native_cached": big} if "native_cached" in targets else {},
            concurrency=args.mw_concurrency,
            log_level="warning",
            extra_clusters={"jwks": ("127.0.0.1", jwks.port)},
            wasm_path=module,
        )
        try:
            envoy.start()
            warm_tok = warm_file.read_text().split("\n", 1)[0]
            for t in targets:
                for auth, want in ((f"Bearer {warm_tok}", 200), (None, 401)):
                    got = http_request(envoy.url(t), headers={"authorization": auth} if auth else {}).status
                    if got != want:
                        meta["problems"].append(f"many_workers on {t}: status {got}, expected {want}")
            if args.warmup > 0:
                # Other tokens (the RS256 pool): they leave the measured tokens uncached.
                for t in targets:
                    run_wrk(
                        envoy.url(t),
                        None,
                        tokens_file=warm_file,
                        duration=args.warmup,
                        connections=args.mw_connections,
                        max_requests=args.max_requests,
                        cpu=None,
                    )
            for t in targets:
                stats = envoy.stats()
                before = cache_counters(stats)
                rq0 = stats.get(f"http.{t}.downstream_rq_total", 0)
                hit0, miss0 = native_counter(stats, t, "jwt_cache_hit"), native_counter(stats, t, "jwt_cache_miss")
                rss0 = rss_bytes(envoy.pid)
                rec = cpu_accounting(
                    envoy.pid,
                    lambda: run_wrk(
                        envoy.url(t),
                        None,
                        tokens_file=mw_file,
                        duration=args.mw_timeout,
                        connections=args.mw_connections,
                        max_requests=per_thread,
                        cpu=None,
                        threads=args.mw_threads,
                        exact=True,
                    ),
                )
                time.sleep(COUNTER_FLUSH_S)
                stats = envoy.stats()
                rec["envoy_requests"] = stats.get(f"http.{t}.downstream_rq_total", 0) - rq0
                rec["rss_bytes"] = rss_bytes(envoy.pid)
                rec["rss_growth_bytes"] = rec["rss_bytes"] - rss0 if rec["rss_bytes"] and rss0 else None
                if t == "wasm":
                    rec["counters"] = counter_delta(before, cache_counters(stats))
                    rec["wasm_memory_bytes"] = stats.get(MEMORY_GAUGE)
                    meta["resources"]["mw_wasm_memory_bytes"] = stats.get(MEMORY_GAUGE)
                    meta["resources"]["mw_rss_bytes"] = rec["rss_bytes"]
                    meta["resources"]["mw_wasm_rss_growth_bytes"] = rec["rss_growth_bytes"]
                else:
                    hit, miss = native_counter(stats, t, "jwt_cache_hit"), native_counter(stats, t, "jwt_cache_miss")
                    rec["native_hit"] = hit - hit0 if hit is not None and hit0 is not None else None
                    rec["native_miss"] = miss - miss0 if miss is not None and miss0 is not None else None
                problem = check_verdicts(rec, True)
                if problem is None and rec["requests"] != total:
                    problem = f"{rec['requests']} of {total} requests completed within {args.mw_timeout} s"
                if problem:
                    meta["problems"].append(f"many_workers on {t}: {problem}")
                mw["runs"][t].append(rec)
                print(
                    f"  run {run + 1}/{args.runs} {MANY_WORKERS:<20} {t:<14} {rec['rps']:>10,.0f} rps  "
                    f"p50 {rec['latency_us']['p50'] / 1000:6.2f} ms  p99 {rec['latency_us']['p99'] / 1000:6.2f} ms"
                    f"  ({rec['requests']:,} requests, Envoy saw {rec['envoy_requests']:,})",
                    file=sys.stderr,
                )
            if not envoy.alive():
                meta["problems"].append("many_workers: envoy exited during the benchmark")
            failures = loadkit.vm_failure_lines(envoy.log_text())
            if failures:
                meta["problems"].append(f"many_workers: wasm VM failure in the Envoy log: {failures[0][:200]}")
            mw["runs_done"] = run + 1
        except EnvoyStartError as err:
            meta["problems"].append(f"many_workers: Envoy did not start: {str(err)[:500]}")
            break
        finally:
            envoy.cleanup()
    return mw


if __name__ == "__main__":
    sys.exit(main())
