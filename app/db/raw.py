"""Plain SQL reads straight on the database driver, for the hot read endpoints.

The ORM path costs far more than a point read: building the statement, its cache key, the ORM
execute path, identity-map instances, a BEGIN/ROLLBACK around one SELECT (SQLite), a pre-ping per
checkout (PostgreSQL). The reads served at the API's speed (GET an agent or an environment, the
sessions list, the events list) run one or two fixed statements here instead:

* **SQLite**: a small pool of plain `sqlite3` connections opened `query_only`, called inline on the
  event loop (as `app/db/inline_sqlite.py` does for the ORM's read engine: in WAL mode a reader
  never waits for a writer). Each statement runs in autocommit; `snapshot()` wraps several in one
  deferred read transaction (on SQLite it costs nothing: no round trip).
* **PostgreSQL**: an `asyncpg` pool of its own (at most `database_pool_size` connections, opened
  on first use). asyncpg prepares and caches each statement per connection; JSON columns come back
  as their text (asyncpg's default), so a renderer decodes each value once. Statements run in
  autocommit, READ COMMITTED as the ORM's read sessions did, `snapshot()` included. A connection
  goes back to the pool without asyncpg's reset statement (these reads leave no session state to
  reset): one round trip per statement, not two.

SQL is written once with `$1`-style parameters; on SQLite they become `?1` (numbered parameters).
Values come back as the drivers give them: timestamps as `datetime` (PostgreSQL) or the text
SQLAlchemy stored (SQLite); `timestamp()` makes either an aware UTC `datetime`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from pydantic_core import from_json
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.wire import iso

Row = Sequence[Any]
_PARAM = re.compile(r"\$(\d+)")


class RawConnection(Protocol):
    row_versions: bool  # see ``RawReads.row_versions``

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...


def timestamp(value: Any) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite keeps SQLAlchemy's naive text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise TypeError(f"not a timestamp: {value!r}")


def wire_time(value: Any) -> str | None:
    """A stored timestamp as the wire shows events' times (``app.wire.iso``: milliseconds, `Z`).
    SQLite's text (`2026-05-01 12:00:00.123456`, always with microseconds) is cut, not parsed."""
    if isinstance(value, str) and len(value) == 26 and value[10] == " " and value[19] == ".":
        return f"{value[:10]}T{value[11:23]}Z"
    return iso(timestamp(value))


def json_value(value: Any) -> Any:
    """A stored JSON column's value (the drivers hand back its text; pydantic-core's parser is
    several times faster than `json.loads` on small documents and builds the same values)."""
    return from_json(value) if isinstance(value, str) else value


@lru_cache(maxsize=256)
def _sqlite_sql(sql: str) -> str:
    return _PARAM.sub(r"?\1", sql)


