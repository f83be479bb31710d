"""The rules for the URLs a client is given: proxies, loopback hosts, `host:port`. Pure.

Part of the settings' rules (`_config`), kept apart for size; `redact_url` (`_mask`) is
how every URL here is shown.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

from ._mask import redact_url
from .errors import ValidationError

__all__ = [
    "MISPLACED_AT",
    "check_proxy",
    "host_port",
    "host_port_of",
    "is_loopback",
    "misplaced_at",
    "proxy_from_env",
    "split_url",
]


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    parts = split_url(proxy)
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


def split_url(url: str) -> SplitResult | None:
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
