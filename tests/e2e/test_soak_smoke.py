"""The soak in smoke mode (~20 s), and the soak's memory rule on made-up samples.

test_soak_smoke runs `bench/soak.py --smoke` exactly as scripts/soak.sh does
and asserts its verdict and report: mixed tokens under key rotation, no
wrong verdict, the VM healthy, memory within the rule. The other tests pin
the memory rule itself (see bench/soak.py): a leak is caught, noise is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))
import soak  # noqa: E402


def test_soak_smoke(wasm_path, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "soak.py"), "--smoke", "--out", str(tmp_path), "--wasm", str(wasm_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, output
    assert "SOAK VERDICT: PASS" in proc.stdout, output
    report = json.loads((tmp_path / "soak-smoke.json").read_text())
    assert report["ok"] is True
    failed = [c for c in report["checks"] if not c[1]]
    assert failed == [], failed
    load = report["load"]
    assert load["violations"] == 0
    assert load["sent"] > 1000, load
    assert set(load["by_kind"]["valid"]) == {"200"}, load["by_kind"]["valid"]
    for kind, statuses in load["by_kind"].items():
        if kind != "valid":
            assert "200" not in statuses, (kind, statuses)
    assert report["rotations"] >= 2 and report["valid_kids"] >= 2
    assert len(report["samples"]) >= 10
    assert (tmp_path / "soak-smoke.md").read_text().startswith("# Soak (smoke) - PASS")


def samples(duration: float, every: float, rss_mib) -> list[dict]:
    n = int(duration / every) + 1
    return [{"t": i * every, "rss_kib": int(rss_mib(i * every) * 1024), "allocated": 0} for i in range(n)]


def test_memory_rule_passes_flat_noisy_memory():
    noisy = samples(600, 5, lambda t: 140 + (3 if int(t) % 20 == 0 else 0))
    verdict = soak.memory_verdict(noisy, 600)
    assert verdict["ok"], verdict


def test_memory_rule_catches_a_slow_leak():
    # 2 MiB/min: well under 1.5x over 10 minutes, but the slope check sees it.
    leak = samples(600, 5, lambda t: 140 + 2 * t / 60)
    verdict = soak.memory_verdict(leak, 600)
    assert not verdict["ok"]
    assert verdict["slope_mib_per_min"] == pytest.approx(2.0, rel=0.01)


def test_memory_rule_catches_growth_in_a_short_run():
    # Too short for the slope check; the 1.5x ratio still catches it.
    growth = samples(20, 1, lambda t: 100 + 5 * t)
    verdict = soak.memory_verdict(growth, 20)
    assert not verdict["ok"]
    assert any(name.startswith("RSS slope (not judged") for name, _, _ in verdict["checks"])
