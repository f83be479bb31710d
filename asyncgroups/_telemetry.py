"""OpenTelemetry for a client: the one module that imports it, and only when it is installed.

Following OpenTelemetry's guidance for libraries, only `opentelemetry-api` is used (the
optional `otel` extra): with no SDK configured by the application its providers do
nothing. `new_telemetry` imports it when a client is made; when it is not installed the
client has no `Telemetry` at all, and the pipeline's one check per attempt
(`Pipeline._attempt`) is all the request path pays.

What is recorded follows the stable HTTP client semantic conventions:

- one CLIENT span per attempt on the wire, named by the method (`Telemetry.attempt`);
  the wait for the limiter or a cool-down comes before it and is not in it;
- the `http.client.request.duration` histogram (seconds) per attempt, with the same
  attributes as the span bar `url.full`;
- one INTERNAL span per library operation (`traced`, `traced_stream`), current while
  its attempts run, so they are its children: a bulk call's attempts sit directly under
  the bulk call's span (its worker tasks copy the context current when they are made);
- the trace context of each attempt goes out in its headers through the application's
  global propagator, as OpenTelemetry's aiohttp instrumentation does.

No secret reaches a span: `url.full` is the base URL (which never carries credentials)
and a path, and the exception an operation's span records is the one it raised, which
the pipeline masked (`Pipeline._leave`); an attempt's span names a failure only by its
class (`error.type`).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import urlsplit

from ._bulk import BulkResult, Outcome, distinct_total
from ._sansio import Request
from ._text import is_prokey
from ._version import __version__
from .errors import ValidationError

if TYPE_CHECKING:
    import aiohttp
    from opentelemetry.context import Context
    from opentelemetry.metrics import Histogram, Meter, MeterProvider
    from opentelemetry.trace import Span, SpanKind, Status, Tracer, TracerProvider

__all__ = [
    "DURATION_BUCKETS",
    "Attributes",
    "Telemetry",
    "bulk_result",
    "keys_given",
    "new_telemetry",
    "prokey_given",
    "tally_listed",
    "tally_outcome",
    "telemetry_of",
    "traced",
    "traced_stream",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: What a span or a measurement carries.
Attributes = Mapping[str, str | int | float | bool]
#: What one attempt on the wire gives back: status, headers, body.
Reply = tuple[int, Mapping[str, str], bytes | None]
#: One attempt on the wire: `Pipeline._send_single_request`.
Send = Callable[["aiohttp.ClientSession", Request[Any]], Awaitable[Reply]]

#: The explicit bucket boundaries the HTTP semantic conventions give the duration histogram.
DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip

_SCOPE: Final = "asyncgroups"


def new_telemetry(
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    *,
    base_url: str,
) -> Telemetry | None:
    """A client's `Telemetry`, or None when opentelemetry-api is not installed.

    A None provider is the global one, which delegates to whatever the application
    configures, before or after the client is made. A provider that is not one is a
    `ValidationError`, as is one given without opentelemetry-api to use it.
    """
    try:
        from opentelemetry import context, metrics, propagate, trace
    except ImportError:
        _check_provider("tracer_provider", tracer_provider, None)
        _check_provider("meter_provider", meter_provider, None)
        return None
    _check_provider("tracer_provider", tracer_provider, trace.TracerProvider)
    _check_provider("meter_provider", meter_provider, metrics.MeterProvider)
    tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
    meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
    duration = _duration_histogram(meter)
    api = _API(
        attach=context.attach,
        detach=context.detach,
        in_context=trace.set_span_in_context,
        inject=propagate.inject,
        client=trace.SpanKind.CLIENT,
        internal=trace.SpanKind.INTERNAL,
        error=trace.Status(trace.StatusCode.ERROR),
        status=trace.Status,
    )
    return Telemetry(tracer, duration, api, base_url=base_url)


def _duration_histogram(meter: Meter) -> Histogram:
    """The `http.client.request.duration` histogram, with the conventions' buckets where
    the API can pass them on (opentelemetry-api 1.23 and later)."""
    name, description = "http.client.request.duration", "Duration of HTTP client requests."
    try:
        return meter.create_histogram(
            name, "s", description, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
        )
    except TypeError:  # an older API: the SDK's own buckets
        return meter.create_histogram(name, "s", description)


def _check_provider(field: str, provider: object, kind: type | None) -> None:
    """Refuse a provider that is not of `kind` (None: opentelemetry is not installed)."""
    if provider is None or (kind is not None and isinstance(provider, kind)):
        return
    if kind is None:
        raise ValidationError(
            f"{field} needs opentelemetry-api: pip install 'asyncgroups[otel]'", field=field
        )
    raise ValidationError(
        f"{field} must be an OpenTelemetry {kind.__name__}, not {type(provider).__name__}",
        field=field,
    )


class _API:
    """The few opentelemetry-api names a `Telemetry` uses, bound once it was imported."""

    __slots__ = (
        "attach", "client", "detach", "error", "in_context", "inject", "internal", "status",
    )  # fmt: skip

    def __init__(
        self,
        *,
        attach: Callable[[Context], object],
        detach: Callable[[Any], None],
        in_context: Callable[[Span], Context],
        inject: Callable[[dict[str, str]], None],
        client: SpanKind,
        internal: SpanKind,
        error: Status,
        status: type[Status],
    ) -> None:
        self.attach = attach
        self.detach = detach
        self.in_context = in_context
        self.inject = inject
        self.client = client
        self.internal = internal
        self.error = error
        self.status = status


class Telemetry:
    """One client's tracer and duration histogram, and how its requests are recorded."""

    __slots__ = ("_api", "_duration", "_server", "_tracer")

    def __init__(
        self,
        tracer: Tracer,
        duration: Histogram,
        api: _API,
        *,
        base_url: str,
    ) -> None:
        self._tracer = tracer
        self._duration = duration
        self._api = api
        #: `server.address` and `server.port`, the same for every request of the client.
        self._server = _server_attributes(base_url)

    async def attempt(
        self, send: Send, session: aiohttp.ClientSession, request: Request[Any], attempt: int
    ) -> Reply:
        """Run one attempt on the wire (`send`) under its CLIENT span, and time it.

        The span is current meanwhile (aiohttp's own trace hooks see it), and its
        context goes out in the request's headers. A span without a valid context (no
        SDK and no trace to continue) has none to make current or send, so neither is
        done: 4% fewer instructions per request with opentelemetry-api but no SDK
        (baggage alone then does not go out).
        """
        api = self._api
        method = request.method
        attributes = {**self._server, "http.request.method": method, "url.full": request.url}
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        span = self._tracer.start_span(method, kind=api.client, attributes=attributes)
        token = None
        if span.get_span_context().is_valid:
            token = api.attach(api.in_context(span))
            request = _with_trace_context(request, api)
        started = time.perf_counter()
        try:
            status, headers, body = await send(session, request)
        except BaseException as err:
            self._end(span, method, started, None, type(err).__qualname__)
            raise
        finally:
            if token is not None:
                api.detach(token)
        self._end(span, method, started, status, str(status) if status >= 400 else None)
        return status, headers, body

    def _end(
        self, span: Span, method: str, started: float, status: int | None, error: str | None
    ) -> None:
        """Record the attempt's duration, and end its span with its outcome."""
        elapsed = time.perf_counter() - started
        outcome: dict[str, str | int] = {**self._server, "http.request.method": method}
        if status is not None:
            outcome["http.response.status_code"] = status
        if error is not None:
            outcome["error.type"] = error
            span.set_status(self._api.error)
        span.set_attributes(outcome)
        self._duration.record(elapsed, outcome)
        span.end()

    @contextmanager
    def operation(self, name: str, attributes: Attributes) -> Iterator[Span]:
        """An INTERNAL span named `name`, current inside the block; an error is recorded."""
        with self._tracer.start_as_current_span(
            name,
            kind=self._api.internal,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as err:
                self.failed(span, err)
                raise

    def start(self, name: str, attributes: Attributes) -> Span:
        """An INTERNAL span named `name`, not made current: the caller says where it is."""
        return self._tracer.start_span(name, kind=self._api.internal, attributes=attributes)

    def failed(self, span: Span, err: BaseException) -> None:
        """Mark `span` failed with `err`: as the operation raised it, masked already."""
        name = type(err).__qualname__
        span.set_attribute("error.type", name)
        span.record_exception(err)
        span.set_status(self._api.status(self._api.error.status_code, name))

    def current(self, span: Span) -> Context:
        """The context in which `span` is the current one."""
        return self._api.in_context(span)

    def attach(self, context: Context) -> object:
        """Make `context` the current one, until `detach` of what this returns."""
        return self._api.attach(context)

    def detach(self, token: object) -> None:
        """Restore the context `attach` replaced."""
        self._api.detach(token)


def _server_attributes(base_url: str) -> dict[str, str | int]:
    """`server.address` and `server.port` of the base URL, the port from the scheme if none."""
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}


