"""OpenTelemetry: the spans, attributes, parentage and histogram a client records, read
through the SDK's in-memory exporter and metric reader, against the fake server.

Every client here is given its own providers (`Recorded`): nothing is set globally, so
the tests do not leak into each other. What a client does without OpenTelemetry
installed at all is proved in a child process (`test_telemetry_absent.py`); sync's
spans are in `sync/test_sync_telemetry.py`.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from conftest import API_KEY, NO_WAIT, local_client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode
from telemetry_support import Recorded, parent_id, span_id

from asyncgroups import (
    GroupsClient,
    NotFoundError,
    RequestTimeout,
    ServerError,
    ValidationError,
)
from asyncgroups._mask import SecretMasker
from asyncgroups._telemetry import DURATION_BUCKETS
from asyncgroups.testing import FakeGroupsServer

if TYPE_CHECKING:
    from conftest import Serve

MISSING = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture
async def fake() -> Any:
    async with FakeGroupsServer() as server:
        yield server


async def test_telemetry_get_is_an_internal_span_over_one_client_span(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    key = fake.add_group("Team")
    async with recorded.client(fake) as client:
        await client.groups.get(key)
    operation = recorded.named("groups.get")
    (attempt,) = recorded.spans(SpanKind.CLIENT)
    assert operation.kind == SpanKind.INTERNAL
    assert operation.attributes == {"asyncgroups.prokey": key}
    assert attempt.name == "GET"
    assert parent_id(attempt) == span_id(operation)
    host, port = fake.url.split("//")[1].split("/")[0].split(":")
    assert attempt.attributes == {
        "http.request.method": "GET",
        "server.address": host,
        "server.port": int(port),
        "url.full": f"{fake.url}/group/{key}",
        "http.response.status_code": 200,
    }
    assert attempt.status.status_code == StatusCode.UNSET


async def test_telemetry_get_many_is_one_internal_span_with_every_attempt_under_it(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    keys = [fake.add_group(f"Group {i}") for i in range(4)] + [MISSING]
    async with recorded.client(fake) as client:
        result = await client.groups.get_many(keys, concurrency=3)
    assert len(result.ok) == 4
    (operation,) = recorded.spans(SpanKind.INTERNAL)
    attempts = recorded.spans(SpanKind.CLIENT)
    assert operation.name == "groups.get_many"
    assert len(attempts) == len(keys)
    assert {parent_id(span) for span in attempts} == {span_id(operation)}
    assert operation.attributes == {
        "asyncgroups.keys.requested": 5,
        "asyncgroups.keys.ok": 4,
        "asyncgroups.keys.missing": 1,
        "asyncgroups.keys.failed": 0,
    }


async def test_telemetry_span_of_a_refused_key_does_not_repeat_it(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    async with recorded.client(fake) as client:
        with pytest.raises(ValidationError):
            await client.groups.get(API_KEY)  # a secret passed by mistake
    assert recorded.named("groups.get").attributes == {"error.type": "ValidationError"}
    assert recorded.spans(SpanKind.CLIENT) == []


async def test_telemetry_operations_called_by_keyword_are_described_alike(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    key = fake.add_group("Team")
    async with recorded.client(fake) as client:
        await client.groups.get(prokey=key)
        await client.groups.get_many(prokeys=[key, key])
        with pytest.raises(TypeError, match="prokey"):
            await client.groups.get()  # type: ignore[call-arg]
    assert recorded.named("groups.get").attributes == {"asyncgroups.prokey": key}
    many = recorded.named("groups.get_many").attributes
    assert many is not None
    assert many["asyncgroups.keys.requested"] == 1


async def test_telemetry_retry_carries_resend_count_and_a_5xx_is_an_error(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    key = fake.add_group("Team")
    fake.inject(status=500, times=1, method="GET")
    async with recorded.client(fake) as client:
        await client.groups.get(key)
    first, second = sorted(recorded.spans(SpanKind.CLIENT), key=lambda span: span.start_time or 0)
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 500
    assert first.attributes["error.type"] == "500"
    assert "http.request.resend_count" not in first.attributes
    assert first.status.status_code == StatusCode.ERROR
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes
    assert recorded.named("groups.get").status.status_code == StatusCode.UNSET


async def test_telemetry_404_marks_the_attempt_and_the_operation_failed(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    async with recorded.client(fake) as client:
        with pytest.raises(NotFoundError):
            await client.groups.get(MISSING)
    (attempt,) = recorded.spans(SpanKind.CLIENT)
    operation = recorded.named("groups.get")
    assert attempt.attributes is not None
    assert operation.attributes is not None
    assert attempt.attributes["error.type"] == "404"
    assert attempt.status.status_code == StatusCode.ERROR
    assert operation.attributes["error.type"] == "NotFoundError"
    assert operation.status.status_code == StatusCode.ERROR
    (event,) = operation.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert str(event.attributes["exception.type"]).endswith("NotFoundError")


async def test_telemetry_timeout_names_the_exception_and_has_no_status_code(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    key = fake.add_group("Team")
    fake.inject(delay=1.0, times=1)
    async with recorded.client(fake, timeout=0.05, retry=None) as client:
        with pytest.raises(RequestTimeout):
            await client.groups.get(key)
    (attempt,) = recorded.spans(SpanKind.CLIENT)
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "TimeoutError"
    assert "http.response.status_code" not in attempt.attributes
    assert attempt.status.status_code == StatusCode.ERROR


async def test_telemetry_duration_histogram_counts_each_attempt_in_seconds(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    key = fake.add_group("Team")
    fake.inject(status=503, times=1, method="GET")
    async with recorded.client(fake) as client:
        await client.groups.get(key)
        await client.groups.get(key)
    points = recorded.durations()
    assert {unit for unit, _, _ in points} == {"s"}
    by_status = {attrs["http.response.status_code"]: (attrs, point) for _, attrs, point in points}
    assert sorted(by_status) == [200, 503]
    ok, failed = by_status[200], by_status[503]
    assert ok[1].count == 2
    assert failed[1].count == 1
    assert failed[0]["error.type"] == "503"
    assert tuple(ok[1].explicit_bounds) == DURATION_BUCKETS
    assert ok[0] == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": int(fake.url.split(":")[2].split("/")[0]),
        "http.response.status_code": 200,
    }


async def test_telemetry_trace_context_goes_out_per_attempt_in_the_headers(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    key = fake.add_group("Team")
    async with recorded.client(fake) as client:
        await client.groups.get(key)
        await client.groups.get(key)
    sent = [request.headers.get("traceparent") for request in fake.requests]
    expected = []
    for span in sorted(recorded.spans(SpanKind.CLIENT), key=lambda span: span.start_time or 0):
        assert span.context is not None
        ids = span.context
        expected.append(f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}")
    assert sent == expected
    assert sent[0] != sent[1]


async def test_telemetry_trace_context_never_lands_in_the_shared_headers(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    """A borrowed session's client passes one shared dict of headers with every read."""
    import aiohttp

    key = fake.add_group("Team")
    async with aiohttp.ClientSession() as session:
        client = recorded.client(fake, session=session)
        async with client:
            await client.groups.get(key)
            shared = client._pipeline._headers.read
    assert shared is not None
    assert "traceparent" not in shared
    assert fake.requests[-1].headers.get("traceparent")


