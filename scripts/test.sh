#!/usr/bin/env bash
# The one test driver behind `make test`, `make lint`, `make unit`, `make e2e`:
# runs the named steps in order, times each, keeps going after a failed check
# so one run reports every problem, and ends with a summary table.
#
#   scripts/test.sh all              setup fmt clippy clippy-wasm unit fuzz build cli idp e2e bench-smoke
#   scripts/test.sh lint             fmt clippy clippy-wasm
#   scripts/test.sh STEP [STEP...]   any of the steps above
#
# Extra pytest arguments can be passed through PYTEST_ARGS (e.g. "-k differential").
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit 1

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

step_setup() { "$ROOT/scripts/setup.sh"; }
step_fmt() { cargo fmt --all -- --check; }
step_clippy() { cargo clippy --workspace --all-targets -- -D warnings; }
# The filter's wasm-only code paths are linted on the real target, with the
# same toolchain path that builds the module.
step_clippy_wasm() { wasm_cargo clippy --release -p jwt-authn-filter -p jwt-authn-bench-noop -p jwt-authn-bench-ffi-floor -- -D warnings; }
step_unit() { cargo test --workspace; }
# Every cargo-fuzz target for a short, bounded time on its seed corpus
# (a longer campaign: scripts/fuzz.sh 3600).
step_fuzz() { FUZZ_SMOKE=1 "$ROOT/scripts/fuzz.sh"; }
step_build() { "$ROOT/scripts/build-wasm.sh"; }
publish_bin() {
    local pkg="$1" bin="$2"
    cargo build --release -p "$pkg" || return 1
    mkdir -p "$DIST_DIR"
    cp "$TARGET_DIR/release/$bin" "$DIST_DIR/.$bin.tmp" && mv -f "$DIST_DIR/.$bin.tmp" "$DIST_DIR/$bin"
    say "wrote $DIST_DIR/$bin"
}
step_cli() { publish_bin jwt-authn-cli jwt-authn; }
step_idp() { publish_bin jwt-idp jwt-idp; }
step_e2e() {
    [ -x "$VENV/bin/python" ] || {
        say "no venv at $VENV: run scripts/setup.sh"
        return 1
    }
    # shellcheck disable=SC2086 # PYTEST_ARGS is a word list on purpose
    DIST_DIR="$DIST_DIR" "$VENV/bin/python" -m pytest "$ROOT/tests/e2e" ${PYTEST_ARGS:-}
}
# The benchmark in smoke mode: every target and scenario once for 1 s (~1 min),
# then the co-run mode on two scenarios; checks that it works (verdicts,
# throughput, outputs), not how fast.
step_bench_smoke() {
    DIST_DIR="$DIST_DIR" "$ROOT/scripts/bench.sh" --smoke &&
        DIST_DIR="$DIST_DIR" "$ROOT/scripts/bench.sh" --smoke --corun --scenarios rs256_valid,rs256_unique_tokens
}

# Steps whose failure makes the rest meaningless.
FATAL_STEPS=" setup "
# Steps that need earlier steps of the same run to have passed.
declare -A DEPENDS=([e2e]="build cli idp" [bench-smoke]="build")

declare -a NAMES=() RESULTS=() TIMES=()
declare -A PASSED=()

# Prints the first requested dependency of step $1 that did not pass.
failed_dependency() {
    local d
    for d in ${DEPENDS[$1]:-}; do
        # A dependency that was not requested in this run is not checked.
        if [[ " ${REQUESTED[*]} " == *" $d "* ]] && [ -z "${PASSED[$d]:-}" ]; then
            printf '%s' "$d"
            return 0
        fi
    done
}

run_step() {
    local step="$1" fn="step_${1//-/_}" start rc missing
    declare -F "$fn" >/dev/null || die "unknown step '$step'"
    NAMES+=("$step")
    missing="$(failed_dependency "$step")"
    if [ -n "$missing" ]; then
        say "=== $step: skipped ($missing failed)"
        RESULTS+=("SKIP ($missing failed)")
        TIMES+=("-")
        return 1
    fi
    say "=== $step"
    start=$(date +%s)
    "$fn"
    rc=$?
    TIMES+=("$(($(date +%s) - start))s")
    if [ "$rc" -eq 0 ]; then
        PASSED[$step]=1
        RESULTS+=("ok")
    else
        RESULTS+=("FAIL (exit $rc)")
    fi
    return "$rc"
}

summary() {
    local i failed=0
    echo
    echo "================ summary ================"
    for i in "${!NAMES[@]}"; do
        printf '  %-12s %-22s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
        [ "${RESULTS[$i]}" = ok ] || failed=1
    done
    echo "========================================="
    if [ "$failed" -eq 0 ]; then echo "ALL PASSED"; else echo "FAILED"; fi
    return "$failed"
}

[ "$#" -gt 0 ] || set -- all
REQUESTED=()
for a in "$@"; do
    case "$a" in
    all) REQUESTED+=(setup fmt clippy clippy-wasm unit fuzz build cli idp e2e bench-smoke) ;;
    lint) REQUESTED+=(fmt clippy clippy-wasm) ;;
    *) REQUESTED+=("$a") ;;
    esac
done

for s in "${REQUESTED[@]}"; do
    if ! run_step "$s" && [[ "$FATAL_STEPS" == *" $s "* ]]; then
        say "$s failed: stopping"
        break
    fi
done
summary
