"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer the SSE stream)."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.context import new_request_id, request_id_var
from app.errors import ApiError
from app.observability import tracing
from app.observability.metrics import HTTP_REQUESTS
from app.observability.tracing import ServerSpan

log = logging.getLogger(__name__)
access = logging.getLogger("mas.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/sessions/{session_id}`): a bounded label, never an
    id. Rebuilt from the path and its parameters (an included router's route knows only its own
    part of the path)."""
    if scope.get("route") is None:
        return "unmatched"
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    path: str = scope["path"]
    if not params:
        return path
    return "/".join(f"{{{params[part]}}}" if part in params else part for part in path.split("/"))


class RequestIdMiddleware:
    """Gives every request an id, returned as the `request-id` header, and times it by route
    template and status (`mas_http_request_duration_seconds`) when ``metrics`` is on.

    It also turns an unhandled exception into the error envelope (a 500 `api_error`) so that
    even a bug answers in the API's format, with the request id, instead of a bare text body.
    """

    def __init__(self, app: ASGIApp, metrics: bool = True, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = new_request_id()
        token = request_id_var.set(request_id)
        raw_id = request_id.encode()
        status = 500

        started = False
        server_span = ServerSpan(scope["method"], scope["headers"]) if tracing.enabled() else None

        async def send_with_id(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
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
            elapsed = time.perf_counter() - started_at
            if self.metrics:
                labels = (scope["method"], route_template(scope), str(status))
                HTTP_REQUESTS.labels(*labels).observe(elapsed)
            if self.access_log:
                _log_access(scope, status, elapsed)
            if server_span is not None:
                server_span.end(route_template(scope), status, request_id)
            request_id_var.reset(token)


def _log_access(scope: Scope, status: int, elapsed: float) -> None:
    session_id = (scope.get("path_params") or {}).get("session_id", "")
    query = f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else ""
    access.info(
        "%s %s%s %d %.1f ms",
        scope["method"],
        scope["path"],
        query,
        status,
        elapsed * 1000,
        extra={"session_id": session_id},
    )


async def _send_internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(ApiError("Internal server error").body(request_id)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
