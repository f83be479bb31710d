"""Benchmarks: asyncgroups' pool and limiter against what users would write instead.

Run from the repository root, after `pip install -e ".[bench]"`:

    python -m benchmarks                 # the full suite (15-20 minutes), writes
                                         # benchmarks/results/latest.json and chart.png
    python -m benchmarks --quick         # a smoke run: a few hundred requests, 1 round
    python -m benchmarks --scenario tls --rounds 7 --mode warm

Every scenario talks to a static aiohttp.web server (`_server.py`) in a separate
process on 127.0.0.1. Each client is measured in two modes (`_workloads.py`): fresh, a
new child process per round, timed from opening the client to closing it; and warm,
one child per client that runs an untimed warm-up round and then one timed round (the
requests alone) whenever the runner asks. Rounds alternate the clients (rotating their
order each round, the close race first and back to back) so drift of a shared machine
falls on all of them alike; throughput is reported as the median over rounds of each
client's ratio to the reference, the worker-pool aiohttp loop, measured in the same
round and mode. See `benchmarks/README.md`.
"""
