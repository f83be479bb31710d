"""The request pipeline: the only client module that touches `aiohttp.ClientSession`.

It owns (or borrows) the session and sends each call as a ladder of short steps, each a
function of one `Request` value, in the order they happen:

- `send` builds the `Request` (method, path, URL, encoded body, headers, how to decode
  the reply, the call's `Options`);
- `_send_handling_retries` runs the attempts, one after another: attempt, on an error
  decide and wait (`_back_off`), or leave with the error, settled once by what the
  earlier attempts showed (`Learnt`) and masked once (`_leave`);
- `_attempt` takes a limiter slot, counts the attempt and says what it came to: a reply
  is `_sansio.classify_reply`'s to read, a failure `_failures.name_failure`'s to name
  and `_sansio.classify_failure`'s to judge;
- `_send_single_request` puts it on the wire under the attempt's timeout, and
  `_session.read_body` reads the body under the size cap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar, cast

import aiohttp
from yarl import URL

from ._config import DEFAULT_RETRY, ClientSettings, Options
from ._deadline import Deadlines
from ._failures import WIRE_FAILURES, name_failure
from ._limiter import CappedLimiter, ClientLimiter, Limiter
from ._mask import SecretMasker, url_secrets
from ._retry import Throttle, log_decision, retry_delay
from ._sansio import (
    NOTHING_LEARNT,
    Attempt,
    Learnt,
    Request,
    Rules,
    classify_failure,
    classify_reply,
    settle,
    stopped_error,
)
from ._session import close_session, new_session, read_body, send_reporting, wire_timeout
from ._stats import ClientStats
from ._urls import host_port_of
from .errors import AsyncGroupsError, ClientStateError, LimiterUnavailableError, RateLimitError

if TYPE_CHECKING:
    from ._telemetry import Telemetry

__all__ = ["AIOHTTP_VERSION", "Pipeline"]

logger = logging.getLogger("asyncgroups")

if TYPE_CHECKING:  # T defaults to None (PEP 696): `send` without a decoder returns None
    import typing_extensions

    T = typing_extensions.TypeVar("T", default=None)
else:
    T = TypeVar("T")

AIOHTTP_VERSION: Final = aiohttp.__version__

#: How many attempt timeout lengths a client keeps a `Deadlines` for (and its own).
_KEPT_LENGTHS: Final = 8


class _Headers(NamedTuple):
    """A client's headers: the session's own, and what each request passes to aiohttp."""

    #: Authorization (the key, as a `Secret`), Accept and User-Agent.
    common: dict[str, str]
    #: What a read passes (None: the session's own).
    read: Mapping[str, str] | None
    #: What a request with a JSON body passes.
    write: Mapping[str, str]


def _headers(settings: ClientSettings, *, borrowed: bool) -> _Headers:
    """The headers of every request; the key lives only in them.

    On a session this client makes, `common` are the session's own (aiohttp then copies
    them instead of merging a mapping into them), so a read passes none and a write only
    its Content-Type. A borrowed session's headers are the owner's: ours go with every
    request, and win. The key is a `Secret`, whose repr is masked: tracebacks that show
    frame locals, ours and aiohttp's, never show it.
    """
    common = {
        "Authorization": settings.api_key,
        "Accept": "application/json",
        "User-Agent": settings.user_agent,
    }
    json_headers = {**common, "Content-Type": "application/json"}
    if borrowed:
        return _Headers(common, common, json_headers)
    # As the session's own, not passed with each request: 1.3% fewer instructions per request.
    return _Headers(common, None, {"Content-Type": "application/json"})


def _limiters(given: Limiter | None, settings: ClientSettings) -> tuple[Limiter, Limiter]:
    """The limiter as given (or the default one), and the one each attempt passes.

    The default is a `ClientLimiter` of `max_in_flight` at `rate_limit`. A `ClientLimiter`
    is its own cap; any other (a shared one) paces behind a `CappedLimiter` of the
    client's own in-flight cap.
    """
    cap = settings.max_in_flight
    limiter = given if given is not None else ClientLimiter(cap, settings.rate_limit)
    if isinstance(limiter, ClientLimiter):
        return limiter, limiter
    return limiter, CappedLimiter(limiter, cap)


class Pipeline:
    """Sends requests for one client. Not public: `GroupsClient` wires it up.

    `limiter=None` gives the default `ClientLimiter`; another kind of limiter is put
    behind the client's own in-flight cap (`_limiters`).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        limiter: Limiter | None,
        stats: ClientStats,
        session: aiohttp.ClientSession | None,
        trace_configs: Sequence[aiohttp.TraceConfig],
        rand: Callable[[], float] = random.random,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.base_url = settings.base_url
        #: What every call is sent with.
        self.options = settings.options
        #: The default concurrency of bulk calls.
        self.max_connections = settings.max_connections
        #: The limiter as given (or the default one), and the one each attempt passes.
        self.given_limiter, self.limiter = _limiters(limiter, settings)
        #: What this client sent; only the pipeline writes it.
        self.stats = stats
        #: What the server's 429s told this client: cool down, or stop sending.
        self.throttle = Throttle()
        self.closed = False
        #: Spans and metrics (`_telemetry`); None when OpenTelemetry is not installed.
        self.telemetry = telemetry
        self._settings = settings
        self._headers = _headers(settings, borrowed=session is not None)
        # Each request's URL is this one with its (encoded) path put on, not a string
        # parsed again per request: 3.2% fewer instructions per request.
        self._base = URL(settings.base_url)
        self._base_path = self._base.raw_path.rstrip("/")
        self._wire_timeout = wire_timeout(session, settings.connect_timeout)
        self._connect_target = host_port_of(settings.proxy or settings.base_url)
        self._reporting, self._trace_configs = send_reporting(
            self.limiter, trace_configs, owned=session is None
        )
        # Every error this pipeline raises passes through it, chained causes included.
        self._masker = SecretMasker([settings.api_key, *url_secrets(settings.proxy or "")])
        self._rules = Rules(mask=self._masker.mask)
        self._rand = rand
        self._session = session
        self._owns_session = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Each attempt's timeout, by its length; made in the loop this client is bound to.
        self._deadlines: dict[float, Deadlines] = {}

    # Lifecycle ----------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.closed:
            raise ClientStateError("this GroupsClient is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise ClientStateError(
                "this GroupsClient was opened in another event loop (for example an earlier "
                "asyncio.run() call or a parent process); create one client per event loop"
            )

    @property
    def opened(self) -> bool:
        """True once this client has a session to send on (made, or borrowed)."""
        return self._session is not None or self.closed

    def open(self) -> aiohttp.ClientSession:
        """The session, made now if this client owns it and has none yet."""
        self._check_usable()
        if self._session is None:
            self._session = new_session(self._settings, self._headers.common, self._trace_configs)
        elif self._session.closed:
            raise ClientStateError("the borrowed aiohttp session is closed")
        return self._session

    async def close(self) -> None:
        """Close the owned session (never a borrowed one). Safe to call again."""
        if self.closed:
            return
        self.closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await close_session(session, self._loop)

    # Sending ------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        decode: Callable[[Any], T] | None = None,
        page: bool = False,
        options: Options,
    ) -> T:
        """Send one request (with retries); decode its 2xx JSON reply with `decode`.

        Without `decode` the reply body is not parsed and None is returned. A PATCH
        that succeeds is counted in `stats.updates_sent`; each attempt is counted as a
        write, a read of one group, or (`page`) a read of a page of the listing.
        """
        self._check_usable()
        session = self._session
        if session is None or session.closed:
            session = self.open()  # makes an owned session; refuses a closed borrowed one
        data = headers = None
        if body is None:
            headers = self._headers.read
        else:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers = self._headers.write
        request = Request(
            method, path, self.base_url + path, data, headers, decode, options, page
        )
        # Without a decoder the value is None, and so is T (its default).
        return cast(T, await self._send_handling_retries(session, request))

    async def _send_handling_retries(
        self, session: aiohttp.ClientSession, request: Request[T]
    ) -> T | None:
        """Attempt `request` until one succeeds or the retry policy says no more."""
        learnt = NOTHING_LEARNT
        attempt = 0
        while True:
            attempt += 1
            if self.closed:
                raise ClientStateError("this GroupsClient was closed while the call was retrying")
            try:
                result = await self._attempt(session, request, attempt)
            except (LimiterUnavailableError, RateLimitError) as unsent:
                # This attempt was never sent; what the earlier ones did still counts.
                raise self._leave(unsent, learnt) from None
            if result.error is None:
                self.throttle.note(None)
                if request.method == "PATCH":
                    self.stats.updates_sent += 1
                return result.value
            if not await self._back_off(request, result, attempt):
                # Raised here, outside every `except`, so no unscrubbed exception rides
                # along as an implicit __context__.
                raise self._leave(result.error, learnt)
            learnt = learnt.after(result)

    def _leave(self, error: AsyncGroupsError, learnt: Learnt) -> BaseException:
        """The error a call raises: settled by what its earlier attempts showed, masked.

        The one place the pipeline masks an error: every spelling of every secret it
        sends, in the error and every exception chained to it (`SecretMasker.scrub`).
        """
        return self._masker.scrub(settle(error, learnt))

    async def _attempt(
        self, session: aiohttp.ClientSession, request: Request[T], attempt: int
    ) -> Attempt[T]:
        """Send attempt number `attempt` under a limiter slot; say what it came to."""
        throttle = self.throttle
        if throttle.stopped_until > -math.inf:
            _refuse_while_stopped(throttle, request)
        if self._reporting is not None:
            await self._reporting.acquire(reporting=True)
        else:
            await self.limiter.acquire()
        # Timed only for the DEBUG line: the clock is not read when nobody listens.
        debug = logger.isEnabledFor(logging.DEBUG)
        started = asyncio.get_running_loop().time() if debug else 0.0
        try:
            if throttle.stopped_until > -math.inf:  # the client stopped while this waited
                _refuse_while_stopped(throttle, request)
            if self.closed:  # or it was closed meanwhile
                raise ClientStateError("this GroupsClient was closed while the call waited")
            stats = self.stats
            stats.requests += 1
            if request.method != "GET":
                stats.writes += 1
            elif request.page:
                stats.pages += 1
            else:
                stats.reads += 1
            if attempt > 1:
                stats.retries += 1
            if self.telemetry is None:
                status, headers, body = await self._send_single_request(session, request)
            else:  # under the attempt's span, after the wait for the limiter
                status, headers, body = await self.telemetry.attempt(
                    self._send_single_request, session, request, attempt
                )
        except WIRE_FAILURES as err:
            failure, error, word = name_failure(err, request, attempt, self._connect_target)
            if debug:
                _log(request, word, attempt, started)
            return classify_failure(request, attempt, failure, error)
        finally:
            self.limiter.release()
        if debug:
            _log(request, status, attempt, started)
        return classify_reply(self._rules, request, attempt, status, headers, body)

    async def _send_single_request(
        self, session: aiohttp.ClientSession, request: Request[Any]
    ) -> tuple[int, Mapping[str, str], bytes | None]:
        """One request on the wire under the attempt's timeout: status, headers, body."""
        options = request.options
        deadlines = self._deadlines.get(options.timeout) or _new_deadlines(self, options.timeout)
        # One timer per limit, not asyncio.timeout: 5.8% fewer instructions per request.
        with deadlines.watch():
            async with session.request(
                request.method,
                self._url(request.path),
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                raise_for_status=False,
                proxy=self._settings.proxy,
                ssl=self._settings.tls,  # type: ignore[arg-type]  # a context or a pin
                timeout=self._wire_timeout if options is self.options else _wire_of(self, options),
            ) as resp:
                body = await read_body(resp, options.max_body_size)
                return resp.status, resp.headers, body

    def _url(self, path: str) -> URL:
        """The URL of `path` (which starts with a slash) under the base URL."""
        if "?" in path:  # a page of the listing: let yarl split off the query
            return URL(self.base_url + path)
        return self._base.with_path(self._base_path + path, encoded=True)

    async def _back_off(self, request: Request[Any], result: Attempt[Any], attempt: int) -> bool:
        """Log the retry decision and wait before the next attempt; False when there is none.

        A 429 goes to the `Throttle` first, whether or not this call tries again: it
        pauses the whole client (the limiter's cool-down), or stops it, and then this
        call ends too. Being the whole client's, the pause is never longer than the
        client's own `max_retry_after`, whatever the policy of the call (a view's); a
        call with `retry=None` waits and pauses by the client's policy.
        """
        method, path, failure = request.method, request.path, result.failure
        if failure != 429:
            self.throttle.note(failure)
            if not result.retry:
                if failure is not None:
                    log_decision(method, path, result.reason)
                return False
        own = self.options.retry or DEFAULT_RETRY
        policy = request.options.retry or own  # its backoff and cap
        delay = retry_delay(policy, attempt, retry_after=result.retry_after, rand=self._rand)
        longest = min(policy.max_retry_after, own.max_retry_after)
        if failure == 429 and not self._cool_down(result, delay, longest):
            log_decision(method, path, "the client stopped sending after this 429")
            return False
        wait = delay if result.retry else None
        log_decision(
            method, path, result.reason, wait=wait, attempt=attempt, of=policy.max_attempts
        )
        if result.retry and delay > 0:
            await asyncio.sleep(delay)
        return result.retry

    def _cool_down(self, result: Attempt[Any], delay: float, longest: float) -> bool:
        """Pause the client after a 429, as the `Throttle` says; False when it stopped."""
        throttle = self.throttle
        stops = throttle.stops
        now = asyncio.get_running_loop().time()
        wait = throttle.met_429(now, delay, result.retry_after, longest=longest)
        if wait is None:
            error = result.error
            assert isinstance(error, RateLimitError)  # a 429 is always one
            error.client_stopped = True
            if throttle.stops > stops:  # this 429 began the stop
                self.stats.cool_downs += 1
                error.add_note(
                    f"asyncgroups: this client sends nothing for the next "
                    f"{throttle.stopped_for(now):.1f}s ({throttle.reason}); every request "
                    "until then fails at once with a RateLimitError"
                )
            return False
        if wait > 0:
            self.stats.cool_downs += 1
            self.limiter.cool_down(wait)
        return True


