# shellcheck shell=bash
# Variables here are used by the scripts that source this file:
# shellcheck disable=SC2034
# Shared helpers for the scripts in this directory: sourced, never executed.
# One place decides where things live (venv, caches, target dirs) and which
# wasm toolchain path is used, so setup, build and lint always agree.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="$ROOT/.cache"
VENV="${JWT_VENV:-$ROOT/.venv}"
DIST_DIR="${DIST_DIR:-$ROOT/dist}"
WASM_TARGET=wasm32-wasip1
# The wasm build gets its own target dir so that switching between native and
# wasm builds (different RUSTFLAGS / compiler) never invalidates either cache.
WASM_TARGET_DIR="${WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/wasm}"
# Debian packages that provide a wasm-capable toolchain when rustup cannot add
# the target (see /work/shared/TOOLCHAIN.md, "path B").
DEBIAN_WASM_PKGS=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc rust-web-clippy)
SCRIPT_NAME="$(basename "${0:-lib.sh}")"

say() { printf '[%s] %s\n' "$SCRIPT_NAME" "$*"; }
die() {
    printf '[%s] error: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}

# Runs a command as root (directly, or through sudo when available).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

# Prints the Debian packages among "$@" that are not installed.
missing_debs() {
    local p status
    for p in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
        [ "$status" = "install ok installed" ] || printf '%s\n' "$p"
    done
}

APT_UPDATED=0
# Installs the missing Debian packages among "$@"; apt-get update runs at most
# once per script and only when something is actually missing.
apt_install() {
    local missing
    mapfile -t missing < <(missing_debs "$@")
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    say "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Short hash of the given files' contents, used to key stamp files.
hash_files() {
    cat "$@" 2>/dev/null | sha256sum | cut -c1-16
}

rustup_has_wasm() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"
}

# Prints "rustup" or "debian": which toolchain path builds the wasm module.
# WASM_TOOLCHAIN overrides; otherwise rustup when its target is installed,
# else the Debian toolchain.
wasm_toolchain() {
    if [ -n "${WASM_TOOLCHAIN:-}" ]; then
        case "$WASM_TOOLCHAIN" in
        rustup | debian) printf '%s\n' "$WASM_TOOLCHAIN" ;;
        *) die "WASM_TOOLCHAIN must be rustup or debian, got '$WASM_TOOLCHAIN'" ;;
        esac
    elif rustup_has_wasm; then
        printf 'rustup\n'
    else
        printf 'debian\n'
    fi
}

# Runs `cargo <subcommand> [args...]` for the wasm target on the chosen path,
# in WASM_TARGET_DIR. Extra cargo args come after the subcommand.
wasm_cargo() {
    local sub="$1"
    shift
    case "$(wasm_toolchain)" in
    rustup)
        CARGO_TARGET_DIR="$WASM_TARGET_DIR" cargo "$sub" --target "$WASM_TARGET" "$@"
        ;;
    debian)
        local m
        m="$(missing_debs "${DEBIAN_WASM_PKGS[@]}" | tr '\n' ' ')"
        [ -z "$m" ] || die "Debian wasm toolchain incomplete (missing: $m); run scripts/setup.sh"
        # Debian's rustc 1.96 must win over rustup's shims: its std sources
        # match only that compiler. RUSTFLAGS apply to this build only.
        PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 \
            RUSTFLAGS="-L native=/usr/lib/wasm32-wasi -C link-self-contained=no" \
            CARGO_TARGET_DIR="$WASM_TARGET_DIR" \
            /usr/bin/cargo "$sub" --target "$WASM_TARGET" -Zbuild-std=std,panic_abort "$@"
        ;;
    esac
}
