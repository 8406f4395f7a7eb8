"""Per-request context: the request id, set by the middleware, read by the error renderer."""

from __future__ import annotations

from contextvars import ContextVar

from app.ids import new_id

request_id_var: ContextVar[str] = ContextVar("request_id", default="")


def new_request_id() -> str:
    return new_id("req")


def current_request_id() -> str:
    return request_id_var.get() or new_request_id()
