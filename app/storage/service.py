"""The content store: bytes addressed by SHA-256, stored once however many rows hold them.

Every holder takes a reference with ``put`` and gives it back with ``release``; the bytes go
with the last reference. References live in the caller's transaction, so a rollback leaves
nothing behind and two processes storing and releasing the same bytes at once are serialised
by the blob's row lock (no garbage collector, no window where a reference points at nothing).

The bytes are kept in the database, which every API and worker process already shares; that
suits what is stored here (skill files, at most a few MiB per version). A backend for large
files (a directory or an object store) would keep this interface and move only ``data``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.storage import repository


@dataclass(frozen=True)
class ContentRef:
    sha256: str
    size: int


class MissingContent(LookupError):
    """A reference to content the store does not hold: a broken invariant, never user input."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def put(db: AsyncSession, data: bytes) -> ContentRef:
    """Store ``data`` (once) and take one reference to it."""
    sha256 = digest(data)
    if not await repository.add_reference(db, sha256):
        await repository.insert_or_reference(db, sha256, data)
    return ContentRef(sha256=sha256, size=len(data))


async def release(db: AsyncSession, sha256: str) -> None:
    """Give back one reference; the content is deleted with its last one."""
    left = await repository.drop_reference(db, sha256)
    if left is not None and left <= 0:
        await repository.delete_unreferenced(db, sha256)


async def read(db: AsyncSession, sha256: str) -> bytes:
    data = await repository.read(db, sha256)
    if data is None:
        raise MissingContent(sha256)
    return data


async def read_many(db: AsyncSession, digests: Sequence[str]) -> dict[str, bytes]:
    """The content of each digest (each read once however often it is listed)."""
    found = await repository.read_many(db, sorted(set(digests)))
    missing = set(digests) - set(found)
    if missing:
        raise MissingContent(", ".join(sorted(missing)))
    return found
