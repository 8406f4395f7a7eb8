"""The offline model: a deterministic Messages API responder (no HTTP here; see `endpoints.py`).

`OfflineEngine.respond(body)` turns a Messages API request body into the response message, or
raises `OfflineError` (the status and error type the HTTP layer renders). The engine keeps only
in-memory state: the simulated prompt cache and per-request fault attempt counters. What it
answers is documented in the README section "The offline model".
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from pydantic import JsonValue

from app.events.types import StopDetails
from app.offline import grading, judging, replies
from app.offline.directives import Directives, Fault, Refusal, parse_directives
from app.offline.messages import MessagesBody, OfflineMessage, OfflineUsage
from app.offline.request import request_problem
from app.offline.script import (
    Script,
    ScriptError,
    ScriptLoader,
    ScriptResponse,
    parse_script,
    pick,
)
from app.offline.script import position as script_position
from app.offline.tokens import PromptCache, as_blocks, count_blocks, prompt_units
from app.shared.content import ContentBlock

StreamFault = Literal["cut", "stream_overloaded"]
_SCRIPT_PATH = re.compile(r"^#offline-script:\s*(\S.*?)\s*$", re.MULTILINE)
_SCRIPT_INLINE = re.compile(r"^#offline-script-inline:\s*(\S.*?)\s*$", re.MULTILINE)
_FAULT_ERRORS = {
    "overloaded": (529, "overloaded_error", "Overloaded (offline fault injection)."),
    "rate_limited": (429, "rate_limit_error", "Rate limited (offline fault injection)."),
    "server_error": (500, "api_error", "Internal server error (offline fault injection)."),
    "invalid": (400, "invalid_request_error", "Invalid request (offline fault injection)."),
}


class OfflineError(Exception):
    """An error response: HTTP status, Anthropic error type, message (and `retry-after` for 429)."""

    def __init__(self, status: int, error_type: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class OfflineReply:
    message: OfflineMessage
    sleep_ms: int = 0
    stream_fault: StreamFault | None = None


@dataclass(frozen=True, slots=True)
class _Draft:
    content: list[ContentBlock]
    stop_reason: str
    sleep_ms: int = 0
    stop_details: StopDetails | None = None


class OfflineEngine:
    def __init__(
        self,
        script_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        script_dir: Path | None = None,
    ) -> None:
        self._script_path = script_path
        # `#offline-script: NAME` files are read from here only: the offline endpoint takes no
        # API key, so a system prompt must not be able to name (or probe) any file on the host.
        self._script_dir = script_dir.resolve() if script_dir is not None else None
        self._cache = PromptCache(clock)
        self._attempts: dict[str, int] = {}
        self._scripts = ScriptLoader()

    def respond(self, raw: dict[str, JsonValue]) -> OfflineReply:
        body = validate(raw)
        key = request_key(body)
        graded = grading.grader_input(body)
        judged = judging.judge_input(body)
        # A grader request follows its rubric's directives only (see `grading`); a judge, none.
        directives = parse_directives(
            graded.rubric if graded else "" if judged is not None else _last_user_text(body)
        )
        stream_fault = self._injected_fault(key, directives.fault)
        if graded is not None:
            draft = _text_draft(grading.answer(graded), sleep_ms=directives.sleep_ms)
        elif judged is not None:
            draft = _text_draft(judging.answer(judged))
        else:
            draft = self._draft(body, key, directives)
        draft = _limit_output(draft, int(body["max_tokens"]))
        message = self._message(body, key, draft)
        sleep_ms = draft.sleep_ms or directives.sleep_ms
        return OfflineReply(message=message, sleep_ms=sleep_ms, stream_fault=stream_fault)

    def count_tokens(self, raw: dict[str, JsonValue]) -> int:
        body = validate(raw, needs_max_tokens=False)
        return sum(unit.tokens for unit in prompt_units(body))

    def _injected_fault(self, key: str, fault: Fault | None) -> StreamFault | None:
        if fault is None:
            return None
        self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
        if fault.times is not None and attempt > fault.times:
            return None
        if fault.kind in ("cut", "stream_overloaded"):
            return "cut" if fault.kind == "cut" else "stream_overloaded"
        status, error_type, message = _FAULT_ERRORS[fault.kind]
        retry_after = fault.retry_after if fault.kind == "rate_limited" else None
        raise OfflineError(status, error_type, message, retry_after=retry_after)

    def _draft(self, body: MessagesBody, key: str, directives: Directives) -> _Draft:
        scripted = self._scripted(body)
        if scripted is not None:
            return _from_script(scripted, key)
        last = body["messages"][-1]
        blocks = as_blocks(last.get("content")) if last.get("role") == "user" else []
        has_text = any(block.get("type") == "text" for block in blocks)
        if not has_text and any(block.get("type") == "tool_result" for block in blocks):
            return _text_draft(replies.tool_results_text(blocks))
        if replies.is_summary_request(directives.plain_text):
            return _text_draft(replies.summary_text(body["messages"]))
        return _directed(body, key, directives)

    def _scripted(self, body: MessagesBody) -> ScriptResponse | None:
        script = self._script_for(_system_text(body))
        at = script_position(body["messages"])
        return pick(script, at) if script is not None and at is not None else None

    def _script_for(self, system_text: str) -> Script | None:
        try:
            if inline := _SCRIPT_INLINE.search(system_text):
                return parse_script(inline.group(1))
            if path := _SCRIPT_PATH.search(system_text):
                return self._scripts.load(self._agent_script(path.group(1)))
            return self._scripts.load(self._script_path) if self._script_path else None
        except ScriptError as exc:
            raise OfflineError(400, "invalid_request_error", str(exc)) from exc

    def _agent_script(self, name: str) -> Path:
        if self._script_dir is None:
            raise OfflineError(
                400,
                "invalid_request_error",
                "#offline-script files need MAS_OFFLINE_SCRIPT_DIR (or use #offline-script-inline)",
            )
        path = (self._script_dir / name).resolve()
        if not path.is_relative_to(self._script_dir):
            raise OfflineError(
                400, "invalid_request_error", f"offline script {name!r} is outside MAS_OFFLINE_SCRIPT_DIR"
            )
        return path

    def _message(self, body: MessagesBody, key: str, draft: _Draft) -> OfflineMessage:
        cache = self._cache.account(str(body["model"]), prompt_units(body))
        usage: OfflineUsage = {
            "input_tokens": cache.input_tokens,
            "output_tokens": count_blocks(draft.content),
            "cache_creation_input_tokens": cache.cache_creation_input_tokens,
            "cache_read_input_tokens": cache.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache.cache_creation_5m_input_tokens,
                "ephemeral_1h_input_tokens": cache.cache_creation_1h_input_tokens,
            },
            "service_tier": "standard",
        }
        return {
            "id": f"msg_offline_{key[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": draft.content,
            "stop_reason": draft.stop_reason,
            "stop_sequence": None,
            "stop_details": draft.stop_details,
            "usage": usage,
        }


def validate(
    body: dict[str, JsonValue],  # the raw request, checked here
    *,
    needs_max_tokens: bool = True,
) -> MessagesBody:
    """The request's shape, in the API's words, before the engine relies on any of it."""
    problem = request_problem(body, needs_max_tokens=needs_max_tokens)
    if problem is not None:
        raise _invalid(problem)
    return cast(MessagesBody, body)  # the same dict, checked just above


def request_key(body: MessagesBody) -> str:
    """Identifies a request's content: retries of one request share it, `stream` aside."""
    content = {key: value for key, value in body.items() if key != "stream"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _directed(body: MessagesBody, key: str, directives: Directives) -> _Draft:
    content: list[ContentBlock] = []
    if directives.think and _thinking_enabled(body):
        content.append(replies.thinking_block(directives.plain_text))
    if directives.problems:
        return _text_draft(replies.problems_text(directives.problems), content, directives.sleep_ms)
    if directives.refusal is not None:
        return _refusal_draft(directives.refusal, directives.sleep_ms)
    known = [str(tool.get("name")) for tool in body.get("tools") or [] if isinstance(tool, dict)]
    unknown = [call.name for call in directives.tool_calls if call.name not in known]
    if unknown:
        return _text_draft(replies.unknown_tools_text(unknown, known), content, directives.sleep_ms)
    texts = list(directives.say)
    if directives.echo_system:
        texts.append(_system_text(body) or "(no system prompt)")
    if directives.long_chars is not None:
        texts.append(replies.long_text(directives.long_chars))
    if not texts and not directives.tool_calls:
        texts.append(replies.default_reply(directives.plain_text))
    if texts:
        content.append(replies.text_block("\n".join(texts)))
    for number, call in enumerate(directives.tool_calls, start=1):
        content.append(
            {"type": "tool_use", "id": _tool_id(key, number), "name": call.name, "input": call.input}
        )
    stop_reason = "tool_use" if directives.tool_calls else "end_turn"
    return _Draft(content=content, stop_reason=stop_reason, sleep_ms=directives.sleep_ms)


def _refusal_draft(refusal: Refusal, sleep_ms: int) -> _Draft:
    category = refusal.category
    details: StopDetails = {
        "type": "refusal",
        "category": category,
        "explanation": f"Refused by the offline model ({category or 'no category'})." if category else None,
    }
    text = replies.text_block("I can't help with that.")
    return _Draft(content=[text], stop_reason="refusal", sleep_ms=sleep_ms, stop_details=details)


def _from_script(response: ScriptResponse, key: str) -> _Draft:
    # A script's blocks go out as written (a tool use gets an id and an input if it has none).
    content = [cast(ContentBlock, dict(block)) for block in response.content]
    for number, block in enumerate(content, start=1):
        if block.get("type") == "tool_use":
            block.setdefault("id", _tool_id(key, number))
            block.setdefault("input", {})
    has_tool_use = any(block.get("type") == "tool_use" for block in content)
    stop_reason = response.stop_reason or ("tool_use" if has_tool_use else "end_turn")
    details = cast(StopDetails | None, response.stop_details)  # as the script wrote it
    return _Draft(content=content, stop_reason=stop_reason, sleep_ms=response.sleep_ms, stop_details=details)


def _limit_output(draft: _Draft, max_tokens: int) -> _Draft:
    """Like the API, cut a reply longer than `max_tokens` and say so (text-only replies)."""
    if count_blocks(draft.content) <= max_tokens or draft.stop_reason != "end_turn":
        return draft
    last = draft.content[-1]
    if last.get("type") != "text":
        return draft
    budget = max(max_tokens - count_blocks(draft.content[:-1]), 0) * 4
    content = [*draft.content[:-1], replies.text_block(str(last["text"])[:budget])]
    return _Draft(content=content, stop_reason="max_tokens", sleep_ms=draft.sleep_ms)


def _text_draft(text: str, before: list[ContentBlock] | None = None, sleep_ms: int = 0) -> _Draft:
    return _Draft(
        content=[*(before or []), replies.text_block(text)], stop_reason="end_turn", sleep_ms=sleep_ms
    )


def _tool_id(key: str, number: int) -> str:
    return f"toolu_offline_{key[:12]}_{number}"


def _thinking_enabled(body: MessagesBody) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _last_user_text(body: MessagesBody) -> str:
    last = body["messages"][-1]
    if last.get("role") != "user":
        return ""
    blocks = as_blocks(last.get("content"))
    return "\n".join(str(block.get("text", "")) for block in blocks if block.get("type") == "text")


def _system_text(body: MessagesBody) -> str:
    return "\n".join(str(block.get("text", "")) for block in as_blocks(body.get("system")))


def _invalid(message: str) -> OfflineError:
    return OfflineError(400, "invalid_request_error", message)
