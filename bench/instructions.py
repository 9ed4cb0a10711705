#!/usr/bin/env python3
"""Instructions per request, counted by callgrind in one real Envoy.

The throughput benchmark (bench.py) is at the mercy of the machine: on a
shared VM the hypervisor steals a third of the CPU at times, and runs of the
same cell differ by 2x. Instruction counts do not move with that. This runs
one Envoy 1.40 (`--concurrency 1`) under `valgrind --tool=callgrind` with
the benchmark's listeners and config C (bench.py), and for each cell sends
a bounded number of requests on one keep-alive connection, counting the
instructions the Envoy worker thread executed for them (the filter, V8, the
host calls, HTTP, the kernel boundary excluded).

Per cell: a warm-up, then the worker's idle rate (timers, the filters'
ticks) is measured for a few seconds and subtracted over the measured
window. Repeatable to about 0.5 %. Instructions are not time (cache misses,
IPC), so this complements the throughput ratios, it does not replace them.

Valgrind's address space holds at most three wasm plugins (V8 reserves
guard regions per VM), so the targets are baseline, noop_wasm, native,
wasm and ffi_floor. Distinct-token cells use tokens never sent before.

Usage: scripts/instructions.sh (make bench-instructions) [--requests 600] [--warmup 4500] [--out DIR]   (~8 minutes)
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests" / "e2e")]

import bench  # noqa: E402
from harness import JwksServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (scenario, token kind, targets): every cell is one (scenario, target).
CELLS = (
    ("rs256_valid", "rs", ("baseline", "noop_wasm", "native", "wasm")),
    ("rs256_unique_tokens", "rs_pool", ("native", "ffi_floor", "wasm")),
    ("es256_unique_tokens", "es_pool", ("native", "ffi_floor", "wasm")),
)
# (name, scenario, numerator target, denominator target): above 1 = wasm does less.
RATIOS = (
    ("Repeated RS256 token: noop_wasm / wasm", "rs256_valid", "noop_wasm", "wasm"),
    ("Repeated RS256 token: native / wasm", "rs256_valid", "native", "wasm"),
    ("Distinct RS256 tokens: native / wasm", "rs256_unique_tokens", "native", "wasm"),
    ("Distinct RS256 tokens: ffi_floor / wasm", "rs256_unique_tokens", "ffi_floor", "wasm"),
    ("Distinct ES256 tokens: native / wasm", "es256_unique_tokens", "native", "wasm"),
    ("Distinct ES256 tokens: ffi_floor / wasm", "es256_unique_tokens", "ffi_floor", "wasm"),
)
IDLE_S = 3.0
START_TIMEOUT_S = 900.0


class CallgrindEnvoy(bench.SideBySideEnvoy):
    """The benchmark's Envoy, run under callgrind (per-thread counts, dumps on demand)."""

    def __init__(self, *args, out_dir: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.out_dir = out_dir

    def _command(self) -> list[str]:
        return [
            "valgrind",
            "--tool=callgrind",
            "--smc-check=all",
            "--separate-threads=yes",
            f"--callgrind-out-file={self.out_dir}/cg.%p.out",
            *super()._command(),
        ]


def native_envoy_binary() -> str:
    """The Envoy executable itself: the venv's `envoy` is a Python launcher,
    and valgrind must run the binary (it does not follow an exec)."""
    found = bench.envoy_binary()
    with open(found, "rb") as f:
        if f.read(2) != b"#!":
            return found
    for candidate in sorted(glob.glob(str(ROOT / ".venv" / "lib" / "python*" / "site-packages" / "envoy" / "_bin" / "envoy"))):
        return candidate
    raise FileNotFoundError(f"{found} is a script and no envoy/_bin/envoy is installed beside it")


def callgrind_pid(envoy: CallgrindEnvoy) -> int:
    """The pid callgrind runs under (the `valgrind` launcher may not be it)."""
    listing = subprocess.run(["callgrind_control"], capture_output=True, text=True, timeout=60).stdout
    for m in re.finditer(r"PID (\d+): (.*)", listing):
        if str(envoy.config_path) in m.group(2):
            return int(m.group(1))
    raise RuntimeError(f"no callgrind process runs {envoy.config_path}")


def dump(pid: int, out_dir: Path, label: str) -> dict[str, int]:
    """Instructions per thread since the last zeroing (callgrind_control -d)."""
    before = set(glob.glob(f"{out_dir}/cg.{pid}.out.*"))
    subprocess.run(["callgrind_control", "-d", label, str(pid)], capture_output=True, timeout=120, check=False)
    deadline = time.monotonic() + 60
    new: set[str] = set()
    while time.monotonic() < deadline:
        new = set(glob.glob(f"{out_dir}/cg.{pid}.out.*")) - before
        if new:
            time.sleep(0.5)  # every thread's file of this dump
            new = set(glob.glob(f"{out_dir}/cg.{pid}.out.*")) - before
            break
        time.sleep(0.2)
    counts = {}
    for f in new:
        for line in Path(f).read_text(errors="replace").splitlines():
            if line.startswith("summary:"):
                counts[f.rsplit("-", 1)[-1]] = int(line.split()[1])
                break
        os.unlink(f)
    return counts


def zero(pid: int) -> None:
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=120, check=False)


