"""The scenarios, and the loop that runs them: servers, rounds, fresh and warm children."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from ._workloads import CLIENTS, RESULT_PREFIX

#: The repository root: children run `python -m benchmarks._workloads` from here.
ROOT: Final = Path(__file__).resolve().parent.parent

#: No single measurement (a fresh child, a warm child's warm-up or round) may take
#: longer than this; its child is killed.
CHILD_TIMEOUT: Final = 300.0
#: How long a server may take to say which port it listens on.
SERVER_START_TIMEOUT: Final = 30.0

#: Without orjson only where the question is CPU (loopback); the raw-socket floor only
#: where the question is what the server allows (latency-bound).
THROUGHPUT_CLIENTS: Final = tuple(
    c for c in CLIENTS if c not in ("asyncgroups-json", "raw-sockets")
)
LOOPBACK_CLIENTS: Final = (*THROUGHPUT_CLIENTS, "asyncgroups-json")
LATENCY_CLIENTS: Final = (*THROUGHPUT_CLIENTS, "raw-sockets")
#: The clients within a few percent of each other: each round runs them back to back,
#: before the slow ones, so their ratios compare runs seconds apart, not tens.
CLOSE_RACE: Final = frozenset(
    {"asyncgroups", "asyncgroups-iter", "asyncgroups-json", "aiohttp-workers", "aiohttp"}
)

#: fresh: one new process per measurement; warm: one process per client, many rounds.
MODES: Final = ("fresh", "warm")


@dataclass(frozen=True)
class Variant:
    """One measured line of a scenario: a client, a mode, and how many keys it reads."""

    client: str
    requests: int
    mode: str = "fresh"
    #: Streaming runs of one client differ by key count, so their names carry it.
    streaming: bool = False

    @property
    def name(self) -> str:
        if self.streaming:
            return f"{self.client}@{self.requests}"
        return f"{self.client}/{self.mode}"


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
    #: Sequential requests that time one request alone (latency-bound scenarios).
    probe_requests: int = 50

    def variants(self, only: Sequence[str] | None, modes: Sequence[str] = MODES) -> list[Variant]:
        if self.streaming:
            # Peak RSS is a whole process's: only a fresh one measures one run.
            pairs = [Variant(c, n, streaming=True) for c, n in self.streaming]
        else:
            pairs = [Variant(c, self.requests, m) for m in modes for c in self.clients]
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
            clients=LOOPBACK_CLIENTS,
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
            clients=LATENCY_CLIENTS,
            probe_requests=20 if quick else 50,
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
    #: Failures of the scenario as a whole (its server, the server's warm-up, the probe).
    errors: list[str] = field(default_factory=list)


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


def _stop(proc: subprocess.Popen[Any]) -> None:
    """Close the child's stdin (its signal to stop), then terminate or kill it; close its pipes."""
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
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


# Measurements --------------------------------------------------------------------------


class ChildError(RuntimeError):
    """A measurement's child failed: crashed, timed out, or reported an error."""


def _workload_cmd(job: dict[str, Any], *, warm: bool = False) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks._workloads",
        *(["--warm"] if warm else []),
        json.dumps(job),
    ]


def _result_line(line: str) -> dict[str, Any] | None:
    if not line.startswith(RESULT_PREFIX):
        return None
    result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
    return result


def _last_line(text: str) -> str | None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and return what it measured."""
    try:
        proc = subprocess.run(
            _workload_cmd(job),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ChildError(f"no result within {CHILD_TIMEOUT:.0f} s: killed") from None
    results = [r for r in map(_result_line, proc.stdout.splitlines()) if r is not None]
    result = results[-1] if results else None
    if result is not None and "error" in result:
        raise ChildError(result["error"])
    if proc.returncode != 0 or result is None:
        why = _last_line(proc.stderr) or "no output"
        raise ChildError(f"exit code {proc.returncode}: {why}")
    return result


class WarmChild:
    """One client's warm process: opened and warmed up once, then one round per call.

    Its stdout is read without blocking past a deadline (a hung child is killed, not
    waited for); its stderr goes to a file, so a chatty child can never fill a pipe and
    stall, and its last line explains an exit.
    """

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        # Closed in close(), which the caller's ExitStack always runs.
        self._stderr: IO[str] = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                _workload_cmd(job, warm=True),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                bufsize=0,
            )
        except BaseException:
            self._stderr.close()
            raise
        self._buffer = b""
        #: Why the child can't measure any more (None while it can).
        self.gone: str | None = None

    def wait_ready(self) -> None:
        """Wait for the warm-up round; ChildError if it failed."""
        reply = self._reply()
        if not reply.get("ready"):
            self._give_up(f"warm-up: {reply.get('error', reply)}")

    def round(self) -> dict[str, Any]:
        """Time one round in the child and return its result; ChildError on failure."""
        if self.gone is not None:
            raise ChildError(f"the warm child is gone ({self.gone})")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(b"round\n")
            self._proc.stdin.flush()
        except OSError:  # the child exited: say why
            self._give_up(self._exit_reason())
        reply = self._reply()
        if "error" in reply:
            raise ChildError(reply["error"])  # this round failed; the child carries on
        return reply

    def _reply(self) -> dict[str, Any]:
        """The next result line, within CHILD_TIMEOUT."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + CHILD_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    result = _result_line(line.decode("utf-8", "replace"))
                    if result is not None:
                        return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._proc.kill()
                    self._give_up(f"no reply within {CHILD_TIMEOUT:.0f} s: killed")
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self._give_up(self._exit_reason())
                self._buffer += chunk

    def _exit_reason(self) -> str:
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._stderr.seek(0)
        return f"exit code {code}: {_last_line(self._stderr.read()) or 'no output'}"

    def _give_up(self, why: str) -> None:
        self.gone = why
        raise ChildError(why)

    def close(self) -> None:
        """Stop the child (end of input says stop), then terminate or kill it."""
        try:
            _stop(self._proc)
        finally:
            self._stderr.close()


