"""Entry point: `python3 /opt/mas/toolserver --socket PATH --workspace DIR --spill-dir DIR`.

Python stdlib only, so it runs on any image with python3. As a container's PID 1 it forks:
the parent only reaps orphaned processes (background jobs the agent left behind) and
forwards stop signals; the child serves.

`python3 toolserver --zygote` starts host-process servers (the local backend's) by forking, so
no server pays for an interpreter start or imports. Requests are JSON lines on stdin,
`{"id": ..., "argv": [...]}` (a server's arguments, which must include `--detach`); many may be
in flight. For each the zygote forks once: the child leaves the zygote's session (`setsid`),
puts stdin/stdout on /dev/null and runs the server, whose stderr goes to a pipe the zygote reads
until the server listens. Answers (JSON lines on stdout, with the request's id, in the order the
servers get there): `{"id", "pid"}` once the server listens on its socket; `{"id", "status",
"error", "output"}` if it exited first (its exit status, the last line it wrote to stderr, and
the tail of all it wrote); `{"id", "error"}` for a request refused or a failed fork. The zygote
reaps its children as they exit. It is single-threaded (a fork copies only the calling thread)
and exits when its stdin closes, i.e. with the mas process that started it; the servers live on
(init's children from then on).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import egress
from server import ToolServer

_DISOWNED_CHECK_S = 5.0
# What a server started by the zygote writes to its report pipe (its stderr) once it listens.
_LISTENING = b"\0listening\n"
_REPORT_KEEP = 4096  # bytes of a failing server's stderr kept for its answer
_MAX_FD = os.sysconf("SC_OPEN_MAX")


def _reap_as_init() -> None:
    child = os.fork()
    if child == 0:
        return
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _detach() -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def _exit_when_disowned(pid_file: Path, kill_shell: Callable[[], object]) -> None:
    """A detached server lives as long as its pid file names it. When the state directory is
    deleted (a test run's temporary directory, a session removed while its host process was
    killed) or another server took the pid file over, nothing can reach this one any more:
    it takes its shell down and exits instead of lingering for ever."""
    me = str(os.getpid())

    def watch() -> None:
        while True:
            time.sleep(_DISOWNED_CHECK_S)
            try:
                owner = pid_file.read_text().strip()
            except OSError:
                owner = ""
            if owner != me:
                kill_shell()
                os._exit(0)

    threading.Thread(target=watch, name="disowned-watch", daemon=True).start()


class _Start:
    """A server the zygote forked, until it is answered for and its report pipe is closed."""

    def __init__(self, request_id: object, pid: int, report: int) -> None:
        self.request_id = request_id
        self.pid = pid
        self.report = report  # read end of the child's stderr until it listens
        self.output = bytearray()
        self.answered = False
        self.closed = False
        self.status: int | None = None  # its exit status, once reaped


class _Zygote:
    def __init__(self) -> None:
        self.parser = _parser()
        tempfile.gettempdir()  # probed once here, not in every server (it writes a test file)
        self.wake, wake_w = os.pipe()
        for fd in (self.wake, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # only to wake the poll
        self.poll = select.poll()
        self.poll.register(0, select.POLLIN)
        self.poll.register(self.wake, select.POLLIN)
        self.starts: dict[int, _Start] = {}  # by pid
        self.reports: dict[int, _Start] = {}  # by report fd
        self.inbox = b""

    def run(self) -> None:
        while True:
            for fd, _events in self.poll.poll():
                if fd == 0:
                    data = os.read(0, 65536)
                    if not data:
                        return  # mas is gone; the servers started so far live on
                    *lines, self.inbox = (self.inbox + data).split(b"\n")
                    for line in lines:
                        self.fork(line)
                elif fd == self.wake:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake, 512):
                            pass
                    self.reap()
                elif (start := self.reports.get(fd)) is not None:
                    self.read_report(start)
            for pid in [pid for pid, start in self.starts.items() if self.settled(start)]:
                del self.starts[pid]

    def fork(self, line: bytes) -> None:
        """Fork a server for one request line (or answer at once why not)."""
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        request_id = request.get("id") if isinstance(request, dict) else None
        argv = request.get("argv") if isinstance(request, dict) else None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            _answer({"id": request_id, "error": 'expected {"id": ..., "argv": [strings]}'})
            return
        if "--detach" not in argv:  # a server that does not detach would hold the zygote
            _answer({"id": request_id, "error": "the zygote starts detached servers only"})
            return
        report_r, report_w = os.pipe()
        try:
            child = os.fork()
        except OSError as exc:
            os.close(report_r)
            os.close(report_w)
            _answer({"id": request_id, "error": f"fork failed: {exc}"})
            return
        if child == 0:
            _run_child(argv, self.parser, report_w)
        os.close(report_w)
        os.set_blocking(report_r, False)
        self.starts[child] = self.reports[report_r] = _Start(request_id, child, report_r)
        self.poll.register(report_r, select.POLLIN)

    def read_report(self, start: _Start) -> None:
        try:
            data = os.read(start.report, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            start.output += data
            if start.output.endswith(_LISTENING) and not start.answered:
                start.answered = True
                _answer({"id": start.request_id, "pid": start.pid})
            del start.output[:-_REPORT_KEEP]
            return
        self.poll.unregister(start.report)
        del self.reports[start.report]
        os.close(start.report)
        start.closed = True

    def reap(self) -> None:
        """Reap every child that exited (servers that ran, and ones that failed to start)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            start = self.starts.get(pid)
            if start is not None:
                start.status = os.waitstatus_to_exitcode(status)

    def settled(self, start: _Start) -> bool:
        """Answered and done with: a server that listens, or one that exited (status and output)."""
        if start.answered:
            return start.closed
        if start.status is None or not start.closed:
            return False  # its last words, and its exit, come before its answer
        said = bytes(start.output).decode(errors="replace").strip()
        error = said.splitlines()[-1] if said else f"exited with status {start.status} before it listened"
        _answer({"id": start.request_id, "status": start.status, "error": error, "output": said})
        start.answered = True
        return True


