"""An aiosqlite-shaped SQLite connection that runs each call inline, on the event loop's thread.

aiosqlite gives every connection its own thread and hands it each call (cursor, execute, fetch,
close, commit) through a queue, waking the event loop through its self-pipe for every result:
about four thread round trips per statement. On SQLite that hand-off costs far more than the
work (a statement on one row takes microseconds, its round trips a millisecond of CPU under
load). Both engines therefore connect through this class (``create_async_engine(async_creator=
...)``): the same SQLAlchemy dialect and adapter, the calls made directly.

Reads: in WAL mode a reader never waits for a writer; it only waits (``busy_timeout``) in rare
moments such as another process recovering the WAL. Writes: only ``BEGIN IMMEDIATE`` waits, for
the database's write lock; once it is held, a WAL writer's statements and commit wait on nobody.
This process's writers queue on an asyncio lock before it (``Database.unit_of_work``), so the
lock is free unless another process holds it: the BEGIN is tried at once without waiting, and
only when it is busy does it wait, in a thread, so the loop never stalls (`_begin_write`).
Committing into WAL never copies pages back into the database file: the writer connections
turn SQLite's automatic checkpoint off, and `Checkpointer` runs it in a thread instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

BUSY_TIMEOUT_MS = 30000


BEGIN_WRITE = "BEGIN IMMEDIATE"


async def _begin_write(cursor: sqlite3.Cursor) -> None:
    """Take the database's write lock: at once, on the loop, when it is free (always so when
    this process's writers are the only ones: they queue on an asyncio lock first); otherwise
    wait for it in a thread, with the connection's busy timeout, so the loop never stalls."""
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        cursor.execute(BEGIN_WRITE)
        return
    except sqlite3.OperationalError as error:
        if "locked" not in str(error) and "busy" not in str(error):
            raise
    finally:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    await asyncio.to_thread(cursor.execute, BEGIN_WRITE)


class _Cursor:
    """The async cursor surface SQLAlchemy's aiosqlite adapter uses."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        if sql == BEGIN_WRITE:
            await _begin_write(self._cursor)
        elif parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> _Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _InlineQueue:
    """Stands in for aiosqlite's request queue, which SQLAlchemy's isolation-level setter feeds
    directly: run the function now and resolve its future."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)


class InlineConnection:
    """What ``aiosqlite.connect()`` returns, minus the thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._tx = _InlineQueue(self)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any], **kw: Any) -> None:
        self._conn.create_function(name, num_params, func, **kw)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction


def connector(database: str, timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: a new inline connection to ``database``."""

    async def connect() -> InlineConnection:
        # The pool may hand a connection to another task of the same loop: no thread check needed,
        # since every call on it is made from the loop's one thread.
        return InlineConnection(sqlite3.connect(database, timeout=timeout, check_same_thread=False))

    return connect


class Checkpointer:
    """Copies the WAL back into the database file from a thread, every ``every`` commits.

    Inline writer connections turn SQLite's automatic checkpoint off: it runs inside the
    commit that crosses the threshold (1000 pages), with fsyncs, which on the loop would stall
    every task for that long. A PASSIVE checkpoint takes no lock that writers or readers wait on.
    """

    def __init__(self, database: str, every: int = 100) -> None:
        self.database = database
        self.every = every
        self._commits = 0
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        self._commits += 1
        if self._commits >= self.every and (self._running is None or self._running.done()):
            self._commits = 0
            self._running = asyncio.get_running_loop().create_task(
                asyncio.to_thread(self._checkpoint), name="sqlite-checkpoint"
            )

    def _checkpoint(self) -> None:
        connection = sqlite3.connect(self.database, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    async def close(self) -> None:
        """Waits for a checkpoint in progress (the thread cannot be stopped halfway)."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running
