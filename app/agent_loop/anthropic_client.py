"""`ModelClient` on the real `anthropic` SDK: the hosted API, a compatible gateway, or any server
speaking the Messages API (mas's own offline endpoint included)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import anthropic
import httpx2
from anthropic.lib.streaming import AsyncMessageStream

from app.agent_loop.cassettes.transport import CassetteLibrary, CassetteTransport
from app.agent_loop.model_client import (
    MessageComplete,
    ModelConnectionError,
    ModelError,
    ModelEvent,
    ModelRequest,
    ModelServerError,
    ModelUsage,
    RetryableModelError,
    TextDelta,
    TextStart,
    ThinkingStart,
    ToolUseComplete,
    error_class_for,
)
from app.config import Settings
from app.events.types import ContentBlock, StopDetails

CASSETTE_API_KEY = "mas-cassette"  # replaying needs no key; the SDK wants one all the same

# Mid-stream `error` events arrive on a 200 response; their type tells us which status they stand for.
_STATUS_BY_ERROR_TYPE = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
}
_COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "thinking", "tool_choice", "cache_control")


class AnthropicModelClient:
    """Streams Messages API responses as `ModelEvent`s. SDK retries are off: the loop retries itself."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout_seconds: float = 600.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_seconds,
            http_client=http_client,
        )

    @asynccontextmanager
    async def stream(self, request: ModelRequest) -> AsyncIterator[AsyncIterator[ModelEvent]]:
        # Leaving the SDK's context closes the HTTP response, also on cancellation; our generator
        # is closed first so nothing is left suspended on it.
        with _mapped_errors():
            async with self._client.messages.stream(**request.to_params()) as raw:
                events = _translate(raw)
                try:
                    yield events
                finally:
                    await events.aclose()

    async def count_tokens(self, request: ModelRequest) -> int:
        params = request.to_params()
        with _mapped_errors():
            result = await self._client.messages.count_tokens(
                **{key: params[key] for key in _COUNT_TOKENS_FIELDS if key in params}
            )
        return result.input_tokens

    async def aclose(self) -> None:
        await self._client.close()


def create_cassette_client(
    settings: Settings, cassettes: CassetteLibrary | None = None
) -> AnthropicModelClient:
    """The SDK client in the record/replay modes: requests go through the cassette library
    (`cassettes`, or a library made from the settings), recording from the upstream base URL."""
    mode = settings.cassette_mode()
    assert mode is not None  # the caller checked
    library = cassettes or CassetteLibrary(settings.cassette_dir, settings.cassette, mode)
    upstream = None if mode == "replay" else httpx2.AsyncHTTPTransport()
    transport = CassetteTransport(library, upstream)
    return AnthropicModelClient(
        api_key=settings.anthropic_api_key or CASSETTE_API_KEY,
        base_url=settings.anthropic_base_url,
        timeout_seconds=settings.model_timeout_seconds,
        http_client=httpx2.AsyncClient(transport=transport, timeout=settings.model_timeout_seconds),
    )


async def _translate(raw: AsyncMessageStream[Any]) -> AsyncGenerator[ModelEvent, None]:
    with _mapped_errors():
        async for event in raw:
            translated = _translate_event(event)
            if translated is not None:
                yield translated
            if isinstance(translated, MessageComplete):
                return
    raise ModelConnectionError("the model stream ended before message_stop")


def _translate_event(event: Any) -> ModelEvent | None:
    if event.type == "content_block_start":
        block_type = event.content_block.type
        if block_type == "text":
            return TextStart(index=event.index)
        if block_type in ("thinking", "redacted_thinking"):
            return ThinkingStart(index=event.index)
    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
        return TextDelta(index=event.index, text=event.delta.text)
    elif event.type == "content_block_stop" and event.content_block.type == "tool_use":
        block = event.content_block
        return ToolUseComplete(index=event.index, id=block.id, name=block.name, input=dict(block.input))
    elif event.type == "message_stop":
        return _final_message(event.message)
    return None


def _final_message(message: Any) -> MessageComplete:
    # The SDK's blocks as the plain dicts the loop records and sends back (each has its `type`).
    content = cast(
        list[ContentBlock], [block.model_dump(mode="json", exclude_none=True) for block in message.content]
    )
    return MessageComplete(
        message_id=message.id,
        model=message.model,
        content=content,
        stop_reason=message.stop_reason or "end_turn",
        usage=_usage(message.usage),
        stop_details=_refusal_details(message),
    )


def _refusal_details(message: Any) -> StopDetails | None:
    """The part of a refusal's ``stop_details`` a session reports (no fallback-credit fields)."""
    details = getattr(message, "stop_details", None)
    if details is None:
        return None
    return {"type": "refusal", "category": details.category, "explanation": details.explanation}


def _usage(usage: Any) -> ModelUsage:
    breakdown = usage.cache_creation
    return ModelUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_creation_5m_input_tokens=breakdown.ephemeral_5m_input_tokens if breakdown else 0,
        cache_creation_1h_input_tokens=breakdown.ephemeral_1h_input_tokens if breakdown else 0,
    )


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except anthropic.APIStatusError as exc:
        raise _status_error(exc) from exc
    except (anthropic.APIConnectionError, httpx2.TransportError) as exc:
        raise ModelConnectionError(f"model connection failed: {exc}") from exc
    except anthropic.APIResponseValidationError as exc:
        raise ModelServerError(f"unexpected model response: {exc}", status=exc.status_code) from exc


def _status_error(exc: anthropic.APIStatusError) -> ModelError:
    error_type, message = _error_body(exc.body, str(exc))
    status = exc.status_code
    if status < 400:
        status = _STATUS_BY_ERROR_TYPE.get(error_type or "", 400)
    error_class = error_class_for(status)
    error = error_class(message, status=status, error_type=error_type, request_id=exc.request_id)
    if isinstance(error, RetryableModelError):
        error.retry_after = _retry_after(exc.response.headers.get("retry-after"))
    return error


def _error_body(body: object, fallback: str) -> tuple[str | None, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, fallback
    return error.get("type"), str(error.get("message") or fallback)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
