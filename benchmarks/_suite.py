"""The scenarios, and the loop that runs them: servers, rounds, one child per measurement."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ._workloads import CLIENTS

#: The repository root: children run `python -m benchmarks._workloads` from here.
ROOT: Final = Path(__file__).resolve().parent.parent

#: No single measurement may take longer than this; its child is killed.
CHILD_TIMEOUT: Final = 300.0
#: How long a server may take to say which port it listens on.
SERVER_START_TIMEOUT: Final = 30.0

THROUGHPUT_CLIENTS: Final = tuple(CLIENTS)
#: The clients within a few percent of each other: each round runs them back to back,
#: before the slow ones, so their ratios compare runs seconds apart, not tens.
CLOSE_RACE: Final = frozenset({"asyncgroups", "asyncgroups-iter", "aiohttp"})


@dataclass(frozen=True)
class Variant:
    """One measured line of a scenario: a client, and how many keys it reads."""

    client: str
    requests: int
    #: Streaming runs of one client differ by key count, so their names carry it.
    streaming: bool = False

    @property
    def name(self) -> str:
        return f"{self.client}@{self.requests}" if self.streaming else self.client


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    #: Requests per measurement (throughput scenarios).
    requests: int
    concurrency: int
    #: Seconds the server waits before answering each request.
    latency: float = 0.0
    tls: bool = False
    #: Streaming: keys come from a generator; (client, key count) pairs are measured.
    streaming: tuple[tuple[str, int], ...] = ()
    clients: tuple[str, ...] = THROUGHPUT_CLIENTS
    #: Rounds when --rounds is not given (None: the suite's default).
    default_rounds: int | None = None

    def variants(self, only: Sequence[str] | None) -> list[Variant]:
        if self.streaming:
            pairs = [Variant(c, n, streaming=True) for c, n in self.streaming]
        else:
            pairs = [Variant(c, self.requests) for c in self.clients]
        return [v for v in pairs if only is None or v.client in only]

    @property
    def ideal_rps(self) -> float | None:
        """Concurrency / latency: what a perfect client reaches when latency-bound."""
        return self.concurrency / self.latency if self.latency > 0 else None


def scenarios(*, quick: bool, requests: int | None = None) -> dict[str, Scenario]:
    """The suite; `quick` shrinks every workload to a smoke run."""
    n = requests or (300 if quick else 5000)
    # Latency-bound: 6,400 requests take two seconds at the ideal rate.
    n_latency = requests or (300 if quick else 6400)
    small, large = (300, 3000) if quick else (20_000, 200_000)
    return {
        "loopback": Scenario(
            "loopback",
            f"{n:,} GETs, concurrency 32, plain HTTP over loopback",
            n,
            32,
            default_rounds=None if quick else 7,
        ),
        "tls": Scenario(
            "tls",
            f"{n:,} GETs, concurrency 32, TLS (trustme certificate)",
            n,
            32,
            tls=True,
            default_rounds=None if quick else 7,
        ),
        "latency": Scenario(
            "latency",
            f"{n_latency:,} GETs, concurrency 64, 20 ms server latency (ideal 3,200 req/s)",
            n_latency,
            64,
            latency=0.020,
        ),
        "streaming": Scenario(
            "streaming",
            f"iter_many over {large:,} keys from a generator vs {small:,}: peak RSS",
            0,
            32,
            streaming=(
                ("asyncgroups-iter", small),
                ("asyncgroups-iter", large),
                ("aiohttp", large),
            ),
            # Peak RSS barely moves between rounds, and a round takes about a minute.
            default_rounds=None if quick else 3,
        ),
    }


@dataclass
class Measured:
    """The measurements of one variant over every round."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class ScenarioRun:
    """What running one scenario produced."""

    variants: dict[str, Measured]
    #: Median time of one request alone (latency-bound scenarios only).
    probed_latency_s: float | None = None


# Servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _tls_files() -> Iterator[tuple[str, str]]:
    """A trustme CA and a certificate for 127.0.0.1: (server PEM, CA PEM) paths."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="asyncgroups-bench-") as tmp:
        server_pem = os.path.join(tmp, "server.pem")
        ca_pem = os.path.join(tmp, "ca.pem")
        cert.private_key_and_cert_chain_pem.write_to_path(server_pem)
        ca.cert_pem.write_to_path(ca_pem)
        yield server_pem, ca_pem


@contextlib.contextmanager
def server(scenario: Scenario) -> Iterator[tuple[str, str | None]]:
    """Start the static server for `scenario` in a child process: (base URL, CA file).

    The child stops when its stdin closes; it is terminated, then killed, if it doesn't,
    whatever happens here (Ctrl-C included).
    """
    with contextlib.ExitStack() as stack:
        cmd = [sys.executable, "-m", "benchmarks._server", "--latency", str(scenario.latency)]
        cafile = None
        if scenario.tls:
            server_pem, cafile = stack.enter_context(_tls_files())
            cmd += ["--cert", server_pem]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            port = _read_port(proc)
            scheme = "https" if scenario.tls else "http"
            yield f"{scheme}://127.0.0.1:{port}/v1", cafile
        finally:
            _stop(proc)


def _read_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("PORT "):
            return int(line.split()[1])
    raise RuntimeError(f"the benchmark server did not start (exit code {proc.poll()})")


def _stop(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Measurements --------------------------------------------------------------------------


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and return what it measured."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._workloads", json.dumps(job)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise RuntimeError(tail[0])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def rotated(items: Sequence[Variant], by: int) -> list[Variant]:
    """`items` starting at index `by` (mod len): each round puts a different one first."""
    k = by % len(items) if items else 0
    return [*items[k:], *items[:k]]


def round_order(variants: Sequence[Variant], round_: int) -> list[Variant]:
    """The order of one round: the close race first, then the rest, each rotated."""
    close = [v for v in variants if v.client in CLOSE_RACE and not v.streaming]
    rest = [v for v in variants if v not in close]
    return [*rotated(close, round_), *rotated(rest, round_)]


def run_scenario(
    scenario: Scenario,
    *,
    rounds: int,
    only: Sequence[str] | None,
    say: Callable[[str], None],
) -> ScenarioRun:
    """Every variant of `scenario`, `rounds` times, alternating; one child per run."""
    variants = scenario.variants(only)
    results = {v.name: Measured() for v in variants}
    run = ScenarioRun(results)
    if not variants:
        return run
    with server(scenario) as (base_url, cafile):
        base = {"base_url": base_url, "cafile": cafile, "concurrency": scenario.concurrency}
        # Warm the server (its first requests pay for lazy set-up); not measured.
        run_child({**base, "client": "asyncgroups", "requests": min(200, scenario.requests or 200)})
        if scenario.latency > 0:
            probe = run_child({**base, "probe": True, "requests": 50})
            run.probed_latency_s = probe["latency_s"]
            say(f"  {scenario.name:<9} one request alone takes {probe['latency_s'] * 1000:.2f} ms")
        for round_ in range(rounds):
            for variant in round_order(variants, round_):
                job = {
                    **base,
                    "client": variant.client,
                    "requests": variant.requests,
                    "lazy": bool(scenario.streaming),
                }
                measured = results[variant.name]
                try:
                    result = run_child(job)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as err:
                    measured.errors.append(f"round {round_ + 1}: {err}")
                    say(f"  {scenario.name:<9} {variant.name:<28} FAILED: {err}")
                    continue
                result["round"] = round_
                if result["ok"] != variant.requests:
                    measured.errors.append(
                        f"round {round_ + 1}: {result['ok']} of {variant.requests} replies ok"
                    )
                measured.runs.append(result)
                say(
                    f"  {scenario.name:<9} round {round_ + 1}/{rounds} {variant.name:<28} "
                    f"{result['rps']:>9,.0f} req/s  {result['seconds']:6.2f} s  "
                    f"peak RSS {result['peak_rss_mb']:6.1f} MB"
                )
    return run
