"""A FastAPI app run by several worker processes that share one rate limit through Redis.

Each uvicorn (or gunicorn) worker is a process of its own with its own GroupsClient; a
client limited to 80 requests/s alone would let four workers send 320/s. Here every
worker's client takes its rate and its 429 cool-downs from one `RedisLimiter`, so the
workers together keep to the account's 80/s. Run it against a fake of the API:

    redis-server --port 6379 --save '' &
    asyncgroups fake-server --groups 5 --port 8080 &
    export ASYNCGROUPS_BASE_URL=http://127.0.0.1:8080/v1 ASYNCGROUPS_API_KEY=test-key
    export ASYNCGROUPS_SHARED_LIMIT=redis://127.0.0.1:6379/0
    uvicorn examples.fastapi_shared_limit:app --port 8000 --workers 4

    curl -X POST localhost:8000/groups:lookup -H 'content-type: application/json' \\
         -d '{"prokeys": ["<prokey>", "<prokey>"]}'

`$ASYNCGROUPS_RATE_LIMIT` sets the shared rate (default 80). When Redis cannot be
reached, a request that needs the API answers 503 (nothing is sent to the API) until
Redis is back; pass `fallback_rate=` to `RedisLimiter` to keep serving at a local rate
instead (80 / workers, say). Needs the `fastapi` and `redis` extras.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from asyncgroups import DEFAULT_RATE_LIMIT, Group, GroupsClient, LimiterUnavailableError
from asyncgroups.contrib.redis import RedisLimiter
from asyncgroups.contrib.starlette import (
    add_exception_handlers,
    answer_for,
    groups_client,
    groups_lifespan,
)

#: The most keys one lookup may ask for: a request must not fan out without bound.
MAX_LOOKUP = 500

Groups = Annotated[GroupsClient, Depends(groups_client)]


class Lookup(BaseModel):
    """The body of `POST /groups:lookup`."""

    prokeys: list[str] = Field(min_length=1, max_length=MAX_LOOKUP)


class Found(BaseModel):
    """The answer of `POST /groups:lookup`: every distinct key in one of the three."""

    groups: list[Group]
    missing: list[str]
    failed: dict[str, str]


def create_app(
    redis_url: str | None = None, *, rate: float | None = None, **client_options: Any
) -> FastAPI:
    """The app: each worker opens a `RedisLimiter` and a client in its own event loop.

    `redis_url` defaults to `$ASYNCGROUPS_SHARED_LIMIT`, `rate` to
    `$ASYNCGROUPS_RATE_LIMIT` or 80; `client_options` go to `GroupsClient`.
    """
    url = redis_url or os.environ.get("ASYNCGROUPS_SHARED_LIMIT", "redis://127.0.0.1:6379/0")
    shared_rate = rate or float(os.environ.get("ASYNCGROUPS_RATE_LIMIT") or DEFAULT_RATE_LIMIT)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # The limiter outlives the client: it is opened first and closed last.
        async with RedisLimiter(url, rate=shared_rate) as limiter:
            clients = groups_lifespan(lambda: GroupsClient(limiter=limiter, **client_options))
            async with clients(app) as state:
                yield state

    app = FastAPI(title="groups, one shared limit", lifespan=lifespan)
    # Our own Redis down is a 503 with Retry-After, as the API's own 429 is.
    add_exception_handlers(app)

    @app.get("/groups/{prokey}")
    async def read_group(prokey: str, client: Groups) -> Group:
        """One group."""
        return await client.groups.get(prokey)

    @app.post("/groups:lookup")
    async def lookup_groups(body: Lookup, client: Groups) -> Found:
        """Many groups at once; the shared limit paces them with every other worker's."""
        result = await client.groups.get_many(body.prokeys)
        for error in result.failed.values():
            if isinstance(error, LimiterUnavailableError):
                raise error  # nothing was sent: a 503 for the whole lookup, not 500 failures
        failed = {key: answer_for(error).detail for key, error in result.failed.items()}
        return Found(groups=list(result.ok.values()), missing=result.missing, failed=failed)

    return app


app = create_app()
