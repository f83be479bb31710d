"""A client's validated settings, and the rules they are checked by. Performs no I/O.

`ClientSettings.from_arguments` takes what `GroupsClient(...)` was given (and the
environment) and either returns settings every later step can trust or raises
`ValidationError` naming the argument. Every rule of the settings lives here once (those
of proxy URLs and hosts in `_urls`): numbers, header values, TLS, a rate beside a custom
limiter, a borrowed session's own settings. The pipeline and the limiter only read the
result. The environment variable names the client reads are here too, for the CLI.
"""

from __future__ import annotations

import enum
import functools
import math
import os
import ssl
from typing import Any, Final, cast

import attrs

from ._mask import redact_url
from ._retry import RetryPolicy
from ._secret import Secret
from ._urls import check_proxy, is_loopback, proxy_from_env, split_url
from .errors import ValidationError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_RETRY",
    "KEEPALIVE_TIMEOUT",
    "RATE_LIMIT_DEFAULT",
    "BorrowedSession",
    "ClientSettings",
    "Options",
    "RateDefault",
    "check_api_key",
    "check_base_url",
    "check_borrowed",
    "check_header_value",
    "check_number",
    "check_rate_beside_limiter",
    "check_retry",
    "check_tls",
    "connect_timeout_for",
    "in_flight_cap",
    "request_tls",
]

#: The production API.
DEFAULT_BASE_URL: Final = "https://api.add-to-calendar-pro.com/v1"
#: Replies larger than this many bytes are an error, not a memory blow-up.
DEFAULT_MAX_BODY_SIZE: Final = 8 * 1024 * 1024
#: Requests per second a client sends at most by default: the service's documented limit
#: ("The API is rate limited at 80 requests per second").
DEFAULT_RATE_LIMIT: Final = 80.0
#: The retry policy of a client given none: `RetryPolicy()`. A client without retries
#: (`retry=None`) still cools down after a 429 by its backoff and `max_retry_after`.
DEFAULT_RETRY: Final = RetryPolicy()
#: Idle pooled connections are closed after this many seconds: shorter than the 5 s idle
#: limit common on servers and load balancers, so a reused connection is rarely stale.
KEEPALIVE_TIMEOUT: Final = 4.0

#: The environment variable an API key is read from when none is passed.
API_KEY_ENV: Final = "ASYNCGROUPS_API_KEY"
#: The environment variable a base URL is read from when none is passed.
BASE_URL_ENV: Final = "ASYNCGROUPS_BASE_URL"

#: The share of an attempt's timeout (at most one second) left after the connect limit.
_CONNECT_MARGIN: Final = 0.1


class RateDefault(enum.Enum):
    """The type of `RATE_LIMIT_DEFAULT`: `rate_limit=` not given.

    The client then sends at `DEFAULT_RATE_LIMIT`, and a custom `limiter=` beside it is
    not refused, as an explicit `rate_limit=80.0` is (it would be silently ignored).
    """

    RATE_LIMIT_DEFAULT = "DEFAULT_RATE_LIMIT"

    def __repr__(self) -> str:  # what a signature shows: the constant it stands for
        return "DEFAULT_RATE_LIMIT"


#: The default value of `GroupsClient(rate_limit=...)`: "not given".
RATE_LIMIT_DEFAULT: Final = RateDefault.RATE_LIMIT_DEFAULT



def check_number(
    field: str, value: object, *, integer: bool = False, minimum: float | None = None
) -> None:
    """`ValidationError` unless `value` is a finite number (an int, with `integer`).

    With `minimum`, the number must be at least that; without, it must be above zero.
    A bool is not a number here, though Python counts it as an int.
    """
    kinds: Any = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "an integer" if integer else "a number"
        raise ValidationError(f"{field} must be {what}, not {_kind(value)}", field=field)
    number = cast(float, value)
    if minimum is not None:
        if not math.isfinite(number) or number < minimum:
            raise ValidationError(
                f"{field} must be a finite number of at least {minimum:g}, not {number!r}",
                field=field,
            )
    elif not math.isfinite(number) or number <= 0:
        raise ValidationError(
            f"{field} must be a positive, finite number, not {number!r}", field=field
        )


