#!/usr/bin/env bash
# Builds the proxy-wasm filter (crate jwt-authn-filter) for wasm32-wasip1 in
# release mode and publishes it as dist/jwt-authn.wasm. The toolchain path
# (rustup target, or Debian rustc-web with -Zbuild-std) is chosen by lib.sh;
# set WASM_TOOLCHAIN=rustup|debian to force one.
#
#   scripts/build-wasm.sh [cargo args...]        the filter -> dist/jwt-authn.wasm
#   scripts/build-wasm.sh noop [cargo args...]   the benchmark's no-op filter
#                                                (bench/noop-filter) -> dist/noop.wasm
#   scripts/build-wasm.sh ffi-floor [cargo args...]  the benchmark's host-verify
#                                                floor (bench/ffi-floor) -> dist/ffi-floor.wasm
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

pkg=jwt-authn-filter
artifact=jwt_authn_filter
name=jwt-authn.wasm
# The filter keeps only the callbacks it uses: Envoy skips a callback a
# module does not export, so each request enters the VM three times (create,
# request headers, delete) instead of six (scripts/wasm_exports.py says why).
keep=memory,_initialize,proxy_abi_version_0_2_1,proxy_on_memory_allocate,proxy_on_vm_start
keep+=,proxy_on_configure,proxy_on_tick,proxy_on_http_call_response,proxy_on_context_create
keep+=,proxy_on_request_headers,proxy_on_delete
case "${1:-}" in
noop)
    pkg=jwt-authn-bench-noop
    artifact=jwt_authn_bench_noop
    name=noop.wasm
    keep=  # the reference: every callback the SDK exports, as any SDK filter
    shift
    ;;
ffi-floor)
    pkg=jwt-authn-bench-ffi-floor
    artifact=jwt_authn_bench_ffi_floor
    name=ffi-floor.wasm
    keep=
    shift
    ;;
esac

path="$(wasm_toolchain)"
say "building $pkg for $WASM_TARGET (toolchain: $path, target dir: $WASM_TARGET_DIR)"
start=$(date +%s)
wasm_cargo build --release -p "$pkg" "$@"
out="$WASM_TARGET_DIR/$WASM_TARGET/release/$artifact.wasm"
[ -f "$out" ] || die "build produced no $out"
mkdir -p "$DIST_DIR"
# Copy then rename, so a concurrently starting Envoy never reads half a file.
tmp="$(mktemp "$DIST_DIR/.$name.XXXXXX")"
if [ -n "$keep" ]; then
    python3 "$ROOT/scripts/wasm_exports.py" "$out" "$tmp" --keep "$keep" >/dev/null ||
        die "could not trim the exports of $out"
else
    cp "$out" "$tmp"
fi
# Readable by other users: the Envoy container runs as uid 101 and bind-mounts dist/.
chmod 644 "$tmp"
mv -f "$tmp" "$DIST_DIR/$name"
say "wrote $DIST_DIR/$name ($(stat -c %s "$DIST_DIR/$name") bytes, $(($(date +%s) - start)) s)"
