"""Instructions per request, counted by callgrind in the client process alone.

`python -m benchmarks._instructions [--requests N] [--client NAME ...]` starts the
loopback server (outside valgrind), then runs each client's fresh workload under
`valgrind --tool=callgrind` twice, with N and with 2N requests. Everything a run does
once (interpreter start-up, imports, opening and closing the client, first-use code
generation) is the same in both, so the difference divided by N is what one more request
costs. Unlike wall-clock time it barely moves with the machine's load: repeated runs
agree within about 0.7%, so a change of 1% per request is seen. Needs valgrind on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from ._suite import ROOT, _workload_cmd, scenarios, server

#: The clients measured unless `--client` says otherwise.
DEFAULT_CLIENTS: Final = ("asyncgroups", "asyncgroups-json", "aiohttp-workers")


def instructions(job: dict[str, object]) -> int:
    """Instructions the client process executed for `job`, from callgrind's totals."""
    with tempfile.TemporaryDirectory(prefix="asyncgroups-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        proc = subprocess.run(
            [*cmd, *_workload_cmd(job)], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"callgrind run failed: {proc.stderr.strip()[-500:]}")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._instructions")
    parser.add_argument("--requests", type=int, default=2000, help="N (default 2000)")
    parser.add_argument("--client", action="append", help="a client of benchmarks._workloads")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on PATH")
    n = args.requests
    scenario = scenarios(quick=False)["loopback"]
    with server(scenario) as (base_url, cafile):
        base = {"base_url": base_url, "cafile": cafile, "concurrency": scenario.concurrency}
        for client in args.client or DEFAULT_CLIENTS:
            counts = [instructions({**base, "client": client, "requests": k}) for k in (n, 2 * n)]
            per_request = (counts[1] - counts[0]) / n
            print(f"{client}: {per_request / 1000:.1f}k instructions per request", flush=True)


if __name__ == "__main__":
    main()