def _kind(value: object) -> str:
    """What a value of the wrong type is, for a message: its type's name, or None."""
    return "None" if value is None else type(value).__name__


def check_header_value(field: str, value: object) -> None:
    """`ValidationError` unless `value` can be sent as one HTTP header line."""
    if not isinstance(value, str) or not all(" " <= ch <= "~" or ch == "\t" for ch in value):
        raise ValidationError(f"{field} must be a single-line string", field=field)


def check_api_key(api_key: object) -> Secret:
    """The API key from the argument or `$ASYNCGROUPS_API_KEY`, stripped, as a `Secret`."""
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
    return Secret(key)


def check_base_url(base_url: object, *, allow_insecure_http: bool) -> str:
    """The base URL from the argument, `$ASYNCGROUPS_BASE_URL` or the production default.

    It must be http(s) with a host, without credentials (no `@` at all), query or
    fragment; plain http only to a loopback host unless `allow_insecure_http`. Returned
    without a trailing slash, so paths can be appended.
    """
    url = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    if not isinstance(url, str):
        raise ValidationError("base_url must be a string", field="base_url")
    url = url.strip()
    if "@" in url:  # wherever a parser would put it: part of a password, say
        raise ValidationError(
            "base_url must not carry credentials (nor any '@')", field="base_url"
        )
    parts = split_url(url)
    scheme = parts.scheme.lower() if parts else ""
    if parts is None or scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"base_url must be an http(s) URL with a host, like {DEFAULT_BASE_URL}",
            field="base_url",
        )
    if parts.query or parts.fragment:
        raise ValidationError("base_url must not have a query or fragment", field="base_url")
    if scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ValidationError(
            f"base_url {redact_url(f'{parts.scheme}://{parts.netloc}')} is plain http to a "
            "host that is not loopback: the API key would cross the network unencrypted. "
            "Use https, or pass allow_insecure_http=True if you really mean it",
            field="base_url",
        )
    return url.rstrip("/")


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """The system's verifying TLS context, made once (loading the CA store is slow)."""
    return ssl.create_default_context()


def _verifies(context: ssl.SSLContext) -> bool:
    """True when `context` checks both the certificate chain and the host name."""
    return context.verify_mode != ssl.CERT_NONE and context.check_hostname


def check_tls(
    ssl_context: ssl.SSLContext | None, borrowed: object, *, https: bool
) -> ssl.SSLContext:
    """The TLS context every request of a client carries, or `ValidationError`.

    An explicit `ssl_context` wins. A borrowed session's connector setting (`borrowed`:
    its `ssl=`, True when there is none) is honoured when it verifies (for example with
    a corporate CA); one that does not verify is refused rather than overridden into
    failures or followed into sending the key unverified. Otherwise the system's trust
    store is used. Over plain http no TLS is made, so nothing is refused.
    """
    if ssl_context is not None:
        if https and not _verifies(ssl_context):
            raise ValidationError(
                "ssl_context does not verify certificates and host names (verify_mode is "
                "CERT_NONE or check_hostname is off); asyncgroups always verifies TLS: pass "
                'a verifying context, e.g. ssl.create_default_context(cafile="ca.pem")',
                field="ssl_context",
            )
        return ssl_context
    if isinstance(borrowed, ssl.SSLContext) and _verifies(borrowed):
        return borrowed
    if borrowed is True or not https:
        return _default_ssl_context()
    what = "ssl=False" if borrowed is False else "an ssl context with verification off"
    raise ValidationError(
        f"the borrowed session's connector does not verify TLS ({what}), and asyncgroups "
        "never sends the API key over unverified TLS: pass ssl_context= to trust a private "
        'CA (e.g. ssl.create_default_context(cafile="ca.pem")), or borrow a session whose '
        "connector verifies",
        field="session",
    )


