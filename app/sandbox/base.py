"""What both backends share: the channel per session, tool dispatch, idle stop and web_search."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from app.config import Settings
from app.observability import measure
from app.sandbox import outputs, uploads
from app.sandbox.channel import ChannelClosed, ToolChannel
from app.sandbox.interface import MountedFile, SandboxError, SandboxSpec, ToolRequest, ToolResult
from app.sandbox.limits import KILL_GRACE_SECONDS, time_limit
from app.sandbox.web_search import web_search
from app.shared.loops import LoopService

log = logging.getLogger(__name__)

# Called with a session id once its sandbox's processes are stopped, before its files may go.
StopHook = Callable[[str], Awaitable[None]]


class ChannelBackend(ABC):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._channels: dict[str, ToolChannel] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.idle_stopper = _IdleStopper(self)
        # What each session's uploads directory holds (path -> digest), known since this process
        # placed it; unknown sessions are scanned once.
        self._mounted: dict[str, dict[str, str]] = {}
        self._stop_hooks: list[StopHook] = []

    # --- what a backend provides -------------------------------------------------------------
    @abstractmethod
    async def _attach(self, session_id: str) -> ToolChannel:
        """Start the session's tool server if it is stopped, and connect to it."""

    @abstractmethod
    def _socket_path(self, session_id: str) -> Path:
        """Where the session's tool server listens (host side)."""

    @abstractmethod
    async def _running_sessions(self) -> list[str]:
        """Sessions of this instance whose tool server is running (for the idle check)."""

    @abstractmethod
    async def _halt(self, session_id: str) -> None:
        """Stop the session's tool server, keeping its files."""

    @abstractmethod
    def uploads_dir(self, session_id: str) -> Path:
        """The host directory the sandbox sees read-only at /mnt/session/uploads."""

    @abstractmethod
    async def put_tree(self, session_id: str, source: Path, path: str) -> bool:
        """Copy a host directory into the sandbox at ``path`` unless that exists already."""

    @abstractmethod
    def outputs_dir(self, session_id: str) -> Path:
        """The host directory the sandbox writes /mnt/session/outputs to."""

    @abstractmethod
    def memory_dir(self, session_id: str) -> Path:
        """The host directory the sandbox sees at /mnt/memory (a directory per store)."""

    # --- shared ------------------------------------------------------------------------------
    async def list_outputs(self, session_id: str, limit: int) -> list[outputs.OutputFile]:
        return await asyncio.to_thread(outputs.list_files, self.outputs_dir(session_id), limit)

    def open_output(self, session_id: str, path: str) -> int:
        return outputs.open_file(self.outputs_dir(session_id), path)

    async def sync_files(self, session_id: str, files: Sequence[MountedFile]) -> None:
        wanted = {f.path: f.sha256 for f in files}
        before = self._mounted.get(session_id)
        if before == wanted:
            return
        root = self.uploads_dir(session_id)
        if before is None:
            # Not known to this process: scanned, unless there is no directory (a new session's
            # case: one stat here rather than a trip through the thread pool).
            before = await asyncio.to_thread(_scan, root) if root.is_dir() else {}
        if before or wanted:  # else nothing to place or remove
            sources = {f.path: f.source for f in files}
            async with self._lock(session_id):
                await asyncio.to_thread(uploads.apply, root, before, sources, wanted)
        self._mounted[session_id] = wanted

    def _forget_files(self, session_id: str) -> None:
        self._mounted.pop(session_id, None)

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def _channel(self, session_id: str) -> ToolChannel:
        channel = self._channels.get(session_id)
        if channel is not None and not channel.closed:
            return channel
        async with self._lock(session_id):
            channel = self._channels.get(session_id)
            if channel is None or channel.closed:
                channel = self._channels[session_id] = await self._attach(session_id)
        await self.idle_stopper.start()  # once the first sandbox is in use
        return channel

    async def _running_channel(self, session_id: str) -> ToolChannel:
        """The channel to a tool server that is running now, never starting one (ChannelClosed or
        TimeoutError when it is not): what the idle check talks to. Attaching could start a
        container that died, or was killed, since it was listed as running."""
        channel = self._channels.get(session_id)
        if channel is not None and not channel.closed:
            return channel
        channel = await ToolChannel.connect(self._socket_path(session_id))
        try:
            await channel.call({"op": "ping"}, 5.0)
        except BaseException:
            await channel.close()
            raise
        async with self._lock(session_id):
            current = self._channels.get(session_id)
            if current is None or current.closed:
                self._channels[session_id] = channel
                return channel
        await channel.close()  # someone attached meanwhile: theirs is kept
        return current

    async def execute(self, session_id: str, request: ToolRequest) -> ToolResult:
        timeout = time_limit(self.settings, request.name, request.input)
        if request.name == "web_search":
            return await web_search(self.settings, request, timeout)
        message = {"op": "tool", "name": request.name, "input": request.input, "timeout": timeout}
        channel = await self._channel(session_id)
        try:
            with measure.sandbox_exec(request.name):
                reply = await channel.call(message, timeout + KILL_GRACE_SECONDS)
        except ChannelClosed as exc:
            # Not retried: the call may have run (and had effects) before the server went away.
            await self._drop_channel(session_id)
            return ToolResult.error(
                f"The sandbox stopped during the call ({exc}); it restarts on the next call."
            )
        except TimeoutError:
            waited = timeout + KILL_GRACE_SECONDS
            return ToolResult.error(f"The {request.name} call did not answer within {waited:g} s.")
        return ToolResult(list(reply.get("content") or []), bool(reply.get("is_error")))

    async def cancel(self, session_id: str) -> None:
        """Kill the session's running tool calls (every process they started); they answer at once
        with an "interrupted" error. A sandbox that is not connected has nothing running for us."""
        channel = self._channels.get(session_id)
        if channel is None or channel.closed:
            return
        with contextlib.suppress(ChannelClosed, TimeoutError):
            await channel.call({"op": "cancel"}, 10.0)

    def health(self) -> str | None:
        """Why sandboxes are unavailable right now, or None (backends without an engine: never)."""
        return None

    async def probe(self) -> str | None:
        """Backends without an engine have nothing to ask."""
        return None

    async def prewarm(self, spec: SandboxSpec) -> None:
        """Get sandboxes of `spec` ready ahead of the sessions that will need them (optional)."""
        return None  # backends without a warm pool have nothing to do

    def on_stopped(self, hook: StopHook) -> None:
        """Run ``hook`` whenever a sandbox is stopped (idle stop, removal, reaping), after its
        processes are gone and before its files are: nothing written in it can come later."""
        self._stop_hooks.append(hook)

    async def _stopped(self, session_id: str) -> None:
        for hook in self._stop_hooks:
            try:
                await hook(session_id)
            except Exception:  # one failing hook must not keep the sandbox (or other hooks) alive
                log.exception("session %s: a stop hook failed", session_id)

    async def _halt_before_removal(self, session_id: str) -> None:
        """Stop the processes first when someone must see the files they leave (stop hooks)."""
        if self._stop_hooks:
            await self._halt(session_id)
            await self._stopped(session_id)

    async def stop(self, session_id: str) -> None:
        async with self._lock(session_id):
            await self._drop_channel(session_id)
            await self._halt(session_id)
            await self._stopped(session_id)

    async def _drop_channel(self, session_id: str) -> None:
        channel = self._channels.pop(session_id, None)
        if channel is not None:
            await channel.close()

    def services(self) -> list[LoopService]:
        return [self.idle_stopper]

    async def close(self) -> None:
        await self.idle_stopper.stop()
        for session_id in list(self._channels):
            await self._drop_channel(session_id)

    # --- idle stop ---------------------------------------------------------------------------
    async def stop_idle(self, limit: float) -> list[str]:
        """Stop every running sandbox whose tool server has been idle ``limit`` seconds or more.

        Idleness is the tool server's own clock, so several mas processes sharing sandboxes
        (API server and workers) agree on it.
        """
        stopped = []
        for session_id in await self._running_sessions():
            try:
                status = await (await self._running_channel(session_id)).call({"op": "status"}, 10.0)
            except (SandboxError, OSError, TimeoutError) as exc:
                # Gone since the listing, removed behind our back, or its tool server does not
                # answer: nothing to stop here, and the other sessions are still checked.
                log.debug("idle check: session %s skipped: %s", session_id, exc)
                await self._drop_channel(session_id)
                continue
            if float(status.get("idle_seconds", 0.0)) >= limit:
                await self.stop(session_id)
                stopped.append(session_id)
        return stopped



class _IdleStopper(LoopService):
    """Stops sandboxes idle for `sandbox_idle_stop_seconds`, looking every quarter of that
    (between 0.2 and 30 s); started with the backend's first sandbox, it outlives a failed check
    (Docker restarting)."""

    wait_first = True
    on_demand = True

    def __init__(self, backend: ChannelBackend) -> None:
        limit = backend.settings.sandbox_idle_stop_seconds
        super().__init__("sandbox-idle-stop", max(0.2, min(30.0, limit / 4)))
        self._backend = backend
        self._limit = limit

    async def run_once(self) -> float | None:
        await self._backend.stop_idle(self._limit)
        return None


def _scan(root: Path) -> dict[str, str]:
    """What an uploads directory holds (digests unknown: every file is placed again)."""
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): "" for p in root.rglob("*") if p.is_file()}
