#!/usr/bin/env bash
# Builds the proxy-wasm filter (crate jwt-authn-filter) for wasm32-wasip1 in
# release mode and publishes it as dist/jwt-authn.wasm. The toolchain path
# (rustup target, or Debian rustc-web with -Zbuild-std) is chosen by lib.sh;
# set WASM_TOOLCHAIN=rustup|debian to force one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

path="$(wasm_toolchain)"
say "building jwt-authn-filter for $WASM_TARGET (toolchain: $path, target dir: $WASM_TARGET_DIR)"
start=$(date +%s)
wasm_cargo build --release -p jwt-authn-filter "$@"
out="$WASM_TARGET_DIR/$WASM_TARGET/release/jwt_authn_filter.wasm"
[ -f "$out" ] || die "build produced no $out"
mkdir -p "$DIST_DIR"
# Copy then rename, so a concurrently starting Envoy never reads half a file.
tmp="$(mktemp "$DIST_DIR/.jwt-authn.wasm.XXXXXX")"
cp "$out" "$tmp"
# Readable by other users: the Envoy container runs as uid 101 and bind-mounts dist/.
chmod 644 "$tmp"
mv -f "$tmp" "$DIST_DIR/jwt-authn.wasm"
say "wrote $DIST_DIR/jwt-authn.wasm ($(stat -c %s "$DIST_DIR/jwt-authn.wasm") bytes, $(($(date +%s) - start)) s)"
