"""The benchmark suite still runs end to end (`python -m benchmarks --quick`).

A smoke test only: it checks that every scenario and every client produced sane
results, never how fast anything was (CI machines are too noisy for that).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the benchmarks compare with httpx: pip install -e .[bench]")
pytest.importorskip("trustme", reason="the TLS scenario needs trustme: pip install -e .[bench]")

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = ("loopback", "tls", "latency")
CLIENTS = ("asyncgroups", "asyncgroups-iter", "aiohttp", "httpx", "aiohttp-per-request")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "benchmarks", "--quick", "--requests", "100", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def test_benchmarks_quick_run_covers_every_scenario(results: dict[str, Any]) -> None:
    assert set(results["scenarios"]) == {*SCENARIOS, "streaming"}
    assert results["settings"]["quick"] is True
    assert results["machine"]["nproc"] >= 1
    assert results["machine"]["versions"]["aiohttp"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_benchmarks_quick_run_measures_every_client(results: dict[str, Any], scenario: str) -> None:
    variants = results["scenarios"][scenario]["variants"]
    assert set(variants) == set(CLIENTS)
    for name, entry in variants.items():
        assert entry["errors"] == [], name
        assert entry["rounds"] == 1, name
        assert entry["requests"] == 100, name
        assert entry["median_rps"] > 0, name
        assert entry["median_ratio_vs_aiohttp"] > 0, name
    assert variants["aiohttp"]["median_ratio_vs_aiohttp"] == pytest.approx(1.0)


def test_benchmarks_quick_run_measures_streaming_memory(results: dict[str, Any]) -> None:
    variants = results["scenarios"]["streaming"]["variants"]
    iters = sorted(
        (v for v in variants.values() if v["client"] == "asyncgroups-iter"),
        key=lambda v: v["requests"],
    )
    assert len(iters) == 2
    assert iters[0]["requests"] < iters[1]["requests"]
    for entry in variants.values():
        assert entry["errors"] == []
        assert entry["median_peak_rss_mb"] > 0


def test_benchmarks_quick_run_evaluates_every_target(results: dict[str, Any]) -> None:
    targets = results["targets"]
    assert len(targets) == 6
    assert all(t["measured"] is not None for t in targets)