def _with_trace_context(request: Request[T], api: _API) -> Request[T]:
    """`request`, with the current trace context in its headers when the propagator
    gives any; its own headers may be shared by every request, so they are copied."""
    carrier: dict[str, str] = {}
    api.inject(carrier)
    if not carrier:
        return request
    return Request(
        request.method,
        request.path,
        request.url,
        request.body,
        {**(request.headers or {}), **carrier},
        request.decode,
        request.options,
        request.page,
    )


def telemetry_of(owner: object) -> Telemetry | None:
    """The `Telemetry` of a client, or of a resource of one (None: it records nothing)."""
    pipeline = getattr(owner, "_pipeline", None)
    return getattr(pipeline, "telemetry", None)


def _no_attributes(_: object) -> Attributes:
    return {}


def traced(
    name: str,
    *,
    given: Callable[[Mapping[str, Any]], Attributes] = _no_attributes,
    result: Callable[[Any], Attributes] = _no_attributes,
) -> Callable[[F], F]:
    """Run an async operation of a client under an INTERNAL span named `name`.

    The operation's first parameter is the client, or a resource of it (`telemetry_of`);
    `given` describes the span from the arguments (by parameter name), `result` from
    what the operation returns. Without telemetry the operation runs as it is; called
    with arguments it does not take, it raises its own `TypeError`.
    """

    def wrap(operation: F) -> F:
        signature = inspect.signature(operation)
        first = next(iter(signature.parameters))

        @functools.wraps(operation)
        async def call(*args: Any, **kwargs: Any) -> Any:
            telemetry = telemetry_of(args[0] if args else kwargs.get(first))
            if telemetry is None:
                return await operation(*args, **kwargs)
            try:
                arguments = signature.bind(*args, **kwargs).arguments
            except TypeError:
                return await operation(*args, **kwargs)  # its own error, unrecorded
            with telemetry.operation(name, given(arguments)) as span:
                value = await operation(*args, **kwargs)
                span.set_attributes(result(value))
                return value

        return cast(F, call)

    return wrap


