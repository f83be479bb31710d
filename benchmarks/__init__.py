"""Benchmarks: asyncgroups' pool and limiter against what users would write instead.

Run from the repository root, after `pip install -e ".[bench]"`:

    python -m benchmarks                 # the full suite (a few minutes), writes
                                         # benchmarks/results/latest.json and chart.png
    python -m benchmarks --quick         # a smoke run: a few hundred requests, 1 round
    python -m benchmarks --scenario tls --rounds 7

Every scenario talks to a static aiohttp.web server (`_server.py`) in a separate
process on 127.0.0.1, and every measurement runs in a fresh child process
(`_workloads.py`), so runs share no heap, pool or import state. Rounds alternate the
clients (rotating their order each round) so drift of a shared machine falls on all of
them alike; throughput is reported as the median over rounds of each client's ratio to
raw aiohttp measured in the same round. See `benchmarks/README.md`.
"""
