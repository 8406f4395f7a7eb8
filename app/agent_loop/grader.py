"""The outcome grader's words: what the agent is told of an outcome and of each verdict, the
grader's own request (its own context: the rubric and the transcript's result, no tools), and how
its answer is read.

The grader answers `<verdict>satisfied|needs_revision|failed</verdict>` and
`<explanation>…</explanation>`; an answer without a readable verdict counts as `needs_revision`
with the whole answer as the explanation (the agent is asked to revise rather than the outcome
being passed on a guess).
"""

from __future__ import annotations

import json
import re

from app.agent_loop.model_client import ModelRequest
from app.events.types import ContentBlock, EventRecord, newest_first

DEFINE = "user.define_outcome"
END = "span.outcome_evaluation_end"
START = "span.outcome_evaluation_start"
# Verdicts after which the agent works again: a revision, or the final acknowledgment.
AGENT_GOES_ON = ("needs_revision", "max_iterations_reached")
# (`context` imports this module, so its names are not imported back.)
RESULTS = ("agent.tool_result", "user.custom_tool_result", "user.tool_result", "agent.mcp_tool_result")
THREAD_MESSAGE = "agent.thread_message_received"
GRADER_MARK = "You are the outcome grader of a managed agent session."
GRADER_SYSTEM = (
    f"{GRADER_MARK} An agent was asked to produce an outcome; you judge its work against the "
    "rubric, criterion by criterion, from the transcript of what it did (its messages, tool calls "
    "and tool results) and the text of the files it delivered in /mnt/session/outputs. You cannot "
    "run tools or look anything up: judge only from what you are shown.\n\n"
    "Answer with exactly two tags:\n"
    "<verdict>satisfied</verdict> when every criterion is met, <verdict>needs_revision</verdict> "
    "when some criterion is not met yet and the agent could fix it, or <verdict>failed</verdict> "
    "when the rubric does not apply to the work at all;\n"
    "<explanation>which criteria passed or failed and why; for needs_revision, exactly what the "
    "agent must change</explanation>"
)
MAX_TRANSCRIPT_CHARS = 200_000
MAX_ITEM_CHARS = 8_000
MAX_DELIVERABLE_CHARS = 100_000
MAX_DELIVERABLE_READ = 64 * 1024  # bytes read of each output
_VERDICT = re.compile(r"<verdict>\s*(satisfied|needs_revision|failed)\s*</verdict>", re.IGNORECASE)
_EXPLANATION = re.compile(r"<explanation>(.*?)(?:</explanation>|\Z)", re.DOTALL | re.IGNORECASE)


# --- what the agent reads ---------------------------------------------------------------------


def outcome_text(event: EventRecord) -> str:
    """The agent's prompt for a `user.define_outcome`: the description (the task), not the rubric
    (the grader's)."""
    iterations = event.get("max_iterations") or 3
    return (
        f"{event.get('description', '')}\n\n"
        f"(This is an outcome to produce ({event.get('outcome_id')}). When you end your turn, a "
        "separate grader evaluates your work against a rubric and may ask for revisions, at most "
        f"{iterations} evaluations. Put deliverables in files or in your final message.)"
    )


def verdict_text(event: EventRecord) -> str:
    """What the agent reads of an evaluation's end."""
    result, explanation = event.get("result"), event.get("explanation", "")
    number = int(event.get("iteration", 0)) + 1
    if result == "needs_revision":
        return (
            f"The grader evaluated your work (evaluation {number}) and it needs revision:\n"
            f"{explanation}\n\nRevise your work to meet every criterion, then end your turn."
        )
    if result == "max_iterations_reached":
        return (
            f"The grader's evaluation {number} found the outcome still unmet and no evaluations "
            f"remain:\n{explanation}\n\nDo not continue the work. Briefly acknowledge to the user "
            "what was done and what remains unmet."
        )
    return f"(The outcome {event.get('outcome_id')} ended: {result}. {explanation})"


def is_agent_input(event: EventRecord) -> bool:
    """An evaluation's end that gives the agent another turn of work."""
    return event["type"] == END and event.get("result") in AGENT_GOES_ON


