"""Log lines: JSON (one object per line) or readable text, each carrying the request id, session
id and worker id of the work it was logged from (`app.observability.context`), and the trace and
span ids when tracing is on.

`configure` installs one handler on the root logger, so mas's, uvicorn's and the libraries' lines
come out alike; uvicorn is started without a logging config of its own.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Literal

from opentelemetry import trace

from app.observability.context import request_id_var, session_id_var, worker_id_var

LogFormat = Literal["text", "json"]
CONTEXT_FIELDS = ("request_id", "session_id", "worker_id", "trace_id", "span_id")


class ContextFilter(logging.Filter):
    """Puts the context of the line on the record (`record.session_id`, ...; empty when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        found = {
            "request_id": request_id_var.get(),
            "session_id": session_id_var.get(),
            "worker_id": worker_id_var.get(),
            "trace_id": format(span.trace_id, "032x") if span.is_valid else "",
            "span_id": format(span.span_id, "016x") if span.is_valid else "",
        }
        for name, value in found.items():
            if not getattr(record, name, ""):  # a value given with `extra=` wins
                setattr(record, name, value)
        return True


def _context(record: logging.LogRecord) -> dict[str, str]:
    return {name: value for name in CONTEXT_FIELDS if (value := getattr(record, name, ""))}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-11-30 04:12:00,123 INFO app.worker.service: message [session_id=sesn_... worker_id=...]`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        if not context:
            return text
        head, newline, rest = text.partition("\n")  # after the message, before a traceback
        tags = " ".join(f"{k}={v}" for k, v in context.items())
        return f"{head} [{tags}]{newline}{rest}"


def handler(fmt: LogFormat, stream: IO[str] | None = None) -> logging.Handler:
    """A handler that writes lines of ``fmt`` with their context."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(ContextFilter())
    out.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return out


def configure(level: str, fmt: LogFormat) -> None:
    """The process's logging: one handler on the root logger, replacing any there."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(fmt))
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()  # their lines reach the root handler
        logging.getLogger(name).propagate = True
