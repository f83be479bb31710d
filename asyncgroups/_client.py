"""`GroupsClient`: configuration, lifecycle, and the entry point to every operation."""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self
from urllib.parse import SplitResult, urlsplit

from ._http import AIOHTTP_VERSION, Pipeline, check_proxy, is_loopback, proxy_from_env
from ._limiter import DEFAULT_RATE_LIMIT, ClientLimiter, Limiter
from ._retry import RetryPolicy
from ._stats import ClientStats
from ._version import __version__
from .errors import ValidationError
from .groups import GroupsResource

if TYPE_CHECKING:
    import aiohttp

__all__ = ["DEFAULT_BASE_URL", "GroupsClient"]

#: The production API.
DEFAULT_BASE_URL: Final = "https://api.add-to-calendar-pro.com/v1"
#: Replies larger than this many bytes are an error, not a memory blow-up.
DEFAULT_MAX_BODY_SIZE: Final = 8 * 1024 * 1024

API_KEY_ENV: Final = "ASYNCGROUPS_API_KEY"
BASE_URL_ENV: Final = "ASYNCGROUPS_BASE_URL"

_DEFAULT_RETRY: Final = RetryPolicy()


class GroupsClient:
    """An async client for the Groups API, pooled and limited, for one event loop.

    Use it as `async with GroupsClient() as client:`; operations live on
    `client.groups`. The API key comes from `api_key` or `$ASYNCGROUPS_API_KEY` and
    never appears in a message, repr or log line. Requests leave at most
    `rate_limit` a second (default: the service's documented 80), evenly spaced;
    `rate_limit=None` sends as fast as `max_connections` allows (a local fake, or a
    proxy with a limit of its own).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 32,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
        user_agent: str | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        limiter: Limiter | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        key = _api_key(api_key)
        self._base_url = _base_url(base_url, allow_insecure_http=allow_insecure_http)
        _check_number("timeout", timeout, positive=True)
        if not isinstance(max_connections, int) or isinstance(max_connections, bool):
            raise ValidationError("max_connections must be an integer", field="max_connections")
        if max_connections < 1:
            raise ValidationError("max_connections must be at least 1", field="max_connections")
        if rate_limit is not None:
            _check_number("rate_limit", rate_limit, positive=True)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(
                "retry must be a RetryPolicy, or None to never retry", field="retry"
            )
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ValidationError("ssl_context must be an ssl.SSLContext", field="ssl_context")
        if proxy is not None:
            check_proxy(proxy)
        if not isinstance(max_body_size, int) or max_body_size < 1:
            raise ValidationError("max_body_size must be a positive integer", field="max_body_size")
        agent = f"asyncgroups/{__version__} aiohttp/{AIOHTTP_VERSION}"
        if user_agent:
            _check_header_value("user_agent", user_agent)
            agent = f"{agent} {user_agent}"
        self.max_connections = max_connections
        self.rate_limit = rate_limit
        self.timeout = float(timeout)
        self.stats = ClientStats()
        if session is not None:
            _check_borrowed(session)
        if limiter is None:
            # A borrowed pool smaller than the cap would make requests queue inside
            # aiohttp, where the wait would count against their timeout.
            pool = session.connector.limit if session is not None and session.connector else 0
            limiter = ClientLimiter(min(max_connections, pool or max_connections), rate_limit)
        self._limiter = limiter
        self._pipeline = Pipeline(
            base_url=self._base_url,
            api_key=key,
            user_agent=agent,
            timeout=self.timeout,
            max_connections=max_connections,
            retry=retry,
            limiter=self._limiter,
            stats=self.stats,
            session=session,
            ssl_context=ssl_context,
            proxy=proxy if proxy is not None else proxy_from_env(self._base_url),
            trace_configs=trace_configs,
            max_body_size=max_body_size,
        )
        #: The operations on groups.
        self.groups = GroupsResource(self._pipeline)

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._base_url

    @property
    def retry(self) -> RetryPolicy | None:
        """The retry policy (None: never retry)."""
        return self._pipeline.retry

    @property
    def limiter(self) -> Limiter:
        """The limiter every request of this client passes through."""
        return self._limiter

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._pipeline.closed

    async def __aenter__(self) -> Self:
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
        """Close the connection pool if this client made it; calling it again does nothing."""
        await self._pipeline.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"GroupsClient(base_url={self._base_url!r}, max_connections={self.max_connections}, "
            f"rate_limit={self.rate_limit!r}, {state})"
        )


def _api_key(api_key: str | None) -> str:
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if key is None:
        raise ValidationError(
            f"no API key: pass api_key=... or set ${API_KEY_ENV}", field="api_key"
        )
    if not isinstance(key, str):
        raise ValidationError(
            f"api_key must be a string, not {type(key).__name__}", field="api_key"
        )
    key = key.strip()
    if not key:
        raise ValidationError("the API key is empty", field="api_key")
    if not all(" " <= ch <= "~" or ch == "\t" for ch in key):
        raise ValidationError(
            "the API key contains a control or non-ASCII character and cannot be sent as "
            "a header (was it pasted with a stray character?)",
            field="api_key",
        )
    return key


def _base_url(base_url: str | None, *, allow_insecure_http: bool) -> str:
    url = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    if not isinstance(url, str):
        raise ValidationError("base_url must be a string", field="base_url")
    url = url.strip()
    parts = _split(url)
    scheme = parts.scheme.lower() if parts else ""
    if parts is None or scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"base_url must be an http(s) URL with a host, like {DEFAULT_BASE_URL}",
            field="base_url",
        )
    if parts.username or parts.password:
        raise ValidationError("base_url must not carry credentials", field="base_url")
    if parts.query or parts.fragment:
        raise ValidationError("base_url must not have a query or fragment", field="base_url")
    if scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ValidationError(
            f"base_url {parts.scheme}://{parts.netloc} is plain http to a host that is not "
            "loopback: the API key would cross the network unencrypted. Use https, or pass "
            "allow_insecure_http=True if you really mean it",
            field="base_url",
        )
    return url.rstrip("/")


def _split(url: str) -> SplitResult | None:
    """`url` split into parts, or None when it cannot be (urlsplit raises on "https://[::1")."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:
        return None
    return parts


def _check_number(field: str, value: object, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field} must be a number, not {type(value).__name__}", field=field)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValidationError(f"{field} must be a positive, finite number", field=field)


def _check_header_value(field: str, value: str) -> None:
    if not isinstance(value, str) or not all(" " <= ch <= "~" or ch == "\t" for ch in value):
        raise ValidationError(f"{field} must be a single-line string", field=field)


def _check_borrowed(session: aiohttp.ClientSession) -> None:
    """Refuse a borrowed session whose settings would fight the client's own."""
    if session.auth is not None:
        raise ValidationError(
            "the borrowed session has auth= set, which aiohttp cannot combine with the "
            "API key's Authorization header; pass a session without auth",
            field="session",
        )