async def test_telemetry_global_providers_record_and_send_nothing_until_configured(
    fake: FakeGroupsServer,
) -> None:
    """Without an SDK the global providers are no-ops: no trace context goes out."""
    key = fake.add_group("Team")
    async with local_client(fake) as client:
        assert client._pipeline.telemetry is not None  # opentelemetry-api is installed
        assert (await client.groups.get(key)).name == "Team"
    assert "traceparent" not in fake.requests[-1].headers
    assert not trace.get_current_span().get_span_context().is_valid


async def test_telemetry_without_an_sdk_still_passes_an_incoming_trace_on(
    fake: FakeGroupsServer,
) -> None:
    """A service that only propagates (no SDK) sends on the trace it was called in."""
    from opentelemetry import context
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    key = fake.add_group("Team")
    incoming = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(incoming)))
    try:
        async with local_client(fake) as client:
            await client.groups.get(key)
    finally:
        context.detach(token)
    assert fake.requests[-1].headers["traceparent"] == f"00-{0xABC:032x}-{0xDEF:016x}-01"


async def test_telemetry_no_op_providers_given_record_nothing(fake: FakeGroupsServer) -> None:
    from opentelemetry import metrics

    recorded = Recorded()
    key = fake.add_group("Team")
    async with local_client(
        fake,
        tracer_provider=trace.NoOpTracerProvider(),
        meter_provider=metrics.NoOpMeterProvider(),
    ) as client:
        await client.groups.get_many([key, MISSING])
    assert recorded.spans() == []
    assert recorded.durations() == []
    assert "traceparent" not in fake.requests[-1].headers


