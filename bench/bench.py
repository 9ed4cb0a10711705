#!/usr/bin/env python3
"""Benchmark: our wasm filter against Envoy's native jwt_authn, same Envoy run.

One Envoy (--concurrency 1) serves four listeners whose routes all answer
with a local direct_response (so no upstream is measured):
  wasm           our module, config C
  native         envoy.filters.http.jwt_authn, the same config C
  native_cached  native with jwt_cache_config {jwt_cache_size: 100} added to
                 every provider (Envoy enables its verified-token cache only
                 when jwt_cache_config is present; size 0 means its default
                 100); our module keeps such a cache whatever the config says
  baseline       no auth filter at all
and wrk (1 thread, pinned to the other core) drives each in turn with the
same token. Scenarios: valid RS256 / ES256 / EdDSA token (local_jwks), bad
signature, missing token, a valid RS256 token whose key comes from a local
remote_jwks server (warm: fetched before measuring), and 1000 distinct valid
RS256 / ES256 / EdDSA tokens round-robin (no cache ever hits).

Runs are interleaved (run 1 of every cell, then run 2, ...) and each cell's
result is the median of its runs, with min-max shown. Every run also checks
the verdicts (all 2xx for valid tokens, all 401 otherwise), so a number is
never reported for a filter that answered wrongly.

Output: markdown to stdout and bench/results/latest.md, data in
bench/results/latest.json. Usage: scripts/bench.sh [--duration 10] [--runs 3]
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/ (loadkit) and tests/e2e/ (harness, jwt_sign) are plain directories.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests" / "e2e")]

import jwt_sign as js  # noqa: E402
import loadkit  # noqa: E402
from harness import BenchEnvoy, JwksServer, default_wasm_path, envoy_binary, http_request  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk_report.lua"
ISSUER = loadkit.ISSUER
TARGETS = ("baseline", "native", "native_cached", "wasm")
# (path, token kind, expect allowed). A "*_pool" kind is POOL_SIZE distinct
# valid tokens sent round-robin: far more than any verified-token cache holds
# (100 by default), so every request pays for a signature check.
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
POOL_SIZE = 1000
# The caches only store verified tokens: for denials native_cached == native.
CACHE_SCENARIOS = {s for s, (_, _, allowed) in SCENARIOS.items() if allowed}


def build_config(jwks_port: int) -> tuple[dict, dict, dict[str, str], dict[str, list[str]]]:
    """(config, config with native jwt cache, tokens by kind, token pools by kind)."""
    rs, es, ed, remote = js.new_key("RS256"), js.new_key("ES256"), js.new_key("EdDSA"), js.new_key("RS256")
    local_jwks = js.jwks_text(
        [js.public_jwk(rs, "rs", "RS256"), js.public_jwk(es, "es", "ES256"), js.public_jwk(ed, "ed", "EdDSA")]
    )
    cfg = {
        "providers": {
            "local": {"issuer": ISSUER, "local_jwks": {"inline_string": local_jwks}},
            "remote": {
                "issuer": ISSUER,
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
    cached = copy.deepcopy(cfg)
    for p in cached["providers"].values():
        p["jwt_cache_config"] = {"jwt_cache_size": 100}
    claims = js.claims(iss=ISSUER, lifetime=24 * 3600)
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
        f"{kind}_pool": [js.sign(key, alg, {**claims, "jti": f"t{i}"}, kid=kind) for i in range(POOL_SIZE)]
        for kind, key, alg in (("rs", rs, "RS256"), ("es", es, "ES256"), ("ed", ed, "EdDSA"))
    }
    return cfg, cached, tokens, pools


def run_wrk(
    url: str,
    auth: str | None,
    *,
    tokens_file: Path | None,
    duration: int,
    connections: int,
    max_requests: int,
    cpu: str | None,
) -> dict:
    """One wrk run; returns its WRK_JSON record."""
    cmd = [
        "wrk",
        "-t1",
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
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 30, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            rec = json.loads(line[len("WRK_JSON ") :])
            rec["rps"] = rec["requests"] / (rec["duration_us"] / 1e6) if rec["duration_us"] else 0.0
            return rec
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")


def check_verdicts(rec: dict, allowed: bool) -> str | None:
    """Why a run's responses are not what the scenario expects (None if fine)."""
    e = rec["errors"]
    transport = e["connect"] + e["read"] + e["write"] + e["timeout"]
    if transport:
        return f"{transport} transport errors"
    if allowed and e["status"]:
        return f"{e['status']} of {rec['requests']} requests denied"
    if not allowed and e["status"] != rec["requests"]:
        return f"{rec['requests'] - e['status']} of {rec['requests']} requests allowed"
    return None


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt_rps(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def summarize(cells: dict[tuple[str, str], list[dict]]) -> dict[tuple[str, str], dict]:
    out = {}
    for key, runs in cells.items():
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


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def paired_ratios(cells: dict[tuple[str, str], list[dict]], s: str, num: str, den: str, field: str) -> list[float]:
    """Per-run ratios num/den for scenario s: run i of one against run i of the
    other, measured back to back, so load from outside the benchmark cancels
    out better than in a ratio of medians."""
    a, b = cells.get((s, num), []), cells.get((s, den), [])
    out = []
    for x, y in zip(a, b, strict=False):
        vx = x["rps"] if field == "rps" else x["latency_us"]["p99"]
        vy = y["rps"] if field == "rps" else y["latency_us"]["p99"]
        if vx and vy:
            out.append(vx / vy)
    return out


def fmt_paired(xs: list[float]) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def render_markdown(
    meta: dict,
    summary: dict[tuple[str, str], dict],
    cells: dict[tuple[str, str], list[dict]],
    scenarios: list[str],
    targets: list[str],
) -> str:
    lines = [
        "# jwt-authn-wasm benchmark",
        "",
        f"- date: {meta['date']}; host: {meta['cpu']} ({meta['cores']} cores); "
        f"load average before: {meta['loadavg_before']}, after: {meta.get('loadavg_after', '?')}",
        (
            f"- Envoy {meta['envoy_version']} `--concurrency 1`, V8; wrk 1 thread, {meta['connections']} connections, "
            f"{meta['duration_s']} s per run, median of {meta['runs']} runs (min-max), "
            f"{meta['warmup_s']} s warm-up per cell; CPU pinning: {meta['pinning']}"
        ),
        f"- module: `{meta['module']}` {meta['module_bytes']:,} bytes ({meta['module_gzip_bytes']:,} gzipped)",
        "- every route is an Envoy `direct_response` (no upstream); same config and tokens on every listener",
        "- `native_cached` = native with `jwt_cache_config: {jwt_cache_size: 100}` (native's default has no token "
        "cache); `wasm` keeps a verified-token cache (100 per provider) whatever the config says",
        f"- `*_unique_tokens`: {POOL_SIZE} distinct valid tokens round-robin, so no cache ever hits",
        "",
        "## Throughput (requests/s)",
        "",
        "Ratios are medians of per-run ratios (run i of wasm / run i of the other, measured back to back), "
        "with their min-max.",
        "",
        "| scenario | " + " | ".join(targets) + " | wasm/native | wasm/native_cached | wasm/baseline |",
        "|---|" + "---:|" * (len(targets) + 3),
    ]

    def cell(s: str, t: str) -> dict | None:
        return summary.get((s, t))

    for s in scenarios:
        row = [s]
        for t in targets:
            c = cell(s, t)
            row.append(
                "n/a" if c is None else f"{fmt_rps(c['rps_median'])} ({fmt_rps(c['rps_min'])}-{fmt_rps(c['rps_max'])})"
            )
        row.append(fmt_paired(paired_ratios(cells, s, "wasm", "native", "rps")))
        row.append(fmt_paired(paired_ratios(cells, s, "wasm", "native_cached", "rps")))
        base = meta.get("baseline_scenario")
        b = cell(base, "baseline") if base else None
        w = cell(s, "wasm")
        row.append(ratio(w and w["rps_median"], b and b["rps_median"]))
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "## Latency (ms, p50 / p99, median of runs; closed loop, so p50 includes queueing)",
        "",
        "| scenario | " + " | ".join(targets) + " | wasm/native p99 |",
        "|---|" + "---:|" * (len(targets) + 1),
    ]
    for s in scenarios:
        row = [s]
        for t in targets:
            c = cell(s, t)
            row.append("n/a" if c is None else f"{fmt_ms(c['p50_us_median'])} / {fmt_ms(c['p99_us_median'])}")
        row.append(fmt_paired(paired_ratios(cells, s, "wasm", "native", "p99")))
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "## Added CPU per request (us) = 1/rps - 1/rps(baseline), one saturated worker",
        "",
        "| scenario | " + " | ".join(t for t in targets if t != "baseline") + " |",
        "|---|" + "---:|" * len([t for t in targets if t != "baseline"]),
    ]
    base_key = meta.get("baseline_scenario")
    for s in scenarios:
        b = summary.get((base_key, "baseline")) if base_key else None
        row = [s]
        for t in targets:
            if t == "baseline":
                continue
            c = cell(s, t)
            if c is None or b is None or not c["rps_median"]:
                row.append("n/a")
            else:
                row.append(f"{1e6 / c['rps_median'] - 1e6 / b['rps_median']:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    if meta.get("stats"):
        lines += ["", "## Counters after the run", ""]
        for k, v in meta["stats"].items():
            lines.append(f"- `{k}`: {v}")
    if meta.get("problems"):
        lines += ["", "## PROBLEMS (verdicts not as expected; numbers above are not trustworthy)", ""]
        lines += [f"- {p}" for p in meta["problems"]]
    return "\n".join(lines) + "\n"


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per cell (default 3)")
    ap.add_argument(
        "--warmup", type=int, default=2, help="seconds of unmeasured warm-up per cell (default 2, 0 = none)"
    )
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--max-requests", type=int, default=5_000_000, help="request cap per wrk run (default 5e6)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list, default all")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma list, default all")
    ap.add_argument("--no-pin", action="store_true", help="do not pin Envoy and wrk to separate CPUs")
    ap.add_argument("--out", default=str(BENCH_DIR / "results"), help="directory for latest.md / latest.json")
    ap.add_argument("--wasm", default=None, help="module to load (default dist/jwt-authn.wasm)")
    args = ap.parse_args(argv)

    if not 1 <= args.duration <= 600 or not 1 <= args.runs <= 20 or not 0 <= args.warmup <= 60:
        ap.error("--duration must be in [1, 600], --runs in [1, 20], --warmup in [0, 60]")
    scenarios = [s for s in args.scenarios.split(",") if s]
    targets = [t for t in args.targets.split(",") if t]
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")
    for t in targets:
        if t not in TARGETS:
            ap.error(f"unknown target {t!r} (known: {', '.join(TARGETS)})")
    if shutil.which("wrk") is None:
        print("bench: wrk not found (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    wasm_path = Path(args.wasm) if args.wasm else default_wasm_path()
    if not wasm_path.is_file():
        print(f"bench: {wasm_path} missing: run `make build`", file=sys.stderr)
        return 2
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None

    # Baseline has no filter: one scenario stands for all (same header size as RS256).
    cells_todo: list[tuple[str, str]] = []
    for s in scenarios:
        for t in targets:
            if t == "baseline" and s != scenarios[0]:
                continue
            if t == "native_cached" and s not in CACHE_SCENARIOS:
                continue
            cells_todo.append((s, t))

    module_bytes = wasm_path.stat().st_size
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "envoy_version": envoy_version(envoy_binary()),
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": args.runs,
        "warmup_s": args.warmup,
        "pinning": "Envoy on CPU 0, wrk on CPU 1" if pin else "none",
        "module": str(
            wasm_path.relative_to(loadkit.REPO_ROOT) if wasm_path.is_relative_to(loadkit.REPO_ROOT) else wasm_path
        ),
        "module_bytes": module_bytes,
        "module_gzip_bytes": len(gzip.compress(wasm_path.read_bytes(), 9)),
        "baseline_scenario": scenarios[0] if "baseline" in targets else None,
        "problems": [],
    }
    if os.getloadavg()[0] > 1.0:
        print(
            f"bench: warning: load average {meta['loadavg_before']} before starting; numbers will be noisy",
            file=sys.stderr,
        )

    jwks = JwksServer().start()
    envoy = None
    pool_dir = Path(tempfile.mkdtemp(prefix="jwt-authn-bench-"))
    try:
        cfg, cached, tokens, pools = build_config(jwks.port)
        jwks.documents["/jwks"] = (200, tokens.pop("_remote_jwks"))
        pool_files: dict[str, Path] = {}
        for kind, pool in pools.items():
            pool_files[kind] = pool_dir / f"{kind}.txt"
            pool_files[kind].write_text("\n".join(pool) + "\n")
        envoy = BenchEnvoy(
            cfg,
            direct_response=True,
            baseline=True,
            extra_native={"native_cached": cached},
            concurrency=1,
            log_level="warning",
            extra_clusters={"jwks": ("127.0.0.1", jwks.port)},
            wasm_path=wasm_path,
        ).start()
        if pin and envoy.pid is not None:
            subprocess.run(["taskset", "-a", "-cp", "0", str(envoy.pid)], capture_output=True, timeout=10, check=True)
        wrk_cpu = "1" if pin else None

        def auth_for(scenario: str) -> str | None:
            """The Authorization value (for a pool: its first token)."""
            kind = SCENARIOS[scenario][1]
            if kind is None:
                return None
            return f"Bearer {pools[kind][0] if kind in pools else tokens[kind]}"

        # Correctness first (this also warms the remote JWKS on every listener).
        for s, t in cells_todo:
            path, _, allowed = SCENARIOS[s]
            auth = auth_for(s)
            headers = {"authorization": auth} if auth else {}
            want = 200 if (allowed or t == "baseline") else 401
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

        def measure(s: str, t: str, duration: int) -> dict:
            path, _, allowed = SCENARIOS[s]
            kind = SCENARIOS[s][1]
            rec = run_wrk(
                envoy.url(t) + path,
                auth_for(s),
                tokens_file=pool_files.get(kind or ""),
                duration=duration,
                connections=args.connections,
                max_requests=args.max_requests,
                cpu=wrk_cpu,
            )
            problem = check_verdicts(rec, allowed or t == "baseline")
            if problem:
                meta["problems"].append(f"{s} on {t}: {problem}")
            return rec

        total = len(cells_todo) * (args.runs * args.duration + args.warmup)
        print(
            f"bench: {len(cells_todo)} cells x {args.runs} runs x {args.duration} s (+ warm-up): ~{total / 60:.1f} min",
            file=sys.stderr,
        )
        if args.warmup > 0:
            for s, t in cells_todo:
                measure(s, t, args.warmup)
        cells: dict[tuple[str, str], list[dict]] = {c: [] for c in cells_todo}
        for run in range(args.runs):
            for s, t in cells_todo:
                rec = measure(s, t, args.duration)
                rec["loadavg_1m"] = round(os.getloadavg()[0], 2)
                cells[(s, t)].append(rec)
                print(
                    f"  run {run + 1}/{args.runs} {s:<18} {t:<14} {rec['rps']:>10,.0f} rps  "
                    f"p50 {rec['latency_us']['p50'] / 1000:6.2f} ms  p99 {rec['latency_us']['p99'] / 1000:6.2f} ms",
                    file=sys.stderr,
                )
        if not envoy.alive():
            meta["problems"].append("envoy exited during the benchmark")
        stats = envoy.stats()
        keep = ("jwt_cache_hit", "jwt_cache_miss", "jwks_fetch_success", "jwks_fetch_failed")
        meta["stats"] = {
            k: v for k, v in sorted(stats.items()) if k.startswith("http.native") and k.rsplit(".", 1)[-1] in keep
        }
        meta["stats"].update({f"wasm.{k}": v for k, v in loadkit.wasm_request_counters(stats).items() if v})
        meta["stats"].update(loadkit.vm_health(stats))
        meta["stats"]["jwks server hits (both sides, remote scenario)"] = sum(jwks.hits.values())
        meta["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        if envoy is not None:
            envoy.cleanup()
        jwks.stop()
        shutil.rmtree(pool_dir, ignore_errors=True)

    summary = summarize(cells)
    md = render_markdown(meta, summary, cells, scenarios, targets)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(md)
    data = {
        "meta": meta,
        "cells": [{"scenario": s, "target": t, **summary[(s, t)], "raw": cells[(s, t)]} for (s, t) in cells],
    }
    (out / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    print(md)
    if meta["problems"]:
        print("bench: PROBLEMS:\n  " + "\n  ".join(meta["problems"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
