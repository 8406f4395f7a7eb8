"""What a log line is about: the request, the session and the worker, carried in context variables
so that every line logged while handling them says so (asyncio tasks inherit them)."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
session_id_var: ContextVar[str] = ContextVar("session_id", default="")
worker_id_var: ContextVar[str] = ContextVar("worker_id", default="")
