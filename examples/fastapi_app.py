"""A FastAPI app that serves groups through one shared asyncgroups client.

Run it against a fake of the API (no account needed):

    asyncgroups fake-server --groups 5 --port 8080 &
    export ASYNCGROUPS_BASE_URL=http://127.0.0.1:8080/v1 ASYNCGROUPS_API_KEY=test-key
    uvicorn examples.fastapi_app:app --port 8000

    curl localhost:8000/groups/<prokey>
    curl -X POST localhost:8000/groups:lookup -H 'content-type: application/json' \\
         -d '{"prokeys": ["<prokey>", "<prokey>"]}'

Errors of the API become HTTP answers in one handler: a malformed key is 422, a missing
group 404, a refused key or an API outage 502, a rate limit 503 with Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from asyncgroups import (
    AsyncGroupsError,
    GroupsClient,
    NotFoundError,
    RateLimitError,
    ValidationError,
)
from asyncgroups.contrib.jsonable import to_jsonable
from asyncgroups.contrib.starlette import groups_client, groups_lifespan

#: The most keys one lookup may ask for: a request must not fan out without bound.
MAX_LOOKUP = 500
#: Reads in flight for one lookup; the client's own cap bounds all requests together.
LOOKUP_CONCURRENCY = 8

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
    if isinstance(error, RateLimitError):
        headers = {"Retry-After": f"{error.retry_after:.0f}"} if error.retry_after else None
        return JSONResponse({"detail": "rate limited upstream"}, status_code=503, headers=headers)
    return JSONResponse({"detail": f"upstream error: {error}"}, status_code=502)


def create_app(client: Callable[[], GroupsClient] = GroupsClient) -> FastAPI:
    """The app; `client` makes its one GroupsClient at startup (default: from the env)."""
    app = FastAPI(title="groups", lifespan=groups_lifespan(client))
    app.add_exception_handler(AsyncGroupsError, _api_error)

    @app.get("/groups/{prokey}")
    async def read_group(prokey: str, client: Groups) -> dict[str, Any]:
        """One group, as asyncgroups shows it (`prokey`, fields, `event_prokeys`, `extra`)."""
        return to_jsonable(await client.groups.get(prokey))

    @app.post("/groups:lookup")
    async def lookup_groups(body: Lookup, client: Groups) -> dict[str, Any]:
        """Many groups at once: every distinct key lands in `groups`, `missing` or `failed`."""
        result = await client.groups.get_many(body.prokeys, concurrency=LOOKUP_CONCURRENCY)
        return {
            "groups": [to_jsonable(group) for group in result.ok.values()],
            "missing": result.missing,
            "failed": {key: str(error) for key, error in result.failed.items()},
        }

    return app


app = create_app()
