"""Where large content lives: a ``BlobBackend`` keyed by SHA-256, local disk by default.

Content is first *staged* (written to a temporary object while it is hashed, never visible under
its digest), then *placed* under its digest by an atomic rename. Placing always happens while the
caller holds the content's row lock in ``content_blobs`` (see ``app/storage/service``), and the
sweeper removes content only under that same lock, so a reference never points at nothing.

The interface is what an S3-compatible backend needs too: stage = multipart upload to a temporary
key, place = copy to the digest key, open = GET, remove = DELETE; ``local_path`` is a local cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# Staged writes are batched to this size before a thread writes them (few thread hops per file).
_FLUSH_BYTES = 4 * 1024 * 1024
_READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Staged:
    """Content written and hashed, not yet visible under its digest."""

    sha256: str
    size: int
    path: Path


class Staging(Protocol):
    async def write(self, data: bytes) -> None: ...
    async def finish(self) -> Staged: ...
    async def discard(self) -> None: ...
    @property
    def size(self) -> int: ...


class BlobBackend(Protocol):
    def stage(self) -> Staging: ...
    async def stage_bytes(self, data: bytes) -> Staged: ...
    def place(self, staged: Staged) -> None: ...
    def discard(self, staged: Staged) -> None: ...
    def exists(self, sha256: str) -> bool: ...
    def local_path(self, sha256: str) -> Path: ...
    def remove(self, sha256: str) -> None: ...
    def read_chunks(self, sha256: str) -> Iterator[bytes]: ...


class _DiskStaging:
    """A temporary file in the store's own ``tmp/`` (same filesystem, so placing is a rename)."""

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="stage-")
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._path = Path(name)
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def _flush_sync(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self._size += len(data)
        if len(self._buffer) >= _FLUSH_BYTES:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            await asyncio.to_thread(self._flush_sync, chunk)

    def _finish_sync(self, chunk: bytes) -> None:
        self._flush_sync(chunk)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    async def finish(self) -> Staged:
        await asyncio.to_thread(self._finish_sync, bytes(self._buffer))
        self._buffer = bytearray()
        return Staged(sha256=self._hash.hexdigest(), size=self._size, path=self._path)

    def _discard_sync(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)

    async def discard(self) -> None:
        await asyncio.to_thread(self._discard_sync)


class LocalDiskBackend:
    """``<root>/blobs/ab/cd/<sha256>`` (read-only files) and ``<root>/tmp/`` for staging."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._tmp = self.root / "tmp"

    def stage(self) -> Staging:
        return _DiskStaging(self._tmp)

    async def stage_bytes(self, data: bytes) -> Staged:
        staging = self.stage()
        try:
            await staging.write(data)
            return await staging.finish()
        except BaseException:
            await staging.discard()
            raise

    def local_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256[2:4] / sha256

    def place(self, staged: Staged) -> None:
        """Make staged content visible under its digest. Always renames (even over an existing
        copy of the same bytes), so content removed by a sweep that lost its commit comes back."""
        final = self.local_path(staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged.path, 0o444)
        os.replace(staged.path, final)

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.local_path(sha256).is_file()

    def remove(self, sha256: str) -> None:
        self.local_path(sha256).unlink(missing_ok=True)

    def read_chunks(self, sha256: str) -> Iterator[bytes]:
        with self.local_path(sha256).open("rb") as handle:
            while chunk := handle.read(_READ_BYTES):
                yield chunk
