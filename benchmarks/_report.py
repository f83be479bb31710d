"""Summaries, the targets, the table, the JSON file and the chart."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from ._suite import Measured, Scenario
from ._workloads import CLIENTS

#: The reference every throughput ratio is taken against: the worker-pool hand loop.
REFERENCE: Final = "aiohttp-workers"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _paired_ratios(runs: Measured, ref: Measured | None) -> list[float]:
    """rps of `runs` over rps of `ref` in the same round, for every round both ran."""
    if ref is None:
        return []
    by_round = {r["round"]: r["rps"] for r in ref.runs}
    return [r["rps"] / by_round[r["round"]] for r in runs.runs if by_round.get(r["round"])]


def _name(client: str, mode: str) -> str:
    return f"{client}/{mode}"


def summarise(
    scenario: Scenario,
    measured: Mapping[str, Measured],
    *,
    probed_latency_s: float | None = None,
) -> dict[str, Any]:
    """What the JSON keeps of one scenario: raw runs, medians, ranges, ratios."""
    # The best any client can do when latency-bound: the concurrency over what one
    # request alone really takes (the nominal delay plus timer rounding and transport).
    ceiling = scenario.concurrency / probed_latency_s if probed_latency_s else None
    variants: dict[str, Any] = {}
    for name, m in measured.items():
        client, _, rest = name.partition("/")
        client = client.split("@")[0]
        mode = rest or "fresh"
        requests = m.runs[0]["requests"] if m.runs else None
        rps = [r["rps"] for r in m.runs]
        cpu = [r["cpu_seconds"] / r["requests"] * 1e6 for r in m.runs if r["requests"]]
        entry: dict[str, Any] = {
            "client": client,
            "mode": mode,
            "label": CLIENTS.get(client, client),
            "requests": requests,
            "rounds": len(m.runs),
            "rps": rps,
            "median_rps": _median(rps),
            "cpu_us_per_request": cpu,
            "median_cpu_us_per_request": _median(cpu),
            "peak_rss_mb": [r["peak_rss_mb"] for r in m.runs],
            "median_peak_rss_mb": _median([r["peak_rss_mb"] for r in m.runs]),
            "errors": m.errors,
        }
        if not scenario.streaming:
            ratios = _paired_ratios(m, measured.get(_name(REFERENCE, mode)))
            entry["reference"] = _name(REFERENCE, mode)
            entry["ratios_vs_reference"] = ratios
            entry["median_ratio_vs_reference"] = _median(ratios)
        if scenario.ideal_rps and entry["median_rps"]:
            entry["fraction_of_ideal"] = entry["median_rps"] / scenario.ideal_rps
        if ceiling and entry["median_rps"]:
            entry["fraction_of_ceiling"] = entry["median_rps"] / ceiling
        variants[name] = entry
    return {
        "title": scenario.title,
        "requests": scenario.requests or None,
        "concurrency": scenario.concurrency,
        "latency_s": scenario.latency,
        "tls": scenario.tls,
        "ideal_rps": scenario.ideal_rps,
        "probed_latency_s": probed_latency_s,
        "ceiling_rps": ceiling,
        "variants": variants,
    }


@dataclass(frozen=True)
class Target:
    name: str
    scenario: str
    goal: str
    threshold: float
    #: ratio: `client`'s paired throughput ratio to `versus`; ceiling: its share of the
    #: server's measured ceiling (concurrency / one request's latency); rss: iter_many's
    #: large-run peak RSS minus the small run's.
    kind: str = "ratio"
    versus: str = REFERENCE
    mode: str = "warm"
    client: str = "asyncgroups"
    #: True: measured must be >= threshold; False: <=.
    at_least: bool = True


#: The performance issue's targets (each a median in one run), then the older ones.
TARGETS: Final = (
    Target(
        "get_many vs the raw aiohttp worker pool, loopback, warm",
        "loopback",
        "≥ 1.00 x",
        1.00,
    ),
    Target(
        "get_many without orjson vs the raw aiohttp worker pool, loopback, warm",
        "loopback",
        "≥ 1.00 x",
        1.00,
        client="asyncgroups-json",
    ),
    Target(
        "iter_many vs the raw aiohttp worker pool, loopback, warm",
        "loopback",
        "≥ 0.95 x",
        0.95,
        client="asyncgroups-iter",
    ),
    Target("get_many vs the raw aiohttp worker pool, TLS, warm", "tls", "≥ 0.95 x", 0.95),
    Target(
        "get_many, latency-bound, share of the server's measured ceiling",
        "latency",
        "≥ 0.95",
        0.95,
        kind="ceiling",
    ),
    Target(
        "iter_many peak RSS: 200,000 keys minus 20,000 (MB)",
        "streaming",
        "≤ 30 MB",
        30.0,
        kind="rss",
        at_least=False,
    ),
    Target(
        "get_many vs the raw aiohttp worker pool, loopback, fresh",
        "loopback",
        "≥ 0.95 x",
        0.95,
        mode="fresh",
    ),
    Target(
        "get_many vs httpx, loopback, fresh",
        "loopback",
        "≥ 10 x",
        10.0,
        versus="httpx",
        mode="fresh",
    ),
    Target("get_many vs httpx, TLS, fresh", "tls", "≥ 10 x", 10.0, versus="httpx", mode="fresh"),
    Target(
        "get_many vs a new aiohttp session per request, TLS, fresh",
        "tls",
        "≥ 5 x",
        5.0,
        versus="aiohttp-per-request",
        mode="fresh",
    ),
)


def _pair(measured: Mapping[str, Measured], a: str, b: str) -> float | None:
    if a not in measured or b not in measured:
        return None
    return _median(_paired_ratios(measured[a], measured[b]))


def _measure_target(
    target: Target, measured: Mapping[str, Measured], summary: Mapping[str, Any]
) -> float | None:
    if target.kind == "ratio":
        return _pair(measured, _name(target.client, target.mode), _name(target.versus, target.mode))
    if target.kind == "ceiling":
        entry = summary["variants"].get(_name(target.client, target.mode), {})
        value: float | None = entry.get("fraction_of_ceiling")
        return value
    iters = [v for v in summary["variants"].values() if v["client"] == "asyncgroups-iter"]
    iters.sort(key=lambda v: v["requests"] or 0)
    if len(iters) < 2:
        return None
    small, large = iters[0]["median_peak_rss_mb"], iters[-1]["median_peak_rss_mb"]
    return large - small if small and large else None


def evaluate(
    scenario: Scenario, measured: Mapping[str, Measured], summary: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The targets of `scenario`, each with its measured figure (None: not measured)."""
    out = []
    for target in TARGETS:
        if target.scenario != scenario.name:
            continue
        value = _measure_target(target, measured, summary)
        met = None
        if value is not None:
            met = value >= target.threshold if target.at_least else value <= target.threshold
        out.append(
            {
                "name": target.name,
                "scenario": target.scenario,
                "goal": target.goal,
                "measured": value,
                "met": met,
            }
        )
    return out