async def test_telemetry_iter_many_span_holds_its_attempts_but_not_the_callers_code(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    keys = [fake.add_group(f"Group {i}") for i in range(5)]
    seen_current = []
    async with recorded.client(fake) as client:
        outcomes = client.groups.iter_many(keys, concurrency=2)
        async for outcome in outcomes:
            assert outcome.ok
            seen_current.append(trace.get_current_span().get_span_context().is_valid)
    operation = recorded.named("groups.iter_many")
    attempts = recorded.spans(SpanKind.CLIENT)
    assert len(attempts) == 5
    assert {parent_id(span) for span in attempts} == {span_id(operation)}
    assert seen_current == [False] * 5
    assert operation.attributes == {"asyncgroups.keys.requested": 5, "asyncgroups.keys.ok": 5}


async def test_telemetry_iter_many_closed_early_still_ends_its_span(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    keys = [fake.add_group(f"Group {i}") for i in range(6)]
    async with (
        recorded.client(fake) as client,
        contextlib.aclosing(client.groups.iter_many(keys, concurrency=1)) as outcomes,
    ):
        async for _ in outcomes:
            break
    operation = recorded.named("groups.iter_many")
    assert operation.attributes == {"asyncgroups.keys.requested": 1, "asyncgroups.keys.ok": 1}


async def test_telemetry_list_and_iter_list_are_one_span_each_over_their_pages(
    recorded: Recorded, fake: FakeGroupsServer
) -> None:
    for i in range(3):
        fake.add_group(f"Group {i}")
    async with recorded.client(fake) as client:
        listed = await client.groups.list()
        streamed = [summary async for summary in client.groups.iter_list()]
    assert len(listed) == len(streamed) == 3
    for name in ("groups.list", "groups.iter_list"):
        operation = recorded.named(name)
        assert operation.attributes == {"asyncgroups.groups.listed": 3}
        pages = [s for s in recorded.spans(SpanKind.CLIENT) if parent_id(s) == span_id(operation)]
        assert pages
        assert all(span.name == "GET" for span in pages)
    assert len(recorded.spans(SpanKind.INTERNAL)) == 2


async def test_telemetry_spans_never_show_the_key_a_server_echoes(
    recorded: Recorded, serve: Serve
) -> None:
    async def echo(request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "")
        return web.Response(status=500, text=f"upstream refused key {key} ({key.upper()})")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    url = await serve(app)
    async with recorded.client(url, retry=NO_WAIT) as client:
        with pytest.raises(ServerError):
            await client.groups.get(MISSING)
        await client.groups.get_many([MISSING])
    spans = recorded.spans()
    assert len(spans) == 2 + 3 * 2  # two operations, three attempts each
    shown = []
    for span in spans:
        shown += [str(value) for value in (span.attributes or {}).values()]
        shown.append(span.status.description or "")
        for event in span.events:
            shown += [str(value) for value in (event.attributes or {}).values()]
    assert any("upstream refused key" in text for text in shown)  # the message is there
    assert not [text for text in shown if SecretMasker([API_KEY]).leaks(text)]


async def test_telemetry_provider_of_the_wrong_kind_is_refused_before_any_request() -> None:
    with pytest.raises(ValidationError, match="tracer_provider must be an OpenTelemetry"):
        GroupsClient(api_key=API_KEY, tracer_provider="console")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="meter_provider") as caught:
        GroupsClient(api_key=API_KEY, meter_provider=TracerProvider())  # type: ignore[arg-type]
    assert caught.value.field == "meter_provider"


def test_telemetry_docs_example_runs_as_written() -> None:
    page = (Path(__file__).parent.parent / "docs" / "observability.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    example = next(block for block in blocks if "InMemorySpanExporter" in block)
    run = subprocess.run(  # noqa: S603 - this interpreter, the page's own example
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=True
    )
    lines = run.stdout.splitlines()
    assert lines[0] == "BulkResult(ok=3, missing=1, failed=0)"
    assert sorted(lines[1:5]) == ["CLIENT GET 200"] * 3 + ["CLIENT GET 404"]
    assert lines[5].split() == ["INTERNAL", "groups.get_many"]
    assert [line.split()[:2] for line in lines[6:]] == [["http.client.request.duration", "s"]] * 2


async def test_telemetry_older_api_without_bucket_advice_still_measures_in_seconds(
    fake: FakeGroupsServer,
) -> None:
    """opentelemetry-api before 1.23 takes no `explicit_bucket_boundaries_advisory`."""
    from opentelemetry.sdk.metrics import Meter

    class OldMeter(Meter):
        def create_histogram(  # type: ignore[override]
            self, name: str, unit: str = "", description: str = ""
        ) -> Any:
            return super().create_histogram(name, unit, description)

    recorded = Recorded()
    old = recorded.meter_provider.get_meter("asyncgroups")
    old.__class__ = OldMeter
    provider = recorded.meter_provider
    provider.get_meter = lambda *_, **__: old  # type: ignore[method-assign]
    key = fake.add_group("Team")
    async with recorded.client(fake) as client:
        await client.groups.get(key)
    [(unit, attributes, point)] = recorded.durations()
    assert unit == "s"
    assert attributes["http.response.status_code"] == 200
    assert point.count == 1
    assert tuple(point.explicit_bounds) != DURATION_BUCKETS  # the SDK's own
    recorded.shutdown()
