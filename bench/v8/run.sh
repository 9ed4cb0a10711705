#!/usr/bin/env bash
# RSA verify micro-benchmark (old jwt-compact/rsa path vs rsa_verify) inside
# V8 via node's WASI, then natively. Usage: bench/v8/run.sh [quick]
# Needs: rustup target wasm32-wasip1, node >= 20. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build -q --release --target wasm32-wasip1 --example crypto_bench
cargo build -q --release --example crypto_bench
echo "== V8 (node $(node --version), WASI)"
node --no-warnings bench/v8/run.mjs "$target_dir/wasm32-wasip1/release/examples/crypto_bench.wasm" "$@"
echo "== native"
"$target_dir/release/examples/crypto_bench" "$@"
