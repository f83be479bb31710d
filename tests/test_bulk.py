"""Bulk calls over small misbehaving servers: one key's bad reply never sinks the batch.

Each test runs a tiny aiohttp.web app on 127.0.0.1 (the fake server cannot misbehave in
these ways); clients use no rate limit and no backoff, so nothing sleeps for long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from asyncgroups import (
    GroupsClient,
    NotFoundError,
    RetryPolicy,
    ServerError,
    UnexpectedResponseError,
)

if TYPE_CHECKING:
    from conftest import Serve

API_KEY = "sk_live_0123456789abcdef"
NO_WAIT = RetryPolicy(backoff_base=0, jitter=False)
GROUP = [{"name": "Team", "status": "published", "events": []}]
#: A JSON array nested 100,000 deep: `json.loads` raises RecursionError on it.
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _keys(count: int) -> list[str]:
    return [f"{i:08x}-0000-4000-8000-000000000000" for i in range(count)]


def _app(handler: Handler) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def _client(base_url: str, **kwargs: Any) -> GroupsClient:
    kwargs.setdefault("retry", NO_WAIT)
    kwargs.setdefault("rate_limit", None)
    return GroupsClient(API_KEY, base_url=base_url + "/v1", **kwargs)


def _one_deep_reply(bad_key: str, status: int) -> Handler:
    """Answer every key with a group, except `bad_key`: JSON nested 100,000 deep."""

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith(bad_key):
            return web.Response(status=status, body=DEEP_JSON, content_type="application/json")
        if request.method == "DELETE":
            return web.json_response({"success": "Deleted"})
        return web.json_response(GROUP)

    return handler


# One hostile reply among good ones ---------------------------------------------------

_DEEP_CASES = [(200, UnexpectedResponseError), (404, NotFoundError), (500, ServerError)]


@pytest.mark.parametrize(("status", "expected"), _DEEP_CASES)
async def test_get_many_keeps_every_good_result_when_one_reply_is_nested_too_deep(
    serve: Serve, status: int, expected: type[Exception]
) -> None:
    keys = _keys(200)
    base = await serve(_app(_one_deep_reply(keys[137], status)))
    async with _client(base) as client:
        result = await client.groups.get_many(keys)
    assert len(result.ok) == 199
    assert keys[137] not in result.ok
    if expected is NotFoundError:
        assert result.missing == [keys[137]]
    else:
        assert isinstance(result.failed[keys[137]], expected)


@pytest.mark.parametrize(("status", "expected"), _DEEP_CASES)
async def test_iter_many_yields_an_outcome_for_every_key_when_one_reply_is_nested_too_deep(
    serve: Serve, status: int, expected: type[Exception]
) -> None:
    keys = _keys(200)
    base = await serve(_app(_one_deep_reply(keys[3], status)))
    async with _client(base) as client:
        outcomes = [outcome async for outcome in client.groups.iter_many(keys)]
    assert sorted(o.prokey for o in outcomes) == sorted(keys)
    bad = [o for o in outcomes if not o.ok]
    assert [o.prokey for o in bad] == [keys[3]]
    assert isinstance(bad[0].error, expected)


@pytest.mark.parametrize("status", [404, 500])
async def test_delete_many_keeps_every_good_result_when_one_reply_is_nested_too_deep(
    serve: Serve, status: int
) -> None:
    keys = _keys(50)
    base = await serve(_app(_one_deep_reply(keys[0], status)))
    async with _client(base) as client:
        result = await client.groups.delete_many(keys)
    assert len(result.ok) == 49
    assert len(result) == 50
