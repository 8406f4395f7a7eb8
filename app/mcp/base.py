"""What the rest of mas needs from MCP connections without importing the ``mcp`` SDK, which
takes seconds to import: ``connection`` (and the SDK) load only when a session uses MCP."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue


class McpFailure(Exception):
    """The server could not be used. ``auth`` when it refused the credentials (401/403)."""

    def __init__(self, message: str, *, auth: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.auth = auth
        self.status = status


@dataclass(frozen=True)
class ListedTool:
    name: str
    description: str
    input_schema: dict[str, JsonValue]  # the server's JSON schema