# --- where the grading stands, from the log ---------------------------------------------------


def open_start(history: list[EventRecord], outcome_id: str) -> EventRecord | None:
    """The `span.outcome_evaluation_start` of this outcome that has no end yet (a worker that
    stopped mid-grading left it open)."""
    for event in newest_first(history):
        if event.get("outcome_id") != outcome_id:
            continue
        kind = event["type"]
        if kind == END:
            return None
        if kind == START:
            return event
    return None


# --- the grader's request -----------------------------------------------------------------------


def _clip(text: str, limit: int = MAX_ITEM_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def _texts(blocks: list[ContentBlock] | None) -> str:
    return "\n".join(str(b.get("text", "")) for b in blocks or [] if b.get("type") == "text")


def _line(event: EventRecord) -> str | None:
    kind = event["type"]
    if kind == "agent.message":
        return "[agent] " + _clip(_texts(event.get("content")))
    if kind in ("agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use"):
        return f"[tool call {event.get('name')}] " + _clip(json.dumps(event.get("input") or {}))
    if kind in RESULTS:
        status = "tool error" if event.get("is_error") else "tool result"
        return f"[{status}] " + _clip(_texts(event.get("content")) or "(no text output)")
    if kind == THREAD_MESSAGE:
        return f"[message from {event.get('from_agent_name') or 'a thread'}] " + _clip(
            _texts(event.get("content"))
        )
    if kind == "user.message":
        return "[user] " + _clip(_texts(event.get("content")))
    return None


def transcript(history: list[EventRecord], outcome_id: str) -> str:
    """What the agent did since the outcome was defined, newest kept when it is long (the
    grader judges the work itself, not earlier verdicts)."""
    start = next(
        (i for i, e in enumerate(history) if e["type"] == DEFINE and e.get("outcome_id") == outcome_id), 0
    )
    lines = [line for e in history[start + 1 :] if (line := _line(e)) is not None]
    text = "\n\n".join(lines) or "(the agent did nothing visible)"
    return (
        text
        if len(text) <= MAX_TRANSCRIPT_CHARS
        else "[... earlier work left out]\n" + text[-MAX_TRANSCRIPT_CHARS:]
    )


def deliverables(files: list[tuple[str, bytes, int]]) -> str:
    """The text of the session's outputs (path, content read, full size), clipped; binary files
    are named only."""
    parts, left = [], MAX_DELIVERABLE_CHARS
    for path, content, size in files:
        text = content.decode("utf-8", errors="replace")
        if b"\0" in content or text.count("\ufffd") > len(text) // 10:
            parts.append(f"--- {path} ({size} bytes, binary)")
            continue
        shown = text[: max(left, 0)]
        left -= len(shown)
        more = f"\n[... {size - len(shown.encode())} more bytes]" if len(shown.encode()) < size else ""
        parts.append(f"--- {path} ({size} bytes)\n{shown}{more}")
    return "\n\n".join(parts) or "(no files in /mnt/session/outputs)"


def request(model: str, rubric: str, iteration: int, work: str, delivered: str = "") -> ModelRequest:
    prompt = (
        f"<rubric>\n{rubric}\n</rubric>\n\n<iteration>{iteration}</iteration>\n\n"
        f"<transcript>\n{work}\n</transcript>\n\n<deliverables>\n{delivered}\n</deliverables>\n\n"
        "Judge the work against the rubric."
    )
    return ModelRequest(
        model=model,
        messages=[{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        max_tokens=4_096,
        system=[{"type": "text", "text": GRADER_SYSTEM}],
    )


def read_verdict(answer: str) -> tuple[str, str]:
    """(verdict, explanation) of the grader's answer."""
    verdict = _VERDICT.search(answer)
    explanation = _EXPLANATION.search(answer)
    text = (explanation.group(1) if explanation else answer).strip() or "(no explanation given)"
    if verdict is None:
        return "needs_revision", text
    return verdict.group(1).lower(), text
