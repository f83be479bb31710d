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

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from asyncgroups import (
    DEFAULT_RATE_LIMIT,
    AsyncGroupsError,
    GroupsClient,
    LimiterUnavailableError,
    NotFoundError,
    RateLimitError,
    ValidationError,
)
from asyncgroups.contrib.jsonable import to_jsonable
from asyncgroups.contrib.redis import RedisLimiter
from asyncgroups.contrib.starlette import groups_client, groups_lifespan

#: The most keys one lookup may ask for: a request must not fan out without bound.
MAX_LOOKUP = 500

Groups = Annotated[GroupsClient, Depends(groups_client)]


class Lookup(BaseModel):
    """The body of `POST /groups:lookup`."""

    prokeys: list[str] = Field(min_length=1, max_length=MAX_LOOKUP)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    """Turn an asyncgroups error into the HTTP answer this app's callers should see."""
    if isinstance(error, ValidationError):
        return JSONResponse({"detail": str(error)}, status_code=422)
    if isinstance(error, NotFoundError):
        return JSONResponse({"detail": "no such group"}, status_code=404)
    if isinstance(error, LimiterUnavailableError):
        # Our own Redis is down, not the API: say so, and let the caller come back.
        return JSONResponse(
            {"detail": "rate limiter unavailable"}, status_code=503, headers={"Retry-After": "1"}
        )
    if isinstance(error, RateLimitError):
        # The API still answered 429 (a process not on this shared limit, say).
        headers = {"Retry-After": f"{error.retry_after:.0f}"} if error.retry_after else None
        return JSONResponse({"detail": "rate limited upstream"}, status_code=503, headers=headers)
    return JSONResponse({"detail": f"upstream error: {error}"}, status_code=502)


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
    app.add_exception_handler(AsyncGroupsError, _api_error)

    @app.get("/groups/{prokey}")
    async def read_group(prokey: str, client: Groups) -> dict[str, Any]:
        """One group, as asyncgroups shows it."""
        return to_jsonable(await client.groups.get(prokey))

    @app.post("/groups:lookup")
    async def lookup_groups(body: Lookup, client: Groups) -> dict[str, Any]:
        """Many groups at once; the shared limit paces them with every other worker's."""
        result = await client.groups.get_many(body.prokeys)
        for error in result.failed.values():
            if isinstance(error, LimiterUnavailableError):
                raise error  # nothing was sent: a 503 for the whole lookup, not 500 failures
        return {
            "groups": [to_jsonable(group) for group in result.ok.values()],
            "missing": result.missing,
            "failed": {key: str(error) for key, error in result.failed.items()},
        }

    return app


app = create_app()
