"""Closing channels and the idle check when a sandbox misbehaves: neither may hang or give up.

No engine needed: a tool server is played by a unix socket server in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from app.sandbox.base import ChannelBackend
from app.sandbox.channel import ToolChannel
from app.sandbox.interface import SandboxNotFound
from tests.sandbox.conftest import sandbox_settings

pytestmark = pytest.mark.timeout(60)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def socket_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A short path: unix socket paths are limited to ~108 bytes.
    return Path(tmp_path_factory.mktemp("ch", numbered=True))


@contextlib.asynccontextmanager
async def serve(path: Path, handler: Handler) -> AsyncIterator[Path]:
    """A unix socket server whose connections all end (and close) when the block ends."""
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.transport.abort()

    server = await asyncio.start_unix_server(connection, path=str(path))
    try:
        yield path
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A peer that accepts and then never reads again (a frozen tool server)."""
    await asyncio.sleep(3600)


async def answers_idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tool server idle for an hour: it answers every request with its status."""
    while line := await reader.readline():
        request = json.loads(line)
        writer.write(json.dumps({"id": request["id"], "idle_seconds": 3600.0}).encode() + b"\n")
        await writer.drain()


async def test_closing_a_channel_whose_peer_stopped_reading_returns(socket_dir: Path) -> None:
    async with serve(socket_dir / "deaf.sock", deaf) as path:
        channel = await ToolChannel.connect(path)
        # More than the socket buffers hold: without a bound, close waits for these bytes forever.
        channel._writer.write(b"x" * (32 << 20))
        await asyncio.wait_for(channel.close(), 30)  # a hang bound, not a speed check
        assert channel.closed


class FakeBackend(ChannelBackend):
    """Sessions whose attach either fails (gone behind our back) or reaches a tool server."""

    def __init__(self, root: Path, sockets: dict[str, Path | None]) -> None:
        super().__init__(sandbox_settings(root))
        self.sockets = sockets
        self.halted: list[str] = []
        self.attached: list[str] = []

    async def _attach(self, session_id: str) -> ToolChannel:
        self.attached.append(session_id)  # a real backend would start the tool server here
        path = self.sockets[session_id]
        if path is None:
            raise SandboxNotFound(f"session {session_id} has no sandbox")
        return await ToolChannel.connect(path)

    def _socket_path(self, session_id: str) -> Path:
        return self.sockets[session_id] or self.settings.sandbox_state_dir / f"{session_id}.gone"

    async def _running_sessions(self) -> list[str]:
        return list(self.sockets)

    async def _halt(self, session_id: str) -> None:
        self.halted.append(session_id)

    def uploads_dir(self, session_id: str) -> Path:
        raise NotImplementedError

    async def put_tree(self, session_id: str, source: Path, path: str) -> bool:
        raise NotImplementedError

    def outputs_dir(self, session_id: str) -> Path:
        raise NotImplementedError

    def memory_dir(self, session_id: str) -> Path:
        raise NotImplementedError


@pytest.fixture
async def idle_server(socket_dir: Path) -> AsyncIterator[Path]:
    async with serve(socket_dir / "idle.sock", answers_idle) as path:
        yield path


async def test_the_idle_check_skips_a_sandbox_gone_behind_its_back(
    socket_dir: Path, idle_server: Path
) -> None:
    gone, idle = f"sesn_{uuid.uuid4().hex[:8]}", f"sesn_{uuid.uuid4().hex[:8]}"
    # The gone session is listed first: before, its error ended the whole pass, every pass.
    backend = FakeBackend(socket_dir, {gone: None, idle: idle_server})
    try:
        assert await backend.stop_idle(60.0) == [idle]
        assert backend.halted == [idle]
    finally:
        await asyncio.wait_for(backend.close(), 30)


async def test_the_idle_check_never_starts_a_sandbox_that_died_after_the_listing(
    socket_dir: Path, idle_server: Path
) -> None:
    """Listed as running, then killed (its socket no longer answers): attaching would start it
    again, and a dead container a prune was about to remove would be running once more."""
    died, idle = f"sesn_{uuid.uuid4().hex[:8]}", f"sesn_{uuid.uuid4().hex[:8]}"
    backend = FakeBackend(socket_dir, {died: socket_dir / "died.sock", idle: idle_server})
    try:
        assert await backend.stop_idle(60.0) == [idle]
        assert backend.attached == []
        assert backend.halted == [idle]
    finally:
        await asyncio.wait_for(backend.close(), 30)


async def test_closing_a_backend_with_a_deaf_channel_returns(socket_dir: Path) -> None:
    async with serve(socket_dir / "deaf2.sock", deaf) as path:
        backend = FakeBackend(socket_dir, {"sesn_deaf": path})
        channel = await backend._channel("sesn_deaf")
        channel._writer.write(b"x" * (32 << 20))
        await asyncio.wait_for(backend.close(), 30)
        assert channel.closed
