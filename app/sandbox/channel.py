"""The host end of the one long-lived JSON-lines connection to a session's tool server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

from app.sandbox.interface import SandboxError

# How long closing waits for unsent bytes to leave before dropping them.
_CLOSE_WAIT_S = 2.0

# Image and PDF reads come back base64-encoded in one line.
_LINE_LIMIT = 64 * 1024 * 1024


class ChannelClosed(SandboxError):
    """The tool server went away (container stopped or crashed)."""


async def open_socket(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the socket at ``path`` without following a symlink planted in its place.

    The socket's directory is writable from inside the sandbox, so the file is opened O_PATH |
    O_NOFOLLOW and connected through /proc/self/fd: no symlink swap can redirect the host to
    another socket (such as the Docker daemon's), and long state paths fit in a sockaddr.
    """
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise SandboxError(f"{path} is not a socket")
        return await asyncio.open_unix_connection(f"/proc/self/fd/{fd}", limit=_LINE_LIMIT)
    finally:
        os.close(fd)


class ToolChannel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}  # JSON boundary: the replies
        self._reader_task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, path: Path) -> ToolChannel:
        try:
            reader, writer = await open_socket(path)
        except OSError as exc:
            raise ChannelClosed(f"cannot connect to the tool server at {path}: {exc}") from exc
        return cls(reader, writer)

    @property
    def closed(self) -> bool:
        return self._reader_task.done()

    async def call(self, message: dict[str, Any], wait_s: float) -> dict[str, Any]:  # JSON boundary
        """Send one request and wait for its reply; raises TimeoutError or ChannelClosed."""
        if self.closed:
            raise ChannelClosed("the tool server connection is closed")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()  # JSON boundary
        self._pending[request_id] = future
        try:
            self._writer.write(json.dumps({**message, "id": request_id}).encode() + b"\n")
            await self._writer.drain()
            return await asyncio.wait_for(future, wait_s)
        except (ConnectionError, BrokenPipeError) as exc:
            raise ChannelClosed(f"the tool server connection broke: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)

    async def _read_loop(self) -> None:
        try:
            while line := await self._reader.readline():
                reply = json.loads(line)
                future = self._pending.get(reply.get("id"))
                if future is not None and not future.done():
                    future.set_result(reply)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass  # treated like EOF: the pending calls fail below
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ChannelClosed("the tool server closed the connection"))
            # A channel that saw its end is dropped and replaced without `close()` (see the
            # backends' `channel.closed` checks): its socket goes now, not with the collector.
            self._writer.close()

    async def close(self) -> None:
        """Close the connection; bounded: a peer that stopped reading (a frozen or half-gone tool
        server, a relay that no longer forwards) cannot hold us while unsent bytes wait."""
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), _CLOSE_WAIT_S)
        except TimeoutError:
            self._writer.transport.abort()  # drop the unsent bytes: nobody is reading them
        except (ConnectionError, OSError):
            pass
