"""Measuring a piece of work: one `with` block records its metrics (and, with tracing on, its span).

The agent loop and the sandbox say what they do (`tool_call("bash")`); this module decides what
is recorded about it, so instrumentation stays one line at each site.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.trace import Status, StatusCode

from app.observability import tracing
from app.observability.metrics import IMAGE_BUILDS, SANDBOX_STARTS, TOOL_CALLS

BUILT_IN_TOOLS = frozenset({"bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search"})


@dataclass
class Outcome:
    """What the block sets before it ends; a block that raises is recorded as ``error``."""

    value: str = "error"


def tool_label(event_type: str, name: str) -> str:
    """A bounded label: the built-in tool's name, else its family (`mcp`, `custom`)."""
    if event_type == "agent.mcp_tool_use":
        return "mcp"
    return name if name in BUILT_IN_TOOLS else "custom"


@contextmanager
def tool_call(event_type: str, name: str) -> Iterator[Outcome]:
    """One tool call mas runs (``name`` as the model called it)."""
    outcome = Outcome()
    started = time.perf_counter()
    attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    with tracing.span(f"execute_tool {name}", attributes) as span:
        try:
            yield outcome
        finally:
            elapsed = time.perf_counter() - started
            TOOL_CALLS.labels(tool_label(event_type, name), outcome.value).observe(elapsed)
            if outcome.value == "error":
                span.set_status(Status(StatusCode.ERROR))


@contextmanager
def sandbox_start() -> Iterator[Outcome]:
    """Set ``value`` to the start's kind: warm, cold or restart; a failed start is not recorded."""
    outcome = Outcome("")
    started = time.perf_counter()
    with tracing.span("sandbox.start") as span:
        yield outcome
        if outcome.value:
            SANDBOX_STARTS.labels(outcome.value).observe(time.perf_counter() - started)
            span.set_attribute("mas.sandbox.start", outcome.value)


@contextmanager
def sandbox_exec(tool: str) -> Iterator[None]:
    with tracing.span(f"sandbox.exec {tool}", {"gen_ai.tool.name": tool}):
        yield


@contextmanager
def image_build() -> Iterator[None]:
    started = time.perf_counter()
    outcome = "failed"
    with tracing.span("sandbox.image_build"):
        try:
            yield
            outcome = "built"
        finally:
            IMAGE_BUILDS.labels(outcome).observe(time.perf_counter() - started)