def zygote() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C to mas's process group is mas's to handle
    _Zygote().run()


def _run_child(argv: list[str], parser: argparse.ArgumentParser, report: int) -> NoReturn:
    """In the forked child: a session of its own, stdin/stdout on /dev/null (they are the zygote's
    channel to mas), stderr into the report pipe until it listens (then /dev/null too)."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a freshly started interpreter
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(report, 2)
        os.closerange(3, _MAX_FD)  # the zygote's: its wake-up pipe, other servers' report pipes
        _serve(parser.parse_args(argv), _listening)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a failure to start: reported through the pipe, never served by the zygote
        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        sys.stderr.flush()
    os._exit(code)


def _listening() -> None:
    """The server listens: say so on the report pipe and close it (stderr goes to /dev/null)."""
    sys.stderr.flush()
    os.write(2, _LISTENING)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _answer(reply: dict[str, object]) -> None:
    data = json.dumps(reply).encode() + b"\n"
    while data:
        data = data[os.write(1, data) :]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolserver")
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--spill-dir", required=True, type=Path)
    parser.add_argument("--make-dirs", nargs="*", default=[], type=Path)
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--proxy-socket", help="egress proxy socket to expose on --proxy-port")
    parser.add_argument("--proxy-port", type=int, default=3128)
    parser.add_argument("--detach", action="store_true", help="daemonize (host-process sandboxes)")
    parser.add_argument("--watch-runaways", action="store_true", help="kill fork bombs between calls")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.detach:
        _detach()
    _serve(args)


def _serve(args: argparse.Namespace, listening: Callable[[], None] | None = None) -> None:
    if os.getpid() == 1:
        _reap_as_init()
    for directory in [args.workspace, *args.make_dirs]:
        directory.mkdir(parents=True, exist_ok=True)
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    if args.proxy_socket:
        egress.serve(args.proxy_port, args.proxy_socket)
    server = ToolServer(args.workspace, args.spill_dir)
    if args.watch_runaways:
        server.watch_runaways()
    # On stop, take the shell's process group down with us rather than orphan it.
    def stop(*_: object) -> None:
        server.shell.close()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    if args.detach and args.pid_file:
        _exit_when_disowned(args.pid_file, server.shell.close)
    server.serve(args.socket, listening)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        main()
