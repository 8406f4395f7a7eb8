"""A `ModelClient` around another that measures every request: its duration and outcome (ok, or
the error's type), and the tokens of its response (`mas_model_*` metrics, a `chat MODEL` span)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.trace import Span

from app.agent_loop.model_client import MessageComplete, ModelClient, ModelError, ModelEvent, ModelRequest
from app.observability import tracing
from app.observability.metrics import MODEL_REQUESTS, MODEL_TOKENS


def error_label(error: BaseException) -> str:
    """The API's error type when it sent one (`overloaded_error`), else the failure's kind."""
    if isinstance(error, ModelError) and error.error_type:
        return error.error_type
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return type(error).__name__


class _Watched:
    """The inner stream's events, unchanged; notes the final message as it passes."""

    def __init__(self, events: AsyncIterator[ModelEvent]) -> None:
        self._events = events
        self.final: MessageComplete | None = None

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> ModelEvent:
        event = await self._events.__anext__()
        if isinstance(event, MessageComplete):
            self.final = event
        return event


def _count_tokens(model: str, final: MessageComplete) -> None:
    usage = final.usage
    for kind, tokens in (
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_input_tokens),
        ("cache_creation", usage.cache_creation_input_tokens),
    ):
        if tokens:
            MODEL_TOKENS.labels(model, kind).inc(tokens)


def _describe(span: Span, final: MessageComplete) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", final.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", final.usage.output_tokens)
    span.set_attribute("gen_ai.usage.cache_read_input_tokens", final.usage.cache_read_input_tokens)
    span.set_attribute("gen_ai.usage.cache_creation_input_tokens", final.usage.cache_creation_input_tokens)
    if final.stop_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [final.stop_reason])


class MeteredModelClient:
    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner

    @asynccontextmanager
    async def stream(self, request: ModelRequest) -> AsyncIterator[AsyncIterator[ModelEvent]]:
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": request.model}
        with tracing.span(f"chat {request.model}", attributes) as span:
            started = time.perf_counter()
            outcome = "incomplete"  # left before the final message (an interrupt)
            watched: _Watched | None = None
            try:
                async with self.inner.stream(request) as events:
                    watched = _Watched(events)
                    yield watched
            except BaseException as error:
                outcome = error_label(error)
                raise
            finally:
                if watched is not None and watched.final is not None:
                    outcome = "ok"
                    _count_tokens(request.model, watched.final)
                    _describe(span, watched.final)
                MODEL_REQUESTS.labels(request.model, outcome).observe(time.perf_counter() - started)

    async def count_tokens(self, request: ModelRequest) -> int:
        return await self.inner.count_tokens(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
