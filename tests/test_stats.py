"""`ClientStats`: its arithmetic and the one line that says what a run sent, as tables."""

from __future__ import annotations

import pytest

from asyncgroups import ClientStats


@pytest.mark.parametrize(
    ("stats", "text"),
    [
        (ClientStats(), "no requests"),
        (ClientStats(requests=1, pages=1), "1 request (1 page)"),
        (
            ClientStats(requests=2_003, reads=2_000, pages=3),
            "2,003 requests (2,000 reads, 3 pages)",
        ),
        (ClientStats(requests=2, reads=1, writes=1), "2 requests (1 read, 1 write)"),
        (
            ClientStats(requests=14, retries=2, reads=1, pages=3, writes=10),
            "14 requests (1 read, 3 pages, 10 writes; 2 retries)",
        ),
        (ClientStats(requests=2, retries=1, writes=2), "2 requests (2 writes; 1 retry)"),
    ],
)
def test_client_stats_summary_counts_requests_by_kind(stats: ClientStats, text: str) -> None:
    assert stats.summary() == text


def test_client_stats_subtract_and_add_field_by_field() -> None:
    before = ClientStats(requests=3, retries=1, updates_sent=1, cool_downs=0, reads=2, writes=1)
    after = ClientStats(
        requests=10, retries=2, updates_sent=4, cool_downs=1, reads=3, pages=2, writes=5
    )
    spent = after - before
    assert spent == ClientStats(
        requests=7, retries=1, updates_sent=3, cool_downs=1, reads=1, pages=2, writes=4
    )
    assert spent + before == after
    assert before == ClientStats(
        requests=3, retries=1, updates_sent=1, cool_downs=0, reads=2, writes=1
    )  # neither side changes
