"""Fault configuration and the per-request fault decision of the fake server. No I/O.

Random faults come from one `random.Random(seed)`: while random faults are configured,
every arriving request draws exactly three numbers from it (fault kind, error status,
jitter), whatever gets decided, so the decision for the n-th request depends only on the
seed, n and the `Faults` in force. One-shot injections are consumed first, in the
order they were made, and draw nothing.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Final, Literal

import attrs

__all__ = [
    "ArmedFaults",
    "Decision",
    "FaultKind",
    "Faults",
    "Injection",
    "TokenBucket",
    "decide",
    "fault_kind",
]

#: What happens to a request: answered with an injected status, dropped before the
#: server acts, acted on and then dropped, acted on and answered with broken JSON,
#: or refused by the rate limit.
FaultKind = Literal["status", "reset", "lost_reply", "malformed", "rate_limited"]


def _statuses(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _check_statuses(_: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must hold at least one status")
    for status in value:
        if isinstance(status, bool) or not isinstance(status, int) or not 500 <= status <= 599:
            raise ValueError(f"{attribute.name} must hold 5xx statuses, not {status!r}")


def _number(
    *, low: float, high: float | None = None, low_open: bool = False, optional: bool = False
) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    """An attrs validator: a real number in [low, high] (or (low, high]), None if optional."""

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{attribute.name} must be a number, not {type(value).__name__}")
        if not math.isfinite(value) or value < low or (low_open and value == low):
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            raise ValueError(f"{attribute.name} must be {bound}, not {value!r}")
        if high is not None and value > high:
            raise ValueError(f"{attribute.name} must be <= {high:g}, not {value!r}")

    return check


_RATE = _number(low=0.0, high=1.0)
_NON_NEGATIVE = _number(low=0.0)


@attrs.frozen(kw_only=True)
class Faults:
    """Random trouble for the fake server to cause; the default causes none.

    Each request gets at most one of the error/reset/lost-reply/malformed faults, so
    their rates add up to at most 1. `latency` (plus up to `jitter`, uniform) delays
    every answer, faults included. `rate_limit` is a token bucket of `rate_limit`
    requests per second holding up to `burst` tokens (default: one second's worth,
    at least 1), full at the start; a request finding it empty is answered 429 with
    `Retry-After: retry_after`.
    """

    latency: float = attrs.field(default=0.0, validator=_NON_NEGATIVE)
    jitter: float = attrs.field(default=0.0, validator=_NON_NEGATIVE)
    error_rate: float = attrs.field(default=0.0, validator=_RATE)
    error_statuses: tuple[int, ...] = attrs.field(
        default=(500, 502, 503), converter=_statuses, validator=_check_statuses
    )
    reset_rate: float = attrs.field(default=0.0, validator=_RATE)
    lost_reply_rate: float = attrs.field(default=0.0, validator=_RATE)
    malformed_rate: float = attrs.field(default=0.0, validator=_RATE)
    rate_limit: float | None = attrs.field(
        default=None,
        validator=_number(low=0.0, low_open=True, optional=True),
    )
    burst: float | None = attrs.field(
        default=None,
        validator=_number(low=1.0, optional=True),
    )
    retry_after: float = attrs.field(default=1.0, validator=_NON_NEGATIVE)

    def __attrs_post_init__(self) -> None:
        total = self.error_rate + self.reset_rate + self.lost_reply_rate + self.malformed_rate
        if total > 1.0 + 1e-9:
            raise ValueError(
                "error_rate + reset_rate + lost_reply_rate + malformed_rate must be at "
                f"most 1 (each request gets at most one of them), not {total:g}"
            )

    @property
    def draws(self) -> bool:
        """True when requests draw random numbers (some rate or jitter is set)."""
        return bool(
            self.jitter
            or self.error_rate
            or self.reset_rate
            or self.lost_reply_rate
            or self.malformed_rate
        )

    @property
    def bucket_size(self) -> float:
        """How many requests the rate limit lets through at once from a full bucket."""
        if self.rate_limit is None:
            return 0.0
        return self.burst if self.burst is not None else max(1.0, self.rate_limit)


NO_FAULTS: Final = Faults()


def fault_kind(
    *, status: int | None, reset: bool, lost_reply: bool, malformed: bool, delay: float
) -> FaultKind | None:
    """The one fault an `inject` call asks for (None: only a delay); raises `TypeError`
    or `ValueError` naming what is unclear."""
    chosen: tuple[tuple[FaultKind, bool], ...] = (
        ("reset", reset),
        ("lost_reply", lost_reply),
        ("malformed", malformed),
    )
    kinds = [kind for kind, on in chosen if on]
    if status is not None:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError("status must be an int")
        if not 200 <= status <= 599:
            raise ValueError(f"status must be between 200 and 599, not {status}")
        kinds.append("status")
    if len(kinds) > 1:
        raise ValueError(f"inject one fault at a time, not {' and '.join(kinds)}")
    if not kinds and not delay:
        raise ValueError("inject needs status=, reset=, lost_reply=, malformed= or delay=")
    return kinds[0] if kinds else None


def _check_times(_: object, __: attrs.Attribute[Any], times: int) -> None:
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be a positive int, not {times!r}")


def _check_delay(_: object, __: attrs.Attribute[Any], delay: float) -> None:
    if delay < 0:
        raise ValueError(f"delay must be >= 0, not {delay!r}")


def _upper(method: str | None) -> str | None:
    return method.upper() if method is not None else None


def _route(path: str | None) -> str | None:
    """A target path as the fake routes it: under `/v1`, which may be left out."""
    if path is None:
        return None
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    return path[3:] if path == "/v1" or path.startswith("/v1/") else path


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return dict(headers or {})


@attrs.define(slots=True, kw_only=True, eq=False, repr=False)
class Injection:
    """A one-shot fault armed with `FakeGroupsServer.inject`, fired `times` times.

    `remaining` counts the firings left; `fired` is True once it has fired at all.
    """

    kind: FaultKind | None
    status: int | None
    delay: float = attrs.field(converter=float, validator=_check_delay)
    times: int = attrs.field(validator=_check_times)
    method: str | None = attrs.field(converter=_upper)
    path: str | None = attrs.field(converter=_route)
    retry_after: float | str | None
    body: Any
    headers: dict[str, str] = attrs.field(converter=_headers)
    remaining: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.remaining = self.times

    @property
    def fired(self) -> bool:
        """True once the injection has been applied to at least one request."""
        return self.remaining < self.times

    def matches(self, method: str, path: str) -> bool:
        """True when a request (path without the `/v1` prefix) is one this targets."""
        if self.method is not None and self.method != method:
            return False
        return self.path is None or path.startswith(self.path)

    def __repr__(self) -> str:
        what = str(self.status) if self.kind == "status" else (self.kind or "delay")
        return f"<Injection {what} remaining={self.remaining}/{self.times}>"


@attrs.define(slots=True)
class Decision:
    """What the server does to one request besides answering it."""

    kind: FaultKind | None = None
    delay: float = 0.0
    status: int = 0
    retry_after: float | str | None = None
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def label(self) -> str | None:
        """A short name for request records: "503", "reset", "delay", … or None."""
        if self.kind in ("status", "rate_limited"):
            return str(self.status)
        if self.kind is not None:
            return self.kind
        return "delay" if self.delay else None


class TokenBucket:
    """A token bucket over a caller-supplied clock: `rate` tokens per second, `size` max."""

    __slots__ = ("_last", "_tokens", "rate", "size")

    def __init__(self, rate: float, size: float, now: float) -> None:
        self.rate = rate
        self.size = size
        self._tokens = size
        self._last = now

    def take(self, now: float) -> bool:
        """Take one token if there is one; False means the request is over the limit."""
        self._tokens = min(self.size, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def decide(
    method: str,
    path: str,
    *,
    faults: Faults,
    rng: random.Random,
    injections: list[Injection],
    bucket: TokenBucket | None,
    now: float,
) -> Decision | None:
    """Decide the fate of one arriving request; None means "answer it normally, now".

    Order: a matching one-shot injection wins (and is used up); else random numbers are
    drawn (when any random fault is configured); then the rate limit is checked; then
    the drawn fault, if any, applies.
    """
    injected = _use_injection(injections, method, path)
    if injected is not None:
        return injected
    draws = faults.draws
    if draws:
        u_kind = rng.random()
        u_status = rng.random()
        u_jitter = rng.random()
    if bucket is not None and not bucket.take(now):
        return Decision(
            kind="rate_limited",
            delay=faults.latency + (faults.jitter * u_jitter if draws else 0.0),
            status=429,
            retry_after=faults.retry_after,
        )
    if not draws:
        return Decision(delay=faults.latency) if faults.latency else None
    return _drawn(faults, u_kind, u_status, faults.latency + faults.jitter * u_jitter)


class ArmedFaults:
    """The faults in force on one server: random `Faults` (their numbers drawn from one
    `random.Random(seed)`, their rate limit a `TokenBucket`) and one-shot injections."""

    __slots__ = ("_bucket", "_faults", "_rng", "injections")

    def __init__(self, faults: Faults, seed: int) -> None:
        self._rng = random.Random(seed)
        #: Armed one-shot injections, in the order they fire.
        self.injections: list[Injection] = []
        self._faults = NO_FAULTS
        self._bucket: TokenBucket | None = None
        self.faults = faults

    @property
    def faults(self) -> Faults:
        """The random faults in force; a new `Faults` starts a new rate bucket."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        if not isinstance(value, Faults):
            raise TypeError(f"faults must be a Faults, not {type(value).__name__}")
        self._faults = value
        self._bucket = None
        if value.rate_limit is not None:
            self._bucket = TokenBucket(value.rate_limit, value.bucket_size, time.monotonic())

    def decide(self, method: str, path: str) -> Decision | None:
        """`decide` for a request arriving now; None at once when nothing is armed."""
        faults = self._faults
        if not (self.injections or faults.draws or faults.latency or self._bucket is not None):
            return None
        return decide(
            method,
            path,
            faults=faults,
            rng=self._rng,
            injections=self.injections,
            bucket=self._bucket,
            now=time.monotonic(),
        )


