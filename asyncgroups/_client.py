"""`GroupsClient`: the entry point to every operation, and the client's lifecycle.

The arguments are checked in `_config` (`ClientSettings`); the pipeline in `_http`
sends with them. This module only wires the two together and answers for the client.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_RETRY,
    RATE_LIMIT_DEFAULT,
    ClientSettings,
    Options,
    RateDefault,
)
from ._http import AIOHTTP_VERSION, Pipeline
from ._limiter import ClientLimiter, Limiter
from ._options import KEEP, Keep, options_with
from ._retry import RetryPolicy
from ._session import borrowed_session
from ._stats import ClientStats
from ._telemetry import new_telemetry
from ._version import __version__
from .errors import ClientStateError
from .groups import GroupsResource

if TYPE_CHECKING:
    import aiohttp
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["DEFAULT_BASE_URL", "GroupsClient"]


class GroupsClient:
    """An async client for the Groups API, pooled and limited, for one event loop.

    Use it as `async with GroupsClient() as client:`; operations live on
    `client.groups`. The API key comes from `api_key` or `$ASYNCGROUPS_API_KEY` and
    never appears in a message, repr or log line. Requests leave at most
    `rate_limit` a second (default: the service's documented 80), evenly spaced;
    `rate_limit=None` sends as fast as `max_connections` allows (a local fake, or a
    proxy with a limit of its own). A custom `limiter=` paces by its own rules, so
    passing `rate_limit=` beside it is a `ValidationError` rather than a rate ignored;
    the client keeps its own `max_connections` cap in front of it (a `ClientLimiter`
    passed in is its own cap). The client never closes a limiter it was given: one
    limiter may serve several clients. With opentelemetry-api installed (the `otel`
    extra) it records spans and the request duration through `tracer_provider` and
    `meter_provider` (None: the global ones, which do nothing until the application
    configures an SDK), as `_telemetry` says.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 32,
        rate_limit: float | RateDefault | None = RATE_LIMIT_DEFAULT,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
        user_agent: str | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        limiter: Limiter | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        settings = ClientSettings.from_arguments(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_connections=max_connections,
            rate_limit=rate_limit,
            retry=retry,
            allow_insecure_http=allow_insecure_http,
            ssl_context=ssl_context,
            proxy=proxy,
            user_agent=user_agent,
            max_body_size=max_body_size,
            version=f"asyncgroups/{__version__} aiohttp/{AIOHTTP_VERSION}",
            custom_limiter=limiter is not None,
            borrowed=borrowed_session(session),
        )
        pipeline = Pipeline(
            settings,
            limiter=limiter,
            stats=ClientStats(),
            session=session,
            trace_configs=trace_configs,
            telemetry=new_telemetry(tracer_provider, meter_provider, base_url=settings.base_url),
        )
        self._wire(pipeline, pipeline.options, view=False)

    def _wire(self, pipeline: Pipeline, options: Options, *, view: bool) -> None:
        """Send through `pipeline` with `options`: the client's own, or a view's."""
        self.max_connections = pipeline.max_connections
        #: Seconds one attempt may take on the wire.
        self.timeout = options.timeout
        #: What this client has sent so far (the pipeline keeps the count).
        self.stats = pipeline.stats
        self._pipeline = pipeline
        self._options = options
        self._view = view
        #: The operations on groups.
        self.groups = GroupsResource(pipeline, options)

    def with_options(
        self,
        *,
        timeout: float | Keep = KEEP,
        retry: RetryPolicy | Keep | None = KEEP,
    ) -> GroupsClient:
        """A view of this client whose calls are sent with another `timeout` or `retry`.

        `client.with_options(timeout=2, retry=None).groups.get(key)`: one call with a
        short timeout and no retries. The view shares everything else with this client:
        its connection pool, in-flight cap, rate limit and 429 cool-down (never longer
        than this client's own `max_retry_after`), and `stats`.
        Options not given are this client's; invalid ones raise `ValidationError` here,
        by the rules of the constructor. Closing this client closes its views (a call
        through one then raises `ClientStateError`); closing a view leaves the client,
        which owns the pool, open, so `async with view:` needs the client opened first.
        Making a view is cheap: make one where you need it.
        """
        options = options_with(self._options, timeout=timeout, retry=retry)
        view = GroupsClient.__new__(GroupsClient)
        view._wire(self._pipeline, options, view=True)
        return view

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._pipeline.base_url

    @property
    def rate_limit(self) -> float | None:
        """Requests per second this client sends at most; None when it sets no rate.

        That is `rate_limit` (80.0 unless given), or the rate of a `ClientLimiter`
        passed as `limiter=`; None for `rate_limit=None` and for a custom limiter of
        another kind (it paces by its own rules).
        """
        limiter = self._pipeline.given_limiter
        return limiter.rate if isinstance(limiter, ClientLimiter) else None

    @property
    def retry(self) -> RetryPolicy | None:
        """The retry policy (None: never retry)."""
        return self._options.retry

    @property
    def limiter(self) -> Limiter:
        """The limiter this client paces by: the `limiter=` given, else its own `ClientLimiter`.

        A limiter that is not a `ClientLimiter` (a shared `RedisLimiter`, say) sets the
        rate and the cool-down; the client keeps its own cap of `max_connections`
        requests in flight in front of it.
        """
        return self._pipeline.given_limiter

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._pipeline.closed

    async def __aenter__(self) -> Self:
        if self._view and not self._pipeline.opened:
            # Leaving the view would leave the pool it opened to nobody to close.
            raise ClientStateError(
                "open the client first (async with client:), then use views of it: a view "
                "shares the client's connection pool, which only closing the client closes"
            )
        self._pipeline.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool if this client made it; calling it again does nothing.

        On a view (`with_options`) it does nothing: the pool is the client's.
        """
        if not self._view:
            await self._pipeline.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        view = f", view: timeout={self.timeout:g}, retry={self.retry!r}" if self._view else ""
        return (
            f"GroupsClient(base_url={self.base_url!r}, max_connections={self.max_connections}, "
            f"rate_limit={self.rate_limit!r}, {state}{view})"
        )
