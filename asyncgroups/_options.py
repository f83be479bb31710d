"""A call's options changed from a client's: what `GroupsClient.with_options` checks.

The rules are `_config`'s (the constructor's), applied to the options given; the rest
of a client's settings (its pool, limiter, key and URL) cannot change per call.
Performs no I/O.
"""

from __future__ import annotations

import enum
from typing import Any, Final, cast

import attrs

from ._config import Options, check_number, check_retry, connect_timeout_for

__all__ = ["KEEP", "Keep", "options_with"]


class Keep(enum.Enum):
    """The type of `KEEP`: an option of `with_options` not given, kept as the client's.

    Not None, which is a value: `retry=None` means never retry.
    """

    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


#: The default of each `GroupsClient.with_options(...)` argument: keep the client's.
KEEP: Final = Keep.KEEP


def options_with(options: Options, *, timeout: object = KEEP, retry: object = KEEP) -> Options:
    """`options` with the `timeout` and `retry` given, checked as `GroupsClient` checks them."""
    changes: dict[str, Any] = {}
    if timeout is not KEEP:
        check_number("timeout", timeout)
        seconds = float(cast(float, timeout))
        changes.update(timeout=seconds, connect_timeout=connect_timeout_for(seconds))
    if retry is not KEEP:
        check_retry(retry)
        changes["retry"] = retry
    return attrs.evolve(options, **changes)
