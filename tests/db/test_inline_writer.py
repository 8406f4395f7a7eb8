"""The SQLite writer runs inline on the event loop too: no thread per statement, yet a write
lock held by another process never stalls the loop, and the WAL is checkpointed off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import aiosqlite
from sqlalchemy import text

from app.db.engine import Database


async def _notes(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(text("SELECT body FROM notes ORDER BY id"))).scalars().all())


async def test_writes_start_no_thread(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    try:
        before = set(threading.enumerate())
        async with db.unit_of_work() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
            await session.execute(text("INSERT INTO notes (body) VALUES ('first')"))
        async with db.unit_of_work() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('second')"))
        # No thread of a connection (aiosqlite starts one per connection). Other threads of this
        # process (a fixture's server, a pool thread ending) may come and go meanwhile.
        started = [t for t in threading.enumerate() if t not in before]
        assert not [t for t in started if isinstance(t, aiosqlite.Connection)]
        assert await _notes(db) == ["first", "second"]
    finally:
        await db.dispose()


async def test_a_rolled_back_write_leaves_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    try:
        async with db.unit_of_work() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        try:
            async with db.unit_of_work() as session:
                await session.execute(text("INSERT INTO notes (body) VALUES ('lost')"))
                raise RuntimeError("the step failed")
        except RuntimeError:
            pass
        async with db.unit_of_work() as session:  # the pooled connection is usable again
            await session.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
        assert await _notes(db) == ["kept"]
    finally:
        await db.dispose()


async def test_a_writer_waiting_for_another_process_does_not_stall_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "inline.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        async with db.unit_of_work() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        other.execute("INSERT INTO notes (body) VALUES ('other')")

        async def write() -> None:
            async with db.unit_of_work() as session:
                await session.execute(text("INSERT INTO notes (body) VALUES ('ours')"))

        writing = asyncio.create_task(write())
        ticks = 0
        while ticks < 20:  # the loop keeps running other tasks while the writer waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writing.done()
        assert await _notes(db) == []  # reads go on too

        other.execute("COMMIT")
        await asyncio.wait_for(writing, 30)
        assert await _notes(db) == ["other", "ours"]
    finally:
        other.close()
        await db.dispose()


async def test_the_wal_is_checkpointed_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "inline.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    # Open throughout: SQLite checkpoints when the *last* connection closes, which would hide
    # whether the server's own checkpoints ran.
    bystander = sqlite3.connect(path)
    try:
        async with db.unit_of_work() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        bystander.execute("SELECT count(*) FROM notes").fetchall()  # it has joined the WAL
        empty = path.stat().st_size
        for _ in range(250):  # more than one checkpoint's worth of commits
            async with db.unit_of_work() as session:
                await session.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": "x" * 2000})
        await db.dispose()  # waits for a checkpoint in progress
        # SQLite's own checkpoint is off on the writer's connections; the rows reached the
        # database file all the same (a WAL never checkpointed leaves the file as it was).
        assert path.stat().st_size > empty + 100 * 2000
    finally:
        bystander.close()
        await db.dispose()


async def test_a_writer_cancelled_while_waiting_leaves_its_connection_usable(tmp_path: Path) -> None:
    path = tmp_path / "inline.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        async with db.unit_of_work() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with db.unit_of_work() as session:
                await session.execute(text("INSERT INTO notes (body) VALUES ('cancelled')"))

        writing = asyncio.create_task(write())
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not writing.done()
        writing.cancel()  # the step is cancelled while its BEGIN waits in a thread
        for _ in range(20):  # the loop runs on: the connection stays with the thread until it is done
            await asyncio.sleep(0.01)
        assert not writing.done()
        other.execute("COMMIT")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(writing, 30)
        async with db.unit_of_work() as session:  # the write lock was given back
            await session.execute(text("INSERT INTO notes (body) VALUES ('next')"))
        assert await _notes(db) == ["next"]
    finally:
        other.close()
        await db.dispose()
