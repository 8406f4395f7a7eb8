"""Cross-process notifications on SQLite: what `LISTEN/NOTIFY` gives processes on PostgreSQL.

Every process on one SQLite database (`mas serve`, a separate `mas worker`) binds a unix datagram
socket next to its peers file (`app.db.peers`), `<database>.processes/<name>.sock`, and tells
every other live process, after each commit, what `PgListener` tells them: the session whose log
grew, a session created or deleted, an interrupt queued, a wake-up topic, an ephemeral preview
frame. The new events travel in the message when they fit (a listening process with streams of
the session publishes them as they are); else only their last position, and the listening process
reads them from the log once. A gap in `seq` makes a stream re-read, as on PostgreSQL.

Sending never blocks: the messages made within `FLUSH_SECONDS` go out as one datagram per peer,
from a bounded outbox per peer. A peer that is not reading (its queue full) gets the rest
when its socket takes more; if its outbox overflows, what it held is replaced by one "resync"
(every service woken, every stream caught up from the log, every running step told to look for
an interrupt). A dead peer's socket is skipped. A process that is alone sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
from collections import deque
from collections.abc import Callable
from pathlib import Path

from app.db.peers import SqlitePeers
from app.events.notifier import (
    SESSIONS,
    WAKE_TOPICS,
    FetchEvents,
    LogEvent,
    LogFollower,
    Notifier,
    PreviewFrame,
    RemoteChannel,
)

log = logging.getLogger(__name__)

MAX_MESSAGE = 7900  # as PostgreSQL's NOTIFY payloads: a larger preview frame is not forwarded
MAX_DATAGRAM = 65536  # several messages joined by newlines
OUTBOX_LIMIT = 256  # datagrams kept for a peer that is not reading; then one resync instead
RESYNC = b"r"
# What is said within this long goes out together: a busy process says something on nearly every
# turn of its loop, and a datagram per turn cost more than the rest of the channel together.
FLUSH_SECONDS = 0.002
PEER_NAME = re.compile(r"[0-9]+-[0-9a-f]{8}")  # as `SqlitePeers.join` names a process


class SqliteChannel(RemoteChannel):
    def __init__(self, peers: SqlitePeers, notifier: Notifier, fetch: FetchEvents) -> None:
        self._peers = peers
        self._notifier = notifier
        self._follower = LogFollower(notifier, fetch)
        self._inbox: socket.socket | None = None
        self._path: Path | None = None
        self._directory_fd: int | None = None
        self._links: dict[str, _Link] = {}
        self._pending: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def start(self) -> None:
        """Bind this process's socket, announce it (`SqlitePeers.join`), greet the others."""
        self._loop = asyncio.get_running_loop()
        self._peers.join(self._bind)
        assert self._inbox is not None
        self._loop.add_reader(self._inbox.fileno(), self._receive)
        self._notifier.remote = self
        self._send_now(self._peers.others(), [b"h " + (self._peers.name or "").encode()])

    def _bind(self, name: str) -> None:
        self._directory_fd = os.open(self._peers.directory, os.O_RDONLY | os.O_DIRECTORY)
        path = self._peers.socket_of(name)
        inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            inbox.setblocking(False)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            inbox.bind(self._address(path))
            path.chmod(0o600)
        except BaseException:
            inbox.close()
            raise
        self._inbox, self._path = inbox, path

    def _address(self, path: Path) -> str:
        """``path``, or (past the 107 bytes a socket address holds) the same file reached through
        this process's open descriptor of the directory."""
        if len(os.fsencode(path)) < 100:
            return str(path)
        return f"/proc/self/fd/{self._directory_fd}/{path.name}"

    async def close(self) -> None:
        self._closed = True
        if self._notifier.remote is self:
            self._notifier.remote = None
        self._peers.leave()  # first: no one counts on the socket once it is gone
        if self._inbox is not None and self._loop is not None:
            self._loop.remove_reader(self._inbox.fileno())
            self._inbox.close()
        for link in self._links.values():
            link.close()
        self._links.clear()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        if self._directory_fd is not None:
            os.close(self._directory_fd)
            self._directory_fd = None
        await self._follower.close()

    def problem(self) -> str | None:
        """Why notifications of another process may not arrive right now, or None."""
        if self._closed:
            return "closed"
        unheard = self._peers.unheard()
        if unheard:
            return f"a process on this database has no notification socket ({unheard[0]})"
        return None

    # -- outgoing ------------------------------------------------------------------------------
    def forward_events(self, session_id: str, events: list[LogEvent]) -> None:
        """The events themselves when they fit in a message (the peer's streams need no read of
        the log), else their last position (the peer reads the log)."""
        if not self._peers.others():
            return
        carried = json.dumps([[e.seq, e.wire] for e in events], separators=(",", ":"))
        if len(carried) + len(session_id) + 3 <= MAX_MESSAGE:
            self._queue(f"E {session_id} {carried}")
        else:
            self._queue(f"e {session_id} {events[-1].seq}")

    def forward_ephemeral(self, session_id: str, wire: PreviewFrame) -> None:
        if self._peers.others():
            self._queue("p " + json.dumps({"s": session_id, "w": wire}, separators=(",", ":")))

    def forward_deleted(self, session_id: str) -> None:
        self._queue(f"d {session_id}")

    def forward_created(self, session_id: str) -> None:
        self._queue(f"c {session_id}")

    def forward_wake(self, topic: str) -> None:
        self._queue(f"w {topic}")

    def forward_interrupt(self, session_id: str) -> None:
        self._queue(f"i {session_id}")

    def _queue(self, message: str) -> None:
        if self._closed or not self._peers.others():  # alone: nothing to say, nothing scheduled
            return
        encoded = message.encode()
        if len(encoded) > MAX_MESSAGE or b"\n" in encoded:
            return
        if not self._pending and self._loop is not None:
            self._loop.call_later(FLUSH_SECONDS, self._flush)
        self._pending.append(encoded)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or self._closed:
            return
        names = self._peers.others()
        for gone in set(self._links) - set(names):
            self._links.pop(gone).close()
        self._send_now(names, pending)

    def _send_now(self, names: list[str], messages: list[bytes]) -> None:
        datagrams = _pack(messages)
        for name in names:
            link = self._links.get(name)
            if link is None:
                link = self._connect(name)
                if link is None:
                    continue
            link.outbox.extend(datagrams)
            if len(link.outbox) > OUTBOX_LIMIT:
                log.warning("process %s is not reading notifications: it will resync", name)
                link.outbox.clear()
                link.outbox.append(RESYNC)
            if not link.drain():
                self._links.pop(name, None)
                link.close()

    def _connect(self, name: str) -> _Link | None:
        assert self._loop is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(self._address(self._peers.socket_of(name)))
        except OSError:  # ended since the last scan (or never had a socket): skipped
            sock.close()
            return None
        link = _Link(self._loop, sock, lambda: self._drop(name))
        self._links[name] = link
        return link

    def _drop(self, name: str) -> None:
        link = self._links.pop(name, None)
        if link is not None:
            link.close()

    # -- incoming ------------------------------------------------------------------------------
    def _receive(self) -> None:
        assert self._inbox is not None
        while True:
            try:
                datagram = self._inbox.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.exception("could not read notifications")
                return
            for message in datagram.split(b"\n"):
                try:
                    self._handle(message.decode())
                except (ValueError, KeyError, TypeError):
                    log.warning("ignored a malformed notification %r", message[:80])

    def _handle(self, message: str) -> None:
        kind, _, rest = message.partition(" ")
        notifier = self._notifier
        if kind == "E":
            session_id, _, carried = rest.partition(" ")
            if notifier.has_subscribers(session_id):
                events = [LogEvent(int(seq), wire) for seq, wire in json.loads(carried)]
                notifier.publish(session_id, events)
        elif kind == "e":
            session_id, _, seq = rest.partition(" ")
            self._follower.committed(session_id, int(seq))
        elif kind == "w":
            notifier.wake(rest if rest in WAKE_TOPICS else SESSIONS, forward=False)
        elif kind == "i":
            notifier.interrupt(rest, forward=False)
        elif kind == "c":
            notifier.session_created(rest, forward=False)
        elif kind == "d":
            notifier.session_deleted(rest, forward=False)
        elif kind == "p":
            frame = json.loads(rest)
            notifier.publish_ephemeral(frame["s"], frame["w"], forward=False)
        elif kind == "h":  # a process joined: count it now, and have it look once at everything
            if not PEER_NAME.fullmatch(rest):
                raise ValueError(rest)
            self._peers.rescan()
            self._send_now([rest], [RESYNC])
        elif kind == "r":
            self.resync()
        else:
            raise ValueError(kind)

    def resync(self) -> None:
        """Told something may have been lost: look at everything once, as after a reconnection."""
        self._follower.catch_up_all()
        for session_id in self._notifier.interrupted_sessions():
            self._notifier.interrupt(session_id, forward=False)
        for topic in WAKE_TOPICS:
            self._notifier.wake(topic, forward=False)


