"""The README's demo, run as the user runs it (scripts/demo.sh, DEMO_ONCE=1):
IdP + Envoy with the module + echo backend as plain processes on loopback,
the same topology docker-compose.yml describes. The demo's own checks
(login -> token -> API call with identity headers, 401 without or with a
forged token) decide; ports are free ones so it cannot clash.
"""

import os
import subprocess
from pathlib import Path

import pytest

from harness import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("jwks_mode", ["remote", "inline"])
def test_demo_runs_end_to_end(tmp_path, jwks_mode):
    env = dict(os.environ)
    env.update(
        DEMO_ONCE="1",
        DEMO_SKIP_BUILD="1",
        DEMO_JWKS=jwks_mode,
        DEMO_PORT=str(free_port()),
        DEMO_BACKEND_PORT=str(free_port()),
        DEMO_IDP_PORT=str(free_port()),
        DEMO_ADMIN_PORT=str(free_port()),
        DEMO_STATE_DIR=str(tmp_path / "state"),
    )
    p = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True, timeout=240)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "all demo checks passed" in out
    assert "x-user-id='alice'" in out