async def traced_stream(
    telemetry: Telemetry,
    name: str,
    attributes: Attributes,
    items: AsyncGenerator[T, None],
    tally: Callable[[T, dict[str, int]], None],
) -> AsyncGenerator[T, None]:
    """Yield what `items` yields, under an INTERNAL span named `name` for the whole stream.

    The span is current only while `items` works towards its next item: the caller's
    own code between two items is not part of it, and the tasks `items` starts
    meanwhile (a bulk call's workers) copy it as their context. (An async generator
    runs in its caller's context, so a span made current across a `yield` would stay
    current in the caller's code.) `tally` counts each item into the span's attributes,
    set when the stream ends or is closed.
    """
    span = telemetry.start(name, attributes)
    context = telemetry.current(span)
    counts: dict[str, int] = {}
    try:
        async with aclosing(items):
            while True:
                token = telemetry.attach(context)
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    break
                finally:
                    telemetry.detach(token)
                tally(item, counts)
                yield item
    except Exception as err:
        telemetry.failed(span, err)
        raise
    finally:
        span.set_attributes(counts)
        span.end()


# What the operations' spans say ------------------------------------------------------


def prokey_given(arguments: Mapping[str, Any]) -> Attributes:
    """The key an operation on one group was given, when it is one: anything else is
    refused before a request, and a string given by mistake may be a secret."""
    prokey = arguments.get("prokey")
    return {"asyncgroups.prokey": prokey} if isinstance(prokey, str) and is_prokey(prokey) else {}


def keys_given(arguments: Mapping[str, Any]) -> Attributes:
    """How many distinct keys a bulk call was given, when the input is a collection."""
    total = distinct_total(arguments.get("prokeys", ()))
    return {} if total is None else {"asyncgroups.keys.requested": total}


def bulk_result(result: BulkResult[Any]) -> Attributes:
    """How a bulk call's distinct keys ended: ok, missing and failed."""
    return {
        "asyncgroups.keys.requested": len(result),
        "asyncgroups.keys.ok": len(result.ok),
        "asyncgroups.keys.missing": len(result.missing),
        "asyncgroups.keys.failed": len(result.failed),
    }


def tally_outcome(outcome: Outcome[Any], counts: dict[str, int]) -> None:
    """Count a streamed key's outcome as `bulk_result` counts it."""
    ended = "ok" if outcome.error is None else "missing" if outcome.missing else "failed"
    for name in ("asyncgroups.keys.requested", f"asyncgroups.keys.{ended}"):
        counts[name] = counts.get(name, 0) + 1


def tally_listed(_: object, counts: dict[str, int]) -> None:
    """Count a group of the listing."""
    counts["asyncgroups.groups.listed"] = counts.get("asyncgroups.groups.listed", 0) + 1