def in_flight_cap(max_connections: int, borrowed_pool: int | None) -> int:
    """Requests in flight at most: `max_connections`, or a smaller borrowed pool's size.

    A borrowed pool smaller than the cap would make requests queue inside aiohttp, where
    the wait would count against their timeout. A pool without a limit (0) or none at
    all (None) leaves the cap as it is.
    """
    return min(max_connections, borrowed_pool or max_connections)


@attrs.frozen(kw_only=True)
class BorrowedSession:
    """What the setting rules need to know of an `aiohttp.ClientSession` a client borrows.

    `_http.borrowed_session` reads it off the session, so the rules stay free of aiohttp.
    """

    #: True when the session has `auth=` set.
    has_auth: bool
    #: Its connector's `ssl=`: True, False, an `ssl.SSLContext` or a pinned certificate.
    tls: object
    #: True when `tls` pins the server's certificate (an `aiohttp.Fingerprint`).
    pins_certificate: bool
    #: Its connector's connection limit (0: none; None: it has no connector).
    pool: int | None


def check_borrowed(borrowed: BorrowedSession) -> None:
    """Refuse a borrowed session whose settings would fight the client's own."""
    if borrowed.has_auth:
        raise ValidationError(
            "the borrowed session has auth= set, which aiohttp cannot combine with the "
            "API key's Authorization header; pass a session without auth",
            field="session",
        )


def request_tls(
    ssl_context: ssl.SSLContext | None, borrowed: BorrowedSession | None, *, https: bool
) -> object:
    """The TLS setting every request of a client carries, or `ValidationError`.

    A borrowed connector that pins the certificate is honoured unless `ssl_context` is
    given; everything else is `check_tls`'s rule.
    """
    if borrowed is not None and borrowed.pins_certificate and ssl_context is None:
        return borrowed.tls
    return check_tls(ssl_context, borrowed.tls if borrowed is not None else True, https=https)


def check_rate_beside_limiter(rate_limit: object, *, custom_limiter: bool) -> None:
    """`ValidationError` for a rate given beside a custom limiter, which would ignore it."""
    if custom_limiter and rate_limit is not None and rate_limit is not RATE_LIMIT_DEFAULT:
        raise ValidationError(
            "pass either limiter= or rate_limit=, not both: a custom limiter paces "
            "requests by its own rules, and the rate would be ignored",
            field="rate_limit",
        )


@attrs.frozen(kw_only=True)
class Options:
    """What each call is sent with; a client's settings give every call the same."""

    #: Seconds one attempt may take on the wire.
    timeout: float
    #: Seconds a socket connect may take (`ClientSettings.connect_timeout`).
    connect_timeout: float
    #: The retry policy (None: never retry).
    retry: RetryPolicy | None
    #: Replies larger than this many bytes are an error.
    max_body_size: int


def connect_timeout_for(timeout: float) -> float:
    """Seconds a socket connect may take in an attempt of `timeout` seconds.

    A little less than the whole attempt, so a host that never answers is known as a
    failure to connect (which even a create may retry), not as a slow reply.
    """
    return timeout - min(timeout * _CONNECT_MARGIN, 1.0)


