"""The benchmark suite still runs end to end (`python -m benchmarks --quick`).

A smoke test only: it checks that every scenario, every client and both modes (fresh
and warm) produced sane, reported results, never how fast anything was (CI machines are
too noisy for that). A few narrower checks run the harness's pieces directly: the order
of a round, and that a child's failure reaches the runner as an error.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the benchmarks compare with httpx: pip install -e .[bench]")
pytest.importorskip("trustme", reason="the TLS scenario needs trustme: pip install -e .[bench]")

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = ("loopback", "tls", "latency")
MODES = ("fresh", "warm")
REFERENCE = "aiohttp-workers"
CLIENTS = (
    "asyncgroups",
    "asyncgroups-iter",
    "aiohttp-workers",
    "aiohttp",
    "httpx",
    "aiohttp-per-request",
)
#: get_many without orjson runs only where CPU is the question (loopback), the raw-socket
#: floor only where the server's limit is (latency-bound).
SCENARIO_CLIENTS = {
    "loopback": (*CLIENTS, "asyncgroups-json"),
    "tls": CLIENTS,
    "latency": (*CLIENTS, "raw-sockets"),
}
CLOSE_RACE = {"asyncgroups", "asyncgroups-iter", "asyncgroups-json", "aiohttp-workers", "aiohttp"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The results file and the printed table of one quick run."""
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
    return data, proc.stdout


