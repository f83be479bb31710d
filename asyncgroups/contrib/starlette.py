"""Starlette and FastAPI: one `GroupsClient` for the app's life, handed to every endpoint.

```python
from typing import Annotated

from fastapi import Depends, FastAPI

from asyncgroups import GroupsClient
from asyncgroups.contrib.starlette import groups_client, groups_lifespan

app = FastAPI(lifespan=groups_lifespan())          # or groups_lifespan(lifespan=yours)
Groups = Annotated[GroupsClient, Depends(groups_client)]

@app.get("/groups/{prokey}")
async def read(prokey: str, client: Groups) -> dict: ...
```

One client per app means one connection pool, one in-flight cap and one rate limit
shared by all requests, which is what the API's limits are about. The client is opened
inside the server's event loop at startup (a bad key or URL fails the startup, not the
first request) and closed at shutdown. Starlette is needed only by this module (the
`starlette` extra); nothing else in asyncgroups imports it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from .. import GroupsClient

try:
    # Needed at run time: FastAPI reads the dependency's annotation to pass the request.
    from starlette.requests import HTTPConnection
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        'asyncgroups.contrib.starlette needs Starlette: pip install "asyncgroups[starlette]" '
        "(FastAPI brings it too)"
    ) from err

__all__ = ["STATE_KEY", "Lifespan", "groups_client", "groups_lifespan"]

#: The name the client is stored under, in the lifespan state and on `app.state`.
STATE_KEY: Final = "asyncgroups_client"

#: A Starlette lifespan: called with the app, an async context manager that may yield state.
Lifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]


def groups_lifespan(
    client: Callable[[], GroupsClient] = GroupsClient,
    *,
    lifespan: Lifespan | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """A lifespan that opens one client at startup and closes it at shutdown.

    `client` makes it (default `GroupsClient()`, configured from `$ASYNCGROUPS_API_KEY`
    and `$ASYNCGROUPS_BASE_URL`; pass e.g. `lambda: GroupsClient(rate_limit=10)`).
    `lifespan`, the app's own, runs inside: the client is open during its startup and
    still open during its shutdown, and the state it yields is kept alongside ours.
    The client is put in the lifespan state (what `request.state` reads) and on
    `app.state`, for servers that do not support lifespan state.
    """

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[dict[str, Any]]:
        async with client() as opened:
            app_state = getattr(app, "state", None)
            if app_state is not None:
                setattr(app_state, STATE_KEY, opened)
            try:
                if lifespan is None:
                    yield {STATE_KEY: opened}
                else:
                    async with lifespan(app) as state:
                        yield {**(state or {}), STATE_KEY: opened}
            finally:
                if app_state is not None and getattr(app_state, STATE_KEY, None) is opened:
                    delattr(app_state, STATE_KEY)

    return run


def groups_client(connection: HTTPConnection) -> GroupsClient:
    """The app's client, for `Depends(groups_client)` or a direct call with the request.

    Raises RuntimeError, saying what to do, when the app was not given
    `groups_lifespan` (or its server did not run the lifespan).
    """
    client = getattr(connection.state, STATE_KEY, None)
    if client is None:
        app = connection.scope.get("app")
        client = getattr(getattr(app, "state", None), STATE_KEY, None)
    if not isinstance(client, GroupsClient):
        raise RuntimeError(
            "no GroupsClient for this app: create it with lifespan=groups_lifespan() "
            "(asyncgroups.contrib.starlette), and run it on a server that runs lifespans"
        )
    return client
