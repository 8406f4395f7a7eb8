"""Per-request context: the request id, set by the middleware, read by the error renderer (and
by every log line; see `app.observability.context`)."""

from __future__ import annotations

from starlette.requests import Request

from app.ids import new_id
from app.observability.context import request_id_var, session_id_var

__all__ = ["bind_log_context", "current_request_id", "new_request_id", "request_id_var"]


def new_request_id() -> str:
    return new_id("req")


def current_request_id() -> str:
    return request_id_var.get() or new_request_id()


def bind_log_context(request: Request) -> None:
    """Every line logged while serving a session's route names the session (`v1_checks`)."""
    session_id = request.path_params.get("session_id")
    if isinstance(session_id, str):
        session_id_var.set(session_id)