@pytest.fixture
def results(quick_run: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return quick_run[0]


@pytest.fixture
def suite(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`benchmarks._suite`, imported from the repository root."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks._suite")


@pytest.mark.bench
def test_benchmarks_quick_run_covers_every_scenario(results: dict[str, Any]) -> None:
    assert set(results["scenarios"]) == {*SCENARIOS, "streaming"}
    assert results["settings"]["quick"] is True
    assert results["settings"]["modes"] == list(MODES)
    assert results["reference"] == REFERENCE
    assert results["machine"]["nproc"] >= 1
    assert results["machine"]["versions"]["aiohttp"]
    for scenario in results["scenarios"].values():
        assert scenario["errors"] == []


@pytest.mark.bench
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_benchmarks_quick_run_measures_every_client_in_both_modes(
    results: dict[str, Any], scenario: str
) -> None:
    variants = results["scenarios"][scenario]["variants"]
    assert set(variants) == {f"{c}/{m}" for c in SCENARIO_CLIENTS[scenario] for m in MODES}
    for name, entry in variants.items():
        client, mode = name.split("/")
        assert (entry["client"], entry["mode"]) == (client, mode), name
        assert entry["errors"] == [], name
        assert entry["rounds"] == 1, name
        assert entry["requests"] == 100, name
        assert entry["median_rps"] > 0, name
        assert entry["median_cpu_us_per_request"] > 0, name
        assert entry["reference"] == f"{REFERENCE}/{mode}", name
        assert entry["median_ratio_vs_reference"] > 0, name
    for mode in MODES:
        assert variants[f"{REFERENCE}/{mode}"]["median_ratio_vs_reference"] == pytest.approx(1.0)


@pytest.mark.bench
def test_benchmarks_quick_run_prints_a_row_per_measurement(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    _, table = quick_run
    assert f"vs {REFERENCE} (median, range)" in table
    assert "client CPU µs/req" in table
    for scenario in SCENARIOS:
        for mode in MODES:
            rows = [r for r in table.splitlines() if r.startswith(f"| {scenario} | {mode} |")]
            assert len(rows) == len(SCENARIO_CLIENTS[scenario]), (scenario, mode)
            assert all(" - |" not in r for r in rows), rows
    assert "Errors" not in table


@pytest.mark.bench
def test_benchmarks_quick_run_measures_streaming_memory(results: dict[str, Any]) -> None:
    variants = results["scenarios"]["streaming"]["variants"]
    iters = sorted(
        (v for v in variants.values() if v["client"] == "asyncgroups-iter"),
        key=lambda v: v["requests"],
    )
    assert len(iters) == 2
    assert iters[0]["requests"] < iters[1]["requests"]
    for entry in variants.values():
        assert entry["mode"] == "fresh"
        assert entry["errors"] == []
        assert entry["median_peak_rss_mb"] > 0


@pytest.mark.bench
def test_benchmarks_quick_run_measures_the_shared_limiter_or_says_why_not(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    results, table = quick_run
    shared = results["shared_limit"]
    if "skipped" in shared:  # no redis-server here: the report says so
        assert "redis" in shared["skipped"]
        assert f"skipped: {shared['skipped']}" in table
        return
    assert shared["requests"] == 100
    assert shared["acquire_us"]["redis"] > shared["acquire_us"]["local"] > 0
    assert shared["get_many"]["plain"]["rps"] > 0
    assert shared["get_many"]["redis"]["rps"] > 0
    assert "shared limit (RedisLimiter, local redis-server)" in table


@pytest.mark.bench
def test_benchmarks_quick_run_counts_what_each_sync_run_sends(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    results, table = quick_run
    sync = results["sync"]
    assert (sync["groups"], sync["rate"]) == (100, 80.0)  # --requests 100: 100 groups
    runs = {(r["run"], r["refresh"]): r for r in sync["runs"]}
    modes = ("full", "listing", "none")
    assert list(runs) == [
        ("first apply", "full"),
        *[("no-op re-run", m) for m in modes],
        *[("1% changed", m) for m in modes],
    ]

    def sent(run: str, refresh: str) -> tuple[int, int, int]:
        row = runs[(run, refresh)]
        return row["reads"], row["pages"], row["writes"]

    # two listings of the empty account before the creates, then a POST per group
    assert sent("first apply", "full") == (0, 2, 100)
    # 100 groups fit one page: it, and the empty page that ends the listing
    assert sent("no-op re-run", "full") == (100, 0, 0)
    assert sent("no-op re-run", "listing") == (0, 2, 0)
    assert sent("no-op re-run", "none") == (0, 0, 0)
    assert sent("1% changed", "full") == (100, 0, 1)
    assert sent("1% changed", "listing") == (0, 2, 1)
    assert sent("1% changed", "none") == (0, 0, 1)
    for row in sync["runs"]:
        assert row["requests"] == row["reads"] + row["pages"] + row["writes"]
        assert row["seconds_at_80_per_s"] == pytest.approx(row["requests"] / 80)
        assert row["measured_seconds"] > 0
    assert "| no-op re-run | listing | 2 | 0 | 2 | 0 | 0.03 s |" in table


@pytest.mark.bench
def test_benchmarks_quick_run_evaluates_every_target(results: dict[str, Any]) -> None:
    targets = results["targets"]
    assert len(targets) == 10
    assert all(t["measured"] is not None for t in targets), targets


def test_benchmarks_round_runs_the_close_race_back_to_back_in_each_mode(
    suite: ModuleType,
) -> None:
    scenario = suite.scenarios(quick=True)["loopback"]
    variants = scenario.variants(None)
    firsts = set()
    for round_ in range(len(CLOSE_RACE)):
        order = [(v.client, v.mode) for v in suite.round_order(variants, round_)]
        assert sorted(order) == sorted((v.client, v.mode) for v in variants)
        # The close race first: each mode's runs in one block of their own.
        race = len(CLOSE_RACE)
        head = order[: 2 * race]
        assert {c for c, _ in head} == CLOSE_RACE
        assert len({m for _, m in head[:race]}) == 1
        assert len({m for _, m in head[race:]}) == 1
        firsts.add(head[0][0])
    assert firsts == CLOSE_RACE  # the order rotates: each one leads a round


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _job(**changes: Any) -> dict[str, Any]:
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    job = {"base_url": base, "cafile": None, "concurrency": 4, "client": REFERENCE}
    return {**job, "requests": 10, **changes}


def test_benchmarks_fresh_child_failure_is_reported(suite: ModuleType) -> None:
    with pytest.raises(suite.ChildError, match="ClientConnectorError"):
        suite.run_child(_job())


def test_benchmarks_warm_child_failure_is_reported_for_every_round(suite: ModuleType) -> None:
    with suite.warm_children({"w": _job(client="aiohttp")}) as children:
        child = children["w"]
        with pytest.raises(suite.ChildError, match="warm-up: ClientConnectorError"):
            child.wait_ready()
        with pytest.raises(suite.ChildError, match="gone"):
            child.round()


def test_benchmarks_warm_round_failure_is_reported_and_the_child_carries_on(
    suite: ModuleType,
) -> None:
    scenario = suite.scenarios(quick=True)["loopback"]
    with contextlib.ExitStack() as server, contextlib.ExitStack() as children:
        base_url, _ = server.enter_context(suite.server(scenario))
        job = {**_job(), "base_url": base_url}
        child = children.enter_context(suite.warm_children({"w": job}))["w"]
        child.wait_ready()
        assert child.round()["ok"] == job["requests"]
        server.close()  # the server stops; the child keeps running
        for _ in range(2):
            with pytest.raises(suite.ChildError, match=r"(Client|Server)\w*Error"):
                child.round()
            assert child.gone is None


def test_benchmarks_chart_has_a_colour_for_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    report = importlib.import_module("benchmarks._report")
    workloads = importlib.import_module("benchmarks._workloads")
    assert set(report._COLOURS) == set(workloads.CLIENTS)


def test_benchmarks_shared_limit_is_skipped_with_its_reason_without_redis_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    shared = importlib.import_module("benchmarks._shared_limit")
    monkeypatch.setattr(shared.shutil, "which", lambda name: None)
    said: list[str] = []
    summary = shared.measure(quick=True, requests=None, say=said.append)
    assert summary == {
        "skipped": "redis-server is not installed (Debian: apt-get install redis-server)"
    }
    assert said == [f"  shared-limit skipped: {summary['skipped']}"]
    assert shared.table(summary) == f"\nshared limit (RedisLimiter): skipped: {summary['skipped']}"


@pytest.mark.parametrize(
    ("argv", "written", "drawn"),
    [
        ([], "latest.json", "chart.png"),
        (["--scenario", "loopback"], "partial.json", None),
        (["--client", "asyncgroups", "--rounds", "3"], "partial.json", None),
        (["--quick"], "quick.json", None),
        (["--scenario", "sync"], "partial.json", None),
        (["--scenario", "tls", "--json", "/tmp/x.json"], "x.json", None),
    ],
)
def test_benchmarks_only_the_whole_suite_replaces_the_committed_results(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], written: str, drawn: str | None
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    main = importlib.import_module("benchmarks.__main__")
    json_path, chart_path = main.output_paths(main._parser().parse_args(argv))
    assert json_path.name == written
    assert (chart_path.name if chart_path else None) == drawn
