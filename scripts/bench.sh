#!/usr/bin/env bash
# Benchmark: our wasm filter vs Envoy's native jwt_authn vs no auth filter, in
# one Envoy (--concurrency 1) with wrk (1 thread). Not a test: it prints a
# markdown table and writes bench/results/latest.{md,json}.
#
#   scripts/bench.sh [--duration 10] [--runs 3] [--warmup 2] [--connections 16]
#                    [--scenarios a,b] [--targets wasm,native,...] [--no-pin]
#
# Builds dist/jwt-authn.wasm first when it is missing (`make bench` always
# rebuilds). Needs .venv (scripts/setup.sh) and wrk. About 14 minutes with the
# defaults; `--duration 3 --runs 1` gives a rough picture in ~2 minutes.
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
say "module: $DIST_DIR/jwt-authn.wasm ($(stat -c %s "$DIST_DIR/jwt-authn.wasm") bytes, built $(date -r "$DIST_DIR/jwt-authn.wasm" '+%F %T'))"
DIST_DIR="$DIST_DIR" exec "$VENV/bin/python" "$ROOT/bench/bench.py" "$@"
