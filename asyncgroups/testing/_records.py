"""What the fake server records of each request it receives, for tests to assert on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["RecordedRequest"]


@attrs.frozen
class RecordedRequest:
    """One request the fake server received, as it arrived.

    `path` is the full path (`/v1/group/<key>`); `body` is the parsed JSON body, or None
    when there is none or it is not JSON (`raw_body` has the bytes); `fault` names the
    fault applied to it ("503", "429", "reset", "lost_reply", "malformed", "delay") or
    is None; `received_at` is when it arrived (`time.monotonic()`).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    raw_body: bytes
    fault: str | None
    received_at: float = 0.0
