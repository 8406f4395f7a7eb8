"""OpenTelemetry traces: API request -> turn -> model request -> tool call -> sandbox.

Off unless `MAS_OTLP_ENDPOINT` is set: then `configure` installs a tracer provider that exports
over OTLP/HTTP (protobuf) in batches. Off, every span here is the API's no-op span and `enabled()`
lets callers skip work they would do only for a span (a database read of the trace parent).

A turn runs in a worker, perhaps another process, after the request that asked for it has
answered: the request's W3C `traceparent` is kept on the session (`traceparent()`), and the
worker's turn span continues that trace (`context_of`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:  # the SDK is imported only when tracing is configured
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
# The process's provider and tracer once `configure` ran; mas's own (the global OpenTelemetry
# provider is left to the embedding application).
@dataclass
class _State:
    enabled: bool = False
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    provider: TracerProvider | None = None


_state = _State()


def configure(endpoint: str | None, service_name: str, sample_ratio: float) -> None:
    """Export spans to ``endpoint`` (an OTLP/HTTP base URL, `/v1/traces` is added)."""
    if not endpoint or _state.enabled:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    url = endpoint.rstrip("/") + "/v1/traces"
    exporter = OTLPSpanExporter(endpoint=url)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    _state.enabled, _state.provider, _state.tracer = True, provider, provider.get_tracer("mas")
    log.info("tracing: exporting spans to %s", url)


def shutdown() -> None:
    """Flush the spans still batched and stop tracing (the process stops)."""
    provider, _state.provider = _state.provider, None
    _state.enabled, _state.tracer = False, trace.NoOpTracer()
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _state.enabled


def traceparent() -> str | None:
    """The current span's W3C `traceparent`, to continue its trace elsewhere (None: no span)."""
    if not _state.enabled:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(parent: str | None) -> Context | None:
    """The context a `traceparent` (stored, or a request header) continues; None: a new trace."""
    if not parent:
        return None
    return _PROPAGATOR.extract({"traceparent": parent})


Attributes = Mapping[str, str | int | float | bool]


@contextmanager
def span(
    name: str, attributes: Attributes | None = None, *, parent: Context | None = None
) -> Iterator[Span]:
    """A span around the block, current inside it; an exception marks it as an error."""
    if not _state.enabled:
        yield trace.INVALID_SPAN
        return
    with _state.tracer.start_as_current_span(name, context=parent, attributes=attributes) as current:
        yield current


class ServerSpan:
    """The span of one HTTP request, for the pure ASGI middleware: started before routing, named
    after it (`POST /v1/sessions/{session_id}/events`), continuing an incoming `traceparent`."""

    def __init__(self, method: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.method = method
        parent = None
        for name, value in headers:
            if name == b"traceparent":
                parent = context_of(value.decode("latin-1"))
        self.span = _state.tracer.start_span(f"HTTP {method}", context=parent, kind=SpanKind.SERVER)
        self.span.set_attribute("http.request.method", method)
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def end(self, route: str, status: int, request_id: str) -> None:
        self.span.update_name(f"{self.method} {route}")
        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        self.span.set_attribute("mas.request_id", request_id)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))
        otel_context.detach(self._token)
        self.span.end()
