"""Rebuilding the model's conversation from the session's log.

The harness keeps no state outside the log, so every model request is rebuilt from the events:
user messages, the raw assistant content recorded (privately) on each successful
`span.model_request_end`, tool results, and the summary of the latest compaction.

What the loop records beside an event for itself is its typed ``harness`` field
(`events.types.Harness`, never sent to clients, see `events.service.to_wire`):
* a `span.model_request_end`'s ``content``: the assistant message exactly as the model returned
  it (thinking blocks with signatures included, so tool use with thinking can continue);
* a tool use's ``tool_use_id`` (the model's `toolu_…` id) and ``request`` (the
  `span.model_request_start` id of the response that made the call);
* an `agent.thread_context_compacted`'s ``summary``: the summary that replaces what came before.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.agent_loop import grader
from app.agent_loop.model_client import Message
from app.events.types import ContentBlock, EventRecord, harness_of, newest_first
from app.shared.agent_config import SessionAgent

TOOL_USE_TYPES = ("agent.tool_use", "agent.custom_tool_use", "agent.mcp_tool_use")
RESULT_KEYS = {
    "agent.tool_result": "tool_use_id",
    "user.custom_tool_result": "custom_tool_use_id",
    "user.tool_result": "tool_use_id",
    "agent.mcp_tool_result": "mcp_tool_use_id",
}
THREAD_MESSAGE = "agent.thread_message_received"
SUMMARY_PREFIX = "This conversation was compacted. Summary of everything before this point:\n\n"


def harness_system(
    agent: SessionAgent, *, cloud: bool = True, sections: Sequence[str] = ()
) -> list[ContentBlock]:
    """The agent's system prompt plus the harness's own instructions and the session's
    ``sections`` (its skills, its memory mounts), cached as one prefix. The sandbox paths are
    told only in cloud environments (a self-hosted client runs the tools)."""
    harness = "You are running as a managed agent. "
    if cloud:
        harness += (
            "Built-in tools run in an isolated Linux sandbox whose working directory is /workspace. "
            "Files the user attached are mounted read-only under /mnt/session/uploads. Put files "
            "meant for the user (deliverables) in /mnt/session/outputs: they are handed back to "
            "the user as files. "
        )
    harness += (
        "Tool outputs longer than 100,000 characters are saved to a file and you receive a preview "
        "and its path."
    )
    harness = "\n\n".join([harness, *sections])
    system = agent.get("system")
    blocks: list[ContentBlock] = [{"type": "text", "text": system}] if system else []
    blocks.append({"type": "text", "text": harness, "cache_control": {"type": "ephemeral"}})
    return blocks


def _after_compaction(events: list[EventRecord]) -> tuple[list[EventRecord], str | None]:
    for i in range(len(events) - 1, -1, -1):
        if events[i]["type"] == "agent.thread_context_compacted":
            return _unanswered(events[:i]) + events[i + 1 :], str(harness_of(events[i]).get("summary", ""))
    return events, None


def _unanswered(events: list[EventRecord]) -> list[EventRecord]:
    """Messages the model had not answered yet when the history was compacted (a compaction runs
    just before a request): the summary mentions them, but the model must still get them whole."""
    kept = []
    for event in newest_first(events):
        if event["type"] == "agent.thread_context_compacted" or (
            event["type"] == "span.model_request_end" and harness_of(event).get("content")
        ):
            break
        if event["type"] in (
            "user.message",
            "system.message",
            THREAD_MESSAGE,
            grader.DEFINE,
        ) or grader.is_agent_input(event):
            kept.append(event)
    return kept[::-1]


def _user_blocks(event: EventRecord, tool_ids: dict[str, str]) -> list[ContentBlock]:
    kind = event["type"]
    if kind == "user.message":
        return list(event.get("content") or [])
    if kind == "system.message":
        text = "\n".join(b.get("text", "") for b in event.get("content") or [])
        return [{"type": "text", "text": f"<system-message>\n{text}\n</system-message>"}]
    if kind == THREAD_MESSAGE:
        sender = f"{event.get('from_agent_name') or 'agent'} (thread {event.get('from_session_thread_id')})"
        header: ContentBlock = {"type": "text", "text": f"Message from {sender}:"}
        return [header, *(event.get("content") or [])]
    if kind == grader.DEFINE:
        return [{"type": "text", "text": grader.outcome_text(event)}]
    if kind == grader.END:
        return [{"type": "text", "text": grader.verdict_text(event)}]
    if kind in RESULT_KEYS:
        target = tool_ids.get(str(event.get(RESULT_KEYS[kind])))
        if target is None:
            return []
        block: ContentBlock = {"type": "tool_result", "tool_use_id": target}
        block["content"] = list(event.get("content") or []) or [{"type": "text", "text": "(no output)"}]
        if event.get("is_error"):
            block["is_error"] = True
        return [block]
    return []


def build_messages(events: list[EventRecord]) -> list[Message]:
    """The `messages` of the next request: alternating user/assistant, tool results first."""
    events, summary = _after_compaction(events)
    tool_ids = {
        e["id"]: e["harness"]["tool_use_id"]
        for e in events
        if e["type"] in TOOL_USE_TYPES and "tool_use_id" in harness_of(e)
    }
    messages: list[Message] = []
    pending: list[ContentBlock] = [{"type": "text", "text": SUMMARY_PREFIX + summary}] if summary else []
    # A message from another thread that arrived while a request ran follows that response.
    during: list[ContentBlock] = []
    requesting = False
    for event in events:
        kind = event["type"]
        if kind == "span.model_request_end" and harness_of(event).get("content"):
            if pending:
                messages.append({"role": "user", "content": _results_first(pending)})
            messages.append({"role": "assistant", "content": event["harness"]["content"]})
            pending, during, requesting = during, [], False
        elif kind in ("span.model_request_start", "span.model_request_end"):
            requesting = kind == "span.model_request_start"
            pending, during = pending + during, []
        elif requesting and kind in (THREAD_MESSAGE, grader.DEFINE):
            during.extend(_user_blocks(event, tool_ids))
        else:
            pending.extend(_user_blocks(event, tool_ids))
    pending += during
    if pending:
        messages.append({"role": "user", "content": _results_first(pending)})
    return messages


def _results_first(blocks: list[ContentBlock]) -> list[ContentBlock]:
    results = [b for b in blocks if b.get("type") == "tool_result"]
    return results + [b for b in blocks if b.get("type") != "tool_result"]
