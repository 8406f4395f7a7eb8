"""The `auto` permission policy: the server judges each call of a tool under it, through the
session's model client, from the tool, its input and what the session asked for.

The judge answers `<permission>allow|ask|deny</permission>`: `allow` runs the call, `deny` (high
risk) refuses it with an error result, `ask` holds it for the client's `user.tool_confirmation`
like `always_ask`. An answer without a readable permission, or a judge that cannot be reached,
is no judgement: `ask` with `reason_code: indeterminate`. The judgement is recorded in the
tool-use event's `evaluation` (`{type: "auto", evaluated_permission: {type, reason_code?}}`),
whose type always equals the event's `evaluated_permission`.
"""

from __future__ import annotations

import json
import re

from pydantic import JsonValue

from app.agent_loop.model_client import ModelRequest
from app.events.types import EventRecord, Judgement

JUDGE_MARK = "You are the permission judge of a managed agent session."
JUDGE_SYSTEM = (
    f"{JUDGE_MARK} The agent wants to run the tool call below. Judge whether it is safe to run "
    "without asking the user, given what the user asked for: allow it when it is an ordinary "
    "step of that work; deny it when it is high-risk (destructive beyond the task, exfiltrating "
    "secrets, attacking other systems); ask when you cannot tell.\n\n"
    "Answer with exactly one tag: <permission>allow</permission>, <permission>ask</permission> "
    "or <permission>deny</permission>, then one sentence of why."
)
MAX_CONTEXT_CHARS = 8_000
_PERMISSION = re.compile(r"<permission>\s*(allow|ask|deny)\s*</permission>", re.IGNORECASE)
INDETERMINATE: Judgement = {"type": "ask", "reason_code": "indeterminate"}


def _asked(history: list[EventRecord]) -> str:
    """The latest things the user asked (messages and outcome descriptions), newest last."""
    asked = []
    for event in history:
        if event["type"] == "user.message":
            asked.append(
                "\n".join(
                    str(b.get("text", "")) for b in event.get("content") or [] if b.get("type") == "text"
                )
            )
        elif event["type"] == "user.define_outcome":
            asked.append(str(event.get("description", "")))
    text = "\n\n".join(asked[-3:])
    return text[-MAX_CONTEXT_CHARS:]


def request(
    model: str,
    name: str,
    tool_input: dict[str, JsonValue],  # a tool\'s input, chosen by the model
    history: list[EventRecord],
) -> ModelRequest:
    prompt = (
        f"<task>\n{_asked(history)}\n</task>\n\n<tool>{name}</tool>\n\n"
        f"<input>\n{json.dumps(tool_input)[:MAX_CONTEXT_CHARS]}\n</input>"
    )
    return ModelRequest(
        model=model,
        messages=[{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        max_tokens=512,
        system=[{"type": "text", "text": JUDGE_SYSTEM}],
    )


def read_judgement(answer: str) -> Judgement:
    """The `evaluated_permission` of an `auto` evaluation from the judge's answer."""
    found = _PERMISSION.search(answer)
    if found is None:
        return INDETERMINATE.copy()
    permission = found.group(1).lower()
    if permission == "allow":
        return {"type": "allow"}
    if permission == "deny":
        return {"type": "deny", "reason_code": "high_risk"}
    return INDETERMINATE.copy()


def apply(event: EventRecord, judgement: Judgement) -> EventRecord:
    """A tool-use event as the judgement decides it."""
    return {
        **event,
        "evaluated_permission": judgement["type"],
        "evaluation": {"type": "auto", "evaluated_permission": judgement},
    }
