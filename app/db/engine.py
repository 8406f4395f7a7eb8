"""Engine and session factories, and the unit of work.

The transaction belongs to whoever starts the work: the HTTP request dependency or one worker step.
Services only flush. Callbacks registered with ``after_commit`` run only once the commit succeeded
(stream notifications, worker wake-ups); they are dropped on rollback. ``wake_after_commit`` names
a topic instead (a webhook delivery was queued): the `Database` hands it to `on_wake`, which the
process wires to its notifier, so a service layer can wake a background loop without holding one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.db import inline_sqlite
from app.db.raw import RawReads
from app.shared.storable import storable_json_text

log = logging.getLogger(__name__)

AFTER_COMMIT_KEY = "mas_after_commit"
WAKE_KEY = "mas_wake_topics"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def on_postgres(db: AsyncSession) -> bool:
    """Whether this session talks to PostgreSQL (row locks, SKIP LOCKED, NOTIFY)."""
    return db.bind is not None and db.bind.dialect.name == "postgresql"


def _prepare_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={inline_sqlite.BUSY_TIMEOUT_MS}")
    cursor.close()


def _inline_database(url: str) -> str | None:
    """The file a plain SQLite URL names (no query options), for the inline reader."""
    parsed = make_url(url)
    if parsed.query or not parsed.database or parsed.database == ":memory:":
        return None
    return str(Path(parsed.database).expanduser())


def _sqlite_engine(url: str, *, immediate: bool) -> AsyncEngine:
    inline = _inline_database(url)
    if inline is None:
        engine = create_async_engine(url, connect_args={"timeout": 30}, json_serializer=storable_json_text)
    else:
        # Reads run inline on the event loop (see app/db/inline_sqlite.py); connections are cheap
        # to keep, so keep enough that a burst of concurrent reads does not reconnect.
        engine = create_async_engine(
            url,
            async_creator=inline_sqlite.connector(inline, timeout=30),
            json_serializer=storable_json_text,
            pool_size=10,
            max_overflow=40,
        )

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        if immediate and inline is not None:
            # This process checkpoints in a thread (Database._checkpoint), not in a commit on the loop.
            dbapi_connection.cursor().execute("PRAGMA wal_autocheckpoint=0")
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves

    def on_begin(conn: Any) -> None:
        # SQLite allows one writer: BEGIN IMMEDIATE takes the write lock up front, so two
        # writers never deadlock upgrading read locks. Readers use a deferred BEGIN (WAL).
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
    return engine


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """The writer engine for ``url`` (SQLite: BEGIN IMMEDIATE transactions)."""
    if is_sqlite(url):
        _prepare_sqlite_path(url)
        return _sqlite_engine(url, immediate=True)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Every JSON column: text PostgreSQL's jsonb (and so SQLite, alike) can hold.
        json_serializer=storable_json_text,
    )


class Database:
    """Owns the engine(s) and hands out units of work."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self.engine = create_engine(url, pool_size)
        self.read_engine = _sqlite_engine(url, immediate=False) if self.is_sqlite else self.engine
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False, autoflush=False)
        # SQLite has one writer: queue writers of this process on an asyncio lock instead of the
        # file lock's sleep-and-retry busy handler, which adds tens of milliseconds under load.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        inline = _inline_database(url) if self.is_sqlite else None
        self.sqlite_file = inline  # the SQLite database's file (None: PostgreSQL, or in memory)
        self._checkpointer = inline_sqlite.Checkpointer(inline) if inline is not None else None
        # The hot read endpoints' plain SQL (app/db/raw.py).
        self.raw = RawReads(url, pool_size, inline, self.read_sessionmaker)
        # Told the topics of `wake_after_commit` once their transaction committed (the notifier).
        self.on_wake: Callable[[str], None] = lambda _topic: None

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: commit on success, rollback on error, then run after-commit callbacks.

        Never nest two units of work in one task (the SQLite write lock is not re-entrant).
        """
        if self._write_lock is None:
            async with self._transaction() as session:
                yield session
        else:
            async with self._write_lock, self._transaction() as session:
                yield session

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                session.info.pop(AFTER_COMMIT_KEY, None)
                session.info.pop(WAKE_KEY, None)
                raise
        if self._checkpointer is not None:
            self._checkpointer.committed()
        run_after_commit(session)
        for topic in session.info.pop(WAKE_KEY, ()):
            try:
                self.on_wake(topic)
            except Exception:  # a lost wake-up only delays the work to the next safety poll
                log.exception("waking %s after commit failed", topic)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session: never commits, takes no write lock."""
        async with self.read_sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self.raw.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current transaction has committed (never on rollback)."""
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


def wake_after_commit(session: AsyncSession, topic: str) -> None:
    """Wake the background services of ``topic`` (here and in other processes) once the current
    transaction has committed; once per transaction however often it is asked."""
    topics: set[str] = session.info.setdefault(WAKE_KEY, set())
    topics.add(topic)


def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop(AFTER_COMMIT_KEY, []):
        try:
            callback()
        except Exception:  # a notification failure must not undo a committed write
            log.exception("after-commit callback failed")
