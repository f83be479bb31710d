"""`python -m benchmarks`: run the suite, print the table, write the JSON and the chart."""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import _report, _shared_limit, _suite, _sync
from ._workloads import CLIENTS

RESULTS = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Compare asyncgroups' bulk reads with hand-written aiohttp loops (the reference: "
            "a worker pool on one session), httpx and a session per request, against a "
            "static server on 127.0.0.1 in a separate process; each in fresh processes "
            "and in one warm process per client."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a few hundred requests, 1 round, no chart (well under 30 s)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=["loopback", "tls", "latency", "streaming", "shared-limit", "sync"],
        help="run only this scenario (repeatable; default: all). shared-limit: what "
        "RedisLimiter adds per request against a local redis-server (skipped without one); "
        "sync: the requests of sync's runs against the fake, and their time at 80/s",
    )
    parser.add_argument(
        "--client",
        action="append",
        choices=list(CLIENTS),
        help="measure only this client (repeatable; default: all that are installed)",
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=list(_suite.MODES),
        help="fresh: a new process per round, timed from opening the client to closing it; "
        "warm: one process per client, rounds timed after a warm-up round "
        "(repeatable; default: both)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds per scenario (default: loopback and tls 7, latency 5, streaming 3; quick 1)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        help="requests per throughput run (default 5000, quick 300); groups of the sync "
        "scenario (default 10000, quick 300)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="where to write the results (default benchmarks/results/latest.json for "
        "the full suite, partial.json when --scenario, --client, --mode, --rounds or "
        "--requests narrow it, quick.json with --quick)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        help="where to draw the chart (default benchmarks/results/chart.png for the "
        "full suite; a narrowed or quick run draws one only when given)",
    )
    parser.add_argument("--no-chart", action="store_true", help="draw no chart")
    parser.add_argument(
        "--replot",
        type=Path,
        metavar="JSON",
        help="run nothing: print the table and draw the chart of an earlier results file",
    )
    return parser


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _available_clients(wanted: list[str] | None) -> list[str]:
    clients = wanted or list(CLIENTS)
    if "httpx" in clients and importlib.util.find_spec("httpx") is None:
        _say('httpx is not installed: skipping it (pip install -e ".[bench]")')
        clients.remove("httpx")
    return clients


def _replot(args: argparse.Namespace) -> int:
    results = json.loads(args.replot.read_text(encoding="utf-8"))
    print(_report.table(results))
    print(_shared_limit.table(results.get("shared_limit")))
    print(_sync.table(results.get("sync")))
    chart_path = args.chart or RESULTS / "chart.png"
    if not args.no_chart and _report.chart(results, chart_path):
        _say(f"chart: {chart_path}")
    return 0


def output_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """Where a run writes its results and draws its chart (None: no chart).

    Only the whole suite replaces the committed `latest.json` and `chart.png`: a run
    narrowed by `--scenario`, `--client`, `--mode`, `--rounds` or `--requests` writes
    `partial.json`, a quick one `quick.json`, and neither draws unless told where.
    """
    narrowed = any(
        value is not None
        for value in (args.scenario, args.client, args.mode, args.rounds, args.requests)
    )
    name = "quick.json" if args.quick else "partial.json" if narrowed else "latest.json"
    chart = args.chart or (None if args.quick or narrowed else RESULTS / "chart.png")
    return args.json or RESULTS / name, chart


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.replot is not None:
        return _replot(args)
    rounds = args.rounds or (1 if args.quick else 5)
    if rounds < 1:
        _say("--rounds must be at least 1")
        return 2
    if args.requests is not None and args.requests < 1:
        _say("--requests must be at least 1")
        return 2
    if importlib.util.find_spec("trustme") is None and (
        args.scenario is None or "tls" in args.scenario
    ):
        _say('trustme is needed for the TLS scenario: pip install -e ".[bench]"')
        return 2
    clients = _available_clients(args.client)
    modes = [m for m in _suite.MODES if args.mode is None or m in args.mode]
    suite = _suite.scenarios(quick=args.quick, requests=args.requests)
    wanted = args.scenario or [*suite, "shared-limit", "sync"]
    names = [name for name in wanted if name not in ("shared-limit", "sync")]
    settings: dict[str, Any] = {
        "quick": args.quick,
        "rounds": {name: args.rounds or suite[name].default_rounds or rounds for name in names},
        "scenarios": names,
        "clients": clients,
        "modes": modes,
    }

    started = time.monotonic()
    summaries: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    failed = False
    for name in names:
        scenario = suite[name]
        _say(f"{name}: {scenario.title}")
        scenario_rounds = args.rounds or scenario.default_rounds or rounds
        try:
            run = _suite.run_scenario(
                scenario, rounds=scenario_rounds, only=clients, modes=modes, say=_say
            )
        except (_suite.ChildError, RuntimeError) as err:  # the server or its warm-up
            _say(f"  {name:<9} FAILED: {err}")
            run = _suite.ScenarioRun({}, errors=[str(err)])
        measured = run.variants
        summary = _report.summarise(scenario, measured, probed_latency_s=run.probed_latency_s)
        summary["errors"] = run.errors
        summaries[name] = summary
        targets += _report.evaluate(scenario, measured, summary)
        failed |= bool(run.errors) or any(m.errors for m in measured.values())
    shared: dict[str, Any] | None = None
    if "shared-limit" in wanted:
        _say("shared-limit: RedisLimiter's cost per request, against a local redis-server")
        try:
            shared = _shared_limit.measure(
                quick=args.quick, requests=args.requests, rounds=args.rounds, say=_say
            )
        except (_suite.ChildError, RuntimeError) as err:
            _say(f"  shared-limit FAILED: {err}")
            shared = {"error": str(err)}
            failed = True
    sync: dict[str, Any] | None = None
    if "sync" in wanted:
        _say("sync: the requests of each kind of sync run, against the fake, unpaced")
        try:
            sync = _sync.measure(quick=args.quick, groups=args.requests, say=_say)
        except (RuntimeError, OSError) as err:
            _say(f"  sync FAILED: {err}")
            sync = {"error": str(err)}
            failed = True
    settings["seconds"] = round(time.monotonic() - started, 1)

    results = _report.results_document(settings=settings, scenarios=summaries, targets=targets)
    if shared is not None:
        results["shared_limit"] = shared
    if sync is not None:
        results["sync"] = sync
    if summaries:
        print(_report.table(results))
    print(_shared_limit.table(results.get("shared_limit")))
    print(_sync.table(results.get("sync")))
    if args.quick:
        _say("\nquick mode: a smoke run; its figures are too small to mean anything")
    json_path, chart_path = output_paths(args)
    _report.write_json(results, json_path)
    _say(f"\nresults: {json_path}  ({settings['seconds']} s)")
    if chart_path is not None and not args.no_chart:
        if not summaries:
            _say("no chart: no throughput or streaming scenario ran")
        elif _report.chart(results, chart_path):
            _say(f"chart: {chart_path}")
        else:
            _say('no chart: matplotlib is not installed (pip install -e ".[bench]")')
    if failed:
        _say("some runs failed: see the errors in the results")
    return 1 if failed else 0


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # SIGTERM, and SIGINT even where a shell started us with it ignored, unwind like
    # Ctrl-C: every `finally` runs, so no server or workload process outlives the run.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # children were stopped on the way out
        _say("interrupted")
        sys.exit(130)
