"""The time limit of a tool call: computed here and only here.

bash: the call's `timeout_ms` if it is a positive integer, else `MAS_SANDBOX_BASH_TIMEOUT_SECONDS`;
every other tool: `DEFAULT_TOOL_SECONDS`. Nothing exceeds `MAS_SANDBOX_MAX_TOOL_SECONDS`. The tool
server enforces the limit (killing the call's process group); the host waits `KILL_GRACE_SECONDS`
longer for its answer before it gives up on the connection.
"""

from __future__ import annotations

from pydantic import JsonValue

from app.config import Settings

DEFAULT_TOOL_SECONDS = 60.0
KILL_GRACE_SECONDS = 15.0


def time_limit(
    settings: Settings,
    name: str,
    tool_input: dict[str, JsonValue],  # chosen by the model
) -> float:
    """Seconds the call may run; the tool server kills it (and all it started) after that."""
    limit = DEFAULT_TOOL_SECONDS
    if name == "bash":
        limit = settings.sandbox_bash_timeout_seconds
        ms = tool_input.get("timeout_ms")
        if isinstance(ms, int) and not isinstance(ms, bool) and ms > 0:
            limit = ms / 1000.0
    return min(limit, settings.sandbox_max_tool_seconds)