# Machine ------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": {
            name: _version(name)
            for name in ("asyncgroups", "aiohttp", "httpx", "attrs", "cattrs", "orjson", "yarl")
        },
    }


# Output -------------------------------------------------------------------------------


def _ratios(entry: Mapping[str, Any]) -> tuple[float | None, list[float]]:
    """(median, per-round) ratios to the reference; results files before the worker-pool
    reference called them `*_vs_aiohttp`."""
    if "ratios_vs_reference" in entry:
        return entry["median_ratio_vs_reference"], entry["ratios_vs_reference"]
    return entry.get("median_ratio_vs_aiohttp"), entry.get("ratios_vs_aiohttp") or []


def _reference(results: Mapping[str, Any]) -> str:
    return str(results.get("reference", "aiohttp"))


def _fmt_range(median: float | None, values: list[float], fmt: str, unit: str = "") -> str:
    if median is None or not values:
        return "-"
    if len(values) == 1:
        return f"{median:{fmt}}{unit}"
    return f"{median:{fmt}}{unit} ({min(values):{fmt}}-{max(values):{fmt}})"


def _mode(entry: Mapping[str, Any]) -> str:
    return str(entry.get("mode", "fresh"))


def table(results: Mapping[str, Any]) -> str:
    """The results as Markdown tables (throughput, then memory, then targets)."""
    ref = _reference(results)
    lines = [
        f"| scenario | mode | client | req/s (median) | vs {ref} (median, range) "
        "| client CPU µs/req (median, range) |",
        "|---|---|---|---:|---:|---:|",
    ]
    memory = [
        "| run | keys | peak RSS MB (median) | req/s (median) |",
        "|---|---:|---:|---:|",
    ]
    modes_seen: set[str] = set()
    for name, scenario in results["scenarios"].items():
        entries = list(scenario["variants"].values())
        if name != "streaming":
            # Fresh rows, then warm rows, each in table order; sort() is stable.
            entries.sort(key=lambda e: ("fresh", "warm").index(_mode(e)))
        for entry in entries:
            rps = f"{entry['median_rps']:,.0f}" if entry["median_rps"] else "-"
            if name == "streaming":
                rss = entry["median_peak_rss_mb"]
                memory.append(
                    f"| {entry['label']} | {entry['requests'] or 0:,} | {rss:.1f} | {rps} |"
                    if rss
                    else f"| {entry['label']} | - | - | - |"
                )
                continue
            modes_seen.add(_mode(entry))
            note = ""
            if "fraction_of_ideal" in entry:
                note = f" ({entry['fraction_of_ideal']:.0%} of ideal"
                if "fraction_of_ceiling" in entry:
                    note += f", {entry['fraction_of_ceiling']:.0%} of ceiling"
                note += ")"
            cpu_median = entry["median_cpu_us_per_request"]
            cpu = _fmt_range(
                cpu_median, entry.get("cpu_us_per_request") or [cpu_median or 0], ".0f"
            )
            ratio = _fmt_range(*_ratios(entry), ".2f", "x")
            label = entry["label"] + (" **(reference)**" if entry["client"] == ref else "")
            lines.append(
                f"| {name} | {_mode(entry)} | {label} | {rps}{note} | {ratio} | {cpu} |"
                if entry["median_rps"]
                else f"| {name} | {_mode(entry)} | {label} | - | - | - |"
            )
    out = "\n".join(lines)
    if "warm" in modes_seen:
        out += (
            "\n\nfresh: a new process per round, timed from opening the client to closing it. "
            "warm: one process per client for the whole scenario; after an untimed warm-up "
            "round, each round times the requests alone, through the open client and its "
            "warm pool. Ratios compare a client with the reference of the same mode and "
            "round."
        )
    latency = results["scenarios"].get("latency")
    if latency and latency.get("ceiling_rps"):
        out += (
            f"\n\nLatency-bound: ideal = concurrency / nominal latency = "
            f"{latency['ideal_rps']:,.0f} req/s. One request alone took "
            f"{latency['probed_latency_s'] * 1000:.2f} ms at this server (its 20 ms sleep, "
            f"timer rounding, loopback), so no client can exceed a ceiling of "
            f"{latency['ceiling_rps']:,.0f} req/s."
        )
    if len(memory) > 2:
        out += "\n\n" + "\n".join(memory)
    errors = [
        f"- {name}: {error}"
        for name, scenario in results["scenarios"].items()
        for error in scenario.get("errors", [])
    ] + [
        f"- {name} {variant}: {error}"
        for name, scenario in results["scenarios"].items()
        for variant, entry in scenario["variants"].items()
        for error in entry["errors"]
    ]
    if errors:
        out += "\n\n**Errors** (these runs failed; their figures are missing or partial):\n"
        out += "\n".join(errors)
    if results["targets"]:
        targets = ["| target | goal | measured | met |", "|---|---|---:|---|"]
        for t in results["targets"]:
            value = "not measured" if t["measured"] is None else f"{t['measured']:.2f}"
            met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
            targets.append(f"| {t['name']} | {t['goal']} | {value} | {met} |")
        out += "\n\n" + "\n".join(targets)
    return out


