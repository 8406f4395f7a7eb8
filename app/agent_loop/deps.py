"""What the agent loop runs with: settings, the database, fan-out, the model, the sandbox and MCP."""

from __future__ import annotations

from dataclasses import dataclass

from app.agent_loop.model_client import ModelClient
from app.config import Settings
from app.db.engine import Database
from app.events.notifier import Notifier
from app.mcp.hub import McpHub
from app.sandbox.interface import SandboxBackend


@dataclass
class LoopDeps:
    settings: Settings
    database: Database
    notifier: Notifier
    model: ModelClient
    sandbox: SandboxBackend
    mcp: McpHub
