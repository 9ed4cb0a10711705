#!/usr/bin/env bash
# Soak: mixed valid/invalid/expired/missing tokens against the wasm filter
# while the JWKS keys rotate, sampling Envoy's RSS and /memory. Exit 1 when a
# verdict is wrong, the VM fails, or memory grows (rules in bench/soak.py).
#
#   scripts/soak.sh [--duration 600] [--smoke] [--rotate-every 30] [--threads 3]
#
# --smoke runs ~20 s (what tests/e2e/test_soak_smoke.py runs). Reports go to
# bench/results/soak-latest.{md,json} (soak-smoke.* with --smoke).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

[ -x "$VENV/bin/python" ] || die "no venv at $VENV: run scripts/setup.sh"
if [ ! -f "$DIST_DIR/jwt-authn.wasm" ]; then
    say "no $DIST_DIR/jwt-authn.wasm: building it"
    "$ROOT/scripts/build-wasm.sh"
fi
DIST_DIR="$DIST_DIR" exec "$VENV/bin/python" "$ROOT/bench/soak.py" "$@"
