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

`add_exception_handlers(app)` turns the library's errors into HTTP answers for the app's
own callers (`answer_for` says which). One client per app means one connection pool,
one in-flight cap and one rate limit shared by all requests, which is what the API's
limits are about. The client is opened
inside the server's event loop at startup (a bad key or URL fails the startup, not the
first request) and closed at shutdown. Starlette is needed only by this module (the
`starlette` extra); nothing else in asyncgroups imports it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, NamedTuple

from .. import (
    APIError,
    AsyncGroupsError,
    GroupsClient,
    LimiterUnavailableError,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    SubscriptionLockedError,
    TransportError,
    ValidationError,
)

try:
    # Needed at run time: FastAPI reads the dependency's annotation to pass the request.
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        'asyncgroups.contrib.starlette needs Starlette: pip install "asyncgroups[starlette]" '
        "(FastAPI brings it too)"
    ) from err

__all__ = [
    "STATE_KEY",
    "Answer",
    "Lifespan",
    "add_exception_handlers",
    "answer_for",
    "groups_client",
    "groups_lifespan",
]

logger = logging.getLogger("asyncgroups.contrib.starlette")

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
    `app.state`, for servers that do not support lifespan state. A client already made
    is refused at once: it must be opened on the server's loop, at each startup.
    """
    if not callable(client):
        raise TypeError(
            "groups_lifespan takes what makes the client, such as "
            f"lambda: GroupsClient(...), not {type(client).__name__}: the client is made "
            "and opened at each startup, on the server's event loop"
        )

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
            "(asyncgroups.contrib.starlette), and run it on a server that runs lifespans; "
            "in a test, use `with TestClient(app) as client:`, which runs them"
        )
    return client


class Answer(NamedTuple):
    """The HTTP answer an app gives its caller for an asyncgroups error."""

    status: int
    #: The `detail` of the JSON body: what happened, in words the caller can act on.
    detail: str
    headers: Mapping[str, str] | None = None


#: Seconds a caller is told to wait when the error does not say how long.
_DEFAULT_RETRY_AFTER: Final = 1
#: The longest wait a caller is told, in seconds: a longer one (a server's Retry-After
#: of 10**20 s, or a date in the year 9999) is no plan to act on; told an hour, the
#: caller asks again then, and hears what is left of the wait.
_LONGEST_RETRY_AFTER: Final = 3600


def answer_for(error: AsyncGroupsError) -> Answer:
    """The answer for `error`: its status, detail and headers. Pure, no I/O.

    Bad input is 422 with the error's own words (it names the field); a missing group
    404; a locked subscription 409; a rate limit, upstream or in our own shared limiter,
    503 with `Retry-After` in whole seconds, rounded up, at most an hour; a timeout
    504; every other failure of the API 502. Nothing the API said is repeated to the
    caller: an upstream message could echo what the app sent it, the API key included.
    """
    if isinstance(error, ValidationError):
        return Answer(422, str(error))
    if isinstance(error, SubscriptionLockedError):
        return Answer(409, str(error))
    if isinstance(error, NotFoundError):
        return Answer(404, "no group with this key")
    if isinstance(error, RateLimitError | LimiterUnavailableError):
        return _unavailable(error)
    if isinstance(error, RequestTimeout):
        return Answer(504, "the groups API did not answer in time; try again later")
    if isinstance(error, APIError):
        return Answer(502, f"the groups API failed (it answered {error.status})")
    if isinstance(error, TransportError):
        return Answer(502, "the groups API could not be reached")
    return Answer(502, "the groups API failed")


def _unavailable(error: RateLimitError | LimiterUnavailableError) -> Answer:
    """503 with `Retry-After`: the API's own wait, or our limiter's store being down."""
    if isinstance(error, LimiterUnavailableError):
        seconds, why = _DEFAULT_RETRY_AFTER, "this service's rate limiter is unavailable"
    else:
        seconds = _whole_seconds(error.retry_after)
        why = "the groups API is rate limiting this service"
    return Answer(503, f"{why}; try again in {seconds}s", {"Retry-After": str(seconds)})


def _whole_seconds(wait: float | None) -> int:
    """`wait` as `Retry-After` says it: whole seconds, rounded up, from 0 to an hour."""
    if wait is None or math.isnan(wait):
        return _DEFAULT_RETRY_AFTER
    return math.ceil(min(max(wait, 0.0), _LONGEST_RETRY_AFTER))


async def _answer(request: Request, error: Exception) -> JSONResponse:
    """The exception handler: the answer `answer_for` gives, logged when it is ours to fix."""
    assert isinstance(error, AsyncGroupsError)  # registered for nothing else
    answer = answer_for(error)
    if answer.status >= 500:
        # The error was masked by the client that raised it: no secret reaches the log.
        logger.warning(
            "%s %s answered %d: %s", request.method, request.url.path, answer.status, error
        )
    return JSONResponse(
        {"detail": answer.detail}, status_code=answer.status, headers=answer.headers
    )


def add_exception_handlers(app: Any) -> None:
    """Answer every asyncgroups error an endpoint of `app` raises as `answer_for` says.

    `app` is a Starlette or FastAPI app; the body is `{"detail": ...}`, as FastAPI's
    own errors are. Register your own handler for a subclass afterwards to change one
    answer: Starlette picks the most specific one.
    """
    app.add_exception_handler(AsyncGroupsError, _answer)
