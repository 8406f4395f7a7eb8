"""HTTP face of the offline model: `POST /v1/messages` (JSON or SSE) and `/v1/messages/count_tokens`.

The router renders its own errors in the Anthropic envelope (with a `request-id` header) so it
behaves like the real API whichever app mounts it. `mas serve` mounts `router`; tests and users
can run `create_offline_app()` alone. State (engine, stream counters) lives on `app.state.offline`
and is created from the settings on first use unless the app set it up already.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import JsonValue
from starlette.types import Send

from app.api.context import current_request_id
from app.config import Settings, get_settings
from app.offline.engine import OfflineEngine, OfflineError, OfflineReply
from app.offline.messages import OfflineMessage
from app.offline.sse import error_frame, message_frames

router = APIRouter(tags=["offline model"])


@dataclass
class OfflineState:
    engine: OfflineEngine
    streams_open: int = 0
    client_disconnects: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> OfflineState:
        return cls(
            engine=OfflineEngine(script_path=settings.offline_script, script_dir=settings.offline_script_dir)
        )


class _StreamCut(Exception):
    """Raised by a body iterator to drop the connection mid-response (the `cut` fault)."""


class _CuttableStreamingResponse(StreamingResponse):
    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except _StreamCut:
            # Never finishing the body makes the server close the connection: the client sees
            # a truncated response, exactly like a network failure mid-stream.
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def get_offline_state(request: Request) -> OfflineState:
    state = getattr(request.app.state, "offline", None)
    if state is None:
        state = request.app.state.offline = OfflineState.from_settings(get_settings())
    return state


OfflineStateDep = Annotated[OfflineState, Depends(get_offline_state)]


@router.post("/v1/messages")
async def create_message(request: Request, state: OfflineStateDep) -> Response:
    """Create a message with the offline model (Messages API compatible)."""
    return await _answer(request, lambda body, request_id: _message_response(state, body, request_id))


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request, state: OfflineStateDep) -> Response:
    """Count input tokens the offline model way (ceil(chars / 4) per block)."""
    return await _answer(request, lambda body, _: _count_response(state, body))


def create_offline_app(engine: OfflineEngine | None = None) -> FastAPI:
    app = FastAPI(title="mas offline model")
    app.include_router(router)
    app.state.offline = OfflineState(engine=engine or OfflineEngine())
    return app


async def _answer(
    request: Request,
    build: Callable[[dict[str, JsonValue], str], Awaitable[Response]],
) -> Response:
    """Runs `build` and renders an `OfflineError` in the API's envelope, sharing one request id."""
    # Behind mas's middleware this is the id it puts in the `request-id` header; alone, a new one.
    request_id = current_request_id()
    try:
        response = await build(await _json_body(request), request_id)
    except OfflineError as exc:
        response = _error_response(exc, request_id)
    response.headers["request-id"] = request_id
    return response


async def _json_body(request: Request) -> dict[str, JsonValue]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OfflineError(400, "invalid_request_error", f"request body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise OfflineError(400, "invalid_request_error", "request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise OfflineError(400, "invalid_request_error", "request body must be a JSON object")
    return body


async def _message_response(
    state: OfflineState,
    body: dict[str, JsonValue],
    request_id: str,
) -> Response:
    reply = state.engine.respond(body)
    if body.get("stream") is True:
        return _CuttableStreamingResponse(_sse_body(state, reply, request_id), media_type="text/event-stream")
    await asyncio.sleep(reply.sleep_ms / 1000)
    if reply.stream_fault == "cut":
        return _CuttableStreamingResponse(_truncated_json(reply.message), media_type="application/json")
    if reply.stream_fault == "stream_overloaded":
        raise OfflineError(529, "overloaded_error", "Overloaded (offline fault injection).")
    return JSONResponse(reply.message)


async def _count_response(
    state: OfflineState,
    body: dict[str, JsonValue],
) -> Response:
    return JSONResponse({"input_tokens": state.engine.count_tokens(body)})


async def _sse_body(state: OfflineState, reply: OfflineReply, request_id: str) -> AsyncIterator[bytes]:
    """Streams the frames; `/sleep` is spread over the deltas so the stream is slow but cancellable."""
    frames = list(message_frames(reply.message))
    deltas = sum(frame.is_delta for frame in frames)
    state.streams_open += 1
    try:
        await asyncio.sleep(0 if deltas else reply.sleep_ms / 1000)
        for frame in frames:
            if frame.is_delta:
                await asyncio.sleep(reply.sleep_ms / 1000 / deltas)
            yield frame.encode()
            if frame.is_delta and reply.stream_fault is not None:
                yield _stream_fault_frame(reply, request_id)
                return
    except (asyncio.CancelledError, GeneratorExit):
        state.client_disconnects += 1
        raise
    finally:
        state.streams_open -= 1


def _stream_fault_frame(reply: OfflineReply, request_id: str) -> bytes:
    """After the first delta: drop the connection (`cut`) or send an overloaded `error` event."""
    if reply.stream_fault == "cut":
        raise _StreamCut()
    return error_frame("overloaded_error", "Overloaded (offline fault injection).", request_id).encode()


async def _truncated_json(message: OfflineMessage) -> AsyncIterator[bytes]:
    raw = json.dumps(message).encode()
    yield raw[: len(raw) // 2]
    raise _StreamCut()


def _error_response(exc: OfflineError, request_id: str) -> JSONResponse:
    error = {"type": exc.error_type, "message": exc.message}
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after is not None else None
    body = {"type": "error", "error": error, "request_id": request_id}
    return JSONResponse(body, status_code=exc.status, headers=headers)
