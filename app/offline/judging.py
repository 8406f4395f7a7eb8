"""The offline model as the `auto` permission policy's judge: deterministic judgements read from
the call's input.

A judge request is recognised by the harness's judge system prompt (it starts with
`JUDGE_MARK`); its user message holds `<tool>` and `<input>` sections. The judgement: `deny` when
the input contains `#deny`, `ask` when it contains `#ask` (so `echo hi #ask` is a harmless bash
call the judge holds for the client), else `allow`.
"""

from __future__ import annotations

import re

from app.offline.messages import MessagesBody
from app.offline.tokens import as_blocks

JUDGE_MARK = "You are the permission judge"


def judge_input(body: MessagesBody) -> str | None:
    """The `<input>` of a judge request, or None for any other request."""
    system = "\n".join(str(b.get("text", "")) for b in as_blocks(body.get("system")))
    if not system.startswith(JUDGE_MARK):
        return None
    last = body["messages"][-1]
    text = "\n".join(
        str(b.get("text", "")) for b in as_blocks(last.get("content")) if b.get("type") == "text"
    )
    found = re.search(r"<input>\n?(.*?)\n?</input>", text, re.DOTALL)
    return found.group(1) if found else ""


def answer(tool_input: str) -> str:
    if "#deny" in tool_input:
        return "<permission>deny</permission> The input carries the offline judge's #deny marker."
    if "#ask" in tool_input:
        return "<permission>ask</permission> The input carries the offline judge's #ask marker."
    return "<permission>allow</permission> An ordinary step (no #deny or #ask marker)."
