"""Finding and killing the processes a bash call started, by the call's mark in their environment.

Every call runs with `MAS_CALL=<token>` exported, which each program it starts inherits (also
those that leave the shell's process group with `setsid`); subshells forked without exec stay
in the shell's process group. A call's leftovers are killed when it times out or is interrupted,
and any group that turns into a swarm (a fork bomb) is killed whole: the next call is not slowed
by a process table at its limit.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

MARK = "MAS_CALL"
# More live processes than this left by one call is a runaway (a fork bomb), not a server.
RUNAWAY = 64
_ROUNDS = 400


def _pids() -> list[int]:
    me = os.getpid()
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if pid not in (1, me)]


def _read(path: str, size: int) -> bytes:
    """A /proc file's first ``size`` bytes (os.open/os.read: no buffered file object per process)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


_started: dict[int, int] = {}  # this server's start (clock ticks since boot), by pid (a fork moves on)


def _own_start() -> int:
    """When this server started: a process started before it cannot carry one of its marks, so
    its environment need not be read (on a host, most of the process table)."""
    me = os.getpid()
    if me not in _started:
        stat = _stat(me)
        _started.clear()
        _started[me] = stat[2] if stat is not None else 0
    return _started[me]


def _stat(pid: int) -> tuple[bytes, int, int] | None:
    """(state, process group, start time) of a process, None for the gone."""
    try:
        fields = _read(f"/proc/{pid}/stat", 4096).rsplit(b")", 1)[1].split()
        return fields[0], int(fields[2]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _mark_of(pid: int) -> str | None:
    """The call mark a process was exec'd with (a fork without exec shows its parent's start env)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:
        return None
    prefix = MARK.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def by_call(server: str, shell: int | None) -> dict[str, list[int]]:
    """Live processes of this server's calls, grouped: by mark (marks start with ``server``), and
    the members of the shell's process group (forked subshells, which carry no visible mark)."""
    groups: dict[str, list[int]] = {}
    since = _own_start()
    for pid in _pids():
        stat = _stat(pid)
        if stat is None or stat[0] == b"Z" or pid == shell:
            continue
        _, group, started = stat
        if shell is not None and group == shell:
            groups.setdefault(f"group:{shell}", []).append(pid)
            continue
        if started < since:
            continue
        mark = _mark_of(pid)
        if mark is not None and mark.startswith(server):
            groups.setdefault(mark, []).append(pid)
    return groups


def kill_call(server: str, mark: str, shell: int | None = None) -> int:
    """SIGKILL every process of the call, again and again while it keeps forking; returns how many."""
    return _kill_until_gone(lambda: by_call(server, shell).get(mark, []))


def kill_runaways(server: str, shell: int | None) -> int:
    """Kill every group of processes that has become a swarm; returns how many processes died.
    The shell itself survives (its cwd and environment are the agent's)."""
    swarms = [key for key, pids in by_call(server, shell).items() if len(pids) > RUNAWAY]
    return sum(kill_call(server, key, shell) for key in swarms)


def _kill_until_gone(find: Callable[[], list[int]]) -> int:
    killed: set[int] = set()
    for _ in range(_ROUNDS):
        pids = find()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.002)
    return len(killed)
