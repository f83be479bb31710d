"""A client's validated settings, and the rules they are checked by. Performs no I/O.

`ClientSettings.from_arguments` takes what `GroupsClient(...)` was given (and the
environment) and either returns settings every later step can trust or raises
`ValidationError` naming the argument. The rules for URLs, proxies, header values and
numbers live here once; the pipeline and the limiter only read the result. The
environment variable names the client reads are here too, for the CLI to share.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import ssl
import urllib.request
from typing import Any, Final, cast
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

import attrs

from ._mask import redact_url
from ._retry import RetryPolicy
from ._secret import Secret
from .errors import ValidationError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_RATE_LIMIT",
    "KEEPALIVE_TIMEOUT",
    "MISPLACED_AT",
    "RATE_LIMIT_DEFAULT",
    "ClientSettings",
    "check_api_key",
    "check_base_url",
    "check_header_value",
    "check_number",
    "check_proxy",
    "check_tls",
    "host_port",
    "host_port_of",
    "in_flight_cap",
    "is_loopback",
    "misplaced_at",
    "proxy_from_env",
]

#: The production API.
DEFAULT_BASE_URL: Final = "https://api.add-to-calendar-pro.com/v1"
#: Replies larger than this many bytes are an error, not a memory blow-up.
DEFAULT_MAX_BODY_SIZE: Final = 8 * 1024 * 1024
#: Requests per second a client sends at most by default: the service's documented limit
#: ("The API is rate limited at 80 requests per second").
DEFAULT_RATE_LIMIT: Final = 80.0
#: Idle pooled connections are closed after this many seconds: shorter than the 5 s idle
#: limit common on servers and load balancers, so a reused connection is rarely stale.
KEEPALIVE_TIMEOUT: Final = 4.0

#: The environment variable an API key is read from when none is passed.
API_KEY_ENV: Final = "ASYNCGROUPS_API_KEY"
#: The environment variable a base URL is read from when none is passed.
BASE_URL_ENV: Final = "ASYNCGROUPS_BASE_URL"

#: The share of an attempt's timeout (at most one second) left after the connect limit.
_CONNECT_MARGIN: Final = 0.1


class _DefaultRate(float):
    """`DEFAULT_RATE_LIMIT`, as the default of `rate_limit=`: equal to it, shown as it.

    Only identity tells it from an explicit `rate_limit=80.0`, which a custom `limiter=`
    refuses (it would be silently ignored) while the default is not refused.
    """

    __slots__ = ()


#: The default value of `GroupsClient(rate_limit=...)`; `is` tells "not given".
RATE_LIMIT_DEFAULT: Final = _DefaultRate(DEFAULT_RATE_LIMIT)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        raise ValidationError(f"{field} must be {what}, not {type(value).__name__}", field=field)
    number = cast(float, value)
    if minimum is not None:
        if not math.isfinite(number) or number < minimum:
            raise ValidationError(
                f"{field} must be a finite number of at least {minimum:g}", field=field
            )
    elif not math.isfinite(number) or number <= 0:
        raise ValidationError(f"{field} must be a positive, finite number", field=field)


def check_header_value(field: str, value: object) -> None:
    """`ValidationError` unless `value` can be sent as one HTTP header line."""
    if not isinstance(value, str) or not all(" " <= ch <= "~" or ch == "\t" for ch in value):
        raise ValidationError(f"{field} must be a single-line string", field=field)


def proxy_from_env(url: str) -> str | None:
    """The proxy `HTTPS_PROXY`/`HTTP_PROXY` name for `url`, unless `NO_PROXY` excludes it.

    Loopback hosts never go through a proxy (a local fake server must stay local). A
    proxy given without a scheme (`proxy.corp:3128`, common in corporate settings) is
    taken as `http://`; a scheme aiohttp cannot use (`socks5://`) is a `ValidationError`
    rather than a proxy silently misused.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy or not parts.hostname or is_loopback(parts.hostname):
        return None
    if proxy_bypass_environment(parts.hostname, proxies):
        return None
    return check_proxy(proxy if "://" in proxy else f"http://{proxy}", source="environment")


def check_proxy(proxy: str, *, source: str = "proxy") -> str:
    """`proxy` if it is an http(s) URL with a host, else `ValidationError`."""
    what = f"the proxy from the {source}" if source == "environment" else "proxy"
    if not isinstance(proxy, str):
        raise ValidationError(
            f"{what} must be an http(s) URL with a host, not {type(proxy).__name__}",
            field="proxy",
        )
    if misplaced_at(proxy):
        raise ValidationError(f"{what} {MISPLACED_AT}: {redact_url(proxy)!r}", field="proxy")
    parts = _split(proxy)
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"{what} must be an http(s) URL with a host, not {redact_url(proxy)!r}",
            field="proxy",
        )
    _check_proxy_credentials(what, parts, proxy)
    return proxy


