"""Scripted conversations for the offline model.

A script is JSON, either a bare list of turns or an object ``{"turns": [...], "rules": [...]}``.
A turn is a list of responses; a response is ``{"content": [blocks], "stop_reason"?, "stop_details"?,
"sleep_ms"?}``
(``stop_reason`` defaults to ``tool_use`` when a tool_use block is present, else ``end_turn``;
tool_use blocks may omit ``id``). A rule is ``{"match": "<regex>", "responses": [...]}``.

The position is read from the request itself, so it survives retries and restarts: the turn is
the number of user messages carrying text (tool-result-only messages do not start a turn), and
the response index is the number of assistant messages since the latest of them. The first rule
whose regex matches (``re.search``) that user message's text wins, else ``turns[turn]``; a
position the script does not cover falls back to the directive behaviour.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError, field_validator

from app.offline.messages import MessageParam
from app.offline.tokens import as_blocks


class ScriptError(ValueError):
    """The script cannot be read or is malformed (the message never quotes the file's content)."""


class ScriptResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    content: list[dict[str, JsonValue]] = Field(min_length=1)  # blocks as the script wrote them
    stop_reason: str | None = None
    stop_details: dict[str, JsonValue] | None = None  # sent as the script wrote it
    sleep_ms: int = Field(0, ge=0)


class ScriptRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str
    responses: list[ScriptResponse]

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from exc
        return value


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    turns: list[list[ScriptResponse]] = Field(default_factory=list)
    rules: list[ScriptRule] = Field(default_factory=list)


_SCRIPT_FORMS: TypeAdapter[Script | list[list[ScriptResponse]]] = TypeAdapter(
    Script | list[list[ScriptResponse]]
)


@dataclass(frozen=True, slots=True)
class Position:
    turn: int
    response: int
    user_text: str


def parse_script(raw: str) -> Script:
    try:
        parsed = _SCRIPT_FORMS.validate_python(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ScriptError(f"invalid offline script: {_summary(exc)}") from exc
    return parsed if isinstance(parsed, Script) else Script(turns=parsed)


class ScriptLoader:
    """Reads script files, re-reading one only when its modification time changes."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[float, Script]] = {}

    def load(self, path: Path) -> Script:
        try:
            mtime = path.stat().st_mtime
            cached = self._cache.get(path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
            script = parse_script(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ScriptError(f"cannot read offline script {path}: {exc.strerror}") from exc
        self._cache[path] = (mtime, script)
        return script


def position(messages: list[MessageParam]) -> Position | None:
    """Where the conversation stands (see the module docstring); None before any user text."""
    turn, since, user_text = -1, 0, ""
    for message in messages:
        blocks = as_blocks(message.get("content"))
        texts = [str(block.get("text", "")) for block in blocks if block.get("type") == "text"]
        if message.get("role") == "user" and texts:
            turn, since, user_text = turn + 1, 0, "\n".join(texts)
        elif message.get("role") == "assistant":
            since += 1
    return Position(turn, since, user_text) if turn >= 0 else None


def pick(script: Script, at: Position) -> ScriptResponse | None:
    for rule in script.rules:
        if re.search(rule.match, at.user_text):
            return _nth(rule.responses, at.response)
    if at.turn < len(script.turns):
        return _nth(script.turns[at.turn], at.response)
    return None


def _nth(responses: list[ScriptResponse], index: int) -> ScriptResponse | None:
    return responses[index] if index < len(responses) else None


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']} ({exc.error_count()} error(s))"
    return str(exc)
