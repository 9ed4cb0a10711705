#!/usr/bin/env python3
"""Soak: a bounded, mixed-token load against the wasm filter with key rotation.

Setup: one Envoy (--concurrency 2, wasm listener only, routes answer with a
local direct_response), a 127.0.0.1 JWKS server whose keys rotate every
--rotate-every seconds (the published set is previous + current + next, so a
key is published one rotation before it signs and kept one rotation after),
and the filter on remote_jwks with a 2 s cache_duration. Client threads send
a fixed mix of valid, bad-signature, forged (published kid, attacker key),
expired, missing, malformed, wrong-issuer and unknown-kid tokens. A sampler
records Envoy's VmRSS (/proc/<pid>/status) and admin /memory every
--sample-every seconds.

Verdict (exit 1 on any failure):
  - verdicts: no valid token denied, no invalid token allowed;
  - health: Envoy alive, no transport errors, no wasm VM failure or reload
    (counters and log), filter counters equal what the clients saw;
  - rotation: the filter fetched keys after rotations and valid tokens were
    signed by at least two different keys;
  - memory, after a warm-up of the first 20% of the run:
      * final RSS (median of the last 3 samples) <= 1.5 x the RSS after
        warm-up (median of the first 3 samples after it), and
      * the least-squares slope of RSS over the second half of the run is
        <= 1 MiB/min; this check only applies when the second half spans at
        least 60 s (shorter windows are dominated by allocator noise).

Usage: scripts/soak.sh [--duration 600] [--smoke]   (--smoke: 20 s)
Writes <out>/soak-latest.md and soak-latest.json (or soak-smoke.* with --smoke).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

# bench/ (loadkit) and tests/e2e/ (harness, jwt_sign) are plain directories.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests" / "e2e")]

import loadkit  # noqa: E402
from harness import BenchEnvoy, default_wasm_path, http_request  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
RATIO_LIMIT = 1.5
SLOPE_LIMIT_MIB_PER_MIN = 1.0
SLOPE_MIN_SPAN_S = 60.0
WARMUP_FRACTION = 0.2


def memory_verdict(samples: list[dict], duration_s: float) -> dict:
    """Applies the memory rules to (t, rss_kib) samples; see the module doc."""
    warmup = duration_s * WARMUP_FRACTION
    after = [s for s in samples if s["t"] >= warmup and s["rss_kib"]]
    out: dict = {"warmup_s": round(warmup, 1), "checks": [], "ok": True}
    if len(after) < 4:
        out["checks"].append(("enough samples after warm-up", False, f"{len(after)} samples"))
        out["ok"] = False
        return out
    warm = statistics.median(s["rss_kib"] for s in after[:3])
    final = statistics.median(s["rss_kib"] for s in after[-3:])
    peak = max(s["rss_kib"] for s in samples if s["rss_kib"])
    out.update(
        rss_warm_mib=round(warm / 1024, 1), rss_final_mib=round(final / 1024, 1), rss_peak_mib=round(peak / 1024, 1)
    )
    ratio_ok = final <= RATIO_LIMIT * warm
    out["checks"].append((f"final RSS <= {RATIO_LIMIT} x RSS after warm-up", ratio_ok, f"{final / warm:.3f} x"))
    half = [s for s in samples if s["t"] >= duration_s / 2 and s["rss_kib"]]
    span = (half[-1]["t"] - half[0]["t"]) if len(half) >= 2 else 0.0
    slope = loadkit.slope_per_min([(s["t"], s["rss_kib"] / 1024) for s in half])
    out["slope_mib_per_min"] = None if slope is None else round(slope, 3)
    alloc_slope = loadkit.slope_per_min(
        [(s["t"], s["allocated"] / 2**20) for s in half if s.get("allocated") is not None]
    )
    out["allocated_slope_mib_per_min"] = None if alloc_slope is None else round(alloc_slope, 3)
    if span >= SLOPE_MIN_SPAN_S and slope is not None:
        slope_ok = slope <= SLOPE_LIMIT_MIB_PER_MIN
        out["checks"].append(
            (
                f"RSS slope over 2nd half <= {SLOPE_LIMIT_MIB_PER_MIN} MiB/min",
                slope_ok,
                f"{slope:.3f} MiB/min over {span:.0f} s",
            )
        )
    else:
        slope_ok = True
        shown = "n/a" if slope is None else f"{slope:.3f} MiB/min"
        out["checks"].append(("RSS slope (not judged: 2nd half < 60 s)", True, f"{shown} over {span:.0f} s"))
    out["ok"] = ratio_ok and slope_ok
    return out


class Sampler(threading.Thread):
    """Samples RSS, /memory and the filter counters every `every` s until stopped (bounded)."""

    def __init__(self, envoy: BenchEnvoy, every: float, max_s: float):
        super().__init__(daemon=True)
        self.envoy = envoy
        self.every = every
        self.max_s = max_s
        self.samples: list[dict] = []
        self.stop_event = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> None:
        s: dict = {"t": round(time.monotonic() - self.t0, 2), "rss_kib": loadkit.rss_kib(self.envoy.pid or -1)}
        try:
            mem = loadkit.admin_json(self.envoy.admin_url, "/memory", timeout=2.0)
            s["allocated"] = int(mem.get("allocated", 0))
            s["heap_size"] = int(mem.get("heap_size", 0))
            counters = loadkit.wasm_request_counters(self.envoy.stats())
            s["requests"] = sum(counters.values())
        except (OSError, ValueError):
            s["admin_error"] = True
        self.samples.append(s)

    def run(self) -> None:
        deadline = self.t0 + self.max_s
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            self.sample()
            self.stop_event.wait(self.every)
        self.sample()


def rotate_loop(ring: loadkit.KeyRing, every: float, stop: threading.Event, max_s: float) -> None:
    deadline = time.monotonic() + max_s
    while not stop.wait(every) and time.monotonic() < deadline:
        ring.rotate()


def render(report: dict) -> str:
    r, m, load = report, report["memory"], report["load"]
    lines = [
        f"# Soak {'(smoke) ' if r['smoke'] else ''}- {'PASS' if r['ok'] else 'FAIL'}",
        "",
        f"- date: {r['date']}; duration {r['duration_s']} s; Envoy `--concurrency 2`, wasm listener only, "
        "direct_response routes",
        f"- load: {r['threads']} Python client threads (keep-alive), key rotation every {r['rotate_every_s']} s "
        f"(previous + current + next published), remote_jwks cache_duration 2 s",
        f"- throughput: {load['sent']:,} requests in {load['elapsed_s']} s = {load['rps']:,} req/s; "
        f"client latency p50 {load['latency_ms']['p50']} ms, p99 {load['latency_ms']['p99']} ms",
        f"- key rotations: {r['rotations']}; distinct keys that signed accepted tokens: {r['valid_kids']}; "
        f"JWKS requests served: {r['jwks_hits']}; filter fetch_success: {r['fetch_success']}",
        "",
        "## Verdicts by token kind (client side)",
        "",
        "| kind | must be | statuses seen | filter reason expected |",
        "|---|---|---|---|",
    ]
    for kind, statuses in load["by_kind"].items():
        k = loadkit.KINDS[kind]
        seen = ", ".join(f"{s}: {n:,}" for s, n in statuses.items())
        lines.append(f"| {kind} | {'allowed' if k.valid else 'denied'} | {seen} | {k.reason} |")
    lines += ["", "## Filter counters (wasmcustom.jwt_authn_wasm.requests.*, during the load)", ""]
    lines += ["| outcome | count |", "|---|---:|"]
    for name, n in sorted(r["filter_counters"].items(), key=lambda kv: -kv[1]):
        if n:
            lines.append(f"| {name} | {n:,} |")
    lines += [
        "",
        "## Memory",
        "",
        f"- RSS after warm-up ({m['warmup_s']} s): {m.get('rss_warm_mib')} MiB; final: {m.get('rss_final_mib')} MiB; "
        f"peak: {m.get('rss_peak_mib')} MiB",
        f"- RSS slope over the 2nd half: {m.get('slope_mib_per_min')} MiB/min; tcmalloc `allocated` slope: "
        f"{m.get('allocated_slope_mib_per_min')} MiB/min",
        "",
        "| t (s) | RSS (MiB) | allocated (MiB) | heap (MiB) | filter requests so far |",
        "|---:|---:|---:|---:|---:|",
    ]
    samples = r["samples"]
    step = max(1, len(samples) // 12)
    shown = samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else [])
    for s in shown:
        mib = lambda v: f"{v / 2**20:.1f}" if v is not None else "-"  # noqa: E731
        rss = f"{s['rss_kib'] / 1024:.1f}" if s.get("rss_kib") else "-"
        lines.append(
            f"| {s['t']:.0f} | {rss} | {mib(s.get('allocated'))} | {mib(s.get('heap_size'))} "
            f"| {s.get('requests', '-')} |"
        )
    lines += ["", "## Checks", "", "| check | result | detail |", "|---|---|---|"]
    for name, ok, detail in r["checks"]:
        lines.append(f"| {name} | {'ok' if ok else 'FAIL'} | {detail} |")
    if load["violation_samples"]:
        lines += ["", "## First violations", ""]
        lines += [f"- {json.dumps(v)}" for v in load["violation_samples"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    ap.add_argument("--smoke", action="store_true", help="a ~20 s run (rotation every 5 s, samples every 1 s)")
    ap.add_argument(
        "--rotate-every", type=float, default=None, help="seconds between key rotations (default 30, smoke 5)"
    )
    ap.add_argument(
        "--sample-every", type=float, default=None, help="seconds between memory samples (default 5, smoke 1)"
    )
    ap.add_argument("--threads", type=int, default=3, help="client threads (default 3)")
    ap.add_argument("--max-requests", type=int, default=20_000_000, help="request cap for the whole run")
    ap.add_argument("--out", default=str(BENCH_DIR / "results"), help="directory for the report")
    ap.add_argument("--wasm", default=None, help="module to load (default dist/jwt-authn.wasm)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.duration = 20.0
    rotate_every = args.rotate_every or (5.0 if args.smoke else 30.0)
    sample_every = args.sample_every or (1.0 if args.smoke else 5.0)
    if not 5 <= args.duration <= 24 * 3600 or not 1 <= args.threads <= 16 or rotate_every < 3 or sample_every <= 0:
        ap.error("--duration in [5, 86400] s, --threads in [1, 16], --rotate-every >= 3 s (> 1 JWKS refresh)")
    wasm_path = Path(args.wasm) if args.wasm else default_wasm_path()
    if not wasm_path.is_file():
        print(f"soak: {wasm_path} missing: run `make build`", file=sys.stderr)
        return 2

    ring = loadkit.KeyRing(algs=("ES256", "RS256"))
    mix = loadkit.TokenMix(ring)
    server = loadkit.FlakyJwksServer(ring, ["good"]).start()
    cfg = {
        "providers": {"idp": loadkit.remote_provider(server.uri, timeout_s=2.0, cache_s=2.0)},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }
    envoy = BenchEnvoy(
        cfg,
        native=False,
        direct_response=True,
        concurrency=2,
        log_level="warning",
        extra_clusters={"jwks": ("127.0.0.1", server.port)},
        wasm_path=wasm_path,
    )
    checks: list[tuple[str, bool, str]] = []
    stop = threading.Event()
    try:
        envoy.start()
        # Ready when a valid token passes (first fetch done), bounded.
        deadline = time.monotonic() + 20
        ready = False
        while time.monotonic() < deadline and not ready:
            auth, _ = mix.header("valid")
            if auth:
                ready = http_request(envoy.wasm_url, headers={"authorization": auth}).status == 200
            if not ready:
                time.sleep(0.1)
        if not ready:
            print(
                "soak: the filter never accepted a valid token (first JWKS fetch failed?)\n" + envoy.log_tail(),
                file=sys.stderr,
            )
            return 1
        time.sleep(0.3)  # request counters are published on the filter's 100 ms tick
        before = envoy.stats()
        sampler = Sampler(envoy, sample_every, args.duration + 30)
        rotator = threading.Thread(target=rotate_loop, args=(ring, rotate_every, stop, args.duration + 5), daemon=True)
        runner = loadkit.LoadRunner(
            envoy.wasm_url, mix, threads=args.threads, duration_s=args.duration, max_requests=args.max_requests
        )
        print(
            f"soak: {args.duration:g} s of load, key rotation every {rotate_every:g} s, "
            f"sampling every {sample_every:g} s",
            file=sys.stderr,
        )
        sampler.start()
        rotator.start()
        result = runner.run()
        stop.set()
        time.sleep(min(1.0, sample_every))
        sampler.stop_event.set()
        sampler.join(timeout=10)
        rotator.join(timeout=10)
        alive = envoy.alive()
        after = envoy.stats() if alive else {}
        log = envoy.log_text()
    finally:
        stop.set()
        envoy.cleanup()
        server.stop()

    load = result.summary()
    counters_before = loadkit.wasm_request_counters(before)
    counters_after = loadkit.wasm_request_counters(after)
    delta = {k: counters_after.get(k, 0) - counters_before.get(k, 0) for k in counters_after}
    health_before, health_after = loadkit.vm_health(before), loadkit.vm_health(after)
    fetch_success = sum(v for k, v in after.items() if k.endswith(".fetch_success") and "jwt_authn_wasm.jwks" in k)
    vm_lines = loadkit.vm_failure_lines(log)
    valid_kids = sum(1 for n in ring.used_kids.values() if n)

    checks.append(
        (
            "no valid token denied, no invalid token allowed",
            not result.violations,
            f"{len(result.violations)} violations",
        )
    )
    checks.append(
        ("every token kind was sent", set(load["by_kind"]) == set(mix.sequence), ", ".join(sorted(load["by_kind"])))
    )
    checks.append(("Envoy alive at the end", alive, ""))
    checks.append(("no transport errors", not result.transport_errors, json.dumps(dict(result.transport_errors))))
    reloads = {k: v for k, v in health_after.items() if "vm_reload" in k and v}
    vm_same = health_before.get("wasm.envoy.wasm.runtime.v8.created") == health_after.get(
        "wasm.envoy.wasm.runtime.v8.created"
    )
    checks.append(
        (
            "no wasm VM failure or reload",
            not reloads and vm_same and not vm_lines,
            f"reload counters {reloads}; log lines {vm_lines[:2]}",
        )
    )
    allowed_delta = delta.get("allowed", 0)
    denied_delta = sum(v for k, v in delta.items() if k != "allowed")
    counters_ok = allowed_delta == result.allowed() and denied_delta == result.denied()
    checks.append(
        (
            "filter counters match the clients",
            counters_ok,
            f"filter allowed/denied {allowed_delta}/{denied_delta}, clients {result.allowed()}/{result.denied()}",
        )
    )
    expected_rotations = int(args.duration // rotate_every) - 1
    checks.append(
        (
            "keys rotated and the filter followed",
            ring.rotations >= max(1, expected_rotations) and valid_kids >= 2 and fetch_success >= 2,
            f"{ring.rotations} rotations, {valid_kids} signing keys accepted, {fetch_success} fetches",
        )
    )
    memory = memory_verdict(sampler.samples, args.duration)
    checks += memory["checks"]
    ok = all(c[1] for c in checks)
    report = {
        "ok": ok,
        "smoke": args.smoke,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": args.duration,
        "threads": args.threads,
        "rotate_every_s": rotate_every,
        "rotations": ring.rotations,
        "valid_kids": valid_kids,
        "jwks_hits": sum(server.hits.values()),
        "fetch_success": fetch_success,
        "load": load,
        "filter_counters": delta,
        "vm_health": health_after,
        "memory": memory,
        "samples": sampler.samples,
        "checks": checks,
        "loadavg": os.getloadavg(),
    }
    md = render(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "soak-smoke" if args.smoke else "soak-latest"
    (out / f"{stem}.md").write_text(md)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=list) + "\n")
    print(md)
    print(f"SOAK VERDICT: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
