"""Server tools (the Messages API's own `web_search`) seen as session events.

With the real API, `web_search` runs at Anthropic inside the model request: the response holds
`server_tool_use` and `web_search_tool_result` blocks. They stay in the recorded assistant
content (the model needs them back), and are shown to clients as an `agent.tool_use` (allowed,
marked private `_server` so the loop never runs or waits on it) and its `agent.tool_result`.
"""

from __future__ import annotations

import json

from app.events.service import new_event_id
from app.events.types import ContentBlock, EventRecord


def _result_content(block: ContentBlock) -> tuple[list[ContentBlock], bool]:
    content = block.get("content")
    if isinstance(content, dict):  # {"type": "web_search_tool_result_error", "error_code": ...}
        return [{"type": "text", "text": f"web_search failed: {content.get('error_code', 'unknown')}"}], True
    results = [
        {"url": r.get("url"), "title": r.get("title"), "page_age": r.get("page_age")}
        for r in content or []
        if isinstance(r, dict)
    ]
    return [{"type": "text", "text": json.dumps(results)}], False


def server_tool_events(
    content: list[ContentBlock], start_id: str
) -> tuple[list[EventRecord], list[EventRecord]]:
    """(tool-use events, their result events) for the server tool blocks of one response."""
    event_ids: dict[str, str] = {}
    uses: list[EventRecord] = []
    results: list[EventRecord] = []
    for block in content:
        if block.get("type") == "server_tool_use":
            event_ids[str(block.get("id"))] = event_id = new_event_id()
            uses.append(
                {
                    "id": event_id,
                    "type": "agent.tool_use",
                    "name": block.get("name", ""),
                    "input": block.get("input") or {},
                    "evaluated_permission": "allow",
                    "evaluation": {"type": "always_allow"},
                    "harness": {"server": True, "request": start_id},
                }
            )
        elif str(block.get("type", "")).endswith("_tool_result") and block.get("tool_use_id") in event_ids:
            blocks, failed = _result_content(block)
            target = event_ids[str(block["tool_use_id"])]
            results.append(
                {"type": "agent.tool_result", "tool_use_id": target, "content": blocks, "is_error": failed}
            )
    return uses, results


def count_searches(content: list[ContentBlock]) -> int:
    return sum(1 for b in content if b.get("type") == "server_tool_use" and b.get("name") == "web_search")
