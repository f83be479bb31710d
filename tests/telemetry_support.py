"""What the OpenTelemetry tests share: providers of their own, read back in memory."""

from __future__ import annotations

from typing import Any

from conftest import local_client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from asyncgroups import GroupsClient
from asyncgroups.testing import FakeGroupsServer

__all__ = ["Recorded", "parent_id", "span_id"]


class Recorded:
    """A tracer provider and a meter provider of their own, and what they recorded."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def client(self, server: FakeGroupsServer | str, **kwargs: Any) -> GroupsClient:
        return local_client(
            server,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **kwargs,
        )

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [span for span in spans if kind is None or span.kind == kind]

    def named(self, name: str) -> ReadableSpan:
        (span,) = [span for span in self.spans() if span.name == name]
        return span

    def durations(self) -> list[tuple[str | None, dict[str, Any], HistogramDataPoint]]:
        """The duration histogram's points: (unit, attributes, point)."""
        data = self.reader.get_metrics_data()
        found: list[tuple[str | None, dict[str, Any], HistogramDataPoint]] = []
        for resource in data.resource_metrics if data is not None else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "http.client.request.duration":
                        for point in metric.data.data_points:
                            assert isinstance(point, HistogramDataPoint)
                            found.append((metric.unit, dict(point.attributes or {}), point))
        return found

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)
