"""The content store: bytes addressed by SHA-256, stored once however many rows hold them.

Every holder takes a reference with ``put`` and gives it back with ``release``; the bytes go
with the last reference. References live in the caller's transaction, so a rollback leaves
nothing behind and two processes storing and releasing the same bytes at once are serialised
by the blob's row lock (no window where a reference points at nothing). Bytes placed by a
transaction that then rolled back have no row at all: ``sweep_orphans`` finds them in the backend
once they are older than a grace age and hands them to ``sweep``.

All content (Files API uploads, session outputs, skill files) lives in a ``BlobBackend``
(``app/storage/blobs``, local disk by default); only its reference count is a row
(``put_staged``, or ``put_bytes`` for content already in memory). Content whose last reference
went is removed by ``sweep``, under the row lock writers take, and never inside the transaction
that released it: a rollback after a release must still find the bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import Database
from app.storage import repository
from app.storage.blobs import BlobBackend, Staged
from app.storage.blobs import cutoff as blobs_cutoff


@dataclass(frozen=True)
class ContentRef:
    sha256: str
    size: int


class MissingContent(LookupError):
    """A reference to content the store does not hold: a broken invariant, never user input."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def put_staged(db: AsyncSession, blobs: BlobBackend, staged: Staged) -> ContentRef:
    """Take one reference to staged content and place it under its digest (while the row lock
    is held: a sweep of the same digest either finished before or waits until we commit)."""
    if not await repository.add_reference(db, staged.sha256):
        await repository.insert_or_reference(db, staged.sha256, staged.size)
    await asyncio.to_thread(blobs.place, staged)
    return ContentRef(sha256=staged.sha256, size=staged.size)


async def put_bytes(db: AsyncSession, blobs: BlobBackend, data: bytes) -> ContentRef:
    """Store ``data`` (once) and take one reference to it."""
    staged = await blobs.stage_bytes(data)
    try:
        return await put_staged(db, blobs, staged)
    except BaseException:
        await asyncio.to_thread(blobs.discard, staged)
        raise


async def add_reference(db: AsyncSession, sha256: str) -> None:
    """One more holder of content already stored (a copy that shares the bytes)."""
    if not await repository.add_reference(db, sha256):
        raise MissingContent(sha256)


async def sweep(database: Database, blobs: BlobBackend, batch: int = 200) -> int:
    """Remove backend content nobody references any more; how many digests went."""
    removed = 0
    while True:
        async with database.unit_of_work() as db:
            doomed = await repository.take_unreferenced(db, batch)
            for sha256 in doomed:
                await asyncio.to_thread(blobs.remove, sha256)
        removed += len(doomed)
        if len(doomed) < batch:
            return removed


# Stored content younger than this is never adopted as an orphan, and staged content younger
# than this is never removed (an upload still streaming rewrites its staged file all the time).
ORPHAN_GRACE_SECONDS = 3600.0


async def sweep_orphans(
    database: Database, blobs: BlobBackend, grace_seconds: float = ORPHAN_GRACE_SECONDS, batch: int = 500
) -> int:
    """Find content in the backend that no row counts (its upload's transaction rolled back after
    placing it, or the process died in between) and staged content never placed, older than the
    grace age; adopt the former as unreferenced (the next ``sweep`` removes it under the row lock a
    writer of the same bytes takes, so a concurrent upload of those bytes keeps them) and remove
    the latter. How many orphans were adopted."""
    cutoff = blobs_cutoff(grace_seconds)
    await asyncio.to_thread(blobs.remove_staging_before, cutoff)
    adopted = 0
    found = iter(await asyncio.to_thread(lambda: list(blobs.placed_before(cutoff))))
    while chunk := list(itertools.islice(found, batch)):
        async with database.unit_of_work() as db:
            adopted += len(await repository.adopt(db, chunk))
    return adopted


async def release(db: AsyncSession, sha256: str) -> None:
    """Give back one reference; the bytes go with the sweep after the last one."""
    await repository.drop_reference(db, sha256)


def _read_all(blobs: BlobBackend, digests: Sequence[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for sha256 in digests:
        try:
            found[sha256] = blobs.local_path(sha256).read_bytes()
        except FileNotFoundError:
            raise MissingContent(sha256) from None
    return found


async def read_many(blobs: BlobBackend, digests: Sequence[str]) -> dict[str, bytes]:
    """The content of each digest (each read once however often it is listed), off the event
    loop. Only for small content (skill files): large content is streamed from ``local_path``."""
    return await asyncio.to_thread(_read_all, blobs, sorted(set(digests)))