@contextlib.contextmanager
def warm_children(jobs: dict[str, dict[str, Any]]) -> Iterator[dict[str, WarmChild]]:
    """Start a warm child per job, all at once, and stop every one of them on the way out."""
    with contextlib.ExitStack() as stack:
        children = {}
        for name, job in jobs.items():
            child = WarmChild(job)
            stack.callback(child.close)
            children[name] = child
        yield children


T = TypeVar("T")


def rotated(items: Sequence[T], by: int) -> list[T]:
    """`items` starting at index `by` (mod len): each round puts a different one first."""
    k = by % len(items) if items else 0
    return [*items[k:], *items[:k]]


def round_order(variants: Sequence[Variant], round_: int) -> list[Variant]:
    """The order of one round: the close race first, then the rest.

    Within each part the variants of one mode run back to back (a ratio compares a
    client with the reference of its own mode and round), the client order rotates
    every round, and so does which mode goes first.
    """
    close = [v for v in variants if v.client in CLOSE_RACE and not v.streaming]
    rest = [v for v in variants if v not in close]
    order: list[Variant] = []
    for part in (close, rest):
        for mode in rotated(MODES, round_):
            order += rotated([v for v in part if v.mode == mode], round_)
    return order


def run_scenario(
    scenario: Scenario,
    *,
    rounds: int,
    only: Sequence[str] | None,
    say: Callable[[str], None],
    modes: Sequence[str] = MODES,
) -> ScenarioRun:
    """Every variant of `scenario`, `rounds` times, alternating.

    A fresh variant starts one child per round; a warm variant has one child for the
    whole scenario, started (and warmed up) before the first round.
    """
    variants = scenario.variants(only, modes)
    results = {v.name: Measured() for v in variants}
    run = ScenarioRun(results)
    if not variants:
        return run
    with server(scenario) as (base_url, cafile):
        base = {"base_url": base_url, "cafile": cafile, "concurrency": scenario.concurrency}

        def job(variant: Variant) -> dict[str, Any]:
            return {
                **base,
                "client": variant.client,
                "requests": variant.requests,
                "lazy": bool(scenario.streaming),
            }

        warm_jobs = {v.name: job(v) for v in variants if v.mode == "warm"}
        with warm_children(warm_jobs) as warm:
            # The server's first requests pay for lazy set-up: the warm children's
            # warm-up rounds (untimed, so side by side) take that cost, or else one batch.
            if not warm:
                run_child(
                    {
                        **base,
                        "client": "asyncgroups",
                        "requests": min(200, scenario.requests or 200),
                    }
                )
            for name, child in warm.items():
                try:
                    child.wait_ready()
                except ChildError as err:
                    results[name].errors.append(str(err))
                    say(f"  {scenario.name:<9} {name:<28} FAILED: {err}")
            if scenario.latency > 0:  # once the warm-ups are over: on a quiet machine
                probe = run_child({**base, "probe": True, "requests": scenario.probe_requests})
                run.probed_latency_s = probe["latency_s"]
                say(
                    f"  {scenario.name:<9} one request alone takes "
                    f"{probe['latency_s'] * 1000:.2f} ms"
                )
            for round_ in range(rounds):
                for variant in round_order(variants, round_):
                    measured = results[variant.name]
                    try:
                        if variant.mode == "warm":
                            result = warm[variant.name].round()
                        else:
                            result = run_child(job(variant))
                    except ChildError as err:
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
                        f"{result['cpu_seconds'] / variant.requests * 1e6:5.0f} µs CPU/req  "
                        f"peak RSS {result['peak_rss_mb']:6.1f} MB"
                    )
    return run
