"""A FastAPI app that serves groups through one shared asyncgroups client.

Run it against a fake of the API (no account needed):

    asyncgroups fake-server --groups 5 --port 8080 &
    export ASYNCGROUPS_BASE_URL=http://127.0.0.1:8080/v1 ASYNCGROUPS_API_KEY=test-key
    uvicorn examples.fastapi_app:app --port 8000

    curl localhost:8000/groups/<prokey>
    curl -X POST localhost:8000/groups:lookup -H 'content-type: application/json' \\
         -d '{"prokeys": ["<prokey>", "<prokey>"]}'

Endpoints return asyncgroups models as they are (`-> Group`): FastAPI writes them as
JSON and documents them in `/openapi.json`. Errors become HTTP answers through
`add_exception_handlers`: a malformed key is 422, a missing group 404, a refused key or
an API outage 502, a rate limit 503 with Retry-After, a timeout 504.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from asyncgroups import Group, GroupsClient
from asyncgroups.contrib.starlette import (
    add_exception_handlers,
    answer_for,
    groups_client,
    groups_lifespan,
)

#: The most keys one lookup may ask for: a request must not fan out without bound.
MAX_LOOKUP = 500
#: Reads in flight for one lookup; the client's own cap bounds all requests together.
LOOKUP_CONCURRENCY = 8

Groups = Annotated[GroupsClient, Depends(groups_client)]


class Lookup(BaseModel):
    """The body of `POST /groups:lookup`."""

    prokeys: list[str] = Field(min_length=1, max_length=MAX_LOOKUP)


class Found(BaseModel):
    """The answer of `POST /groups:lookup`: every distinct key in one of the three."""

    groups: list[Group]
    missing: list[str]
    failed: dict[str, str]


def create_app(client: Callable[[], GroupsClient] = GroupsClient) -> FastAPI:
    """The app; `client` makes its one GroupsClient at startup (default: from the env)."""
    app = FastAPI(title="groups", lifespan=groups_lifespan(client))
    add_exception_handlers(app)

    @app.get("/groups/{prokey}")
    async def read_group(prokey: str, client: Groups) -> Group:
        """One group (`prokey`, fields, `event_prokeys`, `extra`)."""
        return await client.groups.get(prokey)

    @app.post("/groups:lookup")
    async def lookup_groups(body: Lookup, client: Groups) -> Found:
        """Many groups at once: every distinct key lands in `groups`, `missing` or `failed`."""
        result = await client.groups.get_many(body.prokeys, concurrency=LOOKUP_CONCURRENCY)
        failed = {key: answer_for(error).detail for key, error in result.failed.items()}
        return Found(groups=list(result.ok.values()), missing=result.missing, failed=failed)

    return app


app = create_app()
