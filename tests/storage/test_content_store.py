"""The content store on each database: bytes stored once, counted references, gone with the last
(at the next sweep), and nothing left behind by a rollback or lost to a concurrent writer of the
same bytes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.db.engine import Database
from app.db.models import ContentBlob
from app.storage import service as storage
from app.storage.blobs import LocalDiskBackend


async def _refs(database: Database, sha256: str) -> int | None:
    async with database.read() as db:
        return await db.scalar(select(ContentBlob.refs).where(ContentBlob.sha256 == sha256))


async def test_stored_once_and_gone_with_the_last_reference(database: Database, tmp_path: Path) -> None:
    blobs = LocalDiskBackend(tmp_path)
    data = os.urandom(64)
    async with database.unit_of_work() as db:
        first = await storage.put_bytes(db, blobs, data)
        second = await storage.put_bytes(db, blobs, data)
    assert first == second and first.size == 64 and first.sha256 == storage.digest(data)
    assert await _refs(database, first.sha256) == 2
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing staged is left over

    async with database.unit_of_work() as db:
        await storage.release(db, first.sha256)
    assert await storage.read_many(blobs, [first.sha256, first.sha256]) == {first.sha256: data}
    assert await _refs(database, first.sha256) == 1

    async with database.unit_of_work() as db:
        await storage.release(db, first.sha256)
    await storage.sweep(database, blobs)
    assert await _refs(database, first.sha256) is None
    with pytest.raises(storage.MissingContent):
        await storage.read_many(blobs, [first.sha256])


async def test_a_rollback_leaves_no_reference_behind(database: Database, tmp_path: Path) -> None:
    blobs = LocalDiskBackend(tmp_path)
    data = os.urandom(32)
    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as db:
            await storage.put_bytes(db, blobs, data)
            raise RuntimeError("the request failed after storing")

    assert await _refs(database, storage.digest(data)) is None


async def _wait_for_a_blocked_writer(database: Database) -> None:
    """On PostgreSQL, until another connection waits on a row lock (SQLite: writers queue anyway)."""
    if database.is_sqlite:
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while True:
        async with database.read() as db:
            if await db.scalar(query):
                return
        await asyncio.sleep(0.01)


async def test_a_writer_racing_the_last_release_keeps_its_bytes(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    blobs = LocalDiskBackend(tmp_path)
    data = os.urandom(48)
    async with database.unit_of_work() as db:
        ref = await storage.put_bytes(db, blobs, data)
    other = Database(database_url)
    try:
        async with database.unit_of_work() as db:
            await storage.release(db, ref.sha256)  # the last reference: the row goes at commit

            async def put_again() -> None:
                async with other.unit_of_work() as db2:
                    await storage.put_bytes(db2, blobs, data)

            writer = asyncio.create_task(put_again())
            await _wait_for_a_blocked_writer(other)
        await writer
    finally:
        await other.dispose()

    assert await _refs(database, ref.sha256) == 1
    await storage.sweep(database, blobs)
    assert await storage.read_many(blobs, [ref.sha256]) == {ref.sha256: data}
