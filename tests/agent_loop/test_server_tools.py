"""With the real API, `web_search` is the Messages API's server tool: it is declared as such, and
its blocks become events the loop never runs or waits on."""

from __future__ import annotations

from app.agent_loop import requests
from app.agent_loop.server_tools import count_searches, server_tool_events
from app.agent_loop.state import analyse
from app.events.types import ContentBlock, EventRecord
from app.shared.agent_config import SessionAgent
from app.shared.content import ToolDefinition

AGENT: SessionAgent = {
    "type": "agent",
    "name": "searcher",
    "model": {
        "id": "claude-sonnet-4-6",
        "effort": {"type": "high"},
        "speed": "standard",
        "inference_geo": None,
    },
    "system": None,
    "tools": [
        {
            "type": "agent_toolset_20260401",
            "default_config": {"enabled": True, "permission_policy": {"type": "always_allow"}},
            "configs": [],
        }
    ],
    "mcp_servers": [],
    "skills": [],
}
CONTENT: list[ContentBlock] = [
    {"type": "text", "text": "Let me search."},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "mas"}},
    {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [
            {"type": "web_search_result", "url": "https://example.com", "title": "Ex", "page_age": None}
        ],
    },
    {"type": "text", "text": "Found it."},
]


def test_web_search_is_a_server_tool_only_with_the_real_api() -> None:
    def without_cache(tools: list[ToolDefinition]) -> list[ToolDefinition]:
        kept = [t.copy() for t in tools]
        for tool in kept:
            tool.pop("cache_control", None)
        return kept

    server = without_cache(requests.build(AGENT, [], server_web_search=True).tools)
    client = without_cache(requests.build(AGENT, [], server_web_search=False).tools)
    assert {"type": "web_search_20250305", "name": "web_search", "max_uses": 5} in server
    assert not any(t.get("type") == "web_search_20250305" for t in client)
    assert any(t["name"] == "web_search" and "input_schema" in t for t in client)


def test_server_tool_blocks_become_a_use_and_its_result() -> None:
    uses, results = server_tool_events(CONTENT, "sevt_start")
    (use,) = uses
    (result,) = results
    assert use["type"] == "agent.tool_use" and use["name"] == "web_search" and use["harness"]["server"]
    assert use["evaluated_permission"] == "allow"
    assert result["tool_use_id"] == use["id"] and not result["is_error"]
    assert "https://example.com" in result["content"][0]["text"]
    assert count_searches(CONTENT) == 1


def test_the_loop_neither_runs_nor_waits_on_server_tool_uses() -> None:
    uses, results = server_tool_events(CONTENT, "sevt_start")
    history: list[EventRecord] = [
        {"id": "sevt_start", "type": "span.model_request_start"},
        *uses,
        {
            "id": "sevt_end",
            "type": "span.model_request_end",
            "model_request_start_id": "sevt_start",
            "harness": {"content": CONTENT, "stop_reason": "end_turn"},
        },
        *(EventRecord(**r, id=f"sevt_r{i}") for i, r in enumerate(results)),
    ]
    state = analyse(history)
    assert state.tool_uses == [] and state.runnable() == [] and state.unanswered_blocking() == []


def test_the_system_prompt_tells_cloud_sessions_about_uploads_and_outputs() -> None:
    def system_text(cloud: bool) -> str:
        return " ".join(b["text"] for b in requests.build(AGENT, [], cloud=cloud).system or [])

    assert "/mnt/session/outputs" in system_text(True) and "/mnt/session/uploads" in system_text(True)
    # A self-hosted client runs the tools on its own machine: no sandbox paths.
    assert "/mnt/session" not in system_text(False) and "/workspace" not in system_text(False)
