"""The same tool server as a host process per session: for development and tests, NOT isolated.

Workspaces are per-session directories under the state dir; packages and networking policies
are not applied (nothing contains the process).

Servers are forked by a zygote (`toolserver --zygote`, one per backend, started on first use)
rather than started as new interpreters: a fresh Python with the tool server's imports costs
~80-100 ms of CPU, a fork of the zygote a few. Each session still gets a process of its own
(its own shell, cwd and environment), detached as before, so it outlives this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from app.config import Settings
from app.sandbox.base import ChannelBackend
from app.sandbox.channel import ChannelClosed, ToolChannel
from app.sandbox.containers import WORKSPACE
from app.sandbox.interface import Progress, SandboxError, SandboxNotFound, SandboxSpec

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class Zygote:
    """The tool server's zygote: a process that forks detached servers on request (see
    `sandbox/toolserver/__main__.py`). Blocking calls, made from a worker thread; one at a time."""

    def __init__(self, server: Path) -> None:
        self.server = server
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def spawn(self, args: list[str]) -> None:
        """Start a server with `args` (which must detach); raises like `subprocess.run(check=True)`."""
        with self._lock:
            reply = self._ask(args)
        if "error" in reply:
            raise SandboxError(f"the tool server zygote refused to start a server: {reply['error']}")
        status = reply.get("status")
        if status != 0:
            code = status if isinstance(status, int) else 1
            raise subprocess.CalledProcessError(code, [str(self.server), *args])

    def _ask(self, args: list[str]) -> dict[str, object]:  # JSON boundary: the tool runner's reply
        for attempt in range(2):  # a zygote that died (killed, out of memory) is started again once
            proc = self._started()
            stdin, stdout = _pipes(proc)
            try:
                stdin.write(json.dumps(args) + "\n")
                stdin.flush()
                # One request at a time, so nothing is buffered ahead of this reply.
                ready, _, _ = select.select([stdout], [], [], _START_TIMEOUT_S)
                line = stdout.readline() if ready else ""
            except OSError:
                line = ""
            if line:
                reply = json.loads(line)
                return reply if isinstance(reply, dict) else {"error": f"unexpected reply {line!r}"}
            self._reap()
            if attempt:
                break
        raise SandboxError("the tool server zygote exited")

    def _started(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is not None:
            self._reap()  # it died since the last call: its pipes go with it
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, str(self.server), "--zygote"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a ^C to mas does not reach it; it exits when mas does
            )
        return self._proc

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_STOP_TIMEOUT_S)

    def close(self) -> None:
        """End the zygote (the servers it started stay)."""
        with self._lock:
            self._reap()


def _pipes(proc: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    if proc.stdin is None or proc.stdout is None:
        raise SandboxError("the tool server zygote has no pipes")
    return proc.stdin, proc.stdout


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
        async with self._lock(session_id):
            (self._dir(session_id) / "workspace").mkdir(parents=True, exist_ok=True)
            channel = self._channels.get(session_id)
            if channel is None or channel.closed:
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
        await asyncio.to_thread(self._spawn, session_id)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(ChannelClosed):
                return await ToolChannel.connect(self._socket_path(session_id))
            await asyncio.sleep(0.01)
        raise SandboxError(f"the local tool server of {session_id} did not start")

    def _socket_path(self, session_id: str) -> Path:
        return self._dir(session_id) / "tool.sock"

    def _spawn(self, session_id: str) -> None:
        base = self._dir(session_id)
        self._socket_path(session_id).unlink(missing_ok=True)
        args = [
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
            "--detach",
        ]
        # --detach double-forks: the server outlives this process, like a container would.
        self._zygote.spawn(args)

    async def _halt(self, session_id: str) -> None:
        await asyncio.to_thread(self._kill, session_id)

    def _kill(self, session_id: str) -> None:
        pid_file = self._dir(session_id) / "server.pid"
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        # From here on nothing may connect to the dying server (a busy machine can take seconds to
        # run its handler): the next call starts a new one instead of losing its connection.
        self._socket_path(session_id).unlink(missing_ok=True)
        # The server takes its shell down, then exits. One that is still going when we give up sees
        # its pid file gone and does the same (toolserver's disowned watch).
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        pid_file.unlink(missing_ok=True)

    async def remove(self, session_id: str) -> None:
        async with self._lock(session_id):
            await self._drop_channel(session_id)
            self._forget_files(session_id)
            await asyncio.to_thread(self._kill, session_id)
            await self._stopped(session_id)
            await asyncio.to_thread(shutil.rmtree, self._dir(session_id), True)
        self._locks.pop(session_id, None)

    async def close(self) -> None:
        await super().close()
        await asyncio.to_thread(self._zygote.close)

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


def _alive(pid: int) -> bool:
    """Running and not a zombie (the detached server's reaper may take its time)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