def send(port: int, tokens: list[str], n: int, offset: int) -> dict[int, int]:
    """n requests on one keep-alive connection, token i = tokens[(offset + i) % len]; status counts."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    statuses: dict[int, int] = {}
    try:
        for i in range(n):
            tok = tokens[(offset + i) % len(tokens)] if tokens else None
            conn.request("GET", "/", headers={"authorization": f"Bearer {tok}"} if tok else {})
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
    finally:
        conn.close()
    return statuses


def measure(envoy: CallgrindEnvoy, port: int, tokens: list[str], warm: int, n: int, distinct: bool) -> dict:
    """Instructions per request of the worker thread for one cell."""
    pid = callgrind_pid(envoy)
    # Distinct tokens: warm up on the end of the pool, measure from its start.
    send(port, tokens, warm, len(tokens) - warm if distinct else 0)
    zero(pid)
    t0 = time.monotonic()
    time.sleep(IDLE_S)
    idle = dump(pid, envoy.out_dir, "idle")
    idle_s = time.monotonic() - t0
    zero(pid)
    t1 = time.monotonic()
    statuses = send(port, tokens, n, 0)
    wall = time.monotonic() - t1
    busy = dump(pid, envoy.out_dir, "busy")
    if not busy:
        raise RuntimeError("callgrind wrote no dump")
    worker = max(busy, key=lambda k: busy[k])
    idle_rate = idle.get(worker, 0) / idle_s if idle_s > 0 else 0.0
    net = busy[worker] - idle_rate * wall
    return {
        "requests": n,
        "statuses": statuses,
        "instructions_per_request": net / n,
        "gross_per_request": busy[worker] / n,
        "idle_instructions_per_s": idle_rate,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=600, help="measured requests per cell (600)")
    # 4,500: past the first window (4,096 lookups) after which the module's
    # token cache decides whether new tokens are sampled (src/cache_sampling.rs),
    # so distinct-token cells are measured in steady state.
    ap.add_argument("--warmup", type=int, default=4500, help="unmeasured requests per cell first (4500)")
    ap.add_argument("--out", default=None, help="directory for instructions.md / .json (default bench/results)")
    ap.add_argument("--module", default=None, help="module (default dist/jwt-authn.wasm)")
    args = ap.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            print(f"instructions: {tool} not found (apt-get install valgrind)", file=sys.stderr)
            return 2
    dist = Path(os.environ.get("DIST_DIR", ROOT / "dist"))
    module = Path(args.module) if args.module else dist / "jwt-authn.wasm"
    noop, floor = dist / "noop.wasm", dist / "ffi-floor.wasm"
    for m in (module, noop, floor):
        if not m.is_file():
            print(f"instructions: {m} missing (scripts/bench.sh builds it)", file=sys.stderr)
            return 2
    pool = args.requests + args.warmup
    out = Path(args.out) if args.out else ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="jwt-authn-instructions-"))
    jwks = JwksServer().start()
    envoy = None
    try:
        cfg, _cached, tokens, pools, keys = bench.build_config(jwks.port, pool)
        jwks.documents["/jwks"] = (200, tokens.pop("_remote_jwks"))
        small = {"shared_token_cache_size": bench.SMALL_SHARED_CACHE}
        copies = {}
        for m in (module, noop, floor):
            copies[m] = work / m.name
            shutil.copyfile(m, copies[m])
        extra = {
            "noop_wasm": bench.wasm_filter_entry("noop_wasm", "noop", "noop", copies[noop], None),
            "ffi_floor": bench.wasm_filter_entry(
                "ffi_floor", "ffi_floor", "ffi_floor", copies[floor], bench.floor_config(keys)
            ),
        }
        envoy = CallgrindEnvoy(
            cfg,
            wasm_config=bench.with_extensions(cfg, **small),
            wasm=True,
            native=True,
            direct_response=True,
            baseline=True,
            extra_wasm=extra,
            concurrency=1,
            log_level="error",
            extra_clusters={"jwks": ("127.0.0.1", jwks.port)},
            wasm_path=copies[module],
            out_dir=work,
            envoy_bin=native_envoy_binary(),
        )
        print("instructions: starting Envoy under callgrind (a few minutes)", file=sys.stderr)
        started = time.monotonic()
        envoy.start(timeout=START_TIMEOUT_S)
        meta = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "envoy_version": bench.envoy_version(bench.envoy_binary()),
            "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
            "module": bench.shown_path(module),
            "module_bytes": module.stat().st_size,
            "requests": args.requests,
            "warmup": args.warmup,
            "startup_s": round(time.monotonic() - started, 1),
        }
        cells: dict[str, dict] = {}
        problems = []
        for scenario, kind, targets in CELLS:
            toks = pools[kind] if kind in pools else [tokens[kind]]
            for t in targets:
                rec = measure(envoy, envoy.ports[t], toks, args.warmup, args.requests, kind in pools)
                if set(rec["statuses"]) != {200}:
                    problems.append(f"{scenario} on {t}: statuses {rec['statuses']}")
                cells[f"{scenario}/{t}"] = rec
                print(
                    f"  {scenario:<20} {t:<10} {rec['instructions_per_request']:>11,.0f} instructions/request",
                    file=sys.stderr,
                )
    finally:
        if envoy is not None:
            envoy.cleanup()
        jwks.stop()
        shutil.rmtree(work, ignore_errors=True)
    ratios = []
    for name, scenario, num, den in RATIOS:
        a, b = cells.get(f"{scenario}/{num}"), cells.get(f"{scenario}/{den}")
        if a and b:
            ratios.append({"ratio": name, "value": a["instructions_per_request"] / b["instructions_per_request"]})
    data = {"meta": meta, "cells": cells, "ratios": ratios, "problems": problems}
    (out / "instructions.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "instructions.md").write_text(render(data))
    print(render(data))
    return 1 if problems else 0


def render(data: dict) -> str:
    meta, cells = data["meta"], data["cells"]
    lines = [
        "# Instructions per request (callgrind, one Envoy)",
        "",
        f"- date: {meta['date']}; Envoy {meta['envoy_version']} `--concurrency 1` under {meta['valgrind']} "
        f"(callgrind, per thread); module `{meta['module']}` {meta['module_bytes']:,} bytes",
        f"- per cell: {meta['warmup']} requests of warm-up, then {meta['requests']} measured on one keep-alive "
        "connection; the Envoy worker thread's instructions, minus its idle rate over the same time; distinct-"
        "token cells send tokens never sent before; config C of the benchmark (audiences + `sub` to a header)",
        "",
        "| scenario | target | instructions / request |",
        "|---|---|---:|",
    ]
    for key, rec in cells.items():
        scenario, target = key.split("/")
        lines.append(f"| {scenario} | {target} | {rec['instructions_per_request']:,.0f} |")
    lines += ["", "| ratio (above 1: wasm executes fewer instructions) | value |", "|---|---:|"]
    for r in data["ratios"]:
        lines.append(f"| {r['ratio']} | {r['value']:.3f} |")
    if data["problems"]:
        lines += ["", "Problems: " + "; ".join(data["problems"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