def _check_proxy_credentials(what: str, parts: SplitResult, proxy: str) -> None:
    """`ValidationError` unless aiohttp can send the proxy's user name and password.

    It sends them as `Proxy-Authorization: Basic`, encoded in Latin-1, and refuses a `:`
    in the user name; either failure would otherwise come from inside the request, an
    untyped error whose arguments hold the password.
    """
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    shown = f"{what} {redact_url(proxy)!r} cannot be used"
    if ":" in user:
        raise ValidationError(f"{shown}: its user name holds a ':'", field="proxy")
    try:
        f"{user}:{password}".encode("latin-1")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{shown}: its user name and password must be Latin-1 characters (they are "
            "sent so, in Proxy-Authorization: Basic)",
            field="proxy",
        ) from None


#: What a message about a `misplaced_at` URL says after naming it.
MISPLACED_AT: Final = (
    "has an '@' after a '/', '?' or '#': percent-encode those characters in a user name, "
    "password or path (%2F, %3F, %23, %40 for '@')"
)


def misplaced_at(url: str) -> bool:
    """True when `url` has an `@` outside what a URL parser reads as its authority.

    That is a user name or password with a raw `/`, `?`, `#` (or an `@` after one): the
    parser would end the host there and read the rest of the password as a path, query
    or fragment, so it would connect somewhere else and show the password's tail in
    messages about that. Refused, with `MISPLACED_AT` saying how to write it instead.
    """
    if "@" not in url:
        return False
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # a malformed bracketed host: refused by the caller's own check
        return False
    return netloc.count("@") != url.count("@")


def _split(url: str) -> SplitResult | None:
    """`url` split into parts, or None when it cannot be (urlsplit raises on "https://[::1")."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:
        return None
    return parts


def host_port_of(url: str) -> str:
    """`host:port` of a URL, the port filled in from the scheme when it has none."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return host_port(parts.hostname or "", port)


def host_port(host: str, port: int | None) -> str:
    """`host:port` as a message shows it, an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


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
    parts = _split(url)
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
class ClientSettings:
    """What one client sends with, checked once; built by `from_arguments`."""

    #: The API's base URL, without a trailing slash.
    base_url: str
    #: The API key, masked in every repr.
    api_key: Secret
    #: Seconds one attempt may take on the wire.
    timeout: float
    #: Seconds a socket connect may take: a little less than `timeout`, so a host that
    #: never answers is known as a failure to connect, not a slow reply.
    connect_timeout: float
    #: The pool size of a session the client makes, and the default bulk concurrency.
    max_connections: int
    #: Requests per second (None: unlimited), for the default limiter.
    rate_limit: float | None
    #: The retry policy (None: never retry).
    retry: RetryPolicy | None
    #: The proxy every request goes through (None: direct); its repr hides the password.
    proxy: str | None = attrs.field(repr=lambda proxy: repr(proxy and redact_url(proxy)))
    #: The `User-Agent` header.
    user_agent: str
    #: Replies larger than this many bytes are an error.
    max_body_size: int

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
    ) -> ClientSettings:
        """Check every argument in the order `GroupsClient` takes them; the first bad one raises.

        The API key and base URL fall back to the environment, and so does the proxy
        (`HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`). `version` heads the `User-Agent`
        (`asyncgroups/<v> aiohttp/<v>`); a given `user_agent` is appended to it.
        """
        key = check_api_key(api_key)
        url = check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        check_number("timeout", timeout)
        check_number("max_connections", max_connections, integer=True, minimum=1)
        if rate_limit is not None:
            check_number("rate_limit", rate_limit)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(
                "retry must be a RetryPolicy, or None to never retry", field="retry"
            )
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ValidationError("ssl_context must be an ssl.SSLContext", field="ssl_context")
        if proxy is not None:
            check_proxy(proxy)  # type: ignore[arg-type]  # checked: it raises on a non-str
        check_number("max_body_size", max_body_size, integer=True, minimum=1)
        agent = version
        if user_agent:
            check_header_value("user_agent", user_agent)
            agent = f"{agent} {user_agent}"
        seconds = float(timeout)  # type: ignore[arg-type]  # checked above
        return cls(
            base_url=url,
            api_key=key,
            timeout=seconds,
            connect_timeout=seconds - min(seconds * _CONNECT_MARGIN, 1.0),
            max_connections=max_connections,  # type: ignore[arg-type]  # checked above
            rate_limit=None if rate_limit is None else float(rate_limit),  # type: ignore[arg-type]
            retry=retry,
            proxy=proxy if proxy is not None else proxy_from_env(url),  # type: ignore[arg-type]
            user_agent=agent,
            max_body_size=max_body_size,  # type: ignore[arg-type]  # checked above
        )
