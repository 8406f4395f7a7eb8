"""Which other processes share this SQLite database (`mas serve` with a separate `mas worker`).

SQLite itself carries no notifications between processes: a commit in one wakes only its own
services. A process that knows it is alone, or that every other one can tell it of its work, may
sleep through its long safety polls; one that has company it cannot hear must poll at the short
interval, or work another process queued for it (a webhook delivery, a runnable session) waits for
the long one. Each process on the database holds an exclusive `flock`
on a file of its own in `<database>.processes/`; the kernel drops the lock when the process ends
however it ends (a crash, `kill -9`), so a file whose lock can be taken is a dead process's, and is
removed. Next to its file each process binds a unix datagram socket, `<name>.sock`, through which
the others tell it what they commit (`app.events.sqlite_channel`), as `LISTEN/NOTIFY` does on
PostgreSQL; the socket is bound before the file is announced, so a live peer without one is a
process that cannot be told (an older mas).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# How long an answer of `others_live` holds: it is asked before every sleep of every loop service.
RECHECK_SECONDS = 1.0
SOCKET_SUFFIX = ".sock"


class SqlitePeers:
    def __init__(self, database_file: str, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.directory = Path(database_file + ".processes")
        self.recheck_seconds = recheck_seconds
        self._own: Path | None = None
        self._fd: int | None = None
        self._answer: list[str] = []
        self._unheard: list[str] = []
        self._answered_at: float | None = None

    def join(self, prepare: Callable[[str], None] | None = None) -> None:
        """Announce this process (until `leave` or its end); ``prepare`` is called with the name
        first, before any other process can see it (the notification socket is bound then)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # Locked under a hidden name, then renamed: no one sees the file before its lock is held.
        hidden, own = self.directory / f".{name}", self.directory / name
        fd = os.open(hidden, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            if prepare is not None:
                prepare(name)
        except BaseException:
            os.close(fd)
            hidden.unlink()
            raise
        hidden.rename(own)
        self._own, self._fd = own, fd

    @property
    def name(self) -> str | None:
        """This process's file (while joined)."""
        return self._own.name if self._own is not None else None

    def leave(self) -> None:
        if self._own is not None:
            with contextlib.suppress(FileNotFoundError):
                self._own.unlink()
        if self._fd is not None:
            os.close(self._fd)
        self._own = self._fd = None

    def socket_of(self, name: str) -> Path:
        """Where the process ``name`` listens for notifications."""
        return self.directory / f"{name}{SOCKET_SUFFIX}"

    def others(self) -> list[str]:
        """The names of the other live processes (an answer holds for `recheck_seconds`)."""
        now = time.monotonic()
        if self._answered_at is None or now - self._answered_at >= self.recheck_seconds:
            self._answer = self._scan()
            self._unheard = [name for name in self._answer if not self.socket_of(name).exists()]
            self._answered_at = now
        return self._answer

    def others_live(self) -> bool:
        """Whether another live process has joined (an answer holds for `recheck_seconds`)."""
        return bool(self.others())

    def unheard(self) -> list[str]:
        """The other live processes that have no notification socket (with `others`' answer)."""
        self.others()
        return self._unheard

    def rescan(self) -> None:
        """Forget the answer: a process announced that it joined."""
        self._answered_at = None

    def _scan(self) -> list[str]:
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        return [
            entry.name
            for entry in entries
            if entry != self._own
            and not entry.name.startswith(".")
            and not entry.name.endswith(SOCKET_SUFFIX)
            and _held(entry)
        ]


def _held(path: Path) -> bool:
    """Whether a live process holds ``path``'s lock; a dead process's file (and socket) is removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        path.with_name(path.name + SOCKET_SUFFIX).unlink()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return False
