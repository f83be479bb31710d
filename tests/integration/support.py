"""What the integration tests share: a client for a local fake, without pacing."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from asyncgroups import GroupsClient, RetryPolicy
from asyncgroups.testing import FakeGroupsServer

__all__ = ["NO_WAIT", "local_client", "steady_clock"]

#: Three attempts, no backoff: retries happen, and the suite does not sleep for them.
NO_WAIT = RetryPolicy(max_attempts=3, backoff_base=0.0, backoff_max=0.0)


def local_client(server: FakeGroupsServer, **kwargs: object) -> GroupsClient:
    """A client for `server`: `NO_WAIT` retries and no rate limit unless given."""
    kwargs.setdefault("retry", NO_WAIT)
    kwargs.setdefault("rate_limit", None)  # the local fake: no need to pace
    return GroupsClient(server.api_key, base_url=server.url, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def steady_clock() -> Iterator[None]:
    """No garbage collection meanwhile: a collection's pause would stamp the requests
    that arrived during it all at its end, and the fake's times would bunch up where
    the client's did not. For tests that read the fake's `received_at`."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
