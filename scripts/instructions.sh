#!/usr/bin/env bash
# Instructions per request under callgrind, one Envoy (--concurrency 1):
# baseline, noop_wasm, native, wasm, ffi_floor on a repeated RS256 token and
# on distinct RS256 / ES256 tokens. A noise-free complement to
# scripts/bench.sh (instruction counts do not move with the machine's load);
# writes bench/results/instructions.{md,json}. About 8 minutes.
#
#   scripts/instructions.sh [--requests 600] [--warmup 4500] [--module FILE] [--out DIR]
#
# Installs valgrind (Debian's package) when it is missing; needs .venv
# (scripts/setup.sh). Builds the module when missing and the two reference
# filters always (cargo does nothing when they are up to date).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

[ -x "$VENV/bin/python" ] || die "no venv at $VENV: run scripts/setup.sh"
if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then
    apt_install valgrind
fi
if [ ! -f "$DIST_DIR/jwt-authn.wasm" ]; then
    say "no $DIST_DIR/jwt-authn.wasm: building it"
    "$ROOT/scripts/build-wasm.sh"
fi
"$ROOT/scripts/build-wasm.sh" noop
"$ROOT/scripts/build-wasm.sh" ffi-floor
DIST_DIR="$DIST_DIR" exec "$VENV/bin/python" "$ROOT/bench/instructions.py" "$@"
