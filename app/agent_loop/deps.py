"""What the agent loop runs with: settings, the database, fan-out, the model, the sandbox and MCP."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.agent_loop.memory import MemoryMounter
from app.agent_loop.model_client import ModelClient
from app.agent_loop.outputs import OutputIndex
from app.agent_loop.repositories import RepoMounter, Unsealer
from app.agent_loop.skills import SkillMounter
from app.config import Settings
from app.db.engine import Database
from app.events.notifier import Notifier
from app.mcp.hub import McpHub
from app.sandbox.interface import SandboxBackend
from app.storage.blobs import BlobBackend


@dataclass
class LoopDeps:
    settings: Settings
    database: Database
    notifier: Notifier
    model: ModelClient
    sandbox: SandboxBackend
    mcp: McpHub
    blobs: BlobBackend
    repos: RepoMounter
    skills: SkillMounter
    memory: MemoryMounter
    # Opens a repository resource's sealed token: (resource id, sealed) -> token.
    unseal: Unsealer
    outputs: OutputIndex = field(default_factory=OutputIndex)
