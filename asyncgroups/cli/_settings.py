"""The global options after their environment fallbacks, and the client they make.

A bad environment value is a `UsageError` naming the variable; a missing API key or a
refused base URL is one too, before anything is sent. The options only a client of the
API uses (the key, the URL, `--ca-file`, `--shared-limit`) are checked when a command
makes one, so a stale variable never breaks `fake-server` or `demo`.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .. import DEFAULT_RATE_LIMIT, GroupsClient, RetryPolicy, ValidationError
from .._config import API_KEY_ENV, BASE_URL_ENV
from ._exits import UsageError
from ._values import positive_float, positive_int, rate

if TYPE_CHECKING:
    from ..contrib.redis import RedisLimiter

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_TIMEOUT", "ENV", "Settings", "make_client"]

#: The environment variable behind each global option.
ENV: Final = {
    "api_key": API_KEY_ENV,
    "base_url": BASE_URL_ENV,
    "ca_file": "ASYNCGROUPS_CA_FILE",
    "concurrency": "ASYNCGROUPS_CONCURRENCY",
    "rate_limit": "ASYNCGROUPS_RATE_LIMIT",
    "shared_limit": "ASYNCGROUPS_SHARED_LIMIT",
    "timeout": "ASYNCGROUPS_TIMEOUT",
}

DEFAULT_CONCURRENCY: Final = 16
DEFAULT_TIMEOUT: Final = 30.0

T = TypeVar("T")


class Settings:
    """The global options after the environment fallbacks were applied.

    A bad environment value is a `UsageError` naming the variable.
    """

    __slots__ = (
        "_args",
        "allow_insecure_http",
        "api_key",
        "base_url",
        "concurrency",
        "rate_limit",
        "rate_limit_given",
        "timeout",
        "verbose",
    )

    def __init__(self, args: argparse.Namespace) -> None:
        for option in ("api_key", "base_url"):
            # `--base-url ""` (an unset shell variable, say) must not quietly fall back.
            if getattr(args, option) is not None and not getattr(args, option).strip():
                raise UsageError(f"--{option.replace('_', '-')} is empty")
        self.api_key: str | None = args.api_key or os.environ.get(ENV["api_key"]) or None
        self.base_url: str | None = args.base_url or os.environ.get(ENV["base_url"]) or None
        self.concurrency: int = _setting(args, "concurrency", positive_int, DEFAULT_CONCURRENCY)
        # 0.0 stands for `none`: no limit at all.
        self.rate_limit: float | None = (
            _setting(args, "rate_limit", rate, DEFAULT_RATE_LIMIT) or None
        )
        #: True when the rate limit was asked for, not the default (the demo's local
        #: fake is only paced when asked).
        self.rate_limit_given: bool = args.rate_limit is not None or bool(
            os.environ.get(ENV["rate_limit"], "").strip()
        )
        self.timeout: float = _setting(args, "timeout", positive_float, DEFAULT_TIMEOUT)
        self.verbose: int = args.verbose
        self.allow_insecure_http: bool = args.allow_insecure_http
        self._args = args

    @property
    def shared_limit(self) -> str | None:
        """The Redis URL of a rate limit shared with other processes, or None; checked
        when asked for (a `UsageError`)."""
        return _shared_limit(self._args, self.rate_limit)

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """A context trusting only the CAs of `--ca-file`, or None: the system's store;
        checked when asked for (a `UsageError`)."""
        return _trust(self._args)


def _setting(
    args: argparse.Namespace, name: str, parse: Callable[[str], Any], default: T
) -> Any | T:
    value = getattr(args, name)
    if value is not None:
        return value
    text = os.environ.get(ENV[name])
    if text is None or not text.strip():
        return default
    try:
        return parse(text.strip())
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"{ENV[name]}={text!r}: {err}") from None


def _shared_limit(args: argparse.Namespace, rate_limit: float | None) -> str | None:
    """`--shared-limit` or its variable, checked: a usage error names no password.

    Not an argparse `type=`: argparse would quote a refused value, password and all.
    """
    given = getattr(args, "shared_limit", None)
    source = "--shared-limit"
    if given is None:
        given = os.environ.get(ENV["shared_limit"], "").strip() or None
        source = ENV["shared_limit"]
    if given is None:
        return None
    try:
        from ..contrib.redis import check_redis_url
    except ImportError:
        raise UsageError(
            f"{source} needs redis-py: pip install 'asyncgroups[redis]'"
        ) from None
    try:
        url = check_redis_url(given)
    except ValidationError as err:
        raise UsageError(f"{source}: {err}") from None
    if rate_limit is None:
        raise UsageError(
            f"{source} shares a rate between processes: it needs a --rate-limit, not none"
        )
    from ..contrib.redis import MIN_RATE

    if rate_limit < MIN_RATE:
        raise UsageError(
            f"with {source}, --rate-limit must be at least {MIN_RATE:g} request a second, "
            f"not {rate_limit:g}"
        )
    return url


def _trust(args: argparse.Namespace) -> ssl.SSLContext | None:
    """A verifying context that trusts the CA certificates of `--ca-file` (or its
    variable) and nothing else, or None when neither is given.

    The file replaces the system's trust store rather than extending it, so exactly the
    CAs it names are trusted. A file that cannot be read or holds no certificate is a
    `UsageError`, before anything is sent.
    """
    path: str | None = getattr(args, "ca_file", None)
    source = "--ca-file"
    if path is None:
        path = os.environ.get(ENV["ca_file"], "").strip() or None
        source = f"${ENV['ca_file']}"
    if path is None:
        return None
    if not path.strip():
        raise UsageError(f"{source} is empty")
    try:
        return ssl.create_default_context(cafile=path)
    except OSError as err:
        if isinstance(err, ssl.SSLError):  # read, but not one certificate in it
            raise UsageError(f"{source} {path}: holds no CA certificate in PEM form") from None
        raise UsageError(f"{source} {path}: cannot read it: {err.strerror or err}") from None


class _SharedLimitClient(GroupsClient):
    """A client paced by a `RedisLimiter` made for it alone, closed when it closes.

    A `GroupsClient` never closes a limiter it was given; this one owns its limiter,
    since each command's client lives for one `asyncio.run`.
    """

    def __init__(self, api_key: str, *, limiter: RedisLimiter, **options: Any) -> None:
        super().__init__(api_key, limiter=limiter, rate_limit=None, **options)
        self._redis_limiter = limiter

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self._redis_limiter.aclose()


def make_client(settings: Settings) -> GroupsClient:
    """A client from the global options; a missing key or a bad URL is a `UsageError`.

    With `--shared-limit`, the client's rate and 429 cool-downs are shared through
    Redis with every other process using the same Redis (the limiter's default name).
    """
    if not settings.api_key:
        raise UsageError(f"no API key: pass --api-key KEY or set {ENV['api_key']}")
    shared_limit = settings.shared_limit
    common: dict[str, Any] = {
        "base_url": settings.base_url,
        "timeout": settings.timeout,
        "max_connections": settings.concurrency,
        "retry": RetryPolicy(),
        "allow_insecure_http": settings.allow_insecure_http,
        "ssl_context": settings.ssl_context,
    }
    try:
        if shared_limit is not None:
            from ..contrib.redis import RedisLimiter

            assert settings.rate_limit is not None  # refused by _shared_limit
            limiter = RedisLimiter(shared_limit, rate=settings.rate_limit)
            return _SharedLimitClient(settings.api_key, limiter=limiter, **common)
        return GroupsClient(settings.api_key, rate_limit=settings.rate_limit, **common)
    except ValidationError as err:
        message = str(err).replace("pass allow_insecure_http=True", "pass --allow-insecure-http")
        raise UsageError(message) from None
