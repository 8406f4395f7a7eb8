"""The persistent bash tool: one shell per session whose cwd, env and jobs survive calls.

Each command is written to a file and ``source``d, so a syntax error or a command reading stdin
cannot desynchronise the shell; a random end marker carries the exit status.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import procs
from output import LIMIT, Result, Spiller, error, note_and_preview, text

DEFAULT_TIMEOUT_S = 120.0
# Keep enough raw bytes for LIMIT characters even when every character is multi-byte.
_KEEP_BYTES = LIMIT * 4
# Bytes never flushed to the spill file before the end marker has been seen and cut off.
_HOLD = 256
# `yes` must not fill the disk: the spill file of one command stops growing here.
_SPILL_CAP = 64 * 1024 * 1024


class _Capture:
    """Collects a command's output: a bounded tail in memory, everything else in a spill file."""

    def __init__(self, spiller: Spiller) -> None:
        self.spiller = spiller
        self.buf = bytearray()
        self.total = 0
        self.file: Any = None
        self.path: Path | None = None
        self.failed: str | None = None  # why the spill file could not be written (a full disk)

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        self.total += len(chunk)
        if len(self.buf) > _KEEP_BYTES + _HOLD:
            cut = len(self.buf) - _KEEP_BYTES
            self._to_file(bytes(self.buf[:cut]))
            del self.buf[:cut]

    def _to_file(self, data: bytes) -> None:
        if self.failed is not None:
            return
        try:
            if self.file is None:
                self.path = self.spiller.new_path("bash")
                self.file = self.path.open("wb")
            if self.file.tell() < _SPILL_CAP:
                self.file.write(data)
        except OSError as exc:  # the command goes on; only the saved copy of its output is lost
            self.failed = exc.strerror or str(exc)

    def finish(self, end: int) -> str:
        """Cut the buffer at ``end`` (where the marker starts) and return the text for the model."""
        body = bytes(self.buf[:end])
        if self.file is None:
            decoded = body.decode("utf-8", errors="replace")
            if len(decoded) <= LIMIT:
                return decoded
            self._to_file(b"")
        if self.file is not None:
            try:
                if self.failed is None:
                    self.file.write(body)
                self.file.close()
            except OSError as exc:
                self.failed = self.failed or exc.strerror or str(exc)
            self.file = None
        tail = body.decode("utf-8", errors="replace")
        if self.failed is not None:
            total = self.total - (len(self.buf) - end)
            lost = f"the rest is lost ({self.failed})"
            note = f"[output truncated: the last {LIMIT} of {total} characters; {lost}]"
            return f"{note}\n{tail[-LIMIT:]}"
        assert self.path is not None
        total = self.total - (len(self.buf) - end)  # the marker is not output
        return note_and_preview(self.path, tail, total, keep_tail=True)


