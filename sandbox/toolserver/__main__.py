"""Entry point: `python3 /opt/mas/toolserver --socket PATH --workspace DIR --spill-dir DIR`.

Python stdlib only, so it runs on any image with python3. As a container's PID 1 it forks:
the parent only reaps orphaned processes (background jobs the agent left behind) and
forwards stop signals; the child serves.

`python3 toolserver --zygote` starts host-process servers (the local backend's) by forking:
it reads one JSON array of arguments per line on stdin, forks a child that runs `main` with
them (the modules are imported already: no interpreter start, no imports per server) and
answers with the child's exit status, as `subprocess.run` of the same command would. With
`--detach` the child returns at once (its grandchild serves), so the answer comes quickly.
The zygote is single-threaded (a fork copies only the calling thread) and exits when its stdin
closes, i.e. with the mas process that started it; the servers it started live on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import egress
from server import ToolServer

_DISOWNED_CHECK_S = 5.0


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


def zygote() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C to mas's process group is mas's to handle
    for line in sys.stdin:
        try:
            argv = json.loads(line)
        except ValueError:
            argv = None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            _answer({"error": "expected a JSON array of strings"})
            continue
        if "--detach" not in argv:  # a server that does not detach would hold the zygote
            _answer({"error": "the zygote starts detached servers only"})
            continue
        try:
            child = os.fork()
        except OSError as exc:
            _answer({"error": f"fork failed: {exc}"})
            continue
        if child == 0:
            _run_child(argv)
        _, status = os.waitpid(child, 0)
        _answer({"status": os.waitstatus_to_exitcode(status)})


def _run_child(argv: list[str]) -> None:
    """In the forked child: stdin/stdout are the zygote's channel to mas, never the server's."""
    code = 0
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a freshly started interpreter
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a failure to start: reported by the exit status, never served by the zygote
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def _answer(reply: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
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
    args = parser.parse_args(argv)
    if args.detach:
        _detach()
    if os.getpid() == 1:
        _reap_as_init()
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    for directory in [args.workspace, *args.make_dirs]:
        directory.mkdir(parents=True, exist_ok=True)
    if args.proxy_socket:
        egress.serve(args.proxy_port, args.proxy_socket)
    server = ToolServer(args.workspace, args.spill_dir)
    if args.watch_runaways:
        server.watch_runaways()
    # On stop, take the shell's process group down with us rather than orphan it.
    def stop(*_: object) -> None:
        server.shell.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    if args.detach and args.pid_file:
        _exit_when_disowned(args.pid_file, server.shell.kill)
    server.serve(args.socket)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        main()
