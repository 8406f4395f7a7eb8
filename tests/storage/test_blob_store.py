"""Content on the disk backend: placed atomically under its digest, counted in the database,
removed only by the sweep once no reference is left, and never by a release that rolled back."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import ContentBlob
from app.storage import service as storage
from app.storage.blobs import LocalDiskBackend


async def _refs(database: Database, sha256: str) -> int | None:
    async with database.read() as db:
        return await db.scalar(select(ContentBlob.refs).where(ContentBlob.sha256 == sha256))


async def test_staged_content_is_invisible_until_placed(tmp_path: Path) -> None:
    blobs = LocalDiskBackend(tmp_path)
    staging = blobs.stage()
    await staging.write(b"abc" * 1000)
    staged = await staging.finish()
    assert staged.sha256 == storage.digest(b"abc" * 1000) and staged.size == 3000
    assert not blobs.exists(staged.sha256)
    blobs.place(staged)
    assert blobs.local_path(staged.sha256).read_bytes() == b"abc" * 1000
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_swept_only_after_the_last_reference(database: Database, tmp_path: Path) -> None:
    blobs = LocalDiskBackend(tmp_path)
    data = os.urandom(1000)
    async with database.unit_of_work() as db:
        ref = await storage.put_staged(db, blobs, await blobs.stage_bytes(data))
        await storage.put_staged(db, blobs, await blobs.stage_bytes(data))
    assert await _refs(database, ref.sha256) == 2

    async with database.unit_of_work() as db:
        await storage.release(db, ref.sha256)
    await storage.sweep(database, blobs)
    assert blobs.exists(ref.sha256)

    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as db:
            await storage.release(db, ref.sha256)
            raise RuntimeError("the request failed after releasing")
    await storage.sweep(database, blobs)
    assert blobs.exists(ref.sha256) and await _refs(database, ref.sha256) == 1

    async with database.unit_of_work() as db:
        await storage.release(db, ref.sha256)
    assert blobs.exists(ref.sha256)  # the bytes wait for the sweep, not for the commit
    await storage.sweep(database, blobs)
    assert not blobs.exists(ref.sha256) and await _refs(database, ref.sha256) is None


async def test_content_stored_again_after_a_sweep_comes_back(database: Database, tmp_path: Path) -> None:
    blobs = LocalDiskBackend(tmp_path)
    data = os.urandom(500)
    async with database.unit_of_work() as db:
        ref = await storage.put_staged(db, blobs, await blobs.stage_bytes(data))
        await storage.release(db, ref.sha256)
    blobs.remove(ref.sha256)  # as if a sweep removed the bytes but lost its commit
    async with database.unit_of_work() as db:
        await storage.put_staged(db, blobs, await blobs.stage_bytes(data))
    await storage.sweep(database, blobs)
    assert blobs.local_path(ref.sha256).read_bytes() == data


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_bytes_of_a_rolled_back_upload_are_swept_after_the_grace_age(
    database: Database, tmp_path: Path
) -> None:
    blobs = LocalDiskBackend(tmp_path)
    data, kept = os.urandom(2000), os.urandom(3000)
    async with database.unit_of_work() as db:
        held = await storage.put_staged(db, blobs, await blobs.stage_bytes(kept))
    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as db:
            ref = await storage.put_staged(db, blobs, await blobs.stage_bytes(data))
            raise RuntimeError("the upload failed after placing its bytes")
    assert blobs.exists(ref.sha256) and await _refs(database, ref.sha256) is None

    # Younger than the grace age: an upload may still be committing; left alone.
    assert await storage.sweep_orphans(database, blobs) == 0
    await storage.sweep(database, blobs)
    assert blobs.exists(ref.sha256)

    for sha256 in (ref.sha256, held.sha256):
        _age(blobs.local_path(sha256), storage.ORPHAN_GRACE_SECONDS + 60)
    assert await storage.sweep_orphans(database, blobs) == 1  # the referenced one is not adopted
    assert await storage.sweep(database, blobs) == 1
    assert not blobs.exists(ref.sha256) and await _refs(database, ref.sha256) is None
    assert blobs.local_path(held.sha256).read_bytes() == kept and await _refs(database, held.sha256) == 1


async def test_an_adopted_orphan_uploaded_again_before_the_sweep_stays(
    database: Database, tmp_path: Path
) -> None:
    blobs = LocalDiskBackend(tmp_path)
    data = os.urandom(1500)
    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as db:
            ref = await storage.put_staged(db, blobs, await blobs.stage_bytes(data))
            raise RuntimeError("rolled back")
    assert await storage.sweep_orphans(database, blobs, grace_seconds=0) == 1
    assert await _refs(database, ref.sha256) == 0
    async with database.unit_of_work() as db:  # the same bytes uploaded again in between
        await storage.put_staged(db, blobs, await blobs.stage_bytes(data))
    assert await storage.sweep(database, blobs) == 0
    assert blobs.local_path(ref.sha256).read_bytes() == data and await _refs(database, ref.sha256) == 1


async def test_staged_content_left_by_a_dead_upload_is_removed(database: Database, tmp_path: Path) -> None:
    blobs = LocalDiskBackend(tmp_path)
    stale, live = blobs.stage(), blobs.stage()
    await stale.write(b"x" * 100)
    await live.write(b"y" * 100)
    staged_files = sorted((tmp_path / "tmp").iterdir())
    assert len(staged_files) == 2
    old = staged_files[0]
    _age(old, storage.ORPHAN_GRACE_SECONDS + 60)
    stray = tmp_path / "blobs" / "ab" / "cd" / "not-a-digest"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left alone")
    _age(stray, storage.ORPHAN_GRACE_SECONDS + 60)
    assert await storage.sweep_orphans(database, blobs) == 0
    assert sorted((tmp_path / "tmp").iterdir()) == [p for p in staged_files if p != old]
    assert stray.exists()
    await live.discard()
    await stale.discard()


async def test_staging_many_pieces_across_batches_is_byte_exact(tmp_path: Path) -> None:
    """Pieces of odd sizes across several write batches (each written with one writev, hashed
    alongside) give the same bytes and digest as the whole."""
    blobs = LocalDiskBackend(tmp_path)
    data = os.urandom(9 * 1024 * 1024 + 12345)
    staging = blobs.stage()
    for start in range(0, len(data), 65_537):
        await staging.write(data[start : start + 65_537])
    await staging.write(b"")
    staged = await staging.finish()
    assert (staged.sha256, staged.size) == (storage.digest(data), len(data))
    assert staged.path.read_bytes() == data
    blobs.discard(staged)
