"""The apply's summary line: what was done, and the time and requests it cost."""

from __future__ import annotations

import pytest

from asyncgroups import ClientStats
from asyncgroups.sync import Action, ItemOutcome, ItemResult, SyncReport

REPORT = SyncReport(
    items=(ItemResult("a", Action.UNCHANGED, ItemOutcome.DONE),),
    elapsed=0.04,
    sent=ClientStats(requests=2, pages=2),
)


@pytest.mark.parametrize(
    ("elapsed", "sent", "tail"),
    [
        (None, None, "in 0.0 s: 2 requests (2 pages)"),  # the apply's own
        # the whole run's, as the command passes them: the plan read for 26 s
        (
            26.34,
            ClientStats(requests=2_003, reads=2_000, pages=3),
            "in 26.3 s: 2,003 requests (2,000 reads, 3 pages)",
        ),
        (0.0, ClientStats(), "in 0.0 s: no requests"),
    ],
)
def test_sync_report_summary_ends_with_the_time_and_the_requests(
    elapsed: float | None, sent: ClientStats | None, tail: str
) -> None:
    summary = REPORT.summary(elapsed=elapsed, sent=sent)
    assert summary.startswith("sync: 0 created, 0 updated, 0 deleted, 1 unchanged")
    assert summary.endswith(f"0 update(s) sent, estimated 0 event credits, {tail}")
