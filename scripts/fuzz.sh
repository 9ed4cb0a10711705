#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target of the core (fuzz/) for a fixed
# time each, and fails if any of them finds a crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 30, or 10 with FUZZ_SMOKE=1 (test suites);
# `scripts/fuzz.sh 3600` is a longer campaign. TARGETs default to all.
# Per target it prints executions, exec/s, duration and new crashes, then
# one summary line. Crash inputs land in fuzz/artifacts/<target>/ (libFuzzer
# writes them there; see fuzz/README.md for turning one into a regression).
#
# Environment:
#   FUZZ_SMOKE=1         10 s per target unless SECONDS_PER_TARGET is given
#   FUZZ_TARGET_DIR      cargo target dir (default fuzz/target)
#   FUZZ_SANITIZER       address (default) or none (faster, fewer checks)
# Needs a nightly toolchain (libFuzzer instrumentation flags); without one
# it prints a SKIPPED line and exits 0. Installs cargo-fuzz from crates.io
# when `cargo fuzz` is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
ALL_TARGETS=(token jwks config extract json)

if [[ $# -ge 1 && "$1" =~ ^[0-9]+$ ]]; then
    SECONDS_PER_TARGET="$1"
    shift
elif [[ "${FUZZ_SMOKE:-0}" == "1" ]]; then
    SECONDS_PER_TARGET=10
else
    SECONDS_PER_TARGET=30
fi
if [[ "$SECONDS_PER_TARGET" -lt 1 ]]; then
    echo "fuzz.sh: SECONDS_PER_TARGET must be at least 1" >&2
    exit 2
fi
if [[ $# -ge 1 ]]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi
for t in "${TARGETS[@]}"; do
    if [[ ! -f "$FUZZ_DIR/fuzz_targets/$t.rs" ]]; then
        echo "fuzz.sh: unknown target '$t' (have: ${ALL_TARGETS[*]})" >&2
        exit 2
    fi
done

if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list | grep -q '^nightly'; then
    echo "SKIPPED: fuzzing needs a nightly Rust toolchain (rustup toolchain list has none)"
    exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

TARGET_DIR="${FUZZ_TARGET_DIR:-$FUZZ_DIR/target}"
SANITIZER="${FUZZ_SANITIZER:-address}"
# A single input slower than this is reported as a crash (a DoS finding).
PER_INPUT_TIMEOUT=20

cd "$ROOT"
mkdir -p "$TARGET_DIR"
echo "== building fuzz targets (nightly, sanitizer=$SANITIZER, target dir $TARGET_DIR)"
for t in "${TARGETS[@]}"; do
    if ! cargo +nightly fuzz build -s "$SANITIZER" --target-dir "$TARGET_DIR" "$t" \
        >"$TARGET_DIR/fuzz-build.log" 2>&1; then
        tail -n 60 "$TARGET_DIR/fuzz-build.log" >&2
        echo "fuzz.sh: build of target '$t' failed" >&2
        exit 1
    fi
done

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/jwt-authn-fuzz.XXXXXX")"
trap 'rm -rf "$LOG_DIR"' EXIT

total_crashes=0
failed_targets=()
printf '%-8s %12s %10s %9s %8s\n' target executions exec/s duration crashes
# Longest input per target: a bit above the limits each one exercises
# (16 KiB token parse limit, 4-8 KiB request/realm limits, JSON depth).
max_len_of() {
    case "$1" in
        extract) echo 8192 ;;
        json) echo 4096 ;;
        *) echo 16384 ;;
    esac
}

for t in "${TARGETS[@]}"; do
    corpus="$FUZZ_DIR/corpus/$t"
    artifacts="$FUZZ_DIR/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    log="$LOG_DIR/$t.log"
    find "$artifacts" -type f | sort >"$log.before"
    before=$(wc -l <"$log.before")
    start=$(date +%s.%N)
    set +e
    # The first corpus dir receives new inputs; the committed seeds are read only.
    cargo +nightly fuzz run -s "$SANITIZER" --target-dir "$TARGET_DIR" "$t" \
        "$corpus" "$FUZZ_DIR/corpus-seed/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 \
        -timeout="$PER_INPUT_TIMEOUT" -max_len="$(max_len_of "$t")" -len_control=0 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1
    status=$?
    set -e
    end=$(date +%s.%N)
    duration=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1fs", b - a }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    after=$(find "$artifacts" -type f | wc -l)
    crashes=$((after - before))
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then
        # A failure that left no input behind (e.g. the harness failed to start).
        crashes=1
    fi
    printf '%-8s %12s %10s %9s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$duration" "$crashes"
    if [[ $crashes -gt 0 ]]; then
        total_crashes=$((total_crashes + crashes))
        failed_targets+=("$t")
        echo "---- $t: what failed (full log: rerun the target by hand, see fuzz/README.md)" >&2
        grep -m 6 -A 2 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|^SUMMARY' "$log" >&2 || tail -n 20 "$log" >&2
        echo "---- new crash inputs (see fuzz/README.md):" >&2
        find "$artifacts" -type f | sort | comm -13 "$log.before" - >&2
    fi
done

if [[ $total_crashes -gt 0 ]]; then
    echo "FUZZ: ${#TARGETS[@]} targets, $total_crashes crash(es) in: ${failed_targets[*]}"
    exit 1
fi
echo "FUZZ: ${#TARGETS[@]} targets, 0 crashes, ${SECONDS_PER_TARGET}s each"
