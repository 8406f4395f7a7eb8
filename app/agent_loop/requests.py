"""Building Messages API requests for a session: model parameters, prompt caching, compaction."""

from __future__ import annotations

from collections.abc import Sequence

from app.agent_loop import tools
from app.agent_loop.context import build_messages, harness_system
from app.agent_loop.model_client import ModelRequest
from app.config import Settings
from app.events.types import ContentBlock, EventRecord, harness_of, newest_first
from app.shared.agent_config import SessionAgent
from app.shared.content import ToolDefinition

# (max_tokens, thinking budget) by model family; None = no extended thinking.
MODEL_LIMITS: dict[str, tuple[int, int | None]] = {
    "opus": (32_000, 8_000),
    "sonnet": (32_000, 8_000),
    "fable": (32_000, 8_000),
    "haiku": (16_000, 4_000),
}
DEFAULT_LIMITS: tuple[int, int | None] = (8_192, None)
SUMMARY_INSTRUCTION = (
    "Summarize this conversation so far so that the work can continue from the summary alone: the "
    "user's goals and instructions, decisions made, files and commands involved, tool results that "
    "still matter, and what remains to be done. Reply with the summary only."
)


def limits(model: str) -> tuple[int, int | None]:
    return next((v for k, v in MODEL_LIMITS.items() if k in model), DEFAULT_LIMITS)


def build(
    agent: SessionAgent,
    history: list[EventRecord],
    *,
    server_web_search: bool = False,
    mcp_tools: list[ToolDefinition] | None = None,
    cloud: bool = True,
    sections: Sequence[str] = (),
) -> ModelRequest:
    """``mcp_tools``: the definitions of the session's connected MCP tools (see app/mcp);
    ``sections``: what the system prompt tells about the session (skills, memory mounts)."""
    model = str(agent["model"]["id"])
    max_tokens, budget = limits(model)
    definitions = tools.definitions(agent, server_web_search=server_web_search) + (mcp_tools or [])
    if definitions:  # breakpoint after the tools: system + tools are one cached prefix
        definitions[-1] = {**definitions[-1], "cache_control": {"type": "ephemeral"}}
    return ModelRequest(
        model=model,
        messages=build_messages(history),
        max_tokens=max_tokens,
        system=harness_system(agent, cloud=cloud, sections=sections),
        tools=definitions,
        thinking={"type": "enabled", "budget_tokens": budget} if budget else None,
        # Automatic caching: a breakpoint at the end of the history, so each request reads the last.
        cache_control={"type": "ephemeral"},
    )


def last_input_tokens(history: list[EventRecord]) -> int:
    for event in newest_first(history):
        if event["type"] == "agent.thread_context_compacted":
            return 0
        if event["type"] == "span.model_request_end" and harness_of(event).get("content") is not None:
            usage = event.get("model_usage")
            if usage is None:
                return 0
            return (
                usage["input_tokens"]
                + usage["cache_read_input_tokens"]
                + usage["cache_creation_input_tokens"]
                + usage["output_tokens"]
            )
    return 0


def needs_compaction(history: list[EventRecord], settings: Settings) -> bool:
    """Compact when the last request (plus its answer) came near the context limit."""
    return last_input_tokens(history) >= settings.compaction_threshold_tokens


def compactions_in_a_row(history: list[EventRecord]) -> int:
    """Compactions at the end of the log each followed by at most one answered request: the
    context stays over the threshold however often it is compacted."""
    count, answered = 0, 0
    for event in newest_first(history):
        if event["type"] == "agent.thread_context_compacted":
            count, answered = count + 1, 0
        elif event["type"] == "span.model_request_end" and harness_of(event).get("content") is not None:
            answered += 1
            if answered > 1:
                break
    return count


def summary_request(agent: SessionAgent, history: list[EventRecord]) -> ModelRequest:
    messages = build_messages(history)
    ask: ContentBlock = {"type": "text", "text": SUMMARY_INSTRUCTION}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "user" and isinstance(last["content"], list):
        messages[-1] = {**last, "content": [*last["content"], ask]}
    else:
        messages.append({"role": "user", "content": [ask]})
    model = str(agent["model"]["id"])
    return ModelRequest(model=model, messages=messages, max_tokens=4_096, system=harness_system(agent))
