"""The tool server: JSON lines over a unix socket, one thread per request.

Request  {"id": 7, "op": "tool", "name": "bash", "input": {...}, "timeout": 120}
Response {"id": 7, "content": [...], "is_error": false}
Other ops: "ping" -> {"id", "ok": true}; "status" -> {"id", "ok": true, "idle_seconds": float};
"cancel" -> {"id", "ok": true, "cancelled": bool} kills the running bash command (an interrupt).
Several host connections may be open at once (the API server and a worker, say). A connection
that closes takes its running bash command with it: nobody is left to read the result, and a
worker that died mid-call must not leave the shell wedged for its successor.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import files
import procs
import search
import shell
import web
from output import Result, Spiller, error

DEFAULT_TIMEOUT_S = 60.0


class ToolServer:
    def __init__(self, workspace: Path, spill_dir: Path) -> None:
        self.workspace = workspace
        self.spiller = Spiller(spill_dir)
        self.shell = shell.Shell(workspace, self.spiller)
        self.busy = 0
        self.last_activity = time.monotonic()
        self.lock = threading.Lock()

    def watch_runaways(self, every_s: float = 1.0) -> None:
        """Kill fork bombs between calls too (in a container: scanning a host's /proc costs more)."""

        def loop() -> None:
            while True:
                time.sleep(every_s)
                with contextlib.suppress(OSError):
                    procs.kill_runaways(self.shell.server, self.shell.shell_pid())

        threading.Thread(target=loop, name="runaway-watch", daemon=True).start()

    def serve(self, socket_path: Path, listening: Callable[[], None] | None = None) -> None:
        """Accept connections for ever; ``listening`` is called once the socket accepts them."""
        socket_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bind by relative name: a host state dir can be longer than a sockaddr_un allows.
        cwd = os.getcwd()
        os.chdir(socket_path.parent)
        listener.bind(socket_path.name)
        os.chdir(cwd)
        listener.listen(16)
        if listening is not None:
            listening()
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        write_lock = threading.Lock()
        try:
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    try:
                        threading.Thread(
                            target=self._request, args=(conn, write_lock, line), daemon=True
                        ).start()
                    except RuntimeError:
                        # Out of processes (a fork bomb at the pids limit): answer inline, stay up.
                        self._request(conn, write_lock, line)
        except OSError:
            pass  # the host went away mid-line: same as a close
        finally:
            self.shell.cancel(owner=conn)

    def _request(self, conn: socket.socket, write_lock: threading.Lock, line: bytes) -> None:
        try:
            message = json.loads(line)
            reply = {"id": message.get("id"), **self.handle(message, conn)}
        except (ValueError, AttributeError) as exc:
            content, _ = error(f"bad request: {exc}")
            reply = {"id": None, "content": content, "is_error": True}
        data = json.dumps(reply).encode() + b"\n"
        # If the host went away the reply is lost; it learns from the closed channel.
        with write_lock, contextlib.suppress(OSError):
            conn.sendall(data)

    def handle(self, message: dict[str, Any], owner: object = None) -> dict[str, Any]:
        op = message.get("op", "tool")
        if op == "ping":
            return {"ok": True}
        if op == "status":
            return {"ok": True, "idle_seconds": self.idle_seconds()}
        if op == "cancel":
            return {"ok": True, "cancelled": self.shell.cancel()}
        with self.lock:
            self.busy += 1
        try:
            content, is_error = self.run_tool(
                message.get("name"), message.get("input") or {}, message.get("timeout"), owner
            )
        finally:
            with self.lock:
                self.busy -= 1
                self.last_activity = time.monotonic()
        return {"content": content, "is_error": is_error}

    def idle_seconds(self) -> float:
        with self.lock:
            return 0.0 if self.busy else time.monotonic() - self.last_activity

    def run_tool(self, name: Any, inp: Any, timeout: Any, owner: object = None) -> Result:
        if not isinstance(inp, dict):
            return error("tool input must be an object")
        limit = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None
        try:
            return self._dispatch(str(name), inp, limit, owner)
        except ValueError as exc:
            return error(str(exc))
        except OSError as exc:
            return error(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        except Exception as exc:  # a tool bug must come back as a tool error, not kill the server
            return error(f"{name} failed: {type(exc).__name__}: {exc}")

    def _dispatch(self, name: str, inp: dict[str, Any], limit: float | None, owner: object) -> Result:
        timeout = limit or DEFAULT_TIMEOUT_S
        if name == "bash":
            return self.shell.run(inp, limit, owner)
        if name == "read":
            return files.read(inp, self.workspace, self.spiller)
        if name == "write":
            return files.write(inp, self.workspace)
        if name == "edit":
            return files.edit(inp, self.workspace)
        if name == "glob":
            return search.glob(inp, self.workspace, timeout)
        if name == "grep":
            return search.grep(inp, self.workspace, timeout, self.spiller)
        if name == "web_fetch":
            return web.fetch(inp, timeout, self.spiller)
        return error(f"Unknown tool: {name}")
