"""The sandbox seam the agent loop talks to: typed requests, lifecycle apart from execution."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import JsonValue

from app.sandbox.outputs import OutputFile
from app.shared.content import ContentBlock
from app.shared.environment_config import NetworkingConfig, unrestricted
from app.shared.loops import LoopService

Progress = Callable[[str], Awaitable[None]]

TOOL_NAMES = ("bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search")


@dataclass(frozen=True)
class MemoryMount:
    """A memory store mounted at /mnt/memory/<slug> (read-only for ``read_only`` stores)."""

    slug: str
    read_only: bool


@dataclass(frozen=True)
class EgressSecret:
    """A vault ``environment_variable`` credential: the sandbox sees a placeholder in the variable
    ``name``; the egress proxy puts ``value`` in its place on the hosts both ``hosts`` (None: any)
    and the environment allow, in headers and/or bodies. ``value`` is never in a repr."""

    name: str
    value: str = field(repr=False)
    hosts: tuple[str, ...] | None = None
    header: bool = True
    body: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    """What a session's container is built from: the environment config, the agent's MCP hosts,
    the session's memory mounts (fixed when the container is created) and its vault secrets (their
    variables are fixed at creation too; values, hosts and locations are renewed at every ensure)."""

    env_id: str
    packages: dict[str, list[str]] = field(default_factory=dict)
    networking: NetworkingConfig = field(default_factory=unrestricted)
    mcp_hosts: list[str] = field(default_factory=list)
    memory: tuple[MemoryMount, ...] = ()
    # None: not looked up (an ensure for another reason leaves a running sandbox's as they are).
    secrets: tuple[EgressSecret, ...] | None = None


@dataclass(frozen=True)
class MountedFile:
    """A file the session mounts read-only: its path under /mnt/session/uploads, its content
    digest, and where the host holds those bytes."""

    path: str
    sha256: str
    source: Path


@dataclass(frozen=True)
class ToolRequest:
    """One call; its time limit comes from `limits.time_limit` (bash: `timeout_ms`, capped)."""

    name: str
    input: dict[str, JsonValue]  # chosen by the model


@dataclass(frozen=True)
class ToolResult:
    """Anthropic content blocks (text, image, document) and whether the call failed."""

    content: list[ContentBlock]
    is_error: bool = False

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls([{"type": "text", "text": message}], is_error=True)


class SandboxError(Exception):
    """The sandbox could not be provided (not a tool failure: those are ToolResult errors)."""


class SandboxNotFound(SandboxError):
    """execute() for a session that has no sandbox: call ensure() first."""


class ImageBuildError(SandboxError):
    """A package manager failed while building an environment image; nothing was tagged."""

    def __init__(self, manager: str, output: str) -> None:
        super().__init__(f"{manager} install failed:\n{output[-4000:]}")
        self.manager = manager
        self.output = output


class SandboxBackend(Protocol):
    async def ensure(self, session_id: str, spec: SandboxSpec, on_progress: Progress | None = None) -> None:
        """Create and start the session's sandbox (building its image if needed); idempotent."""

    async def execute(self, session_id: str, request: ToolRequest) -> ToolResult:
        """Run one tool call; a stopped sandbox is started again first."""

    async def sync_files(self, session_id: str, files: Sequence[MountedFile]) -> None:
        """Make the sandbox's /mnt/session/uploads hold exactly ``files`` (read-only; a running
        sandbox sees changes at once)."""

    async def put_tree(self, session_id: str, source: Path, path: str) -> bool:
        """Copy the host directory ``source`` to ``path`` in the sandbox unless ``path`` exists
        there already (a repository the agent may have changed); whether it was copied."""

    def memory_dir(self, session_id: str) -> Path:
        """Host side of /mnt/memory: one directory per mounted store (``<slug>/``)."""

    async def list_outputs(self, session_id: str, limit: int) -> list[OutputFile]:
        """Regular files the sandbox holds under /mnt/session/outputs (links are not followed)."""

    def open_output(self, session_id: str, path: str) -> int:
        """A read-only descriptor of one output file (blocking; OSError if it is not a regular file)."""

    async def cancel(self, session_id: str) -> None:
        """Kill the session's running tool calls and everything they started (an interrupt)."""

    async def prewarm(self, spec: SandboxSpec) -> None:
        """Get sandboxes of `spec` ready ahead of the sessions that will need them (optional)."""

    async def stop(self, session_id: str) -> None:
        """Stop the sandbox, keeping its files."""

    def on_stopped(self, hook: Callable[[str], Awaitable[None]]) -> None:
        """Call ``hook(session_id)`` whenever a sandbox stops (idle stop, removal, reaping), after
        its processes are gone and before its files are."""

    async def remove(self, session_id: str) -> None:
        """Delete the sandbox and everything in it."""

    async def reap_orphans(self, live_session_ids: set[str]) -> int:
        """Remove sandboxes of sessions not in ``live_session_ids``; returns how many."""

    def health(self) -> str | None:
        """Why sandboxes are unavailable right now (e.g. the engine does not answer), or None."""

    async def probe(self) -> str | None:
        """Ask the engine now (readiness): why sandboxes cannot start, or None."""

    def workspace(self, session_id: str) -> str:
        """The directory relative tool paths resolve against (``/workspace`` in a container)."""

    def services(self) -> list[LoopService]:
        """The backend's own background loops (idle stop), for introspection."""

    async def close(self) -> None:
        """Drop connections and background tasks; sandboxes keep running for the next process."""
