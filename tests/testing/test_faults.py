"""The fake's fault decision, pure: what `decide` does to one arriving request."""

from __future__ import annotations

import random

import pytest

from asyncgroups.testing import Faults
from asyncgroups.testing._faults import decide


@pytest.mark.parametrize(
    ("latency", "jitter", "low", "high"),
    [(0.04, 0.02, 0.04, 0.06), (0.0, 0.1, 0.0, 0.1), (0.25, 0.0, 0.25, 0.25)],
)
def test_decide_delays_each_request_by_latency_plus_at_most_the_jitter(
    latency: float, jitter: float, low: float, high: float
) -> None:
    faults = Faults(latency=latency, jitter=jitter)
    rng = random.Random(7)
    delays = [
        decision.delay if decision is not None else 0.0
        for decision in (
            decide("GET", "/group/all", faults=faults, rng=rng, injections=[], bucket=None, now=0)
            for _ in range(200)
        )
    ]
    assert all(low <= delay <= high for delay in delays)
    assert (max(delays) > min(delays)) == bool(jitter)
