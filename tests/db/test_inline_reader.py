"""The SQLite read engine runs its statements inline on the event loop (no aiosqlite thread)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from app.db.engine import Database


async def test_reads_start_no_thread_and_see_committed_writes(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    try:
        async with db.unit_of_work() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
            await session.execute(text("INSERT INTO notes (body) VALUES ('first')"))
        threads = threading.active_count()

        async with db.read() as session:
            before = (await session.execute(text("SELECT body FROM notes ORDER BY id"))).scalars().all()
            async with db.unit_of_work() as writer:  # a writer commits while the read is open
                await writer.execute(text("INSERT INTO notes (body) VALUES ('second')"))
        async with db.read() as session:
            after = (await session.execute(text("SELECT body FROM notes ORDER BY id"))).scalars().all()

        assert before == ["first"]
        assert after == ["first", "second"]
        # The writer's aiosqlite connection existed already; reads added no thread of their own.
        assert threading.active_count() == threads
    finally:
        await db.dispose()


async def test_an_error_in_a_read_is_the_driver_error(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    try:
        async with db.read() as session:
            try:
                await session.execute(text("SELECT * FROM missing_table"))
            except Exception as exc:  # SQLAlchemy wraps the sqlite3 error as for aiosqlite
                assert "no such table" in str(exc)
            else:
                raise AssertionError("expected an error")
        async with db.read() as session:  # the pooled connection is still usable
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await db.dispose()