def _refuse_while_stopped(throttle: Throttle, request: Request[Any]) -> None:
    """Raise the `RateLimitError` of an unsent request while the client is stopped."""
    left = throttle.stopped_for(asyncio.get_running_loop().time())
    if left > 0:
        raise stopped_error(request, left=left, reason=throttle.reason)


def _new_deadlines(pipeline: Pipeline, seconds: float) -> Deadlines:
    """The attempts' timeouts of `seconds`, bound to the running loop.

    Kept for the next attempt of that length: the client's own and a few others. Past
    those, one is made per attempt and dropped after it, or views with a timeout
    computed per call (what is left of a budget) would leave one for every value.
    """
    kept = pipeline._deadlines
    loop = asyncio.get_running_loop()
    if seconds != pipeline.options.timeout and len(kept) >= _KEPT_LENGTHS:
        return Deadlines(seconds, loop, transient=True)
    deadlines = kept[seconds] = Deadlines(seconds, loop)
    return deadlines


def _wire_of(pipeline: Pipeline, options: Options) -> aiohttp.ClientTimeout:
    """aiohttp's timers for a call sent with options other than its client's own (a view's
    `with_options`): the connect limit of its own timeout."""
    borrowed = None if pipeline._owns_session else pipeline._session
    return wire_timeout(borrowed, options.connect_timeout)


def _log(request: Request[Any], outcome: object, attempt: int, started: float) -> None:
    """The DEBUG line of one attempt: method, path, status or failure, attempt, time."""
    ms = (asyncio.get_running_loop().time() - started) * 1000
    method, path = request.method, request.path
    logger.debug("%s %s -> %s (attempt %d, %.1f ms)", method, path, outcome, attempt, ms)