class _Link:
    """A connected datagram socket to one peer and what it has not taken yet."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, dead: Callable[[], None]
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.outbox: deque[bytes] = deque()
        self._dead = dead
        self._waiting = False

    def drain(self) -> bool:
        """Send what the peer takes now; the rest when its socket is writable. False: it is gone."""
        while self.outbox:
            try:
                self.sock.send(self.outbox[0])
            except (BlockingIOError, InterruptedError):
                if not self._waiting:
                    self.loop.add_writer(self.sock.fileno(), self._writable)
                    self._waiting = True
                return True
            except OSError:  # the peer ended (refused, reset): skipped until a scan removes it
                return False
            self.outbox.popleft()
        if self._waiting:
            self.loop.remove_writer(self.sock.fileno())
            self._waiting = False
        return True

    def _writable(self) -> None:
        if not self.drain():
            self._dead()

    def close(self) -> None:
        if self._waiting:
            self.loop.remove_writer(self.sock.fileno())
            self._waiting = False
        self.sock.close()


def _pack(messages: list[bytes]) -> list[bytes]:
    """``messages`` joined by newlines into as few datagrams as fit."""
    datagrams: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for message in messages:
        if batch and size + len(message) + 1 > MAX_DATAGRAM:
            datagrams.append(b"\n".join(batch))
            batch, size = [], 0
        batch.append(message)
        size += len(message) + 1
    if batch:
        datagrams.append(b"\n".join(batch))
    return datagrams
