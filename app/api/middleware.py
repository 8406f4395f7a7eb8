"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer the SSE stream)."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.context import new_request_id, request_id_var
from app.errors import ApiError

log = logging.getLogger(__name__)


class RequestIdMiddleware:
    """Gives every request an id, returned as the `request-id` header.

    It also turns an unhandled exception into the error envelope (a 500 `api_error`) so that
    even a bug answers in the API's format, with the request id, instead of a bare text body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        token = request_id_var.set(request_id)
        raw_id = request_id.encode()

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"request-id"]
                message["headers"] = [*headers, (b"request-id", raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_internal_error(send_with_id, request_id)
        finally:
            request_id_var.reset(token)


async def _send_internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(ApiError("Internal server error").body(request_id)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