def write_json(results: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def results_document(
    *, settings: Mapping[str, Any], scenarios: Mapping[str, Any], targets: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "-m", "benchmarks", *sys.argv[1:]]),
        "machine": machine(),
        "reference": REFERENCE,
        "settings": dict(settings),
        "scenarios": dict(scenarios),
        "targets": targets,
    }


# Chart --------------------------------------------------------------------------------

_COLOURS: Final = {
    "asyncgroups": "#1f6feb",
    "asyncgroups-iter": "#58a6ff",
    "asyncgroups-json": "#1a7f37",
    "aiohttp-workers": "#24292f",
    "aiohttp": "#8c959f",
    "httpx": "#d29922",
    "aiohttp-per-request": "#cf222e",
    "raw-sockets": "#8250df",
}


def chart(results: Mapping[str, Any], path: Path) -> bool:
    """Draw throughput vs raw aiohttp and streaming memory into one PNG.

    Returns False (and draws nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False

    scenarios = results["scenarios"]
    throughput = [n for n in ("loopback", "tls", "latency") if n in scenarios]
    streaming = scenarios.get("streaming")
    panels = int(bool(throughput)) + int(bool(streaming))
    if not panels:
        return False
    widths = [3, 1.3] if panels == 2 else [1]
    fig, axes = plt.subplots(
        1, panels, figsize=(13, 5.8), gridspec_kw={"width_ratios": widths}, squeeze=False
    )
    ax_iter = iter(axes[0])
    if throughput:
        ax = next(ax_iter)
        ref = _reference(results)
        # One group of bars per (scenario, mode) that was measured.
        groups = [
            (name, mode)
            for name in throughput
            for mode in ("fresh", "warm")
            if any(_mode(e) == mode for e in scenarios[name]["variants"].values())
        ]
        clients = list(CLIENTS)
        width = 0.8 / len(clients)
        for i, client in enumerate(clients):
            xs, ys = [], []
            for j, (name, mode) in enumerate(groups):
                entry = next(
                    (
                        e
                        for e in scenarios[name]["variants"].values()
                        if e["client"] == client and _mode(e) == mode
                    ),
                    None,
                )
                median = _ratios(entry)[0] if entry else None
                if median:
                    xs.append(j + (i - (len(clients) - 1) / 2) * width)
                    ys.append(median)
            if not xs:
                continue
            bars = ax.bar(xs, ys, width, label=CLIENTS[client], color=_COLOURS[client])
            ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
        ax.axhline(1.0, color="#444", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(
            [f"{_short_title(scenarios[n], n)}\n{mode}" for n, mode in groups], fontsize=7
        )
        ax.set_ylabel(f"throughput relative to {ref} (log scale)")
        ax.set_title("Throughput, median of paired rounds (higher is better)", fontsize=10)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    if streaming:
        ax = next(ax_iter)
        entries = [e for e in streaming["variants"].values() if e["median_peak_rss_mb"]]
        labels = [f"{_short_client(e['client'])}\n{e['requests']:,} keys" for e in entries]
        values = [e["median_peak_rss_mb"] for e in entries]
        colours = [_COLOURS.get(e["client"], "#888") for e in entries]
        bars = ax.bar(range(len(values)), values, color=colours)
        ax.bar_label(bars, fmt="%.0f MB", fontsize=8, padding=1)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("peak RSS of the client process (MB)")
        ax.set_title("Streaming keys from a generator", fontsize=10)
    machine_ = results["machine"]
    fig.suptitle(
        f"asyncgroups benchmarks — {machine_['nproc']} cores, {machine_['cpu']}, "
        f"Python {machine_['python']}, aiohttp {machine_['versions']['aiohttp']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _short_client(client: str) -> str:
    return {
        "asyncgroups-iter": "iter_many",
        "aiohttp": "raw aiohttp gather",
        "aiohttp-workers": "raw aiohttp workers",
    }.get(client, client)


def _short_title(scenario: Mapping[str, Any], name: str) -> str:
    if name == "latency":
        return f"latency 20 ms\n(concurrency {scenario['concurrency']})"
    if name == "tls":
        return f"TLS\n(concurrency {scenario['concurrency']})"
    return f"loopback HTTP\n(concurrency {scenario['concurrency']})"
