"""Instructions per request, counted by callgrind: the measure a shared machine cannot move.

`python -m benchmarks._callgrind` starts the static server (plain HTTP on 127.0.0.1, in
its own process, not counted) and runs each client's fresh child under
`valgrind --tool=callgrind` twice, once reading N keys and once 2N. Everything a run
pays once (imports, the event loop, opening and closing the client, the first use of
anything lazy) is in both counts, so their difference over N is what one more request
costs the client process. It repeats to about 0.1%, where wall-clock time on two shared
cores swings by tens of percent. Needs valgrind; N defaults to 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._suite import ROOT, Scenario, server
from ._workloads import CLIENTS

#: The clients measured by default: typed `get_many` with and without orjson, and the
#: reference, the worker loop an experienced aiohttp user writes.
DEFAULT_CLIENTS = ("asyncgroups", "asyncgroups-json", "aiohttp-workers")

_TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


def instructions(client: str, base_url: str, requests: int, concurrency: int) -> int:
    """Instructions the client process executes to read `requests` keys in a fresh child."""
    job = {
        "client": client,
        "base_url": base_url,
        "cafile": None,
        "requests": requests,
        "concurrency": concurrency,
    }
    with tempfile.TemporaryDirectory(prefix="asyncgroups-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks._workloads",
            json.dumps(job),
        ]
        # One hash seed: dict and set layouts, and so the count, the same every run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or '"error"' in proc.stdout:
            raise RuntimeError(f"{client}: {proc.stdout.strip()} {proc.stderr[-500:]}")
        match = _TOTAL.search(Path(out).read_text(encoding="utf-8", errors="replace"))
        if match is None:
            raise RuntimeError(f"{client}: no total in callgrind's output")
        return int(match.group(1))


def per_request(client: str, base_url: str, n: int, concurrency: int, times: int = 2) -> float:
    """(instructions for `times` x N requests - instructions for N) / ((times - 1) x N)."""
    one = instructions(client, base_url, n, concurrency)
    more = instructions(client, base_url, times * n, concurrency)
    return (more - one) / ((times - 1) * n)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._callgrind", description=__doc__)
    parser.add_argument("--client", action="append", choices=list(CLIENTS))
    parser.add_argument("--requests", type=int, default=1000, help="N (default 1000)")
    parser.add_argument(
        "--times", type=int, default=2, help="the larger run reads this many times N (default 2)"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    scenario = Scenario("loopback", "callgrind", args.requests, args.concurrency)
    print("| client | instructions per request |")
    print("|---|---:|")
    with server(scenario) as (base_url, _):
        for client in args.client or DEFAULT_CLIENTS:
            count = per_request(client, base_url, args.requests, args.concurrency, args.times)
            print(f"| {client} | {count / 1000:,.1f}k |", flush=True)


if __name__ == "__main__":
    main()