class Shell:
    def __init__(self, workspace: Path, spiller: Spiller) -> None:
        self.workspace = workspace
        self.spiller = spiller
        self.lock = threading.Lock()  # one command at a time
        self.proc: subprocess.Popen[bytes] | None = None
        self.scratch = Path(tempfile.mkdtemp(prefix="mas-shell-"))
        self.server = f"{os.getpid()}.{secrets.token_hex(4)}"  # prefix of this server's call marks
        # The running command: who asked for it (a host connection) and its mark; guarded by _state.
        self._state = threading.Lock()
        self._owner: object = None
        self._mark: str | None = None
        self._cancelled = False
        self._ran = False  # whether a call has run: before the first, no process can carry a mark

    def run(self, inp: dict[str, Any], timeout: float | None, owner: object = None) -> Result:
        command = inp.get("command")
        if command is not None and not isinstance(command, str):
            return error("command must be a string")
        limit = timeout or _timeout(inp)
        if inp.get("restart"):
            self.cancel()  # a wedged command must not make the restart wait for it
        with self.lock:
            if inp.get("restart"):
                self.kill()
                if not command:
                    return text("Shell restarted.")
            if not command:
                return error("Missing required parameter: command")
            # A fork bomb left by an earlier call must not slow this one: it goes first.
            swept = procs.kill_runaways(self.server, self.shell_pid()) if self._ran else 0
            self._ran = True
            result = self._run(command, limit, owner)
        if not swept:
            return result
        note = f"[{swept} processes left running by an earlier command (a runaway swarm) were killed first]"
        return _with_note(result, note)

    def shell_pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None else None

    def cancel(self, owner: object = None) -> bool:
        """Kill the running command and everything it started (of ``owner`` only, if given).
        It answers at once, as interrupted. Returns whether a command was running."""
        with self._state:
            mark = self._mark
            if mark is None or (owner is not None and owner is not self._owner):
                return False
            self._cancelled = True
            proc = self.proc
        if proc is not None:
            _kill_group(proc.pid)
        procs.kill_call(self.server, mark)
        return True

    def _run(self, command: str, limit: float, owner: object) -> Result:
        proc = self._ensure()
        token = secrets.token_hex(8)
        mark = f"{self.server}.{token}"
        script = self.scratch / f"cmd-{token}.sh"
        script.write_text(command + "\n", encoding="utf-8")
        # eval rather than source: errors then read "bash: eval: line 1: ..." without a temp path.
        # MAS_CALL marks every process the command starts (procs.py), even ones that setsid away.
        line = (
            f"export {procs.MARK}={mark}; eval \"$(<{script})\" </dev/null; "
            f"printf '\\n__MAS_DONE_{token}_%d__\\n' $?\n"
        )
        assert proc.stdin is not None
        with self._state:
            self._owner, self._mark, self._cancelled = owner, mark, False
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
            return self._collect(proc, token, time.monotonic() + limit, limit)
        finally:
            script.unlink(missing_ok=True)
            with self._state:
                self._owner, self._mark = None, None
            procs.kill_runaways(self.server, self.shell_pid())  # a swarm this call left behind goes at once

    def _collect(self, proc: subprocess.Popen[bytes], token: str, deadline: float, limit: float) -> Result:
        marker = re.compile(rb"\n__MAS_DONE_" + token.encode() + rb"_(\d+)__\n")
        capture = _Capture(self.spiller)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            # The marker comes last, so only the newest bytes need scanning.
            found = marker.search(capture.buf, max(0, len(capture.buf) - 65536 - _HOLD))
            if found:
                code = int(found.group(1))
                out = capture.finish(found.start())
                return _exit_result(out, code)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                self._kill_call()
                out = capture.finish(len(capture.buf))
                note = (
                    f"[command timed out after {limit:g} s; it was killed with every process it "
                    "started, and the shell was restarted]"
                )
                return error(f"{out}\n{note}".lstrip())
            ready, _, _ = select.select([fd], [], [], remaining)
            chunk = os.read(fd, 65536) if ready else b""
            if ready and not chunk:
                return self._died(proc, capture)
            capture.feed(chunk)

    def _kill_call(self) -> None:
        with self._state:
            mark = self._mark
        if mark is not None:
            procs.kill_call(self.server, mark)

    def _died(self, proc: subprocess.Popen[bytes], capture: _Capture) -> Result:
        code = proc.wait()
        self.kill()
        self._kill_call()
        out = capture.finish(len(capture.buf))
        with self._state:
            cancelled = self._cancelled
        if cancelled:
            note = "[interrupted: the command was killed with every process it started; the shell was restarted]"
            return error(f"{out.rstrip(chr(10))}\n{note}".lstrip())
        note = f"[shell exited with code {code}; a new shell starts on the next call]"
        return text(f"{out.rstrip(chr(10))}\n{note}".lstrip(), is_error=code != 0)

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc
        self.kill()
        self.proc = subprocess.Popen(
            ["/bin/bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.workspace,
            env=_shell_env(),
            start_new_session=True,  # its own process group, so a timeout kills every job
        )
        assert self.proc.stdin is not None
        # Make the agent's processes the OOM killer's first choice, never the tool server.
        self.proc.stdin.write(b"echo 1000 > /proc/self/oom_score_adj 2>/dev/null\n")
        self.proc.stdin.flush()
        return self.proc

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        _kill_group(proc.pid, proc)
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        """For good (the server exits): the shell's process group, then its scratch directory."""
        self.kill()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _kill_group(pgid: int, leader: subprocess.Popen[bytes] | None = None) -> None:
    """SIGKILL the group until no live member is left (a fork bomb keeps forking while we signal).
    With the ``leader`` (our child) reaped, a group with no member left at all is known gone
    without reading the process table."""
    for _ in range(200):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if leader is not None:
            leader.wait()
            leader = None
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
        if not _group_alive(pgid):
            return
        time.sleep(0.005)


def _group_alive(pgid: int) -> bool:
    """True while a member of the group is not yet a zombie (zombies wait for their reaper)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _timeout(inp: dict[str, Any]) -> float:
    """Only when no host says (the host computes the limit: app/sandbox/limits.py)."""
    ms = inp.get("timeout_ms")
    if isinstance(ms, int) and ms > 0:
        return ms / 1000.0
    return DEFAULT_TIMEOUT_S


def _with_note(result: Result, note: str) -> Result:
    content, is_error = result
    if content and content[0].get("type") == "text":
        first = {**content[0], "text": f"{note}\n{content[0]['text']}"}
        return [first, *content[1:]], is_error
    return [{"type": "text", "text": note}, *content], is_error


def _exit_result(out: str, code: int) -> Result:
    out = out.removesuffix("\n")
    if code == 0:
        return text(out)
    return error(f"{out}\n[exit code {code}]".lstrip("\n"))


def _shell_env() -> dict[str, str]:
    # Server credentials and configuration never reach the agent's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "MAS_"))}
    env.update({"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "DEBIAN_FRONTEND": "noninteractive"})
    return env