@attrs.frozen(kw_only=True)
class ClientSettings:
    """What one client sends with, checked once; built by `from_arguments`."""

    #: The API's base URL, without a trailing slash.
    base_url: str
    #: The API key, masked in every repr.
    api_key: Secret
    #: Seconds one attempt may take on the wire.
    timeout: float
    #: Seconds a socket connect may take (`connect_timeout_for`).
    connect_timeout: float
    #: The pool size of a session the client makes, and the default bulk concurrency.
    max_connections: int
    #: Requests in flight at most (`in_flight_cap`).
    max_in_flight: int
    #: Requests per second (None: unlimited), for the default limiter.
    rate_limit: float | None
    #: The retry policy (None: never retry).
    retry: RetryPolicy | None
    #: The TLS setting every request carries (`request_tls`).
    tls: object
    #: The proxy every request goes through (None: direct); its repr hides the password.
    proxy: str | None = attrs.field(repr=lambda proxy: repr(proxy and redact_url(proxy)))
    #: The `User-Agent` header.
    user_agent: str
    #: Replies larger than this many bytes are an error.
    max_body_size: int

    @property
    def options(self) -> Options:
        """The options every call of the client is sent with."""
        return Options(
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            retry=self.retry,
            max_body_size=self.max_body_size,
        )

    @classmethod
    def from_arguments(
        cls,
        *,
        api_key: object,
        base_url: object,
        timeout: object,
        max_connections: object,
        rate_limit: object,
        retry: object,
        allow_insecure_http: bool,
        ssl_context: object,
        proxy: object,
        user_agent: object,
        max_body_size: object,
        version: str,
        custom_limiter: bool = False,
        borrowed: BorrowedSession | None = None,
    ) -> ClientSettings:
        """Check every argument in the order `GroupsClient` takes them; the first bad one raises.

        The API key and base URL fall back to the environment, and so does the proxy
        (`HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`). `version` heads the `User-Agent`
        (`asyncgroups/<v> aiohttp/<v>`); a given `user_agent` is appended to it. Then
        come the rules that join arguments: a rate beside a `custom_limiter`, and the
        `borrowed` session's own settings.
        """
        key = check_api_key(api_key)
        url = check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        check_number("timeout", timeout)
        check_number("max_connections", max_connections, integer=True, minimum=1)
        rate = _rate(rate_limit)
        _check_types(retry, ssl_context, proxy)
        check_number("max_body_size", max_body_size, integer=True, minimum=1)
        agent = _user_agent(version, user_agent)
        check_rate_beside_limiter(rate_limit, custom_limiter=custom_limiter)
        if borrowed is not None:
            check_borrowed(borrowed)
        seconds, connections = float(cast(float, timeout)), cast(int, max_connections)
        https = url.lower().startswith("https:")
        return cls(
            base_url=url,
            api_key=key,
            timeout=seconds,
            connect_timeout=connect_timeout_for(seconds),
            max_connections=connections,
            max_in_flight=in_flight_cap(connections, borrowed.pool if borrowed else None),
            rate_limit=rate,
            retry=cast(RetryPolicy | None, retry),
            tls=request_tls(cast(ssl.SSLContext | None, ssl_context), borrowed, https=https),
            proxy=cast(str, proxy) if proxy is not None else proxy_from_env(url),
            user_agent=agent,
            max_body_size=cast(int, max_body_size),
        )


def check_retry(retry: object) -> None:
    """`ValidationError` unless `retry` is a `RetryPolicy` or None."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        given = "the class itself: call it, RetryPolicy(...)" if retry is RetryPolicy else None
        raise ValidationError(
            f"retry must be a RetryPolicy, or None to never retry, not {given or _kind(retry)}",
            field="retry",
        )


def _check_types(retry: object, ssl_context: object, proxy: object) -> None:
    """`ValidationError` unless the retry policy, TLS context and proxy are of their types."""
    check_retry(retry)
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise ValidationError("ssl_context must be an ssl.SSLContext", field="ssl_context")
    if proxy is not None:
        check_proxy(proxy)  # type: ignore[arg-type]  # checked: it raises on a non-str


def _rate(rate_limit: object) -> float | None:
    """The rate `rate_limit=` stands for (`DEFAULT_RATE_LIMIT` when not given), checked."""
    if rate_limit is RATE_LIMIT_DEFAULT:
        return DEFAULT_RATE_LIMIT
    if rate_limit is None:
        return None
    check_number("rate_limit", rate_limit)
    return float(cast(float, rate_limit))


def _user_agent(version: str, user_agent: object) -> str:
    """`version` (`asyncgroups/<v> aiohttp/<v>`), and a given `user_agent` after it."""
    if not user_agent:
        return version
    check_header_value("user_agent", user_agent)
    return f"{version} {user_agent}"
