"""The same tool server as a host process per session: for development and tests, NOT isolated.

Workspaces are per-session directories under the state dir; packages and networking policies
are not applied (nothing contains the process).

Servers are forked by a zygote (`toolserver --zygote`, one per backend, started on first use)
rather than started as new interpreters: a fresh Python with the tool server's imports costs
~80-100 ms of CPU, a fork of the zygote a few. Each session still gets a process of its own
(its own shell, cwd and environment, its own session id), which outlives this process. Many
servers start at once: requests to the zygote carry ids and are answered when each server
listens, so nothing waits for another session's server, and nothing polls its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.sandbox.base import ChannelBackend
from app.sandbox.channel import ChannelClosed, ToolChannel
from app.sandbox.containers import WORKSPACE
from app.sandbox.interface import Progress, SandboxError, SandboxNotFound, SandboxSpec

log = logging.getLogger(__name__)

# How long a server may take to listen once asked for (a loaded machine starting a hundred at once).
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
# Replies are one short JSON line each (a failing server's output is capped by the zygote).
_REPLY_LIMIT = 1024 * 1024


class _ZygoteGone(Exception):
    """The zygote exited (or was killed) before it answered."""


@dataclass
class _Running:
    """One zygote process and the requests it has not answered yet."""

    loop: asyncio.AbstractEventLoop
    process: asyncio.Task[asyncio.subprocess.Process]
    # JSON boundary: the zygote's replies, by request id
    pending: dict[int, asyncio.Future[dict[str, object]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    answered_at: float = 0.0  # when it last answered anything (monotonic)
    gone: bool = False

    def fail_pending(self) -> None:
        self.gone = True
        for future in self.pending.values():
            if not future.done():
                future.set_exception(_ZygoteGone())
        self.pending.clear()


class Zygote:
    """The tool server's zygote (see `sandbox/toolserver/__main__.py`): a process that forks
    detached servers on request. Requests are pipelined: each carries an id, one reader task
    resolves the waiting `spawn` by the reply's id, and no lock is held across a round trip.
    A zygote that died is started again (once per spawn); one is bound to the event loop that
    started it (another loop gets a zygote of its own)."""

    def __init__(self, server: Path) -> None:
        self.server = server
        self._running: _Running | None = None
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int | None:
        """The zygote's process id, once it runs (None before the first spawn and after close)."""
        running = self._running
        if running is None or not running.process.done() or running.process.cancelled():
            return None
        if running.process.exception() is not None:
            return None
        return running.process.result().pid

    async def spawn(self, args: list[str]) -> int:
        """Start a server with `args` (which must include --detach); returns its pid once it
        listens. SandboxError (with the server's own words) if it could not start."""
        for attempt in range(2):
            running = self._current()
            try:
                return await self._ask(running, args)
            except _ZygoteGone:
                self._forget(running)
                if attempt:
                    break
        raise SandboxError("the tool server zygote exited")

    async def _ask(self, running: _Running, args: list[str]) -> int:
        try:
            process = await asyncio.shield(running.process)
        except OSError as exc:
            self._forget(running)
            raise SandboxError(f"could not start the tool server zygote: {exc}") from exc
        if running.gone or process.stdin is None:
            raise _ZygoteGone()
        request_id = next(self._ids)
        reply_future: asyncio.Future[dict[str, object]] = running.loop.create_future()  # JSON boundary
        running.pending[request_id] = reply_future
        asked_at = time.monotonic()
        try:
            process.stdin.write(json.dumps({"id": request_id, "argv": args}).encode() + b"\n")
            reply = await asyncio.wait_for(reply_future, _START_TIMEOUT_S)
        except ConnectionError as exc:  # its stdin is closed: it is gone
            raise _ZygoteGone() from exc
        except TimeoutError:
            if running.answered_at < asked_at and not running.gone:
                # Nothing answered since we asked: the zygote itself is stuck. Those waiting on it
                # are failed over to a new one; this server is reported as not started.
                log.warning("the tool server zygote answered nothing in %g s: restarted", _START_TIMEOUT_S)
                self._forget(running)
            raise SandboxError(f"the tool server did not listen within {_START_TIMEOUT_S:g} s") from None
        finally:
            running.pending.pop(request_id, None)
        pid = reply.get("pid")
        if isinstance(pid, int):
            return pid
        output = reply.get("output")
        if output:
            log.warning("a tool server failed to start: %s", output)
        status = reply.get("status")
        said = f"exit status {status}: " if status is not None else ""
        raise SandboxError(f"the tool server did not start ({said}{reply.get('error')})")

    def _current(self) -> _Running:
        loop = asyncio.get_running_loop()
        running = self._running
        if running is not None and (running.gone or running.loop is not loop):
            self._forget(running)
            running = None
        if running is None:
            running = self._running = _Running(loop, loop.create_task(self._start()))
            running.process.add_done_callback(lambda task: self._started(running, task))
        return running

    async def _start(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(self.server),
            "--zygote",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_REPLY_LIMIT,
            start_new_session=True,  # a ^C to mas does not reach it; it exits when mas does
        )

    def _started(self, running: _Running, task: asyncio.Task[asyncio.subprocess.Process]) -> None:
        if task.cancelled() or task.exception() is not None:
            running.fail_pending()
            return
        running.reader = running.loop.create_task(self._read(running, task.result()))

    async def _read(self, running: _Running, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                reply = json.loads(line)
                running.answered_at = time.monotonic()
                request_id = reply.get("id") if isinstance(reply, dict) else None
                future = running.pending.get(request_id) if isinstance(request_id, int) else None
                if future is not None and not future.done():
                    future.set_result(reply)
        except (ValueError, ConnectionError, asyncio.LimitOverrunError) as exc:
            log.warning("the tool server zygote's answers broke off: %s", exc)
        finally:
            running.fail_pending()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.wait()

    def _forget(self, running: _Running) -> None:
        """Drop a zygote that died, is stuck, or belongs to another event loop (kill it)."""
        if self._running is running:
            self._running = None
        running.fail_pending()
        if running.process.done() and not running.process.cancelled() and running.process.exception() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(running.process.result().pid, signal.SIGKILL)

    async def close(self) -> None:
        """End the zygote (the servers it started stay): its stdin closes, and it exits."""
        running, self._running = self._running, None
        if running is None or running.loop is not asyncio.get_running_loop():
            if running is not None:
                self._forget(running)
            return
        try:
            process = await running.process
        except Exception:
            return
        if process.stdin is not None:
            process.stdin.close()
        reader = running.reader
        if reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(reader), _STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await reader


class LocalBackend(ChannelBackend):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.root = settings.sandbox_state_dir.resolve() / "local" / settings.sandbox_instance
        self._zygote = Zygote(settings.sandbox_assets_dir.resolve() / "toolserver")

    def _dir(self, session_id: str) -> Path:
        return self.root / session_id

    def workspace(self, session_id: str) -> str:
        return str(self._dir(session_id) / "workspace")

    def uploads_dir(self, session_id: str) -> Path:
        """Unisolated: there is no /mnt/session/uploads, the files are placed here instead."""
        return self._dir(session_id) / "uploads"

    async def put_tree(self, session_id: str, source: Path, path: str) -> bool:
        """Unisolated: ``/workspace/...`` is the session's workspace directory on the host."""
        relative = path.removeprefix(WORKSPACE).lstrip("/")
        target = Path(self.workspace(session_id)) / relative
        if target.exists():
            return False
        await asyncio.to_thread(shutil.copytree, source, target, symlinks=True)
        return True

    def outputs_dir(self, session_id: str) -> Path:
        return self._dir(session_id) / "outputs"

    def memory_dir(self, session_id: str) -> Path:
        """Unisolated: there is no /mnt/memory, the stores are placed here instead."""
        return self._dir(session_id) / "memory"

    async def ensure(self, session_id: str, spec: SandboxSpec, on_progress: Progress | None = None) -> None:
        channel = self._channels.get(session_id)
        if channel is None or channel.closed:  # else: connected, nothing to do (every tool step asks)
            async with self._lock(session_id):
                channel = self._channels.get(session_id)
                if channel is None or channel.closed:
                    # The server makes the session's directory (its workspace and outputs, with
                    # parents) before it writes its pid file or binds its socket there.
                    self._channels[session_id] = await self._start_and_connect(session_id)
        await self.idle_stopper.start()

    async def _attach(self, session_id: str) -> ToolChannel:
        if not self._dir(session_id).is_dir():
            raise SandboxNotFound(f"session {session_id} has no sandbox; call ensure() first")
        return await self._start_and_connect(session_id)

    async def _start_and_connect(self, session_id: str) -> ToolChannel:
        # A server left running by an earlier process is reused as is.
        with contextlib.suppress(ChannelClosed):
            return await ToolChannel.connect(self._socket_path(session_id))
        try:
            await self._zygote.spawn(self._server_args(session_id))
        except SandboxError as exc:
            raise SandboxError(f"the local tool server of {session_id} did not start: {exc}") from exc
        # It listens (the zygote answers only then): one connect, no polling.
        try:
            return await ToolChannel.connect(self._socket_path(session_id))
        except ChannelClosed as exc:
            raise SandboxError(f"the local tool server of {session_id} went away at once: {exc}") from exc

    def _socket_path(self, session_id: str) -> Path:
        return self._dir(session_id) / "tool.sock"

    def _server_args(self, session_id: str) -> list[str]:
        base = self._dir(session_id)
        return [
            "--socket",
            str(self._socket_path(session_id)),
            "--workspace",
            str(base / "workspace"),
            "--spill-dir",
            str(base / "tool-output"),
            "--make-dirs",
            str(base / "outputs"),
            "--pid-file",
            str(base / "server.pid"),
            "--detach",  # the server outlives this process, like a container would
        ]

    async def _halt(self, session_id: str) -> None:
        await self._kill(session_id)

    async def _kill(self, session_id: str) -> None:
        """SIGTERM the session's server and wait (on the event loop, through a pidfd: no thread
        parked per stop) until it has exited, or `_STOP_TIMEOUT_S`."""
        pid_file = self._dir(session_id) / "server.pid"
        try:
            pid = int(pid_file.read_text())
            process = os.pidfd_open(pid)
        except (OSError, ValueError):
            return
        try:
            try:
                signal.pidfd_send_signal(process, signal.SIGTERM)  # this process, even if the pid moved on
            except OSError:
                return
            # From here on nothing may connect to the dying server (a busy machine can take seconds
            # to run its handler): the next call starts a new one instead of losing its connection.
            self._socket_path(session_id).unlink(missing_ok=True)
            # The server takes its shell down, then exits. One that is still going when we give up
            # sees its pid file gone and does the same (toolserver's disowned watch).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await _exit_of(process)
            pid_file.unlink(missing_ok=True)
        finally:
            os.close(process)

    async def remove(self, session_id: str) -> None:
        async with self._lock(session_id):
            await self._drop_channel(session_id)
            self._forget_files(session_id)
            await self._kill(session_id)
            await self._stopped(session_id)
            await asyncio.to_thread(shutil.rmtree, self._dir(session_id), True)
        self._locks.pop(session_id, None)

    async def close(self) -> None:
        await super().close()
        await self._zygote.close()

    async def reap_orphans(self, live_session_ids: set[str]) -> int:
        known = {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()
        orphans = known - live_session_ids
        for session_id in orphans:
            await self.remove(session_id)
        return len(orphans)

    async def _running_sessions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [p.name for p in self.root.iterdir() if (p / "server.pid").exists()]


async def _exit_of(pidfd: int) -> None:
    """Until the process exits (its pidfd turns readable; a zombie counts)."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
