"""Slash directives the offline model reads from the last user message.

A directive is a whole line starting with a known name (`/tool`, `/delegate`, `/inline`,
`/advise`, `/say`, `/think`, `/fault`, `/sleep`, `/long`, `/refuse`, `/system`); any other line,
including ones that merely start with `/` such as paths, is plain text that the default reply
quotes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, cast, get_args

from pydantic import JsonValue

FaultKind: TypeAlias = Literal[
    "overloaded", "rate_limited", "server_error", "cut", "stream_overloaded", "invalid"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
RefusalCategory: TypeAlias = Literal["cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms"]
REFUSAL_CATEGORIES: tuple[str, ...] = get_args(RefusalCategory)


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    input: dict[str, JsonValue]  # a tool input, as the model would choose it


@dataclass(frozen=True, slots=True)
class Fault:
    """Fail the first `times` attempts of this exact request (None: every attempt)."""

    kind: FaultKind
    times: int | None = 1
    retry_after: int = 0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Answer with ``stop_reason: refusal`` and ``stop_details`` (category None: unnamed)."""

    category: RefusalCategory | None = None


@dataclass(slots=True)
class Directives:
    tool_calls: list[ToolCall] = field(default_factory=list)
    say: list[str] = field(default_factory=list)
    think: bool = False
    fault: Fault | None = None
    sleep_ms: int = 0
    long_chars: int | None = None
    refusal: Refusal | None = None
    echo_system: bool = False
    problems: list[str] = field(default_factory=list)
    plain_lines: list[str] = field(default_factory=list)

    @property
    def plain_text(self) -> str:
        return "\n".join(self.plain_lines).strip()


def parse_directives(text: str) -> Directives:
    directives = Directives()
    for line in text.splitlines():
        name, _, rest = line.strip().partition(" ")
        handler = _HANDLERS.get(name)
        if handler is None:
            directives.plain_lines.append(line)
        else:
            try:
                handler(directives, rest.strip())
            except ValueError as exc:
                directives.problems.append(f"{name}: {exc}")
    return directives


def _tool(directives: Directives, rest: str) -> None:
    name, _, raw_input = rest.partition(" ")
    if not name:
        raise ValueError("expected `/tool NAME {json input}`")
    try:
        tool_input = json.loads(raw_input) if raw_input.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"input of {name} is not valid JSON ({exc.msg})") from exc
    if not isinstance(tool_input, dict):
        raise ValueError(f"input of {name} must be a JSON object")
    directives.tool_calls.append(ToolCall(name=name, input=tool_input))


def _delegate(directives: Directives, rest: str) -> None:
    """`/delegate AGENT TASK`: the coordinator's `send_to_agent` call starting a thread of AGENT
    with TASK (one line; use `/tool send_to_agent {...}` for more)."""
    agent, _, task = rest.partition(" ")
    if not agent or not task.strip():
        raise ValueError("expected `/delegate AGENT TASK`")
    directives.tool_calls.append(
        ToolCall(name="send_to_agent", input={"agent": agent, "message": task.strip()})
    )


def _inline(directives: Directives, rest: str) -> None:
    """`/inline NAME[:TOOL,TOOL] TASK`: `send_to_agent` starting a thread of an inline agent NAME
    (with the listed tools of the caller's own, or all of them) with TASK."""
    spec, _, task = rest.partition(" ")
    name, _, tool_list = spec.partition(":")
    if not name or not task.strip():
        raise ValueError("expected `/inline NAME[:TOOL,TOOL] TASK`")
    inline: dict[str, JsonValue] = {"name": name}
    if tool_list:
        inline["tools"] = [t for t in tool_list.split(",") if t]
    directives.tool_calls.append(
        ToolCall(name="send_to_agent", input={"inline_agent": inline, "message": task.strip()})
    )


def _advise(directives: Directives, rest: str) -> None:
    """`/advise QUESTION`: a `consult_advisor` call."""
    if not rest.strip():
        raise ValueError("expected `/advise QUESTION`")
    directives.tool_calls.append(ToolCall(name="consult_advisor", input={"question": rest.strip()}))


def _say(directives: Directives, rest: str) -> None:
    directives.say.append(rest)


def _think(directives: Directives, rest: str) -> None:
    directives.think = True


def _fault(directives: Directives, rest: str) -> None:
    kind, *args = rest.split() or [""]
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    times: int | None = None if kind == "invalid" else 1
    if args:
        times = None if args[0] in ("always", "*") else _non_negative(args[0])
    retry_after = _non_negative(args[1]) if len(args) > 1 else 0
    directives.fault = Fault(kind=cast(FaultKind, kind), times=times, retry_after=retry_after)


def _sleep(directives: Directives, rest: str) -> None:
    directives.sleep_ms = _non_negative(rest)


def _long(directives: Directives, rest: str) -> None:
    directives.long_chars = _non_negative(rest)


def _refuse(directives: Directives, rest: str) -> None:
    if rest and rest not in REFUSAL_CATEGORIES:
        expected = ", ".join(REFUSAL_CATEGORIES)
        raise ValueError(f"unknown refusal category {rest!r}; expected one of {expected}")
    directives.refusal = Refusal(cast(RefusalCategory, rest) if rest else None)


def _system(directives: Directives, rest: str) -> None:
    directives.echo_system = True


def _non_negative(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError(f"expected a non-negative integer, got {raw!r}")
    return int(raw)


_HANDLERS = {
    "/tool": _tool,
    "/delegate": _delegate,
    "/inline": _inline,
    "/advise": _advise,
    "/say": _say,
    "/think": _think,
    "/fault": _fault,
    "/sleep": _sleep,
    "/long": _long,
    "/system": _system,
    "/refuse": _refuse,
}