class _SqliteConnection:
    row_versions = False

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self.connection.execute(_sqlite_sql(sql), args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self.connection.execute(_sqlite_sql(sql), args).fetchone()
        return row


class _SqlitePool:
    """Idle connections kept for reuse; a burst opens more and keeps up to ``keep``."""

    def __init__(self, path: str, keep: int = 10) -> None:
        self.path = path
        self.keep = keep
        self._idle: list[_SqliteConnection] = []

    def _open(self) -> _SqliteConnection:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA query_only=ON")
        connection.execute("PRAGMA busy_timeout=30000")
        return _SqliteConnection(connection)

    @asynccontextmanager
    async def acquire(self, snapshot: bool) -> AsyncIterator[RawConnection]:
        conn = self._idle.pop() if self._idle else self._open()
        try:
            if snapshot:
                conn.connection.execute("BEGIN")
            yield conn
        finally:
            if conn.connection.in_transaction:
                conn.connection.execute("ROLLBACK")
            if len(self._idle) < self.keep:
                self._idle.append(conn)
            else:
                conn.connection.close()

    async def close(self) -> None:
        for conn in self._idle:
            conn.connection.close()
        self._idle.clear()


class _PostgresConnection:
    row_versions = True

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self.connection.fetch(sql, *args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self.connection.fetchrow(sql, *args)
        return row


async def _nothing_to_reset(connection: Any) -> None:
    """A released connection is put back as it is. asyncpg's default reset is one more round trip
    per read (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`) to undo what
    these reads never do: they run plain SELECTs, with no cursor, lock, LISTEN or SET. (An open
    transaction, were one left by an error, is still rolled back by asyncpg before this is called.)"""
    return None


class _PostgresPool:
    def __init__(self, url: str, size: int) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.size = size
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def _get(self) -> Any:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=self.size, reset=_nothing_to_reset
                    )
        return self._pool

    @asynccontextmanager
    async def acquire(self, snapshot: bool) -> AsyncIterator[RawConnection]:
        # No transaction even for a "snapshot": each statement sees what was committed when it
        # began (READ COMMITTED, as the ORM's read sessions on PostgreSQL always did); a BEGIN
        # and a COMMIT would be two more round trips per read.
        pool = await self._get()
        async with pool.acquire() as connection:
            yield _PostgresConnection(connection)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@lru_cache(maxsize=256)
def _named_sql(sql: str) -> str:
    return _PARAM.sub(r":p\1", sql)


class _SessionConnection:
    """The same calls through a SQLAlchemy session (SQLite URLs the plain pool cannot open:
    in-memory databases, URLs with driver options)."""

    row_versions = False

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        params = {f"p{i}": value for i, value in enumerate(args, 1)}
        return list((await self.session.execute(text(_named_sql(sql)), params)).all())

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


class _SessionPool:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @asynccontextmanager
    async def acquire(self, snapshot: bool) -> AsyncIterator[RawConnection]:
        async with self.sessions() as session:
            yield _SessionConnection(session)

    async def close(self) -> None:
        return None


class RawReads:
    """Read-only access to the database through its driver (see the module docstring)."""

    def __init__(
        self,
        url: str,
        pool_size: int,
        sqlite_path: str | None,
        fallback: async_sessionmaker[AsyncSession],
    ) -> None:
        self._pool: _SqlitePool | _PostgresPool | _SessionPool
        if make_url(url).get_backend_name() == "postgresql":
            self._pool = _PostgresPool(url, pool_size)
        elif sqlite_path is not None:
            self._pool = _SqlitePool(sqlite_path)
        else:
            self._pool = _SessionPool(fallback)

    @property
    def row_versions(self) -> bool:
        """Whether a row's version can be read: PostgreSQL's `xmin` (the transaction that wrote
        this version of the row; any change writes a new version). The id and `xmin` of a row
        name its content, so a renderer can keep a row's JSON by them and read only the two
        columns for a row it has seen (no JSON column sent and decoded). Such a pair could name
        two contents only after 2^32 transactions (xid wraparound) with the first still kept."""
        return isinstance(self._pool, _PostgresPool)

    @property
    def on_sqlite(self) -> bool:
        """Whether the database is SQLite (its SQL may name an index: ``INDEXED BY``)."""
        return not isinstance(self._pool, _PostgresPool)

    def connection(self) -> Any:
        """``async with reads.connection() as conn``: one connection, each statement on its own."""
        return self._pool.acquire(False)

    def snapshot(self) -> Any:
        """``async with reads.snapshot() as conn``: several statements in one read transaction on
        SQLite; on PostgreSQL as ``connection()`` (each statement READ COMMITTED)."""
        return self._pool.acquire(True)

    def time_param(self, value: datetime) -> Any:
        """A timestamp as a statement parameter: SQLite compares SQLAlchemy's stored text."""
        if isinstance(self._pool, _PostgresPool):
            return value
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._pool.acquire(False) as conn:
            return await conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._pool.acquire(False) as conn:
            return await conn.fetch(sql, *args)

    async def close(self) -> None:
        await self._pool.close()
