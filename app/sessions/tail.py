"""`mas sessions tail`'s rendering: one session event as a few readable terminal lines.

Messages in full, tool calls with a preview of their input and output, errors with their type and
retry status, model requests with their duration and tokens (a span's end is timed against its
start, which the renderer remembers), status changes with their reason. An answer being written
is shown as it streams (the `agent.message` deltas), and not again when the finished message
arrives."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from typing_extensions import TypeIs

from app.events.notifier import PreviewFrame
from app.events.types import ErrorObject, EventRecord
from app.shared.content import ContentBlock

PREVIEW_CHARS = 300
PREVIEW_LINES = 8
INDENT = "    "


# What `mas sessions tail` reads from the stream: a persisted event or a preview frame.
Frame = EventRecord | PreviewFrame


def is_preview(frame: Frame) -> TypeIs[PreviewFrame]:
    return frame["type"] in ("event_start", "event_delta")


def text_of(content: list[ContentBlock] | None) -> str:
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(f"[{block.get('type', 'block')}]")
    return "\n".join(parts)


def preview(text: str) -> str:
    """At most PREVIEW_LINES lines and PREVIEW_CHARS characters, saying how much was cut."""
    lines = text.splitlines() or [""]
    shown = "\n".join(lines[:PREVIEW_LINES])
    if len(shown) > PREVIEW_CHARS:
        shown = shown[:PREVIEW_CHARS]
    cut = len(text) - len(shown)
    return shown + (f" … (+{cut} chars)" if cut > 0 else "")


def indented(text: str) -> str:
    return "\n".join(INDENT + line for line in text.splitlines() or [""])


# JSON boundary: a tool's input, chosen by the model.
def _input_preview(name: str, tool_input: dict[str, Any]) -> str:
    if name == "bash" and isinstance(tool_input.get("command"), str):
        return preview(str(tool_input["command"]))
    return preview(json.dumps(tool_input, ensure_ascii=False))


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class Renderer:
    """Turns events into terminal text; stateful to time model requests (start → end) and to
    continue the answer being streamed."""

    def __init__(self) -> None:
        self.request_started: dict[str, datetime] = {}
        self.preview_id: str | None = None  # the agent.message being streamed, shown so far
        self.preview_text = ""
        self.preview_index: int | None = None

    def feed(self, frame: Frame) -> str:
        """What to write for one stream frame (a persisted event or a delta), newlines included."""
        if is_preview(frame):
            starts = frame["type"] == "event_start"
            return self._preview_start(frame) if starts else self._preview_delta(frame)
        kind = frame["type"]
        closing = ""
        if self.preview_id is not None:
            same = kind == "agent.message" and frame.get("id") == self.preview_id
            shown = self.preview_text
            self.preview_id = None
            if same and text_of(frame.get("content")) == shown:
                return "\n"  # the whole answer is on the screen already
            closing = "\n"
        line = self.render(frame)
        return closing + (f"{line}\n" if line is not None else "")

    def _preview_start(self, frame: PreviewFrame) -> str:
        target = frame.get("event")
        if target is None or target["type"] != "agent.message":
            return ""
        closing = "\n" if self.preview_id is not None else ""
        self.preview_id, self.preview_text, self.preview_index = target["id"], "", None
        return f"{closing}{datetime.now(UTC):%H:%M:%S} agent\n{INDENT}"

    def _preview_delta(self, frame: PreviewFrame) -> str:
        delta = frame.get("delta")
        if delta is None or frame.get("event_id") != self.preview_id or delta["content"]["type"] != "text":
            return ""
        text = str(delta["content"].get("text", ""))
        if self.preview_index is not None and delta["index"] != self.preview_index:
            text = "\n" + text  # the next text block of the same message
        self.preview_index = delta["index"]
        self.preview_text += text
        return text.replace("\n", "\n" + INDENT)

    def render(self, event: EventRecord) -> str | None:
        kind = event["type"]
        stamp = str(event.get("processed_at") or "")[11:19]
        body = self._body(kind, event)
        return None if body is None else f"{stamp} {body}"

    def _body(self, kind: str, event: EventRecord) -> str | None:
        method = getattr(self, "_" + kind.replace(".", "_"), None)
        if method is not None:
            result: str | None = method(event)
            return result
        return kind  # a kind without its own rendering still shows that it happened

    def _user_message(self, event: EventRecord) -> str:
        return "user\n" + indented(text_of(event.get("content")))

    def _agent_message(self, event: EventRecord) -> str:
        return "agent\n" + indented(text_of(event.get("content")))

    def _system_message(self, event: EventRecord) -> str:
        return "system\n" + indented(preview(text_of(event.get("content"))))

    def _agent_thinking(self, event: EventRecord) -> str:
        return "agent is thinking"

    def _agent_tool_use(self, event: EventRecord) -> str:
        name = str(event.get("name"))
        ask = " (waiting for confirmation)" if event.get("evaluated_permission") == "ask" else ""
        return f"tool {name}{ask}\n" + indented(_input_preview(name, event.get("input") or {}))

    def _agent_mcp_tool_use(self, event: EventRecord) -> str:
        name = f"{event.get('mcp_server_name')}/{event.get('name')}"
        return f"mcp tool {name}\n" + indented(_input_preview(name, event.get("input") or {}))

    def _agent_custom_tool_use(self, event: EventRecord) -> str:
        name = str(event.get("name"))
        return f"custom tool {name} (waiting for its result)\n" + indented(
            _input_preview(name, event.get("input") or {})
        )

    def _result(self, label: str, event: EventRecord) -> str:
        flag = " (error)" if event.get("is_error") else ""
        return f"{label}{flag}\n" + indented(preview(text_of(event.get("content")) or "(no output)"))

    def _agent_tool_result(self, event: EventRecord) -> str:
        return self._result("tool result", event)

    def _agent_mcp_tool_result(self, event: EventRecord) -> str:
        return self._result("mcp tool result", event)

    def _user_custom_tool_result(self, event: EventRecord) -> str:
        return self._result("custom tool result", event)

    def _user_tool_result(self, event: EventRecord) -> str:
        return self._result("tool result (self-hosted)", event)

    def _user_tool_confirmation(self, event: EventRecord) -> str:
        why = f": {event['deny_message']}" if event.get("deny_message") else ""
        return f"user answered {event.get('result')}{why}"

    def _user_interrupt(self, event: EventRecord) -> str:
        return "user interrupted"

    def _session_status_running(self, event: EventRecord) -> str:
        return "-- running"

    def _session_status_idle(self, event: EventRecord) -> str:
        stop = event.get("stop_reason")
        return f"-- idle ({stop['type'] if stop else 'end_turn'})"

    def _session_status_rescheduled(self, event: EventRecord) -> str:
        return "-- rescheduled (a retry after a transient failure)"

    def _session_status_terminated(self, event: EventRecord) -> str:
        return "-- terminated"

    def _session_deleted(self, event: EventRecord) -> str:
        return "-- session deleted"

    def _session_error(self, event: EventRecord) -> str:
        error = event.get("error")
        if error is None:
            return "ERROR"
        # A session.error's error (EventRecord's `error` also covers a workflow run's).
        retry = cast(ErrorObject, error).get("retry_status", {"type": "?"})["type"]
        return f"ERROR {error['type']} ({retry}): {error['message']}"

    def _session_usage(self, event: EventRecord) -> str:
        usage = event.get("usage")
        tokens = (usage.get("input_tokens", 0), usage.get("output_tokens", 0)) if usage else (0, 0)
        return f"usage: in {tokens[0]} · out {tokens[1]}"

    def _span_model_request_start(self, event: EventRecord) -> None:
        started = _time(event.get("processed_at"))
        if started is not None:
            self.request_started[str(event.get("id"))] = started
        return None  # shown once, with its duration, when it ends

    def _span_model_request_end(self, event: EventRecord) -> str:
        started = self.request_started.pop(str(event.get("model_request_start_id")), None)
        ended = _time(event.get("processed_at"))
        took = f"{(ended - started).total_seconds():.2f}s" if started and ended else "?s"
        usage = event.get("model_usage")
        tokens = (
            f"in {usage['input_tokens']} · out {usage['output_tokens']}"
            f" · cache read {usage['cache_read_input_tokens']}"
            f" · cache write {usage['cache_creation_input_tokens']}"
            if usage
            else "in 0 · out 0 · cache read 0 · cache write 0"
        )
        failed = " FAILED" if event.get("is_error") else ""
        return f"model request{failed} {took} ({tokens})"
