#!/usr/bin/env bash
# Benchmark: our wasm filter vs Envoy's native jwt_authn vs a no-op wasm
# filter vs no filter, side by side in one Envoy (--concurrency 1, wrk 1
# thread), plus a many-workers scenario in a second Envoy (--concurrency 4).
# Not a test: it prints a markdown report with a "Goals" table and writes
# bench/results/latest.{md,json}.
#
#   scripts/bench.sh [--duration 10] [--runs 3] [--warmup 2] [--connections 16]
#                    [--scenarios a,b] [--targets wasm,native,...] [--no-pin]
#                    [--module FILE] [--mw-tokens 20000] [--out DIR] [--corun]
#   scripts/bench.sh --smoke
#
# Builds dist/jwt-authn.wasm first when it is missing (`make bench` always
# rebuilds) and always builds dist/noop.wasm and dist/ffi-floor.wasm, the
# reference filters (a no-op for cargo when they are up to date). Needs .venv
# (scripts/setup.sh) and wrk.
# About 19 minutes with the defaults (31 cells x (3 x 10 s + 2 s warm-up),
# many_workers 3 targets x 3 runs, token generation); `--duration 3 --runs 1`
# gives a rough picture in ~3 minutes.
#
# --smoke: every target and scenario once for 1 s, many_workers with 2,000
# tokens; ~45 s plus the builds. The report goes to a temporary directory
# (never bench/results/latest.*); exit 1 on a wrong verdict, zero throughput
# or a missing output. `scripts/test.sh bench-smoke` (part of `make test`).
#
# --corun: each goal's pair measured at the same time on two Envoys sharing
# CPU 0, so a change in the host's speed hits both sides (bench/README.md);
# writes bench/results/corun.{md,json}. `make bench-corun`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

[ -x "$VENV/bin/python" ] || die "no venv at $VENV: run scripts/setup.sh"
command -v wrk >/dev/null 2>&1 || die "wrk not found: run scripts/setup.sh"
if [ ! -f "$DIST_DIR/jwt-authn.wasm" ]; then
    say "no $DIST_DIR/jwt-authn.wasm: building it"
    "$ROOT/scripts/build-wasm.sh"
fi
"$ROOT/scripts/build-wasm.sh" noop
"$ROOT/scripts/build-wasm.sh" ffi-floor
say "module: $DIST_DIR/jwt-authn.wasm ($(stat -c %s "$DIST_DIR/jwt-authn.wasm") bytes, built $(date -r "$DIST_DIR/jwt-authn.wasm" '+%F %T'))"
DIST_DIR="$DIST_DIR" exec "$VENV/bin/python" "$ROOT/bench/bench.py" "$@"