def _use_injection(injections: list[Injection], method: str, path: str) -> Decision | None:
    """The first armed injection that matches the request, used once; None if none does."""
    for index, injection in enumerate(injections):
        if injection.matches(method, path):
            injection.remaining -= 1
            if injection.remaining <= 0:
                del injections[index]
            return Decision(
                kind=injection.kind,
                delay=injection.delay,
                status=injection.status or 0,
                retry_after=injection.retry_after,
                body=injection.body,
                headers=injection.headers,
            )
    return None


def _drawn(faults: Faults, u_kind: float, u_status: float, delay: float) -> Decision | None:
    """The random fault the numbers drawn for one request pick, by the rates in `faults`."""
    threshold = faults.error_rate
    if u_kind < threshold:
        statuses = faults.error_statuses
        status = statuses[min(int(u_status * len(statuses)), len(statuses) - 1)]
        return Decision(kind="status", delay=delay, status=status)
    kinds: tuple[tuple[FaultKind, float], ...] = (
        ("reset", faults.reset_rate),
        ("lost_reply", faults.lost_reply_rate),
        ("malformed", faults.malformed_rate),
    )
    for kind, rate in kinds:
        threshold += rate
        if u_kind < threshold:
            return Decision(kind=kind, delay=delay)
    return Decision(delay=delay) if delay else None


def _reason(status: int) -> str:
    """The status's reason phrase ("Service Unavailable"), or "Error" for an odd one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def proxy_error_page(status: int) -> bytes:
    """The HTML page a reverse proxy sends with a 5xx (what an injected 5xx carries)."""
    reason = _reason(status)
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def injected_body(status: int, body: Any) -> tuple[bytes, str]:
    """The body and content type of an injected status answer.

    None gives the default: an HTML proxy page for a 5xx, else a JSON `message`.
    A str or bytes is sent as it is (as HTML when it starts with `<`, else as JSON);
    anything else is encoded as JSON.
    """
    if body is None:
        if status >= 500:
            return proxy_error_page(status), "text/html"
        return json.dumps({"message": _reason(status)}).encode(), "application/json"
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, bytes):
        kind = "text/html" if body.lstrip().startswith(b"<") else "application/json"
        return body, kind
    return json.dumps(body).encode(), "application/json"


def format_retry_after(value: float | str) -> str:
    """A `Retry-After` value: whole seconds as an integer, fractions as they are."""
    if isinstance(value, str):
        return value
    return f"{value:g}"
