"""A real uvicorn server for tests: in a thread of the test process, or as a `mas` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from app.api.http_protocol import http_protocol
from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """create_app(settings) served by uvicorn in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.port = settings.port if settings.port else free_port()
        self.settings = settings.model_copy(update={"port": self.port, "host": "127.0.0.1"})
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            http=http_protocol(),  # as `mas serve` runs it
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's event loop (where its services live); its result."""
        loop = self.server.servers[0].get_loop()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    def stop(self, timeout: float = 30) -> None:
        """End the server; raise (with where its thread is stuck) if it has not ended in ``timeout``.

        A server left running would go on polling a database its test has dropped, and hang or
        slow the rest of the run without a word: the failure must show here, with its cause."""
        self.server.should_exit = True
        self.thread.join(timeout=timeout)
        try:
            if self.thread.is_alive():
                stuck = _stack_of(self.thread)
                self.server.force_exit = True  # skip the graceful wait for connections and tasks
                self.thread.join(timeout=timeout)
                ended = "ended once forced" if not self.thread.is_alive() else "still running"
                raise RuntimeError(
                    f"test server {self.url} did not stop within {timeout:g} s ({ended}); "
                    f"its thread was at:\n{stuck}"
                )
        finally:
            if self.settings.sandbox_backend == "local":
                stop_tool_servers(self.settings.sandbox_state_dir)


def _stack_of(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    return "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"


def stop_tool_servers(state_dir: Path) -> None:
    """The local backend's tool servers outlive the process that started them; end ours by pid."""
    for pid_file in state_dir.glob("local/*/*/server.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def python_process(script: str, *args: str, ready: bytes) -> subprocess.Popen[bytes]:
    """``python -c script args`` from the checkout, once it has printed the line ``ready``
    (its stdin stays open: the script may wait on it to end)."""
    other = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert other.stdout is not None and other.stdout.readline() == ready
    return other


class ServerProcess:
    """`mas serve` (or `mas worker`) as a child process, for crash and cross-process tests."""

    def __init__(
        self,
        env: Mapping[str, str],
        args: list[str] | None = None,
        port: int | None = None,
        stderr: Path | None = None,
    ) -> None:
        self.stderr = stderr  # where the process's log goes (default: the test run's stderr)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args or ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_http: bool = True) -> ServerProcess:
        command = [sys.executable, "-m", "app", *self.args]
        if self.stderr is None:
            self.proc = subprocess.Popen(command, env=self.env, cwd=ROOT)
        else:
            with self.stderr.open("ab") as log:
                self.proc = subprocess.Popen(command, env=self.env, cwd=ROOT, stderr=log)
        if wait_http:
            self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        # Generous: importing the app took 36-64 s on a shared 2-core machine under load. Fails, never hangs.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"mas exited with {self.proc.returncode}")
            try:
                httpx.get(self.url + "/health", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()  # no process (and no Popen warning at garbage collection) outlives a failed start
        raise RuntimeError("mas did not become ready")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
